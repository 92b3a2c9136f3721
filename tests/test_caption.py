"""Image captions as a conditional language model (the paper's Table 4 in miniature).

The pins of the issue: the whole captioner, image projection included, passes a float64 gradient
check with fixed masks; padding changes nothing; a uniform model scores V; decoding reads the very
model training scores; the ensemble averages probabilities (not log-probs); the image pools are
disjoint; the command writes a table whose BLEU anyone can recompute from the files; bad input is
one line.
"""

import json
import sys

import numpy as np
import pytest

from minilstm import gradcheck as gc
from minilstm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minilstm.checks import ShapeError
from minilstm.data import DataError
from minilstm.data.digits import PHRASINGS, CaptionSplit, batch_captions, caption_ids, corpus_hash, make_digit_captions
from minilstm.decoding import beam_search, greedy_decode
from minilstm.experiments import caption as cp
from minilstm.experiments import paper
from minilstm.models.caption import CaptionModel
from minilstm.models.ensemble import Ensemble, log_mean_exp


@pytest.fixture(scope="module")
def corpus():
    return make_digit_captions()


def model_for(corpus, **kw):
    kw = {"hidden_size": 6, "num_layers": 1, "dtype": "float64", "seed": 0, "init_scale": 0.3, **kw}
    return CaptionModel(corpus.num_features, corpus.vocab_size, corpus.eos_id, **kw)


def rows_of(split, rows):
    return CaptionSplit(split.features[rows], split.digits[rows], [split.captions[r] for r in rows],
                        split.phrasing[rows], split.sources[rows])


def one_batch(split, rows, dtype="float64"):
    return batch_captions(rows_of(split, rows), len(rows), dtype=dtype)[0]


def mixed_rows(split, k=3):
    """k rows whose captions do not all have the same length (phrasing 1 is one word shorter)."""
    short = [i for i in range(40) if split.phrasing[i] == 1][:1]
    long_ = [i for i in range(40) if split.phrasing[i] != 1][:k - 1]
    return short + long_


def test_whole_model_gradient_check_with_image_projection_and_padding(corpus):
    model = model_for(corpus, hidden_size=5, num_layers=2, dropout=0.3)
    batch = one_batch(corpus.train, mixed_rows(corpus.train))
    assert len({int(w.sum()) for w in batch[-1]}) > 1  # variable lengths, so padding
    _, cache = model.forward(*batch, rng=np.random.default_rng(5))
    masks = cache.masks
    grads = model.backward(cache)
    assert sorted(masks) == ["drop0", "drop1", "drop2"]
    assert set(grads) == set(model.params) and {"img.W", "img.b"} <= set(grads)

    def f():
        return model.forward(*batch, masks=masks)[0]

    pick = np.random.default_rng(0)
    worst = 0.0
    for name in model.params:
        # The image projection in full (it is the new part); the rest sampled.
        r = gc.check_array_gradient(f, model.params[name], grads[name], name,
                                    max_checks={"img.b": None, "img.W": 100}.get(name, 40), rng=pick)
        assert r.passed, r
        worst = max(worst, r.max_rel_error)
    print(f"worst relative error {worst:.2e}")
    assert worst < 1e-7
    assert np.abs(grads["img.W"]).max() > 0  # the image reaches the loss


def test_padding_changes_no_loss_no_gradient(corpus):
    model = model_for(corpus, dropout=0.4)
    rows = mixed_rows(corpus.train, 2)
    features, inputs, targets, weights = one_batch(corpus.train, rows)
    T = inputs.shape[1] + 1
    assert weights[0].sum() < T  # the first (short) caption is padded
    loss, cache = model.forward(features, inputs, targets, weights)
    both, masks = model.backward(cache), cache.masks
    parts = []
    for k, r in enumerate(rows):
        b = one_batch(corpus.train, [r])
        t = b[1].shape[1] + 1
        mine = {name: m[k:k + 1, :t] for name, m in masks.items()}
        l, c = model.forward(*b, masks=mine)
        parts.append((l, model.backward(c)))
    assert loss == pytest.approx((parts[0][0] + parts[1][0]) / 2, rel=1e-12)
    for name in model.params:
        np.testing.assert_allclose(2 * both[name], parts[0][1][name] + parts[1][1][name], rtol=1e-10, atol=1e-13)


