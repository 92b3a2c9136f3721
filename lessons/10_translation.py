# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 10: translation is language modelling
#
# **What you will learn**
#
# * how Zaremba et al. (2014, section 4.3, Table 3) translate English into
#   French with the *same* regularized LSTM, following Sutskever, Vinyals & Le
#   (2014): one LSTM reads `reversed(source) <sep> target <eos>` as a single
#   sequence and is trained as a language model on it; and why the source is
#   read backwards;
# * the **masked loss**: per-token weights 1 on the target words and `<eos>`,
#   0 on the source, the separator and the padding; you will recompute it by
#   hand from `log_softmax`, check that padding changes nothing, and see that a
#   model that knows nothing has perplexity exactly `Vt`;
# * **decoding** without the reference (no teacher forcing): greedy decoding
#   written by hand with `model.start` / `model.step`, then beam search (the
#   paper's beam is 12) through `minilstm.decoding`;
# * **BLEU**, the paper's translation metric, computed by hand (clipped n-gram
#   precisions, brevity penalty, geometric mean) and checked against sacreBLEU;
#   and why even a perfect translator scores less than 100 on this corpus.
#
# Prerequisites: lesson 6 (perplexity) and lesson 7 (dropout against
# overfitting). It needs sacreBLEU (`pip install -e ".[paper]"`).
# `minilstm translate` runs the full comparison of Table 3 on the same built-in
# corpus (both methods, several seeds, early stopping).

# %%
import math
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from _lesson import QUICK, banner, pick, plt, save

from minilstm.data.parallel import (batch_pairs, encode_pair, make_builtin_parallel, num_target_tokens,
                                    translations)
from minilstm.decoding import beam_search, greedy_decode
from minilstm.experiments.translate import (TranslateConfig, evaluate_perplexity, load_translator, train_run,
                                            translate_ids)
from minilstm.models import TranslationModel
from minilstm.ops.affine import affine_forward
from minilstm.ops.embedding import embedding_forward
from minilstm.ops.softmax import log_softmax
from minilstm.plots import epoch_rows, read_metrics, style_epoch_axes

try:
    import sacrebleu
except ImportError:
    raise ImportError("this lesson needs sacreBLEU: pip install -e '.[paper]' (or pip install sacrebleu)") from None

banner("Lesson 10: translation is language modelling")

# %% [markdown]
# ## One sequence: the source reversed, a separator, the target
#
# A language model assigns `p(w_1 .. w_T) = prod_t p(w_t | w_<t)`. Sutskever et
# al. turn translation into that problem: write the source sentence
# `x = x_1 .. x_S` backwards, a separator, then the translation
# `y = y_1 .. y_M` and an end mark, and let one LSTM read the whole thing.
# Scored only on the part after `<sep>`, the model gives
#
# ```
# log p(y | x) = sum_{j=1}^{M+1} log p(y_j | y_<j, x)        (y_{M+1} = <eos>)
# ```
#
# a *conditional* language model: everything the model knows about the source
# must be in its state `(h, c)` at `<sep>`. Zaremba et al. train exactly this
# (a 4 x 1000 LSTM on WMT'14 English -> French) without and with dropout on the
# non-recurrent connections: test perplexity 5.8 -> 5.0, BLEU 25.9 -> 29.03.
#
# WMT is gigabytes and days of training; minilstm's built-in corpus is a
# miniature made by a grammar in a fraction of a second, with what makes
# translation more than word-for-word lookup: agreement, adjectives after the
# noun, three tenses, `ne ... pas`, `du` / `au`, and random **synonyms** on the
# French side (its best possible perplexity is known: it is not 1).

# %%
corpus = make_builtin_parallel()
Vs, Vt = corpus.sizes
EOS = corpus.eos_id
print(corpus)
print(f"best possible perplexity (the synonyms cannot be predicted): {corpus.best_perplexity['test']:.4f} (test)")
for src, tgt in corpus.train[:3]:
    print(f"  {' '.join(corpus.decode_src(src)):45s} -> {' '.join(corpus.decode_tgt(tgt))}")

