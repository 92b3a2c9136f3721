"""Training curves of one or several runs, drawn into one PNG file.

A run folder (what ``minilstm train --out DIR`` writes) holds ``metrics.jsonl``,
one JSON object per line, and ``config.json``. The lines we plot look like::

    {"event": "epoch", "epoch": 3, "lr": 1.0, "train_ppl": 120.5, "valid_ppl": 130.2,
     "grad_norm": 3.1, "grad_norm_max": 9.0, ...}

and a final ``{"event": "test", "test_ppl": ...}`` line after training. Lines with
other events (e.g. per-step ``"step"`` lines) are ignored. ``summary.json``, written
at the end, may hold ``best_perplexity``: the built-in corpus's true optimum.

A *compare folder* (what plain ``minilstm train`` writes: ``runs/tiny`` holding
``no-dropout/`` and ``dropout/``) stands for the run folders inside it.

The figure has three panels:

(a) train (dashed) and validation (solid) perplexity per epoch, one colour per
    run, on a log scale. This is the story of Zaremba et al. (2014): without
    dropout the validation perplexity turns upward after a few epochs while the
    training perplexity keeps falling (overfitting); with dropout the two stay
    close and validation ends much lower. A dotted black line marks the best
    possible validation perplexity, where the corpus says what it is.
(b) the learning rate per epoch (the SGD schedule: constant, then divided by a
    fixed factor every epoch, a straight line on a log scale);
(c) the gradient norm before clipping: the mean over each epoch's steps
    (solid) and the largest one (dotted), with the clipping threshold.

We draw with matplotlib's object-oriented API, a ``Figure`` attached to a
``FigureCanvasAgg``, and never import ``matplotlib.pyplot``: that needs no
display or GUI backend (it works on a server or in CI), leaves the global
backend choice alone, and the figure is freed as soon as we drop it, whereas
pyplot keeps every figure alive until ``plt.close`` is called.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic

__all__ = ["NotARunFolderError", "read_metrics", "read_config", "read_best", "run_folders", "run_label",
           "epoch_rows", "plot_runs"]


class NotARunFolderError(FileNotFoundError, ValueError):
    """A folder given to read (plot, eval, sample) is not a minilstm run folder, or not a readable one.

    It is a FileNotFoundError (the file is missing) and a ValueError (bad input), so
    callers that catch either one report it cleanly. Its counterpart for writing,
    ``runfolder.RunFolderError``, is raised when ``train`` cannot use a folder.
    """


# --------------------------------------------------------------------------- reading a run folder


def read_metrics(run_dir) -> list[dict]:
    """All the JSON objects of ``run_dir/metrics.jsonl``, in file order."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        where = "does not exist" if not run_dir.exists() else "has no metrics.jsonl"
        raise NotARunFolderError(f"{run_dir} is not a minilstm run folder: it {where}. A run folder is what "
                             "`minilstm train --out DIR` writes; it fills in after the first epoch.")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            if number == len(lines):
                # A run killed while appending may leave half a last line; the rest is still good.
                continue
            raise NotARunFolderError(f"{path}, line {number}: not valid JSON ({exc})") from exc
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_config(run_dir) -> dict:
    """``run_dir/config.json`` as a dict, or {} if it is missing or unreadable (it is only used for labels)."""
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def read_best(run_dir) -> dict | None:
    """The corpus's best possible perplexity per split, from ``run_dir/summary.json`` (None if unknown)."""
    try:
        best = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8")).get("best_perplexity")
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(best, dict) and all(isinstance(v, (int, float)) for v in best.values())
    return best if ok and best else None


def run_folders(path) -> list[Path]:
    """The run folders ``path`` stands for: itself if it holds ``metrics.jsonl``, else the sub-folders
    that do (a compare folder, e.g. ``runs/tiny`` with ``no-dropout/`` and ``dropout/``), in the
    order they were trained. Raises NotARunFolderError if there are none."""
    path = Path(path)
    if (path / "metrics.jsonl").is_file():
        return [path]
    subs = [d for d in sorted(path.iterdir()) if (d / "metrics.jsonl").is_file()] if path.is_dir() else []
    if not subs:
        read_metrics(path)  # raises the error that says what is missing
    # config.json is written when a run starts: its age gives the training order.
    return sorted(subs, key=lambda d: (d / "config.json").stat().st_mtime if (d / "config.json").exists() else 0)


