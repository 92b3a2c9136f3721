"""Training: schedule, clipping, state carrying, resume, evaluation, ensembles, sampling, CLI."""

import json
import math

import numpy as np
import pytest

import minilstm as m
from minilstm import cli, runfolder
from minilstm.checkpoint import CheckpointError, load_checkpoint
from minilstm.config import CONFIGS, get_config
from minilstm.data import Corpus, load_corpus
from minilstm.optim import clip_global_norm_, global_norm, sgd_step_
from minilstm.sample import sample
from minilstm.training import evaluate, evaluate_ensemble, load_model, train


@pytest.fixture(scope="module")
def corpus():
    """A small slice of the built-in corpus, so training tests take seconds."""
    full = load_corpus("builtin")
    return Corpus(name="builtin-slice", vocab=full.vocab, train=full.train[:6000], valid=full.valid[:1500],
                  test=full.test[:1500], entropy=None, description="slice for tests")


FAST = dict(hidden_size=16, num_steps=10, batch_size=8, epochs=2, max_epoch=1, eval_batch_size=4)


def test_paper_recipes_exactly():
    s, md, lg = CONFIGS["small"], CONFIGS["medium"], CONFIGS["large"]
    assert (s.num_layers, s.hidden_size, s.num_steps, s.batch_size, s.dropout, s.init_scale, s.lr, s.lr_decay,
            s.max_epoch, s.epochs, s.max_grad_norm) == (2, 200, 20, 20, 0, 0.1, 1, 2, 4, 13, 5)
    assert (md.num_layers, md.hidden_size, md.num_steps, md.batch_size, md.dropout, md.init_scale, md.lr,
            md.lr_decay, md.max_epoch, md.epochs, md.max_grad_norm) == (2, 650, 35, 20, 0.5, 0.05, 1, 1.2, 6, 39, 5)
    assert (lg.num_layers, lg.hidden_size, lg.num_steps, lg.batch_size, lg.dropout, lg.init_scale, lg.lr,
            lg.lr_decay, lg.max_epoch, lg.epochs, lg.max_grad_norm) == (2, 1500, 35, 20, 0.65, 0.04, 1, 1.15, 14,
                                                                       55, 10)


def test_learning_rate_schedule():
    s = CONFIGS["small"]
    assert [s.lr_at(e) for e in range(1, 8)] == [1, 1, 1, 1, 0.5, 0.25, 0.125]
    md = CONFIGS["medium"]
    assert md.lr_at(6) == 1 and md.lr_at(7) == pytest.approx(1 / 1.2) and md.lr_at(9) == pytest.approx(1.2 ** -3)


def test_config_overrides_and_errors():
    cfg = get_config("small", hidden_size=400, dropout=0.5)
    assert cfg.hidden_size == 400 and cfg.dropout == 0.5 and cfg.num_steps == 20
    with pytest.raises(ValueError, match="unknown config"):
        get_config("huge")
    with pytest.raises(ValueError, match="unknown config field"):
        get_config("small", hidden=3)
    with pytest.raises(ValueError, match="dropout_mode"):
        get_config("small", dropout_mode="sideways")


def test_clipping_scales_all_gradients_together():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert global_norm(g) == pytest.approx(5.0)
    norm = clip_global_norm_(g, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(g["a"], [0.6, 0.0])
    np.testing.assert_allclose(g["b"], [[0.8]])
    assert global_norm(g) == pytest.approx(1.0)
    small = {"a": np.array([0.1])}
    clip_global_norm_(small, 1.0)
    np.testing.assert_array_equal(small["a"], [0.1])  # under the limit: untouched


def test_sgd_step():
    p = {"w": np.array([1.0, 2.0])}
    sgd_step_(p, {"w": np.array([0.5, -1.0])}, 0.1)
    np.testing.assert_allclose(p["w"], [0.95, 2.1])


def test_short_training_run_perplexity_falls(corpus, tmp_path):
    res = train("tiny", out_dir=tmp_path / "run", corpus=corpus, progress=False, log=lambda *a: None,
                **{**FAST, "epochs": 3})
    ppl = [r["valid_ppl"] for r in res.history]
    uniform = len(corpus.vocab)
    assert ppl[0] < uniform * 0.8, ppl  # learned something in the first epoch
    assert ppl[-1] < ppl[0], ppl
    assert res.test_ppl is not None and math.isfinite(res.test_ppl)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines if x["event"] == "epoch"] == [1, 2, 3]
    assert lines[-1]["event"] == "test"
    assert (tmp_path / "run" / "curves.png").exists()
    assert {"last.npz", "best.npz", "config.json", "summary.json"} <= {p.name for p in (tmp_path / "run").iterdir()}