# %% [markdown]
# `encode_pair` turns one pair into what the model sees. The input vocabulary
# holds the `Vs` source words, the separator (id `Vs`) and the `Vt` target
# words shifted by `Vs + 1` (a French word fed back in is not the same input as
# an English word); the softmax is over the `Vt` target words only, `<eos>`
# among them. Over the source nothing is predicted: its target is a dummy 0,
# with weight 0.

# %%
def input_word(i):
    """The word behind an input id: a source word, the separator, or a target word (marked +)."""
    return corpus.src_vocab[i] if i < Vs else "<sep>" if i == Vs else corpus.tgt_vocab[i - Vs - 1] + "+"


src, tgt = min(corpus.train[:200], key=lambda pair: len(pair[0]) + len(pair[1]))   # a short pair
inputs, targets, weights = encode_pair(src, tgt, Vs, EOS)
S, M = len(src), len(tgt)
print("source:", " ".join(corpus.decode_src(src)), "   target:", " ".join(corpus.decode_tgt(tgt)))
print(f"S = {S} source words, M = {M} target words, T = S + 1 + M = {len(inputs)}\n")
print(f"{'t':>3}  {'input':>12}  {'target':>10}  weight")
for t in range(len(inputs)):
    shown = corpus.tgt_vocab[targets[t]] if weights[t] else "-"
    print(f"{t:3d}  {input_word(inputs[t]):>12}  {shown:>10}  {weights[t]:.0f}")
assert weights.sum() == M + 1 == num_target_tokens([(src, tgt)]), "M target words and <eos> are counted"

# %% [markdown]
# **Why backwards.** Read forwards, the first source word is `S` steps away from
# the prediction of the first target word; read backwards it is right before
# `<sep>`. Align word `j` of the source with word `j` of the target (roughly
# true for English and French) and count the steps between reading `x_j`
# (position `j - 1` forwards, `S - j` backwards) and predicting `y_j`
# (position `S + j - 1`): `S` steps for every `j` forwards, `2 j - 1`
# backwards. For our pair, and over the whole training set:

# %%
j = np.arange(1, min(S, M) + 1)
print("this pair, read forwards: ", np.full(len(j), S), "   backwards:", 2 * j - 1)
forwards, backwards = [], []
for s, t in corpus.train:
    jj = np.arange(1, min(len(s), len(t)) + 1)
    forwards += [len(s)] * len(jj)
    backwards += list(2 * jj - 1)
print(f"training set, mean steps from x_j to y_j: forwards {np.mean(forwards):.2f}, backwards "
      f"{np.mean(backwards):.2f}; for the first word: forwards {np.mean([len(s) for s, _ in corpus.train]):.2f}, "
      "backwards 1")

# %% [markdown]
# The mean distance hardly changes, but the *shortest* ones become very short.
# Sutskever et al.'s explanation: the first target words now sit right after
# the words they depend on, so backpropagation "establishes communication"
# between source and target early in training, and the rest follows. (They
# found that reversing the source lowered the test perplexity and raised BLEU
# markedly.)
#
# ## The masked loss
#
# The weights enter the softmax cross-entropy (`ops/softmax.py`):
#
# ```
# loss = (1/N) sum_{n,t} w[n,t] * -log p(y[n,t] | inputs[n, <=t])
# ```
#
# summed over each sentence and averaged over the `N` sentences (the language
# model's scale). With `w = 1` on the target words and `<eos>` only, this is
# `(1/N) sum_n -log p(y^(n) | x^(n))`. Let us recompute it by hand on a small
# untrained model: the model's own pieces (embedding, the LSTM stack, the
# output affine layer) give the scores, `log_softmax` the log-probabilities,
# and we add up `-log p` over the target positions only.

# %%
small = TranslationModel(Vs, Vt, EOS, hidden_size=16, num_layers=2, dtype="float64", seed=0)


def log_probs_by_hand(model, inputs):
    """(N, T, Vt) log p(. | inputs up to t) at every position: embedding -> stack -> affine -> log_softmax."""
    x, _ = embedding_forward(inputs, model.params["embed.W"])
    top, _, _ = model.stack.forward(x, model.init_state(inputs.shape[0]), model.params, False, None)
    scores, _ = affine_forward(top, model.params["out.W"], model.params["out.b"])
    return log_softmax(scores)