def test_uniform_model_has_perplexity_v(corpus):
    model = model_for(corpus)
    model.params["out.W"][:] = 0.0
    model.params["out.b"][:] = 0.0
    test = rows_of(corpus.test, list(range(30)))
    assert cp.evaluate_perplexity(model, test, batch_size=7) == pytest.approx(corpus.vocab_size, rel=1e-10)
    _, count = model.nll(*one_batch(corpus.test, list(range(30))))
    assert count == sum(len(c) + 1 for c in test.captions)


def test_start_and_step_reproduce_the_forward_nll(corpus):
    model = model_for(corpus, seed=2)
    rows = mixed_rows(corpus.test, 4)
    features, inputs, targets, weights = one_batch(corpus.test, rows)
    loss, _ = model.forward(features, inputs, targets, weights, train=False)
    state, lp = model.start(features)
    nll = -lp[np.arange(4), targets[:, 0]] * weights[:, 0]
    for t in range(inputs.shape[1]):
        state, lp = model.step(inputs[:, t], state)
        nll += -lp[np.arange(4), targets[:, t + 1]] * weights[:, t + 1]
    assert float(nll.sum()) / 4 == pytest.approx(loss, rel=1e-10)
    hyps = greedy_decode(model, list(features), max_len=9)
    assert hyps == [greedy_decode(model, [f], max_len=9)[0] for f in features]  # batching changes nothing
    assert beam_search(model, list(features), beam_size=1, max_len=9) == hyps


def test_ensemble_averages_probabilities_not_log_probs(corpus):
    a, b = model_for(corpus, seed=1, init_scale=0.8), model_for(corpus, seed=2, init_scale=0.8)
    features, inputs, targets, weights = one_batch(corpus.test, mixed_rows(corpus.test, 3))
    ens = Ensemble([a, b])

    def softmax(lp):
        return np.exp(lp)

    pa, pb = softmax(a.log_probs(features, inputs)), softmax(b.log_probs(features, inputs))
    by_hand = (pa + pb) / 2  # (N, T, V): the mixture
    np.testing.assert_allclose(np.exp(ens.log_probs(features, inputs)), by_hand, rtol=1e-12)
    picked = np.take_along_axis(by_hand, targets[..., None], axis=-1)[..., 0]
    nll, count = ens.nll(features, inputs, targets, weights)
    assert nll == pytest.approx(float(-(np.log(picked) * weights).sum()), rel=1e-12) and count == weights.sum()
    # Averaging log-probs (a normalized geometric mean) is another model, with another NLL.
    geo = np.exp((np.log(pa) + np.log(pb)) / 2)
    geo /= geo.sum(-1, keepdims=True)
    geo_nll = float(-(np.log(np.take_along_axis(geo, targets[..., None], axis=-1)[..., 0]) * weights).sum())
    assert abs(geo_nll - nll) > 1e-3 * nll
    # Decoding reads the same averaged distribution.
    state, lp = ens.start(features)
    _, la = a.start(features)
    _, lb = b.start(features)
    np.testing.assert_allclose(np.exp(lp), (np.exp(la) + np.exp(lb)) / 2, rtol=1e-12)
    assert len(state) == 4  # both members' (h, c)
    hyps = greedy_decode(ens, list(features), max_len=9)
    assert hyps == [greedy_decode(ens, [f], max_len=9)[0] for f in features]
    # One member is that member.
    assert greedy_decode(Ensemble([a]), list(features), max_len=9) == greedy_decode(a, list(features), max_len=9)
    np.testing.assert_allclose(log_mean_exp(np.stack([la, la])), la, rtol=1e-12)


