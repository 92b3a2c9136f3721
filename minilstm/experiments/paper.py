"""The whole paper in miniature, in one command, and one report.

    minilstm paper [--out runs/paper] [--jobs 2] [--full] [--quick] [--data-dir PTB]

Zaremba, Sutskever & Vinyals (2014) make one claim four times: dropout on
the non-recurrent connections only (the operator D) regularizes LSTMs, far
from language modelling too. This command runs each of their tables in
miniature, one after the other, each in its own folder:

    table1/   Penn Treebank language modelling: the regularization lab's
              setting (2x400 on 300,000 words, no dropout against D), and with
              --full also the paper's `small` row on the whole corpus
    table2/   speech frames (minilstm speech): frame accuracy, train and validation
    table3/   translation (minilstm translate): test perplexity and BLEU
    table4/   image captions (minilstm caption): one model with D against an
              ensemble of 10 without

then writes ``report.md`` (and ``report.json``): first one table of what the
paper shows, what this machine measured and whether it reproduces, with the
time each took; then every experiment's own table beside the paper's, and its
figure. Each experiment resumes by itself, so running the command again after
an interruption continues where it stopped, and a finished experiment is only
read back. ``--quick`` runs everything in a tiny setting (seconds; the tests
use it): its numbers show that the pipeline works, not the paper's effects.

Table 1 needs the Penn Treebank (``--data-dir``, else ``$MINILSTM_DATA``,
else the user cache, downloaded there once); ``--quick`` uses the built-in
corpus instead.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import atomic
from ..data import DataError
from . import runner


@dataclass(frozen=True)
class Stage:
    """One of the paper's tables, as this command runs it."""

    key: str         # its folder under --out
    table: str       # "Table 1" ...
    title: str
    claim: str       # what the paper shows with it, in one line
    run: Callable    # (out_dir, opts) -> {"interrupted": bool, ...}
    verdict: Callable  # (out_dir) -> {"paper", "ours", "reproduces": bool | None, "time_s", "table_md", "figure"}


# ---------------------------------------------------------------------------
# What the verdicts of the miniatures (Tables 2-4) share
# ---------------------------------------------------------------------------

def _results(out_dir, command) -> dict:
    """An experiment's results.json, or a one-line DataError saying how to (re)write it."""
    path = Path(out_dir) / "results.json"
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(result, dict) or not isinstance(result.get("rows"), list):
            raise ValueError("no rows")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); run `minilstm {command} --out {Path(out_dir)}` "
                        "to (re)write it") from exc
    return result


def _means(result, keys) -> dict:
    """{method: {key: mean over the method's seeds}} for the non-regularized and the regularized rows."""
    return {m: {k: runner.mean_sd([r[k] for r in result["rows"] if r["method"] == m])[0] for k in keys}
            for m in runner.METHODS}


def _miniature(out_dir, result, **verdict) -> dict:
    """A verdict with what every miniature adds: its runs' training time, its results.md and its figure."""
    return {**verdict, "time_s": sum(r["train_time_s"] for r in result["rows"]),
            "table_md": (Path(out_dir) / "results.md").read_text(encoding="utf-8"), "figure": "validation.png"}


# ---------------------------------------------------------------------------
# Table 1: the language model (the regularization lab's setting)
# ---------------------------------------------------------------------------

LAB_RUNS = ("none", "zaremba")


def _run_table1(out_dir, o):
    from ..lab import run_lab

    if o["quick"]:
        res = run_lab(out_dir, LAB_RUNS, dataset="builtin", hidden=16, epochs=2, train_tokens=4000,
                      progress=False, log=o["log"], device=o["device"], jobs=o["jobs"])
    else:
        res = run_lab(out_dir, LAB_RUNS, dataset="ptb", data_dir=o["data_dir"], device=o["device"],
                      progress=o["progress"], log=o["log"], jobs=o["jobs"])
    if res["interrupted"] or not o["full"]:
        return res
    from ..training import train

    run_dir = Path(out_dir) / "small"
    if not (run_dir / "summary.json").is_file():
        out = train("small", out_dir=run_dir, resume=(run_dir / "last.npz").is_file(), data_dir=o["data_dir"],
                    device=o["device"], progress=o["progress"], log=o["log"], dataset="ptb")
        if out.interrupted:
            return {"interrupted": True}
    return res


