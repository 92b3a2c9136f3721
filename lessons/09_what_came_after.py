# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 9: what came after (variational dropout and weight tying)
#
# **What you will learn**
#
# * the two direct successors of Zaremba et al. (2014), each a small change to
#   this model:
#   **variational dropout** (Gal & Ghahramani 2016), `dropout_mode="variational"`:
#   one mask per sequence, shared by every time step, on the inputs, the
#   outputs *and* the recurrent `h_{t-1}`; and **weight tying** (Press & Wolf
#   2017; Inan et al. 2017), `tie_weights=True`: the decoder is the transposed
#   embedding, so the shared matrix's gradient is the sum of its two uses;
# * the crossings-of-`D` argument of lesson 5, redone for all three placements:
#   how often, and through how many *different* masks, information crosses `D`
#   between two words `t` steps apart; measured on the model's own masks;
# * how to check a tied model independently of finite differences: it must be
#   the untied model with `out.W = embed.W.T`, with the gradients added;
# * the three placements and tying trained on the same data, side by side
#   (one seed, a small corpus: what it shows and what it cannot).
#
# Prerequisites: lesson 5 (placements, the L + 1 argument) and lesson 7
# (overfitting). `minilstm lab` runs the same comparison on 300,000 words of the
# Penn Treebank (1.5 hours of a 2-core CPU; its measured table is in the README).

# %%
import time

import numpy as np

from _lesson import QUICK, banner, pick, plt, save

import minilstm as m
from minilstm import gradcheck as gc
from minilstm.config import get_config
from minilstm.data import make_builtin_corpus
from minilstm.plots import style_epoch_axes
from minilstm.training import train

banner("Lesson 9: what came after")

# %% [markdown]
# ## Three placements, and the masks each draws
#
# `model.mask_names()` lists the masks of one training forward and
# `model.mask_shape(N, T)` their shape. Zaremba's and the recurrent placement
# draw a fresh mask for every time step, `(N, T, H)`; the variational one draws
# one per sequence, `(N, 1, H)`, and `dropout_forward` and `lstm_forward`
# broadcast it over the `T` steps (a view: nothing is copied).

# %%
V, H, L, N, T = 10, 8, 2, 3, 6
rng = np.random.default_rng(0)
tokens, targets = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))
for mode in ("zaremba", "recurrent", "variational"):
    model = m.LSTMLanguageModel(V, H, L, dropout=0.5, dropout_mode=mode, dtype="float64", seed=0)
    _, cache, _ = model.forward(tokens, targets, train=True)
    print(f"{mode:12s} {model.mask_names()}  each {model.mask_shape(N, T)}")
    if mode == "variational":  # the LSTM saw the same h_{t-1} mask at every step
        lc = cache.lstms[0]
        same = all(np.array_equal(lc.h_masks[:, t], lc.h_masks[:, 0]) for t in range(T))
        print(f"{'':12s} rec1 identical at all {T} steps: {same}")
        assert same

# %% [markdown]
# ## Crossings of `D`, for each placement
#
# Follow one piece of information from the word at time `s` to the prediction
# at time `s + t`. It moves *up* `L + 1` times (embedding -> layer 1 -> ... ->
# layer L -> softmax) and *along* time `t` times, each step inside some layer,
# either on `h_{t-1}` (through the gates) or on the cell `c_{t-1} -> c_t`
# (never dropped, in any mode). Say the path takes `k` of its `t` steps on `h`.
#
# | placement | crossings of `D` | distinct masks on the path |
# |---|---|---|
# | `zaremba` | `L + 1`, whatever `t` | `L + 1` |
# | `recurrent` | `L + 1 + k` (up to `L + 1 + t`) | `L + 1 + k`: a fresh one each step |
# | `variational` | `L + 1 + k` (up to `L + 1 + t`) | at most `2L + 1`, whatever `t` |
#
# The variational count grows with `t` like the recurrent one, but the masks
# repeat: a unit of `h_{t-1}` that is dropped is dropped at every step, and one
# that is kept stays kept. So the chance that a given unit carries a memory
# through `h` for `t` steps is `(1 - p)^t` under recurrent masks, but `1 - p`
# under variational ones, for every `t`. That is the whole difference, and we
# can measure it on the masks the models draw (many sequences, so the
# fractions are close to the probabilities; the check allows 0.02):

