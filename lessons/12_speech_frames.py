# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 12: speech frames and the Bayes ceiling
#
# **What you will learn**
#
# * how Zaremba et al. (2014, section 4.2, Table 2) use the *same* regularized
#   LSTM as an **acoustic model**: it reads the feature frames of an utterance
#   (one every 10 ms) and names the sound of every frame; the score is the
#   **frame accuracy** (non-regularized: 71.6 on the training set, 68.9 on
#   validation; regularized: 69.4 and 70.5);
# * **frame classification on the stack**: dense frames enter layer 1 directly
#   (no embedding), D drops frame features on the way in (`drop0`, a mask of
#   width D = 13) and hidden units on the way up, one softmax per frame;
# * a synthetic corpus from a **hidden Markov model** over phone sub-states with
#   Gaussian "MFCC" frames, and the **forward algorithm** (filtering) that gives
#   the best accuracy any left-to-right reader can reach: the **Bayes ceiling**;
#   you will write it by hand, check it against enumerating every state path,
#   and see how much of it comes from context;
# * D trading training accuracy for validation accuracy, measured against that
#   ceiling.
#
# Prerequisites: lesson 5 (where D goes) and lesson 7 (dropout against
# overfitting). `minilstm speech` runs the full comparison of Table 2 (both
# methods, three seeds each).

# %%
import itertools
import tempfile
from pathlib import Path

import numpy as np

from _lesson import QUICK, banner, plt, save

from minilstm.data.frames import batch_frames, bayes_scores, make_builtin_frames, make_hmm
from minilstm.experiments.speech import SpeechConfig, evaluate, train_run
from minilstm.models.frames import FrameClassifier
from minilstm.plots import epoch_rows, read_metrics, style_epoch_axes

banner("Lesson 12: speech frames and the Bayes ceiling")

# %% [markdown]
# ## The corpus: an HMM over phone sub-states
#
# Real acoustic models are trained on hours of transcribed speech; we make a
# miniature whose answer is known. `P = 20` phones, each of `K = 3`
# left-to-right sub-states (onset, middle, end), so `S = 60` hidden states.
# Every frame the state stays (probability 0.65) or moves on; after its end a
# phone hands over to the onset of the next phone, drawn from a random
# **bigram** (some successors likely, most not). Each state emits a
# 13-dimensional Gaussian frame, unit variance around its own mean:
#
#     s_t ~ A[s_{t-1}, :]        x_t ~ N(mu_{s_t}, I)        label_t = phone of s_t
#
# The means are scaled so that the best achievable frame accuracy is near the
# paper's ~70%.

# %%
n_train, n_eval, frames_per_utt = (24, 12, 60) if QUICK else (200, 100, 200)
corpus = make_builtin_frames(n_train=n_train, n_valid=n_eval, n_test=n_eval, num_frames=frames_per_utt)
hmm = corpus.hmm
print(corpus.description)
print(f"states S = {hmm.num_states}, classes C = {corpus.num_classes}, features D = {corpus.feature_size}")
print("transitions out of phone 0's end state (to phones):",
      {int(hmm.phone_of[s]): round(float(hmm.trans[2, s]), 3) for s in np.flatnonzero(hmm.trans[2] > 0.01)})
assert np.allclose(hmm.trans.sum(1), 1.0), "every row of A is a distribution"

x, y = corpus.train.features[0], corpus.train.labels[0]
fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
top.imshow(x.T, aspect="auto", cmap="coolwarm", interpolation="nearest")
top.set_ylabel("feature (13)")
top.set_title("One utterance: its frames (top) and the phone of every frame (bottom)")
bottom.step(np.arange(len(y)), y, where="mid", color="black")
bottom.set_ylabel("phone")
bottom.set_xlabel("frame t")
fig.tight_layout()
save(fig, "12_utterance")

# %% [markdown]
# ## The forward algorithm, by hand
#
# An LSTM reads left to right: at frame `t` it has seen `x_1..x_t`, nothing
# after. The best such a reader can do is to name the phone of highest
# **filtered** posterior:
#
#     alpha_t(s) = p(s_t = s | x_1..x_t)  ∝  N(x_t; mu_s, I) * sum_r alpha_{t-1}(r) A[r, s]
#     guess_t    = argmax_p sum_{s of phone p} alpha_t(s)
#
# Multiplying 200 densities underflows, so `alpha` is **renormalised at every
# step** (the scaled forward algorithm), and the densities are taken in log
# space and shifted by their maximum before `exp`.