def _verdict_table1(out_dir):
    lab = json.loads((Path(out_dir) / "lab.json").read_text(encoding="utf-8"))["runs"]
    by = {r["run"]: r for r in lab}
    none, drop = by["none"], by["zaremba"]
    lines = ["| model | paper: valid | paper: test | train | best valid | test |", "|---|---|---|---|---|---|"]
    lines.append(f"| non-regularized, 2x400, 300k words | 120.7 | 114.5 | {none['train_ppl']:.1f} | "
                 f"{none['best_valid_ppl']:.1f} | {none['test_ppl']:.1f} |")
    lines.append(f"| regularized (D p={drop['dropout']:g}), 2x400, 300k words | 86.2 | 82.7 | {drop['train_ppl']:.1f} | "
                 f"{drop['best_valid_ppl']:.1f} | {drop['test_ppl']:.1f} |")
    small = Path(out_dir) / "small" / "summary.json"
    if small.is_file():
        s = json.loads(small.read_text(encoding="utf-8"))
        lines.append(f"| non-regularized `small` (2x200, the whole corpus) | 120.7 | 114.5 | "
                     f"{s['epochs'][-1]['train_ppl']:.1f} | {s['valid_ppl']:.1f} | {s['test_ppl']:.1f} |")
    note = ("\nThe paper's rows: its non-regularized small (2x200) and regularized medium (2x650) models, on the "
            "whole corpus. Here: the lab's overfitting setting (one seed, 300,000 training words, 8 epochs).\n")
    return {"paper": "test perplexity 114.5 (no dropout) -> 82.7 (D)",
            "ours": f"test perplexity {none['test_ppl']:.1f} -> {drop['test_ppl']:.1f}",
            "reproduces": drop["test_ppl"] < none["test_ppl"],
            "time_s": sum(r["train_time_s"] for r in lab),
            "table_md": "\n".join(lines) + "\n" + note, "figure": "lab_validation.png"}


# ---------------------------------------------------------------------------
# Table 2: speech frames
# ---------------------------------------------------------------------------

def _run_table2(out_dir, o):
    from .speech import run_speech

    return run_speech(out_dir, quick=o["quick"], jobs=o["jobs"], device=o["device"], progress=o["progress"],
                      log=o["log"])


def _verdict_table2(out_dir):
    result = _results(out_dir, "speech")
    mean = _means(result, ("fixed_train_acc", "fixed_valid_acc", "early_valid_acc"))
    a, b = mean["non-regularized"], mean["regularized"]
    ceiling = result["bayes"]["valid"]["acc"]  # the Bayes-optimal left-to-right reader's accuracy
    return _miniature(
        out_dir, result, paper="frame accuracy train 71.6 -> 69.4, validation 68.9 -> 70.5",
        ours=f"train {a['fixed_train_acc']:.1f} -> {b['fixed_train_acc']:.1f}, validation "
             f"{a['fixed_valid_acc']:.1f} -> {b['fixed_valid_acc']:.1f} after {result['epochs']} epochs "
             f"({a['early_valid_acc']:.1f} -> {b['early_valid_acc']:.1f} early-stopped"
             f"; Bayes ceiling {ceiling:.1f})",
        reproduces=b["fixed_valid_acc"] > a["fixed_valid_acc"] and b["fixed_train_acc"] < a["fixed_train_acc"])


# ---------------------------------------------------------------------------
# Table 3: translation
# ---------------------------------------------------------------------------

def _run_table3(out_dir, o):
    from .translate import run_translate

    return run_translate(out_dir, quick=o["quick"], jobs=o["jobs"], device=o["device"], progress=o["progress"],
                         log=o["log"])


def _verdict_table3(out_dir):
    from .translate import BEAM

    result = _results(out_dir, "translate")
    beam = f"bleu_beam{BEAM}"
    mean = _means(result, ("test_ppl", beam))
    a, b = mean["non-regularized"], mean["regularized"]
    return _miniature(
        out_dir, result, paper="test perplexity 5.8 -> 5.0, BLEU 25.9 -> 29.0",
        ours=f"test perplexity {a['test_ppl']:.2f} -> {b['test_ppl']:.2f}, BLEU {a[beam]:.1f} -> {b[beam]:.1f}",
        reproduces=b["test_ppl"] < a["test_ppl"] and b[beam] > a[beam])


