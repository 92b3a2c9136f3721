"""What every miniature experiment shares: one run trained with Adam and early stopping, resumable bit
for bit; several runs, one after another or side by side; the experiment folder; mean ± sd.

The translation, caption and speech experiments differ in their data, their model and what they
report; everything else is here, so that each experiment module reads as "this data, this model, this
table". A model used here offers the same small protocol:

    model.params                         {name: array}, the weights Adam updates
    model.forward(*batch, train=True)    (loss, cache): loss = summed token NLL / N sequences
    model.backward(cache)                {name: gradient}, same keys as params
    model.kind                           a short string written into checkpoints ("translation", ...)
    model.xp                             numpy or cupy

and a batch is a tuple of host arrays whose first axis is N and whose LAST element is the per-token
weight array (0 for padding), so that ``count_nonzero(batch[-1])`` is the number of predicted tokens.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .. import runfolder
from ..checkpoint import CheckpointError, check_compatible, load_checkpoint
from ..choices import DROPOUT_MODES, DTYPES
from ..data import DataError
from ..interrupts import StepGuard
from ..loop import perplexity, run_epoch
from ..optim import AdamState, adam_init, adam_step_, clip_global_norm_
from ..progress import epoch_bar
from ..runstate import Progress, check_params, resume_point, save_run

# The two models of every table: without D, then with it (the paper's "non-regularized" and "regularized").
METHODS = ("non-regularized", "regularized")

# Environment variables that set the BLAS thread count; a worker of ``--jobs`` gets one thread.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------------------
# Checks of what the user typed
# ---------------------------------------------------------------------------

def whole_number(value, name, lo, hi) -> int:
    """``value`` if it is an int (not a bool) in [lo, hi]; else a one-line ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number from {lo} to {hi:,}, got {value!r}")
    return value


def check_out_dir(out_dir, flag="--out") -> Path:
    """The experiment folder as a Path: not empty, not a file."""
    if str(out_dir).strip() == "":
        raise ValueError(f"{flag} is empty; name a folder, e.g. {flag} runs/experiment")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise runfolder.RunFolderError(f"{flag} {out_dir} is a file, not a folder; choose another {flag}")
    return out_dir