def test_interrupted_and_resumed_run_is_bit_identical(corpus, tmp_path):
    cfg = dict(FAST, dropout=0.3)
    ref = train("tiny", out_dir=tmp_path / "ref", corpus=corpus, progress=False, log=lambda *a: None, **cfg)

    def interrupt(info):
        if info["step"] == 37:  # mid-way through the first epoch
            raise KeyboardInterrupt

    part = train("tiny", out_dir=tmp_path / "cut", corpus=corpus, progress=False, log=lambda *a: None,
                 on_step=interrupt, **cfg)
    assert part.interrupted
    ck = load_checkpoint(tmp_path / "cut" / "last.npz")
    assert ck.meta["step"] == 37 and "state_h" in ck.arrays
    with pytest.raises(CheckpointError, match="--resume"):
        train("tiny", out_dir=tmp_path / "cut", corpus=corpus, progress=False, log=lambda *a: None, **cfg)
    res = train("tiny", out_dir=tmp_path / "cut", resume=True, corpus=corpus, progress=False,
                log=lambda *a: None, **cfg)
    for name in ref.model.params:
        np.testing.assert_array_equal(res.model.params[name], ref.model.params[name], err_msg=name)
    assert [r["valid_ppl"] for r in res.history] == [r["valid_ppl"] for r in ref.history]
    assert res.test_ppl == ref.test_ppl


def test_resume_refuses_other_vocabulary(corpus, tmp_path):
    train("tiny", out_dir=tmp_path / "r", corpus=corpus, progress=False, log=lambda *a: None, **{**FAST, "epochs": 1})
    other = Corpus(name="other", vocab=list(reversed(corpus.vocab)), train=corpus.train, valid=corpus.valid,
                   test=corpus.test, entropy=None, description="")
    with pytest.raises(CheckpointError, match="vocabulary"):
        train("tiny", out_dir=tmp_path / "r", resume=True, corpus=other, progress=False, log=lambda *a: None,
              **{**FAST, "epochs": 2})


def test_evaluation_carries_state_and_equals_manual_sum(corpus):
    model = m.LSTMLanguageModel(len(corpus.vocab), 8, 2, dtype="float64", seed=0)
    ids = corpus.valid[:401]
    res = evaluate(model, ids, batch_size=1, num_steps=7)
    lp, _ = model.log_probs(ids[None, :-1])  # one pass over the whole stream
    nll = -np.take_along_axis(lp[0], ids[1:, None], axis=1).sum()
    assert res.tokens == 400
    assert res.nll == pytest.approx(nll, rel=1e-10)
    assert res.perplexity == pytest.approx(math.exp(nll / 400), rel=1e-10)


def test_ensemble_averages_distributions(corpus):
    ids = corpus.valid[:201]
    models = [m.LSTMLanguageModel(len(corpus.vocab), 8, 1, dtype="float64", seed=s, init_scale=1.0) for s in (1, 2)]
    one = evaluate_ensemble(models[:1], ids, 1, 10)
    assert one.perplexity == pytest.approx(evaluate(models[0], ids, 1, 10).perplexity, rel=1e-10)
    both = evaluate_ensemble(models, ids, 1, 10)
    p = [np.exp(mod.log_probs(ids[None, :-1])[0][0]) for mod in models]
    avg = (p[0] + p[1]) / 2
    nll = -np.log(avg[np.arange(200), ids[1:]]).sum()
    assert both.nll == pytest.approx(nll, rel=1e-10)


