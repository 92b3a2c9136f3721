# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 11: captions are a conditioned language model, and model averaging
#
# **What you will learn**
#
# * how Zaremba et al. (2014, section 4.4, Table 4) regularize Vinyals et
#   al.'s Show-and-Tell captioner: image features, projected by an affine map,
#   are the LSTM's **first input**, then the caption's words follow, and the
#   LSTM is trained as a language model of the caption *given the image*;
# * that the dropout operator `D` goes on the **same connections** as in the
#   language model: the input entering the stack (the image included) and the
#   top `h` leaving it, never the recurrent one;
# * the data: scikit-learn's 8x8 handwritten digits, three side by side,
#   captions in three phrasings, train and test drawn from **disjoint pools of
#   digit images**, and the best perplexity any model can reach on it;
# * **model averaging**: an ensemble's probability is the *mean of its
#   members' probabilities*, not of their log-probabilities; you will compute
#   both by hand and see why the paper's kind is never worse than its members
#   on average (Jensen's inequality);
# * the paper's point: one regularized model does about as well as an
#   ensemble of unregularized ones, at a fraction of the cost.
#
# Prerequisites: lesson 7 (dropout against overfitting, `evaluate_ensemble`)
# and lesson 10 (the masked loss, decoding, BLEU). It needs scikit-learn and
# sacreBLEU (`pip install -e ".[paper]"`). `minilstm caption` runs the whole of
# Table 4 in miniature (10 unregularized seeds and their ensemble, 3
# regularized seeds).

# %%
import tempfile
import time
from pathlib import Path

import numpy as np

from _lesson import QUICK, banner, pick, plt, save

from minilstm.data.digits import IMAGE_SHAPE, CaptionSplit, batch_captions, make_digit_captions
from minilstm.experiments.caption import (QUICK as QUICK_RECIPE, CaptionConfig, caption_images, digit_accuracy,
                                          evaluate_perplexity, load_ensemble, train_run, write_references)
from minilstm.experiments.bleu import bleu_from_files
from minilstm.models.caption import CaptionModel
from minilstm.models.ensemble import Ensemble

banner("Lesson 11: captions, and model averaging")

# %% [markdown]
# ## The data: three digits, one caption, three ways to say it
#
# MSCOCO is 80,000 photographs with five captions each; our miniature is made
# in a second from the 1,797 handwritten digits that ship with scikit-learn.
# Three digit images side by side make an 8 x 24 image, and its caption names
# the digits in one of three phrasings, drawn at random. The image *features*
# are simply its 192 pixels scaled to [0, 1]: the model's own affine map plays
# the part of the CNN's last layer.
#
# The 1,797 digit images are shuffled once and cut into three **disjoint
# pools** (1,000 / 390 / 390); a test composite uses test-pool images only, so
# the model must read handwriting it has never seen, not recall pictures.

# %%
corpus = make_digit_captions()
print(corpus.description)
V, F = corpus.vocab_size, corpus.num_features
print(f"V = {V} words ({' '.join(corpus.vocab)}), F = {F} features per image")
pools = {name: set(corpus.split(name).sources.ravel().tolist()) for name in ("train", "valid", "test")}
print("digit images shared by the train and test pools:", len(pools["train"] & pools["test"]))
assert not pools["train"] & pools["test"] and not pools["train"] & pools["valid"]
for i in range(3):
    print(f"  digits {corpus.train.digits[i]}: {' '.join(corpus.decode(corpus.train.captions[i]))!r}")

# %% [markdown]
# **The floor.** Once the model has read the digits, only the phrasing is left
# to chance: a 1-in-3 choice that the caption's *first* word reveals ("a",
# "the" or a digit); after it every word, `<eos>` included, is determined. So
# every caption costs at least `log 3` nats, and over the test captions
#
# ```
# best perplexity = exp(log 3 x captions / tokens)        (tokens = words + <eos>)
# ```

# %%
test = corpus.test
tokens = sum(len(c) + 1 for c in test.captions)
floor = np.exp(np.log(3) * len(test) / tokens)
print(f"{len(test)} test captions, {tokens} tokens: best perplexity {floor:.4f}")
assert abs(floor - corpus.best_perplexity["test"]) < 1e-12

