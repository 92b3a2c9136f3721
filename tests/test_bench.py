"""The benchmark script runs and reports ratios (it is a script, never a timed test)."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from minilstm import backend, bench


def test_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    res = bench.run(["tiny"], repeats=1, with_torch=False, classroom=True, out=out, log=lambda *a: None)
    row = json.loads(out.read_text())["configs"]["tiny"]
    assert row == res["configs"]["tiny"]
    for key in ("train_tokens_per_s", "eval_tokens_per_s", "ceiling_tokens_per_s", "fraction_of_ceiling",
                "speedup_vs_classroom"):
        assert row[key] > 0, key
    assert res["peak_rss_mib"] > 0


def test_functions_take_turns_and_ratios_are_paired_by_round():
    calls = []
    times = bench._interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               rounds=3, repeats=2, settle=0)
    # each turn: one warm-up call and two timed ones, and the two functions alternate
    assert calls == (["a"] * 3 + ["b"] * 3) * 3
    assert len(times["a"]) == len(times["b"]) == 3
    # rounds 1 and 3 are 2x, round 2 (a burst of load on "a" alone) 4x: the median ignores it
    ratio, (lo, hi) = bench._paired({"a": [2.0, 8.0, 1.0], "b": [1.0, 2.0, 0.5]}, "a", "b")
    assert (ratio, lo, hi) == (2.0, 2.0, 4.0)


def test_gpu_request_without_a_gpu_is_a_clear_error(capsys, tmp_path, monkeypatch):
    if backend.gpu_available():
        pytest.skip("a GPU is usable here: see test_bench_on_gpu")
    assert bench.main(["--configs", "tiny", "--device", "gpu", "--out", str(tmp_path / "b.json")]) == 2
    assert "minilstm[cuda12]" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not backend.gpu_available(), reason="no usable GPU (CuPy with a CUDA device)")
def test_bench_on_gpu(tmp_path):
    res = bench.run(["tiny"], repeats=1, with_torch=False, out=tmp_path / "b.json", log=lambda *a: None,
                    device="gpu")
    row = res["configs"]["tiny"]
    assert res["device"] == "gpu" and row["train_tokens_per_s"] > 0 and row["gpu_memory_pool_mib"] > 0
    assert "ceiling_tokens_per_s" not in row  # a NumPy measure: not reported next to a GPU


# --- --against: another minilstm timed in the same turns ------------------------------------

def _source_root():
    import minilstm

    return Path(minilstm.__file__).resolve().parents[1]


def test_against_times_the_other_version_and_the_ratio_points_the_right_way(tmp_path):
    """A copy of minilstm whose SGD step sleeps 250 ms is the slower one: this one must come out faster
    (250 ms, longer than a `tiny` step even on a loaded 2-core machine, so the ratio is above 2 there too)."""
    shutil.copytree(_source_root() / "minilstm", tmp_path / "slow" / "minilstm",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "slow" / "minilstm" / "optim.py", "a") as fh:
        fh.write("\nimport time as _t\n_plain_sgd = sgd_step_\n\n\n"
                 "def sgd_step_(params, grads, lr):\n    _t.sleep(0.25)\n    _plain_sgd(params, grads, lr)\n")
    out = tmp_path / "b.json"
    assert bench.main(["--configs", "tiny", "--rounds", "3", "--repeats", "1", "--no-classroom",
                       "--against", str(tmp_path / "slow"), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    row = res["configs"]["tiny"]
    assert str(tmp_path / "slow") in res["against"]
    assert row["speed_vs_against"] > 2 and row["speed_vs_against_range"][0] > 1.5, row
    assert row["against_tokens_per_s"] < row["train_tokens_per_s"]
    assert bench.AGAINST_MODULE not in sys.modules  # unloaded: the next comparison may load another


def test_against_a_git_revision_of_this_checkout(tmp_path):
    root = _source_root()
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not running from a git checkout of minilstm")
    out = tmp_path / "b.json"
    assert bench.main(["--configs", "tiny", "--rounds", "1", "--repeats", "1", "--no-classroom",
                       "--against", "git:HEAD", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["configs"]["tiny"]
    assert row["speed_vs_against"] > 0 and row["against_tokens_per_s"] > 0


@pytest.mark.parametrize("spec, says", [
    ("{tmp}/empty", "is not a minilstm package"),
    ("git:no-such-revision", "no-such-revision"),
    ("git:", "name a revision"),
])
def test_against_something_that_is_not_a_minilstm_is_one_clear_line(tmp_path, capsys, spec, says):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "b.json"
    assert bench.main(["--configs", "tiny", "--against", spec.format(tmp=tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and err.startswith("minilstm bench: ")
    assert not out.exists()


# --- --model translation: the translation miniature's training step ------------------------

TINY_TRANSLATION = {"hidden_size": 16, "num_layers": 2, "batch_size": 4}


def _translation(tmp_path, **kw):
    out = tmp_path / "b.json"
    res = bench.run(models=["translation"], rounds=2, repeats=1, out=out, log=lambda *a: None,
                    translation=TINY_TRANSLATION, **kw)
    row = json.loads(out.read_text())["translation"]
    assert row == res["translation"]
    return res, row


def test_translation_row_is_written_and_counts_target_words(tmp_path):
    res, row = _translation(tmp_path)
    assert res["configs"] == {}  # the language model was not asked for
    assert row["train_words_per_s"] > 0
    cfg = bench.translation_recipe(**TINY_TRANSLATION)
    corpus, (inputs, targets, weights) = bench.translation_batch(cfg)
    # the words the loss counts (the weights' sum), fewer than the batch's tokens (source, <sep>, padding)
    assert row["target_words_per_step"] == float(weights.sum()) < inputs.size
    assert row["batch_shape"] == [4, inputs.shape[1]] and row["vocab"] == {"source": 119, "target": 220,
                                                                          "input": 340}
    assert row["recipe"]["dropout"] == 0.3 and row["recipe"]["dropout_mode"] == "zaremba"
    assert "torch" not in row and "speed_vs_torch" not in row  # not asked for


def test_translation_against_pytorch_gives_a_paired_ratio(tmp_path):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    try:
        _, row = _translation(tmp_path, with_torch=True)
    finally:
        torch.set_num_threads(threads)
    assert row["torch_words_per_s"] > 0 and row["torch_version"] == torch.__version__
    lo, hi = row["speed_vs_torch_range"]
    q1, q3 = row["speed_vs_torch_quartiles"]
    assert 0 < lo <= q1 <= row["speed_vs_torch"] <= q3 <= hi


@pytest.mark.gpu
@pytest.mark.skipif(not backend.gpu_available(), reason="no usable GPU (CuPy with a CUDA device)")
def test_translation_row_on_gpu(tmp_path):
    res, row = _translation(tmp_path, device="gpu")
    assert res["device"] == "gpu" and row["train_words_per_s"] > 0


def test_translation_recipe_is_the_experiments_regularized_run():
    from minilstm.experiments import translate

    cfg = bench.translation_recipe()
    assert cfg == next(c for name, _, c in translate.run_configs(1) if name == "regularized-seed0")
    assert (cfg.hidden_size, cfg.num_layers, cfg.batch_size, cfg.dropout, cfg.lr, cfg.max_grad_norm) == \
        (256, 2, 32, 0.3, 2e-3, 5.0)


def test_translation_step_is_the_training_step():
    """The timed function trains: the very forward, backward, clip and Adam of translate's train_run."""
    cfg = bench.translation_recipe(**TINY_TRANSLATION)
    corpus, batch = bench.translation_batch(cfg)
    from minilstm.experiments import translate
    from minilstm.optim import adam_init, adam_step_, clip_global_norm_

    model = translate.build_model(cfg, corpus)
    adam = adam_init(model.params)
    for _ in range(2):
        loss, cache = model.forward(*batch, train=True)
        g = model.backward(cache)
        clip_global_norm_(g, cfg.max_grad_norm)
        adam_step_(model.params, g, adam, cfg.lr)
    fn = bench.translation_train_fn(cfg, corpus, batch)
    fn()
    fn()
    for name, p in model.params.items():
        assert (fn.model.params[name] == p).all(), name