def test_sampling_is_seeded_and_uses_the_vocabulary(corpus):
    model = m.LSTMLanguageModel(len(corpus.vocab), 8, 1, seed=0)
    a = sample(model, corpus.vocab, 12, 1.0, prime=corpus.vocab[3], rng=np.random.default_rng(1))
    b = sample(model, corpus.vocab, 12, 1.0, prime=corpus.vocab[3], rng=np.random.default_rng(1))
    assert a == b and len(a) == 12 and set(a) <= set(corpus.vocab)
    with pytest.raises(Exception, match="zzzunknown"):
        sample(model, corpus.vocab, 3, prime="zzzunknown")


def test_cli_train_eval_sample_plot(corpus, tmp_path, capsys, monkeypatch):
    import minilstm.training as tr

    monkeypatch.setattr(tr, "load_corpus", lambda name, data_dir=None: corpus)
    import minilstm.data as data_mod

    monkeypatch.setattr(data_mod, "load_corpus", lambda name, data_dir=None: corpus)
    out = tmp_path / "cli"
    rc = cli.main(["train", "--out", str(out), "--hidden", "12", "--epochs", "1", "--steps", "8", "--batch", "8",
                   "--eval-batch", "4", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "no-dropout" in text and "dropout" in text and "valid ppl" in text
    assert (out / "compare.png").exists()
    ck = out / "dropout" / "last.npz"
    assert cli.main(["eval", str(ck), str(out / "no-dropout" / "last.npz"), "--split", "valid", "--no-progress",
                     "--eval-batch", "4"]) == 0
    assert "average of 2 models" in capsys.readouterr().out
    assert cli.main(["sample", str(ck), "--length", "5"]) == 0
    assert capsys.readouterr().out.strip()
    assert cli.main(["plot", str(out / "dropout"), str(out / "no-dropout"), "-o", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").exists()


def test_cli_reports_damaged_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint at all")
    assert cli.main(["eval", str(bad)]) == 1
    assert "bad.npz" in capsys.readouterr().err


def test_nan_loss_stops_training_with_clear_error(corpus, tmp_path):
    """One clear error and no NumPy RuntimeWarning on the way (the suite turns warnings into errors)."""
    with pytest.raises(FloatingPointError, match="diverged"):
        train("tiny", out_dir=tmp_path / "nan", corpus=corpus, progress=False, log=lambda *a: None,
              **{**FAST, "lr": 1e30, "max_grad_norm": 1e30, "init_scale": 5.0})


@pytest.mark.parametrize("name", ["medium", "large"])
def test_big_recipes_build_and_learn(name, corpus):
    """medium/large are for the GPU, but they must run on CPU: the full-size model, dropout on, a few SGD
    steps on one small chunk (N=4, T=5 to stay fast here; lr scaled down so three steps on the same chunk
    cannot overshoot) lower that chunk's loss."""
    cfg = get_config(name, batch_size=4, num_steps=5)
    model = m.training.build_model(cfg, len(corpus.vocab))
    assert model.H == cfg.hidden_size and model.dropout == cfg.dropout
    data = m.data.batchify(corpus.train, cfg.batch_size)
    x, y = data[:, :cfg.num_steps], data[:, 1:cfg.num_steps + 1]
    before = model.forward(x, y, train=False)[0]
    for _ in range(3):
        loss, cache, _ = model.forward(x, y, train=True)
        grads = model.backward(cache)
        clip_global_norm_(grads, cfg.max_grad_norm)
        sgd_step_(model.params, grads, 0.2 * cfg.lr)
    after = model.forward(x, y, train=False)[0]
    assert after < before, (before, after)


def _quiet(*a):
    pass


def test_ctrl_c_anywhere_inside_a_step_resumes_bit_exactly(corpus, tmp_path, monkeypatch):
    """Real SIGINTs delivered inside backward, clipping, half-way through the SGD update and during the
    validation pass: every interrupted run saves a consistent state, and the resumed run ends bit-identical."""
    import os
    import signal

    import minilstm.training as tr

    cfg = dict(FAST, dropout=0.3)
    ref = train("tiny", out_dir=tmp_path / "ref", corpus=corpus, progress=False, log=_quiet, **cfg)

    calls = {"backward": 0, "clip": 0, "sgd": 0, "evaluate": 0, "best": 0, "metrics": 0}
    # n-th call in this test, once each: inside backward, clipping, the update, the validation pass,
    # the end-of-epoch bookkeeping (saving best.npz), and the save after an interrupt (metrics 1st call:
    # that one must not escape as a KeyboardInterrupt, so it makes no run of its own).
    fire_at = {"backward": 5, "clip": 15, "sgd": 25, "evaluate": 2, "best": 1, "metrics": 1}
    fired = []

    def maybe_kill(where):
        calls[where] += 1
        if calls[where] == fire_at[where]:
            fired.append(where)
            os.kill(os.getpid(), signal.SIGINT)

    real_backward, real_clip, real_sgd, real_eval, real_metrics, real_save = (
        m.LSTMLanguageModel.backward, tr.clip_global_norm_, tr.sgd_step_, tr.evaluate, runfolder.write_metrics,
        tr._save)

    def backward(self, cache, dloss=1.0):
        grads = real_backward(self, cache, dloss)
        maybe_kill("backward")
        return grads

    def clip(grads, max_norm):
        norm = real_clip(grads, max_norm)
        maybe_kill("clip")
        return norm

    def sgd(params, grads, lr):
        names = list(params)
        real_sgd({k: params[k] for k in names[:3]}, grads, lr)  # half the weights updated...
        maybe_kill("sgd")
        real_sgd({k: params[k] for k in names[3:]}, grads, lr)  # ...then the rest

    def evaluate_(*a, **kw):
        maybe_kill("evaluate")
        return real_eval(*a, **kw)

    def metrics(*a, **kw):
        maybe_kill("metrics")
        return real_metrics(*a, **kw)

    def save(out_dir, name, *a, **kw):
        if name == "best.npz":
            maybe_kill("best")
        return real_save(out_dir, name, *a, **kw)

    monkeypatch.setattr(m.LSTMLanguageModel, "backward", backward)
    monkeypatch.setattr(tr, "clip_global_norm_", clip)
    monkeypatch.setattr(tr, "sgd_step_", sgd)
    monkeypatch.setattr(tr, "evaluate", evaluate_)
    monkeypatch.setattr(runfolder, "write_metrics", metrics)
    monkeypatch.setattr(tr, "_save", save)
    before = signal.getsignal(signal.SIGINT)
    res = train("tiny", out_dir=tmp_path / "cut", corpus=corpus, progress=False, log=_quiet, **cfg)
    runs = 1
    while res.interrupted:
        assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back
        res = train("tiny", out_dir=tmp_path / "cut", resume=True, corpus=corpus, progress=False, log=_quiet,
                    **cfg)
        runs += 1
        assert runs < 10
    assert sorted(fired) == sorted(fire_at) and runs == 6
    for name in ref.model.params:
        np.testing.assert_array_equal(res.model.params[name], ref.model.params[name], err_msg=name)
    assert [r["valid_ppl"] for r in res.history] == [r["valid_ppl"] for r in ref.history]


def test_interrupt_mid_step_without_a_signal_handler_saves_nothing_torn(corpus, tmp_path, monkeypatch):
    """Outside the main thread no handler can be installed: a KeyboardInterrupt raised inside a step must
    not save that half-updated state, while one raised at a step boundary (on_step) saves and resumes."""
    import threading

    import minilstm.training as tr

    real_sgd = tr.sgd_step_
    n = {"sgd": 0}

    def sgd(params, grads, lr):
        n["sgd"] += 1
        if n["sgd"] == 4:
            raise KeyboardInterrupt
        real_sgd(params, grads, lr)

    monkeypatch.setattr(tr, "sgd_step_", sgd)
    out = {}
    th = threading.Thread(target=lambda: out.update(res=train("tiny", out_dir=tmp_path / "t", corpus=corpus,
                                                              progress=False, log=_quiet, **FAST)))
    th.start()
    th.join()
    assert out["res"].interrupted and not (tmp_path / "t" / "last.npz").exists()


@pytest.mark.parametrize("present", [["config.json"], ["best.npz"], ["metrics.jsonl", "summary.json"]])
def test_train_refuses_a_folder_holding_another_run(corpus, tmp_path, present):
    from minilstm.training import RunFolderError

    run = tmp_path / "run"
    run.mkdir()
    for name in present:
        (run / name).write_bytes(b"another run's " + name.encode())
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(RunFolderError, match="already holds a run.*--force"):
        train("tiny", out_dir=run, corpus=corpus, progress=False, log=_quiet, **{**FAST, "epochs": 1})
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    logged = []
    train("tiny", out_dir=run, corpus=corpus, progress=False, log=logged.append, force=True,
          **{**FAST, "epochs": 1})
    assert any(line.startswith("--force: replacing " + ", ".join(present)) for line in logged), logged
    assert (run / "last.npz").exists() and b"another run" not in (run / "config.json").read_bytes()


def test_stale_temporaries_are_removed_on_resume(corpus, tmp_path):
    run = tmp_path / "run"
    train("tiny", out_dir=run, corpus=corpus, progress=False, log=_quiet, **{**FAST, "epochs": 1})
    stale = [run / ".last.npz.abc123.tmp", run / "metrics.jsonl.tmp", run / "config.json.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    (run / "notes.tmp").write_text("not ours: kept")
    train("tiny", out_dir=run, corpus=corpus, progress=False, log=_quiet, resume=True, **{**FAST, "epochs": 2})
    assert not any(p.exists() for p in stale) and (run / "notes.tmp").exists()


def test_out_that_is_a_file_is_refused(corpus, tmp_path):
    from minilstm.training import RunFolderError

    (tmp_path / "f").write_text("x")
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        train("tiny", out_dir=tmp_path / "f", corpus=corpus, progress=False, log=_quiet, **FAST)
    with pytest.raises(RunFolderError, match="cannot create the run folder"):
        train("tiny", out_dir=tmp_path / "f" / "sub", corpus=corpus, progress=False, log=_quiet, **FAST)


@pytest.mark.parametrize("valid,overrides,pattern", [
    (1, {}, "the valid split has 1 token"),
    (0, {}, "the valid split has 0 token"),
    (100, {"eval_batch_size": 51}, "too few for --eval-batch 51.*--eval-batch 50 or less"),
    (1500, {"batch_size": 600}, "training split has 6,000 tokens, too few for one chunk"),
])
def test_split_sizes_are_checked_before_the_first_step(corpus, valid, overrides, pattern):
    from minilstm.data import DataError

    small = Corpus(name="s", vocab=corpus.vocab, train=corpus.train, valid=corpus.valid[:valid],
                   test=corpus.test, entropy=None, description="")
    steps = []
    with pytest.raises(DataError, match=pattern):
        train("tiny", corpus=small, progress=False, log=_quiet, on_step=steps.append, **{**FAST, **overrides})
    assert steps == []


def test_disk_full_leaves_no_partial_file_and_a_clear_error(corpus, tmp_path, monkeypatch, capsys):
    import errno
    import os

    import minilstm.training as tr

    path = tmp_path / "metrics.jsonl"
    path.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as mp:
        mp.setattr(os, "fsync", full)
        with pytest.raises(OSError, match="No space left"):
            runfolder.write_text(path, "new\n" * 1000)
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]

    # In a run: the message says what happened and that the last checkpoint is intact.
    def no_space(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "metrics.jsonl"))

    monkeypatch.setattr(runfolder, "write_metrics", no_space)
    monkeypatch.setattr(tr, "load_corpus", lambda name, data_dir=None: corpus)
    rc = cli.main(["train", "--no-compare", "--out", str(tmp_path / "run"), "--hidden", "8", "--epochs", "2",
                   "--steps", "10", "--batch", "8", "--eval-batch", "4", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "No space left on device" in err[0] and "--resume" in err[0], err
    assert load_checkpoint(tmp_path / "run" / "last.npz").meta["epoch"] == 2  # the epoch-1 checkpoint, whole


@pytest.mark.parametrize("edit,pattern", [
    (lambda meta: meta["progress"].pop("chunk"), "'progress' record should hold exactly"),
    (lambda meta: meta["progress"].update(chunk=-3), "progress field 'chunk' = -3"),
    (lambda meta: meta["progress"].update(nll=float("nan")), "progress field 'nll' = nan"),
    (lambda meta: meta["history"].append({"epoch": 9}), "not a list of epoch records"),
    (lambda meta: meta.update(rng=None), "lacks the dropout generator's state"),
    (lambda meta: meta["rng"].update(bit_generator="Evil"), "unknown bit generator 'Evil'"),
    (lambda meta: meta["progress"].update(epoch=40), "epoch 40 with 1 finished epoch"),
])
def test_resume_refuses_bad_progress_metadata(corpus, tmp_path, edit, pattern):
    from minilstm.checkpoint import save_checkpoint

    cfg = dict(FAST, dropout=0.3, epochs=2)
    run = tmp_path / "run"
    train("tiny", out_dir=run, corpus=corpus, progress=False, log=_quiet, **{**cfg, "epochs": 1})
    ck = load_checkpoint(run / "last.npz")
    meta = {k: v for k, v in ck.meta.items() if k not in ("format", "format_version", "param_shapes",
                                                         "array_shapes")}
    edit(meta)
    save_checkpoint(run / "last.npz", ck.params, meta, ck.arrays)
    before = (run / "last.npz").read_bytes()
    with pytest.raises(CheckpointError, match=pattern):
        train("tiny", out_dir=run, corpus=corpus, progress=False, log=_quiet, resume=True, **cfg)
    assert (run / "last.npz").read_bytes() == before


def test_weights_that_load_model_would_refuse_are_never_saved(corpus, tmp_path):
    """A NaN in a weight (here one no token reads, so no forward trips on it) must not replace a good
    checkpoint with one that cannot be loaded."""
    from minilstm import training

    res = train("tiny", out_dir=tmp_path / "run", corpus=corpus, progress=False, log=lambda *a: None, **FAST)
    last = tmp_path / "run" / "last.npz"
    before = last.read_bytes()
    res.model.params["embed.W"][-1, 0] = np.nan
    prog = training.Progress(epoch=len(res.history) + 1)
    with pytest.raises(CheckpointError, match="refusing to save .*'embed.W' contain NaN or inf"):
        training._save(tmp_path / "run", "last.npz", res.model, res.config, "hash", prog, None)
    assert last.read_bytes() == before
    load_model(last)  # still loads


# --- resuming keeps the run's settings; the compare pair resumes as a pair (issue 22) -------------------

def _serve(monkeypatch, corpus):
    import minilstm.data as data_mod
    import minilstm.training as tr

    monkeypatch.setattr(tr, "load_corpus", lambda name, data_dir=None: corpus)
    monkeypatch.setattr(data_mod, "load_corpus", lambda name, data_dir=None: corpus)


def test_resume_keeps_every_saved_setting_and_only_grows_epochs(corpus, tmp_path):
    """A 4,000-token run resumed with --train-tokens 8000 once trained on 8,000 tokens and recorded that:
    now any contradicting setting is refused with the saved value; repeating one, or more epochs, is fine."""
    from minilstm.training import ResumeMismatch

    run = tmp_path / "r"
    first = train("tiny", out_dir=run, corpus=corpus, progress=False, log=lambda *a: None,
                  **{**FAST, "epochs": 1, "train_tokens": 4000, "eval_batch_size": 50})
    with pytest.raises(ResumeMismatch) as info:
        train(None, out_dir=run, resume=True, corpus=corpus, progress=False, log=lambda *a: None, train_tokens=8000)
    assert info.value.conflicts == [("train_tokens", 8000, 4000)]
    assert json.loads((run / "config.json").read_text())["train_tokens"] == 4000  # nothing rewritten
    res = train(None, out_dir=run, resume=True, corpus=corpus, progress=False, log=lambda *a: None,
                train_tokens=4000, epochs=2)
    assert res.config.train_tokens == 4000 and res.config.epochs == 2 and res.config.hidden_size == 16
    assert res.history[1]["steps"] == 2 * first.history[0]["steps"]  # the same steps per epoch
    with pytest.raises(ValueError, match="has finished 2 epochs already; resume with --epochs 2 or more"):
        train(None, out_dir=run, resume=True, corpus=corpus, progress=False, log=lambda *a: None, epochs=1)


def test_plain_train_then_resume_continues_both_runs(corpus, tmp_path, capsys, monkeypatch):
    """`minilstm train` writes runs/tiny/{no-dropout,dropout}; `minilstm train --resume` (no --out) continues
    that pair, a run killed before its first epoch ended (config.json only) starts again, and with nothing
    to resume the message names the folders that can be resumed."""
    _serve(monkeypatch, corpus)
    monkeypatch.chdir(tmp_path)
    flags = ["--hidden", "8", "--steps", "8", "--batch", "8", "--eval-batch", "50", "--train-tokens", "800",
             "--no-progress"]
    assert cli.main(["train", "--config", "small", "--resume", *flags]) == 1
    assert "nothing to resume in runs/small (no last.npz) and no run under runs/" in capsys.readouterr().err
    assert cli.main(["train", "--epochs", "1", *flags]) == 0
    capsys.readouterr()
    (tmp_path / "runs/tiny/dropout/last.npz").unlink()  # as if killed in its first epoch
    (tmp_path / "runs/tiny/dropout/best.npz").unlink()
    (tmp_path / "runs/tiny/dropout/metrics.jsonl").unlink()
    (tmp_path / "runs/tiny/dropout/summary.json").unlink()
    (tmp_path / "runs/tiny/dropout/curves.png").unlink()
    assert cli.main(["train", "--resume", "--epochs", "2", *flags]) == 0
    text = capsys.readouterr().out
    assert "resuming runs/tiny/no-dropout at epoch 2" in text
    for run, p in (("no-dropout", 0.0), ("dropout", 0.5)):
        summary = json.loads((tmp_path / "runs/tiny" / run / "summary.json").read_text())
        assert [e["epoch"] for e in summary["epochs"]] == [1, 2] and summary["config"]["dropout"] == p
    assert cli.main(["train", "--config", "small", "--resume", *flags]) == 1
    err = capsys.readouterr().err
    assert "the runs that can be resumed are runs/tiny: pass one with --out" in err
    assert cli.main(["train", "--resume", "--hidden", "9", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--hidden 9 contradicts the run's saved --hidden 8" in err
    assert "continue it with `minilstm train --resume`" in err


def test_force_checks_everything_before_removing_anything(corpus, tmp_path):
    run = tmp_path / "r"
    train("tiny", out_dir=run, corpus=corpus, progress=False, log=lambda *a: None, **{**FAST, "epochs": 1})
    (run / "best.npz").unlink()
    (run / "best.npz").mkdir()  # a run file that cannot be removed
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(runfolder.RunFolderError, match="it is a folder.*nothing was removed"):
        train("tiny", out_dir=run, corpus=corpus, progress=False, log=lambda *a: None, force=True, **FAST)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_eval_of_a_folder_never_picks_an_unreadable_run(corpus, tmp_path, capsys, monkeypatch):
    _serve(monkeypatch, corpus)
    good = train("tiny", out_dir=tmp_path / "runs" / "good", corpus=corpus, progress=False, log=lambda *a: None,
                 **{**FAST, "epochs": 1})
    bad = tmp_path / "runs" / "bad"  # the same checkpoint, but its metrics say NaN (lower than anything?)
    bad.mkdir()
    (bad / "best.npz").write_bytes((tmp_path / "runs/good/best.npz").read_bytes())
    (bad / "metrics.jsonl").write_text('{"event": "epoch", "epoch": 1, "valid_ppl": NaN}\n')
    assert cli.main(["eval", str(tmp_path / "runs"), "--split", "valid", "--no-progress", "--eval-batch", "4"]) == 0
    err = capsys.readouterr().err
    assert "skipped (unreadable, never picked as the best): bad: its metrics.jsonl has valid_ppl NaN" in err
    assert f"using {tmp_path / 'runs/good/best.npz'}" in err
    assert good.history


def test_split_before_the_run_is_not_swallowed(corpus, tmp_path, capsys, monkeypatch):
    _serve(monkeypatch, corpus)
    train("tiny", out_dir=tmp_path / "r", corpus=corpus, progress=False, log=lambda *a: None, **{**FAST, "epochs": 1})
    assert cli.main(["eval", "--split", "test", str(tmp_path / "r"), "--no-progress", "--eval-batch", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("test  perplexity") and "valid" not in out


def test_ensemble_of_other_vocabulary_sizes_is_refused(corpus):
    a = m.LSTMLanguageModel(20, 4, 1, seed=0)
    b = m.LSTMLanguageModel(30, 4, 1, seed=0)
    with pytest.raises(ValueError, match="different sizes \\(20, 30 words\\)"):
        evaluate_ensemble([a, b], corpus.valid % 20, 2, 5)
