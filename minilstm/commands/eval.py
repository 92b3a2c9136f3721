"""``minilstm eval``: perplexity of checkpoints over whole splits; several are model-averaged.

A run folder stands for its best.npz, a folder of runs (runs/tiny) for that of
the run with the lowest validation perplexity (runfolder.checkpoint_in).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..choices import DATASETS, SPLITS
from ..cliargs import add_data_dir_flag, add_device_flags, int_arg, path_arg


class _Splits(argparse.Action):
    """--split NAME [NAME ...], which also lets the run come after it: ``eval --split test RUN``.

    A greedy list option would swallow RUN (and argparse would then say RUN is missing); here the
    first value that is not a split name ends the list, and it and the rest are runs. A value that
    is neither a split nor an existing path is a typo, refused with both readings named.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        splits = list(getattr(namespace, "_given_splits", None) or [])
        runs = list(getattr(namespace, "runs_after_split", None) or [])
        for value in values:
            if value in SPLITS and not runs:
                splits.append(value)
            elif runs or splits and os.path.exists(value) or os.path.sep in value or value.endswith(".npz"):
                runs.append(path_arg(value))
            else:
                parser.error(f"argument --split: {value!r} is neither a split ({', '.join(SPLITS)}) nor an "
                             "existing checkpoint or run folder")
        if not splits:
            parser.error(f"argument --split: name a split ({', '.join(SPLITS)}) before the run, e.g. "
                         "--split test RUN")
        namespace._given_splits = splits
        setattr(namespace, self.dest, splits)
        namespace.runs_after_split = runs


def add_cli(sub):
    """Register ``minilstm eval``."""
    e = sub.add_parser("eval", help="perplexity of checkpoints; several are model-averaged",
                       description="Perplexity = exp(total NLL / words) over a whole split, dropout off, state "
                                   "carried. With several checkpoints their predicted distributions are "
                                   "averaged before scoring (the paper's ensemble rows).")
    e.add_argument("checkpoints", nargs="*", metavar="RUN", type=path_arg,
                   help="checkpoint files (.npz) or run folders (their best.npz; runs/tiny: that of the run with "
                        "the lower validation perplexity)")
    e.add_argument("--split", nargs="+", default=list(SPLITS[1:]), action=_Splits, metavar="SPLIT",
                   help=f"which splits ({', '.join(SPLITS)}; default valid test), e.g. --split test RUN")
    e.add_argument("--dataset", choices=DATASETS, help="default: the checkpoint's own")
    e.add_argument("--eval-batch", type=int_arg(1, 100_000), default=1, help="evaluation streams (default 1)")
    e.add_argument("--steps", type=int_arg(1, 100_000), help="chunk length (default: the checkpoint's)")
    add_data_dir_flag(e)
    add_device_flags(e)
    e.set_defaults(func=run)


def run(args):
    """Load every checkpoint, check that they agree, then score each split."""
    from ..checkpoint import CheckpointError
    from ..data import load_corpus, vocab_hash
    from ..runfolder import checkpoint_in
    from ..training import evaluate, evaluate_ensemble, load_model

    given = list(args.checkpoints) + list(getattr(args, "runs_after_split", None) or [])
    if not given:
        raise ValueError("name a checkpoint or a run folder, e.g. minilstm eval runs/tiny")
    paths = [checkpoint_in(p, lambda line: print(line, file=sys.stderr)) for p in given]
    loaded = [load_model(p, args.device) for p in paths]
    first_meta = loaded[0][1]
    sizes = {p: m.V for p, (m, _) in zip(paths, loaded)}
    if len(set(sizes.values())) > 1:
        raise CheckpointError("an ensemble averages one vocabulary's distributions, but these checkpoints have "
                              f"different vocabularies ({', '.join(f'{p}: {v:,} words' for p, v in sizes.items())});"
                              " evaluate them one at a time: minilstm eval " + paths[0])
    dataset = args.dataset or first_meta["config"]["dataset"]
    corpus = load_corpus(dataset, data_dir=args.data_dir)
    h = vocab_hash(corpus.vocab)
    models = [load_model(p, args.device, corpus_hash=h)[0] for p in paths]
    steps = args.steps or first_meta["config"]["num_steps"]
    for split in args.split:
        ids = getattr(corpus, split)
        if len(models) == 1:
            res = evaluate(models[0], ids, args.eval_batch, steps, progress=not args.no_progress, desc=split)
            what = paths[0]
        else:
            res = evaluate_ensemble(models, ids, args.eval_batch, steps, progress=not args.no_progress)
            what = f"average of {len(models)} models"
        print(f"{split:<5} perplexity {res.perplexity:8.2f}   ({res.tokens:,} words, {what})")
    return 0