logp = log_probs_by_hand(small, inputs[None])[0]                  # (T, Vt)
per_word = [-logp[t, targets[t]] for t in range(S, S + M + 1)]    # the M + 1 counted positions only
loss_model, _ = small.forward(inputs[None], targets[None], weights[None], train=False)
print("-log p of each target word and <eos>:", np.round(per_word, 3))
print(f"their sum {sum(per_word):.10f}   the model's loss {loss_model:.10f}")
assert abs(sum(per_word) - loss_model) < 1e-9, "the loss should be -log p summed over the target tokens only"

# %% [markdown]
# The source positions have log-probabilities too (the model predicts *some*
# target word there), but with weight 0 they add nothing, to the loss and to
# the gradient.
#
# **Padding.** A batch holds sentences of different lengths, right-padded to
# the longest (input 0, target 0, weight 0). The LSTM reads left to right, so
# what comes after a sentence's end cannot change anything before it, and the
# weight 0 removes the padded positions from the sum. So a sentence scores the
# same alone and padded in a batch (evaluation mode: no dropout):

# %%
long_pair = max(corpus.train[:200], key=lambda pair: len(pair[0]) + len(pair[1]))
batch_inputs, batch_targets, batch_weights = batch_pairs([(src, tgt), long_pair], 2, Vs, EOS, dtype="float64")[0]
print("the batch's weights (row 0 is our pair, padded):\n", batch_weights.astype(int))
nll_alone = {k: small.nll(*(a[None] for a in encode_pair(s, t, Vs, EOS)))[0]
             for k, (s, t) in enumerate([(src, tgt), long_pair])}
nll_batch, counted = small.nll(batch_inputs, batch_targets, batch_weights)
print(f"alone: {nll_alone[0]:.10f} + {nll_alone[1]:.10f} = {nll_alone[0] + nll_alone[1]:.10f}")
print(f"in one padded batch:                         {nll_batch:.10f}   ({counted:.0f} counted tokens)")
assert abs(nll_batch - (nll_alone[0] + nll_alone[1])) < 1e-9, "padding must not change the loss"
row0 = log_probs_by_hand(small, batch_inputs)[0]
assert np.allclose(row0[:len(inputs)], logp, atol=1e-12), "the padded row's log-probs should be the pair's own"

# %% [markdown]
# **Perplexity** is the exponential of the average target NLL per counted
# token, `<eos>` included:
#
# ```
# perplexity = exp( sum_pairs -log p(y | x) / sum_pairs (M + 1) )
# ```
#
# A model that knows nothing gives every target word probability `1 / Vt`, so
# its perplexity is exactly `Vt`: zero output weights make every score equal.

# %%
few = corpus.valid[:100]
uniform = TranslationModel(Vs, Vt, EOS, hidden_size=16, num_layers=1, dtype="float64", seed=0)
uniform.params["out.W"][:] = 0.0
uniform.params["out.b"][:] = 0.0
ppl_uniform = evaluate_perplexity(uniform, few)
print(f"uniform model: perplexity {ppl_uniform:.6f}  (Vt = {Vt})")
nll_sum = sum(small.nll(*(a[None] for a in encode_pair(s, t, Vs, EOS)))[0] for s, t in few)
ppl_by_hand = math.exp(nll_sum / num_target_tokens(few))
print(f"untrained model (random weights): {ppl_by_hand:.4f} by hand, {evaluate_perplexity(small, few):.4f} "
      "by evaluate_perplexity")
assert abs(ppl_by_hand - evaluate_perplexity(small, few)) < 1e-9, "perplexity = exp(target NLL / target tokens)"
print(f"the best possible (the corpus's own P(target | source)): {corpus.best_perplexity['valid']:.4f}")
assert abs(ppl_uniform - Vt) < 1e-6, "a uniform model should have perplexity Vt"

# %% [markdown]
# ## Training, without and with dropout
#
# `train_run` is what `minilstm translate` runs for each model: batches of
# pairs of similar length, Adam with the gradient norm clipped at 5 (as in the
# paper), the validation perplexity after every epoch, the best checkpoint
# kept, then the test perplexity and sacreBLEU of greedy and beam-12
# translations. Here one layer of 128 units trains on the first 1,500 pairs
# for 30 epochs, with Adam's step size raised to 4e-3 (the experiment's default
# is 2e-3) to get there sooner: once without dropout and once with `p = 0.2`
# on the non-recurrent connections (the paper's translation models used 0.2).
# That is about a minute per model on a 2-core CPU. Quick mode trains one tiny
# model for a few seconds, which translates badly but runs every line.

