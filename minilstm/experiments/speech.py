"""The paper's Table 2 in miniature: frame classification of speech, without and with dropout.

    minilstm speech [--out runs/speech] [--quick] [--seeds 3] [--jobs 2]

Zaremba et al. (2014, section 4.2) trained an LSTM acoustic model on an
Icelandic speech corpus and reported frame accuracy:

    | model            | training set | validation set |
    |------------------|--------------|----------------|
    | non-regularized  | 71.6         | 68.9           |
    | regularized (D)  | 69.4         | 70.5           |

D trades training accuracy for accuracy on unseen speech. This command runs
the same comparison on synthetic speech frames from a hidden Markov model
(minilstm/data/frames.py), where the best accuracy any left-to-right reader
can reach is known exactly (the Bayes ceiling, by the forward algorithm), or
on your own frames (``--data-dir``). The frame classifier
(minilstm/models/frames.py) is trained without dropout and with D on the
non-recurrent connections (``zaremba``), several seeds each, for a fixed
number of epochs; each run keeps two checkpoints, and both are reported:

* ``last.npz``: the model at the end of the fixed epoch budget (the paper's
  pattern shows most plainly here: the unregularized model overfits);
* ``best.npz``: the epoch of the highest validation frame accuracy, i.e. early
  stopping on the validation set (which also protects an unregularized model
  from overfitting, so the gap can shrink; reported as measured).

Training accuracy is measured with dropout off, on the whole training set
(per epoch, on its first ``train_eval_utts`` utterances, for the figure).

It writes into ``--out``: one run folder per method and seed (``last.npz``,
``best.npz``, ``metrics.jsonl``, ``summary.json``), ``results.json`` (one row per
method and seed, and the Bayes ceiling of each split), ``results.md`` (mean ± sd
beside the paper's Table 2) and ``validation.png``. Run it again to resume
where it stopped: a finished run is skipped, an interrupted one continues from
its ``last.npz``, bit for bit.

The optimizer is Adam (optim.py), the gradient norm clipped at 5 as in the paper.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

from .. import runfolder
from ..data import DataError
from ..data.frames import FramesCorpus, batch_frames, bayes_scores, frames_hash, load_frames, make_builtin_frames
from ..loop import perplexity
from ..models.frames import FrameClassifier
from ..ops.softmax import softmax_cross_entropy_forward
from . import runner
from .runner import validate_config

# The paper's Table 2 (frame accuracy, %).
PAPER = {"non-regularized": {"train_acc": 71.6, "valid_acc": 68.9},
         "regularized": {"train_acc": 69.4, "valid_acc": 70.5}}
METHODS = runner.METHODS  # non-regularized first, then regularized
SPLITS = ("train", "valid", "test")
EVAL_BATCH = 100  # utterances scored together


@dataclass(frozen=True)
class SpeechConfig:
    """One run's recipe. ``dropout`` is 0 for the non-regularized model. ``patience`` equal to ``epochs``
    (the default) means no early stop: every run gets the same fixed budget, and best.npz is the early
    stop."""

    name: str = "speech"
    hidden_size: int = 128      # H
    num_layers: int = 2         # L
    dropout: float = 0.0        # p on the non-recurrent connections (``dropout_mode``)
    dropout_mode: str = "zaremba"
    init_scale: float = 0.08    # uniform in [-s, s]
    lr: float = 2e-3            # Adam's step size, constant
    max_grad_norm: float = 5.0  # clip the global gradient norm, as in the paper
    batch_size: int = 16        # utterances per batch
    epochs: int = 30            # the fixed budget
    patience: int = 30          # stop after this many epochs without a better validation accuracy
    seed: int = 0
    dtype: str = "float32"
    train_utts: int = 0         # the first K training utterances (0 = all)
    eval_utts: int = 0          # the first K validation and test utterances (0 = all)
    train_eval_utts: int = 200  # training utterances scored (dropout off) after every epoch, for the figure

    def lr_at(self, epoch: int) -> float:
        return self.lr

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The regularized model's dropout, the built-in corpus, and the full and the quick (test) setting.
DROPOUT = 0.3
CORPUS = dict(n_train=1000, n_valid=200, n_test=200, num_frames=200)
QUICK_CORPUS = dict(n_train=24, n_valid=8, n_test=8, num_frames=40)
FULL: dict = dict()
QUICK = dict(hidden_size=16, num_layers=2, epochs=2, patience=2, batch_size=8, train_eval_utts=8)


def validate(cfg: SpeechConfig, where="speech config") -> None:
    """Refuse any field of the wrong type, out of range or not finite, naming it."""
    validate_config(cfg, where, counts=("hidden_size", "num_layers", "batch_size", "epochs", "patience",
                                        "train_eval_utts"),
                    nonneg=("seed", "train_utts", "eval_utts"), positive=("lr", "max_grad_norm", "init_scale"))


def config_from_dict(d, where="config") -> SpeechConfig:
    return runner.config_from_dict(SpeechConfig, d, where, validate, "speech")


# ---------------------------------------------------------------------------
# Data and evaluation
# ---------------------------------------------------------------------------

def load_data(data_dir=None, quick=False) -> FramesCorpus:
    """The built-in synthetic frames (a small corpus with ``quick``), or the user's in ``data_dir``."""
    if data_dir is not None:
        return load_frames(data_dir)
    return make_builtin_frames(**(QUICK_CORPUS if quick else CORPUS))


