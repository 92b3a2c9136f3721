"""The regularization lab (minilstm lab), shrunk to seconds on the built-in corpus: it trains the runs,
writes the table and the figure, and resumes where it stopped (a finished run is skipped, a stopped
one continues from its last.npz)."""

import json

import pytest

from minilstm import cli
from minilstm.lab import RUN_NAMES, RUNS, lab_config, run_lab

TINY = dict(dataset="builtin", hidden=4, epochs=2, train_tokens=600, eval_batch=50)


def test_lab_runs_the_six_settings_of_the_readme():
    assert RUN_NAMES == ("none", "recurrent", "zaremba", "variational", "zaremba-tied", "variational-tied")
    for run in RUNS:
        cfg = lab_config(run)
        assert (cfg.dataset, cfg.num_layers, cfg.hidden_size, cfg.init_scale, cfg.lr, cfg.max_grad_norm) == \
            ("ptb", 2, 400, 0.05, 1.0, 5.0)
        assert (cfg.batch_size, cfg.num_steps, cfg.train_tokens, cfg.epochs) == (20, 20, 300_000, 8)
        assert cfg.lr_at(cfg.epochs) == 1.0  # constant learning rate
        assert (cfg.dropout_mode, cfg.tie_weights) == (run.dropout_mode, run.tie_weights)
        assert cfg.dropout == (0.0 if run.dropout_mode == "none" else 0.5)


def test_lab_resumes_where_it_stopped(tmp_path, capsys):
    out = tmp_path / "lab"
    calls = []

    def stop_in_the_second_run(info):
        calls.append(info)
        if len(calls) == 3:  # the first run has 2 steps (1 chunk x 2 epochs): stop in the second
            raise KeyboardInterrupt

    logs = []
    res = run_lab(out, ("none", "variational-tied"), **TINY, progress=False, log=logs.append,
                  on_step=stop_in_the_second_run)
    assert res["interrupted"]
    assert (out / "none" / "summary.json").is_file()
    assert (out / "variational-tied" / "last.npz").is_file()
    assert not (out / "variational-tied" / "summary.json").exists()
    assert [r["run"] for r in res["rows"]] == ["none"]
    finished = (out / "none" / "summary.json").read_bytes()

    # Again, from the command line: the finished run is skipped, the stopped one resumed and finished.
    argv = ["lab", "--out", str(out), "--runs", "none", "variational-tied", "--dataset", "builtin",
            "--hidden", "4", "--epochs", "2", "--train-tokens", "600", "--eval-batch", "50", "--no-progress"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "none: finished already, skipped" in text
    assert "variational-tied: resuming" in text and "resuming" in text.split("variational-tied: resuming")[1]
    assert (out / "none" / "summary.json").read_bytes() == finished  # nothing finished is redone
    table = (out / "lab.md").read_text()
    assert "| none | none |" in table and "| variational-tied | 0.5 `variational`, tied |" in table
    rows = json.loads((out / "lab.json").read_text())["runs"]
    assert [r["run"] for r in rows] == ["none", "variational-tied"]
    assert all(len(r["valid_curve"]) == 2 for r in rows)
    summary = json.loads((out / "variational-tied" / "summary.json").read_text())
    assert [e["epoch"] for e in summary["epochs"]] == [1, 2]  # resumed, not restarted or repeated
    assert summary["config"]["tie_weights"] is True and summary["config"]["dropout_mode"] == "variational"
    assert (out / "lab_validation.png").stat().st_size > 1000

    # Another setting in the same folder is refused rather than mixed with (or overwriting) these runs.
    with pytest.raises(ValueError, match="another setting"):
        run_lab(out, ("none",), **{**TINY, "hidden": 5}, progress=False, log=logs.append)


def test_lab_never_overwrites_a_lab_md_of_the_users(tmp_path, capsys):
    out = tmp_path / "lab"
    out.mkdir()
    (out / "lab.md").write_text("# my own notes\n")
    argv = ["lab", "--out", str(out), "--runs", "none", "--dataset", "builtin", "--hidden", "4", "--epochs", "1",
            "--train-tokens", "600", "--eval-batch", "50", "--no-progress"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lab.md exists and the lab did not write it" in err and "--force" in err
    assert (out / "lab.md").read_text() == "# my own notes\n" and not (out / "none").exists()
    assert cli.main(argv + ["--force"]) == 0
    capsys.readouterr()
    assert (out / "lab.md").read_text().startswith("<!-- written by `minilstm lab`")
    assert cli.main(argv) == 0  # its own lab.md is replaced without --force
    text = capsys.readouterr().out
    assert "\n| run |" in text and "<!--" not in text  # the table, without the marker


def test_lab_killed_in_a_first_epoch_continues_and_says_how(tmp_path):
    """kill -9 before a run's first epoch ends leaves only its config.json: running the lab again starts that
    run afresh (it used to refuse: 'already holds a run'); after Ctrl-C the lab prints the command to continue."""
    out = tmp_path / "lab"

    def stop(info):
        raise KeyboardInterrupt

    logs = []
    res = run_lab(out, ("none",), **TINY, progress=False, log=logs.append, on_step=stop, again="minilstm lab --x")
    assert res["interrupted"] and "continue where it stopped with: minilstm lab --x" in logs[-2]
    for name in ("last.npz", "metrics.jsonl"):  # as if killed (kill -9): nothing saved but config.json
        (out / "none" / name).unlink()
    assert sorted(p.name for p in (out / "none").iterdir()) == ["config.json"]
    res = run_lab(out, ("none",), **TINY, progress=False, log=logs.append)
    assert not res["interrupted"] and [r["run"] for r in res["rows"]] == ["none"]


def test_lab_with_a_damaged_summary_is_one_line_naming_the_file(tmp_path, capsys):
    run = tmp_path / "lab" / "none"
    run.mkdir(parents=True)
    for text, says in (('{"valid_ppl": 1', "not valid JSON"), ("[]", "not a JSON object"),
                       ('{"valid_ppl": "x", "test_ppl": 1, "train_time_s": 1}', "valid_ppl is missing or not")):
        (run / "summary.json").write_text(text)
        assert cli.main(["lab", "--out", str(tmp_path / "lab"), "--runs", "none", "--dataset", "builtin",
                         "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{run / 'summary.json'} is not a readable run summary" in err and says in err


def test_lab_jobs_two_gives_the_table_of_jobs_one(tmp_path):
    """--jobs 2 runs the settings side by side, each from its own seed: the same numbers, run by run."""
    keys = ("train_ppl", "best_valid_ppl", "best_epoch", "final_valid_ppl", "test_ppl", "valid_curve")
    tables = []
    for jobs in (1, 2):
        res = run_lab(tmp_path / f"j{jobs}", ("none", "zaremba"), **TINY, progress=False, log=lambda s: None,
                      jobs=jobs)
        assert not res["interrupted"]
        tables.append([{k: r[k] for k in ("run", *keys)} for r in res["rows"]])
    assert [r["run"] for r in tables[0]] == ["none", "zaremba"]
    assert tables[0] == tables[1]


def test_lab_refuses_bad_jobs(tmp_path):
    with pytest.raises(ValueError, match="--jobs must be a whole number"):
        run_lab(tmp_path / "x", ("none",), **TINY, progress=False, log=lambda s: None, jobs=0)
    assert not (tmp_path / "x").exists()