def validate_config(cfg, where: str, counts=(), nonneg=(), positive=()) -> None:
    """Refuse any field of a run's dataclass config of the wrong type, out of range or not finite.

    Every field is checked against its annotated type (int, float or str; a bool is never a number);
    ``counts`` must be whole numbers from 1 to 100,000, ``nonneg`` 0 or more, ``positive`` above 0.
    ``dropout``, ``dropout_mode`` and ``dtype`` are checked when the config has them.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        kinds = {"int": (int,), "float": (int, float), "str": (str,)}[str(f.type)]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ValueError(f"{where}: {f.name} must be of type {f.type}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: {f.name} must be a finite number, got {value}")
    for name in counts:
        if not 1 <= getattr(cfg, name) <= 100_000:
            raise ValueError(f"{where}: {name} must be a whole number from 1 to 100,000, got {getattr(cfg, name)}")
    for name in nonneg:
        if getattr(cfg, name) < 0:
            raise ValueError(f"{where}: {name} must be 0 or positive, got {getattr(cfg, name)}")
    for name in positive:
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{where}: {name} must be positive, got {getattr(cfg, name)}")
    if hasattr(cfg, "dropout") and not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"{where}: dropout must be in [0, 1), got {cfg.dropout}")
    if hasattr(cfg, "dropout_mode") and cfg.dropout_mode not in DROPOUT_MODES:
        raise ValueError(f"{where}: dropout_mode must be one of {', '.join(DROPOUT_MODES)}, got {cfg.dropout_mode!r}")
    if hasattr(cfg, "dtype") and cfg.dtype not in DTYPES:
        raise ValueError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {cfg.dtype!r}")


def config_from_dict(cls, d, where, validate: Callable, what: str):
    """A saved config dict back into its dataclass ``cls``, checked (``what`` names the command)."""
    names = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(d, dict) or set(d) != names:
        raise ValueError(f"{where} is not a {what} config (it should hold exactly {sorted(names)}); "
                         f"the file was not written by `minilstm {what}`")
    cfg = cls(**d)
    validate(cfg, where)
    return cfg


def method_runs(base, counts: dict, dropout: float, what: str, validate: Callable) -> list:
    """[(folder name, method, config)] of an experiment: for each method of ``counts`` (non-regularized
    first, then regularized) that many seeds 0, 1, ...; the regularized runs get ``dropout`` on the
    non-recurrent connections, the others none. ``base`` is the experiment's config; each run's config
    is checked with ``validate`` (the flag named after the method)."""
    runs = []
    for method, count in counts.items():  # METHODS' order
        for seed in range(count):
            cfg = dataclasses.replace(base, seed=seed, dropout=dropout if method == "regularized" else 0.0,
                                      name=f"{what}-{method}")
            validate(cfg, "--" + method)
            runs.append((f"{method}-seed{seed}", method, cfg))
    return runs


# ---------------------------------------------------------------------------
# One run: Adam, gradient clipping, early stopping, resume
# ---------------------------------------------------------------------------

def best_index(history, select="valid_ppl", higher=False) -> int:
    """The index of the best epoch of ``history``: the lowest ``select`` (the first of equals), or the
    highest with ``higher`` (a frame accuracy, say)."""
    pick = max if higher else min
    return pick(range(len(history)), key=lambda k: history[k][select])


def stopped_early(history, patience, select="valid_ppl", higher=False) -> bool:
    """True when the best validation score (``select``; see best_index) is ``patience`` or more epochs old."""
    if not history:
        return False
    return len(history) - 1 - best_index(history, select, higher) >= patience


def resume_run(path: Path, model, cfg, data_hash: str):
    """(Progress, AdamState) from the checkpoint ``path``; every field checked against this run.

    The weights are loaded into ``model``. A checkpoint of another kind of model, other settings or
    other data is refused with what to do, never half-loaded.
    """
    ck = load_checkpoint(path)
    if ck.meta.get("kind") != model.kind:
        raise CheckpointError(f"{path} is not a {model.kind} checkpoint; choose another --out")
    saved = ck.meta.get("config")
    if saved != cfg.to_dict():
        raise CheckpointError(f"{path} was trained with other settings ({saved}) than this run's "
                              f"({cfg.to_dict()}); choose another --out, or run with the same settings")
    check_compatible(ck.meta, data_hash, {k: v.shape for k, v in model.params.items()})
    check_params(ck, model, path)
    xp = model.xp
    model.params = {k: xp.asarray(v) for k, v in ck.params.items()}
    prog, _ = resume_point(ck, model, cfg, path)
    try:
        adam = AdamState.from_arrays(ck.meta.get("adam_t"), ck.arrays, model.params)
    except ValueError as exc:
        raise CheckpointError(f"{path}: the optimizer's state is unusable ({exc}); it cannot be resumed") from exc
    return prog, adam


def fit(run_dir, cfg, model, data_hash: str, meta: dict, epoch_batches: Callable, evaluate: Callable,
        log=print, progress=False, on_step=None, unit="tokens", select="valid_ppl", higher=False):
    """Train ``model`` into ``run_dir`` until ``cfg.epochs`` or early stopping; returns the history, or
    None after a Ctrl-C (``last.npz`` then holds the step boundary reached).

    epoch_batches(rng) -> the epoch's list of batches; ``rng`` comes from (seed, epoch) alone, so a
        resumed run sees the same batches in the same order.
    evaluate(model) -> {"valid_ppl": float, ...}: what is logged and kept per epoch (dropout off).
    ``cfg`` needs epochs, patience, lr, max_grad_norm, seed and to_dict(). After each epoch
    ``last.npz`` is written, and ``best.npz`` when the validation perplexity is the lowest so far.
    ``select``/``higher``: another score of ``evaluate`` to keep best.npz and stop early by (e.g.
    "valid_acc", higher=True: the highest validation frame accuracy); the default is the perplexity.
    """
    run_dir = Path(run_dir)
    resume = (run_dir / "last.npz").is_file()
    replaced, stale = runfolder.check_run_folder(run_dir, resume, force=False)
    xp = model.xp
    adam, prog = adam_init(model.params), Progress()
    if resume:
        prog, adam = resume_run(run_dir / "last.npz", model, cfg, data_hash)
        log(f"{run_dir.name}: resuming at epoch {prog.epoch}, batch {prog.chunk}")
    runfolder.claim_run_folder(run_dir, replaced, stale, log)

    def step(batch):
        arrays = tuple(xp.asarray(a) for a in batch)
        # One step is the language model's training step (training.train_step, a graded part) with Adam:
        # a handout of that part leaves this block out (the classroom's leak check), not the answer.
        ### BEGIN DUPLICATE [training:loop]
        loss, cache = model.forward(*arrays, train=True)
        grads = model.backward(cache)
        gnorm = clip_global_norm_(grads, cfg.max_grad_norm)
        adam_step_(model.params, grads, adam, cfg.lr)
        ### END DUPLICATE
        # The loss is the summed token NLL over the N sequences, divided by N; the last array's nonzero
        # weights count the predicted tokens.
        return loss, loss * batch[0].shape[0], int(np.count_nonzero(batch[-1])), gnorm

    def save(name):
        save_run(run_dir / name, model, cfg, data_hash, prog, adam.to_arrays(),
                 {"kind": model.kind, **meta, "adam_t": adam.t})

    with StepGuard() as guard:
        try:
            while prog.epoch <= cfg.epochs and not stopped_early(prog.history, cfg.patience, select, higher):
                batches = epoch_batches(np.random.default_rng([cfg.seed, prog.epoch]))
                bar = epoch_bar(progress, len(batches), prog, cfg.epochs)
                run_epoch(prog, batches[prog.chunk:], step, guard, cfg.max_grad_norm, bar, on_step)
                scores = evaluate(model)
                row = {"event": "epoch", "epoch": prog.epoch, "lr": cfg.lr,
                       "train_ppl": perplexity(prog.nll, prog.tokens), **scores,
                       "grad_norm": prog.gnorm_sum / max(prog.chunk, 1),
                       "tokens_per_s": prog.tokens / max(prog.time_s, 1e-9), "time_s": prog.time_s,
                       "steps": prog.step}
                extra = "".join(f"  {k.replace('_', ' ')} {v:.3f}" for k, v in scores.items() if k != "valid_ppl")
                log(f"{run_dir.name}: epoch {row['epoch']:>2}  train ppl {row['train_ppl']:.3f}  valid ppl "
                    f"{row['valid_ppl']:.3f}{extra}  {row['tokens_per_s']:,.0f} {unit}/s  {row['time_s']:.1f}s")
                with guard.step():
                    prog.history.append(row)
                    prog.epoch += 1
                    prog.reset_epoch()
                    save("last.npz")
                    scores_so_far = [r[select] for r in prog.history]
                    if (row[select] >= max(scores_so_far)) if higher else (row[select] <= min(scores_so_far)):
                        save("best.npz")
                    runfolder.write_metrics(run_dir, prog.history)
        except KeyboardInterrupt:
            if not guard.torn:
                with guard.hold():
                    save("last.npz")
                    runfolder.write_metrics(run_dir, prog.history)
                log(f"\n{run_dir.name}: interrupted; saved last.npz at epoch {prog.epoch}, batch {prog.chunk}")
            return None
    return prog.history


def load_best(run_dir, model) -> None:
    """Put the weights of ``run_dir/best.npz`` into ``model``."""
    best = load_checkpoint(Path(run_dir) / "best.npz")
    model.params = {k: model.xp.asarray(v) for k, v in best.params.items()}


def history_summary(cfg, history, select="valid_ppl", higher=False) -> dict:
    """The fields every run's summary.json starts with: its config, epochs, the best epoch and its scores."""
    best = best_index(history, select, higher)
    return {"config": cfg.to_dict(), "epochs": len(history), "best_epoch": best + 1,
            "train_time_s": sum(r["time_s"] for r in history),
            "valid_ppl": history[best]["valid_ppl"], "train_ppl": history[best]["train_ppl"]}