# ---------------------------------------------------------------------------
# Table 4: image captions
# ---------------------------------------------------------------------------

def _run_table4(out_dir, o):
    from .caption import run_caption

    return run_caption(out_dir, quick=o["quick"], jobs=o["jobs"], device=o["device"], progress=o["progress"],
                       log=o["log"])


def _verdict_table4(out_dir):
    """Reproduces when one regularized model beats one plain model and comes within a quarter of the
    ensemble's gain of the ensemble's test perplexity (the paper: 8.47 -> 7.99, ensemble 7.5)."""
    from .caption import BEAM

    result = _results(out_dir, "caption")
    beam = f"bleu_beam{BEAM}"
    mean = _means(result, ("test_ppl", beam))
    plain, reg, ens = mean["non-regularized"], mean["regularized"], result["ensemble"]
    gain = plain["test_ppl"] - ens["test_ppl"]
    return _miniature(
        out_dir, result, paper="test perplexity 8.47 -> 7.99 (D), 7.5 (10-model ensemble); BLEU 23.5 -> 24.3, 24.4",
        ours=f"test perplexity {plain['test_ppl']:.3f} -> {reg['test_ppl']:.3f} (D), {ens['test_ppl']:.3f} "
             f"({len(ens['members'])}-model ensemble); BLEU {plain[beam]:.1f} -> {reg[beam]:.1f}, {ens[beam]:.1f}",
        reproduces=bool(reg["test_ppl"] < plain["test_ppl"] and reg["test_ppl"] - ens["test_ppl"] <= 0.25 * gain))


STAGES = (
    Stage("table1", "Table 1", "Penn Treebank language model",
          "D lowers test perplexity of a large LSTM that overfits without it", _run_table1, _verdict_table1),
    Stage("table2", "Table 2", "speech frames",
          "D lowers training frame accuracy and raises validation accuracy", _run_table2, _verdict_table2),
    Stage("table3", "Table 3", "translation",
          "D lowers test perplexity and raises BLEU", _run_table3, _verdict_table3),
    Stage("table4", "Table 4", "image captions",
          "one model with D is about as good as an ensemble of 10 without", _run_table4, _verdict_table4),
)
STAGE_KEYS = tuple(s.key for s in STAGES)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------

def run_paper(out_dir="runs/paper", stages=STAGE_KEYS, quick=False, full=False, jobs=1, data_dir=None, device=None,
              progress=True, log=print) -> dict:
    """Run every stage not yet finished, then write report.md and report.json. Returns
    {"interrupted": bool, "report": path or None, "rows": [...]}."""
    out_dir = runner.check_out_dir(out_dir)
    runner.whole_number(jobs, "--jobs", 1, 64)
    unknown = sorted(set(stages) - set(STAGE_KEYS))
    if unknown or not stages:
        raise ValueError(f"unknown table(s) {unknown}; choose from {', '.join(STAGE_KEYS)}")
    if quick and full:
        raise ValueError("--quick and --full contradict each other; choose one")
    chosen = [s for s in STAGES if s.key in stages]
    runner.claim_experiment(out_dir, {"quick": bool(quick), "full": bool(full)}, "paper")
    timings = _read_timings(out_dir)
    opts = {"quick": quick, "full": full, "jobs": jobs, "data_dir": data_dir, "device": device,
            "progress": progress, "log": log}
    for i, stage in enumerate(chosen, 1):
        log(f"[paper {i}/{len(chosen)}] {stage.table}: {stage.title} -> {out_dir / stage.key}")
        t0 = time.perf_counter()
        try:
            res = stage.run(out_dir / stage.key, opts)
        except KeyboardInterrupt:
            res = {"interrupted": True}
        finally:
            timings[stage.key] = timings.get(stage.key, 0.0) + time.perf_counter() - t0
            atomic.write_json(out_dir / "timings.json", timings)
        if res.get("interrupted"):
            log("interrupted: run the same command again to continue where it stopped")
            return {"interrupted": True, "report": None, "rows": []}
    rows = report_rows(out_dir, chosen, timings)
    report = write_report(out_dir, rows, quick)
    log(f"report: {report}")
    return {"interrupted": False, "report": report, "rows": rows}


