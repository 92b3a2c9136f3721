"""The benchmark script runs and reports ratios (it is a script, never a timed test)."""

import json

from minilstm import bench


def test_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    res = bench.run(["tiny"], repeats=1, with_torch=False, classroom=True, out=out, log=lambda *a: None)
    row = json.loads(out.read_text())["configs"]["tiny"]
    assert row == res["configs"]["tiny"]
    for key in ("train_tokens_per_s", "eval_tokens_per_s", "ceiling_tokens_per_s", "fraction_of_ceiling",
                "speedup_vs_classroom"):
        assert row[key] > 0, key
    assert res["peak_rss_mib"] > 0
