"""``minilstm train``: a language model, or the paper's story (without and with dropout) in one command.

Plain ``minilstm train`` trains the ``tiny`` recipe twice into ``runs/tiny/``
(``no-dropout/`` and ``dropout/``, a *compare folder*) and draws both;
``minilstm train --resume`` continues that pair where it stopped. With
``--out DIR`` (or any ``--config`` but tiny) it trains one model into DIR.

Resuming keeps every setting the run saved: a flag that contradicts one is
refused with the saved value (training.resumed_config); only ``--epochs`` may
grow, to train longer.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from ..choices import DATASETS, DROPOUT_MODES, DTYPES
from ..cliargs import add_data_dir_flag, add_device_flags, float_arg, int_arg, path_arg

# Command-line flag -> Config field, for every recipe field a user may override.
OVERRIDES = {
    "layers": ("num_layers", int, "number of LSTM layers L"),
    "hidden": ("hidden_size", int, "hidden units per layer H (also the embedding size)"),
    "steps": ("num_steps", int, "unrolled time steps T of truncated BPTT"),
    "batch": ("batch_size", int, "parallel streams N"),
    "dropout": ("dropout", float, "dropout probability p"),
    "dropout_mode": ("dropout_mode", str, "where dropout goes: zaremba (paper), recurrent (naive), "
                                          "variational (Gal & Ghahramani 2016), none"),
    "init_scale": ("init_scale", float, "weights start uniform in [-s, s]"),
    "lr": ("lr", float, "initial SGD learning rate"),
    "lr_decay": ("lr_decay", float, "divide the learning rate by this every epoch after --max-epoch"),
    "max_epoch": ("max_epoch", int, "epochs at the initial learning rate"),
    "epochs": ("epochs", int, "total epochs (the one setting a --resume may change: more trains longer)"),
    "clip": ("max_grad_norm", float, "clip the global gradient norm to this"),
    "dtype": ("dtype", str, "float32 (default, fast) or float64"),
    "eval_batch": ("eval_batch_size", int, "streams used for evaluation (1 = the split as one stream)"),
    "train_tokens": ("train_tokens", int, "train on the first K tokens only (0 = all), for quick experiments"),
}
# Config field -> the flag a user types (for messages).
FLAGS = {field: "--" + flag.replace("_", "-") for flag, (field, _, _) in OVERRIDES.items()}
FLAGS.update(seed="--seed", dataset="--dataset", tie_weights="--tie-weights", name="--config")
COMPARE = ("no-dropout", "dropout")  # the two runs of a compare folder


def add_cli(sub):
    """Register ``minilstm train``."""
    from ..config import CONFIGS

    t = sub.add_parser(
        "train", help="train a language model (default: the built-in corpus, with and without dropout)",
        description="Train an LSTM language model with truncated BPTT, SGD and gradient clipping, exactly "
                    "as in the paper. With no arguments: the `tiny` recipe on the built-in synthetic corpus, "
                    "trained twice into runs/tiny (no-dropout/, then dropout/ with Zaremba dropout) so you can "
                    "compare train and validation perplexity; a few minutes on an idle laptop CPU, no download. "
                    "`minilstm train --resume` continues it. "
                    "Recipes: " + ", ".join(sorted(CONFIGS)) + " (see minilstm/config.py). "
                    "Every recipe field can be overridden with the flags below.")
    t.add_argument("--config", choices=sorted(CONFIGS), help="recipe (default: tiny; small with --dataset ptb)")
    t.add_argument("--dataset", choices=DATASETS, help="builtin (synthetic, no download) or ptb")
    t.add_argument("--out", type=path_arg, help="run folder for checkpoints, metrics and plots (default runs/CONFIG)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out (default runs/tiny: both runs) from its last.npz, with its "
                        "saved settings")
    t.add_argument("--force", action="store_true",
                   help="start afresh in an --out folder that holds another run, replacing its files (listed)")
    t.add_argument("--seed", type=int_arg(0, 2**63 - 1), help="random seed (weights and dropout masks)")
    t.add_argument("--compare", dest="compare", action="store_true", default=None,
                   help="train twice, without and with dropout, and compare (default for plain `train`)")
    t.add_argument("--no-compare", dest="compare", action="store_false", help="train one model only")
    t.add_argument("--compare-p", type=float_arg(0, 1, hi_open=True), default=None,
                   help="dropout of the dropout run in --compare (default 0.5)")
    for flag, (_, typ, helptext) in OVERRIDES.items():
        kw = {"choices": DROPOUT_MODES} if flag == "dropout_mode" else {}
        if flag == "dtype":
            kw = {"choices": DTYPES}
        typ = {int: int_arg(), float: float_arg()}.get(typ, typ)  # ranges: config.validate, with the flag named
        t.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, help=helptext, **kw)
    t.add_argument("--tie-weights", dest="tie_weights", action=argparse.BooleanOptionalAction, default=None,
                   help="decoder = transposed embedding (Press & Wolf 2017); --no-tie-weights to untie")
    add_data_dir_flag(t)
    add_device_flags(t)
    t.set_defaults(func=run)


def config_error(exc: ValueError) -> ValueError:
    """A Config message in the user's words: the flags (--clip) instead of the fields (max_grad_norm)."""
    text = re.sub(r"^config: (\w+)", lambda m: FLAGS.get(m.group(1), m.group(1)), str(exc))
    text = re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: FLAGS.get(m.group(0), m.group(0)), text)
    return ValueError(text)


