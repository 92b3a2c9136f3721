"""Training-curve plots from run folders (metrics.jsonl + config.json)."""

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from minilstm.plots import NotARunFolderError, epoch_rows, plot_runs, read_metrics, run_label  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _epoch(e, overfit):
    lr = 1.0 / 2 ** max(e - 4, 0)
    train = 40 + 300 * math.exp(-0.3 * e)
    valid = 120 + 200 * math.exp(-0.4 * e) + (5 * (e - 4) ** 2 if overfit else 0)
    return {"event": "epoch", "epoch": e, "lr": lr, "train_ppl": train, "valid_ppl": valid,
            "grad_norm": 3.0 + 0.1 * e, "grad_norm_max": 9.0 - 0.2 * e, "tokens_per_s": 6000.0, "time_s": 120.0}


def _make_run(folder, epochs, overfit=False, config=None, test_ppl=None):
    folder.mkdir(parents=True)
    rows = [_epoch(e, overfit) for e in range(1, epochs + 1)]
    rows.insert(1, {"event": "step", "step": 10, "loss": 5.2, "grad_norm": 2.0})  # must be ignored
    if test_ppl is not None:
        rows.append({"event": "test", "valid_ppl": rows[-1]["valid_ppl"], "test_ppl": test_ppl})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def _assert_png(path, min_bytes=10_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert min_bytes < len(data) < 5_000_000


def test_two_runs_of_different_lengths(tmp_path, monkeypatch):
    a = _make_run(tmp_path / "no-dropout", 8, overfit=True, test_ppl=300.0,
                  config={"label": "no dropout", "name": "tiny", "dropout": 0.0, "max_grad_norm": 5.0})
    b = _make_run(tmp_path / "dropout", 5, config={"name": "tiny 2x128 dropout 0.5", "dropout": 0.5})
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    out = plot_runs([a, b])
    # Several runs: the figure belongs to none of them, so it goes where the user is, not into a/.
    assert out == Path("compare.png") and (here / "compare.png").is_file()
    assert not (a / "compare.png").exists()
    _assert_png(here / "compare.png")
    assert not list(tmp_path.rglob("*.tmp"))
    assert plot_runs([a, b]) == Path("compare.png")  # its own figure is replaced without --force

    explicit = plot_runs([str(a), str(b)], tmp_path / "figs" / "both.png")
    assert explicit == tmp_path / "figs" / "both.png"
    _assert_png(explicit)


def test_single_run_with_one_epoch(tmp_path):
    run = _make_run(tmp_path / "short", 1)  # no config.json: the label is the folder name
    assert run_label(run) == "short"
    out = plot_runs([run])
    assert out == run / "curves.png"
    _assert_png(out, min_bytes=5_000)


def test_read_metrics_and_epoch_rows(tmp_path):
    run = _make_run(tmp_path / "r", 3, config={"label": "my run"}, test_ppl=150.0)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(_epoch(2, False) | {"valid_ppl": 99.0}) + "\n")  # a resumed epoch 2
        fh.write('{"event": "epo')  # a half-written last line is skipped
    rows = read_metrics(run)
    assert len(rows) == 6  # 3 epochs + step + test + the repeated epoch
    epochs = epoch_rows(rows)
    assert [r["epoch"] for r in epochs] == [1, 2, 3] and epochs[1]["valid_ppl"] == 99.0
    assert run_label(run) == "my run"


def test_missing_metrics_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "does-not-exist"):
        with pytest.raises(NotARunFolderError, match="not a minilstm run folder") as exc_info:
            plot_runs([folder])
        assert str(folder) in str(exc_info.value)
        assert isinstance(exc_info.value, ValueError)  # the CLI reports ValueErrors cleanly
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_metrics(tmp_path / "empty")


def test_run_without_finished_epoch(tmp_path):
    run = tmp_path / "new"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"event": "step", "step": 1, "loss": 6.0}) + "\n")
    with pytest.raises(NotARunFolderError, match="no finished epoch"):
        plot_runs([run])


def test_plot_never_draws_over_a_file_it_did_not_draw(tmp_path, capsys):
    """`plot RUN -o RUN/best.npz` once wrote a PNG over the checkpoint: now a name that is not .png, a
    folder, or any existing file that minilstm did not draw is refused (one line), --force aside."""
    from minilstm import cli

    run = _make_run(tmp_path / "run", 3)
    (run / "best.npz").write_bytes(b"the checkpoint")
    (run / "mine.png").write_bytes(PNG_MAGIC + b"my own picture")
    for target, says in ((run / "best.npz", "ending in .png"), (run / "mine.png", "minilstm did not draw it"),
                         (tmp_path, "is a folder")):
        assert cli.main(["plot", str(run), "-o", str(target)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("minilstm plot: error: ") and says in err[0], err
    assert (run / "best.npz").read_bytes() == b"the checkpoint"
    assert (run / "mine.png").read_bytes() == PNG_MAGIC + b"my own picture"
    assert cli.main(["plot", str(run), "-o", str(run / "mine.png"), "--force"]) == 0
    _assert_png(run / "mine.png")
    assert cli.main(["plot", str(run), "-o", str(run / "mine.png")]) == 0  # now it is ours: no --force needed
    with pytest.raises(SystemExit):  # an empty -o is not "the current folder"
        cli.main(["plot", str(run), "-o", ""])
    assert "an empty path is not allowed" in capsys.readouterr().err
