"""The ``minilstm`` command line.

    minilstm gradcheck        prove the hand-written backward pass (float64)

Run ``minilstm COMMAND --help`` for the options of each command.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def _cmd_gradcheck(args):
    from . import gradcheck
    from .model import LSTMLanguageModel

    model = LSTMLanguageModel(args.vocab, args.hidden, args.layers, dropout=args.dropout,
                              dropout_mode=args.dropout_mode, init_scale=args.init_scale,
                              dtype="float64", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    tokens = rng.integers(0, args.vocab, (args.batch, args.steps))
    targets = rng.integers(0, args.vocab, (args.batch, args.steps))
    print(f"Gradient check of the whole {args.layers}-layer model (V={args.vocab}, H={args.hidden}, "
          f"N={args.batch}, T={args.steps}, dropout {args.dropout} '{args.dropout_mode}', fixed masks, float64)")
    print(f"centred differences of order {gradcheck.DEFAULT_ORDER}, tolerance {gradcheck.DEFAULT_TOL:g}\n")
    report = gradcheck.check_model(model, tokens, targets, direction=True, seed=args.seed)
    print(report)
    return 0 if report.passed else 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minilstm",
        description="A hand-written NumPy/CuPy LSTM language model that reproduces Zaremba, Sutskever & "
                    "Vinyals (2014), 'Recurrent Neural Network Regularization'.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("gradcheck", help="check every gradient of the model against finite differences",
                       description="Build a small float64 model with dropout on (fixed masks) and compare the "
                                   "hand-written backward pass with centred finite differences, parameter by "
                                   "parameter. Exit status 1 if any relative error exceeds 1e-7.")
    g.add_argument("--vocab", type=int, default=12, help="vocabulary size V (default 12)")
    g.add_argument("--hidden", type=int, default=6, help="hidden size H (default 6)")
    g.add_argument("--layers", type=int, default=2, help="LSTM layers L (default 2)")
    g.add_argument("--batch", type=int, default=3, help="batch size N (default 3)")
    g.add_argument("--steps", type=int, default=5, help="time steps T (default 5)")
    g.add_argument("--dropout", type=float, default=0.5, help="dropout probability (default 0.5)")
    g.add_argument("--dropout-mode", default="zaremba", choices=["zaremba", "recurrent", "none"],
                   help="where dropout goes (default: zaremba, the paper's)")
    g.add_argument("--init-scale", type=float, default=0.3, help="uniform init range (default 0.3)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.set_defaults(func=_cmd_gradcheck)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