# %%
p, Nbig, Tbig = 0.5, 2000, 8
big = np.random.default_rng(1).integers(0, V, (Nbig, Tbig))
survive = {}
for mode in ("recurrent", "variational"):
    model = m.LSTMLanguageModel(V, H, 1, dropout=p, dropout_mode=mode, dtype="float64", seed=1)
    _, cache, _ = model.forward(big, big, train=True)
    kept = np.broadcast_to(cache.masks["rec1"], (Nbig, Tbig, H)) != 0  # (N, T, H)
    # fraction of (sequence, unit) pairs whose h survives t consecutive steps
    survive[mode] = [kept[:, :t].all(axis=1).mean() for t in range(1, Tbig + 1)]
print(" t   recurrent (expected (1-p)^t)   variational (expected 1-p)")
for t in range(1, Tbig + 1):
    r, v = survive["recurrent"][t - 1], survive["variational"][t - 1]
    print(f"{t:2d}   {r:.3f} ({(1 - p) ** t:.3f})                {v:.3f} ({1 - p:.3f})")
    assert abs(r - (1 - p) ** t) < 0.02 and abs(v - (1 - p)) < 0.02

# %% [markdown]
# Dropping fixed units of `h_{t-1}` for a whole sequence is the same as
# dropping fixed rows of `Wh` (and a fixed input mask, fixed rows of `Wx`): one
# thinned network per sequence, which is what Gal & Ghahramani's Bayesian
# reading of dropout asks for. One caveat that matters in practice: with the
# state carried from chunk to chunk (truncated BPTT), a "sequence" here is one
# chunk of `T` steps. The masks are redrawn at every forward, i.e. every chunk,
# as in Gal's own Penn Treebank code.
#
# ## Both new pieces pass the gradient check
#
# Forward and backward are hand-written as everywhere else (the backward of a
# broadcast mask is the same product, `dout * mask`, broadcast the same way).
# In float64 with fixed masks, every element of every parameter:

# %%
small_tokens, small_targets = tokens[:, :4], targets[:, :4]
for mode, tie in (("variational", False), ("variational", True), ("zaremba", True)):
    model = m.LSTMLanguageModel(V, 5, 2, dropout=0.5, dropout_mode=mode, tie_weights=tie, init_scale=0.3,
                                dtype="float64", seed=2)
    report = gc.check_model(model, small_tokens, small_targets)
    print(f"{mode:12s} tied={tie!s:5s} worst relative error {report.worst.max_rel_error:.1e} "
          f"({report.worst.name})")
    assert report.passed and report.worst.max_rel_error < 1e-7

# %% [markdown]
# ## Weight tying, checked another way
#
# A tied model has no `out.W`: its scores are `h @ embed.W.T + out.b`. So it
# must be *exactly* the untied model whose `out.W` is a copy of `embed.W.T`:
# the same loss, and the tied gradient of `embed.W` must be the untied
# embedding gradient plus the transposed untied decoder gradient (the matrix is
# used twice, so its gradient is the sum of both uses). The decoder uses every
# row, so the sum is a dense array even where the embedding's own gradient is
# row-sparse (the training loop's fast path).

# %%
kw = dict(dropout=0.4, dropout_mode="variational", init_scale=0.3, dtype="float64", seed=3)
tied = m.LSTMLanguageModel(V, H, L, tie_weights=True, **kw)
untied = m.LSTMLanguageModel(V, H, L, **kw)
untied.params = {**{k: v.copy() for k, v in tied.params.items()}, "out.W": tied.params["embed.W"].T.copy()}
masks = tied.forward(tokens, targets)[1].masks  # the same masks for both
loss_t, ct, _ = tied.forward(tokens, targets, masks=masks)
loss_u, cu, _ = untied.forward(tokens, targets, masks=masks)
gt, gu = tied.backward(ct), untied.backward(cu)
err = np.abs(gt["embed.W"] - (gu["embed.W"] + gu["out.W"].T)).max()
print(f"parameters: tied {tied.num_params():,}, untied {untied.num_params():,} (V x H = {V * H} fewer)")
print(f"loss tied {loss_t:.12f}, untied {loss_u:.12f}; max |tied grad - (embed grad + out grad^T)| = {err:.1e}")
assert abs(loss_t - loss_u) < 1e-12 * abs(loss_u) and err < 1e-12

