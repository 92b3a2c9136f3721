"""Speech frames (the paper's Table 2 in miniature).

The pins of the issue: the Bayes ceiling agrees with an independent computation
(every state path enumerated, plain densities, no scaling), no model reads the
frames better than it, the frame classifier passes a float64 gradient check with
fixed masks, padding changes nothing, the corpus is the same from the same seed,
and bad input is one line.
"""

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from minilstm import gradcheck as gc
from minilstm.checks import NonFiniteError, ShapeError
from minilstm.data import DataError
from minilstm.data.frames import (FrameSplit, bayes_scores, batch_frames, load_frames, make_builtin_frames,
                                  make_hmm)
from minilstm.experiments import speech as sp
from minilstm.models.frames import FrameClassifier


def quiet(_):
    pass


# ---------------------------------------------------------------------------
# The Bayes ceiling
# ---------------------------------------------------------------------------

def brute_force_filter(hmm, x):
    """p(phone_t | x_1..x_t) for one utterance x (T, D), by summing p(s_1..s_t, x_1..x_t) over every state
    path s_1..s_t: full Gaussian densities with their constant, no logs, no scaling, no recursion."""
    S, D = hmm.means.shape
    T = x.shape[0]
    dens = np.exp(-0.5 * ((x[:, None, :] - hmm.means[None]) ** 2).sum(-1)) / (2 * np.pi) ** (D / 2)  # (T, S)
    out = np.zeros((T, hmm.num_phones))
    for t in range(1, T + 1):
        for path in itertools.product(range(S), repeat=t):
            p = hmm.start[path[0]] * dens[0, path[0]]
            for k in range(1, t):
                p *= hmm.trans[path[k - 1], path[k]] * dens[k, path[k]]
            out[t - 1, hmm.phone_of[path[-1]]] += p
        out[t - 1] /= out[t - 1].sum()
    return out


def test_forward_algorithm_equals_enumerating_every_state_path():
    hmm = make_hmm(seed=3, num_phones=3, substates=2, feature_size=2, separation=1.0)  # S = 6
    x, states = hmm.sample(3, 5, np.random.default_rng(0))  # 6^1 + ... + 6^5 paths per utterance
    post = hmm.filter(x)
    assert post.shape == (3, 5, 3)
    for u in range(3):
        np.testing.assert_allclose(post[u], brute_force_filter(hmm, x[u]), rtol=1e-10, atol=1e-13)
    split = FrameSplit(x, hmm.phone_of[states], np.ones(states.shape))
    brute = np.stack([brute_force_filter(hmm, x[u]) for u in range(3)])
    assert bayes_scores(hmm, split)["accuracy"] == pytest.approx(
        (brute.argmax(2) == split.labels).mean(), abs=1e-15)


def test_filter_survives_long_far_apart_utterances():
    """200 frames of well-separated states: the unscaled forward product underflows to 0 long before the
    end; the scaled one stays a distribution (and near certain)."""
    hmm = make_hmm(seed=0, separation=3.0)
    x, states = hmm.sample(4, 200, np.random.default_rng(1))
    post = hmm.filter(x)
    assert np.isfinite(post).all() and np.allclose(post.sum(2), 1.0)
    assert (post.argmax(2) == hmm.phone_of[states]).mean() > 0.95


def test_ceiling_near_the_paper_and_above_a_frame_by_frame_reader():
    corpus = make_builtin_frames(n_train=4, n_valid=150, n_test=4)
    hmm, valid = corpus.hmm, corpus.valid
    bayes = bayes_scores(hmm, valid)
    assert 0.66 < bayes["accuracy"] < 0.74 and abs(bayes["accuracy"] - bayes["expected"]) < 0.02
    # A reader that knows the true means but looks at one frame at a time (the states' average prior).
    logb = hmm.log_emissions(valid.features)
    prior = np.linalg.matrix_power(hmm.trans.T, 200) @ hmm.start  # near the stationary distribution
    lik = np.exp(logb - logb.max(2, keepdims=True)) * prior
    phones = np.stack([lik[..., hmm.phone_of == p].sum(2) for p in range(hmm.num_phones)], axis=2)
    one_frame = (phones.argmax(2) == valid.labels).mean()
    assert bayes["accuracy"] > one_frame + 0.2  # context (durations, the bigram) is worth a lot here
    assert bayes["nll"] < -np.log(phones.max(2)).mean()