def _splits(corpus: FramesCorpus, cfg: SpeechConfig) -> dict:
    out = {"train": corpus.train.first(cfg.train_utts), "valid": corpus.valid.first(cfg.eval_utts),
           "test": corpus.test.first(cfg.eval_utts)}
    for name, split in out.items():
        if split.num_frames == 0:
            raise DataError(f"the {name} split has no frames; give it at least one utterance")
    return out


def evaluate(model: FrameClassifier, split, with_ppl=True) -> dict:
    """{"acc": frame accuracy in %, "ppl": exp(frame NLL / frames)} over ``split``, dropout off.
    Padding (weight 0) counts for nothing."""
    xp = model.xp
    right = nll = count = 0.0
    for frames, labels, weights in batch_frames(split, EVAL_BATCH, dtype=model.dtype):
        frames, labels, weights = xp.asarray(frames), xp.asarray(labels), xp.asarray(weights)
        scores, _ = model.scores(frames)
        right += float(((scores.argmax(axis=2) == labels) * weights).sum())
        count += float(weights.sum())
        if with_ppl:
            nll += softmax_cross_entropy_forward(scores, labels, normalizer=1, overwrite_scores=True,
                                                 weights=weights)[0]
    out = {"acc": 100.0 * right / count}
    if with_ppl:
        out["ppl"] = perplexity(nll, count)
    return out


def ceiling(corpus: FramesCorpus, cfg: SpeechConfig) -> dict | None:
    """The Bayes ceiling (data/frames.py: accuracy in %, and the best frame perplexity) of each split the
    runs use; None for frames without a known model."""
    if corpus.hmm is None:
        return None
    out = {}
    for name, split in _splits(corpus, cfg).items():
        b = bayes_scores(corpus.hmm, split)
        out[name] = {"acc": 100.0 * b["accuracy"], "expected_acc": 100.0 * b["expected"], "ppl": math.exp(b["nll"])}
    return out


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------

def build_model(cfg: SpeechConfig, corpus: FramesCorpus, device=None) -> FrameClassifier:
    return FrameClassifier(corpus.feature_size, corpus.num_classes, cfg.hidden_size, cfg.num_layers,
                           dropout=cfg.dropout, dropout_mode=cfg.dropout_mode, init_scale=cfg.init_scale,
                           dtype=cfg.dtype, device=device, seed=cfg.seed)


