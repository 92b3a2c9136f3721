"""Greedy decoding and beam search for translation with a conditional language model.

Sutskever, Vinyals & Le (2014), and Zaremba et al. (2014) after them, translate with an LSTM that
reads the source sentence and then models the target sentence word by word:
p(y | x) = prod_t p(y_t | y_<t, x). Decoding means finding a target y with a high log p(y | x).
Trying every y is impossible (Vt^T of them), so we search:

* **greedy**: at every step emit the single most likely next word, until ``<eos>``;
* **beam search** (the paper uses a beam of 12): keep the K best partial translations
  ("hypotheses") and extend all of them by one word at each step.

Evaluation never feeds the reference target back (no teacher forcing): the decoder sees only the
sources and the words it chose itself.

The model
---------
Anything with this protocol (the translation model implements it; the tests use toy models)::

    model.eos                  the target id of <eos>
    model.target_vocab_size    Vt
    model.xp                   numpy or cupy
    model.start(sources) -> (state, log_probs)
        sources: a list of N int arrays of source ids, in reading order (the model reverses them
        itself, as the paper does). Reads each source and the separator from a zero state.
        state: a tuple of arrays whose axis 1 is the batch axis (an LSTM's (h, c), each (L, N, H));
        log_probs: (N, Vt) log-probabilities of the first target word.
    model.step(prev_tokens, state) -> (state, log_probs)
        prev_tokens: (N,) int ids just emitted; log_probs: (N, Vt) for the next word.

Rows are independent: row i of ``step`` only depends on row i of the state and ``prev_tokens[i]``.
That is what lets the decoder put any hypotheses side by side in one batch, and reorder, copy or
drop rows between steps by ``xp.take(s, rows, axis=1)`` on every array of the state.

Scores and lengths
------------------
A hypothesis' score is its summed log-probability, log p(y | x) = sum_t log p(y_t | ...), with the
``<eos>`` included when it emitted one. A hypothesis emits at most ``max_len`` tokens, ``<eos>``
included; by default ``max_len = max_target_length(len(source))`` per sentence (2 S + 10, the one
rule). A hypothesis still unfinished at the maximum length counts as a finished one, ``finished=False``:
its ``max_len`` tokens (no ``<eos>``) and their summed log-probability.

``length_normalize=True`` ranks the finished hypotheses by score / (number of tokens emitted,
``<eos>`` included) instead. It is off by default: summed log-probabilities are what the paper
ranks by (it is log p(y | x), the thing we want to maximise), and with them a beam of 1 is exactly
greedy decoding. Summed scores favour short outputs (every word costs log p < 0); normalising
is the usual remedy when that bias hurts.

Greedy decoding
---------------
All N sentences advance together: one ``model.step`` per time step over the sentences still
decoding (a sentence leaves the batch once it emitted ``<eos>`` or reached its maximum length).
The word is the argmax of the (N, Vt) log-probabilities, the lowest id on ties.

Beam search, step by step
-------------------------
The live hypotheses of A sentences still decoding sit in W slots each (W = 1 after ``start``, then
up to K), as rows ``a * W + w`` of the state and of the (A*W, Vt) log-probs. ``scores`` (A, W)
holds their summed log-probs, ``-inf`` for an empty slot (a hypothesis that finished).

1. **Candidates.** Every live hypothesis extended by every word: scores[:, :, None] + log_probs,
   (A, W, Vt). We want the K best of the W*Vt candidates of each sentence.
2. **Top K, in two stages** (cheap and exact). (a) On the device, the K best words of each slot,
   ``_top_k`` over (A*W, Vt): a candidate that is not among the K best of its own slot is beaten by
   K candidates of that slot (same prefix score, larger log-prob), so it cannot be in the sentence's
   top K. (b) The K best of the remaining (A, W*K1) candidates (K1 = min(K, Vt)), on the host. Only these small
   arrays ever leave the device. Ties go to the lowest slot, then the larger log-prob, then the
   lowest word id: deterministic, and with K = 1 exactly the greedy argmax (see ``_top_k``).
3. **Finished.** A selected candidate that ends in ``<eos>`` is moved to the sentence's finished list
   and its slot becomes empty (score ``-inf``): a finished hypothesis is never extended. The others
   are the new live hypotheses (so the beam may hold fewer than K live ones). An empty slot keeps
   its row, so that every sentence has the same W and the arrays stay rectangular; its ``-inf``
   score makes every candidate it spawns ``-inf``, which is never taken as a hypothesis.
4. **Maximum length.** At a sentence's ``max_len``-th token its live hypotheses join the finished list
   (``finished=False``) and the sentence is done.
5. **Stopping early.** Log-probs are <= 0, so extending a hypothesis can only lower its summed score:
   no live hypothesis can ever finish above its current score. A sentence is done as soon as its best
   finished score (its K-th best with ``return_all``, so that the whole n-best list is settled) is
   >= the best live score. With ``length_normalize`` the bound is best live score / max_len (a
   hypothesis with summed score s <= 0 ends with at most max_len tokens, so s' / n <= s / max_len).
   A sentence with no live hypothesis left is done too. Stopping early never changes the result.
6. **Reorder.** Each new hypothesis continues its parent's state: the rows of the sentences still
   decoding are gathered with ``xp.take(s, parent_rows, axis=1)`` (reordering the beam and dropping
   the sentences that are done in one go), and one ``model.step`` on the chosen words advances them all.

The result is the best finished hypothesis of each sentence (or, with ``return_all``, its n-best list:
up to K hypotheses, best first).

What beam search does not promise: the best output. Step 2 throws away every candidate outside the
K best, and a discarded prefix may have led to the best translation. A beam wide enough to keep every
candidate is exhaustive search; a narrow one can even end below greedy (greedy's prefix was pruned
by K others that later went wrong), though it usually ends above it.
"""

