# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 7: overfitting, dropout, and model averaging
#
# **What you will learn**
#
# * what overfitting looks like in a language model: training perplexity keeps
#   falling while validation perplexity turns back up;
# * that Zaremba's dropout closes the gap: the *same* model, trained the same
#   way with `dropout=0.5`, fits the training text less well and the new text
#   better, which is the paper's whole point (its Table 1: the non-regularized
#   model stops at 114.5 test perplexity on PTB; with dropout a larger model
#   reaches 78.4);
# * model averaging (the paper's ensembles): average the predicted
#   *distributions* of several independently trained models with
#   `minilstm.training.evaluate_ensemble`, and why that can never be worse than
#   the typical member.
#
# The experiment runs on the built-in corpus, whose true entropy is known
# (lesson 6), so we can also say how far from *perfect* each model is. To make
# overfitting visible in a couple of minutes on a CPU, a large model (2 x 200
# units, ~0.6M parameters) gets very little data: 2,000 words of training text
# (quick mode: a smaller model, 1,000 words, a few epochs).

# %%
import math
import time

import numpy as np

from _lesson import QUICK, banner, pick, plt, save

from minilstm.config import get_config
from minilstm.data import make_builtin_corpus
from minilstm.plots import style_epoch_axes
from minilstm.training import evaluate, evaluate_ensemble, train

banner("Lesson 7: overfitting, dropout and model averaging")

# %%
corpus = make_builtin_corpus(train_tokens=pick(1_000, 2_000), valid_tokens=pick(3_000, 10_000),
                             test_tokens=pick(3_000, 10_000))
best = {split: math.exp(h) for split, h in corpus.entropy.items()}
print(corpus.description)
print(f"train {len(corpus.train):,} tokens; best possible perplexity: valid {best['valid']:.2f}, "
      f"test {best['test']:.2f}")

# The `tiny` recipe (2 layers, T = 20, lr 1 then decayed), with a larger model, 5 streams (so that
# 2,000 words still give 19 SGD steps per epoch) and many epochs.
base = get_config("tiny", hidden_size=pick(48, 200), epochs=pick(4, 20), max_epoch=pick(2, 12), lr_decay=1.5,
                  batch_size=5, eval_batch_size=10)
print({k: getattr(base, k) for k in ("num_layers", "hidden_size", "num_steps", "batch_size", "lr", "lr_decay",
                                     "max_epoch", "epochs", "max_grad_norm")})

# %% [markdown]
# ## Same model, with and without dropout
#
# `train(cfg, corpus=..., dropout=p)` trains one model and returns its history
# (one row per epoch: training and validation perplexity, learning rate,
# gradient norm...). The training perplexity of an epoch is measured *during*
# the epoch, in training mode (with dropout, if any); the validation
# perplexity after it, without dropout.

# %%
def run(dropout, seed):
    t0 = time.perf_counter()
    res = train(base, corpus=corpus, dropout=dropout, seed=seed, progress=False, evaluate_test=False,
                log=lambda *a, **k: None)
    last = res.history[-1]
    print(f"dropout {dropout:.1f}, seed {seed}: train ppl {last['train_ppl']:6.2f}, "
          f"valid ppl {last['valid_ppl']:6.2f}  ({time.perf_counter() - t0:.0f} s)")
    return res


runs = {0.0: [run(0.0, 0)], 0.5: [run(0.5, 0)]}

# %%
fig, ax = plt.subplots(figsize=(9, 5))
for p, color in ((0.0, "C3"), (0.5, "C0")):
    hist = runs[p][0].history
    epochs = [r["epoch"] for r in hist]
    label = "no dropout" if p == 0 else f"dropout {p} (Zaremba)"
    ax.plot(epochs, [r["train_ppl"] for r in hist], "--o", color=color, ms=4, label=f"{label}: train")
    ax.plot(epochs, [r["valid_ppl"] for r in hist], "-o", color=color, ms=4, lw=2, label=f"{label}: valid")
ax.axhline(best["valid"], color="k", ls=":", label=f"best possible (true entropy): {best['valid']:.2f}")
title = f"{base.num_layers}x{base.hidden_size} LSTM on {len(corpus.train):,} words of the built-in corpus"
style_epoch_axes(ax, title, "perplexity")  # log y-axis in plain numbers, whole epochs
ax.legend(fontsize=8)
save(fig, "07_train_vs_valid")

# %% [markdown]
# Without dropout the training perplexity dives *below* the best possible value:
# no model can predict this grammar better than its true entropy, so the only
# way to get there is to memorize the training text. Memorized text does not
# help on new text: the validation perplexity stops improving after a few
# epochs, hovers near its best, and then climbs back up, far above it (the run
# prints its best epoch and how far it climbs). With dropout the model cannot rely on any
# single unit: the training perplexity (measured with the masks on) stays
# higher, and the validation perplexity stays much lower. With only 2,000 words
# even the dropout model ends up below the best possible training perplexity
# while its validation perplexity stops improving: dropout reduces overfitting,
# it does not abolish it; early stopping on the validation set (the `best.npz`
# checkpoint of `minilstm train`) takes care of the rest.
#
# **Check** (full mode; quick mode trains too little to overfit):