def run_label(run_dir, config: dict | None = None) -> str:
    """The legend text of a run: config "label", else config "name", else the folder's name."""
    config = read_config(run_dir) if config is None else config
    for key in ("label", "name"):
        if isinstance(config.get(key), str) and config[key].strip():
            return config[key]
    return Path(run_dir).resolve().name


def epoch_rows(rows: list[dict]) -> list[dict]:
    """The per-epoch rows, sorted by epoch; if an epoch appears twice (a resumed run) the last one wins."""
    by_epoch = {}
    for row in rows:
        is_epoch = row.get("event", "epoch") == "epoch" and isinstance(row.get("epoch"), (int, float))
        if is_epoch:
            by_epoch[row["epoch"]] = row
    return [by_epoch[e] for e in sorted(by_epoch)]


@dataclass
class _Run:
    label: str
    epochs: list[dict]
    test_ppl: float | None = None
    config: dict = field(default_factory=dict)
    best: dict | None = None  # best possible perplexity per split (summary.json), if the corpus knows it

    def series(self, key: str) -> tuple[list, list]:
        """(epochs, values) of one metric; missing or non-finite values (a diverged run) are skipped."""
        xs, ys = [], []
        for row in self.epochs:
            value = row.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                xs.append(row["epoch"])
                ys.append(value)
        return xs, ys


def _load_run(run_dir: Path) -> _Run:
    rows = read_metrics(run_dir)
    config = read_config(run_dir)
    tests = [r["test_ppl"] for r in rows if r.get("event") == "test" and isinstance(r.get("test_ppl"), (int, float))]
    return _Run(run_label(run_dir, config), epoch_rows(rows), tests[-1] if tests else None, config,
                read_best(run_dir))


def _unique_labels(runs: list[_Run], dirs: list[Path]) -> None:
    """Two runs with the same label (e.g. both named "tiny") get their folder name appended."""
    labels = [r.label for r in runs]
    for run, d in zip(runs, dirs):
        if labels.count(run.label) > 1:
            run.label = f"{run.label} [{d.name}]"


# --------------------------------------------------------------------------- the three panels


def _color(i: int) -> str:
    return f"C{i % 10}"  # matplotlib's default colour cycle


def _plain_log_formatter(**kwargs):
    """A log-axis tick formatter that writes 0.1, 200 and 1e-05 (Python's "g") instead of 10^-1, 2x10^2."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):  # LogFormatter decides WHICH ticks get a label
            return f"{x:g}"

    return PlainLogFormatter(**kwargs)


def style_epoch_axes(ax, title: str, ylabel: str, log: bool = True) -> None:
    """Axes over epochs, as every minilstm figure draws them: integer epochs and, with ``log``, a
    log y-axis labelled with plain numbers (the lab and lessons 7 and 9 use it too)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title, fontsize=11)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 2.5"
    ax.grid(True, which="major", alpha=0.3)
    if log:
        ax.set_yscale("log")
        # Plain numbers (200, 300) instead of 2x10^2: easier to read for perplexities.
        ax.yaxis.set_major_formatter(_plain_log_formatter())
        ax.yaxis.set_minor_formatter(_plain_log_formatter(labelOnlyBase=False))
        ax.grid(True, which="minor", alpha=0.1)


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in metrics.jsonl", ha="center", va="center",
            transform=ax.transAxes, color="0.4")