from __future__ import annotations

import heapq
import numbers
from dataclasses import dataclass

import numpy as np

from .backend import get_array_module, to_host

__all__ = ["Hypothesis", "greedy_decode", "beam_search", "max_target_length"]

# log_softmax gives log-probs <= 0 exactly; log(softmax) can round a hair above 0. Anything larger
# is not a log-probability (most likely raw logits), and would break the early-stopping bound.
_LOG_PROB_SLACK = 1e-4


@dataclass
class Hypothesis:
    """One decoded target sentence.

    tokens: the target ids, without the ``<eos>``.
    score: the summed log-probability of the tokens, plus that of ``<eos>`` when ``finished``.
    finished: True when it ended with ``<eos>``; False when it was cut at the maximum length.
    """

    tokens: list[int]
    score: float
    finished: bool

    @property
    def num_emitted(self) -> int:
        """How many tokens the model emitted for it, ``<eos>`` included: the length-normalization divisor."""
        return len(self.tokens) + (1 if self.finished else 0)

    def ranking_score(self, length_normalize: bool = False) -> float:
        """What beam search ranks it by: the summed log-prob, or its average per emitted token."""
        return self.score / self.num_emitted if length_normalize else self.score


def max_target_length(source_length) -> int:
    """The most target tokens (``<eos>`` included) decoded for a source of ``source_length`` words: 2 S + 10.

    The one rule tying output length to source length. Translations are rarely more than about
    1.5 times as long as their source (French is about 1.2 times English); the margin of 2 S + 10
    only has to stop a model that loops ("the the the ...") without ever cutting a real translation.
    """
    if isinstance(source_length, bool) or not isinstance(source_length, numbers.Integral) or source_length < 0:
        raise ValueError(f"source_length must be a non-negative integer, got {source_length!r}")
    return 2 * int(source_length) + 10


# --------------------------------------------------------------------------- top k