def train_run(cfg: SpeechConfig, corpus: FramesCorpus, run_dir, log=print, progress=False, device=None,
              on_step=None) -> dict:
    """Train one model into ``run_dir`` (resuming from its last.npz), then score its last.npz (the fixed
    budget) and its best.npz (early stopping) on every split.

    Returns the run's summary (also in ``run_dir/summary.json``), or {"interrupted": True} after a Ctrl-C.
    """
    validate(cfg)
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        return _read_summary(run_dir)
    splits = _splits(corpus, cfg)
    model = build_model(cfg, corpus, device)
    train_probe = splits["train"].first(cfg.train_eval_utts)

    def epoch_batches(rng):
        return batch_frames(splits["train"], cfg.batch_size, dtype=cfg.dtype, rng=rng)

    def scores(m):
        valid = evaluate(m, splits["valid"])
        return {"valid_ppl": valid["ppl"], "valid_acc": valid["acc"],
                "train_acc": evaluate(m, train_probe, with_ppl=False)["acc"]}

    history = runner.fit(run_dir, cfg, model, frames_hash(corpus), {"num_classes": corpus.num_classes},
                         epoch_batches, scores, log, progress, on_step, unit="frames", select="valid_acc",
                         higher=True)
    if history is None:
        return {"interrupted": True}
    t0 = time.perf_counter()
    summary = runner.history_summary(cfg, history, "valid_acc", higher=True)
    # The model holds the last epoch's weights (fit's end, or resume_run's load of last.npz).
    for which in ("fixed", "early"):
        if which == "early":
            runner.load_best(run_dir, model)
        for name, split in splits.items():
            r = evaluate(model, split)
            summary[f"{which}_{name}_acc"], summary[f"{which}_{name}_ppl"] = r["acc"], r["ppl"]
    summary["eval_time_s"] = time.perf_counter() - t0
    runfolder.write_json(run_dir / "summary.json", summary)
    log(f"{run_dir.name}: frame accuracy train / valid / test: after {len(history)} epochs "
        f"{summary['fixed_train_acc']:.1f} / {summary['fixed_valid_acc']:.1f} / {summary['fixed_test_acc']:.1f}; "
        f"early-stopped (epoch {summary['best_epoch']}) {summary['early_train_acc']:.1f} / "
        f"{summary['early_valid_acc']:.1f} / {summary['early_test_acc']:.1f}")
    return summary


SUMMARY_KEYS = tuple(f"{w}_{s}_{k}" for w in ("fixed", "early") for s in SPLITS for k in ("acc", "ppl"))


def _read_summary(run_dir) -> dict:
    return runner.read_summary(run_dir, SUMMARY_KEYS + ("epochs", "best_epoch", "train_time_s"))


# ---------------------------------------------------------------------------
# The experiment: both methods, several seeds, one table
# ---------------------------------------------------------------------------

def run_configs(seeds=3, quick=False, dropout=None, **overrides) -> list:
    """[(folder name, method, SpeechConfig)] of the experiment, non-regularized first."""
    runner.whole_number(seeds, "--seeds", 1, 100)
    given = {k: v for k, v in overrides.items() if v is not None}
    if "epochs" in given and "patience" not in given:
        given["patience"] = given["epochs"]  # still a fixed budget
    base = dataclasses.replace(SpeechConfig(), **{**(QUICK if quick else FULL), **given})
    p = DROPOUT if dropout is None else dropout
    if not 0.0 < p < 1.0:
        raise ValueError(f"--dropout (the regularized model's) must be above 0 and below 1, got {p}")
    return runner.method_runs(base, dict.fromkeys(METHODS, seeds), p, "speech", validate)


def _run_one(name, job, in_worker, corpus=None):
    """One run of the experiment (``runner.run_all``); in a worker process it makes (or reads) its own
    corpus and logs line by line."""
    cfg, out_dir, data_dir, quick, device, progress = job
    corpus = corpus if corpus is not None else load_data(data_dir, quick)
    log = runner.worker_log if in_worker else print
    return train_run(cfg, corpus, Path(out_dir) / name, log, progress and not in_worker, device)


