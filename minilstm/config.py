"""Training recipes: the paper's three Penn Treebank configurations, plus ``tiny``.

The numbers below are copied from Zaremba et al. (2014), section 4.1; the
paper's official code (``main.lua``) fixes details the text leaves out (the
loss scale, clipping the global norm):

| config | layers | hidden | steps | batch | dropout | init | lr | decay | max_epoch | epochs | clip |
|--------|--------|--------|-------|-------|---------|------|----|-------|-----------|--------|------|
| small  | 2      | 200    | 20    | 20    | 0       | 0.1  | 1  | 2     | 4         | 13     | 5    |
| medium | 2      | 650    | 35    | 20    | 0.5     | 0.05 | 1  | 1.2   | 6         | 39     | 5    |
| large  | 2      | 1500   | 35    | 20    | 0.65    | 0.04 | 1  | 1.15  | 14        | 55     | 10   |

Learning-rate schedule: ``lr`` for the first ``max_epoch`` epochs, then divided
by ``decay`` at the start of every further epoch:
``lr(epoch) = lr * decay ** -max(epoch - max_epoch, 0)`` with epochs counted from 1.

This schedule follows the paper's text (small: lr 1 for 4 epochs, then halved
after each epoch) and TensorFlow's PTB tutorial, not ``main.lua`` to the
letter. ``main.lua`` divides the rate at the *end* of every epoch ``e >
max_epoch``, so it keeps the full rate one epoch longer (small: epochs 1-5 at
lr 1, lr 1/2 from epoch 6; here lr 1/2 from epoch 5). Its validation perplexity
is also computed differently (20 parallel streams, the ragged end dropped, exp
of the mean per-chunk loss), which reads about 1% lower than the exp(total NLL
/ total words) over one continuous stream computed here. So a per-epoch curve
is one epoch ahead of a ``main.lua`` log, while the final perplexities compare
directly with the paper's.

``tiny`` is for the built-in synthetic corpus (no download): small enough to
train in a few minutes on a laptop CPU.

What came after (lesson 9): ``medium-variational-tied`` and
``large-variational-tied`` are the paper's medium and large recipes with the
variational dropout of Gal & Ghahramani (2016) and the decoder tied to the
embedding (Press & Wolf 2017; Inan et al. 2017), ready for a GPU. Published
Penn Treebank perplexities beside them, valid / test:

| recipe | Zaremba et al. 2014 | Gal & Ghahramani 2016, variational |
|--------|---------------------|------------------------------------|
| medium | 86.2 / 82.7         | 81.9 / 79.7                        |
| large  | 82.2 / 78.4         | 77.9 / 75.2                        |

Gal & Ghahramani's figures are for variational dropout *without* tying (their
"tied weights" means one matrix for the four gates, as here), and their code
also drops whole words of the embedding and uses weight decay, which minilstm
does not: they are the reference to aim at, not a promise. Both tying papers
report further gains on PTB when tying is added; we have not copied their
figures here because their models differ in more than the tying.

Configs are plain dataclasses; there is no configuration by ``exec``. Any field
can be overridden with ``replace(config, hidden_size=400)`` or, on the command
line, with the matching flag (``--hidden 400``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .choices import DATASETS, DROPOUT_MODES, DTYPES


@dataclass(frozen=True)
class Config:
    name: str = "tiny"
    dataset: str = "builtin"      # "builtin" (synthetic, no download) or "ptb"
    num_layers: int = 2           # L
    hidden_size: int = 200        # H (also the embedding size)
    num_steps: int = 20           # T: unrolled steps of truncated BPTT
    batch_size: int = 20          # N: parallel streams
    dropout: float = 0.0          # p: probability of dropping a unit
    dropout_mode: str = "zaremba"  # one of choices.DROPOUT_MODES: "zaremba", "recurrent", "variational", "none"
    init_scale: float = 0.1       # uniform init in [-init_scale, init_scale]
    lr: float = 1.0               # SGD learning rate
    lr_decay: float = 2.0         # divide lr by this every epoch after max_epoch
    max_epoch: int = 4            # epochs at the initial learning rate
    epochs: int = 13              # total epochs
    max_grad_norm: float = 5.0    # clip the global gradient norm to this
    seed: int = 0
    dtype: str = "float32"
    eval_batch_size: int = 1      # evaluation streams (1 = the whole split as one stream)
    train_tokens: int = 0         # use only the first K training tokens (0 = all): quick experiments
    tie_weights: bool = False     # decoder = transposed embedding (Press & Wolf 2017); old checkpoints: False

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (counted from 1)."""
        return self.lr / self.lr_decay ** max(epoch - self.max_epoch, 0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CONFIGS = {
    "tiny": Config(name="tiny", dataset="builtin", num_layers=2, hidden_size=128, num_steps=20, batch_size=20,
                   dropout=0.0, init_scale=0.1, lr=1.0, lr_decay=2.0, max_epoch=3, epochs=6, max_grad_norm=5.0),
    "small": Config(name="small", dataset="ptb", num_layers=2, hidden_size=200, num_steps=20, batch_size=20,
                    dropout=0.0, init_scale=0.1, lr=1.0, lr_decay=2.0, max_epoch=4, epochs=13, max_grad_norm=5.0),
    "medium": Config(name="medium", dataset="ptb", num_layers=2, hidden_size=650, num_steps=35, batch_size=20,
                     dropout=0.5, init_scale=0.05, lr=1.0, lr_decay=1.2, max_epoch=6, epochs=39, max_grad_norm=5.0),
    "large": Config(name="large", dataset="ptb", num_layers=2, hidden_size=1500, num_steps=35, batch_size=20,
                    dropout=0.65, init_scale=0.04, lr=1.0, lr_decay=1.15, max_epoch=14, epochs=55,
                    max_grad_norm=10.0),
}
# After the paper: the same recipes with variational dropout and tied weights (module docstring).
CONFIGS["medium-variational-tied"] = dataclasses.replace(CONFIGS["medium"], name="medium-variational-tied",
                                                         dropout_mode="variational", tie_weights=True)
CONFIGS["large-variational-tied"] = dataclasses.replace(CONFIGS["large"], name="large-variational-tied",
                                                        dropout_mode="variational", tie_weights=True)


def get_config(name: str = "tiny", **overrides) -> Config:
    """A named recipe with some fields replaced; unknown names or fields raise a clear error."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    fields = {f.name for f in dataclasses.fields(Config)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise ValueError(f"unknown config field(s) {bad}; the fields are {sorted(fields)}")
    cfg = dataclasses.replace(CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None})
    validate(cfg)
    return cfg


# Upper bounds: far above any sensible run, low enough that a typo (an extra zero or two)
# gets a message instead of an attempt to allocate terabytes.
LIMITS = {"num_layers": 64, "hidden_size": 16384, "num_steps": 10_000, "batch_size": 100_000,
          "epochs": 100_000, "max_epoch": 100_000, "eval_batch_size": 100_000}
# The Python types a field may hold, from the dataclass annotations (one source: a new field is
# checked as soon as it is declared).
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


# Fields added after checkpoints were first written, with the value that reproduces the older
# behaviour: a file without them loads as it always did (a model saved before tying was untied).
ADDED_LATER = {"tie_weights": False}


def field_names() -> tuple:
    """The names of every Config field: the one list of keys a saved config may (and must) hold."""
    return tuple(f.name for f in dataclasses.fields(Config))


def from_dict(d, where: str = "config") -> Config:
    """A validated Config from a dict (a checkpoint's or config.json's); unknown or missing keys refused."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object of config fields, got {type(d).__name__}")
    names = field_names()
    unknown, missing = sorted(set(d) - set(names)), sorted(set(names) - set(d))
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {unknown}: written by another (newer?) version of "
                         "minilstm; upgrade minilstm, or retrain")
    missing = [name for name in missing if name not in ADDED_LATER]
    if missing:
        raise ValueError(f"{where} lacks the field(s) {missing}: written by another (older?) version of "
                         "minilstm or edited by hand; retrain the model")
    cfg = Config(**{**ADDED_LATER, **d})
    validate(cfg, where)
    return cfg