# %%
h0 = runs[0.0][0].history
h5 = runs[0.5][0].history
gap0 = h0[-1]["valid_ppl"] / h0[-1]["train_ppl"]
gap5 = h5[-1]["valid_ppl"] / h5[-1]["train_ppl"]
print(f"valid/train perplexity ratio at the end: no dropout {gap0:.2f}, dropout {gap5:.2f}")
best0 = min(h0, key=lambda r: r["valid_ppl"])
print(f"no dropout: best valid perplexity {best0['valid_ppl']:.2f} at epoch {best0['epoch']}, "
      f"{h0[-1]['valid_ppl']:.2f} at the end ({h0[-1]['valid_ppl'] / best0['valid_ppl']:.1f}x its best)")
if QUICK:
    print("quick mode: skipping the overfitting checks")
else:
    assert h0[-1]["train_ppl"] < best["train"], "without dropout the model should memorize (train < best)"
    assert gap0 > gap5, "dropout should shrink the gap between training and validation perplexity"
    assert h5[-1]["valid_ppl"] < h0[-1]["valid_ppl"], "dropout should give the better validation perplexity"
    assert min(r["valid_ppl"] for r in h0) < h0[-1]["valid_ppl"], "without dropout valid should turn back up"
    print("overfitting without dropout, less with it")

# %% [markdown]
# ## Model averaging
#
# Train `K` models that differ only in their random seed (initial weights and
# dropout masks) and average their predicted distributions:
#
# ```
# p_ens(w | history) = (1/K) * sum_k p_k(w | history)
# ```
#
# `evaluate_ensemble(models, ids)` scores that average. By Jensen's inequality
# (`-log` is convex), `-log(mean_k p_k) <= mean_k(-log p_k)` for every word, so
# the ensemble's perplexity is never above the geometric mean of its members'
# perplexities; it is usually well below, because the models make different
# mistakes. The paper reports such averages in its Table 1: averaging helps
# every model size, and its best result is an average of many large
# regularized LSTMs, well below the 78.4 of a single one.

# %%
K = pick(2, 3)
for p in runs:
    for seed in range(1, K):
        runs[p].append(run(p, seed))

test_ids = corpus.test
table = {}
for p, members in runs.items():
    models = [r.model for r in members]
    singles = [evaluate(mdl, test_ids, batch_size=10, num_steps=base.num_steps).perplexity for mdl in models]
    ens = [evaluate_ensemble(models[:k], test_ids, batch_size=10, num_steps=base.num_steps).perplexity
           for k in range(1, K + 1)]
    table[p] = (singles, ens)
    name = "no dropout" if p == 0 else f"dropout {p}"
    print(f"{name:11s} test perplexity of each model: {', '.join(f'{s:.2f}' for s in singles)}; "
          f"averages of the first k models: {', '.join(f'k={k}: {e:.2f}' for k, e in enumerate(ens, 1))}")

# %% [markdown]
# **Check.** An "ensemble" of one model is that model, and an ensemble is never
# worse than the geometric mean of its members (Jensen).

# %%
for p, (singles, ens) in table.items():
    assert abs(ens[0] - singles[0]) < 1e-6 * singles[0], "an ensemble of one model must equal the model"
    geo = math.exp(np.mean(np.log(singles)))
    assert ens[-1] <= geo * (1 + 1e-9), f"ensemble {ens[-1]:.3f} above the members' geometric mean {geo:.3f}"
print("model averaging behaves as Jensen's inequality says")
if not QUICK:
    assert table[0.5][0][0] < table[0.0][1][-1], "one dropout model should beat the no-dropout ensemble"
    assert table[0.0][1][-1] < min(table[0.0][0]), "averaging should beat every overfitted member"

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
ks = np.arange(1, K + 1)
for p, color in ((0.0, "C3"), (0.5, "C0")):
    singles, ens = table[p]
    name = "no dropout" if p == 0 else f"dropout {p} (Zaremba)"
    ax.plot(ks, ens, "-o", color=color, lw=2, label=f"{name}: average of the first k models")
    ax.plot(np.full(len(singles), 1.0) + np.linspace(-0.08, 0.08, len(singles)), singles, "x", color=color,
            ms=8, label=f"{name}: each model alone")
ax.axhline(best["test"], color="k", ls=":", label=f"best possible: {best['test']:.2f}")
ax.set_xticks(ks)
ax.set_xlabel("number of models averaged k")
ax.set_ylabel("test perplexity")
ax.set_title("Model averaging on the built-in corpus")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
save(fig, "07_ensembles")

# %% [markdown]
# Averaging helps the overfitted non-regularized models enormously: each one is
# confidently wrong in its own way, and the average smooths their
# overconfidence away. For the dropout models the average lands below the
# typical member (the geometric mean) but need not beat the luckiest one: their
# mistakes are smaller and more alike, and dropout is itself often described as
# training an implicit ensemble of "thinned" networks, so part of the benefit is
# already inside each model. And one regularized model beats the average of
# several non-regularized ones, as in the paper: averaging is a complement to
# dropout, not a substitute.
#
# ## Try this
#
# 1. Give the model the whole 200,000-word training text
#    (`make_builtin_corpus()`): does the no-dropout model still overfit within
#    10 epochs? What does that tell you about when to use dropout?
# 2. Try `dropout=0.3` and `dropout=0.7`. Plot the final validation perplexity
#    against `p`.
# 3. Train with `dropout_mode="recurrent"` (lesson 5). Is it a better or a worse
#    regularizer here?
# 4. Average a dropout model with a no-dropout model. Is a mixed ensemble better
#    than its best member?
