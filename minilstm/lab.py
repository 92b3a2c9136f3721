"""The regularization lab: the paper's placement of dropout against what came before and after it.

    minilstm lab [--out runs/lab]

On a 2-core CPU the six runs took 1 h 26 min as two processes of three (``--runs``), one BLAS
thread each, side by side; the README shows the commands.

One command trains the README's overfitting setting (a 2x400 LSTM, init 0.05,
constant learning rate 1, clip 5, batch 20, 20 steps, 8 epochs on the first
300,000 words of the Penn Treebank training split) six times, changing only
the regularization:

    none                 no dropout
    recurrent            D on h_{t-1} too, a fresh mask every step (the naive placement)
    zaremba              D on the non-recurrent connections only (the paper)
    variational          D on inputs, outputs and h_{t-1}, one mask per sequence (Gal & Ghahramani 2016)
    zaremba+tied         zaremba, decoder = transposed embedding (Press & Wolf 2017; Inan et al. 2017)
    variational+tied     variational, tied

and writes, into the output folder, one sub-folder per run (a normal run
folder: ``minilstm plot`` and ``minilstm eval`` work on it), a table
(``lab.md`` and ``lab.json``) and one figure of the validation curves
(``lab_validation.png``).

It resumes where it stopped: a run with a ``summary.json`` is finished and
skipped; a run with only a ``last.npz`` (stopped by Ctrl-C, or killed: the
last epoch boundary) continues from it, exactly as ``minilstm train --resume``
would; a run killed before its first epoch ended starts again. Running the same
command again after an interruption is all it takes (it prints that command).

The table and the figure are the lab's own files: it replaces them only if it
wrote them (a marker in each), so a ``lab.md`` of your own in the folder is
refused, not overwritten, unless ``--force``.

``--train-tokens``, ``--epochs`` and ``--hidden`` shrink it (the tests run it
in seconds on the built-in corpus). One seed, one small slice of data: the
table shows what these settings do here, not a ranking that would survive
other seeds, sizes or schedules.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from . import atomic
from .experiments import runner
from .choices import DATASETS, DROPOUT_MODES


@dataclass(frozen=True)
class LabRun:
    name: str           # the sub-folder
    dropout_mode: str   # one of choices.DROPOUT_MODES
    tie_weights: bool
    label: str          # for the table and the figure

    def uses_dropout(self):
        return self.dropout_mode != "none"


RUNS = (
    LabRun("none", "none", False, "no dropout"),
    LabRun("recurrent", "recurrent", False, "recurrent (naive)"),
    LabRun("zaremba", "zaremba", False, "zaremba (the paper)"),
    LabRun("variational", "variational", False, "variational (Gal & Ghahramani)"),
    LabRun("zaremba-tied", "zaremba", True, "zaremba + tied weights"),
    LabRun("variational-tied", "variational", True, "variational + tied weights"),
)
assert all(r.dropout_mode in DROPOUT_MODES for r in RUNS)
RUN_NAMES = tuple(r.name for r in RUNS)

# The README's overfitting setting: `small` with these changes.
SETTING = dict(hidden_size=400, init_scale=0.05, epochs=8, max_epoch=8, train_tokens=300_000)


def lab_config(run: LabRun, dataset="ptb", hidden=None, epochs=None, train_tokens=None, dropout=0.5, seed=0,
               eval_batch=1):
    """The Config of one run of the lab (the README's setting unless shrunk)."""
    import dataclasses

    from .config import get_config

    epochs = SETTING["epochs"] if epochs is None else epochs
    cfg = get_config(
        "small", dataset=dataset,
        hidden_size=SETTING["hidden_size"] if hidden is None else hidden,
        init_scale=SETTING["init_scale"], epochs=epochs, max_epoch=epochs,  # constant learning rate 1
        train_tokens=SETTING["train_tokens"] if train_tokens is None else train_tokens,
        dropout=dropout if run.uses_dropout() else 0.0, dropout_mode=run.dropout_mode,
        tie_weights=run.tie_weights, seed=seed, eval_batch_size=eval_batch)
    return dataclasses.replace(cfg, name=f"lab-{run.name}")


def _finished(run_dir: Path) -> bool:
    return (run_dir / "summary.json").is_file()


def read_summary(path: Path) -> dict:
    """A finished run's summary.json, checked: a damaged one is a one-line error naming the file."""
    import math

    def bad(why):
        return ValueError(f"{path} is not a readable run summary ({why}); delete it and run the lab again to "
                          f"redo that run from its last.npz, or choose another --out")

    try:
        s = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    except ValueError as exc:
        raise bad(f"not valid JSON: {exc}") from None
    if not isinstance(s, dict):
        raise bad("not a JSON object")
    number = (int, float)
    for key in ("valid_ppl", "test_ppl", "train_time_s"):
        if isinstance(s.get(key), bool) or not isinstance(s.get(key), number):
            raise bad(f"{key} is missing or not a number")
    if not isinstance(s.get("config"), dict) or not isinstance(s["config"].get("dropout"), number):
        raise bad("no config with a dropout")
    epochs = s.get("epochs")
    if not isinstance(epochs, list) or not epochs or not all(
            isinstance(e, dict) and isinstance(e.get("epoch"), int)
            and all(isinstance(e.get(k), number) and not isinstance(e.get(k), bool) and not math.isnan(e[k])
                    for k in ("train_ppl", "valid_ppl")) for e in epochs):
        raise bad("'epochs' is not a list of epoch records with train_ppl and valid_ppl")
    return s


# The lab's own output files, and how each is recognised as the lab's (so it is never a user's file
# that gets replaced): lab.md starts with MARK (or, written before the mark existed, the table's
# header); lab.json holds "written_by"; the figure carries plots.FIGURE_MARK.
MARK = "<!-- written by `minilstm lab`: replaced by each run of the lab -->"
_HEADER = "| run | dropout | train | best valid (epoch) | final valid | test | training time |"
OUTPUTS = ("lab.md", "lab.json", "lab_validation.png")


def _ours(path: Path) -> bool:
    from .plots import drawn_by_minilstm

    if path.name == "lab_validation.png":
        return drawn_by_minilstm(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if path.name == "lab.md":
        return text.split("\n", 1)[0] in (MARK, _HEADER)
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and (data.get("written_by") == "minilstm lab" or set(data) == {"runs"})


def check_outputs(out_dir: Path, force=False) -> None:
    """Before any training: refuse an output folder whose lab.md, lab.json or figure the lab did not write."""
    for name in OUTPUTS:
        path = out_dir / name
        if path.is_dir():
            raise ValueError(f"{path} is a folder, where the lab writes its {name}; move it away or choose "
                             "another --out")
        if path.exists() and not force and not _ours(path):
            raise ValueError(f"{path} exists and the lab did not write it; move it away, choose another --out, "
                             f"or pass --force to replace it")


def run_lab(out_dir, runs=RUN_NAMES, dataset="ptb", hidden=None, epochs=None, train_tokens=None, dropout=0.5,
            seed=0, data_dir=None, device=None, progress=True, log=print, on_step=None, eval_batch=1,
            force=False, again="minilstm lab", jobs=1) -> dict:
    """Train every run not yet finished (resuming a stopped one), then write the table and the figure.

    jobs: runs side by side in that many worker processes, one BLAS thread each (runner.run_all); each
    run draws only from its own seed, so the table is the same as one run after another.

    force: replace a lab.md, lab.json or figure in ``out_dir`` that the lab did not write.
    again: the command that continues the lab, printed when it is interrupted.
    Returns {"interrupted": bool, "rows": [...], "table": path, "figure": path or None}.
    """
    from .data import load_corpus

    out_dir = Path(out_dir)
    runner.whole_number(jobs, "--jobs", 1, 64)
    unknown = sorted(set(runs) - set(RUN_NAMES))
    if unknown:
        raise ValueError(f"unknown lab run(s) {unknown}; choose from {', '.join(RUN_NAMES)}")
    chosen = [r for r in RUNS if r.name in runs]
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file, not a folder; choose another --out")
    if out_dir.is_dir():
        check_outputs(out_dir, force)
    corpus = load_corpus(dataset, data_dir=data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    for i, run in enumerate(chosen, 1):
        run_dir = out_dir / run.name
        cfg = lab_config(run, dataset, hidden, epochs, train_tokens, dropout, seed, eval_batch)
        if _finished(run_dir):
            saved = read_summary(run_dir / "summary.json")["config"]
            if saved != cfg.to_dict():
                raise ValueError(f"{run_dir} holds a finished run with another setting; choose another --out "
                                 "(nothing was overwritten)")
            log(f"[lab {i}/{len(chosen)}] {run.name}: finished already, skipped")
            continue
        resume = (run_dir / "last.npz").is_file()
        log(f"[lab {i}/{len(chosen)}] {run.name}: {'resuming' if resume else 'training'} ({run.label})"
            + (" in a worker process" if jobs > 1 else ""))
        todo.append((run.name, (cfg, str(run_dir), dataset, data_dir, device, progress and jobs == 1)))
    if jobs > 1 and on_step is not None:
        raise ValueError("on_step works with jobs=1 only (a worker process cannot call back)")
    run_one = _run_one if jobs > 1 else functools.partial(_run_one, corpus=corpus, on_step=on_step, log=log)
    summaries, interrupted = runner.run_all(todo, run_one, jobs, log)
    if interrupted:
        stopped = [name for name, _ in todo if summaries.get(name, {"interrupted": True}).get("interrupted")]
        log(f"lab interrupted in {', '.join(stopped)}; continue where it stopped with: {again}")
    rows = collect(out_dir, chosen)
    table = write_table(out_dir, rows)
    figure = plot_validation(out_dir, chosen)
    log(f"table: {table}" + (f"\nfigure: {figure}" if figure else ""))
    return {"interrupted": interrupted, "rows": rows, "table": table, "figure": figure}


def _run_one(name, job, in_worker, corpus=None, on_step=None, log=print):
    """Train (or resume) one run of the lab; in a worker process it loads its own corpus."""
    from .data import load_corpus
    from .training import train

    cfg, run_dir, dataset, data_dir, device, progress = job
    corpus = corpus if corpus is not None else load_corpus(dataset, data_dir=data_dir)
    res = train(cfg, out_dir=Path(run_dir), resume=(Path(run_dir) / "last.npz").is_file(), corpus=corpus,
                device=device, progress=progress, log=runner.worker_log if in_worker else log, on_step=on_step)
    return {"interrupted": bool(res.interrupted)}


def collect(out_dir, runs=RUNS) -> list[dict]:
    """One row per finished run, from its summary.json."""
    rows = []
    for run in runs:
        path = Path(out_dir) / run.name / "summary.json"
        if not path.is_file():
            continue
        s = read_summary(path)
        epochs = s["epochs"]
        best = min(epochs, key=lambda e: e["valid_ppl"])
        rows.append({
            "run": run.name, "label": run.label, "dropout_mode": run.dropout_mode,
            "dropout": s["config"]["dropout"], "tie_weights": run.tie_weights,
            "train_ppl": epochs[-1]["train_ppl"], "best_valid_ppl": best["valid_ppl"], "best_epoch": best["epoch"],
            "final_valid_ppl": s["valid_ppl"], "test_ppl": s["test_ppl"], "train_time_s": s["train_time_s"],
            "valid_curve": [e["valid_ppl"] for e in epochs], "config": s["config"],
        })
    return rows


def write_table(out_dir, rows) -> Path:
    """lab.md (a markdown table) and lab.json (every figure, curves included)."""
    out_dir = Path(out_dir)
    lines = [MARK, _HEADER, "|---|---|---|---|---|---|---|"]
    for r in rows:
        drop = "none" if r["dropout_mode"] == "none" else f"{r['dropout']:g} `{r['dropout_mode']}`"
        drop += ", tied" if r["tie_weights"] else ""
        lines.append(f"| {r['run']} | {drop} | {r['train_ppl']:.1f} | {r['best_valid_ppl']:.1f} ({r['best_epoch']}) "
                     f"| {r['final_valid_ppl']:.1f} | {r['test_ppl']:.1f} | {r['train_time_s'] / 60:.1f} min |")
    atomic.write_text(out_dir / "lab.md", "\n".join(lines) + "\n")
    atomic.write_text(out_dir / "lab.json", json.dumps({"written_by": "minilstm lab", "runs": rows}, indent=2) + "\n")
    return out_dir / "lab.md"


def plot_validation(out_dir, runs=RUNS, path=None):
    """One figure: validation perplexity per epoch of every run with metrics (finished or not)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from .plots import epoch_rows, read_metrics, save_figure, style_epoch_axes

    out_dir = Path(out_dir)
    path = Path(path) if path else out_dir / "lab_validation.png"
    colours = {"none": "black", "recurrent": "tab:red", "zaremba": "tab:blue", "variational": "tab:green"}
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for run in runs:
        metrics = out_dir / run.name / "metrics.jsonl"
        if not metrics.is_file():
            continue
        rows = [r for r in epoch_rows(read_metrics(out_dir / run.name)) if math.isfinite(r["valid_ppl"])]
        if not rows:
            continue
        ax.plot([r["epoch"] for r in rows], [r["valid_ppl"] for r in rows], marker="o", markersize=3,
                color=colours.get(run.dropout_mode, "grey"), linestyle="--" if run.tie_weights else "-",
                label=run.label)
        drawn += 1
    if not drawn:
        return None
    style_epoch_axes(ax, "Regularization lab: validation perplexity (one seed)",
                     "validation perplexity (log scale)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def add_cli(sub):
    """Register ``minilstm lab`` on the command line's sub-parsers (cli.py lists this module)."""
    from .cliargs import add_data_dir_flag, add_device_flags, float_arg, int_arg, path_arg

    p = sub.add_parser(
        "lab", help="the regularization lab: six dropout/tying settings on the README's overfitting setting",
        description=__doc__.split("\n\n")[0].rstrip(".") + ". Trains no dropout, recurrent, zaremba, variational, "
        "zaremba+tied and variational+tied (2x400, 300k PTB words, 8 epochs: 20-25 min each on one core), "
        "then writes lab.md, lab.json and lab_validation.png. Run the same command again to resume where it "
        "stopped (after Ctrl-C or a kill).")
    p.add_argument("--out", type=path_arg, default="runs/lab",
                   help="output folder, one sub-folder per run (default runs/lab)")
    p.add_argument("--runs", nargs="+", choices=RUN_NAMES, default=list(RUN_NAMES), help="which runs (default all)")
    p.add_argument("--dataset", choices=DATASETS, default="ptb", help="default ptb (builtin: a quick try)")
    p.add_argument("--train-tokens", type=int_arg(1, 10**9),
                   help=f"first K training words (default {SETTING['train_tokens']:,})")
    p.add_argument("--epochs", type=int_arg(1, 100_000), help=f"epochs, all at lr 1 (default {SETTING['epochs']})")
    p.add_argument("--hidden", type=int_arg(1, 16384), help=f"hidden units H (default {SETTING['hidden_size']})")
    p.add_argument("--dropout", type=float_arg(0, 1, hi_open=True), default=0.5,
                   help="p of every run with dropout (default 0.5)")
    p.add_argument("--seed", type=int_arg(0, 2**63 - 1), default=0)
    p.add_argument("--jobs", type=int_arg(1, 64), default=1,
                   help="runs side by side, one BLAS thread each (default 1; 2 on a 2-core machine is faster)")
    p.add_argument("--eval-batch", type=int_arg(1, 100_000), default=1,
                   help="evaluation streams (default 1: the split as one stream, as in the README)")
    p.add_argument("--force", action="store_true",
                   help="replace a lab.md, lab.json or lab_validation.png in --out that the lab did not write")
    add_data_dir_flag(p)
    add_device_flags(p)
    p.set_defaults(func=_cmd_lab)


def _again(args) -> str:
    """The command line that continues this lab: the same flags (only those that differ from the defaults)."""
    import shlex

    words = ["minilstm", "lab", "--out", args.out]
    if list(args.runs) != list(RUN_NAMES):
        words += ["--runs", *args.runs]
    for flag, value, default in (("--dataset", args.dataset, "ptb"), ("--train-tokens", args.train_tokens, None),
                                 ("--epochs", args.epochs, None), ("--hidden", args.hidden, None),
                                 ("--dropout", args.dropout, 0.5), ("--seed", args.seed, 0),
                                 ("--eval-batch", args.eval_batch, 1), ("--data-dir", args.data_dir, None),
                                 ("--device", args.device, None)):
        if value != default:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return " ".join(shlex.quote(w) for w in words)


def _cmd_lab(args):
    res = run_lab(args.out, args.runs, args.dataset, args.hidden, args.epochs, args.train_tokens, args.dropout,
                  args.seed, args.data_dir, args.device, progress=not args.no_progress, eval_batch=args.eval_batch,
                  force=args.force, again=_again(args), jobs=args.jobs)
    if res["interrupted"]:
        return 130
    text = Path(res["table"]).read_text()
    print(text.removeprefix(MARK + "\n"), end="")  # the marker is for the lab, not for the reader
    return 0
