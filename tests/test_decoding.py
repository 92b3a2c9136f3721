"""Greedy decoding and beam search (minilstm/decoding.py) on small toy translation models.

Two toy models implement the decoder's protocol: ToyLSTM, a random L-layer LSTM encoder-decoder
written here in array code (it reads the reversed source and a separator from a zero state, then
predicts target words; its state is (h, c), each (L, N, H), batch on axis 1), and TableModel, a
random finite-state model whose best outputs have varied lengths. Everything the tests compare
against (a sentence's score, the exhaustive search, a plain one-sentence beam search) is computed
here by feeding tokens to the model directly, independently of the decoder.
"""

import sys

import numpy as np
import pytest
from fake_cupy import make_cupy

from minilstm.decoding import Hypothesis, _beam_search, beam_search, greedy_decode, max_target_length


class ToyLSTM:
    """A random LSTM translation model: source vocab Vs (+ a separator), target vocab Vt, eos = Vt - 1.

    ``scale`` sets how peaked its distributions are (larger: more confident). ``eos_bias`` is added
    to the <eos> logit (negative: longer outputs). With ``uniform`` every log-prob is -log Vt (ties).
    """

    def __init__(self, seed, Vt=6, Vs=7, H=8, L=2, scale=2.0, eos_bias=0.0, xp=np, uniform=False,
                 dtype=np.float64):
        r = np.random.default_rng(seed)
        self.xp, self.L, self.H, self.uniform = xp, L, H, uniform
        self.target_vocab_size, self.eos, self.sep = Vt, Vt - 1, Vs
        p = dict(src=r.normal(0, 1, (Vs + 1, H)), tgt=r.normal(0, 1, (Vt, H)),
                 Wo=r.normal(0, scale / np.sqrt(H), (H, Vt)), bo=r.normal(0, 0.5, Vt))
        p["bo"][self.eos] += eos_bias
        for layer in range(L):
            p[f"W{layer}"] = r.normal(0, 1.5 / np.sqrt(H), (2 * H, 4 * H))
            p[f"b{layer}"] = np.zeros(4 * H)
        self.p = {k: xp.asarray(v.astype(dtype)) for k, v in p.items()}
        self.calls = self.rows = 0  # model.step calls, and rows stepped in all

    def _advance(self, x, state, mask=None):
        """One time step of every layer; rows where ``mask`` is False keep their state."""
        xp, H = self.xp, self.H
        h, c = state
        hs, cs = [], []
        for layer in range(self.L):
            z = xp.concatenate([x, h[layer]], axis=1) @ self.p[f"W{layer}"] + self.p[f"b{layer}"]
            i, f, o = (1 / (1 + xp.exp(-z[:, k * H:(k + 1) * H])) for k in range(3))
            cn = f * c[layer] + i * xp.tanh(z[:, 3 * H:])
            hn = o * xp.tanh(cn)
            if mask is not None:
                cn, hn = xp.where(mask[:, None], cn, c[layer]), xp.where(mask[:, None], hn, h[layer])
            hs.append(hn)
            cs.append(cn)
            x = hn
        return (xp.stack(hs), xp.stack(cs)), x

    def _log_probs(self, h_top):
        xp = self.xp
        if self.uniform:
            return xp.full((h_top.shape[0], self.target_vocab_size), -np.log(self.target_vocab_size))
        s = h_top @ self.p["Wo"] + self.p["bo"]
        s = s - s.max(axis=1, keepdims=True)
        return s - xp.log(xp.exp(s).sum(axis=1, keepdims=True))

    def start(self, sources):
        xp, N = self.xp, len(sources)
        T = max([len(s) for s in sources] + [0])
        ids = np.zeros((N, T), np.int64)
        mask = np.zeros((N, T), bool)
        for n, s in enumerate(sources):  # reversed, left-aligned; shorter rows stop updating
            s = np.asarray(s)[::-1]
            ids[n, :len(s)], mask[n, :len(s)] = s, True
        z = xp.zeros((self.L, N, self.H), dtype=self.p["Wo"].dtype)
        state = (z, z.copy())
        ids, mask = xp.asarray(ids), xp.asarray(mask)
        for t in range(T):
            state, _ = self._advance(self.p["src"][ids[:, t]], state, mask[:, t])
        state, h = self._advance(self.p["src"][xp.asarray(np.full(N, self.sep))], state)
        return state, self._log_probs(h)

    def step(self, prev_tokens, state):
        self.calls += 1
        self.rows += len(prev_tokens)
        state, h = self._advance(self.p["tgt"][prev_tokens], state)
        return state, self._log_probs(h)