def _plot_perplexity(ax, runs: list[_Run]) -> None:
    from matplotlib.lines import Line2D

    any_data = any_test = False
    for i, run in enumerate(runs):
        c = _color(i)
        x, train = run.series("train_ppl")
        if x:
            ax.plot(x, train, ls="--", marker="o", ms=3, color=c, alpha=0.8)
        x, valid = run.series("valid_ppl")
        if x:
            ax.plot(x, valid, ls="-", marker="o", ms=3, lw=2, color=c)
            best = min(range(len(valid)), key=valid.__getitem__)
            ax.plot(x[best], valid[best], marker="*", ms=13, color=c, markeredgecolor="black", ls="none")
        if run.test_ppl is not None and math.isfinite(run.test_ppl) and run.epochs:
            # The test perplexity is measured once, with the final weights: plot it at the last epoch.
            ax.plot(run.epochs[-1]["epoch"], run.test_ppl, marker="D", ms=7, color=c,
                    markeredgecolor="black", ls="none")
            any_test = True
        any_data = any_data or bool(train) or bool(valid)
    if not any_data:
        _no_data(ax, "perplexities")
    best_ppl = next((run.best["valid"] for run in runs if run.best and "valid" in run.best), None)
    if best_ppl is not None and any_data:
        ax.axhline(best_ppl, color="black", ls=":", lw=1.5)
    style_epoch_axes(ax, "(a) Perplexity: train (dashed) vs. validation (solid)",
                "perplexity (log scale, lower is better)", log=any_data)

    # One legend: a colour per run, then what the line styles and markers mean.
    handles = [Line2D([], [], color=_color(i), lw=2, label=run.label) for i, run in enumerate(runs)]
    handles += [Line2D([], [], color="0.3", ls="--", label="train"),
                Line2D([], [], color="0.3", ls="-", lw=2, label="validation"),
                Line2D([], [], color="0.6", marker="*", ms=11, markeredgecolor="black", ls="none",
                       label="best validation")]
    if any_test:
        handles.append(Line2D([], [], color="0.6", marker="D", ms=6, markeredgecolor="black", ls="none",
                              label="test (final weights)"))
    if best_ppl is not None and any_data:
        handles.append(Line2D([], [], color="black", ls=":", lw=1.5,
                              label=f"best possible (validation): {best_ppl:.2f}"))
    ax.legend(handles=handles, fontsize=8, loc="best")


def _plot_learning_rate(ax, runs: list[_Run]) -> None:
    any_data = False
    for i, run in enumerate(runs):
        x, lr = run.series("lr")
        if x:
            ax.plot(x, lr, marker="o", ms=3, color=_color(i), label=run.label)
            any_data = True
    positive = any_data and all(v > 0 for run in runs for v in run.series("lr")[1])
    if not any_data:
        _no_data(ax, "learning rates")
    style_epoch_axes(ax, "(b) Learning rate (SGD schedule)",
                "learning rate" + (" (log scale)" if positive else ""), log=positive)


def _plot_grad_norm(ax, runs: list[_Run]) -> None:
    from matplotlib.lines import Line2D

    any_data = any_max = False
    for i, run in enumerate(runs):
        c = _color(i)
        x, mean = run.series("grad_norm")
        if x:
            ax.plot(x, mean, ls="-", marker="o", ms=3, color=c)
            any_data = True
        x, peak = run.series("grad_norm_max")
        if x:
            ax.plot(x, peak, ls=":", marker=".", color=c)
            any_data = any_max = True
    # The clipping threshold(s) from the configs: norms above it were scaled down to it.
    clips = sorted({float(r.config["max_grad_norm"]) for r in runs
                    if isinstance(r.config.get("max_grad_norm"), (int, float)) and r.config["max_grad_norm"] > 0})
    for clip in clips:
        ax.axhline(clip, color="0.5", ls="-.", lw=1)
    values = [v for run in runs for key in ("grad_norm", "grad_norm_max") for v in run.series(key)[1]]
    positive = any_data and all(v > 0 for v in values)
    if not any_data:
        _no_data(ax, "gradient norms")
    style_epoch_axes(ax, "(c) Gradient norm before clipping", "global L2 norm" + (" (log scale)" if positive else ""),
                log=positive)
    handles = [Line2D([], [], color="0.3", ls="-", marker="o", ms=3, label="mean over the epoch")]
    if any_max:
        handles.append(Line2D([], [], color="0.3", ls=":", marker=".", label="largest in the epoch"))
    if clips:
        handles.append(Line2D([], [], color="0.5", ls="-.", lw=1,
                              label="clipping threshold " + ", ".join(f"{c:g}" for c in clips)))
    ax.legend(handles=handles, fontsize=8, loc="best", title="colours as in (a)", title_fontsize=8)


# --------------------------------------------------------------------------- the figure