# %%
def filter_by_hand(hmm, x):
    """p(phone_t | x_1..x_t) of one utterance x (T, D): (T, P)."""
    log_b = -0.5 * ((x[:, None, :].astype(np.float64) - hmm.means[None]) ** 2).sum(-1)  # (T, S), up to a constant
    alpha = hmm.start.copy()
    out = np.zeros((len(x), hmm.num_phones))
    for t in range(len(x)):
        prior = alpha if t == 0 else alpha @ hmm.trans      # p(s_t | x_1..x_{t-1})
        alpha = prior * np.exp(log_b[t] - log_b[t].max())   # times p(x_t | s_t), no underflow
        alpha /= alpha.sum()                                # renormalise: p(s_t | x_1..x_t)
        for s in range(hmm.num_states):
            out[t, hmm.phone_of[s]] += alpha[s]
    return out


mine = filter_by_hand(hmm, corpus.valid.features[0])
library = hmm.filter(corpus.valid.features[:1])[0]
print(f"by hand vs HMM.filter (vectorised over utterances): max difference {np.abs(mine - library).max():.1e}")
assert np.allclose(mine, library, atol=1e-12), "the forward algorithm by hand should match HMM.filter"

# %% [markdown]
# And an independent check: on a tiny HMM (3 phones x 2 sub-states, 5 frames),
# sum `p(s_1..s_t, x_1..x_t)` over **every** state path, with full Gaussian
# densities, no logs and no rescaling: 6 + 36 + ... + 7,776 paths.

# %%
tiny = make_hmm(seed=3, num_phones=3, substates=2, feature_size=2, separation=1.0)
xt, _ = tiny.sample(1, 5, np.random.default_rng(0))
xt = xt[0]
dens = np.exp(-0.5 * ((xt[:, None] - tiny.means[None]) ** 2).sum(-1)) / (2 * np.pi)  # (T, S), D = 2
brute = np.zeros((5, 3))
for t in range(1, 6):
    for path in itertools.product(range(tiny.num_states), repeat=t):
        p = tiny.start[path[0]] * dens[0, path[0]]
        for k in range(1, t):
            p *= tiny.trans[path[k - 1], path[k]] * dens[k, path[k]]
        brute[t - 1, tiny.phone_of[path[-1]]] += p
    brute[t - 1] /= brute[t - 1].sum()
print(f"enumerating every path vs the forward algorithm: max difference "
      f"{np.abs(brute - tiny.filter(xt[None])[0]).max():.1e}")
assert np.allclose(brute, tiny.filter(xt[None])[0], atol=1e-12)

# %% [markdown]
# ## The ceiling, and how much of it is context
#
# The accuracy of the filtered argmax on a split is the **Bayes ceiling**: no
# left-to-right model can beat it in expectation. Compare a reader that knows
# the true means but looks at **one frame at a time**: the difference is what
# context (durations, sub-states, the bigram) is worth, and what the LSTM's
# memory has to learn.

# %%
bayes = bayes_scores(hmm, corpus.valid)
log_b = hmm.log_emissions(corpus.valid.features)
lik = np.exp(log_b - log_b.max(2, keepdims=True))
one_frame = np.stack([lik[..., hmm.phone_of == p].sum(2) for p in range(hmm.num_phones)], axis=2)
one_frame_acc = (one_frame.argmax(2) == corpus.valid.labels).mean()
print(f"validation frame accuracy: one frame at a time {100 * one_frame_acc:.1f}%, "
      f"Bayes ceiling (filtering) {100 * bayes['accuracy']:.1f}% (expected {100 * bayes['expected']:.1f}%), "
      f"chance {100 / corpus.num_classes:.0f}%")
print(f"best frame perplexity: {np.exp(bayes['nll']):.3f} (of {corpus.num_classes} classes)")
assert bayes["accuracy"] > one_frame_acc, "context must help"

# %% [markdown]
# ## The frame classifier on the stack
#
#     frames (N, T, 13) --D--> LSTM --D--> LSTM --D--> affine (H -> 20) --> softmax per frame
#
# `FrameClassifier` is the stack of every other experiment with a dense input:
# the first layer's `Wx` is `(13, 4H)`, and `drop0` drops frame features (a
# mask of width 13). One forward's masks show it.

