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
    minilstm speech                     Table 2 in miniature: speech frame accuracy without and with
                                        dropout, beside the Bayes ceiling of the synthetic frames
    minilstm lab                        the regularization lab: no dropout, recurrent, zaremba,
                                        variational, with and without tied weights, on 300k PTB words
    minilstm bench                      speed against the matrix-multiply ceiling (and PyTorch)
    minilstm assign OUT / grade DIR     student handouts from the reference code, and the autograder

Run ``minilstm COMMAND --help`` for the options of each command.

Each command lives in a module of its own (COMMANDS below: minilstm/commands/ for
the language model's, the others beside the code they drive); this file only
lists them, parses, and turns a refused input into one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# The command modules, in the order `minilstm --help` lists them. Each offers add_cli(sub), which adds its
# sub-parser(s) with cliargs.py's argument types and sets `func`; a new command is one more line here.
COMMANDS = (
    "minilstm.commands.train",          # train
    "minilstm.commands.eval",           # eval
    "minilstm.commands.sample",         # sample
    "minilstm.commands.plot",           # plot
    "minilstm.commands.gradcheck",      # gradcheck
    "minilstm.experiments.translate",   # translate
    "minilstm.experiments.caption",     # caption
    "minilstm.experiments.speech",      # speech
    "minilstm.lab",                     # lab
    "minilstm.experiments.paper",       # paper: every table above in one report
    "minilstm.bench",                   # bench
    "minilstm.classroom.cli",           # assign, grade
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line (what is wrong and where to look), not the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command: each module in COMMANDS registers its own."""
    from . import __version__

    parser = _Parser(
        prog="minilstm",
        description="A hand-written NumPy/CuPy LSTM language model that reproduces Zaremba, Sutskever & "
                    "Vinyals (2014), 'Recurrent Neural Network Regularization'.",
        epilog="Start with `minilstm train` (a few minutes, no download), then "
               "`minilstm train --dataset ptb --config small` for the paper's first row.")
    parser.add_argument("--version", action="version", version=f"minilstm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_cli(sub)
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
