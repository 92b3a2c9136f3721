"""``minilstm gradcheck``: every gradient of a small float64 model against finite differences.

The check itself is minilstm/gradcheck.py; this module builds the model from
the flags, says up front how long the check will take (one forward pass timed,
times the passes it needs), and prints each parameter's line as soon as it is
checked, so a large check is never silent.
"""

from __future__ import annotations

import sys
import time

from ..choices import DROPOUT_MODES
from ..cliargs import float_arg, int_arg


def add_cli(sub):
    """Register ``minilstm gradcheck``."""
    g = sub.add_parser("gradcheck", help="check every gradient of the model against finite differences",
                       description="Build a small float64 model with dropout on (fixed masks) and compare the "
                                   "hand-written backward pass with centred finite differences, parameter by "
                                   "parameter. Exit status 1 if any relative error exceeds 1e-7.")
    # Finite differences cost six forwards per weight: the bounds keep a check within reach.
    g.add_argument("--vocab", type=int_arg(2, 1000), default=12, help="vocabulary size V (default 12)")
    g.add_argument("--hidden", type=int_arg(1, 64), default=6, help="hidden size H (default 6)")
    g.add_argument("--layers", type=int_arg(1, 8), default=2, help="LSTM layers L (default 2)")
    g.add_argument("--batch", type=int_arg(1, 64), default=3, help="batch size N (default 3)")
    g.add_argument("--steps", type=int_arg(1, 100), default=5, help="time steps T (default 5)")
    g.add_argument("--dropout", type=float_arg(0, 1, hi_open=True), default=0.5,
                   help="dropout probability (default 0.5)")
    g.add_argument("--dropout-mode", default="zaremba", choices=DROPOUT_MODES,
                   help="where dropout goes (default: zaremba, the paper's)")
    g.add_argument("--tie-weights", action="store_true", help="decoder = transposed embedding")
    g.add_argument("--init-scale", type=float_arg(0, 10, lo_open=True), default=0.3,
                   help="uniform init range (default 0.3)")
    g.add_argument("--seed", type=int_arg(0, 2**63 - 1), default=0, help="random seed (default 0)")
    g.set_defaults(func=run)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def run(args):
    import numpy as np

    from .. import gradcheck
    from ..model import LSTMLanguageModel

    model = LSTMLanguageModel(args.vocab, args.hidden, args.layers, dropout=args.dropout,
                              dropout_mode=args.dropout_mode, init_scale=args.init_scale,
                              dtype="float64", seed=args.seed, tie_weights=args.tie_weights)
    rng = np.random.default_rng(args.seed)
    tokens = rng.integers(0, args.vocab, (args.batch, args.steps))
    targets = rng.integers(0, args.vocab, (args.batch, args.steps))
    print(f"Gradient check of the whole {args.layers}-layer model (V={args.vocab}, H={args.hidden}, "
          f"N={args.batch}, T={args.steps}, dropout {args.dropout} '{args.dropout_mode}', fixed masks, float64)")
    print(f"centred differences of order {gradcheck.DEFAULT_ORDER}, tolerance {gradcheck.DEFAULT_TOL:g}\n")
    # Each weight costs DEFAULT_ORDER forward passes (a centred difference of that order), each tensor two
    # more along a random direction: time one pass to say how long the whole check will take.
    t0 = time.perf_counter()
    model.forward(tokens, targets, None, train=True, rng=np.random.default_rng(0))
    per_pass = time.perf_counter() - t0
    sizes = {name: int(p.size) for name, p in model.params.items()}
    passes = sum(gradcheck.DEFAULT_ORDER * n + 2 for n in sizes.values())
    print(f"{sum(sizes.values()):,} weights in {len(sizes)} tensors, about {passes:,} forward passes: "
          f"roughly {_duration(passes * per_pass)} here (Ctrl-C stops; smaller --vocab, --hidden, --layers, "
          "--batch or --steps are faster)", file=sys.stderr, flush=True)

    def show(result):  # each line as soon as it is known
        print(result, flush=True)

    report = gradcheck.check_model(model, tokens, targets, direction=True, seed=args.seed, progress=show)
    print("all gradients match" if report.passed else "SOME GRADIENTS ARE WRONG")
    return 0 if report.passed else 1
