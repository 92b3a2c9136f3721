"""Training recipes: the paper's three Penn Treebank configurations, plus ``tiny``.

The numbers below are copied from Zaremba et al. (2014), section 4.1, and the
paper's official code (``main.lua``), which also fixes details the text leaves
out (the learning-rate schedule and the loss scale):

| config | layers | hidden | steps | batch | dropout | init | lr | decay | max_epoch | epochs | clip |
|--------|--------|--------|-------|-------|---------|------|----|-------|-----------|--------|------|
| small  | 2      | 200    | 20    | 20    | 0       | 0.1  | 1  | 2     | 4         | 13     | 5    |
| medium | 2      | 650    | 35    | 20    | 0.5     | 0.05 | 1  | 1.2   | 6         | 39     | 5    |
| large  | 2      | 1500   | 35    | 20    | 0.65    | 0.04 | 1  | 1.15  | 14        | 55     | 10   |

Learning-rate schedule: ``lr`` for the first ``max_epoch`` epochs, then divided
by ``decay`` at the start of every further epoch:
``lr(epoch) = lr * decay ** -max(epoch - max_epoch, 0)`` with epochs counted from 1.

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

from .choices import DROPOUT_MODES, DTYPES


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


def validate(cfg: Config) -> None:
    if cfg.dropout_mode not in DROPOUT_MODES:
        raise ValueError(f"dropout_mode must be one of {', '.join(DROPOUT_MODES)}, got {cfg.dropout_mode!r}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
    for name in ("num_layers", "hidden_size", "num_steps", "batch_size", "epochs", "eval_batch_size"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if cfg.train_tokens < 0:
        raise ValueError(f"train_tokens must be 0 (all) or positive, got {cfg.train_tokens}")
    if cfg.lr <= 0 or cfg.lr_decay <= 0 or cfg.max_grad_norm <= 0 or cfg.init_scale <= 0:
        raise ValueError("lr, lr_decay, max_grad_norm and init_scale must be positive")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {cfg.dtype!r}")