def _read_timings(out_dir) -> dict:
    path = Path(out_dir) / "timings.json"
    try:
        timings = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        timings = {}
    ok = isinstance(timings, dict) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in timings.values())
    return timings if ok else {}


def report_rows(out_dir, stages, timings) -> list[dict]:
    """One row per stage: the paper's numbers, ours, whether the direction reproduces, and times."""
    rows = []
    for stage in stages:
        verdict = stage.verdict(Path(out_dir) / stage.key)
        rows.append({"key": stage.key, "table": stage.table, "title": stage.title, "claim": stage.claim,
                     "wall_s": timings.get(stage.key), **verdict})
    return rows


def _minutes(seconds) -> str:
    return "?" if seconds is None else f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def summary_table(rows) -> str:
    """The report's first table (also the README's): what reproduces, what does not, how long each took."""
    lines = ["| | experiment | the paper shows | paper | here | reproduces? | training time |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = {True: "yes", False: "**no**", None: "partly"}[r["reproduces"]]
        lines.append(f"| {r['table']} | {r['title']} | {r['claim']} | {r['paper']} | {r['ours']} | {mark} | "
                     f"{_minutes(r['time_s'])} |")
    return "\n".join(lines) + "\n"


def write_report(out_dir, rows, quick=False) -> Path:
    """report.md (the summary table, then each table beside the paper's with its figure) and report.json."""
    out_dir = Path(out_dir)
    parts = ["# Recurrent Neural Network Regularization, in miniature\n",
             "Zaremba, Sutskever & Vinyals (2014), every table rerun by `minilstm paper`"
             + (" in its `--quick` setting: these numbers only show that the pipeline runs." if quick else ".")
             + " Training time is the sum over an experiment's runs on this machine (with --jobs 2 they run two "
               "at a time); report.json also keeps the wall time of the `minilstm paper` calls.\n",
             summary_table(rows)]
    for r in rows:
        parts.append(f"\n## {r['table']}: {r['title']}\n\n{r['claim']}.\n\n{r['table_md']}")
        figure = Path(out_dir) / r["key"] / r.get("figure", "")
        if r.get("figure") and figure.is_file():
            parts.append(f"\n![{r['table']}]({r['key']}/{r['figure']})\n")
    atomic.write_text(out_dir / "report.md", "\n".join(parts))
    atomic.write_json(out_dir / "report.json", {"quick": quick, "rows": rows})
    return out_dir / "report.md"


def add_cli(sub):
    """Register ``minilstm paper``."""
    from ..cliargs import add_device_flags, int_arg, path_arg

    p = sub.add_parser("paper", help="every table of the paper in miniature, one report (about 1.5 h on 2 cores)",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--out", type=path_arg, default="runs/paper", help="output folder (default runs/paper)")
    p.add_argument("--tables", nargs="+", choices=STAGE_KEYS, default=list(STAGE_KEYS),
                   help="which tables (default all)")
    p.add_argument("--jobs", type=int_arg(1, 64), default=1,
                   help="runs side by side, one BLAS thread each (2 on a 2-core machine is faster)")
    p.add_argument("--full", action="store_true", help="also the paper's `small` row on the whole Penn Treebank")
    p.add_argument("--quick", action="store_true", help="a tiny setting of everything (seconds; for tests)")
    p.add_argument("--data-dir", type=path_arg, help="folder with the Penn Treebank files (default $MINILSTM_DATA, "
                                                      "else the user cache)")
    add_device_flags(p)
    p.set_defaults(func=_cmd_paper)


def _cmd_paper(args):
    res = run_paper(args.out, args.tables, args.quick, args.full, args.jobs, args.data_dir, args.device,
                    progress=not args.no_progress)
    if res["interrupted"]:
        return 130
    print(summary_table(res["rows"]), end="")
    print(f"saved: {res['report']} (every table beside the paper's, with figures)")
    return 0