def test_translation_from_the_command_line(tmp_path, capsys):
    """The real size (2x256, batch 32) once, and --configs without the language model is an error."""
    out = tmp_path / "b.json"
    assert bench.main(["--model", "translation", "--rounds", "1", "--repeats", "1", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["translation"]
    assert row["batch_shape"][0] == 32 and row["recipe"]["hidden_size"] == 256 and row["train_words_per_s"] > 0
    assert "translation (2x256, batch 32 x " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--model", "translation", "--configs", "tiny", "--out", str(tmp_path / "c.json")])
    assert "--configs names language-model recipes" in capsys.readouterr().err


def test_translation_against_a_git_revision(tmp_path):
    root = _source_root()
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not running from a git checkout of minilstm")
    try:
        against = bench.load_against("git:HEAD", tmp_path / "src")
        _, row = _translation(tmp_path, against=against)
    finally:
        bench.unload_against()
    assert row["speed_vs_against"] > 0 and row["against_words_per_s"] > 0


def test_threads_follow_the_blas_variables(monkeypatch):
    """Without threadpoolctl the thread count (PyTorch's, beside minilstm) is what caps OpenBLAS."""
    import builtins

    real_import = builtins.__import__

    def no_threadpoolctl(name, *args, **kwargs):
        if name == "threadpoolctl":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_threadpoolctl)
    for var in bench.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    cores = bench._threads()
    assert cores >= 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert bench._threads() == 1
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    assert bench._threads() == min(3, cores)


# --- issue 22: --against failures and --out are one line, and an import that blocks cannot hang us ----------

def _fake_minilstm(root, init="", config="def get_config(name):\n    raise KeyError(name)\n"):
    pkg = root / "minilstm"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(init)
    (pkg / "training.py").write_text("def build_model(*a, **k):\n    raise RuntimeError('no')\n")
    (pkg / "config.py").write_text(config)
    (pkg / "optim.py").write_text("")
    return root


def test_against_a_version_without_the_recipe_is_one_line(tmp_path, capsys):
    src = _fake_minilstm(tmp_path / "old")
    out = tmp_path / "b.json"
    assert bench.main(["--configs", "tiny", "--rounds", "1", "--repeats", "1", "--no-classroom", "--against",
                       str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("minilstm bench: error: --against ")
    assert "cannot build the 'tiny' recipe (KeyError: 'tiny')" in err and not out.exists()
    assert bench.AGAINST_MODULE not in sys.modules


def test_against_a_version_whose_import_blocks_times_out(tmp_path, capsys, monkeypatch):
    src = _fake_minilstm(tmp_path / "stuck", init="import time\ntime.sleep(60)\n")
    monkeypatch.setattr(bench, "AGAINST_IMPORT_TIMEOUT_S", 3)
    assert bench.main(["--configs", "tiny", "--against", str(src), "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "did not finish within 3 s (it blocks at import)" in err


def test_out_that_cannot_be_written_is_refused_before_timing(tmp_path, capsys, monkeypatch):
    timed = []
    monkeypatch.setattr(bench, "run", lambda *a, **k: timed.append(1))
    for out, says in ((tmp_path, "is a folder"), (tmp_path / "no" / "b.json", "does not exist")):
        assert bench.main(["--configs", "tiny", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and says in err
    assert not timed