def _overrides(args) -> dict:
    """The Config fields the user set on the command line (flags left out are not in it)."""
    out = {}
    for flag, (field, _, _) in OVERRIDES.items():
        value = getattr(args, flag, None)
        if value is not None:
            out[field] = value
    for name in ("seed", "dataset", "tie_weights"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    return out


def _flag_value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _mismatch(exc, again: str) -> ValueError:
    """training.ResumeMismatch in flags: what was typed, what the run saved, and the command to continue."""
    said = "; ".join(f"{FLAGS.get(field, field)} {_flag_value(asked)} contradicts the run's saved "
                     f"{FLAGS.get(field, field)} {_flag_value(saved)}" for field, asked, saved in exc.conflicts)
    return ValueError(f"cannot resume {exc.out_dir} with other settings: {said}. A resumed run keeps its own "
                      f"settings (only --epochs may grow): continue it with `{again}`, or start a new run with "
                      "another --out")


def is_compare_folder(folder: Path) -> bool:
    """A folder that plain `minilstm train` wrote: no run of its own, one of no-dropout/ and dropout/ inside."""
    return folder.is_dir() and not (folder / "last.npz").exists() and any((folder / n).is_dir() for n in COMPARE)


def _resumable(root=Path("runs")) -> list:
    """What --resume could continue under ``root``, one or two levels deep: run folders (with a
    last.npz) and compare folders (the runs inside a compare folder are listed as the folder)."""
    if not root.is_dir():
        return []
    levels = [d for d in sorted(root.iterdir()) if d.is_dir()]
    levels += [d for top in levels if not is_compare_folder(top) for d in sorted(top.iterdir()) if d.is_dir()]
    return sorted(d for d in levels if (d / "last.npz").is_file() or is_compare_folder(d))


def _nothing_to_resume(out: Path):
    from ..runfolder import RunFolderError

    found = _resumable()
    if not found:
        return RunFolderError(f"--resume: nothing to resume in {out} (no last.npz) and no run under runs/; "
                              "start one with: minilstm train")
    names = ", ".join(str(d) for d in found[:6]) + (", ..." if len(found) > 6 else "")
    return RunFolderError(f"--resume: nothing to resume in {out} (no last.npz); the runs that can be resumed are "
                          f"{names}: pass one with --out, e.g. minilstm train --resume --out "
                          f"{shlex.quote(str(found[0]))}")


def run(args):
    """``minilstm train``: check every flag, then train one model or the compare pair."""
    from ..config import get_config
    from ..training import ResumeMismatch

    overrides = _overrides(args)
    name = args.config or ("small" if overrides.get("dataset") == "ptb" else "tiny")
    out = Path(args.out) if args.out is not None else Path("runs") / name
    if args.compare is not None:
        compare = args.compare
    elif args.resume:
        compare = is_compare_folder(out)
    else:
        compare = name == "tiny" and "dropout" not in overrides
    try:  # every flag checked before anything is loaded or written (a resume checks them against the run)
        if not args.resume:
            get_config(name, **overrides)
    except ValueError as exc:
        raise config_error(exc) from None
    if args.resume and not compare and args.out is None and not (out / "last.npz").is_file():
        raise _nothing_to_resume(out)
    again = "minilstm train --resume" + ("" if args.out is None and compare and name == "tiny"
                                         else f" --out {shlex.quote(str(out))}")
    if args.data_dir:
        again += f" --data-dir {shlex.quote(args.data_dir)}"
    kw = dict(data_dir=args.data_dir, device=args.device, progress=not args.no_progress, again=again)
    # With --resume, the recipe is the run's own unless --config names one (then it must be the same).
    config = args.config if args.resume else name
    try:
        if not compare:
            res = _train(config, out, args.resume, args.force, kw, overrides)
            return 130 if res.interrupted else 0
        return _compare(config, name, out, args, kw, overrides)
    except ResumeMismatch as exc:
        raise _mismatch(exc, again) from None
    except ValueError as exc:
        raise config_error(exc) from None


def _train(config, out, resume, force, kw, overrides):
    from ..training import train

    return train(config, out_dir=out, resume=resume, force=force, **kw, **overrides)


def _compare(config, name, out, args, kw, overrides) -> int:
    """The paper's story in one command: the same model without and with Zaremba dropout, into out/no-dropout
    and out/dropout, then both curves in out/compare.png. With --resume each run continues (or starts)."""
    p = 0.5 if args.compare_p is None else args.compare_p
    results = []
    for label, dropout in zip(COMPARE, (0.0, p)):
        print(f"\n=== {name}: {label} ===")
        run_dir = out / label
        resume = args.resume and (run_dir / "last.npz").is_file()
        # A resumed run keeps its dropout; --compare-p only if the user typed it (then it must agree).
        extra = {} if resume and (label == COMPARE[0] or args.compare_p is None) else {"dropout": dropout}
        res = _train(config, run_dir, resume, args.force, kw, {**overrides, **extra})
        if res.interrupted:
            print(f"continue both runs with: {kw['again']}")
            return 130
        results.append((label, res))
    print("\n                 train ppl   valid ppl   test ppl")
    for label, res in results:
        h = res.history[-1]
        print(f"  {label:<14} {h['train_ppl']:>9.2f}   {h['valid_ppl']:>9.2f}   {res.test_ppl:>8.2f}")
    best = results[0][1].best_perplexity
    if best:
        print(f"  {'best possible':<14} {best['train']:>9.2f}   {best['valid']:>9.2f}   {best['test']:>8.2f}"
              "   (the corpus's true entropy)")
    from ..plots import plot_runs

    path = plot_runs([out])
    run = shlex.quote(str(out))
    print(f"\nboth runs are in {out} (no-dropout/, dropout/: checkpoints, metrics), curves: {path}\n"
          f"next:  minilstm plot {run}      # both runs and the best possible line\n"
          f"       minilstm eval {run}      # the best.npz of the run with the lower validation perplexity\n"
          f"       minilstm sample {run}    # text from that checkpoint\n"
          f"       minilstm train --resume{'' if run == 'runs/tiny' else ' --out ' + run} --epochs "
          f"{results[0][1].config.epochs + 4}   # train both longer")
    return 0
