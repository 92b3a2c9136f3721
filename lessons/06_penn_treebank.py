# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 6: the Penn Treebank language model
#
# **What you will learn**
#
# * the data: Mikolov's Penn Treebank (10k words, ~930k training tokens), and
#   how minilstm loads it (`minilstm.data.load_corpus`);
# * batching for truncated BPTT: `batchify` (N parallel streams) and
#   `iterate_chunks` (T steps at a time, state carried across chunks);
# * the paper's recipe (the `small` configuration) and its learning-rate schedule;
# * perplexity: what it measures, and what an untrained model scores;
# * a short training run with `minilstm.training.train`, and sampling text;
# * how to launch the full reproduction: `minilstm train --dataset ptb --config small`.
#
# Data: the lesson looks for the PTB files in `$MINILSTM_DATA`, in
# `../shared/data/ptb` next to the repository, and in minilstm's download cache
# (it never downloads anything itself). Without them, or in quick mode, it uses
# the built-in synthetic corpus instead, and everything below works the same.

# %%
import math
import os
import time
from pathlib import Path

import numpy as np

from _lesson import QUICK, REPO, banner, pick, plt, save

import minilstm as m
from minilstm.config import get_config
from minilstm.data import Corpus, DataError, batchify, iterate_chunks, load_corpus, make_builtin_corpus, num_chunks
from minilstm.data.ptb import find_ptb_dir
from minilstm.sample import format_text, sample
from minilstm.training import evaluate, train

banner("Lesson 6: the Penn Treebank language model")

# %% [markdown]
# ## The data

# %%
def find_ptb():
    """The PTB folder if the files are on this machine, else None (no download)."""
    candidates = [os.environ.get("MINILSTM_DATA"), REPO.parent / "shared" / "data" / "ptb"]
    for c in candidates:
        if c and (Path(c) / "ptb.train.txt").is_file():
            return Path(c)
    try:
        return find_ptb_dir(download=False)          # minilstm's cache folder
    except DataError:
        return None


ptb_dir = None if QUICK else find_ptb()
if ptb_dir is not None:
    corpus = load_corpus("ptb", data_dir=ptb_dir, download=False)
else:
    print("(quick mode or no PTB files found: using the built-in corpus)")
    corpus = make_builtin_corpus(train_tokens=pick(30_000, 200_000), valid_tokens=pick(4_000, 20_000),
                                 test_tokens=pick(4_000, 20_000))
V = len(corpus.vocab)
print(corpus.description)
print(f"vocabulary V = {V:,} words; train {len(corpus.train):,}, valid {len(corpus.valid):,}, "
      f"test {len(corpus.test):,} tokens")
print("the first 30 training tokens:\n  " + " ".join(corpus.vocab[i] for i in corpus.train[:30]))

# %% [markdown]
# A corpus is a vocabulary (`corpus.vocab[i]` is the word with id `i`) and three
# streams of ids. In PTB, rare words are already replaced by `<unk>`, numbers by
# `N`, and every sentence ends with `<eos>`, an ordinary word the model predicts
# like any other.
#
# ## Batching for truncated BPTT
#
# The training stream is cut into `N` equal rows read in parallel
# (`batchify`), and each row is read in chunks of `T` steps (`iterate_chunks`):
# the input `x` is `T` consecutive tokens, the target `y` the same tokens shifted
# by one. Chunk `i + 1` starts where chunk `i` stopped in every row, so the final
# LSTM state of one chunk is the right initial state of the next (lesson 4).
# On the letters of the alphabet:

# %%
letters = np.arange(26)                              # a .. z as ids 0 .. 25
toy = batchify(letters, 3)                           # (N=3, L=8): the leftover 'y z' is dropped
abc = lambda row: "".join(chr(ord("a") + int(i)) for i in row)  # noqa: E731
print("batchify(a..z, N=3):", [abc(r) for r in toy])
prev_x = None
for k, (x, y) in enumerate(iterate_chunks(toy, 3)):
    print(f"chunk {k}: x = {[abc(r) for r in x]}  y = {[abc(r) for r in y]}")
    assert np.array_equal(y[:, :-1], x[:, 1:]), "y is x shifted by one step"
    if prev_x is not None:
        assert np.array_equal(x[:, 0], prev_x[:, -1] + 1), "each chunk continues the previous one in every row"
    prev_x = x
print(f"num_chunks = (L - 1) // T = {num_chunks(toy, 3)}")

# %%
N_show, T_show = 4, 5
small_stream = batchify(np.arange(N_show * 23), N_show)
fig, ax = plt.subplots(figsize=(10, 2.8))
n_ch = num_chunks(small_stream, T_show)
chunk_id = np.full(small_stream.shape, -1.0)
for k in range(n_ch):
    chunk_id[:, k * T_show:(k + 1) * T_show] = k
ax.imshow(np.ma.masked_less(chunk_id, 0), cmap="tab10", aspect="auto", alpha=0.55, vmin=0, vmax=9)
for (r, c), v in np.ndenumerate(small_stream):
    ax.text(c, r, str(v), ha="center", va="center", fontsize=7)
