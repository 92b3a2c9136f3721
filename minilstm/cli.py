"""The ``minilstm`` command line.

    minilstm train                      the built-in corpus, with and without dropout (no download)
    minilstm train --dataset ptb --config small
                                        the paper's first row on the Penn Treebank
    minilstm eval RUN [...]             perplexity of RUN/best.npz (or a .npz); several = model averaging
    minilstm sample RUN                 generate text from RUN/best.npz (or a .npz)
    minilstm plot RUN [RUN ...]         train/valid perplexity curves, overlaid (runs/tiny: both runs)
    minilstm gradcheck                  prove the hand-written backward pass (float64)
    minilstm translate                  Table 3 in miniature: translation without and with dropout,
                                        test perplexity and BLEU (--model RUN 'a sentence' translates)
    minilstm lab                        the regularization lab: no dropout, recurrent, zaremba,
                                        variational, with and without tied weights, on 300k PTB words
    minilstm bench                      speed against the matrix-multiply ceiling (and PyTorch)
    minilstm assign OUT / grade DIR     student handouts from the reference code, and the autograder

Run ``minilstm COMMAND --help`` for the options of each command.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from .choices import DATASETS, DEVICES, DROPOUT_MODES, DTYPES, SPLITS
from .cliargs import float_arg, int_arg

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
    "epochs": ("epochs", int, "total epochs"),
    "clip": ("max_grad_norm", float, "clip the global gradient norm to this"),
    "dtype": ("dtype", str, "float32 (default, fast) or float64"),
    "eval_batch": ("eval_batch_size", int, "streams used for evaluation (1 = the split as one stream)"),
    "train_tokens": ("train_tokens", int, "train on the first K tokens only (0 = all), for quick experiments"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line (what is wrong and where to look), not the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# The argument types live in cliargs.py so that every command module can use them.
_int, _float = int_arg, float_arg


def _config_error(exc: ValueError) -> ValueError:
    """A Config message with the command-line flag named instead of the field (max_grad_norm -> --clip)."""
    import re

    flags = {field: "--" + flag.replace("_", "-") for flag, (field, _, _) in OVERRIDES.items()}
    flags["seed"] = "--seed"
    text = re.sub(r"^config: (\w+)", lambda mt: flags.get(mt.group(1), mt.group(1)), str(exc))
    return ValueError(text)


def _overrides(args):
    out = {}
    for flag, (field, _, _) in OVERRIDES.items():
        value = getattr(args, flag, None)
        if value is not None:
            out[field] = value
    if getattr(args, "seed", None) is not None:
        out["seed"] = args.seed
    if getattr(args, "dataset", None) is not None:
        out["dataset"] = args.dataset
    if getattr(args, "tie_weights", None) is not None:
        out["tie_weights"] = args.tie_weights
    return out


def _cmd_train(args):
    from .training import train

    overrides = _overrides(args)
    config = args.config or ("small" if overrides.get("dataset") == "ptb" else "tiny")
    compare = (args.compare if args.compare is not None
               else config == "tiny" and "dropout" not in overrides and not args.resume)
    out = Path(args.out) if args.out else Path("runs") / config
    try:  # every flag checked before anything is loaded or written
        from .config import get_config

        get_config(config, **overrides)
    except ValueError as exc:
        raise _config_error(exc) from None
    kw = dict(resume=args.resume, data_dir=args.data_dir, device=args.device, progress=not args.no_progress,
              force=args.force)
    if not compare:
        res = train(config, out_dir=out, **kw, **overrides)
        return 130 if res.interrupted else 0

    # The paper's story in one command: the same model without and with Zaremba dropout.
    from .plots import plot_runs

    results = []
    for label, p in (("no-dropout", 0.0), ("dropout", args.compare_p)):
        print(f"\n=== {config}: {label} ===")
        res = train(config, out_dir=out / label, **kw, **{**overrides, "dropout": p})
        if res.interrupted:
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
    path = plot_runs([out / label for label, _ in results], out / "compare.png")
    run = shlex.quote(str(out))
    print(f"\nboth runs are in {out} (no-dropout/, dropout/: checkpoints, metrics), curves: {path}\n"
          f"next:  minilstm plot {run}      # both runs and the best possible line\n"
          f"       minilstm eval {run}      # the best.npz of the run with the lower validation perplexity\n"
          f"       minilstm sample {run}    # text from that checkpoint")
    return 0


def _checkpoint_in(path: str) -> str:
    """``path`` if it is a file, else the checkpoint of the run folder it names: best.npz (else
    last.npz); in a compare folder (runs/tiny), that of the run with the lowest validation
    perplexity. Says on stderr which file it took."""
    from .checkpoint import CheckpointError
    from .plots import epoch_rows, read_metrics

    folder = Path(path)
    if not folder.is_dir():
        return path

    def checkpoint(d):
        return next((d / n for n in ("best.npz", "last.npz") if (d / n).is_file()), None)

    runs = [folder] if checkpoint(folder) else [d for d in sorted(folder.iterdir()) if d.is_dir() and checkpoint(d)]
    if not runs:
        raise CheckpointError(f"{folder} holds no checkpoint (best.npz or last.npz): give a .npz file or a run "
                              "folder that `minilstm train --out DIR` wrote")

    def best_valid(d):
        try:
            return min(r["valid_ppl"] for r in epoch_rows(read_metrics(d)))
        except (ValueError, KeyError, TypeError):  # no metrics or no finished epoch: rank it last
            return float("inf")

    run = min(runs, key=best_valid)
    chosen = checkpoint(run)
    why = "the best validation perplexity" if chosen.name == "best.npz" else "no best.npz yet"
    if len(runs) > 1:
        why += (f"; of the {len(runs)} runs in {folder} ({', '.join(d.name for d in runs)}), {run.name} has the lowest "
                f"validation perplexity ({best_valid(run):.2f}); name a run folder to choose another")
    print(f"using {chosen} ({why})", file=sys.stderr)
    return str(chosen)


def _cmd_eval(args):
    from .data import load_corpus, vocab_hash
    from .training import evaluate, evaluate_ensemble, load_model

    args.checkpoints = [_checkpoint_in(p) for p in args.checkpoints]
    first_meta = load_model(args.checkpoints[0], args.device)[1]
    dataset = args.dataset or first_meta["config"]["dataset"]
    corpus = load_corpus(dataset, data_dir=args.data_dir)
    h = vocab_hash(corpus.vocab)
    models = [load_model(p, args.device, corpus_hash=h)[0] for p in args.checkpoints]
    steps = args.steps or models[0].H and first_meta["config"]["num_steps"]
    for split in args.split:
        ids = getattr(corpus, split)
        if len(models) == 1:
            res = evaluate(models[0], ids, args.eval_batch, steps, progress=not args.no_progress, desc=split)
            what = args.checkpoints[0]
        else:
            res = evaluate_ensemble(models, ids, args.eval_batch, steps, progress=not args.no_progress)
            what = f"average of {len(models)} models"
        print(f"{split:<5} perplexity {res.perplexity:8.2f}   ({res.tokens:,} words, {what})")
    return 0


def _cmd_sample(args):
    from .checkpoint import CheckpointError
    from .data import load_corpus, vocab_hash
    from .sample import format_text, sample
    from .training import load_model

    args.checkpoint = _checkpoint_in(args.checkpoint)
    model, meta = load_model(args.checkpoint, args.device)
    corpus = load_corpus(args.dataset or meta["config"]["dataset"], data_dir=args.data_dir)
    # The ids the model emits only mean the checkpoint's words: another vocabulary would print other words.
    saved = meta.get("vocab_hash")
    if saved != vocab_hash(corpus.vocab) or model.V != len(corpus.vocab):
        raise CheckpointError(f"{args.checkpoint} was trained on another vocabulary (vocab_hash {saved!r}, "
                              f"{model.V:,} words) than the {corpus.name} corpus ({vocab_hash(corpus.vocab)!r}, "
                              f"{len(corpus.vocab):,} words); sample with the dataset it was trained on "
                              f"(--dataset {meta['config']['dataset']})")
    words = sample(model, corpus.vocab, args.length, args.temperature, args.prime,
                   np.random.default_rng(args.seed))
    print(format_text(args.prime.split() + words))
    return 0


def _cmd_plot(args):
    from .plots import plot_runs

    path = plot_runs([Path(r) for r in args.runs], Path(args.output) if args.output else None)
    print(path)
    return 0


def _cmd_bench(args):
    from . import bench

    return bench.main(args.rest)


def _cmd_gradcheck(args):
    from . import gradcheck
    from .model import LSTMLanguageModel

    model = LSTMLanguageModel(args.vocab, args.hidden, args.layers, dropout=args.dropout,
                              dropout_mode=args.dropout_mode, init_scale=args.init_scale,
                              dtype="float64", seed=args.seed, tie_weights=args.tie_weights)
    rng = np.random.default_rng(args.seed)
    tokens = rng.integers(0, args.vocab, (args.batch, args.steps))
    targets = rng.integers(0, args.vocab, (args.batch, args.steps))
    print(f"Gradient check of the whole {args.layers}-layer model (V={args.vocab}, H={args.hidden}, "
          f"N={args.batch}, T={args.steps}, dropout {args.dropout} '{args.dropout_mode}', fixed masks, float64)")
    print(f"centred differences of order {gradcheck.DEFAULT_ORDER}, tolerance {gradcheck.DEFAULT_TOL:g}\n")
    report = gradcheck.check_model(model, tokens, targets, direction=True, seed=args.seed)
    print(report)
    return 0 if report.passed else 1


def _common(p, device=True):
    p.add_argument("--data-dir", help="folder with ptb.{train,valid,test}.txt (default: $MINILSTM_DATA, "
                                      "else ~/.cache/minilstm/ptb, downloaded there if missing)")
    if device:
        p.add_argument("--device", choices=DEVICES, default=None,
                       help="cpu (NumPy) or gpu (CuPy); default $MINILSTM_DEVICE or cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from .config import CONFIGS

    parser = _Parser(
        prog="minilstm",
        description="A hand-written NumPy/CuPy LSTM language model that reproduces Zaremba, Sutskever & "
                    "Vinyals (2014), 'Recurrent Neural Network Regularization'.",
        epilog="Start with `minilstm train` (a few minutes, no download), then "
               "`minilstm train --dataset ptb --config small` for the paper's first row.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"minilstm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train", help="train a language model (default: the built-in corpus, with and without dropout)",
        description="Train an LSTM language model with truncated BPTT, SGD and gradient clipping, exactly "
                    "as in the paper. With no arguments: the `tiny` recipe on the built-in synthetic corpus, "
                    "trained twice (no dropout, then Zaremba dropout) so you can compare train and validation "
                    "perplexity; a few minutes on a laptop CPU, no download. "
                    "Recipes: " + ", ".join(sorted(CONFIGS)) + " (see minilstm/config.py). "
                    "Every recipe field can be overridden with the flags below.")
    t.add_argument("--config", choices=sorted(CONFIGS), help="recipe (default: tiny; small with --dataset ptb)")
    t.add_argument("--dataset", choices=DATASETS, help="builtin (synthetic, no download) or ptb")
    t.add_argument("--out", help="run folder for checkpoints, metrics and plots (default runs/CONFIG)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last.npz")
    t.add_argument("--force", action="store_true",
                   help="start afresh in an --out folder that holds another run, replacing its files (listed)")
    t.add_argument("--seed", type=_int(0, 2**63 - 1), help="random seed (weights and dropout masks)")
    t.add_argument("--compare", dest="compare", action="store_true", default=None,
                   help="train twice, without and with dropout, and compare (default for plain `train`)")
    t.add_argument("--no-compare", dest="compare", action="store_false", help="train one model only")
    t.add_argument("--compare-p", type=_float(0, 1, hi_open=True), default=0.5,
                   help="dropout of the dropout run in --compare")
    for flag, (_, typ, helptext) in OVERRIDES.items():
        kw = {"choices": DROPOUT_MODES} if flag == "dropout_mode" else {}
        if flag == "dtype":
            kw = {"choices": DTYPES}
        typ = {int: _int(), float: _float()}.get(typ, typ)  # ranges: config.validate, with the flag named
        t.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, help=helptext, **kw)
    t.add_argument("--tie-weights", dest="tie_weights", action=argparse.BooleanOptionalAction, default=None,
                   help="decoder = transposed embedding (Press & Wolf 2017); --no-tie-weights to untie")
    _common(t)
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="perplexity of checkpoints; several are model-averaged",
                       description="Perplexity = exp(total NLL / words) over a whole split, dropout off, state "
                                   "carried. With several checkpoints their predicted distributions are "
                                   "averaged before scoring (the paper's ensemble rows).")
    e.add_argument("checkpoints", nargs="+", metavar="RUN", help="checkpoint files (.npz) or run folders "
                   "(their best.npz; runs/tiny: that of the run with the lower validation perplexity)")
    e.add_argument("--split", nargs="+", default=["valid", "test"], choices=SPLITS)
    e.add_argument("--dataset", choices=DATASETS, help="default: the checkpoint's own")
    e.add_argument("--eval-batch", type=_int(1, 100_000), default=1, help="evaluation streams (default 1)")
    e.add_argument("--steps", type=_int(1, 100_000), help="chunk length (default: the checkpoint's)")
    _common(e)
    e.set_defaults(func=_cmd_eval)

    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("checkpoint", metavar="RUN", help="a checkpoint file (.npz) or a run folder (its best.npz)")
    s.add_argument("--length", type=_int(0, 1_000_000), default=50, help="words to generate (default 50)")
    s.add_argument("--temperature", type=_float(0, 100, lo_open=True), default=1.0,
                   help="<1 safer, >1 wilder (default 1)")
    s.add_argument("--prime", default="", help='words to start from, e.g. "the market"')
    s.add_argument("--seed", type=_int(0, 2**63 - 1), default=0)
    s.add_argument("--dataset", choices=DATASETS, help="default: the checkpoint's own")
    _common(s)
    s.set_defaults(func=_cmd_sample)

    p = sub.add_parser("plot", help="plot train/valid perplexity, learning rate and gradient norm of runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (each with metrics.jsonl), or a folder "
                   "of runs such as runs/tiny (both runs, with the best possible line)")
    p.add_argument("--output", "-o", help="PNG path (default: inside the first folder given)")
    p.set_defaults(func=_cmd_plot)

    from .assign import add_cli

    add_cli(sub)  # `minilstm assign` and `minilstm grade`: classroom handouts and the autograder

    b = sub.add_parser("bench", help="measure training/eval speed against the GEMM ceiling (and PyTorch)",
                       add_help=False, description="See `minilstm bench --help`.")
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=_cmd_bench)

    g = sub.add_parser("gradcheck", help="check every gradient of the model against finite differences",
                       description="Build a small float64 model with dropout on (fixed masks) and compare the "
                                   "hand-written backward pass with centred finite differences, parameter by "
                                   "parameter. Exit status 1 if any relative error exceeds 1e-7.")
    # Finite differences cost two forwards per weight: the bounds keep a check to minutes at most.
    g.add_argument("--vocab", type=_int(2, 1000), default=12, help="vocabulary size V (default 12)")
    g.add_argument("--hidden", type=_int(1, 64), default=6, help="hidden size H (default 6)")
    g.add_argument("--layers", type=_int(1, 8), default=2, help="LSTM layers L (default 2)")
    g.add_argument("--batch", type=_int(1, 64), default=3, help="batch size N (default 3)")
    g.add_argument("--steps", type=_int(1, 100), default=5, help="time steps T (default 5)")
    g.add_argument("--dropout", type=_float(0, 1, hi_open=True), default=0.5,
                   help="dropout probability (default 0.5)")
    g.add_argument("--dropout-mode", default="zaremba", choices=DROPOUT_MODES,
                   help="where dropout goes (default: zaremba, the paper's)")
    g.add_argument("--tie-weights", action="store_true", help="decoder = transposed embedding")
    g.add_argument("--init-scale", type=_float(0, 10, lo_open=True), default=0.3,
                   help="uniform init range (default 0.3)")
    g.add_argument("--seed", type=_int(0, 2**63 - 1), default=0, help="random seed (default 0)")
    g.set_defaults(func=_cmd_gradcheck)

    from .lab import add_cli as add_lab_cli

    add_lab_cli(sub, _common)  # `minilstm lab`: the regularization lab (minilstm/lab.py)
    from .experiments.translate import add_cli as add_translate_cli

    add_translate_cli(sub, _int, _float)  # `minilstm translate`: Table 3 in miniature (experiments/translate.py)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`minilstm bench | head -1`): that is not an error of ours, and Python would
        # otherwise print a traceback when it flushes stdout at exit. Point stdout at /dev/null and stop.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a program stopped by a closed pipe


def _main(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the benchmark has its own parser: forward everything to it
        from . import bench

        return bench.main(argv[1:])
    if not sys.stdout.isatty() and hasattr(sys.stdout, "reconfigure"):
        # Redirected to a file, Python would hold lines back in a buffer: `tail -f log.txt` should see
        # each epoch's line when it is written.
        sys.stdout.reconfigure(line_buffering=True)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .backend import GPUUnavailableError
    from .checkpoint import CheckpointError
    from .data import DataError

    try:
        return args.func(args)
    except (DataError, CheckpointError, GPUUnavailableError, FloatingPointError, ValueError) as exc:
        print(f"minilstm {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # not a disk problem: main() ends quietly
    except OSError as exc:  # permissions, a file where a folder belongs, disk full...
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"minilstm {args.command}: error: {exc.strerror or exc}{where}; check the path, its permissions "
              "and the free disk space", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minilstm {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