def test_corpus_is_deterministic_from_its_seed():
    a, b = make_builtin_frames(n_train=5, n_valid=3, n_test=3, num_frames=20), \
        make_builtin_frames(n_train=5, n_valid=3, n_test=3, num_frames=20)
    for s in ("train", "valid", "test"):
        for k in ("features", "labels", "weights"):
            assert np.array_equal(getattr(a.split(s), k), getattr(b.split(s), k))
    c = make_builtin_frames(seed=1, n_train=5, n_valid=3, n_test=3, num_frames=20)
    assert not np.array_equal(a.train.features, c.train.features)
    more = make_builtin_frames(n_train=9, n_valid=3, n_test=3, num_frames=20)
    assert np.array_equal(more.valid.features, a.valid.features)  # more training data, same validation set
    assert a.train.features.shape == (5, 20, 13) and a.train.labels.max() < 20


# ---------------------------------------------------------------------------
# The frame classifier
# ---------------------------------------------------------------------------

def tiny_batch(D=13, C=4, N=3, T=6, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((N, T, D))
    labels = rng.integers(0, C, (N, T))
    weights = np.ones((N, T))
    weights[1, 4:] = 0.0  # utterance 1 is 4 frames long: padding
    return frames, labels, weights


def test_gradient_check_with_fixed_masks_and_padding():
    model = FrameClassifier(13, 4, hidden_size=5, num_layers=2, dropout=0.3, init_scale=0.5, dtype="float64")
    frames, labels, weights = tiny_batch()
    _, cache = model.forward(frames, labels, weights, rng=np.random.default_rng(5))
    masks = cache.masks
    assert sorted(masks) == ["drop0", "drop1", "drop2"] and masks["drop0"].shape == (3, 6, 13)
    grads = model.backward(cache)

    def f():
        return model.forward(frames, labels, weights, masks=masks)[0]

    pick, worst = np.random.default_rng(0), 0.0
    for name in model.params:
        r = gc.check_array_gradient(f, model.params[name], grads[name], name, max_checks=40, rng=pick)
        assert r.passed, r
        worst = max(worst, r.max_rel_error)
    assert worst < 1e-7


def test_padding_changes_nothing():
    """Padded frames (garbage inside) add nothing to the loss, the gradient or the accuracy: the batch gives
    what its utterances give alone, with the same dropout masks cut to their lengths."""
    model = FrameClassifier(13, 4, hidden_size=6, num_layers=2, dropout=0.4, init_scale=0.3, dtype="float64")
    frames, labels, weights = tiny_batch()
    frames[1, 4:] = 1e3  # garbage after utterance 1's end
    loss, cache = model.forward(frames, labels, weights, rng=np.random.default_rng(2))
    both, masks = model.backward(cache), cache.masks
    total_loss, total = 0.0, {k: 0.0 for k in model.params}
    for n, T in ((0, 6), (1, 4), (2, 6)):
        mine = {k: m[n:n + 1, :T] for k, m in masks.items()}
        l, c = model.forward(frames[n:n + 1, :T], labels[n:n + 1, :T], weights[n:n + 1, :T], masks=mine)
        total_loss += l
        for k, g in model.backward(c).items():
            total[k] = total[k] + g
    assert loss == pytest.approx(total_loss / 3, rel=1e-12)
    for k in model.params:
        np.testing.assert_allclose(3 * both[k], total[k], rtol=1e-10, atol=1e-13)
    labels[1, 4:] = model.predict(frames)[1, 4:]  # padding "right": counting it would show
    right, count = model.frame_accuracy(frames, labels, weights)
    assert count == 16
    assert right == sum(model.frame_accuracy(frames[n:n + 1, :T], labels[n:n + 1, :T], weights[n:n + 1, :T])[0]
                        for n, T in ((0, 6), (1, 4), (2, 6)))


def test_a_uniform_model_has_perplexity_c_and_the_model_refuses_bad_frames():
    model = FrameClassifier(13, 5, hidden_size=4, num_layers=1, dtype="float64")
    model.params["out.W"][:] = 0.0
    model.params["out.b"][:] = 0.0
    frames, labels, weights = tiny_batch(C=5)
    nll, count = model.nll(frames, labels, weights)
    assert nll / count == pytest.approx(np.log(5), rel=1e-12) and count == 16
    with pytest.raises(ShapeError, match=r"\(N, T, 13\)"):
        model.forward(frames[..., :12], labels, weights)
    frames[0, 2, 3] = np.nan
    with pytest.raises(NonFiniteError, match="frames"):
        model.predict(frames)


# ---------------------------------------------------------------------------
# Your frames: bad input is one line
# ---------------------------------------------------------------------------

def write_frames(folder, D=13, nan=False, valid_D=None):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for s in ("train", "valid", "test"):
        d = valid_D if (s == "valid" and valid_D) else D
        x = rng.standard_normal((4, 10, d)).astype(np.float32)
        if nan and s == "train":
            x[2, 7, 0] = np.nan
        np.savez(folder / f"{s}.npz", features=x, labels=rng.integers(0, 3, (4, 10)), lengths=np.array([10, 8, 9, 10]))


def test_user_frames_are_read_and_bad_ones_refused(tmp_path):
    write_frames(tmp_path / "ok")
    corpus = load_frames(tmp_path / "ok")
    assert corpus.num_classes == 3 and corpus.train.num_frames == 37 and corpus.hmm is None
    assert corpus.train.labels[1, 8:].sum() == 0  # padding
    write_frames(tmp_path / "nan", nan=True)
    with pytest.raises(DataError, match="NaN or inf .*utterance 2, frame 7"):
        load_frames(tmp_path / "nan")
    write_frames(tmp_path / "size", valid_D=12)
    with pytest.raises(DataError, match="have 12 features, expected 13"):
        load_frames(tmp_path / "size")
    with pytest.raises(DataError, match="have 13 features, expected 40"):
        load_frames(tmp_path / "ok", feature_size=40)
    with pytest.raises(DataError, match="not a folder"):
        load_frames(tmp_path / "missing")


# ---------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------

def test_quick_experiment_writes_a_table_resumes_and_refuses_other_settings(tmp_path):
    out = tmp_path / "sp"
    res = sp.run_speech(out, seeds=2, quick=True, progress=False, log=quiet)
    result = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in result["rows"]] == [
        ("non-regularized", 0), ("non-regularized", 1), ("regularized", 0), ("regularized", 1)]
    bayes = result["bayes"]
    for row in result["rows"]:
        # No model beats the ceiling on unseen frames (on the training set it may, by memorizing them).
        for s in ("valid", "test"):
            assert 0 <= row[f"fixed_{s}_acc"] <= bayes[s]["acc"] and 0 <= row[f"early_{s}_acc"] <= bayes[s]["acc"]
    md = (out / "results.md").read_text()
    assert "| non-regularized (dropout 0) | 71.6 | 68.9 |" in md and "| regularized (dropout 0.3) | 69.4 | 70.5 |" in md
    assert f"| Bayes ceiling (forward algorithm) | | | {bayes['train']['acc']:.1f} |" in md
    assert (out / "validation.png").stat().st_size > 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    again = sp.run_speech(out, seeds=2, quick=True, progress=False, log=quiet)
    assert again["rows"] == res["rows"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == before  # finished runs are not retrained
    with pytest.raises(Exception, match="other settings"):
        sp.run_speech(out, seeds=2, quick=True, progress=False, log=quiet, hidden_size=8)


def test_interrupted_run_resumes_bit_exactly(tmp_path):
    from minilstm.checkpoint import load_checkpoint

    corpus = sp.load_data(quick=True)
    cfg = sp.SpeechConfig(**{**sp.QUICK, "dropout": 0.3, "epochs": 3, "patience": 3})
    sp.train_run(cfg, corpus, tmp_path / "whole", log=quiet)

    def stop(info):
        if info["step"] == 4:  # mid-epoch (3 batches an epoch)
            raise KeyboardInterrupt

    assert sp.train_run(cfg, corpus, tmp_path / "cut", log=quiet, on_step=stop) == {"interrupted": True}
    summary = sp.train_run(cfg, corpus, tmp_path / "cut", log=quiet)
    a, b = load_checkpoint(tmp_path / "whole" / "last.npz"), load_checkpoint(tmp_path / "cut" / "last.npz")
    for name in list(a.params) + list(a.arrays):
        assert np.array_equal({**a.params, **a.arrays}[name], {**b.params, **b.arrays}[name]), name
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if not k.endswith("_s")} == \
        {k: v for k, v in whole.items() if not k.endswith("_s")}


