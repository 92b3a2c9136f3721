"""``minilstm plot``: the training curves of runs, in one PNG (minilstm/plots.py draws it)."""

from __future__ import annotations

from pathlib import Path

from ..cliargs import path_arg


def add_cli(sub):
    """Register ``minilstm plot``."""
    p = sub.add_parser(
        "plot", help="plot train/valid perplexity, learning rate and gradient norm of runs",
        description="Draw the curves of one or several runs into one PNG. Where it goes: RUN/curves.png for one "
                    "run, FOLDER/compare.png for one folder of runs (runs/tiny), and compare.png in the current "
                    "folder for several (it belongs to none of them); -o chooses. A file that minilstm did not "
                    "draw (a checkpoint, your own image) is never replaced without --force.")
    p.add_argument("runs", nargs="+", metavar="RUN", type=path_arg,
                   help="run folders (each with metrics.jsonl), or a folder of runs such as runs/tiny (both runs, "
                        "with the best possible line)")
    p.add_argument("--output", "-o", type=path_arg,
                   help="PNG path (default: RUN/curves.png; several runs: ./compare.png)")
    p.add_argument("--force", action="store_true", help="replace --output even if minilstm did not draw it")
    p.set_defaults(func=run)


def run(args):
    from ..plots import plot_runs

    path = plot_runs([Path(r) for r in args.runs], Path(args.output) if args.output else None, force=args.force)
    print(path)
    return 0
