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