def _top_k(values, k):
    """The k largest entries of each row of ``values`` (R, M), best first: (indices, values), both (R, k').

    k' = min(k, M). NaN counts as -inf. Ties go to the lowest column, so with k = 1 this is
    ``argmax`` (which also returns the first of equal maxima), and the whole order is
    deterministic on NumPy and CuPy alike (no reliance on a sort being stable).

    Linear work per row: ``partition`` finds the k-th largest value t, and the entries >= t are the
    k best, unless several equal t at the boundary (rare with real log-probs): in those rows only,
    everything > t is in and the first (k - #greater) entries equal to t fill the rest. Only the k
    chosen are then ordered, by counting for each how many of the others come before it (a
    (R, k, k) comparison).
    """
    xp = get_array_module(values)
    R, M = values.shape
    k = min(int(k), M)
    v = xp.where(xp.isnan(values), -xp.inf, values)  # partition and argmax would rank NaN above every number
    if k == 1:
        idx = xp.argmax(v, axis=1)[:, None]
        return idx, xp.take_along_axis(v, idx, axis=1)
    t = xp.partition(v, M - k, axis=1)[:, M - k:M - k + 1]  # (R, 1) the k-th largest value
    chosen = v >= t
    count = chosen.sum(axis=1)
    crowded = xp.nonzero(count > k)[0]  # rows with more than k entries >= t: ties at the boundary
    if crowded.size:
        sub, ts = v[crowded], t[crowded]
        greater, tied = sub > ts, sub == ts
        need = k - greater.sum(axis=1, keepdims=True)  # how many of the ties to take, lowest columns first
        # (logical_or/and rather than | and &: the same calls on NumPy and CuPy arrays)
        chosen[crowded] = xp.logical_or(greater, xp.logical_and(tied, xp.cumsum(tied, axis=1) <= need))
    idx = xp.nonzero(chosen)[1].reshape(R, k)  # exactly k per row, row-major: columns in increasing order
    sel = xp.take_along_axis(v, idx, axis=1)
    a, b = sel[:, :, None], sel[:, None, :]  # entry i against entry j
    lower = xp.arange(k)[None, :] < xp.arange(k)[:, None]  # (k, k): j < i, i.e. a lower column
    before = xp.logical_or(b > a, xp.logical_and(b == a, lower))  # entry j comes before entry i
    rank = before.sum(axis=2)  # how many come before entry i: 0 .. k-1, all distinct
    idx = xp.take_along_axis(idx, xp.argsort(rank, axis=1), axis=1)
    return idx, xp.take_along_axis(v, idx, axis=1)


# --------------------------------------------------------------------------- input checks

def _check_beam_size(beam_size) -> int:
    if isinstance(beam_size, bool) or not isinstance(beam_size, numbers.Integral) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer (1 is greedy; the paper uses 12), got {beam_size!r}")
    return int(beam_size)


def _max_lengths(sources, max_len) -> np.ndarray:
    """(N,) the maximum number of tokens for each sentence."""
    if max_len is not None:
        if isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) or max_len < 1:
            raise ValueError(f"max_len must be a positive integer (tokens, <eos> included) or None, got {max_len!r}")
        return np.full(len(sources), int(max_len), dtype=np.int64)
    try:
        return np.array([max_target_length(len(s)) for s in sources], dtype=np.int64)
    except TypeError as exc:
        raise ValueError("sources must be a list of 1-D arrays of source ids, one per sentence") from exc


def _check_log_probs(model, log_probs, rows, where):
    if tuple(log_probs.shape) != (rows, model.target_vocab_size):
        raise ValueError(f"model.{where} returned log_probs of shape {tuple(log_probs.shape)}, "
                         f"expected (rows, target_vocab_size) = ({rows}, {model.target_vocab_size})")


def _check_best(best_lp, live, where):
    """``best_lp``: the best log-prob of each live row (host). A NaN/-inf row or a positive log-prob is a model bug."""
    best = best_lp[live]
    if best.size == 0:
        return
    if not np.all(np.isfinite(best)):
        raise ValueError(f"model.{where} gave no finite log-probability to any word (NaN or -inf everywhere): "
                         "is the model diverged?")
    if best.max() > _LOG_PROB_SLACK:
        raise ValueError(f"model.{where} must return log-probabilities (<= 0), got {best.max():.4g}: "
                         "apply log_softmax to the scores")