for k in range(1, n_ch + 1):
    ax.axvline(k * T_show - 0.5, color="k", lw=1.5)
for k in range(n_ch):
    ax.text((k + 0.5) * T_show - 0.5, -0.85, f"chunk {k}", ha="center", va="center", fontsize=9)
ax.set_ylim(N_show - 0.5, -1.2)
ax.set_yticks(range(N_show), [f"row {r}" for r in range(N_show)])
ax.set_xlabel(f"position in the row (colours: chunks of T = {T_show}; white: targets only or leftovers)")
ax.set_title(f"batchify(ids 0..{N_show * 23 - 1}, N={N_show}): each row a contiguous piece of the stream, "
             "read left to right chunk by chunk", pad=4)
save(fig, "06_batching")

# %% [markdown]
# Each row holds a contiguous quarter of the stream (row 1 starts at id 23), and
# the same chunk index is processed for all rows at once: one `(N, T)` batch.
#
# ## The recipe
#
# The paper's non-regularized "small" model, section 4.1 and its code: 2 layers
# of 200 units, unrolled 20 steps, batch 20, weights uniform in [-0.1, 0.1], SGD
# with learning rate 1 for 4 epochs, then halved every epoch, 13 epochs in all,
# gradient norm clipped at 5. The medium and large models add dropout 0.5 and
# 0.65 (Zaremba's placement) and train longer.

# %%
small = get_config("small")
print({k: v for k, v in small.to_dict().items() if k in (
    "num_layers", "hidden_size", "num_steps", "batch_size", "dropout", "init_scale", "lr", "lr_decay",
    "max_epoch", "epochs", "max_grad_norm")})
print("learning rate by epoch:", [round(small.lr_at(e), 4) for e in range(1, small.epochs + 1)])
assert small.lr_at(4) == 1.0 and small.lr_at(5) == 0.5, "lr 1 for max_epoch=4 epochs, then halved"

# %% [markdown]
# ## Perplexity
#
# A language model gives each next word a probability. Its perplexity on a text
# of `n` words is
#
# ```
# perplexity = exp( -(1/n) * sum_t log p(w_t | w_1 .. w_{t-1}) )
# ```
#
# the exponential of the average negative log-likelihood per word. It reads as
# "as uncertain as a uniform choice among that many words": a model that knows
# nothing (uniform over the vocabulary) scores exactly `V`; counting word
# frequencies alone (a unigram model) does much better; the paper's small model
# reaches 114.5 on the PTB test set, the large regularized one 78.4.
#
# `minilstm.training.evaluate(model, ids, batch_size, num_steps)` runs the model
# over a stream (dropout off, state carried) and returns the perplexity. An
# untrained model's scores are all near 0, so its predictions are nearly uniform:

# %%
valid_ids = corpus.valid[:pick(2_000, 20_000)]
fresh = m.LSTMLanguageModel(V, pick(32, 200), 2, init_scale=0.1, seed=0)
ppl_fresh = evaluate(fresh, valid_ids, batch_size=10, num_steps=20).perplexity
counts = np.bincount(corpus.train, minlength=V) + 1.0          # add-one smoothing
unigram_logp = np.log(counts / counts.sum())
ppl_unigram = math.exp(-unigram_logp[valid_ids].mean())
print(f"untrained LSTM: perplexity {ppl_fresh:,.1f}   (uniform: V = {V:,})")
print(f"unigram model : perplexity {ppl_unigram:,.1f}")
assert abs(ppl_fresh / V - 1) < 0.1, f"an untrained model should score about V = {V}, got {ppl_fresh:.1f}"

# %% [markdown]
# ## A short training run
#
# `minilstm.training.train` is the whole training loop of the paper (truncated
# BPTT, clipping, the schedule, evaluation). It takes a config name or `Config`,
# overrides for any field, and optionally a ready `Corpus`, here a slice of the
# training stream so that the run takes well under a minute (full mode) or a
# few seconds (quick mode). `on_step` is called after every SGD step: we use it to
# record the training loss of each chunk.

# %%
n_train = pick(30_000, 160_000)
slice_corpus = Corpus(name=corpus.name, vocab=corpus.vocab, train=corpus.train[:n_train],
                      valid=valid_ids, test=corpus.test[:pick(2_000, 20_000)],
                      description=f"{corpus.name}, first {n_train:,} training tokens")
overrides = dict(epochs=1, eval_batch_size=10, dataset=corpus.name)
if QUICK:
    overrides.update(hidden_size=48, num_steps=10, batch_size=10)
cfg = get_config("small", **overrides)
steps_log = []
t0 = time.perf_counter()
result = train(cfg, corpus=slice_corpus, progress=False, on_step=lambda info: steps_log.append(info["loss"]))
elapsed = time.perf_counter() - t0
row = result.history[-1]
print(f"{len(steps_log)} SGD steps on {n_train:,} tokens ({100 * n_train / len(corpus.train):.0f}% of an "
      f"epoch) in {elapsed:.0f} s: {row['tokens_per_s']:,.0f} tokens/s")