# %% [markdown]
# ## On the same data: none, recurrent, zaremba, variational, and tying
#
# Lesson 7's overfitting setting, on the built-in corpus: a large model, little
# training text, the same recipe for every run, only the regularization
# changes. One seed per setting: differences of a few percent are within what
# another seed could change, so read the table for large effects only.

# %%
corpus = make_builtin_corpus(train_tokens=pick(1_000, 2_000), valid_tokens=pick(2_000, 10_000),
                             test_tokens=pick(2_000, 10_000))
base = get_config("tiny", hidden_size=pick(24, 200), epochs=pick(2, 12), max_epoch=pick(1, 8), lr_decay=1.5,
                  batch_size=5, eval_batch_size=10)
SETTINGS = [("no dropout", "none", False), ("recurrent", "recurrent", False), ("zaremba", "zaremba", False),
            ("variational", "variational", False), ("zaremba + tied", "zaremba", True),
            ("variational + tied", "variational", True)]
results = {}
for label, mode, tie in SETTINGS:
    t0 = time.perf_counter()
    res = train(base, corpus=corpus, dropout=0.0 if mode == "none" else 0.5, dropout_mode=mode, tie_weights=tie,
                progress=False, log=lambda *a, **k: None)
    results[label] = res
    h = res.history
    best = min(r["valid_ppl"] for r in h)
    print(f"{label:20s} train {h[-1]['train_ppl']:7.2f}  best valid {best:7.2f}  final valid "
          f"{h[-1]['valid_ppl']:7.2f}  test {res.test_ppl:7.2f}  ({time.perf_counter() - t0:.0f} s)")

# %%
fig, ax = plt.subplots(figsize=(9, 5))
colours = {"none": "black", "recurrent": "C3", "zaremba": "C0", "variational": "C2"}
for label, mode, tie in SETTINGS:
    h = results[label].history
    ax.plot([r["epoch"] for r in h], [r["valid_ppl"] for r in h], "--o" if tie else "-o", color=colours[mode],
            ms=4, label=label)
ax.axhline(np.exp(corpus.entropy["valid"]), color="k", ls=":", label="best possible (true entropy)")
title = f"{base.num_layers}x{base.hidden_size} LSTM on {len(corpus.train):,} words: validation perplexity"
style_epoch_axes(ax, title, "validation perplexity")  # log y-axis in plain numbers, whole epochs
ax.legend(fontsize=8)
save(fig, "09_what_came_after")

# %% [markdown]
# What to look for in the table and the figure (full mode): whether the
# no-dropout model overfits (its validation perplexity turning back up, as in
# lesson 7), whether the recurrent placement pays for corrupting `h` at every
# step, and where the variational runs and the tied runs land against
# `zaremba`. The check below asserts only what this run prints: that every
# dropout placement ends below the unregularized model on validation text.
# The size and order of the rest are for you to read, not for one seed to
# settle; the published comparisons (Gal & Ghahramani's Table 1 on PTB:
# medium 81.9 / 79.7 valid / test with variational dropout, against Zaremba's
# 86.2 / 82.7) used full-size models, the whole corpus and many more epochs.

# %%
final = {label: results[label].history[-1]["valid_ppl"] for label, _, _ in SETTINGS}
if QUICK:
    print("quick mode: too little training to compare the placements; skipping the check")
else:
    worse = [label for label in final if label != "no dropout" and final[label] >= final["no dropout"]]
    assert not worse, f"these placements did not beat no dropout on validation: {worse}"
    print("every dropout placement ends below no dropout on validation perplexity")

# %% [markdown]
# ## Try this
#
# 1. Gal & Ghahramani also drop whole *words* (rows of the embedding) with one
#    mask per sequence. Add it in `LSTMLanguageModel._body` as a mask of shape
#    `(N, T, 1)` built from the tokens (a dropped word is dropped everywhere in
#    the sequence) and check your gradient with `gradcheck.check_model`.
# 2. Put the variational masks on `c_{t-1}` as well as on `h_{t-1}`. Redo the
#    crossings table: which paths are now left without `D`?
# 3. Tie the weights with a different hidden size for the last layer than the
#    embedding (an extra projection, as Inan et al. do for large models). What
#    must change in `param_shapes` and `_tied_decoder_backward`?
# 4. Run `minilstm lab --runs zaremba variational --epochs 3` and compare with
#    the table above. Which conclusions survive the change of data?