class TableModel:
    """A random finite-state model: S hidden states, each with its own next-word distribution
    (Dirichlet, peaked) and a transition table next[state, word]. Half the states rarely end the
    sentence, so the best outputs have varied lengths. The source picks the start state. State: a
    tuple of one (1, N) int array (batch on axis 1)."""

    def __init__(self, seed, Vt=4, S=16, Vs=7, alpha=0.7):
        r = np.random.default_rng(seed)
        self.xp, self.target_vocab_size, self.eos, self.S = np, Vt, Vt - 1, S
        p = r.dirichlet(np.full(Vt, alpha), S)
        p[: S // 2, self.eos] *= 0.05
        self.lp = np.log(p / p.sum(axis=1, keepdims=True))
        self.next = r.integers(0, S, (S, Vt))
        self.src_mult = r.integers(1, S, Vs)

    def start(self, sources):
        s = np.array([sum((i + 1) * int(self.src_mult[w]) for i, w in enumerate(src[::-1])) % (self.S // 2)
                      for src in sources], dtype=np.int64)
        return (s[None, :],), self.lp[s]

    def step(self, prev_tokens, state):
        s = self.next[state[0][0], prev_tokens]
        return (s[None, :],), self.lp[s]


def random_sources(seed, n, Vs=7, max_len=6):
    r = np.random.default_rng(seed)
    return [r.integers(0, Vs, r.integers(0, max_len + 1)) for _ in range(n)]


def sequence_score(model, source, tokens, finished):
    """Summed log-prob of ``tokens`` (+ <eos> when finished), fed to the model one by one: no decoder involved."""
    state, lp = model.start([source])
    total = 0.0
    for i, tok in enumerate(list(tokens) + ([model.eos] if finished else [])):
        if i:
            state, lp = model.step(np.array([prev]), state)
        total += float(lp[0, tok])
        prev = tok
    return total


def exhaustive(model, source, max_len):
    """Every output of at most ``max_len`` tokens (<eos> included, or cut at max_len) with its summed log-prob."""
    out = []
    state, lp = model.start([source])
    prefixes, prefix_scores = [()], np.zeros(1)
    for t in range(1, max_len + 1):
        lp = np.asarray(lp, dtype=np.float64)
        rows, toks = [], []
        for r, (prefix, s) in enumerate(zip(prefixes, prefix_scores)):
            for v in range(model.target_vocab_size):
                score = s + lp[r, v]
                if v == model.eos:
                    out.append(Hypothesis(list(prefix), score, True))
                elif t == max_len:
                    out.append(Hypothesis(list(prefix) + [v], score, False))
                else:
                    rows.append(r)
                    toks.append(v)
        if not rows:
            break
        prefix_scores = np.array([prefix_scores[r] + lp[r, v] for r, v in zip(rows, toks)])
        prefixes = [prefixes[r] + (v,) for r, v in zip(rows, toks)]
        state = tuple(np.take(s, rows, axis=1) for s in state)
        state, lp = model.step(np.array(toks), state)
    return out


def check_nbest(model, sources, nbest, K, length_normalize=False, rescore=None):
    """Sanity of n-best lists: sorted, at most K, no <eos> inside, scores equal the model's own
    (for the first ``rescore`` hypotheses of each list; all when None)."""
    assert len(nbest) == len(sources)
    for src, hyps in zip(sources, nbest):
        assert 1 <= len(hyps) <= K
        ranks = [h.ranking_score(length_normalize) for h in hyps]
        assert ranks == sorted(ranks, reverse=True)
        for i, h in enumerate(hyps):
            assert model.eos not in h.tokens
            if rescore is not None and i >= rescore:
                continue
            assert h.score == pytest.approx(sequence_score(model, src, h.tokens, h.finished), abs=1e-9)


# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["lstm", "lstm float32", "table"])
def test_beam_of_one_is_greedy_exactly(seed, kind):
    if kind == "table":
        model = TableModel(seed, Vt=7)
    else:  # float32 log-probs: the beam adds them to float64 scores, greedy takes their argmax
        model = ToyLSTM(seed, Vt=7, eos_bias=-1.0 if seed % 2 else 0.0,
                        dtype=np.float32 if "32" in kind else np.float64)
    sources = random_sources(seed, 60)
    greedy = greedy_decode(model, sources)
    assert greedy == beam_search(model, sources, beam_size=1)
    nbest = beam_search(model, sources, beam_size=1, return_all=True)
    assert [h[0].tokens for h in nbest] == greedy
    check_nbest(model, sources, nbest, 1)
    assert len({len(g) for g in greedy}) > 2  # not a trivial model: outputs of several lengths


def test_ties_go_to_the_lowest_id_in_greedy_and_beam():
    """Every word equally likely: greedy and beam pick word 0 every time (eos is the last id)."""
    model = ToyLSTM(0, Vt=5, uniform=True)
    sources = random_sources(1, 5)
    assert greedy_decode(model, sources, max_len=4) == [[0, 0, 0, 0]] * 5
    assert beam_search(model, sources, beam_size=1, max_len=4) == [[0, 0, 0, 0]] * 5
    # a beam of 3: every candidate ties at every step, so the beam keeps the lowest slots and ids
    nbest = beam_search(model, sources, beam_size=3, max_len=4, return_all=True)
    assert [(h.tokens, h.finished) for h in nbest[0]] == [([0, 0, 0, 0], False), ([0, 0, 0, 1], False),
                                                          ([0, 0, 0, 2], False)]


def test_a_wide_beam_is_exhaustive_search():
    """Vt = 4, max_len = 5: a beam as wide as every candidate (4 * 3^4) finds the exhaustive argmax
    (and the exhaustive top 10), with and without length normalization, on several random models."""
    Vt, max_len = 4, 5
    K = Vt * (Vt - 1) ** (max_len - 1)
    best = set()
    for seed in range(5):
        for model in (TableModel(100 + seed, Vt=Vt), ToyLSTM(100 + seed, Vt=Vt, scale=1.0, eos_bias=-1.5)):
            sources = random_sources(seed, 4)
            for normalize in (False, True):
                nbest = beam_search(model, sources, beam_size=K, max_len=max_len, length_normalize=normalize,
                                    return_all=True)
                check_nbest(model, sources, nbest, K, normalize, rescore=10)
                for src, hyps in zip(sources, nbest):
                    every = sorted(exhaustive(model, src, max_len), key=lambda h: h.ranking_score(normalize),
                                   reverse=True)
                    assert (hyps[0].tokens, hyps[0].finished) == (every[0].tokens, every[0].finished)
                    assert hyps[0].score == pytest.approx(every[0].score, abs=1e-9)
                    assert [(h.tokens, h.finished) for h in hyps[:10]] == [(h.tokens, h.finished) for h in every[:10]]
                    best.add((tuple(hyps[0].tokens), hyps[0].finished))
                assert beam_search(model, sources, beam_size=K, max_len=max_len, length_normalize=normalize) == \
                    [h[0].tokens for h in nbest]
    # not a trivial search: the argmax takes many forms, finished and cut, of several lengths
    assert len(best) >= 10 and {f for _, f in best} == {True, False} and len({len(t) for t, _ in best}) >= 4


def reference_beam_search(model, source, K, max_len):
    """A plain one-sentence beam search over Python lists, run to the maximum length (no early stop).

    Returns (n-best list, history): history[t - 1] is the set of live prefixes kept after step t.
    """
    state, lp = model.start([source])
    beam, finished, history = [((), 0.0)], [], []
    for t in range(1, max_len + 1):
        lp = np.asarray(lp, dtype=np.float64)
        cands = [(score + lp[row, v], tokens + (v,), row) for row, (tokens, score) in enumerate(beam)
                 for v in range(model.target_vocab_size)]
        cands.sort(key=lambda c: -c[0])  # stable: ties stay in (slot, word id) order
        live = []
        for score, tokens, row in cands[:K]:
            if tokens[-1] == model.eos:
                finished.append(Hypothesis(list(tokens[:-1]), score, True))
            elif t == max_len:
                finished.append(Hypothesis(list(tokens), score, False))
            else:
                live.append((tokens, score, row))
        history.append({tokens for tokens, _, _ in live})
        if not live:
            break
        state = tuple(np.take(s, [row for _, _, row in live], axis=1) for s in state)
        state, lp = model.step(np.array([tokens[-1] for tokens, _, _ in live]), state)
        beam = [(tokens, score) for tokens, score, _ in live]
    return sorted(finished, key=lambda h: -h.score)[:K], history


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["lstm", "table"])
def test_beam_search_equals_a_plain_reference_implementation(seed, kind):
    model = ToyLSTM(300 + seed, Vt=6, scale=1.5, eos_bias=-0.5) if kind == "lstm" else TableModel(seed, Vt=6)
    sources = random_sources(seed, 12)
    for K in (2, 3, 7):
        nbest = beam_search(model, sources, beam_size=K, max_len=9, return_all=True)
        for src, hyps in zip(sources, nbest):
            ref, _ = reference_beam_search(model, src, K, 9)
            assert [(h.tokens, h.finished) for h in hyps] == [(h.tokens, h.finished) for h in ref]
            np.testing.assert_allclose([h.score for h in hyps], [h.score for h in ref], rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_beam_scores_at_least_greedy(seed):
    """Beam search's best summed log-prob is >= greedy's for every sentence, unless the beam pruned
    greedy's path.

    That proviso is real: beam search is not guaranteed to beat greedy. If at some step K candidates
    from other branches all score above greedy's prefix, the prefix is dropped, and the survivors can
    end worse (measured on 1,200 sentences of 30 such toy models: 5% of sentences with K = 2, 3% with
    K = 3, none with K = 12; the beam was strictly better on 64%, 76% and 90%). So: with the paper's
    K = 12, beam >= greedy on every sentence here; with small K, every sentence where beam < greedy
    must have lost greedy's prefix from its beam (shown by the reference implementation's history),
    and on average the beam still scores at least as high.
    """
    model = ToyLSTM(200 + seed, Vt=8, scale=2.0)
    sources = random_sources(seed, 40)
    greedy = greedy_decode(model, sources, max_len=12)
    g_scores = np.array([sequence_score(model, src, g, finished=len(g) < 12) for src, g in zip(sources, greedy)])
    for K in (2, 3, 12):
        nbest = beam_search(model, sources, beam_size=K, max_len=12, return_all=True)
        b_scores = np.array([hyps[0].score for hyps in nbest])
        assert b_scores.mean() >= g_scores.mean()
        for src, g, b, gs in zip(sources, greedy, b_scores, g_scores):
            if b >= gs - 1e-9:
                continue
            assert K < 12, "the paper's beam scored below greedy"
            _, history = reference_beam_search(model, src, K, 12)
            assert any(tuple(g[:t]) not in kept for t, kept in enumerate(history, 1) if t < len(g)), \
                "beam < greedy although greedy's path was never pruned"


def test_batched_beam_search_equals_one_sentence_at_a_time():
    """State rows are repeated and reordered by xp.take along axis 1 of (h, c), each (L, N, H):
    decoding 15 sentences together must give exactly what decoding each alone gives."""
    model = ToyLSTM(7, Vt=9, L=3, scale=1.2, eos_bias=-1.0)
    sources = random_sources(3, 15, max_len=8)
    for K in (3, 5):
        together = beam_search(model, sources, beam_size=K, return_all=True)
        check_nbest(model, sources, together, K)
        for src, hyps in zip(sources, together):
            alone = beam_search(model, [src], beam_size=K, return_all=True)[0]
            assert [(h.tokens, h.finished) for h in alone] == [(h.tokens, h.finished) for h in hyps]
            np.testing.assert_allclose([h.score for h in alone], [h.score for h in hyps], rtol=0, atol=1e-9)
    assert greedy_decode(model, sources) == [greedy_decode(model, [s])[0] for s in sources]


def test_one_step_call_per_time_step_for_the_whole_batch():
    model = ToyLSTM(1, Vt=6, eos_bias=-3.0)
    sources = random_sources(2, 20)
    beam_search(model, sources, beam_size=4, max_len=7)
    assert model.calls <= 6  # at most max_len - 1 steps after start, whatever N and K
    model.calls = 0
    greedy_decode(model, sources, max_len=7)
    assert model.calls <= 6


@pytest.mark.parametrize("normalize", [False, True])
def test_stopping_early_changes_nothing(normalize):
    """The early stop (no live hypothesis can beat the settled finished ones) gives what running every
    sentence to its maximum length gives, for the best and for the whole n-best list."""
    model = ToyLSTM(11, Vt=6, scale=2.5, eos_bias=0.5)
    sources = random_sources(5, 25)
    saved = 0
    for K, return_all in ((1, False), (4, False), (4, True), (8, True)):
        kw = dict(beam_size=K, max_len=15, length_normalize=normalize, return_all=return_all)
        model.rows = 0
        early = _beam_search(model, sources, **kw)
        early_rows, model.rows = model.rows, 0
        full = _beam_search(model, sources, early_stop=False, **kw)
        saved += model.rows - early_rows
        if return_all:
            check_nbest(model, sources, early, K, normalize)
            early = [[(h.tokens, h.finished) for h in hyps] for hyps in early]
            full = [[(h.tokens, h.finished) for h in hyps] for hyps in full]
        assert early == full
    assert saved > 0  # the early stop did stop some sentences (fewer rows stepped)


def test_a_finished_hypothesis_is_never_extended():
    """A trap: after <eos> the model says word 0 has probability 1 (log-prob 0), and <eos> is cheap at
    the start, so extending a finished hypothesis would look free. None may contain <eos> in its
    tokens, and every score must be the model's own."""

    class Trap(ToyLSTM):
        def start(self, sources):
            (h, c), lp = super().start(sources)
            return (h, c, np.zeros((1, len(sources), 1))), lp

        def step(self, prev_tokens, state):
            h, c, ended = state
            (h, c), lp = super().step(prev_tokens, (h, c))
            ended = np.maximum(ended, (prev_tokens == self.eos)[None, :, None])
            lp = np.where(ended[0], np.where(np.arange(self.target_vocab_size) == 0, 0.0, -50.0), lp)
            return (h, c, ended), lp

    model = Trap(3, Vt=5, eos_bias=1.0)
    sources = random_sources(4, 20)
    for K in (1, 3, 6):
        nbest = beam_search(model, sources, beam_size=K, max_len=8, return_all=True)
        check_nbest(model, sources, nbest, K)
        assert any(h.finished and len(h.tokens) < 6 for hyps in nbest for h in hyps)  # the trap was armed


def test_max_len_and_the_length_rule():
    assert max_target_length(0) == 10 and max_target_length(7) == 24
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError):
            max_target_length(bad)
    model = ToyLSTM(2, Vt=5, eos_bias=-1e9)  # <eos> never wins: every output is cut at the maximum length
    sources = random_sources(6, 8)
    for out in (greedy_decode(model, sources), beam_search(model, sources, beam_size=3)):
        assert [len(o) for o in out] == [max_target_length(len(s)) for s in sources]
    nbest = beam_search(model, sources, beam_size=3, max_len=3, return_all=True)
    assert all(len(h.tokens) == 3 and not h.finished and h.num_emitted == 3 for hyps in nbest for h in hyps)
    assert greedy_decode(model, sources, max_len=1) == [[o[0]] for o in greedy_decode(model, sources, max_len=2)]


def test_bad_input_says_what_to_pass():
    model = ToyLSTM(0)
    sources = random_sources(0, 3)
    for bad in (0, -2, 2.5, True, "12", None):
        with pytest.raises(ValueError, match="beam_size must be a positive integer") as info:
            beam_search(model, sources, beam_size=bad)
        assert "\n" not in str(info.value)
    for bad in (0, -1, 1.5, False):
        with pytest.raises(ValueError, match="max_len must be a positive integer"):
            beam_search(model, sources, max_len=bad)
        with pytest.raises(ValueError, match="max_len must be a positive integer"):
            greedy_decode(model, sources, max_len=bad)
    assert beam_search(model, [], beam_size=np.int64(3)) == []
    assert beam_search(model, [], return_all=True) == []
    assert greedy_decode(model, []) == []
    with pytest.raises(ValueError, match="log-probabilities"):  # logits instead of log-probs

        class Logits(ToyLSTM):
            def _log_probs(self, h):
                return h @ self.p["Wo"] + 5.0

        beam_search(Logits(0), sources, beam_size=2)


def test_the_gpu_path_through_a_strict_cupy_stand_in(monkeypatch):
    """With CuPy arrays (a stand-in that refuses implicit host transfers), the decoder gives the NumPy results."""
    cupy = make_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    cpu, gpu = ToyLSTM(5, Vt=7, eos_bias=-0.5), ToyLSTM(5, Vt=7, eos_bias=-0.5, xp=cupy)
    sources = random_sources(8, 10)
    assert greedy_decode(gpu, sources) == greedy_decode(cpu, sources)
    for K in (1, 4):
        g = beam_search(gpu, sources, beam_size=K, return_all=True)
        c = beam_search(cpu, sources, beam_size=K, return_all=True)
        assert [[(h.tokens, h.finished) for h in x] for x in g] == [[(h.tokens, h.finished) for h in x] for x in c]


def test_top_k_is_exact_and_deterministic():
    from minilstm.decoding import _top_k

    r = np.random.default_rng(0)
    v = r.integers(0, 4, (50, 9)).astype(float)  # many ties
    v[r.random(v.shape) < 0.1] = np.nan
    for k in (1, 3, 9, 20):
        idx, vals = _top_k(v, k)
        key = np.where(np.isnan(v), -np.inf, v)
        expect = np.array([sorted(range(9), key=lambda j: (-key[i, j], j))[:k] for i in range(50)])
        np.testing.assert_array_equal(idx, expect)
        np.testing.assert_array_equal(vals, np.take_along_axis(key, expect, axis=1))
    assert _top_k(np.zeros((2, 4)), 4)[0].tolist() == [[0, 1, 2, 3]] * 2  # all tied: column order


def _gpu_reason():
    from minilstm import backend

    try:
        backend._import_cupy()
    except backend.GPUUnavailableError as exc:
        return str(exc)
    return ""


@pytest.mark.gpu
@pytest.mark.skipif(bool(_gpu_reason()), reason="no usable GPU (CuPy and a CUDA device)")
def test_real_cupy_gives_the_numpy_results():
    from minilstm.backend import get_xp

    cp = get_xp("gpu")
    cpu, gpu = ToyLSTM(5, Vt=50, H=16, eos_bias=-0.5), ToyLSTM(5, Vt=50, H=16, eos_bias=-0.5, xp=cp)
    sources = random_sources(8, 16)
    assert greedy_decode(gpu, sources) == greedy_decode(cpu, sources)
    for K in (1, 5, 12):
        g = beam_search(gpu, sources, beam_size=K, return_all=True)
        c = beam_search(cpu, sources, beam_size=K, return_all=True)
        assert [[(h.tokens, h.finished) for h in x] for x in g] == [[(h.tokens, h.finished) for h in x] for x in c]
        np.testing.assert_allclose([h.score for x in g for h in x], [h.score for x in c for h in x], atol=1e-9)
