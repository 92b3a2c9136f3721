"""``minilstm sample``: text from a checkpoint (a .npz, a run folder's best.npz, or the best run of a folder)."""

from __future__ import annotations

import sys

from ..choices import DATASETS
from ..cliargs import add_data_dir_flag, add_device_flags, float_arg, int_arg, path_arg


def add_cli(sub):
    """Register ``minilstm sample``."""
    s = sub.add_parser("sample", help="generate text from a checkpoint",
                       description="Draw words one at a time from the model's predicted distribution (Ctrl-C "
                                   "stops, a progress bar shows how far it is).")
    s.add_argument("checkpoint", metavar="RUN", type=path_arg,
                   help="a checkpoint file (.npz) or a run folder (its best.npz)")
    s.add_argument("--length", type=int_arg(0, 1_000_000), default=50, help="words to generate (default 50)")
    s.add_argument("--temperature", type=float_arg(0, 100, lo_open=True), default=1.0,
                   help="<1 safer, >1 wilder (default 1)")
    s.add_argument("--prime", default="", help='words to start from, e.g. "the market"')
    s.add_argument("--seed", type=int_arg(0, 2**63 - 1), default=0)
    s.add_argument("--dataset", choices=DATASETS, help="default: the checkpoint's own")
    add_data_dir_flag(s)
    add_device_flags(s)
    s.set_defaults(func=run)


def run(args):
    import numpy as np

    from ..checkpoint import CheckpointError
    from ..data import load_corpus, vocab_hash
    from ..runfolder import checkpoint_in
    from ..sample import format_text, sample
    from ..training import load_model

    path = checkpoint_in(args.checkpoint, lambda line: print(line, file=sys.stderr))
    model, meta = load_model(path, args.device)
    trained_on = meta["config"]["dataset"]
    corpus = load_corpus(args.dataset or trained_on, data_dir=args.data_dir)
    # The ids the model emits only mean the checkpoint's words: another vocabulary would print other words.
    if meta.get("vocab_hash") != vocab_hash(corpus.vocab) or model.V != len(corpus.vocab):
        raise CheckpointError(f"{path} was trained on another vocabulary ({model.V:,} words) than the "
                              f"{corpus.name} corpus ({len(corpus.vocab):,} words); sample with the dataset it "
                              f"was trained on: minilstm sample {path} --dataset {trained_on}")
    words = sample(model, corpus.vocab, args.length, args.temperature, args.prime,
                   np.random.default_rng(args.seed), progress=not args.no_progress and args.length >= 1000)
    print(format_text(args.prime.split() + words))
    return 0
