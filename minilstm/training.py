"""Training with truncated BPTT, evaluation, and model averaging, as in the paper.

One epoch: the training stream is cut into N parallel columns (``batchify``)
and walked in chunks of T steps. Each chunk is one forward, one backward, one
clipped SGD step. The final (h, c) of a chunk becomes the initial state of the
next, but no gradient flows back across the boundary: that is *truncated*
backpropagation through time. At the start of every epoch (and of every
evaluation pass) the state is reset to zero, as in the paper's code.

Loss scale (it matters, because lr = 1 and clip = 5 were tuned for it): the
loss of a chunk is the NLL summed over its T steps and averaged over its N
streams (see ops/softmax.py). Perplexity is always exp(total NLL / total words).

Resuming: a checkpoint stores the weights, the carried (h, c), the dropout
generator's exact state, the position in the epoch and the running sums, so an
interrupted and resumed run performs the very same arithmetic as one that was
never interrupted and, on NumPy, ends with bit-identical weights.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .backend import get_xp, to_host
from .checkpoint import (CheckpointError, check_compatible, load_checkpoint, rng_from_json,
                         rng_state_to_json, save_checkpoint)
from .config import Config, get_config, validate
from .data import batchify, iterate_chunks, load_corpus, num_chunks, vocab_hash
from .model import LSTMLanguageModel
from .optim import clip_global_norm_, sgd_step_


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

@dataclass
class EvalResult:
    perplexity: float
    nll: float      # total negative log-likelihood, nats
    tokens: int     # number of predicted words

    @property
    def cross_entropy(self):
        return self.nll / self.tokens


def perplexity(nll, count):
    """exp(nll / count), the perplexity; inf (not an OverflowError) for a diverged model."""
    try:
        return math.exp(nll / max(count, 1))
    except OverflowError:
        return math.inf


def _eval_chunks(ids, batch_size, num_steps, xp):
    """Chunks (x, y) covering every position of each stream, the last one possibly shorter.

    Training drops the ragged end (every chunk has exactly T steps); evaluation
    must score every word, so it keeps it.
    """
    if len(ids) < batch_size * 2:
        raise ValueError(f"the split has {len(ids)} tokens, too few for {batch_size} evaluation stream(s)")
    data = xp.asarray(batchify(ids, batch_size))
    L = data.shape[1]
    starts = range(0, L - 1, num_steps)
    return ((data[:, i:i + num_steps][:, :L - 1 - i], data[:, i + 1:i + 1 + num_steps]) for i in starts), len(starts)


def evaluate(model: LSTMLanguageModel, ids, batch_size=1, num_steps=20, progress=False, desc="eval"):
    """Perplexity of ``model`` on the token stream ``ids``, dropout off, state carried throughout.

    batch_size 1 scores the split as one continuous stream; larger values cut
    it into that many streams (faster, each stream starts from a zero state).
    """
    chunks, n = _eval_chunks(ids, batch_size, num_steps, model.xp)
    ### BEGIN SOLUTION [training:evaluate] (hint: walk the chunks (x, y) of _progress(chunks, n, progress,
    ###     desc) with dropout off (train=False), passing each chunk the state the previous one returned
    ###     (None at the start). model.forward's loss is averaged over the N streams: multiply it back to
    ###     sum the NLL; count the predicted words; return EvalResult(exp(nll / count), nll, count))
    state, nll, count = None, 0.0, 0
    for x, y in _progress(chunks, n, progress, desc):
        loss, _, state = model.forward(x, y, state, train=False)
        nll += loss * x.shape[0]  # the loss is averaged over the N streams
        count += y.size
    return EvalResult(perplexity(nll, count), nll, count)
    ### END SOLUTION


def evaluate_ensemble(models, ids, batch_size=1, num_steps=20, progress=False):
    """Model averaging, as in the paper's ensemble rows: average the K predicted
    distributions, then score: -log( (1/K) sum_k p_k(y) ) per word.

    Only p_k of the target word is needed, so each model contributes one
    log-probability per position, combined with a stable log-sum-exp.
    """
    if not models:
        raise ValueError("evaluate_ensemble needs at least one model")
    ### BEGIN DUPLICATE [training:evaluate]
    xp = models[0].xp
    chunks, n = _eval_chunks(ids, batch_size, num_steps, xp)
    states = [None] * len(models)
    nll, count = 0.0, 0
    for x, y in _progress(chunks, n, progress, "ensemble"):
        picked = []
        for k, model in enumerate(models):
            lp, states[k] = model.log_probs(x, states[k])  # (N, T, V)
            picked.append(xp.take_along_axis(lp, y[..., None], axis=-1)[..., 0])
        stacked = xp.stack(picked)  # (K, N, T)
        top = stacked.max(axis=0)
        log_mean = top + xp.log(xp.exp(stacked - top).mean(axis=0))
        nll -= float(log_mean.sum())
        count += y.size
    return EvalResult(perplexity(nll, count), nll, count)
    ### END DUPLICATE


def _progress(iterable, total, enabled, desc):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, unit="chunk")


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

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


@dataclass
class TrainResult:
    config: Config
    model: LSTMLanguageModel
    history: list
    out_dir: Path | None
    valid_ppl: float | None = None
    test_ppl: float | None = None
    interrupted: bool = False
    best_perplexity: dict | None = None  # the built-in corpus's true optimum, per split


def build_model(cfg: Config, vocab_size: int, device=None) -> LSTMLanguageModel:
    """The model a recipe describes, set up for training speed (reused buffers, sparse embedding gradient)."""
    return LSTMLanguageModel(vocab_size, cfg.hidden_size, cfg.num_layers, dropout=cfg.dropout,
                             dropout_mode=cfg.dropout_mode, init_scale=cfg.init_scale, dtype=cfg.dtype,
                             device=device, seed=cfg.seed, reuse_buffers=True)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _write_metrics(out_dir: Path, history: list, extra: list = ()) -> None:
    """metrics.jsonl is rewritten from the checkpointed history, so a resume never duplicates lines."""
    tmp = out_dir / "metrics.jsonl.tmp"
    with open(tmp, "w") as fh:
        for row in list(history) + list(extra):
            fh.write(json.dumps(row) + "\n")
    os.replace(tmp, out_dir / "metrics.jsonl")


def _save(out_dir, name, model, cfg, corpus_hash, prog, state, extra_meta=None):
    meta = {
        "config": cfg.to_dict(), "vocab_hash": corpus_hash, "vocab_size": model.V,
        "epoch": prog.epoch, "chunk": prog.chunk, "step": prog.step, "lr": cfg.lr_at(prog.epoch),
        "seed": cfg.seed, "progress": {k: v for k, v in prog.__dict__.items() if k != "history"},
        "history": prog.history,
        # The dropout generator's exact state (NumPy only: CuPy resumes with a re-seeded generator).
        "rng": rng_state_to_json(model.rng) if model.xp.__name__ == "numpy" else None,
    }
    meta.update(extra_meta or {})
    arrays = {"state_h": to_host(state[0]), "state_c": to_host(state[1])} if state is not None else {}
    return save_checkpoint(out_dir / name, {k: to_host(v) for k, v in model.params.items()}, meta, arrays)


def train_step(model: LSTMLanguageModel, x, y, state, lr: float, max_grad_norm: float):
    """One step of truncated BPTT on one chunk: forward, backward, clip, SGD.

    x, y: (N, T) token ids (y is x shifted by one word); state: the (h, c) pair
    of (L, N, H) arrays the previous chunk returned, or None for zeros.
    Returns (loss, gnorm, state): the chunk's loss (NLL summed over T, averaged
    over N), the global gradient norm before clipping, and the final (h, c) to
    carry into the next chunk (no gradient goes back into it).
    """
    ### BEGIN SOLUTION [training:loop] (hint: one step of truncated BPTT: forward this chunk from
    ###     the state the previous chunk returned (dropout on), keep the returned state for the
    ###     next chunk (no gradient goes back into it), backward, clip the global gradient norm to
    ###     max_grad_norm (clip_global_norm_ returns the norm before clipping), then an SGD
    ###     step with lr (sgd_step_). Return loss, gnorm and the new state)
    loss, cache, state = model.forward(x, y, state, train=True)
    grads = model.backward(cache)
    del cache
    gnorm = clip_global_norm_(grads, max_grad_norm)
    sgd_step_(model.params, grads, lr)
    ### END SOLUTION
    return loss, gnorm, state


def train(config: Config | str | None = None, out_dir=None, resume=False, data_dir=None, device=None,
          progress=True, corpus=None, on_step=None, evaluate_test=True, log=print, **overrides) -> TrainResult:
    """Train a language model; the same as ``minilstm train``.

    config: a Config, a config name ("tiny", "small", "medium", "large") or None for "tiny";
    overrides: any Config field, e.g. ``hidden_size=400, dropout=0.5``;
    out_dir: run folder for checkpoints, metrics.jsonl, config.json and plots (None: keep nothing);
    resume: continue from ``out_dir/last.npz``;
    corpus: a ready Corpus (else loaded from ``config.dataset``);
    on_step(info): called after every SGD step (tests use it to interrupt a run).
    Ctrl-C saves ``last.npz`` first, so ``--resume`` can continue.
    """
    if isinstance(config, Config):
        cfg = Config(**{**config.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})
        validate(cfg)
    else:
        cfg = get_config(config or "tiny", **overrides)
    out_dir = Path(out_dir) if out_dir is not None else None
    if corpus is None:
        corpus = load_corpus(cfg.dataset, data_dir=data_dir)
    chash = vocab_hash(corpus.vocab)
    model = build_model(cfg, len(corpus.vocab), device)
    xp = get_xp(model.device)
    prog = Progress()
    state = None

    if out_dir is not None:
        last = out_dir / "last.npz"
        if resume:
            if not last.exists():
                raise CheckpointError(f"--resume: no checkpoint {last}; start without --resume")
            ck = load_checkpoint(last)
            saved_cfg = Config(**ck.meta["config"])
            if saved_cfg != cfg and not isinstance(config, Config) and not overrides:
                cfg = saved_cfg  # resuming by folder alone: take the run's own config
                model = build_model(cfg, len(corpus.vocab), device)
            check_compatible(ck.meta, chash, {k: v.shape for k, v in model.params.items()})
            model.params = {k: xp.asarray(v) for k, v in ck.params.items()}
            if ck.meta.get("rng") is not None and xp.__name__ == "numpy":
                model.rng = rng_from_json(ck.meta["rng"])
            prog = Progress(**ck.meta["progress"], history=ck.meta["history"])
            if "state_h" in ck.arrays:
                state = (xp.asarray(ck.arrays["state_h"]), xp.asarray(ck.arrays["state_c"]))
            log(f"resuming {out_dir} at epoch {prog.epoch}, chunk {prog.chunk} (step {prog.step})")
        elif last.exists():
            raise CheckpointError(f"{out_dir} already holds a run (last.npz); pass --resume to continue it, "
                                  "or choose another --out so nothing saved is overwritten")
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_json(out_dir / "config.json", {**cfg.to_dict(), "label": _label(cfg), "vocab_hash": chash,
                                             "dataset_description": corpus.description})

    train_ids = corpus.train[:cfg.train_tokens] if cfg.train_tokens else corpus.train
    data = xp.asarray(batchify(train_ids, cfg.batch_size))
    n_chunks = num_chunks(data, cfg.num_steps)
    log(f"{cfg.name}: {cfg.num_layers}x{cfg.hidden_size} LSTM, dropout {cfg.dropout} ({cfg.dropout_mode}), "
        f"{model.num_params():,} parameters, {corpus.name} corpus ({len(corpus.vocab):,} words, "
        f"{len(train_ids):,} training tokens, {n_chunks} chunks/epoch)")

    result = TrainResult(cfg, model, prog.history, out_dir,
                         best_perplexity=_best(corpus))
    try:
        while prog.epoch <= cfg.epochs:
            lr = cfg.lr_at(prog.epoch)
            if prog.chunk == 0:
                state = None  # every epoch starts from a zero state, as in the paper's code
            bar = _epoch_bar(progress, n_chunks, prog, cfg)
            t0 = time.perf_counter()
            for x, y in iterate_chunks(data, cfg.num_steps, start=prog.chunk):
                loss, gnorm, state = train_step(model, x, y, state, lr, cfg.max_grad_norm)
                _check_diverged(loss * x.shape[0] / y.size, gnorm)
                prog.chunk += 1
                prog.step += 1
                prog.nll += loss * x.shape[0]
                prog.tokens += y.size
                prog.gnorm_sum += gnorm
                prog.gnorm_max = max(prog.gnorm_max, gnorm)
                prog.clipped += gnorm > cfg.max_grad_norm
                if bar is not None:
                    elapsed = prog.time_s + time.perf_counter() - t0
                    bar.update(1)
                    bar.set_postfix(ppl=f"{perplexity(prog.nll, prog.tokens):.1f}",
                                    tok_s=f"{prog.tokens / max(elapsed, 1e-9):,.0f}", refresh=False)
                if on_step is not None:
                    on_step({"epoch": prog.epoch, "chunk": prog.chunk, "step": prog.step, "loss": loss})
            prog.time_s += time.perf_counter() - t0
            if bar is not None:
                bar.close()
            row = _finish_epoch(model, corpus, cfg, prog, lr, progress)
            log(f"epoch {row['epoch']:>2}  lr {row['lr']:.4g}  train ppl {row['train_ppl']:.2f}  "
                f"valid ppl {row['valid_ppl']:.2f}  |g| {row['grad_norm']:.2f}  "
                f"{row['tokens_per_s']:,.0f} tok/s  {row['time_s']:.0f}s")
            prog.history.append(row)
            prog.epoch += 1
            prog.reset_epoch()
            if out_dir is not None:
                _save(out_dir, "last.npz", model, cfg, chash, prog, None)
                if row["valid_ppl"] <= min(r["valid_ppl"] for r in prog.history):
                    _save(out_dir, "best.npz", model, cfg, chash, prog, None)
                _write_metrics(out_dir, prog.history)
    except FloatingPointError as exc:
        kept = f"; the last good checkpoint {out_dir / 'last.npz'} is untouched" if out_dir is not None else ""
        raise FloatingPointError(
            f"training diverged at epoch {prog.epoch}, step {prog.step + 1} ({exc}). Lower the learning rate "
            f"(--lr) or the clipping norm (--clip){kept}") from exc
    except KeyboardInterrupt:
        result.interrupted = True
        if out_dir is not None:
            _save(out_dir, "last.npz", model, cfg, chash, prog, state)
            _write_metrics(out_dir, prog.history)
            log(f"\ninterrupted: saved {out_dir / 'last.npz'} at epoch {prog.epoch}, chunk {prog.chunk}; "
                f"continue with: minilstm train --out {out_dir} --resume")
        else:
            log("\ninterrupted (no --out folder, nothing saved)")
        return result

    result.valid_ppl = prog.history[-1]["valid_ppl"] if prog.history else None
    if evaluate_test and prog.history:
        test = evaluate(model, corpus.test, cfg.eval_batch_size, cfg.num_steps, progress, "test")
        result.test_ppl = test.perplexity
        log(f"final: valid ppl {result.valid_ppl:.2f}  test ppl {result.test_ppl:.2f}"
            + (f"  (best possible on this corpus: valid {result.best_perplexity['valid']:.2f}, "
               f"test {result.best_perplexity['test']:.2f})" if result.best_perplexity else ""))
        if out_dir is not None:
            final = {"event": "test", "valid_ppl": result.valid_ppl, "test_ppl": result.test_ppl,
                     "train_time_s": sum(r["time_s"] for r in prog.history)}
            _write_metrics(out_dir, prog.history, [final])
            _write_json(out_dir / "summary.json", {**final, "config": cfg.to_dict(), "epochs": prog.history,
                                                  "best_perplexity": result.best_perplexity})
    if out_dir is not None and prog.history:
        try:
            from .plots import plot_runs

            plot_runs([out_dir])
        except Exception as exc:  # a plot must never cost a finished run
            log(f"(could not draw the plot: {exc})")
    return result


# Beyond this mean NLL per word (nats) even the perplexity overflows a float: the run has diverged.
# (A uniform guess over V words costs log V, about 9.2 nats for PTB.)
_MAX_NLL_PER_WORD = math.log(sys.float_info.max)


def _check_diverged(nll_per_word, gnorm):
    """Stop a run whose loss or gradient has blown up, before it wastes hours or overwrites a checkpoint."""
    if not math.isfinite(gnorm):  # clipping cannot rescue an inf/NaN gradient
        raise FloatingPointError(f"the gradient norm is {gnorm}")
    if not nll_per_word < _MAX_NLL_PER_WORD:
        raise FloatingPointError(f"the loss is {nll_per_word:.3g} nats per word")


def _best(corpus):
    if getattr(corpus, "entropy", None):
        return {split: math.exp(h) for split, h in corpus.entropy.items()}
    return None


def _label(cfg: Config) -> str:
    drop = "no dropout" if cfg.dropout == 0 or cfg.dropout_mode == "none" else \
        f"dropout {cfg.dropout:g} ({cfg.dropout_mode})"
    return f"{cfg.name} {cfg.num_layers}x{cfg.hidden_size}, {drop}"


def _epoch_bar(progress, total, prog, cfg):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=prog.chunk, desc=f"epoch {prog.epoch}/{cfg.epochs}", unit="chunk",
                leave=False, dynamic_ncols=True)


def _finish_epoch(model, corpus, cfg, prog, lr, progress):
    valid = evaluate(model, corpus.valid, cfg.eval_batch_size, cfg.num_steps, progress, "valid")
    steps = max(prog.chunk, 1)
    return {
        "event": "epoch", "epoch": prog.epoch, "lr": lr,
        "train_ppl": perplexity(prog.nll, prog.tokens), "valid_ppl": valid.perplexity,
        "grad_norm": prog.gnorm_sum / steps, "grad_norm_max": prog.gnorm_max,
        "clipped_frac": prog.clipped / steps,
        "tokens_per_s": prog.tokens / max(prog.time_s, 1e-9), "time_s": prog.time_s, "steps": prog.step,
    }


def load_model(path, device=None, corpus_hash=None) -> tuple[LSTMLanguageModel, dict]:
    """Rebuild a model from a checkpoint. Returns (model, meta)."""
    ck = load_checkpoint(path)
    cfg = Config(**ck.meta["config"])
    model = build_model(cfg, int(ck.meta["vocab_size"]), device)
    check_compatible(ck.meta, corpus_hash, {k: v.shape for k, v in model.params.items()})
    xp = get_xp(model.device)
    model.params = {k: xp.asarray(v.astype(model.dtype, copy=False)) for k, v in ck.params.items()}
    return model, ck.meta


__all__ = ["train", "evaluate", "evaluate_ensemble", "load_model", "EvalResult", "TrainResult", "build_model"]