def test_ensemble_refuses_models_of_other_vocabularies_or_kinds(corpus):
    a = model_for(corpus)
    other = CaptionModel(corpus.num_features, corpus.vocab_size + 1, 0, hidden_size=6, dtype="float64")
    with pytest.raises(ValueError, match="one vocabulary"):
        Ensemble([a, other])

    class NotACaptioner:
        kind, target_vocab_size, eos = "translation", corpus.vocab_size, 0
    with pytest.raises(ValueError, match="one kind"):
        Ensemble([a, NotACaptioner()])
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])


def test_image_pools_are_disjoint_and_the_data_deterministic(corpus):
    pools = {name: set(corpus.split(name).sources.ravel().tolist()) for name in ("train", "valid", "test")}
    assert not pools["train"] & pools["test"] and not pools["train"] & pools["valid"]
    assert not pools["valid"] & pools["test"]
    assert len(pools["train"]) > 900  # the composites use most of the training pool
    again = make_digit_captions()
    assert corpus_hash(again) == corpus_hash(corpus)
    assert corpus_hash(make_digit_captions(seed=1)) != corpus_hash(corpus)
    # Every phrasing occurs, and every reference names the image's digits.
    assert set(corpus.train.phrasing.tolist()) == set(range(len(PHRASINGS)))
    refs = corpus.test.references()
    assert all(len(r) == 3 and len({tuple(x) for x in r}) == 3 for r in refs[:20])
    assert 1.17 < corpus.best_perplexity["test"] < 1.19  # exp(log 3 x captions / tokens)


def test_bad_input_is_one_line(corpus, monkeypatch):
    model = model_for(corpus)
    features, inputs, targets, weights = one_batch(corpus.test, [0, 1])
    cases = [((features[:, :-1], inputs, targets, weights), ShapeError, r"\(N, F\) with F = 192"),
             ((features[0], inputs, targets, weights), ShapeError, r"\(N, F\)"),
             ((np.where(np.arange(192) == 7, np.nan, features), inputs, targets, weights), ValueError, "NaN"),
             ((features[:1], inputs, targets, weights), ShapeError, "N = 1"),
             ((features, inputs, targets[:, :-1], weights), ShapeError, "one more step")]
    for args, error, words in cases:
        with pytest.raises(error, match=words) as info:
            model.forward(*args)
        assert "\n" not in str(info.value)
    with pytest.raises(ShapeError, match="F = 192"):
        greedy_decode(model, list(features[:, :10]), max_len=5)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match=r"pip install 'minilstm\[paper\]'"):
        make_digit_captions()


