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
never interrupted and ends with bit-identical weights.

Layout: ``train_step`` is one step (the graded part), ``train_epoch`` walks the
chunks of one epoch carrying the state, and ``train`` sets a run up, closes each
epoch (validation, checkpoints) and handles Ctrl-C. What every experiment
shares lives beside it: the epoch loop in loop.py, what a checkpoint holds and
how a run resumes in runstate.py, the progress bars in progress.py, and the run
folder's rules in runfolder.py.

Ctrl-C: a step (forward, backward, clipping, the SGD update and the counters)
is never cut in half. While train() runs, SIGINT only raises a flag when it
lands inside a step; the step finishes, and the run stops and saves at that
boundary (see ``interrupts.StepGuard``). A second Ctrl-C stops at once, without saving
the torn state: the last checkpoint stays as it was.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import runfolder
from .backend import get_xp
from .checkpoint import CheckpointError, check_compatible, load_checkpoint
from .config import Config, check_memory, get_config, validate
from .data import DataError, batchify, iterate_chunks, load_corpus, num_chunks, vocab_hash
from .interrupts import StepGuard
from .loop import perplexity, run_epoch
from .model import LSTMLanguageModel
from .optim import clip_global_norm_, sgd_step_
from .progress import epoch_bar, progress_iter as _progress
from .runfolder import RunFolderError
from .runstate import Progress, check_params as _check_params
from .runstate import resume_point, save_run
from .runstate import saved_config as _saved_config


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