def read_summary(run_dir, keys) -> dict:
    """A finished run's summary.json, with a number under each of ``keys``, or a one-line DataError."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
        for key in keys:
            value = summary.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"no number {key!r}")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); delete it to evaluate that run again") from exc
    return summary


# ---------------------------------------------------------------------------
# The experiment: its folder, its runs (one after another or side by side)
# ---------------------------------------------------------------------------

def claim_experiment(out_dir: Path, settings: dict, what: str) -> None:
    """Create ``out_dir`` with its experiment.json, or check that an existing one ran the same settings.

    A folder that holds anything else is refused: an experiment never writes into a user's folder.
    """
    path = out_dir / "experiment.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise runfolder.RunFolderError(f"{path} is unreadable ({exc}); choose another --out") from exc
        if saved != settings:
            diff = sorted(k for k in settings if saved.get(k) != settings[k]) if isinstance(saved, dict) else ["all"]
            raise runfolder.RunFolderError(
                f"{out_dir} holds a {what} experiment with other settings ({', '.join(diff)} differ); "
                "run the same command as before to continue it, or choose another --out")
        return
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise runfolder.RunFolderError(f"{out_dir} is not empty and holds no {what} experiment; "
                                       "choose another --out (nothing was changed)")
    out_dir.mkdir(parents=True, exist_ok=True)
    runfolder.write_json(path, settings)


def run_all(todo, run_one: Callable, jobs: int, log=print):
    """Run every (name, job) of ``todo``: ``run_one(name, job, in_worker)`` -> summary dict.

    With ``jobs`` > 1 the runs go to that many worker processes (spawned, one BLAS thread each: for
    these small matrices two single-threaded runs side by side beat one run on two threads). Each run
    writes only its own folder and draws only from its own seed, so the results are identical to
    running them one after another. ``run_one`` must be a module-level function (it is pickled).
    Returns ({name: summary}, interrupted).
    """
    whole_number(jobs, "--jobs", 1, 64)
    summaries, interrupted = {}, False
    if jobs == 1:
        try:
            for name, job in todo:
                summaries[name] = run_one(name, job, False)
                if summaries[name].get("interrupted"):
                    return summaries, True
        except KeyboardInterrupt:
            interrupted = True
        return summaries, interrupted
    import concurrent.futures as cf
    import multiprocessing as mp

    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: "1" for k in THREAD_VARS})  # the workers start with one thread each
    try:
        with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(run_one, name, job, True): name for name, job in todo}
            try:
                for fut in cf.as_completed(futures):
                    summaries[futures[fut]] = summary = fut.result()
                    interrupted |= bool(summary.get("interrupted"))
            except KeyboardInterrupt:
                interrupted = True
                for fut in futures:
                    fut.cancel()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return summaries, interrupted


def worker_log(text: str) -> None:
    """A worker's log line, flushed at once so that runs side by side interleave by line."""
    print(text, flush=True)


def mean_sd(values):
    """(mean, sample standard deviation) of ``values``; sd 0 for a single value."""
    a = np.asarray(values, dtype=float)
    sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return float(a.mean()), sd