def test_best_checkpoint_is_the_highest_validation_accuracy(tmp_path):
    corpus = sp.load_data(quick=True)
    cfg = sp.SpeechConfig(**{**sp.QUICK, "epochs": 4, "patience": 4, "lr": 0.02})
    summary = sp.train_run(cfg, corpus, tmp_path / "r", log=quiet)
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    accs = [r["valid_acc"] for r in rows if r.get("event") == "epoch"]
    assert len(accs) == 4 and summary["best_epoch"] == int(np.argmax(accs)) + 1
    assert summary["early_valid_acc"] == pytest.approx(max(accs), abs=1e-9)
    assert summary["fixed_valid_acc"] == pytest.approx(accs[-1], abs=1e-9)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "minilstm", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_cli_runs_quick_and_bad_input_is_one_line(tmp_path):
    r = run_cli("speech", "--quick", "--seeds", "1", "--out", "q", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "| regularized (dropout 0.3) | 69.4 | 70.5 |" in r.stdout and "Bayes ceiling" in r.stdout
    write_frames(tmp_path / "nan", nan=True)
    write_frames(tmp_path / "size", valid_D=12)
    cases = [(("speech", "--jobs", "0"), "at least 1"),
             (("speech", "--quick", "--data-dir", "nan", "--out", "u"), "NaN or inf"),
             (("speech", "--quick", "--data-dir", "size", "--out", "u"), "12 features, expected 13"),
             (("speech", "--quick", "--seeds", "1", "--out", "q", "--hidden", "8"), "other settings")]
    for args, words in cases:
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode in (1, 2), (args, r.stdout, r.stderr)
        errors = [line for line in r.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and words in errors[0] and "Traceback" not in r.stderr, (args, r.stderr)
    assert not (tmp_path / "u").exists()  # nothing written for bad data


def test_bench_row_times_the_experiment_step():
    from minilstm import bench

    row = bench.run(models=("speech",), rounds=1, repeats=1, speech={"hidden_size": 8}, log=quiet)["speech"]
    assert row["recipe"]["dropout"] == sp.DROPOUT and row["recipe"]["hidden_size"] == 8
    assert row["batch_shape"] == [sp.SpeechConfig().batch_size, 200, 13] and row["frames_per_step"] == 16 * 200
    assert row["train_frames_per_s"] > 0


def test_jobs_two_gives_the_numbers_of_jobs_one(tmp_path):
    one = sp.run_speech(tmp_path / "one", seeds=1, quick=True, progress=False, log=quiet)
    two = sp.run_speech(tmp_path / "two", seeds=1, quick=True, jobs=2, progress=False, log=quiet)

    def numbers(rows):
        return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]

    assert numbers(one["rows"]) == numbers(two["rows"])
    with pytest.raises(ValueError, match="--jobs must be a whole number from 1"):
        sp.run_speech(tmp_path / "zero", seeds=1, quick=True, jobs=0, progress=False, log=quiet)
    assert not (tmp_path / "zero").exists()