def plot_runs(run_dirs, out_path=None, force=False) -> Path:
    """Draw the curves of one or several run folders into one PNG; returns its path.

    run_dirs: run folders, or compare folders standing for the runs inside them (``run_folders``).
    out_path default: ``<run>/curves.png`` for one run, ``<folder>/compare.png`` for one compare
    folder, and ``compare.png`` in the current folder for several folders (it belongs to none of them).
    An existing file is replaced only if minilstm drew it (``check_figure_path``), or with ``force``.
    Runs may have different numbers of epochs; a run with a single epoch is drawn as points.
    """
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    given = [Path(d) for d in run_dirs]
    if not given:
        raise ValueError("plot_runs: give at least one run folder")
    dirs = [run for d in given for run in run_folders(d)]
    runs = [_load_run(d) for d in dirs]  # raises NotARunFolderError before we draw anything
    if not any(run.epochs for run in runs):
        raise NotARunFolderError(f"nothing to plot yet: no finished epoch in {', '.join(map(str, dirs))}")
    _unique_labels(runs, dirs)
    for run in runs:
        if not run.epochs:
            run.label += " (no finished epoch yet)"

    if out_path is None:
        if len(given) > 1:
            # Several folders: the figure belongs to none of them, so it goes where the user is.
            out_path = Path("compare.png")
        else:
            folder = given[0] if dirs[0] != given[0] else dirs[0]
            out_path = folder / ("curves.png" if len(dirs) == 1 else "compare.png")
        default = True
    else:
        default = False
    out_path = Path(out_path)
    check_figure_path(out_path, force, default)

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc

    fig = Figure(figsize=(17, 5), layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself to fig: renders to a PNG with no display needed
    ax_ppl, ax_lr, ax_grad = fig.subplots(1, 3)
    _plot_perplexity(ax_ppl, runs)
    _plot_learning_rate(ax_lr, runs)
    _plot_grad_norm(ax_grad, runs)
    epochs = [row["epoch"] for run in runs for row in run.epochs]
    if max(epochs) - min(epochs) < 2:
        # With one or two epochs matplotlib would zoom in to ticks like 0.975; show whole epochs.
        for ax in (ax_ppl, ax_lr, ax_grad):
            ax.set_xlim(min(epochs) - 1, max(epochs) + 1)
    fig.suptitle("minilstm training curves. Overfitting shows as validation (solid) rising "
                 "while train (dashed) keeps falling", fontsize=12)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_figure(fig, out_path, dpi=100)
    finally:
        fig.clear()  # drop the artists now; the Figure itself is freed with the last reference
    return out_path


# Written into every figure's PNG metadata ("Software"), so a later run knows the file is its own to replace.
FIGURE_MARK = "minilstm"


def save_figure(fig, path, dpi=100) -> Path:
    """Write ``fig`` as a PNG at ``path``: to a temporary file renamed over it, so an image viewer
    never shows a half-written file and a failed write leaves the old one whole. The PNG carries
    FIGURE_MARK, which ``drawn_by_minilstm`` recognises."""
    path = Path(path)
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": f"{FIGURE_MARK} (matplotlib)"})
    return path


def drawn_by_minilstm(path) -> bool:
    """True if ``path`` is a PNG whose metadata says minilstm drew it (``save_figure``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)  # the text chunks come before the image data
    except OSError:
        return False
    return head.startswith(b"\x89PNG\r\n\x1a\n") and b"Software\x00" + FIGURE_MARK.encode() in head


def check_figure_path(path, force=False, default=False) -> None:
    """Refuse to draw over what is not a figure of ours: a checkpoint, a results file, a user's image.

    The name must end in .png (the figure is a PNG, and a name like ``best.npz`` is always a
    mistake). An existing file is replaced only if minilstm drew it, or if it is the default figure
    of a run folder (curves.png, compare.png: written by train before figures were marked), or with
    ``force``; a folder never.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"-o {path} is a folder; give a file name ending in .png, e.g. {path / 'curves.png'}")
    if path.suffix.lower() != ".png":
        raise ValueError(f"-o {path}: the figure is a PNG image; give a file name ending in .png")
    if force or not (path.exists() or path.is_symlink()) or drawn_by_minilstm(path):
        return
    if default and path.name in ("curves.png", "compare.png") and path.read_bytes()[:4] == b"\x89PNG":
        return
    raise ValueError(f"{path} already exists and minilstm did not draw it; choose another -o, or pass --force "
                     "to replace it")