def run_speech(out_dir="runs/speech", seeds=3, quick=False, jobs=1, data_dir=None, device=None, progress=True,
               log=print, dropout=None, **overrides) -> dict:
    """The whole experiment (module docstring). Returns {"rows", "table", "interrupted", ...}."""
    out_dir = runner.check_out_dir(out_dir)
    runner.whole_number(jobs, "--jobs", 1, 64)
    runs = run_configs(seeds, quick, dropout, **overrides)
    corpus = load_data(data_dir, quick)
    _splits(corpus, runs[0][2])  # every split usable, before anything is written
    settings = {"data": corpus.name, "data_hash": frames_hash(corpus), "quick": bool(quick),
                "runs": {name: cfg.to_dict() for name, _, cfg in runs}}
    runner.claim_experiment(out_dir, settings, "speech")
    t0 = time.perf_counter()
    bayes = ceiling(corpus, runs[0][2])
    log(f"speech frames ({corpus.description}): {len(runs)} runs ({', '.join(METHODS)} x {seeds} seeds) "
        f"into {out_dir}" + (f", {jobs} at a time" if jobs > 1 else ""))
    if bayes:
        log("Bayes ceiling (forward algorithm, filtering) frame accuracy: "
            + " / ".join(f"{s} {bayes[s]['acc']:.1f}" for s in SPLITS))
    todo = [(name, (cfg, str(out_dir), data_dir, quick, device, progress)) for name, _, cfg in runs]
    run_one = _run_one if jobs > 1 else functools.partial(_run_one, corpus=corpus)
    summaries, interrupted = runner.run_all(todo, run_one, jobs, log)
    if interrupted:
        log("interrupted: run the same command again to continue where each run stopped")
        return {"interrupted": True}
    rows = [{"method": method, "seed": cfg.seed, "run": name, "dropout": cfg.dropout,
             **{k: summaries[name][k] for k in SUMMARY_KEYS + ("epochs", "best_epoch", "train_time_s")}}
            for name, method, cfg in runs]
    cfg0 = runs[0][2]
    result = {"paper": PAPER, "bayes": bayes, "data": corpus.name, "description": corpus.description,
              "model": f"{cfg0.num_layers}x{cfg0.hidden_size}, dropout {DROPOUT if dropout is None else dropout} "
                       f"({cfg0.dropout_mode}) when regularized", "epochs": cfg0.epochs,
              "train_utterances": len(_splits(corpus, cfg0)["train"]), "rows": rows,
              "wall_time_s": time.perf_counter() - t0}
    runfolder.write_json(out_dir / "results.json", result)
    table = results_table(result)
    runfolder.write_text(out_dir / "results.md", table)
    try:
        plot_validation(out_dir, runs, bayes)
    except Exception as exc:  # a figure must never cost a finished experiment
        log(f"(could not draw the figure: {exc})")
    return {"interrupted": False, "rows": rows, "table": table, "out_dir": out_dir, "result": result}


