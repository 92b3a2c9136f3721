"""What a user meets after training: quiet logs, a run folder that plot/eval/sample accept, --version."""

import io
import json
import subprocess
import sys

import pytest

import minilstm
from minilstm import cli
from minilstm import training as tr
from minilstm.data import Corpus, load_corpus

FAST = dict(hidden_size=12, num_steps=8, batch_size=8, epochs=2, max_epoch=1, eval_batch_size=4)


@pytest.fixture(scope="module")
def corpus():
    full = load_corpus("builtin")
    return Corpus(name="builtin-slice", vocab=full.vocab, train=full.train[:4000], valid=full.valid[:1200],
                  test=full.test[:1200], entropy=full.entropy, description="slice for tests")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bars_only_where_someone_watches(monkeypatch):
    from tqdm import tqdm as plain_tqdm

    from minilstm import progress as pr  # the bars every experiment shares

    monkeypatch.setattr(sys, "stderr", io.StringIO())          # a log file, a pipe
    assert pr.bar_class(True) is None
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert pr.bar_class(True) is plain_tqdm
    assert pr.bar_class(False) is None                         # --no-progress stays
    # Jupyter without ipywidgets: the text bar, not tqdm.auto's widget (which warns "IProgress not found")
    monkeypatch.setattr(pr, "_in_jupyter", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    assert pr.bar_class(True) is plain_tqdm


def test_redirected_training_log_is_one_line_per_epoch(corpus, tmp_path, capsys):
    lines = []
    tr.train("tiny", out_dir=tmp_path / "run", corpus=corpus, progress=True, log=lines.append, **FAST)
    captured = capsys.readouterr()
    assert captured.err == "" and "\r" not in captured.out, "progress bars were drawn into a redirected log"
    text = "\n".join(lines)
    assert "\r" not in text
    assert sum(line.startswith("epoch ") for line in lines) == FAST["epochs"]
    # the last words say where everything is and what to try next
    run = tmp_path / "run"
    assert f"saved in {run}: best.npz" in lines[-1] and "last.npz" in lines[-1] and "curves.png" in lines[-1]
    assert [f"minilstm {c} {run}" in lines[-1] for c in ("plot", "eval", "sample")] == [True] * 3


def test_compare_folder_works_with_plot_eval_sample(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tr, "load_corpus", lambda name, data_dir=None: corpus)
    import minilstm.data as data_mod

    monkeypatch.setattr(data_mod, "load_corpus", lambda name, data_dir=None: corpus)
    out = tmp_path / "tiny"
    assert cli.main(["train", "--out", str(out), "--hidden", "12", "--epochs", "2", "--steps", "8", "--batch",
                     "8", "--eval-batch", "4"]) == 0
    printed = capsys.readouterr().out
    tail = printed[printed.index("both runs are in"):]
    assert [f"minilstm {c} {out}" in tail for c in ("plot", "eval", "sample")] == [True] * 3

    (out / "compare.png").unlink()
    assert cli.main(["plot", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "compare.png") and (out / "compare.png").is_file()

    best = min(("no-dropout", "dropout"), key=lambda name: min(
        json.loads(line)["valid_ppl"] for line in (out / name / "metrics.jsonl").read_text().splitlines()
        if json.loads(line).get("event") == "epoch"))
    assert cli.main(["eval", str(out), "--split", "valid", "--eval-batch", "4", "--no-progress"]) == 0
    res = capsys.readouterr()
    assert f"using {out / best / 'best.npz'}" in res.err and str(out / best / "best.npz") in res.out
    assert cli.main(["sample", str(out / "dropout"), "--length", "5"]) == 0
    res = capsys.readouterr()
    assert f"using {out / 'dropout' / 'best.npz'}" in res.err and res.out.strip()

    assert cli.main(["sample", str(tmp_path)]) == 1  # a folder with no checkpoint: one clear line
    assert "holds no checkpoint" in capsys.readouterr().err


def test_plot_draws_the_best_possible_line(tmp_path):
    from matplotlib.figure import Figure

    from minilstm import plots

    for name, valid in (("no-dropout", [30.0, 25.0, 28.0]), ("dropout", [32.0, 22.0, 21.0])):
        run = tmp_path / "tiny" / name
        run.mkdir(parents=True)
        rows = [{"event": "epoch", "epoch": e + 1, "lr": 1.0, "train_ppl": v - 5, "valid_ppl": v,
                 "grad_norm": 1.0, "grad_norm_max": 2.0} for e, v in enumerate(valid)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (run / "summary.json").write_text(json.dumps({"best_perplexity": {"train": 17.1, "valid": 17.25}}))
    runs = [plots._load_run(d) for d in plots.run_folders(tmp_path / "tiny")]
    assert len(runs) == 2
    ax = Figure().subplots()
    plots._plot_perplexity(ax, runs)
    assert any(list(line.get_ydata()) == [17.25, 17.25] for line in ax.lines), "no best-possible line"
    assert any("best possible" in t.get_text() and "17.25" in t.get_text() for t in ax.get_legend().get_texts())
    assert plots.plot_runs(tmp_path / "tiny") == tmp_path / "tiny" / "compare.png"
    with pytest.raises(plots.NotARunFolderError, match="not a minilstm run folder"):
        plots.run_folders(tmp_path)


def test_version_has_one_source():
    out = subprocess.run([sys.executable, "-m", "minilstm", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"minilstm {minilstm.__version__}"
    from importlib.metadata import version

    assert version("minilstm") == minilstm.__version__  # setup.cfg reads minilstm.__version__