# %%
base = TranslateConfig(hidden_size=pick(48, 128), num_layers=1, lr=4e-3, epochs=pick(3, 30), patience=pick(3, 30),
                       train_pairs=pick(1000, 1500), eval_pairs=pick(100, 500), batch_size=32)
dropouts = pick([0.0], [0.0, 0.2])
workdir = Path(tempfile.mkdtemp(prefix="lesson10-"))   # the run folders: a temporary folder
runs = {}
for p in dropouts:
    cfg = TranslateConfig(**{**base.to_dict(), "dropout": p, "name": f"lesson10-p{p}"})
    summary = train_run(cfg, corpus, workdir / f"p{p}", log=print)
    runs[p] = {"summary": summary, "history": epoch_rows(read_metrics(workdir / f"p{p}"))}
    print(f"dropout {p}: best valid ppl {summary['valid_ppl']:.3f} at epoch {summary['best_epoch']}, "
          f"test ppl {summary['test_ppl']:.3f}, test BLEU greedy {summary['bleu_greedy']:.1f} / "
          f"beam 12 {summary['bleu_beam12']:.1f}  ({summary['train_time_s']:.0f} s)\n")

# %% [markdown]
# Each run folder holds the best checkpoint; `load_translator` reads it back.
# We decode with the model of lower validation perplexity (what you would pick
# without looking at the test set).

# %%
chosen = min(runs, key=lambda p: runs[p]["summary"]["valid_ppl"])
model = load_translator(workdir / f"p{chosen}", log=print).model
test = corpus.test[:base.eval_pairs]
sources = [s for s, _ in test]
references = [" ".join(corpus.decode_tgt(t)) for _, t in test]
print(f"decoding with the dropout-{chosen} model on {len(test)} test sentences")

# %% [markdown]
# ## Greedy decoding, by hand
#
# At test time there is no reference: the model must feed itself its own words.
# `model.start(sources)` reads the reversed source and `<sep>` from a zero
# state and returns the state there and `log p(y_1 | x)`; `model.step(words,
# state)` feeds the words just chosen and returns the next log-probabilities.
# Greedy decoding takes the most likely word at every step until `<eos>` (or a
# length limit, `2 S + 10`, in case the model never stops):

# %%
def greedy_by_hand(model, source):
    """One sentence: the argmax word at each step, fed back, until <eos> or 2 S + 10 tokens."""
    words = []
    ### BEGIN DUPLICATE [translation:greedy] (instead: words = greedy_decode(model, [source])[0])
    state, lp = model.start([source])                  # lp (1, Vt): log p(y_1 | x)
    for _ in range(2 * len(source) + 10):             # the length limit, max_target_length(S)
        word = int(np.argmax(lp[0]))                   # the most likely word (the lowest id on ties)
        if word == model.eos:
            break
        words.append(word)
        state, lp = model.step(np.array([word]), state)   # feed it back: the model sees its own output
    ### END DUPLICATE
    return words


n_hand = pick(10, 40)
by_hand = [greedy_by_hand(model, s) for s in sources[:n_hand]]
greedy = greedy_decode(model, sources)          # all sentences at once, in one batch
assert by_hand == greedy[:n_hand], "greedy decoding by hand should equal minilstm.decoding.greedy_decode"
print(f"greedy by hand == greedy_decode on {n_hand} sentences\n")
for k in range(3):
    print("source:   ", " ".join(corpus.decode_src(sources[k])))
    print("reference:", references[k])
    print("greedy:   ", " ".join(corpus.decode_tgt(greedy[k])), "\n")

# %% [markdown]
# **No teacher forcing at test time.** During training (and for perplexity)
# the model always sees the *reference* prefix `y_<j`; it never learns what to
# do after its own mistake. Compare, on the same sentence, the model's argmax
# word at each position when given the reference prefix (what training and
# perplexity measure) with the words it writes on its own (what BLEU measures):