def _take_rows(state, rows_host, xp):
    """The state's rows ``rows_host`` (host ints), in that order: ``xp.take`` along the batch axis 1."""
    rows = xp.asarray(rows_host)
    return tuple(xp.take(s, rows, axis=1) for s in state)


# --------------------------------------------------------------------------- greedy

def greedy_decode(model, sources, max_len=None) -> list[list[int]]:
    """The greedy translation of each source: at each step the most likely word, lowest id on ties.

    sources: a list of N source id arrays (in reading order). Returns N lists of target ids, without
    ``<eos>``; a sentence that reached its maximum length without ``<eos>`` has ``max_len`` tokens.
    max_len: the most tokens per sentence, ``<eos>`` included (None: ``max_target_length(len(source))``).
    Equal to ``beam_search(..., beam_size=1)``.
    """
    sources = list(sources)
    limits = _max_lengths(sources, max_len)
    N = len(sources)
    if N == 0:
        return []
    state, lp = model.start(sources)  # lp (N, Vt): the log-probs of every sentence's first word
    xp = get_array_module(lp)
    out: list[list[int]] = [[] for _ in range(N)]  # the words of each sentence, <eos> left out
    active = np.arange(N)  # the sentences still decoding, in the order of the batch rows
    ### BEGIN SOLUTION [translation:greedy] (hint: one time step t = 1, 2, ... per loop: each batch row's
    ### word is the argmax of lp, lowest id on ties (_top_k(lp, 1) does both); append it to its sentence's
    ### list in out unless it is model.eos. Sentence n is done once it emitted <eos> or its limits[n]-th
    ### token; return out when every sentence is done, else keep the other rows (_take_rows(state, rows, xp)
    ### and active[rows]) and feed them their words: state, lp = model.step(words, state))
    t = 0
    while True:
        t += 1
        _check_log_probs(model, lp, len(active), "start" if t == 1 else "step")
        idx, best = _top_k(lp, 1)  # the argmax: the routine beam search uses, so beam 1 == greedy
        tok = to_host(idx)[:, 0].astype(np.int64)
        _check_best(to_host(best)[:, 0], np.ones(len(active), bool), "start" if t == 1 else "step")
        done = (tok == model.eos) | (t >= limits[active])
        for a in np.flatnonzero(tok != model.eos):  # bookkeeping: the words, without <eos>
            out[active[a]].append(int(tok[a]))
        keep = np.flatnonzero(~done)
        if keep.size == 0:
            return out
        state = _take_rows(state, keep, xp)  # drop the finished sentences' rows
        active = active[keep]
        state, lp = model.step(xp.asarray(tok[keep]), state)
        ### END SOLUTION


# --------------------------------------------------------------------------- beam search

def beam_search(model, sources, beam_size=12, max_len=None, length_normalize=False, return_all=False):
    """Beam search (the algorithm is in the module docstring), all sentences batched together.

    sources: a list of N source id arrays (in reading order). beam_size: K >= 1 (the paper: 12;
    1 is greedy decoding exactly). max_len: the most tokens per sentence, ``<eos>`` included
    (None: ``max_target_length(len(source))``). length_normalize: rank finished hypotheses by
    score / tokens emitted (off by default: summed log-probs, the paper's setting).

    Returns N lists of target ids (the best hypothesis of each sentence, without ``<eos>``), or with
    ``return_all`` N n-best lists: up to K :class:`Hypothesis`, best first.
    """
    return _beam_search(model, sources, beam_size, max_len, length_normalize, return_all)