def validate(cfg: Config, where: str = "config") -> None:
    """Refuse any field that is of the wrong type, NaN, infinite or out of range, naming it."""
    import math

    for f in dataclasses.fields(Config):
        value, kinds = getattr(cfg, f.name), _TYPES.get(str(f.type))
        if kinds is None:
            continue
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ValueError(f"{where}: {f.name} must be of type {f.type}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: {f.name} must be a finite number, got {value}")
    if cfg.dataset not in DATASETS:
        raise ValueError(f"{where}: dataset must be one of {', '.join(DATASETS)}, got {cfg.dataset!r}")
    if cfg.dropout_mode not in DROPOUT_MODES:
        raise ValueError(f"{where}: dropout_mode must be one of {', '.join(DROPOUT_MODES)}, "
                         f"got {cfg.dropout_mode!r}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"{where}: dropout must be in [0, 1), got {cfg.dropout}")
    for name in ("num_layers", "hidden_size", "num_steps", "batch_size", "epochs", "max_epoch",
                 "eval_batch_size"):
        value = getattr(cfg, name)
        if value < 1:
            raise ValueError(f"{where}: {name} must be at least 1, got {value}")
        if value > LIMITS[name]:
            raise ValueError(f"{where}: {name} = {value:,} is beyond the limit of {LIMITS[name]:,}; "
                             "check for a typo")
    if cfg.train_tokens < 0:
        raise ValueError(f"{where}: train_tokens must be 0 (all) or positive, got {cfg.train_tokens}")
    if cfg.seed < 0:
        raise ValueError(f"{where}: seed must be 0 or positive, got {cfg.seed}")
    for name in ("lr", "max_grad_norm", "init_scale"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{where}: {name} must be positive, got {getattr(cfg, name)}")
    if cfg.lr_decay < 1:
        raise ValueError(f"{where}: lr_decay must be at least 1 (1 keeps the learning rate constant; "
                         f"below 1 it would grow every epoch), got {cfg.lr_decay}")
    if cfg.init_scale > 10:
        raise ValueError(f"{where}: init_scale = {cfg.init_scale} is far too large (the paper uses 0.04-0.1)")
    # The schedule must stay a usable number to the end, and one epoch past it (a checkpoint records that
    # epoch's rate): lr_decay ** epochs can overflow, or divide lr down to 0.
    try:
        last = cfg.lr_at(cfg.epochs + 1)
    except OverflowError:
        last = 0.0
    if not last >= 2.2250738585072014e-308:  # the smallest normal float64
        raise ValueError(f"{where}: lr_decay = {cfg.lr_decay:g} divides the learning rate {cfg.lr:g} down to zero "
                         f"within the {cfg.epochs} epochs (after max_epoch {cfg.max_epoch}); use a smaller lr_decay, "
                         "fewer epochs or a larger max_epoch")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {cfg.dtype!r}")


def memory_estimate(cfg: Config, vocab_size: int) -> int:
    """A rough lower bound, in bytes, of what training ``cfg`` with V = ``vocab_size`` needs.

    Weights, their gradients and the (N, T, V) scores and (N, T, 4H) gates of every layer.
    Used to refuse a config that cannot fit before allocating anything.
    """
    V, H, L, N, T = vocab_size, cfg.hidden_size, cfg.num_layers, cfg.batch_size, cfg.num_steps
    params = (1 if cfg.tie_weights else 2) * V * H + V + L * (8 * H * H + 4 * H)
    activations = N * T * V + L * N * T * 7 * H
    itemsize = 8 if cfg.dtype == "float64" else 4
    return (2 * params + activations) * itemsize


def check_memory(cfg: Config, vocab_size: int) -> None:
    """Refuse a model that cannot fit in this machine's memory, with the estimate (before allocating)."""
    import os

    need = memory_estimate(cfg, vocab_size)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on every OS
        have = None
    limit = have if have else 1 << 40
    if need > limit:
        raise ValueError(f"this model needs at least {need / 2**30:,.1f} GiB (hidden_size {cfg.hidden_size:,}, "
                         f"{cfg.num_layers} layers, vocabulary {vocab_size:,}), more than the "
                         f"{limit / 2**30:,.1f} GiB of memory here; use a smaller --hidden or --batch")
