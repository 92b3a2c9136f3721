"""Every named choice of minilstm, in one place.

The model, the recipes (config.py), the command line (cli.py), the benchmark
(bench.py) and the regularization lab (lab.py) all take their lists from here,
so adding a dropout mode or a dataset is one edit, and no list can fall out of
step with another. The names of the recipes themselves are the keys of
``config.CONFIGS`` (a recipe is its numbers, which live there).
"""

from __future__ import annotations

# Where the dropout operator D goes (minilstm/model.py explains each):
#   none        no dropout at all
#   zaremba     the paper's: non-recurrent connections only (the default)
#   recurrent   the naive placement the paper argues against: also h_{t-1}, a fresh mask every step
#   variational Gal & Ghahramani (2016): inputs, outputs and h_{t-1}, one mask per sequence for all steps
DROPOUT_MODES = ("none", "zaremba", "recurrent", "variational")

# Modes whose masks are drawn once per sequence, (N, 1, H), and shared by every time step.
PER_SEQUENCE_MODES = ("variational",)

# Modes that also drop h_{t-1} inside the recurrence.
RECURRENT_MASK_MODES = ("recurrent", "variational")

DATASETS = ("builtin", "ptb")  # builtin: synthetic, no download; ptb: the Penn Treebank

DEVICES = ("cpu", "gpu")  # NumPy or CuPy

# What `minilstm bench --model` times: the language model (its recipes: --configs) and the
# translation miniature's training step (minilstm/experiments/translate.py).
BENCH_MODELS = ("lm", "translation", "speech", "caption")

DTYPES = ("float32", "float64")

# The three parts of every corpus (data/corpus.py, data/parallel.py, data/ptb.py's file names, eval --split).
SPLITS = ("train", "valid", "test")