# %% [markdown]
# ## The model: the image is the first word
#
# ```
# step       0                1      2      ...   M
# input      W_img f + b      w_1    w_2    ...   w_M
# predicts   w_1              w_2    w_3    ...   <eos>
# ```
#
# Vinyals et al. feed the image once, at the first step, through the same
# connection every word enters by. The alternative, putting the image into the
# initial state `(h_0, c_0)`, would bypass `D` entirely (the paper leaves the
# recurrent connections alone), so the regularized model would never drop a
# unit of its only view of the image. Here the projected image is just the
# first column of the stack's input:

# %%
model = CaptionModel(F, V, corpus.eos_id, hidden_size=8, dtype="float64", seed=0, init_scale=0.3, dropout=0.5)
features, inputs, targets, weights = batch_captions(test, 4, dtype="float64")[0]
print("features", features.shape, " inputs", inputs.shape, " targets", targets.shape, " weights", weights.shape)
print({name: p.shape for name, p in model.params.items()})
x, _, _ = model._inputs(features, inputs)          # (N, T, H): the image, then the words
image_step = features @ model.params["img.W"] + model.params["img.b"]
assert np.allclose(x[:, 0], image_step), "step 0 is the projected image"
assert np.allclose(x[:, 1:], model.params["embed.W"][inputs]), "then the embedded words"

# %% [markdown]
# `D` is placed by the same stack as the language model's and the
# translation model's (`minilstm/stack.py`): `drop0` on the input of layer 1,
# `drop1` on the top `h`. Look at `drop0`'s first step: units of the *image*
# are dropped too, with the same probability as units of a word.

# %%
loss, cache = model.forward(features, inputs, targets, weights, rng=np.random.default_rng(0))
print("masks:", {name: m.shape for name, m in cache.masks.items()})
dropped_image = float((cache.masks["drop0"][:, 0] == 0).mean())
print(f"share of the image's units dropped at step 0: {dropped_image:.2f} (p = {model.dropout})")
assert 0.2 < dropped_image < 0.8

# %% [markdown]
# As in lesson 10, a caption shorter than the batch's longest is padded on the
# right with weight 0: it changes nothing. And a model that knows nothing (all
# scores equal) has perplexity exactly `V`.

# %%
def one_caption(i):
    """Test image i alone, as a batch of one (no padding)."""
    alone = CaptionSplit(test.features[i:i + 1], test.digits[i:i + 1], test.captions[i:i + 1], test.phrasing[i:i + 1],
                         test.sources[i:i + 1])
    return batch_captions(alone, 1, dtype="float64")[0]


alone = [model.nll(*one_caption(i))[0] for i in range(4)]
together = model.nll(features, inputs, targets, weights)[0]
print(f"NLL of 4 captions one at a time {sum(alone):.10f}, padded in one batch {together:.10f}")
assert abs(sum(alone) - together) < 1e-9
uniform = CaptionModel(F, V, corpus.eos_id, hidden_size=8, dtype="float64")
uniform.params["out.W"][:] = 0.0
uniform.params["out.b"][:] = 0.0
print(f"uniform model: perplexity {evaluate_perplexity(uniform, test):.6f} (V = {V})")

# %% [markdown]
# ## Training: without dropout (several seeds) and with it
#
# `train_run` is what `minilstm caption` runs for each model: Adam, gradient
# clipping at 5, early stopping on the validation perplexity, then the best
# checkpoint scored on the test images. We train `K` unregularized models
# (seeds 0 .. K-1, the ensemble's members) and one regularized model
# (`p = 0.5` on the non-recurrent connections).

# %%
K = pick(2, 4)
base = CaptionConfig(**({**QUICK_RECIPE, "eval_images": 0} if QUICK else dict(hidden_size=128)))
workdir = Path(tempfile.mkdtemp(prefix="lesson11-"))
runs = {}
t0 = time.perf_counter()
for name, cfg in [(f"plain-{k}", CaptionConfig(**{**base.to_dict(), "seed": k})) for k in range(K)] + \
        [("dropout", CaptionConfig(**{**base.to_dict(), "dropout": 0.5}))]:
    runs[name] = train_run(cfg, corpus, workdir / name, log=lambda s: None)
    s = runs[name]
    print(f"{name:>8}: {s['epochs']:2d} epochs (best {s['best_epoch']:2d}), train ppl {s['train_ppl']:.3f}, "
          f"valid ppl {s['valid_ppl']:.3f}, test ppl {s['test_ppl']:.3f}, BLEU {s['bleu_greedy']:.1f}, "
          f"all digits right {s['digits_greedy']:.1f}%")
train_time = time.perf_counter() - t0
print(f"({train_time:.0f} s for {K + 1} models)")

