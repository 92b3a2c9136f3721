"""The shared experiment machinery (minilstm/experiments/runner.py): runs side by side give the same
numbers as runs one after another; bad arguments are one-line errors."""

import json

import pytest

from minilstm.experiments import runner
from minilstm.experiments import translate as tr

TIMES = ("train_time_s",)


def _rows(out):
    rows = json.loads((out / "results.json").read_text())["rows"]
    return [{k: v for k, v in r.items() if k not in TIMES} for r in rows]


def test_jobs_two_gives_the_same_numbers_as_jobs_one(tmp_path):
    tr.run_translate(tmp_path / "one", seeds=1, quick=True, jobs=1, progress=False, log=lambda s: None)
    tr.run_translate(tmp_path / "two", seeds=1, quick=True, jobs=2, progress=False, log=lambda s: None)
    assert _rows(tmp_path / "one") == _rows(tmp_path / "two")
    for run in ("non-regularized-seed0", "regularized-seed0"):
        for name in ("test.greedy.txt", "test.beam12.txt"):
            assert (tmp_path / "one" / run / name).read_text() == (tmp_path / "two" / run / name).read_text()


@pytest.mark.parametrize("jobs", [0, -1, 65, 1.5, True, "2"])
def test_bad_jobs_are_refused(jobs):
    with pytest.raises(ValueError, match="--jobs must be a whole number"):
        runner.run_all([], lambda *a: {}, jobs)


def test_an_experiment_never_writes_into_a_users_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(Exception, match="not empty"):
        runner.claim_experiment(tmp_path, {"a": 1}, "caption")
    assert (tmp_path / "mine.txt").read_text() == "keep" and not (tmp_path / "experiment.json").exists()


def test_summary_with_a_nan_is_unreadable(tmp_path):
    (tmp_path / "summary.json").write_text('{"test_ppl": NaN}')
    with pytest.raises(Exception, match="unreadable"):
        runner.read_summary(tmp_path, ("test_ppl",))