def _beam_search(model, sources, beam_size=12, max_len=None, length_normalize=False, return_all=False,
                 early_stop=True):
    """``beam_search``; ``early_stop=False`` runs every sentence to its maximum length (for the tests:
    stopping early must not change the result)."""
    K = _check_beam_size(beam_size)
    sources = list(sources)
    limits = _max_lengths(sources, max_len)
    N = len(sources)
    if N == 0:
        return []
    eos = model.eos
    need = K if return_all else 1  # how many finished hypotheses must be settled before stopping

    def rank(h):
        return h.ranking_score(length_normalize)

    finished = [[] for _ in range(N)]  # each sentence's finished Hypothesis, in the order found
    best_ranks = [[] for _ in range(N)]  # a min-heap of each sentence's `need` best ranking scores
    settled = np.full(N, -np.inf)      # the need-th best ranking score (-inf: fewer than need finished)

    def record(n, tokens, score, is_finished):
        h = Hypothesis([int(x) for x in tokens], float(score), bool(is_finished))
        finished[n].append(h)
        heap = best_ranks[n]
        (heapq.heappush if len(heap) < need else heapq.heappushpop)(heap, rank(h))
        if len(heap) == need:
            settled[n] = heap[0]

    state, lp = model.start(sources)
    xp = get_array_module(lp)
    active = np.arange(N)                 # (A,) the sentences still decoding
    scores = np.zeros((N, 1))             # (A, W) summed log-probs of the live hypotheses; -inf: empty slot
    seqs = np.zeros((N, 1, 0), np.int64)  # (A, W, t) their tokens so far (host bookkeeping)
    t = 0
    while True:
        t += 1
        A, W = scores.shape
        where = "start" if t == 1 else "step"
        _check_log_probs(model, lp, A * W, where)
        # 2a. the best K1 words of every slot, on the device; only (A*W, K1) comes back
        k1 = min(K, model.target_vocab_size)
        word_idx, word_lp = _top_k(lp, k1)
        word_idx = to_host(word_idx).astype(np.int64).reshape(A, W, k1)
        word_lp = to_host(word_lp).astype(np.float64).reshape(A, W, k1)
        _check_best(word_lp[:, :, 0], np.isfinite(scores), where)
        # 1. + 2b. candidates = prefix score + word log-prob, (A, W*K1), slot-major; the K best of each sentence
        cand = (scores[:, :, None] + word_lp).reshape(A, W * k1)
        pos, new_scores = _top_k(cand, K)          # (A, K') with K' = min(K, W*K1)
        parent = pos // k1                         # (A, K') the slot each new hypothesis extends
        tok = np.take_along_axis(word_idx.reshape(A, W * k1), pos, axis=1)
        seqs = np.concatenate([np.take_along_axis(seqs, parent[:, :, None], axis=1), tok[:, :, None]], axis=2)
        real = np.isfinite(new_scores)             # -inf: extends an empty slot, or a word of probability 0
        ends = real & (tok == eos)
        live = real & ~ends
        # 3. finished hypotheses leave the beam and are never extended
        for a, j in zip(*np.nonzero(ends)):
            record(active[a], seqs[a, j, :-1], new_scores[a, j], True)
        scores = np.where(live, new_scores, -np.inf)
        # 4. at the maximum length the live hypotheses count as finished (cut, without <eos>)
        at_max = t >= limits[active]
        for a, j in zip(*np.nonzero(live & at_max[:, None])):
            record(active[a], seqs[a, j], scores[a, j], False)
        # 5. stop a sentence when no live hypothesis can still beat its settled finished ones
        best_live = scores.max(axis=1)
        bound = best_live / limits[active] if length_normalize else best_live
        done = at_max | ~live.any(axis=1)
        if early_stop:
            done |= settled[active] >= bound
        keep = np.flatnonzero(~done)
        if keep.size == 0:
            break
        # 6. every kept hypothesis continues its parent's row: row a*W + parent of the old layout
        state = _take_rows(state, (keep[:, None] * W + parent[keep]).ravel(), xp)
        active, scores, seqs = active[keep], scores[keep], seqs[keep]
        state, lp = model.step(xp.asarray(tok[keep].ravel()), state)

    # Python's sort is stable: equal ranks keep the order found (earlier steps, then better slots first)
    nbest = [sorted(hyps, key=rank, reverse=True)[:K] for hyps in finished]
    if return_all:
        return nbest
    return [hyps[0].tokens for hyps in nbest]