print(f"valid perplexity {result.valid_ppl:,.1f}, test perplexity {result.test_ppl:,.1f}")

# %% [markdown]
# **Check.** After a fraction of an epoch the model must already beat the uniform
# model by far, and the unigram model too (it has learned at least the word
# frequencies, and some context).

# %%
assert result.valid_ppl < 0.5 * V, f"valid perplexity {result.valid_ppl:.0f} should be far below V = {V}"
assert result.valid_ppl < ppl_unigram, (f"valid perplexity {result.valid_ppl:.0f} should beat the unigram "
                                        f"model ({ppl_unigram:.0f})")
print("the short run learns")

# %%
chunk_ppl = np.exp(np.array(steps_log) / cfg.num_steps)        # loss = NLL summed over T, mean over N
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.semilogy(np.arange(1, len(chunk_ppl) + 1), chunk_ppl, color="C0", lw=1, alpha=0.8,
            label="training perplexity of each chunk")
ax.axhline(V, color="k", ls=":", label=f"uniform over the vocabulary (V = {V:,})")
ax.axhline(ppl_unigram, color="C2", ls="--", label=f"unigram (word frequencies): {ppl_unigram:,.0f}")
ax.axhline(result.valid_ppl, color="C3", lw=2, label=f"validation after this run: {result.valid_ppl:,.0f}")
if result.best_perplexity:
    ax.axhline(result.best_perplexity["valid"], color="C4", ls="-.",
               label=f"best possible (true entropy of the corpus): {result.best_perplexity['valid']:.2f}")
elif corpus.name == "ptb":
    ax.axhline(120.7, color="C4", ls="-.", label="paper, small model after 13 epochs: 120.7 (valid)")
ax.set_xlabel("SGD step (one chunk of N x T tokens)")
ax.set_ylabel("perplexity")
ax.set_title(f"{corpus.name}: {cfg.num_layers}x{cfg.hidden_size} LSTM, first {n_train:,} training tokens")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
save(fig, "06_short_run")

# %% [markdown]
# The perplexity falls fast from about `V` (uniform) towards the unigram level:
# the model first learns which words are frequent, and only then starts using
# the context to get below it. The chunks are noisy (each is only `N x T`
# words) and the learning rate is still 1 (the schedule only decays it from
# epoch 5). The paper's line, far below, is where 13 full epochs take you.
#
# ## Sampling text
#
# `minilstm.sample.sample` feeds a prime, then repeatedly draws the next word
# from `softmax(scores / temperature)` and feeds it back. After so little
# training expect word salad with the right word frequencies and some local
# grammar; a fully trained model writes plausible Wall Street Journal prose.

# %%
model = result.model
prime = "the" if "the" in corpus.word_to_id else corpus.vocab[0]
for temperature in (0.7, 1.0):
    words = sample(model, corpus.vocab, length=30, temperature=temperature, prime=prime,
                   rng=np.random.default_rng(0))
    print(f"temperature {temperature}: {prime} " + format_text(words).replace("\n", " / "))

# %% [markdown]
# ## The full reproduction
#
# The paper's small model (no dropout) is one command; with `--out` it keeps
# checkpoints, `metrics.jsonl` and a plot, and Ctrl-C then `--resume` continues:
#
# ```bash
# minilstm train --dataset ptb --config small --out runs/small
# minilstm train --dataset ptb --config medium --out runs/medium   # dropout 0.5, Zaremba's placement
# minilstm eval runs/small/best.npz                                # valid and test perplexity
# minilstm sample runs/small/best.npz --prime "the market" --length 40
# ```
#
# Expected result (paper, Table 1, valid / test perplexity): small,
# non-regularized: 120.7 / 114.5; medium regularized: 86.2 / 82.7; large
# regularized: 82.2 / 78.4.

# %%
tok_s = row["tokens_per_s"]
if corpus.name == "ptb" and not QUICK:
    epoch_tokens = len(corpus.train)
    est_h = 13 * epoch_tokens / tok_s / 3600
    print(f"at this run's speed ({tok_s:,.0f} tokens/s), the 13 epochs of `small` take about {est_h:.1f} h "
          "of training on this CPU (plus evaluation); lesson 8 is about making it faster")
else:
    print(f"(measured {tok_s:,.0f} tokens/s on the built-in corpus with a "
          f"{cfg.num_layers}x{cfg.hidden_size} model; PTB's softmax over 10,000 words is much slower)")

# %% [markdown]
# ## Try this
#
# 1. Run the short run with `dropout=0.5` (Zaremba's placement). Is the training
#    perplexity after the same number of steps higher or lower? Why is that not
#    yet a sign of anything? (Lesson 7.)
# 2. Call `evaluate(model, valid_ids, batch_size=1)` instead of `batch_size=10`.
#    The perplexity changes a little: why? (Hint: with 10 streams, each starts
#    from a zero state.)
# 3. Train with `num_steps=5` instead of 20. What do you expect from the shorter
#    BPTT window, and what do you observe in this short run?
# 4. Sample at temperature 0.3 and 2.0. Describe the difference.