# %% [markdown]
# ## Model averaging, by hand
#
# An ensemble of `K` models predicts the next word with the **mean of the
# members' probabilities**,
#
# ```
# p(w | image, words so far) = (1/K) sum_k p_k(w | image, words so far)
# ```
#
# a mixture: the prediction of a member drawn at random, a proper distribution
# as it stands, that keeps a word likely if *any* member finds it likely. Its
# NLL per token is `-log mean_k p_k`; since `log` is concave,
# `log mean_k p_k >= mean_k log p_k` (Jensen), so the ensemble's NLL is never
# above the members' average NLL, token by token.
#
# Averaging the **log-probabilities** (the scores) instead is not the same
# thing. Left as it is, `exp(mean_k log p_k)` does not sum to 1 over the
# words, and its "perplexity" is exactly the members' average one: the
# ensemble would seem to gain nothing. Renormalized, `prod_k p_k^(1/K) / Z`
# (a product of experts) is another model, sharper than the mixture: it
# punishes a word that any one member finds unlikely. (Its `Z <= 1`, by the
# inequality of arithmetic and geometric means, so it too is never worse than
# the members on average; which of the two scores better depends on how
# confident and how wrong the members are.) The paper's ensemble, and
# `minilstm`'s, is the mixture. Let us compute all three from the members' own
# log-probabilities, and compare with `Ensemble`.

# %%
members = [load_ensemble([workdir / f"plain-{k}"]).models[0] for k in range(K)]
ensemble = Ensemble(members)
feats, ins, tgts, wts = (np.asarray(a) for a in batch_captions(test, len(test), dtype=base.dtype)[0])
lp = np.stack([m.log_probs(feats, ins) for m in members]).astype(np.float64)   # (K, N, T, V)
p_target = np.exp(np.take_along_axis(lp, np.broadcast_to(tgts[None, ..., None], lp.shape[:-1] + (1,)), -1)[..., 0])
count = wts.sum()
mixture_nll = -(np.log(p_target.mean(axis=0)) * wts).sum()                     # mean of probabilities
member_nll = [-(np.log(p_target[k]) * wts).sum() for k in range(K)]
geo = lp.mean(axis=0)                                                           # mean of log-probabilities
raw_nll = -(np.take_along_axis(geo, tgts[..., None], -1)[..., 0] * wts).sum()  # ... as it is
geo = geo - np.log(np.exp(geo).sum(-1, keepdims=True))                          # ... renormalized
geo_nll = -(np.take_along_axis(geo, tgts[..., None], -1)[..., 0] * wts).sum()
print("members' test perplexities:", " ".join(f"{np.exp(n / count):.3f}" for n in member_nll))
print(f"their average NLL as a perplexity: {np.exp(np.mean(member_nll) / count):.4f}")
print(f"mixture (mean of probabilities):   {np.exp(mixture_nll / count):.4f}   <- the paper's ensemble")
print(f"mean of log-probs, not normalized: {np.exp(raw_nll / count):.4f}   <- just the members' average again")
print(f"mean of log-probs, renormalized:   {np.exp(geo_nll / count):.4f}   <- another model (product of experts)")
ens_ppl = evaluate_perplexity(ensemble, test)
print(f"Ensemble (minilstm.models.ensemble): {ens_ppl:.4f}")
assert abs(np.exp(mixture_nll / count) - ens_ppl) < 1e-4 * ens_ppl
assert mixture_nll <= np.mean(member_nll) + 1e-6, "Jensen: the mixture is never worse than the members on average"
assert abs(raw_nll - np.mean(member_nll)) < 1e-6 * raw_nll, "unnormalized, averaged log-probs score as the members do"

# %% [markdown]
# ## Captions from one model and from the ensemble
#
# The ensemble offers `start` / `step` like any captioner (its log-probability
# is `log mean_k p_k`), so greedy decoding and beam search run on it
# unchanged. BLEU is computed by sacreBLEU from written files, against all
# three phrasings as references: with the drawn caption alone it would mostly
# measure which phrasing the model happened to pick.

