"""What a run saves and how it resumes: the checkpoint schema of every experiment, in one place.

A run's checkpoint (``last.npz``, ``best.npz``) holds the weights and, in its
metadata, everything needed to continue the run with the very same arithmetic:

- ``config``: the run's recipe (a dataclass with ``to_dict`` and ``lr_at``);
- ``progress``: where the run stands (``Progress`` below: the epoch, the next
  batch of it, the steps taken and this epoch's running sums);
- ``history``: one record per finished epoch;
- ``rng``: the dropout generator's exact state;
- ``vocab_hash``: which vocabulary the ids mean;
- and, as arrays beside the weights, whatever else the run carries: the LSTM
  state carried across chunks (truncated BPTT), an optimizer's moments.

Every field is checked on the way back in: a checkpoint is untrusted input.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, fields

import numpy as np

from .backend import host_generator, set_host_generator, to_host
from .checkpoint import CheckpointError, rng_from_json, rng_state_to_json, save_checkpoint
from .config import Config, from_dict


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint so a resume continues exactly."""

    epoch: int = 1          # the epoch in progress (from 1)
    chunk: int = 0          # next chunk of that epoch
    step: int = 0           # SGD steps taken in the whole run
    nll: float = 0.0        # this epoch's running sums (training perplexity)
    tokens: int = 0
    gnorm_sum: float = 0.0
    gnorm_max: float = 0.0
    clipped: int = 0
    time_s: float = 0.0     # training seconds spent in this epoch so far
    history: list = field(default_factory=list)  # one dict per finished epoch

    def reset_epoch(self):
        self.chunk, self.nll, self.tokens = 0, 0.0, 0
        self.gnorm_sum, self.gnorm_max, self.clipped, self.time_s = 0.0, 0.0, 0, 0.0


def save_run(path, model, cfg, corpus_hash, prog, arrays=None, extra_meta=None):
    """Write a run's checkpoint to ``path`` (atomically): the model's weights, the schema's
    metadata (module docstring) and ``arrays`` (e.g. a carried state), never NaN weights."""
    params = {k: to_host(v) for k, v in model.params.items()}
    for k, v in params.items():  # such weights are refused on loading: a file of them would be lost work
        if not np.isfinite(v).all():
            raise CheckpointError(f"refusing to save {path}: the weights {k!r} contain NaN or inf; "
                                  "the checkpoint already there (if any) is untouched")
    meta = {
        "config": cfg.to_dict(), "vocab_hash": corpus_hash,
        "epoch": prog.epoch, "chunk": prog.chunk, "step": prog.step, "lr": cfg.lr_at(prog.epoch),
        "seed": cfg.seed, "progress": {k: v for k, v in prog.__dict__.items() if k != "history"},
        "history": prog.history,
        # The dropout generator's exact state (it lives on the host on either device, see backend.default_rng).
        "rng": rng_state_to_json(host_generator(model.rng)),
    }
    meta.update(extra_meta or {})
    return save_checkpoint(path, params, meta, {k: to_host(v) for k, v in (arrays or {}).items()})


def saved_config(meta, path, parse=from_dict) -> Config:
    """The Config a checkpoint records, every field checked (a CheckpointError otherwise)."""
    try:
        return parse(meta.get("config"), f"{path}: config")
    except ValueError as exc:
        raise CheckpointError(f"{exc}") from exc


def check_params(ck, model, path) -> None:
    """Stored weights of the model's own dtype, all finite (never cast or used silently)."""
    for name, value in ck.params.items():
        if value.dtype != model.dtype:
            raise CheckpointError(f"{path}: parameter {name!r} is {value.dtype}, but its config says "
                                  f"{model.dtype}; the file was not written by minilstm. Retrain the model.")
        if not np.isfinite(value).all():
            raise CheckpointError(f"{path}: parameter {name!r} contains NaN or inf: the run diverged or the file "
                                  "was altered. Use another checkpoint (best.npz / last.npz) or retrain.")