def results_table(result: dict) -> str:
    """The markdown table: ours (mean ± sd over seeds, frame accuracy %) beside the paper's Table 2, at the
    fixed budget and early-stopped, with the Bayes ceiling."""
    lines = ["| model | paper: train | paper: valid | train (fixed) | valid (fixed) | test (fixed) | "
             "train (early-stopped) | valid (early-stopped) | test (early-stopped) | best epoch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method in METHODS:
        rows = [r for r in result["rows"] if r["method"] == method]
        if not rows:
            continue
        cell = {}
        for w in ("fixed", "early"):
            for s in SPLITS:
                mean, sd = runner.mean_sd([r[f"{w}_{s}_acc"] for r in rows])
                cell[w, s] = f"{mean:.1f} ± {sd:.1f}"
        paper = result["paper"][method]
        lines.append(f"| {method} (dropout {rows[0]['dropout']:g}) | {paper['train_acc']} | {paper['valid_acc']} | "
                     + " | ".join(cell[w, s] for w in ("fixed", "early") for s in SPLITS)
                     + f" | {', '.join(str(r['best_epoch']) for r in rows)} |")
    bayes = result.get("bayes")
    if bayes:
        acc = " | ".join(f"{bayes[s]['acc']:.1f}" for s in SPLITS)
        lines.append(f"| Bayes ceiling (forward algorithm) | | | {acc} | {acc} |")
    n = len({r["seed"] for r in result["rows"]})
    notes = [f"Frame accuracy (%), mean ± sd over {n} seed{'s' if n > 1 else ''}; {result['model']}, "
             f"{result['train_utterances']} training utterances; fixed = after {result['epochs']} epochs, "
             "early-stopped = the epoch of the highest validation accuracy. The paper: an Icelandic speech "
             "corpus, one model each."]
    if bayes:
        notes.append("Bayes ceiling: the accuracy of the best left-to-right reader, argmax of the filtered phone "
                     "posterior p(phone_t | x_1..x_t) of the true HMM (expected: "
                     + ", ".join(f"{s} {bayes[s]['expected_acc']:.1f}" for s in SPLITS)
                     + "); best frame perplexity " + ", ".join(f"{s} {bayes[s]['ppl']:.3f}" for s in SPLITS)
                     + ". It bounds accuracy on unseen frames; on its training set a model can pass it by "
                     "memorizing.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def plot_validation(out_dir, runs, bayes=None) -> Path | None:
    """validation.png: per epoch, the training (dashed, dropout off) and validation frame accuracy of every
    run, with the Bayes ceiling of the validation set as a dotted line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plots import epoch_rows, read_metrics, save_figure, style_epoch_axes

    out_dir = Path(out_dir)
    fig = Figure(figsize=(7.5, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = {"non-regularized": "black", "regularized": "tab:blue"}
    labelled = set()
    for name, method, _ in runs:
        rows = [r for r in epoch_rows(read_metrics(out_dir / name)) if "valid_acc" in r]
        if not rows:
            continue
        epochs = [r["epoch"] for r in rows]
        first = method not in labelled
        ax.plot(epochs, [r["valid_acc"] for r in rows], color=colours[method], alpha=0.8,
                label=f"{method}: validation" if first else None)
        ax.plot(epochs, [r["train_acc"] for r in rows], color=colours[method], alpha=0.5, linestyle="--",
                label=f"{method}: training (dropout off)" if first else None)
        labelled.add(method)
    if not labelled:
        return None
    if bayes:
        ax.axhline(bayes["valid"]["acc"], color="grey", linestyle=":",
                   label=f"Bayes ceiling (valid {bayes['valid']['acc']:.1f})")
    style_epoch_axes(ax, "Frame accuracy: D trades training accuracy for validation accuracy",
                     "frame accuracy (%)", log=False)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_dir / "validation.png", dpi=110)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def add_cli(sub):
    """Register ``minilstm speech`` (cli.py calls this)."""
    from ..cliargs import add_device_flags, float_arg, int_arg, path_arg

    p = sub.add_parser(
        "speech", help="the paper's Table 2 in miniature: speech frame classification without and with dropout",
        description=__doc__.split("\n\n")[0].rstrip(".") + ": trains the non-regularized and the regularized "
        "frame classifier (several seeds, a fixed epoch budget, early-stopped checkpoints kept), then writes "
        "train / validation / test frame accuracy beside the paper's and the Bayes ceiling. Run it again to "
        "resume where it stopped.")
    p.add_argument("--out", type=path_arg, default="runs/speech", help="output folder (default runs/speech)")
    p.add_argument("--quick", action="store_true", help="a tiny setting that runs in seconds (for tests)")
    p.add_argument("--seeds", type=int_arg(1, 100), default=3, help="seeds per method (default 3)")
    p.add_argument("--jobs", type=int_arg(1, 64), default=1,
                   help="runs side by side, one BLAS thread each (default 1; 2 on a 2-core machine is faster)")
    p.add_argument("--hidden", type=int_arg(1, 100_000), help="hidden units H (default 128)")
    p.add_argument("--layers", type=int_arg(1, 64), help="LSTM layers L (default 2)")
    p.add_argument("--epochs", type=int_arg(1, 100_000), help="the fixed epoch budget (default 30)")
    p.add_argument("--dropout", type=float_arg(0, 1, lo_open=True, hi_open=True),
                   help=f"the regularized model's dropout (default {DROPOUT})")
    p.add_argument("--train-utts", type=int_arg(0, 10**9), help="the first K training utterances (default all)")
    p.add_argument("--data-dir", type=path_arg, help="a folder with your own frames: train.npz, valid.npz, "
                   "test.npz, each with features (U, T, D) and labels (U, T), optionally lengths (U,)")
    add_device_flags(p)
    p.set_defaults(func=_cmd_speech)


def _cmd_speech(args):
    res = run_speech(args.out, args.seeds, args.quick, args.jobs, args.data_dir, args.device,
                     progress=not args.no_progress, dropout=args.dropout, hidden_size=args.hidden,
                     num_layers=args.layers, epochs=args.epochs, train_utts=args.train_utts)
    if res["interrupted"]:
        return 130
    print(res["table"], end="")
    print(f"saved in {res['out_dir']}: results.md, results.json, validation.png")
    return 0
