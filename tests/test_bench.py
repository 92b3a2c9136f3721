"""The benchmark script runs and reports ratios (it is a script, never a timed test)."""

import json

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