def resume_point(ck, model, cfg, path, state_shape=None):
    """(Progress, carried state) from a checkpoint's metadata, every field checked.

    ``state_shape``: the (L, N, H) shape of the (h, c) a run carries from one
    batch to the next (a language model's truncated BPTT), or None for a run
    whose every batch starts from zeros (then the carried state is None).
    """
    meta = ck.meta
    saved = meta.get("progress")
    names = [f.name for f in fields(Progress) if f.name != "history"]
    if not isinstance(saved, dict) or set(saved) != set(names):
        raise CheckpointError(f"{path}: its 'progress' record should hold exactly {names}; it cannot be resumed. "
                              "Start a new run (another --out), or --force to replace this one.")
    for name in names:
        value = saved[name]
        want = float if name in ("nll", "gnorm_sum", "gnorm_max", "time_s") else int
        if isinstance(value, bool) or not isinstance(value, (int, float) if want is float else int) \
                or not math.isfinite(value) or value < 0:
            raise CheckpointError(f"{path}: progress field {name!r} = {value!r} is not a non-negative "
                                  f"{want.__name__}; it cannot be resumed")
    history = meta.get("history")
    if not isinstance(history, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)
                                        for k in ("valid_ppl", "time_s")) for r in history):
        raise CheckpointError(f"{path}: its 'history' is not a list of epoch records (each with valid_ppl and "
                              "time_s); it cannot be resumed")
    prog = Progress(**saved, history=history)
    if not 1 <= prog.epoch <= cfg.epochs + 1 or len(history) != prog.epoch - 1:
        raise CheckpointError(f"{path}: epoch {prog.epoch} with {len(history)} finished epoch(s) does not fit "
                              f"a run of {cfg.epochs} epochs; it cannot be resumed")
    rng = meta.get("rng")
    if model.uses_dropout or rng is not None:
        if not isinstance(rng, dict):
            raise CheckpointError(f"{path} lacks the dropout generator's state, so the run cannot continue "
                                  "exactly; start a new run (another --out)")
        set_host_generator(model, rng_from_json(rng))
    state = None
    if state_shape is None:
        if "state_h" in ck.arrays or "state_c" in ck.arrays:
            raise CheckpointError(f"{path}: it holds a carried state, which this kind of run never saves; "
                                  "it cannot be resumed")
    elif "state_h" in ck.arrays or "state_c" in ck.arrays:
        xp = model.xp
        h, c = ck.arrays.get("state_h"), ck.arrays.get("state_c")
        want = tuple(state_shape)
        for name, a in (("state_h", h), ("state_c", c)):
            if a is None or tuple(a.shape) != want or a.dtype != model.dtype or not np.isfinite(a).all():
                raise CheckpointError(f"{path}: the carried state {name} should be finite {model.dtype} of shape "
                                      f"{want}, got {None if a is None else (str(a.dtype), tuple(a.shape))}; "
                                      "it cannot be resumed")
        if prog.chunk == 0:
            raise CheckpointError(f"{path}: a carried state at chunk 0 is inconsistent; it cannot be resumed")
        state = (xp.asarray(h), xp.asarray(c))
    elif prog.chunk > 0:  # a run that carries state, stopped mid-epoch, must have saved it
        raise CheckpointError(f"{path}: stopped mid-epoch (chunk {prog.chunk}) without the carried state; "
                              "it cannot be resumed exactly")
    return prog, state


# Beyond this mean NLL per word (nats) even the perplexity overflows a float: the run has diverged.
# (A uniform guess over V words costs log V, about 9.2 nats for PTB.)
_MAX_NLL_PER_WORD = math.log(sys.float_info.max)


def check_diverged(nll_per_word, gnorm):
    """Stop a run whose loss or gradient has blown up, before it wastes hours or overwrites a checkpoint."""
    if not math.isfinite(gnorm):  # clipping cannot rescue an inf/NaN gradient
        raise FloatingPointError(f"the gradient norm is {gnorm}")
    if not nll_per_word < _MAX_NLL_PER_WORD:
        raise FloatingPointError(f"the loss is {nll_per_word:.3g} nats per word")