def _eval_chunks(ids, batch_size, num_steps, xp):
    """Chunks (x, y) covering every position of each stream, the last one possibly shorter.

    Training drops the ragged end (every chunk has exactly T steps); evaluation
    must score every word, so it keeps it.
    """
    for name, value in (("batch_size", batch_size), ("num_steps", num_steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"evaluation {name} must be a positive whole number, got {value!r}")
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
    sizes = [getattr(m, "V", None) for m in models]
    if len(set(sizes)) > 1:  # their distributions are over different words: an average would mean nothing
        raise ValueError(f"the models predict over vocabularies of different sizes ({', '.join(f'{v:,}' for v in sizes)}"
                         " words): an ensemble averages one vocabulary's distributions; use models trained on the "
                         "same corpus")
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


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

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


def _check_splits(corpus, cfg: Config, train_ids, evaluate_test: bool) -> None:
    """Every split large enough for the run, checked before the first step (not after an epoch)."""
    need = 2 * cfg.batch_size
    if len(train_ids) < need or (len(train_ids) // cfg.batch_size - 1) // cfg.num_steps < 1:
        raise DataError(f"the training split has {len(train_ids):,} tokens, too few for one chunk of "
                        f"{cfg.batch_size} streams x {cfg.num_steps} steps (needs "
                        f"{cfg.batch_size * (cfg.num_steps + 1):,}); use a smaller --batch or --steps"
                        + (", or a larger --train-tokens" if cfg.train_tokens else ""))
    for split in ("valid", "test") if evaluate_test else ("valid",):
        n = len(getattr(corpus, split))
        if n < 2 * cfg.eval_batch_size:
            raise DataError(f"the {split} split has {n:,} tokens, too few for --eval-batch "
                            f"{cfg.eval_batch_size} (each evaluation stream needs at least 2 tokens); "
                            f"use --eval-batch {max(n // 2, 1)} or less" if n >= 2 else
                            f"the {split} split has {n} token(s): perplexity needs at least 2")


def build_model(cfg: Config, vocab_size: int, device=None) -> LSTMLanguageModel:
    """The model a recipe describes, set up for training speed (reused buffers, sparse embedding gradient)."""
    return LSTMLanguageModel(vocab_size, cfg.hidden_size, cfg.num_layers, dropout=cfg.dropout,
                             dropout_mode=cfg.dropout_mode, init_scale=cfg.init_scale, dtype=cfg.dtype,
                             device=device, seed=cfg.seed, reuse_buffers=True, tie_weights=cfg.tie_weights)


# What a resumed run may change: only how long it trains (the epochs still to come follow the same
# schedule). Any other setting would make it a different run than the one its checkpoint began.
RESUMABLE = ("epochs",)


class ResumeMismatch(ValueError):
    """Settings asked of a resumed run that contradict the run's saved ones.

    ``conflicts``: [(field, asked value, saved value)], so a caller can name its own flags."""

    def __init__(self, out_dir, conflicts):
        self.out_dir, self.conflicts = out_dir, conflicts
        said = "; ".join(f"{f} {a} was asked, the run has {s}" for f, a, s in conflicts)
        super().__init__(f"cannot resume {out_dir} with other settings ({said}): a resumed run keeps its own; "
                         "leave them out to continue it, or start a new run in another folder")


def resumed_config(saved: Config, config, overrides: dict, out_dir, finished: int = 0) -> Config:
    """The config of a resumed run: ``saved``, with only the RESUMABLE fields taken from what was asked
    (``config``: a name, a Config or None; ``overrides``: fields). ``finished``: epochs already done."""
    import dataclasses

    asked = {}
    if isinstance(config, Config):
        asked.update(config.to_dict())
    elif config is not None and config != saved.name:
        asked["name"] = config
    asked.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(asked) - set(saved.to_dict()))
    if unknown:
        raise ValueError(f"unknown config field(s) {', '.join(unknown)}; the fields are {', '.join(saved.to_dict())}")
    conflicts = [(k, v, getattr(saved, k)) for k, v in asked.items() if k not in RESUMABLE and v != getattr(saved, k)]
    if conflicts:
        raise ResumeMismatch(out_dir, conflicts)
    cfg = dataclasses.replace(saved, **{k: asked[k] for k in RESUMABLE if k in asked})
    validate(cfg)
    if cfg.epochs < finished:
        raise ValueError(f"--epochs {cfg.epochs}: the run in {out_dir} has finished {finished} epochs already; "
                         f"resume with --epochs {finished} or more (more trains longer)")
    return cfg


def _save(out_dir, name, model, cfg, corpus_hash, prog, state, extra_meta=None):
    """The language model's checkpoint (runstate.save_run) with its vocabulary size and carried state."""
    # At a chunk-0 boundary the next epoch starts from zeros: no state to carry.
    arrays = ({"state_h": state[0], "state_c": state[1]} if state is not None and prog.chunk > 0 else {})
    return save_run(out_dir / name, model, cfg, corpus_hash, prog, arrays, {"vocab_size": model.V, **(extra_meta or {})})


def _resume_point(ck, model, cfg, path):
    """(Progress, carried state) of a language-model run: its state is (L, N, H)."""
    return resume_point(ck, model, cfg, path, state_shape=(model.L, cfg.batch_size, model.H))


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


@dataclass
class EpochLoop:
    """What the epoch loop reads and advances: the model, its data and where the run stands.

    ``prog`` and ``state`` (the (h, c) carried into the next chunk) are updated in
    place after every step, so they outlive a Ctrl-C: whoever catches it saves
    exactly the step boundary the loop reached.
    """

    model: LSTMLanguageModel
    cfg: Config
    data: object     # (N, M) token ids, batchify's streams, on the model's device
    n_chunks: int    # chunks per epoch
    prog: Progress
    state: tuple | None = None


def train_epoch(run: EpochLoop, guard: StepGuard, progress=False, on_step=None) -> None:
    """The rest of epoch ``run.prog.epoch``: train_step on every chunk from ``run.prog.chunk`` on, in order.

    Each epoch starts from a zero state, as in the paper's code; within it the
    final (h, c) of one chunk is the initial state of the next. The loop itself
    (bookkeeping, Ctrl-C between steps, divergence) is loop.run_epoch, shared
    with the other experiments. Raises FloatingPointError when the loss or the
    gradient norm blows up.
    """
    model, cfg, prog = run.model, run.cfg, run.prog
    lr = cfg.lr_at(prog.epoch)
    if prog.chunk == 0:
        run.state = None

    def step(chunk):
        x, y = chunk
        loss, gnorm, run.state = train_step(model, x, y, run.state, lr, cfg.max_grad_norm)
        return loss, loss * x.shape[0], y.size, gnorm  # the loss is averaged over the N streams

    run_epoch(prog, iterate_chunks(run.data, cfg.num_steps, start=prog.chunk), step, guard, cfg.max_grad_norm,
              epoch_bar(progress, run.n_chunks, prog, cfg.epochs), on_step)


def train(config: Config | str | None = None, out_dir=None, resume=False, data_dir=None, device=None,
          progress=True, corpus=None, on_step=None, evaluate_test=True, log=print, force=False, again=None,
          **overrides) -> TrainResult:
    """Train a language model; the same as ``minilstm train``.

    config: a Config, a config name ("tiny", "small", "medium", "large") or None for "tiny";
    overrides: any Config field, e.g. ``hidden_size=400, dropout=0.5``;
    out_dir: run folder for checkpoints, metrics.jsonl, config.json and plots (None: keep nothing);
    resume: continue from ``out_dir/last.npz``, with the run's saved settings: ``config`` and
      ``overrides`` may only repeat them, or change what RESUMABLE names (a longer run); anything
      else raises ResumeMismatch, naming each setting and its saved value;
    force: start afresh in an ``out_dir`` that holds another run, replacing its files (listed);
      without it (and without resume) such a folder is refused, so nothing saved is overwritten;
    corpus: a ready Corpus (else loaded from ``config.dataset``);
    on_step(info): called after every SGD step (tests use it to interrupt a run);
    again: the command that continues the run, printed after a Ctrl-C (default: train --resume --out).
    Ctrl-C stops at the end of the step in progress and saves ``last.npz``, so ``--resume``
    continues exactly where it stopped.
    """
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir, the run folder to continue")
    again = again or f"minilstm train --resume --out {shlex.quote(str(out_dir))}"
    if resume:
        cfg = None  # the run's own, read from its checkpoint below
    elif isinstance(config, Config):
        cfg = Config(**{**config.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})
        validate(cfg)
    else:
        cfg = get_config(config or "tiny", **overrides)
    if out_dir is not None:
        replaced, stale = runfolder.check_run_folder(out_dir, resume, force)
    ck = None
    if resume and out_dir is not None:
        ck = load_checkpoint(out_dir / "last.npz")
        # The run's own settings, always: what was asked may only extend it (RESUMABLE), never change it.
        cfg = resumed_config(_saved_config(ck.meta, out_dir / "last.npz"), config, overrides, out_dir,
                             finished=len(ck.meta.get("history") or []))
    assert cfg is not None  # resume needs out_dir (checked above), so the checkpoint set it
    if corpus is None:
        corpus = load_corpus(cfg.dataset, data_dir=data_dir)
    chash = vocab_hash(corpus.vocab)
    if ck is not None and ck.meta.get("vocab_hash") not in (None, chash):
        raise CheckpointError(f"{out_dir / 'last.npz'} was trained on a different vocabulary than the "
                              f"{corpus.name} corpus {'in ' + str(data_dir) + ' ' if data_dir else ''}has; resume "
                              "it with the data it was trained on (the same --data-dir as its first run)")
    check_memory(cfg, len(corpus.vocab))
    train_ids = corpus.train[:cfg.train_tokens] if cfg.train_tokens else corpus.train
    _check_splits(corpus, cfg, train_ids, evaluate_test)
    model = build_model(cfg, len(corpus.vocab), device)
    xp = get_xp(model.device)
    prog = Progress()
    state = None

    if ck is not None:
        _check_shapes(ck.meta, model, out_dir / "last.npz")
        _check_params(ck, model, out_dir / "last.npz")
        model.params = {k: xp.asarray(v) for k, v in ck.params.items()}
        prog, state = _resume_point(ck, model, cfg, out_dir / "last.npz")
        if prog.epoch > cfg.epochs:
            log(f"{out_dir} finished all {cfg.epochs} epochs already (to train longer, resume with a larger --epochs)")
        else:
            log(f"resuming {out_dir} at epoch {prog.epoch}, chunk {prog.chunk} (step {prog.step})")
    if out_dir is not None:  # every check passed: only now is anything written
        runfolder.claim_run_folder(out_dir, replaced, stale, log)
        runfolder.write_json(out_dir / "config.json", {**cfg.to_dict(), "label": _label(cfg), "vocab_hash": chash,
                                             "dataset_description": corpus.description})

    data = xp.asarray(batchify(train_ids, cfg.batch_size))
    n_chunks = num_chunks(data, cfg.num_steps)
    if prog.chunk > n_chunks:
        raise CheckpointError(f"{out_dir / 'last.npz'} stopped at chunk {prog.chunk} of an epoch that has "
                              f"{n_chunks} chunks here: the training data differ from the run's; resume with the "
                              "same data and --train-tokens")
    log(f"{cfg.name}: {cfg.num_layers}x{cfg.hidden_size} LSTM, dropout {cfg.dropout} ({cfg.dropout_mode}), "
        f"{model.num_params():,} parameters, {corpus.name} corpus ({len(corpus.vocab):,} words, "
        f"{len(train_ids):,} training tokens, {n_chunks} chunks/epoch)")

    run = EpochLoop(model, cfg, data, n_chunks, prog, state)
    result = TrainResult(cfg, model, prog.history, out_dir,
                         best_perplexity=_best(corpus))
    # The guard is outermost: a Ctrl-C during the final save below is deferred too.
    with StepGuard() as guard:
        try:
            while prog.epoch <= cfg.epochs:
                lr = cfg.lr_at(prog.epoch)
                train_epoch(run, guard, progress, on_step)
                row = _finish_epoch(model, corpus, cfg, prog, lr, progress)
                log(f"epoch {row['epoch']:>2}  lr {row['lr']:.4g}  train ppl {row['train_ppl']:.2f}  "
                    f"valid ppl {row['valid_ppl']:.2f}  |g| {row['grad_norm']:.2f}  "
                    f"{row['tokens_per_s']:,.0f} tok/s  {row['time_s']:.0f}s")
                with guard.step():
                    _close_epoch(run, row, out_dir, chash)
        except FloatingPointError as exc:
            kept = f"; the last good checkpoint {out_dir / 'last.npz'} is untouched" if out_dir is not None else ""
            raise FloatingPointError(
                f"training diverged at epoch {prog.epoch}, step {prog.step + 1} ({exc}). Lower the learning rate "
                f"(--lr) or the clipping norm (--clip){kept}") from exc
        except KeyboardInterrupt:
            result.interrupted = True
            if out_dir is None:
                log("\ninterrupted (no --out folder, nothing saved)")
            elif guard.torn:
                # Stopped in the middle of a step (a second Ctrl-C, or no signal handler could be
                # installed): that state is half-updated, so it is not saved.
                log(f"\ninterrupted in the middle of a step: nothing saved, {out_dir / 'last.npz'} is as it was "
                    f"(if present); continue with: {again}")
            else:
                with guard.hold():
                    _save(out_dir, "last.npz", model, cfg, chash, prog, run.state)
                    runfolder.write_metrics(out_dir, prog.history)
                log(f"\ninterrupted: saved {out_dir / 'last.npz'} at epoch {prog.epoch}, chunk {prog.chunk}; "
                    f"continue with: {again}")
            return result
        except OSError as exc:  # disk full, permissions changed under us...
            raise RunFolderError(f"could not write to the run folder {out_dir}: {exc.strerror or exc}"
                                 f"{' (' + str(exc.filename) + ')' if getattr(exc, 'filename', None) else ''}; "
                                 "the last complete checkpoint is intact: free space or fix the permissions, "
                                 "then continue with --resume") from exc

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
            runfolder.write_metrics(out_dir, prog.history, [final])
            runfolder.write_json(out_dir / "summary.json", {**final, "config": cfg.to_dict(), "epochs": prog.history,
                                                  "best_perplexity": result.best_perplexity})
    if out_dir is not None and prog.history:
        try:
            from .plots import plot_runs

            plot_runs([out_dir])
        except Exception as exc:  # a plot must never cost a finished run
            log(f"(could not draw the plot: {exc})")
        log(runfolder.where_and_next(out_dir, prog.history))
    return result


def _close_epoch(run: EpochLoop, row: dict, out_dir, corpus_hash) -> None:
    """Record a finished epoch and move to the next; with a run folder, save last.npz, best.npz
    (when this epoch's validation perplexity is the best so far) and metrics.jsonl."""
    prog = run.prog
    prog.history.append(row)
    prog.epoch += 1
    prog.reset_epoch()
    if out_dir is not None:
        # At an epoch boundary the next epoch starts from zeros: no state to save.
        _save(out_dir, "last.npz", run.model, run.cfg, corpus_hash, prog, None)
        if row["valid_ppl"] <= min(r["valid_ppl"] for r in prog.history):
            _save(out_dir, "best.npz", run.model, run.cfg, corpus_hash, prog, None)
        runfolder.write_metrics(out_dir, prog.history)


def _best(corpus):
    if getattr(corpus, "entropy", None):
        return {split: math.exp(h) for split, h in corpus.entropy.items()}
    return None


def _label(cfg: Config) -> str:
    drop = "no dropout" if cfg.dropout == 0 or cfg.dropout_mode == "none" else \
        f"dropout {cfg.dropout:g} ({cfg.dropout_mode})"
    return f"{cfg.name} {cfg.num_layers}x{cfg.hidden_size}, {drop}" + (", tied" if cfg.tie_weights else "")


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
    """Rebuild a model from a checkpoint. Returns (model, meta).

    The file is untrusted: its config, vocabulary size and stored shapes are checked against
    each other (and the memory needed against this machine) before the model is allocated,
    and the weights must be finite and of the config's dtype (never cast silently).
    """
    ck = load_checkpoint(path)
    if ck.meta.get("kind") is not None:  # another experiment's model (a language model's checkpoint has no kind)
        raise CheckpointError(f"{path} is a {ck.meta.get('kind')!r} model, not a language model; for a translation "
                              f"model use: minilstm translate --model {path} 'a sentence'")
    cfg = _saved_config(ck.meta, path)
    V = ck.meta.get("vocab_size")
    if isinstance(V, bool) or not isinstance(V, int) or not 1 <= V <= MAX_VOCAB:
        raise CheckpointError(f"{path}: vocab_size {V!r} is not a whole number in [1, {MAX_VOCAB:,}]; "
                              "the file was not written by minilstm. Retrain the model.")
    # Before allocating anything of the config's size, the config must agree with what is stored:
    # a file claiming hidden_size 30000 in a few MB of weights is refused here, not after 30 GiB.
    emb = ck.params.get("embed.W")
    if emb is None or tuple(emb.shape) != (V, cfg.hidden_size):
        raise CheckpointError(f"{path}: its embedding is {None if emb is None else tuple(emb.shape)}, but its "
                              f"config says vocab_size x hidden_size = {(V, cfg.hidden_size)}; the file is "
                              "inconsistent. Use another checkpoint or retrain.")
    layers = sum(1 for k in ck.params if k.startswith("lstm") and k.endswith(".Wh"))
    if layers != cfg.num_layers:
        raise CheckpointError(f"{path}: it stores {layers} LSTM layer(s), but its config says {cfg.num_layers}; "
                              "the file is inconsistent. Use another checkpoint or retrain.")
    check_memory(cfg, V)
    model = build_model(cfg, V, device)
    check_compatible(ck.meta, corpus_hash)
    _check_shapes(ck.meta, model, path)
    _check_params(ck, model, path)
    xp = get_xp(model.device)
    model.params = {k: xp.asarray(v) for k, v in ck.params.items()}
    return model, ck.meta


def _check_shapes(meta, model, path) -> None:
    """The stored weights' shapes against the model the file's own config builds. A mismatch means a
    damaged or edited file (nothing a user can fix by a flag): say which file, and what to use instead."""
    try:
        check_compatible(meta, None, {k: v.shape for k, v in model.params.items()})
    except CheckpointError as exc:
        what = str(exc).split(": the checkpoint")[0].split(". It was")[0]
        raise CheckpointError(f"{path}: {what}, which its own config does not build: the file is damaged or was "
                              "edited. Use another checkpoint (best.npz or last.npz) or retrain") from None


# Far above any word-level vocabulary (PTB has 10,000); a larger claim is a damaged file.
MAX_VOCAB = 10_000_000


__all__ = ["train", "evaluate", "evaluate_ensemble", "load_model", "EvalResult", "TrainResult", "build_model"]