def test_quick_experiment_table_bleu_from_files_resume_and_ensemble(tmp_path):
    import sacrebleu

    out = tmp_path / "cap"
    quiet = lambda s: None  # noqa: E731
    res = cp.run_caption(out, seeds=1, members=2, quick=True, progress=False, log=quiet)
    result = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in result["rows"]] == [
        ("non-regularized", 0), ("non-regularized", 1), ("regularized", 0)]
    refs = [(out / f"test.ref{k}.txt").read_text().splitlines() for k in range(3)]
    assert refs[0][0].startswith("a picture of ") and refs[2][0].endswith(" written by hand")
    for row in result["rows"] + [dict(result["ensemble"], run="ensemble")]:
        for key in ("greedy", "beam3"):
            hyps = (out / row["run"] / f"test.{key}.txt").read_text().splitlines()
            assert len(hyps) == len(refs[0])
            assert row[f"bleu_{key}"] == round(sacrebleu.corpus_bleu(hyps, refs).score, 2)
            assert row[f"bleu_{key}"] > 0  # the quick models learnt the phrasings: multi-reference BLEU is pinned
            assert max(len(h.split()) for h in hyps) >= 5  # whole captions are decoded, not cut short
    assert result["ensemble"]["members"] == ["non-regularized-seed0", "non-regularized-seed1"]
    md = (out / "results.md").read_text()
    assert "| 8.47 | 23.5 |" in md and "| 7.99 | 24.3 |" in md and "| 7.5 | 24.4 |" in md and "ensemble" in md
    assert (out / "validation.png").stat().st_size > 0
    verdict = paper._verdict_table4(out)  # minilstm paper's line for Table 4
    assert "8.47" in verdict["paper"] and f"{result['ensemble']['test_ppl']:.3f}" in verdict["ours"]
    assert isinstance(verdict["reproduces"], bool) and verdict["table_md"] == md and verdict["time_s"] > 0
    # The ensemble's perplexity is recomputed from the members' checkpoints, probabilities averaged.
    corpus = cp.load_data()
    test = cp.splits(corpus, cp.run_configs(1, 2, quick=True)[0][2])[2]
    ens = cp.load_ensemble([out / "non-regularized-seed0", out / "non-regularized-seed1"])
    assert cp.evaluate_perplexity(ens, test) == pytest.approx(result["ensemble"]["test_ppl"], rel=1e-9)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    again = cp.run_caption(out, seeds=1, members=2, quick=True, progress=False, log=quiet)
    assert again["rows"] == res["rows"] and again["ensemble"] == res["ensemble"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == before  # finished runs are not retrained
    with pytest.raises(Exception, match="other settings"):
        cp.run_caption(out, seeds=1, members=2, quick=True, progress=False, log=quiet, hidden_size=8)
    # An ensemble of checkpoints of another vocabulary, or of another experiment: one line each.
    ck = load_checkpoint(out / "regularized-seed0" / "best.npz")
    save_checkpoint(tmp_path / "other.npz", ck.params, {**ck.meta, "vocab": list(reversed(ck.meta["vocab"]))},
                    ck.arrays)
    with pytest.raises(CheckpointError, match="another vocabulary") as info:
        cp.load_ensemble([out / "non-regularized-seed0", tmp_path / "other.npz"])
    assert "\n" not in str(info.value)
    save_checkpoint(tmp_path / "lm.npz", ck.params, {**ck.meta, "kind": "translation"}, ck.arrays)
    with pytest.raises(CheckpointError, match="not a caption model"):
        cp.load_ensemble([out / "non-regularized-seed0", tmp_path / "lm.npz"])
    with pytest.raises(CheckpointError, match="no caption model"):
        cp.load_ensemble([tmp_path / "nowhere"])


class Oracle:
    """Writes every test image's caption in the second phrasing ("the digits d d d"), certain of each word."""

    xp, eos, dtype = np, 0, np.dtype("float64")

    def __init__(self, split, vocab_size):
        self.target_vocab_size = vocab_size
        self.captions = {f.tobytes(): caption_ids(d, 1) + [0] for f, d in zip(split.features, split.digits)}

    def _lp(self, seqs, pos):
        lp = np.full((seqs.shape[1], self.target_vocab_size), -30.0)
        lp[np.arange(seqs.shape[1]), seqs[0, np.arange(seqs.shape[1]), pos[0]]] = 0.0
        return lp

    def start(self, features):
        seqs = np.array([self.captions[np.asarray(f, dtype=np.float64).tobytes()] for f in features])[None]
        pos = np.zeros((1, seqs.shape[1]), dtype=np.int64)
        return (seqs, pos), self._lp(seqs, pos)

    def step(self, prev, state):
        seqs, pos = state[0], state[1] + 1
        return (seqs, pos), self._lp(seqs, pos)

    def nll(self, features, inputs, targets, weights):
        return 0.0, float(weights.sum())


def test_evaluation_scores_every_phrasing_as_right(tmp_path, corpus):
    """An oracle that always writes the second phrasing: BLEU 100 against the three references (it would be far
    lower against the drawn caption alone), every digit right, perplexity 1, all read back from the files."""
    test = rows_of(corpus.test, list(range(60)))
    (tmp_path / "run").mkdir()
    s = cp.evaluate_test(Oracle(test, corpus.vocab_size), tmp_path / "run", corpus, test, lambda m: None, {})
    assert s["bleu_greedy"] == s["bleu_beam3"] == 100.0 and s["digits_greedy"] == 100.0 and s["test_ppl"] == 1.0
    hyps = (tmp_path / "run" / "test.greedy.txt").read_text().splitlines()
    assert hyps[0] == "the digits " + " ".join(map(str, test.digits[0]))
    assert cp.bleu_from_files(tmp_path / "run" / "test.greedy.txt", tmp_path / "test.ref0.txt")["bleu"] < 60


def test_interrupted_run_resumes_bit_exactly(tmp_path, corpus):
    cfg = cp.CaptionConfig(**{**cp.QUICK, "dropout": 0.5, "epochs": 2, "patience": 2})
    quiet = lambda s: None  # noqa: E731
    cp.train_run(cfg, corpus, tmp_path / "whole", log=quiet)

    def stop(info):
        if info["step"] == 28:  # mid-epoch (20 batches an epoch)
            raise KeyboardInterrupt

    assert cp.train_run(cfg, corpus, tmp_path / "cut", log=quiet, on_step=stop) == {"interrupted": True}
    cp.train_run(cfg, corpus, tmp_path / "cut", log=quiet)
    a, b = load_checkpoint(tmp_path / "whole" / "last.npz"), load_checkpoint(tmp_path / "cut" / "last.npz")
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name
    for name in a.arrays:  # Adam's moments too
        assert np.array_equal(a.arrays[name], b.arrays[name]), name


def test_command_line_flags(tmp_path, capsys):
    from minilstm.cli import _Parser

    parser = _Parser(prog="minilstm")
    cp.add_cli(parser.add_subparsers(dest="command"))
    for argv, words in ((["caption", "--jobs", "0"], "at least 1"), (["caption", "--seeds", "x"], "not a whole"),
                        (["caption", "--out", ""], "empty path")):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
    args = parser.parse_args(["caption", "--quick", "--members", "1", "--seeds", "1", "--out",
                              str(tmp_path / "q"), "--no-progress"])
    assert args.func(args) == 0
    assert "| 10 non-regularized" not in capsys.readouterr().out  # one member here
    args = parser.parse_args(["caption", "--ensemble", str(tmp_path / "q" / "non-regularized-seed0"),
                              str(tmp_path / "q" / "regularized-seed0")])
    assert args.func(args) == 0 and "ensemble of 2: test ppl" in capsys.readouterr().out
    # Through the real command line: a refused ensemble is one line on stderr, exit status 1.
    from minilstm.cli import main
    ck = load_checkpoint(tmp_path / "q" / "regularized-seed0" / "best.npz")
    save_checkpoint(tmp_path / "other.npz", ck.params, {**ck.meta, "vocab_hash": "another corpus"}, ck.arrays)
    assert main(["caption", "--ensemble", str(tmp_path / "q" / "regularized-seed0"), str(tmp_path / "other.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "minilstm caption: error:" in err and "vocab" in err, err


def test_bench_row_times_the_experiments_training_step():
    from minilstm import bench

    results = bench.run(models=("caption",), rounds=1, repeats=1, with_torch=False, classroom=False,
                        caption={"hidden_size": 8}, log=lambda s: None)
    row = results["caption"]
    assert row["recipe"]["dropout"] == cp.DROPOUT and row["recipe"]["hidden_size"] == 8
    assert row["words_per_step"] == sum(len(c) + 1 for c in cp.load_data().train.captions[:32])
    assert row["train_words_per_s"] > 0 and row["features"] == 192


def test_jobs_two_gives_the_numbers_and_captions_of_jobs_one(tmp_path):
    """Runs side by side (spawned workers, one BLAS thread each) give the table, the ensemble and the
    written captions of runs one after another."""
    quiet = lambda s: None  # noqa: E731
    results = []
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}"
        cp.run_caption(out, seeds=1, members=2, quick=True, jobs=jobs, progress=False, log=quiet)
        saved = json.loads((out / "results.json").read_text())
        rows = [{k: v for k, v in r.items() if not k.endswith("_time_s")} for r in saved["rows"]]
        captions = {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("test.*.txt"))}
        results.append((rows, saved["ensemble"], captions))
    assert results[0][2] and results[0] == results[1]
