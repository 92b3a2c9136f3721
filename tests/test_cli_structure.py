"""The command line's shape (one way to register a command) and the progress a user sees in a log file."""

import importlib
import inspect
import io
import sys
from pathlib import Path

import pytest

from minilstm import cli


def test_every_command_module_registers_itself_with_add_cli_sub():
    """cli.py only lists modules; each offers add_cli(sub), with no extra arguments, and sets func."""
    for name in cli.COMMANDS:
        module = importlib.import_module(name)
        assert list(inspect.signature(module.add_cli).parameters) in (["sub"], ["subparsers"]), name
    source = Path(cli.__file__).read_text()
    assert "def _cmd_" not in source and source.count("add_argument(") == 1  # only --version
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a.choices, dict))
    for command in ("train", "eval", "sample", "plot", "gradcheck", "translate", "lab", "bench"):
        assert callable(sub.choices[command].get_default("func")), command


class _Log(io.StringIO):
    def isatty(self):
        return False


def test_a_log_file_gets_a_few_progress_lines_per_epoch(monkeypatch):
    """Redirected output (no terminal): at most three lines per epoch (25, 50, 75 %), never a bar."""
    from minilstm import progress as pr
    from minilstm.runstate import Progress

    log = _Log()
    monkeypatch.setattr(sys, "stderr", log)
    monkeypatch.setattr(pr.LineProgress, "MIN_INTERVAL_S", 0.0)
    bar = pr.epoch_bar(True, 1000, Progress(epoch=2), 5)
    for _ in range(1000):
        bar.update(1)
        bar.set_postfix(ppl="12.5", tok_s="1,000", refresh=False)
    bar.close()
    lines = log.getvalue().splitlines()
    assert lines == [f"  epoch 2/5: {q}% ({n}/1,000), ppl 12.5, tok/s 1,000" for q, n in ((25, 250), (50, 500),
                                                                                         (75, 750))]
    assert "\r" not in log.getvalue()
    log.truncate(0), log.seek(0)
    assert list(pr.progress_iter(range(8), 8, True, "valid")) == list(range(8))  # evaluation too
    assert log.getvalue().count("valid: ") == 3
    log.truncate(0), log.seek(0)
    monkeypatch.setattr(pr.LineProgress, "MIN_INTERVAL_S", 3600.0)  # a fast epoch prints nothing
    assert list(pr.progress_iter(range(8), 8, True, "valid")) == list(range(8)) and log.getvalue() == ""
    assert pr.progress_iter(range(3), 3, False, "x") == range(3)  # --no-progress: nothing at all


def test_a_resumed_epoch_does_not_repeat_the_quarters_it_passed(monkeypatch):
    from minilstm import progress as pr
    from minilstm.runstate import Progress

    log = _Log()
    monkeypatch.setattr(sys, "stderr", log)
    monkeypatch.setattr(pr.LineProgress, "MIN_INTERVAL_S", 0.0)
    bar = pr.epoch_bar(True, 100, Progress(epoch=1, chunk=60), 3)
    for _ in range(40):
        bar.update(1)
    assert [line.split(":")[1].split("%")[0].strip() for line in log.getvalue().splitlines()] == ["75"]


def test_long_samples_and_gradient_checks_show_progress(monkeypatch, capsys):
    import numpy as np

    from minilstm import gradcheck, progress as pr
    from minilstm.model import LSTMLanguageModel
    from minilstm.sample import sample

    monkeypatch.setattr(sys, "stderr", _Log())
    monkeypatch.setattr(pr.LineProgress, "MIN_INTERVAL_S", 0.0)
    model = LSTMLanguageModel(5, 3, 1, seed=0)
    vocab = ["a", "b", "c", "<eos>", "d"]
    assert len(sample(model, vocab, 40, rng=np.random.default_rng(0), progress=True)) == 40
    assert sys.stderr.getvalue().count("words: ") == 3

    model = LSTMLanguageModel(5, 2, 1, dtype="float64", seed=0)
    seen = []
    tokens = np.zeros((1, 2), dtype=np.int64)
    report = gradcheck.check_model(model, tokens, tokens, direction=True, progress=seen.append)
    assert seen == list(report) and len(seen) == 2 * len(model.params)

    assert cli.main(["gradcheck", "--vocab", "3", "--hidden", "2", "--layers", "1", "--batch", "1", "--steps", "2"]) == 0
    out, err = capsys.readouterr()
    assert "forward passes: roughly" in sys.stderr.getvalue() and out.rstrip().endswith("all gradients match")


@pytest.mark.parametrize("argv", [["eval", ""], ["sample", ""], ["plot", ""], ["train", "--out", ""],
                                  ["lab", "--out", ""], ["eval", "x.npz", "--data-dir", ""]])
def test_an_empty_path_is_an_error_not_the_current_folder(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "an empty path is not allowed" in err