# %%
model = FrameClassifier(corpus.feature_size, corpus.num_classes, hidden_size=16, num_layers=2, dropout=0.3)
frames, labels, weights = batch_frames(corpus.train, 4)[0]
loss, cache = model.forward(frames, labels, weights, rng=np.random.default_rng(0))
print({k: v.shape for k, v in model.params.items()})
print({k: m.shape for k, m in cache.masks.items()})
print(f"untrained: loss / frame {loss * 4 / weights.sum():.3f}, log C = {np.log(corpus.num_classes):.3f}")
assert cache.masks["drop0"].shape[-1] == 13 and cache.masks["drop1"].shape[-1] == 16

# %% [markdown]
# ## Without and with D
#
# `train_run` trains a model with Adam (clip 5) for a fixed number of epochs
# (full mode: 2x96 on 200 utterances, 20 epochs of 25 batches of 8),
# keeping `last.npz` (the fixed budget) and `best.npz` (the epoch of the highest
# validation frame accuracy: early stopping). Training accuracy is measured
# with dropout off.

# %%
hidden, epochs = (16, 2) if QUICK else (96, 20)
runs, root = {}, Path(tempfile.mkdtemp())
for p in (0.0, 0.3):
    # Few utterances, small batches and a brisk step size: the unregularized model overfits within the budget.
    cfg = SpeechConfig(hidden_size=hidden, num_layers=2, dropout=p, epochs=epochs, patience=epochs, batch_size=8,
                       lr=5e-3, train_eval_utts=100)
    summary = train_run(cfg, corpus, root / f"p{p}", log=lambda s: None)
    runs[p] = {"summary": summary, "rows": epoch_rows(read_metrics(root / f"p{p}"))}
    print(f"p = {p}: after {epochs} epochs train {summary['fixed_train_acc']:.1f} / valid "
          f"{summary['fixed_valid_acc']:.1f}; early-stopped (epoch {summary['best_epoch']}) train "
          f"{summary['early_train_acc']:.1f} / valid {summary['early_valid_acc']:.1f}   "
          f"(ceiling {100 * bayes['accuracy']:.1f})")

fig, ax = plt.subplots(figsize=(7, 4.5))
for p, colour in ((0.0, "black"), (0.3, "tab:blue")):
    rows = runs[p]["rows"]
    ax.plot([r["epoch"] for r in rows], [r["valid_acc"] for r in rows], color=colour, label=f"p = {p}: validation")
    ax.plot([r["epoch"] for r in rows], [r["train_acc"] for r in rows], color=colour, linestyle="--",
            label=f"p = {p}: training (dropout off)")
ax.axhline(100 * bayes["accuracy"], color="grey", linestyle=":", label="Bayes ceiling (validation)")
style_epoch_axes(ax, "Frame accuracy against the Bayes ceiling", "frame accuracy (%)", log=False)
ax.legend(fontsize=8)
fig.tight_layout()
save(fig, "12_speech_frames")

# %%
for p, run in runs.items():
    assert run["summary"]["early_valid_acc"] <= 100 * bayes["accuracy"] + 2.0, \
        "no model should beat the Bayes ceiling (beyond the luck of a small split)"
if QUICK:
    print("quick mode: skipping the overfitting checks")
else:
    plain, reg = runs[0.0]["summary"], runs[0.3]["summary"]
    gap_plain = plain["fixed_train_acc"] - plain["fixed_valid_acc"]
    gap_reg = reg["fixed_train_acc"] - reg["fixed_valid_acc"]
    print(f"train - valid gap after {epochs} epochs: {gap_plain:.1f} without D, {gap_reg:.1f} with D")
    assert gap_reg < gap_plain, "D should shrink the gap between training and validation accuracy"

# %% [markdown]
# ## Try this
#
# 1. **More data.** Make the corpus with `n_train=1000` (as `minilstm speech`
#    does) and train both models again. Does the non-regularized model still
#    overfit, and does early stopping still leave a difference between them?
# 2. **Sub-state labels.** Label each frame with its sub-state (`states` from
#    `hmm.sample`) instead of its phone: 60 classes. Change `bayes_scores` to
#    take the argmax over states, and compare the ceiling and the models.
# 3. **Smoothing, not filtering.** A model that may read the whole utterance
#    (a bidirectional LSTM) could reach the *smoothed* posterior
#    `p(s_t | x_1..x_T)`. Add the backward pass (`beta`) to `filter_by_hand`
#    and measure how much higher that ceiling is.
# 4. **Where D goes.** Train with `dropout_mode="recurrent"` (D on `h_{t-1}`
#    too). The evidence about a phone is accumulated over ~10 frames in the
#    recurrent state: does dropping it hurt more here than in language modelling?