# %%
k = next((k for k in range(len(test)) if greedy[k] != list(test[k][1])), 0)   # a sentence greedy gets wrong
x_in, y_out, w_in = encode_pair(*test[k], Vs, EOS)
forced = log_probs_by_hand(model, x_in[None].astype(np.int64))[0].argmax(axis=1)[w_in == 1]
print("reference:                  ", references[k], "<eos>")
print("argmax given the reference: ", " ".join(corpus.decode_tgt(forced)))
print("greedy, on its own words:   ", " ".join(corpus.decode_tgt(greedy[k])), "<eos>")

# %% [markdown]
# Given the reference prefix, each word is one guess at one position, and a
# wrong guess costs only that position. On its own, the model conditions
# everything after its first deviation (a mistake, or just another synonym) on
# its own words, a prefix it never saw in training. Perplexity measures the
# first situation; BLEU, which scores the sentences the decoder writes, the
# second.

# %% [markdown]
# ## Beam search
#
# Greedy commits to one word at a time; a word that looks best now can lead to
# a worse sentence. Beam search keeps the `K` best partial translations
# ("hypotheses", ranked by their summed log-probability `log p(y_<=j | x)`),
# extends each by every word, and keeps the `K` best of those, until the best
# finished one can no longer be beaten (`minilstm/decoding.py` explains every
# step). The paper uses `K = 12`. With `return_all=True` it returns the n-best
# list of each sentence:

# %%
nbest = beam_search(model, sources[:1], beam_size=4, return_all=True)[0]
print("source:", " ".join(corpus.decode_src(sources[0])))
for h in nbest:
    print(f"  log p = {h.score:8.4f}  p = {math.exp(h.score):.4f}  {' '.join(corpus.decode_tgt(h.tokens))}"
          + ("" if h.finished else "  (cut at the maximum length)"))

# %% [markdown]
# A beam of 1 keeps only the best word at each step: it *is* greedy decoding.
# A wider beam searches more, and usually finds translations with a higher
# log-probability (never guaranteed: the beam can prune greedy's prefix):

# %%
assert beam_search(model, sources, beam_size=1) == greedy, "a beam of 1 should be greedy decoding"
score_1 = np.array([hyps[0].score for hyps in beam_search(model, sources, beam_size=1, return_all=True)])
score_12 = np.array([hyps[0].score for hyps in beam_search(model, sources, beam_size=12, return_all=True)])
better, worse = int(np.sum(score_12 > score_1 + 1e-9)), int(np.sum(score_12 < score_1 - 1e-9))
print(f"beam 1 == greedy on all {len(sources)} sentences")
print(f"beam 12 vs greedy: higher log p on {better}, lower on {worse}, equal on {len(sources) - better - worse}")
print(f"mean log p(y | x): greedy {score_1.mean():.3f}, beam 12 {score_12.mean():.3f}")
if not QUICK:
    assert better > 0, "a wider beam should find a more probable translation for some sentences"

# %% [markdown]
# ## BLEU, by hand
#
# BLEU (Papineni et al. 2002) compares the translations with the references
# over the whole test set (corpus level):
#
# * for `n = 1..4`, the **modified n-gram precision** `p_n`: count the n-grams
#   of each translation that also occur in its reference, each *clipped* to
#   the number of times it occurs there ("le le le le" does not get 4 matches
#   for one "le"), sum over the corpus and divide by the number of n-grams of
#   the translations;
# * the **brevity penalty** `BP = 1` if the translations' total length `c` is
#   at least the references' `r`, else `exp(1 - r / c)` (precision alone would
#   reward saying little);
# * `BLEU = 100 * BP * exp( (1/4) sum_n log p_n )`, the geometric mean: it is 0
#   as soon as one `p_n` is 0.