# %%
refs = write_references(workdir, corpus, test)
scores = {}
for name, m in [("one plain model", members[0]), ("the dropout model", load_ensemble([workdir / "dropout"])),
                (f"ensemble of {K}", ensemble)]:
    t1 = time.perf_counter()
    hyps = caption_images(m, test.features)
    took = time.perf_counter() - t1
    path = workdir / f"{name.replace(' ', '_')}.txt"
    path.write_text("".join(" ".join(corpus.decode(h)) + "\n" for h in hyps))
    scores[name] = (evaluate_perplexity(m, test), bleu_from_files(path, *refs)["bleu"],
                    digit_accuracy(hyps, test.digits), took)
    print(f"{name:>18}: test ppl {scores[name][0]:.3f}  BLEU {scores[name][1]:5.1f}  "
          f"all digits right {scores[name][2]:5.1f}%  decoding {took * 1000:.0f} ms")
for i in range(3):
    print(f"  digits {test.digits[i]}: {' '.join(corpus.decode(caption_images(ensemble, test.features[i:i + 1])[0]))}")

# %%
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.8), gridspec_kw={"width_ratios": [1.2, 1, 1]})
ax1.imshow(test.features[0].reshape(IMAGE_SHAPE), cmap="gray_r")
ax1.set_title("a test image: " + " ".join(corpus.decode(caption_images(ensemble, test.features[:1])[0])), fontsize=9)
ax1.axis("off")
from minilstm.plots import epoch_rows, read_metrics, style_epoch_axes  # noqa: E402

for name in runs:
    rows = epoch_rows(read_metrics(workdir / name))
    ax2.plot([r["epoch"] for r in rows], [r["valid_ppl"] for r in rows], color="tab:blue" if name == "dropout"
             else "black", alpha=0.8, label=name if name in ("plain-0", "dropout") else None)
ax2.axhline(corpus.best_perplexity["valid"], color="grey", ls=":", label="best possible")
style_epoch_axes(ax2, "validation perplexity", "perplexity (log scale)")
ax2.legend(fontsize=8)
names = list(scores)
ax3.bar(range(3), [scores[n][0] for n in names], color=["black", "tab:blue", "tab:orange"])
ax3.set_xticks(range(3), [n.replace(" model", "\nmodel").replace("of ", "of\n") for n in names], fontsize=8)
ax3.axhline(floor, color="grey", ls=":")
ax3.set_ylim(0.9 * floor, max(s[0] for s in scores.values()) * 1.05)
ax3.set_title("test perplexity (Table 4's first column)", fontsize=11)
fig.tight_layout()
save(fig, "11_captions")

# %% [markdown]
# What to look for (full mode; the numbers are this run's): without dropout
# the training perplexity falls far below the validation one, which stops
# improving after some 15 epochs: 1,000 captions are memorized. With `p = 0.5`
# the validation perplexity keeps falling for longer, to a lower minimum. The
# ensemble of `K` plain models also beats each of its members; in `minilstm
# caption`, with 10 members and 3 regularized seeds, one regularized model
# comes close to the 10-model ensemble (perplexity and BLEU), as in the
# paper's Table 4 (8.47 -> 7.99 for one regularized model, 7.5 for ten plain
# ones), while the ensemble costs ten trainings and ten forward passes at
# every decoding step.
#
# **Check** (full mode; quick mode trains too briefly to judge):

# %%
if QUICK:
    print("quick mode: skipping the regularization checks")
else:
    plain_mean = np.mean([runs[f"plain-{k}"]["test_ppl"] for k in range(K)])
    assert runs["dropout"]["test_ppl"] < plain_mean, "dropout should beat one plain model on test perplexity"
    assert ens_ppl < plain_mean, "the ensemble should beat its members on average"
    print(f"test perplexity: one plain model {plain_mean:.3f} (mean of {K}), one dropout model "
          f"{runs['dropout']['test_ppl']:.3f}, the {K}-model ensemble {ens_ppl:.3f}")

# %% [markdown]
# ## Try this
#
# 1. **The image as the initial state.** Change `CaptionModel` so that the
#    projected image becomes `h_0` (and the first input is a start word). With
#    dropout on, does the regularized model still beat the plain one? Why might
#    it gain less?
# 2. **More members.** Train `K = 8` plain models and plot the ensemble's test
#    perplexity against `K`. Where does it flatten out, and is a single dropout
#    model to the left or the right of that curve?
# 3. **Averaging log-probs in decoding.** Write an ensemble whose `step`
#    returns the renormalized mean of the members' log-probs and compare its
#    greedy captions and BLEU with the mixture's. When do they differ?
# 4. **Harder images.** Four digits per image (`data/digits.py`'s
#    `DIGITS_PER_IMAGE`), or fewer training composites: does dropout's
#    advantage grow when the model has less data per parameter?