# %%
def ngram_counts(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu_by_hand(hyps, refs, max_n=4):
    """Corpus BLEU of hypothesis strings against one reference string each (whitespace tokens, no smoothing)."""
    matches, totals = np.zeros(max_n), np.zeros(max_n)
    c = r = 0
    for hyp, ref in zip(hyps, refs):
        h, rw = hyp.split(), ref.split()
        c, r = c + len(h), r + len(rw)
        for n in range(1, max_n + 1):
            in_ref = ngram_counts(rw, n)
            matches[n - 1] += sum(min(count, in_ref[g]) for g, count in ngram_counts(h, n).items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    precisions = matches / np.maximum(totals, 1)
    bp = 1.0 if c >= r else (math.exp(1 - r / c) if c > 0 else 0.0)
    score = 0.0 if (matches == 0).any() else 100 * bp * math.exp(np.mean(np.log(precisions)))
    return score, matches, totals, bp


hyps_greedy = [" ".join(corpus.decode_tgt(h)) for h in greedy]
mine, matches, totals, bp = bleu_by_hand(hyps_greedy, references)
theirs = sacrebleu.corpus_bleu(hyps_greedy, [references], tokenize="none", smooth_method="none")
print("clipped matches per n:", matches.astype(int), "  sacreBLEU:", theirs.counts)
print("n-grams per n:        ", totals.astype(int), "  sacreBLEU:", theirs.totals)
print(f"brevity penalty {bp:.6f} (sacreBLEU {theirs.bp:.6f})")
print(f"BLEU by hand {mine:.10f}   sacreBLEU {theirs.score:.10f}   difference {abs(mine - theirs.score):.1e}")
assert list(matches) == list(theirs.counts) and list(totals) == list(theirs.totals), "n-gram counts differ"
assert abs(mine - theirs.score) < 1e-6, "BLEU by hand should agree with sacreBLEU"

# %% [markdown]
# The numbers reported by `minilstm translate` come from sacreBLEU with its
# defaults (`sacrebleu.metrics.BLEU()`, the standard signature): the `13a`
# tokenizer, which on this lower-case text without punctuation splits exactly
# on whitespace, and `exp` smoothing, which only changes anything when some
# `p_n` is 0 (it then replaces the 0 by a small number instead of giving BLEU
# 0). So on the translations of a trained model they are the same number:

# %%
default = sacrebleu.corpus_bleu(hyps_greedy, [references])
print(f"sacreBLEU with its defaults: {default.score:.10f}")
if (matches > 0).all():
    assert abs(default.score - mine) < 1e-6, "with every p_n > 0 the defaults give the same BLEU"
else:
    print("(some p_n is 0 here, so exp smoothing gives a small positive score where plain BLEU is 0)")

# %% [markdown]
# **Synonyms: why 100 is out of reach.** The corpus translates some English
# words in several ways at random ("teacher" is "professeur" or "prof"), and
# the reference is one draw. `translations(english_words)` gives every correct
# translation with its probability:

# %%
english = next(corpus.decode_src(s) for s, _ in corpus.test if len(translations(corpus.decode_src(s))) == 2)
print(" ".join(english))
for french, prob in sorted(translations(english).items(), key=lambda item: -item[1]):
    print(f"   p = {prob:.2f}  {' '.join(french)}")

# %% [markdown]
# Both are perfect translations, but only one is the reference. So the best
# possible translator, which writes the most probable translation of every
# sentence, still loses n-grams wherever the reference drew the rarer synonym:

# %%
best_translator = [" ".join(max(translations(corpus.decode_src(s)).items(), key=lambda item: item[1])[0])
                   for s in sources]
ideal, *_ = bleu_by_hand(best_translator, references)
ideal_sacrebleu = sacrebleu.corpus_bleu(best_translator, [references]).score
print(f"BLEU of the ideal translator's most probable translations: {ideal:.2f} "
      f"(by hand; sacreBLEU differs by {abs(ideal - ideal_sacrebleu):.1e})")
print(f"BLEU of our model: greedy {mine:.2f}")
assert ideal < 100 and abs(ideal - ideal_sacrebleu) < 1e-6, "BLEU by hand should agree with sacreBLEU here too"

# %% [markdown]
# ## BLEU against the beam size, and the two models

# %%
beams = pick([1, 2, 4], [1, 2, 3, 4, 6, 8, 12])
bleu_by_beam = []
for K in beams:
    hyps = [" ".join(corpus.decode_tgt(h)) for h in translate_ids(model, sources, K)]
    bleu_by_beam.append(sacrebleu.corpus_bleu(hyps, [references]).score)
    print(f"beam {K:2d}: BLEU {bleu_by_beam[-1]:.2f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
for p, run in runs.items():
    ax1.plot([row["epoch"] for row in run["history"]], [row["valid_ppl"] for row in run["history"]], "-o", ms=3,
             label=f"dropout {p}: validation")
    ax1.plot([row["epoch"] for row in run["history"]], [row["train_ppl"] for row in run["history"]], ":",
             color=ax1.lines[-1].get_color(), label=f"dropout {p}: training" + (" (dropout on)" if p else ""))
ax1.axhline(corpus.best_perplexity["valid"], color="k", ls="--", lw=1, label="best possible (valid)")
style_epoch_axes(ax1, f"1 x {base.hidden_size} LSTM, {base.train_pairs:,} training pairs", "perplexity (log scale)")
ax1.legend(fontsize=8)
ax2.plot(beams, bleu_by_beam, "-o", label=f"the dropout-{chosen} model")
ax2.axhline(ideal, color="k", ls="--", lw=1, label="the ideal translator (most probable translation)")
ax2.set_xlabel("beam size K (1 = greedy)")
ax2.set_ylabel("test BLEU (sacreBLEU)")
ax2.set_title(f"BLEU against the beam size, {len(test)} test sentences")
ax2.legend(fontsize=8)
ax2.grid(alpha=0.3)
fig.tight_layout()
save(fig, "10_translation")

# %% [markdown]
# Left: the validation perplexity of each model per epoch, and its training
# perplexity (measured during the epoch, so with dropout on for the
# regularized model). Right: what the search adds. The numbers printed above
# are this run's; what to look for (full mode):
#
# * without dropout the training perplexity runs far ahead of the validation
#   one: the model memorizes its 1,500 pairs, its validation perplexity stops
#   improving after some 15-20 epochs and then climbs. With `p = 0.2` the two
#   stay closer, and the validation perplexity keeps falling to a lower
#   minimum: the paper's Table 3 in miniature (its 5.8 -> 5.0). Dropout makes
#   the early epochs slower, so on a shorter budget the order can flip; early
#   stopping on the validation perplexity, as here and in `minilstm
#   translate`, compares each model at its best;
# * a wider beam finds more probable translations; BLEU usually follows, with
#   diminishing returns, but not always (BLEU is not the log-probability the
#   search maximizes). Neither model gets near the ideal translator, whose BLEU
#   is itself below 100 because of the synonyms.
#
# **Check** (full mode; quick mode trains too briefly to judge):

# %%
if QUICK:
    print("quick mode: skipping the overfitting checks")
else:
    plain, regularized = runs[0.0]["summary"], runs[0.2]["summary"]
    assert plain["best_epoch"] < plain["epochs"], "without dropout the validation perplexity should turn up"
    assert regularized["valid_ppl"] < plain["valid_ppl"], "dropout should reach a lower validation perplexity"
    assert regularized["test_ppl"] < plain["test_ppl"], "... and a lower test perplexity"
    print(f"test perplexity {plain['test_ppl']:.2f} without dropout, {regularized['test_ppl']:.2f} with p = 0.2")

# %% [markdown]
# ## Try this
#
# 1. **Do not reverse the source.** The model reverses every source itself, so
#    reverse it once more before: train on `[(s[::-1], t) for s, t in
#    corpus.train]` (and decode `[s[::-1] for s in sources]`). Compare the
#    validation perplexity after the same number of epochs. Does reading the
#    source forwards slow down the start of training, as Sutskever et al. found?
# 2. **Length normalization.** `beam_search(..., length_normalize=True)` ranks
#    finished hypotheses by log-probability per token. Compare the average
#    length of the translations and the BLEU (and its brevity penalty) with and
#    without it, for beams of 4 and 12.
# 3. **Smoothing.** sacreBLEU's default `exp` smoothing replaces a zero `p_n`:
#    the k-th zero becomes `1 / (2^k * total_n)`. Add it to `bleu_by_hand` and
#    check it against `sacrebleu.corpus_bleu(hyps, [refs])` on the first 3
#    translations only (sentence-level BLEU is where zeros are common).
# 4. **Longer training.** Raise `epochs` (and `patience`) until both models
#    stop improving, or run `minilstm translate --seeds 1 --hidden 128 --layers
#    1 --train-pairs 1500`. Does dropout win on test perplexity and BLEU once
#    both have converged, as in the paper's Table 3?
