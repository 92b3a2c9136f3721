"""Benchmark: training and evaluation speed, against the matrix-multiply ceiling and references.

    python -m minilstm.bench [--configs small medium] [--rounds 5] [--repeats 5] [--torch] [--out bench.json]
    minilstm bench ...
    minilstm bench --configs small --against git:v0.1.0     before and after a change, in one run
    minilstm bench --model translation [--torch]             the translation miniature's training step
    minilstm bench --model speech [--torch]                  the speech miniature's training step (frames/s)
    minilstm bench --model caption [--torch]                 the caption miniature's training step (words/s)

For every config it measures, in the same process and on the same random batch:

- ``train``: one full training step of minilstm (forward, backward, clipping, SGD), float32;
- ``ceiling``: the exact sequence of matrix products that step needs (input projections,
  T recurrent products per layer, the decoder, and their backward products) and nothing
  else: no NumPy implementation can beat it, so ``train / ceiling`` is the fraction of the
  achievable speed that we reach;
- ``eval``: a forward pass with dropout off (evaluation speed);
- ``classroom``: a straightforward per-step NumPy LSTM in float64 (separate products per
  step, as in most course code), the baseline a student would write first;
- ``torch`` (with ``--torch``, only if PyTorch is importable): ``nn.LSTM`` + linear decoder
  with SGD and clipping on the same config and thread count;
- ``against`` (with ``--against SRC``): the same training step by another version of minilstm
  (a folder holding its ``minilstm/`` package, or ``git:REV``, a revision of the checkout this
  one runs from), loaded beside this one in the same process, so "did my change make
  training slower?" is answered by a ratio measured in one run, not two runs hours apart.

``--model`` chooses what is timed: ``lm`` (the default), the language model's recipes above, and
``translation``, the training step of the translation miniature (minilstm/experiments/translate.py):
forward, backward, clipping at 5 and Adam, on the recipe of its regularized run (2x256, batch 32,
dropout 0.3 ``zaremba``, Adam lr 2e-3), the built-in corpus's vocabularies and one real batch of
its training pairs (from ``batch_pairs``, the batch of median length). Its speed is in target
words per second: the words the loss counts (the sum of the batch's weights), not the source or
the padding the step also reads. With ``--torch`` PyTorch does the same step on the same batch
(nn.Embedding, nn.LSTM with dropout on the same connections, nn.Linear, the same token-weighted
cross-entropy, torch.optim.Adam, clip_grad_norm_), ``speed_vs_torch`` > 1 meaning minilstm is
faster; with ``--against`` the other minilstm's translation step. ``--model lm translation``
times both.

How it times, and why: the machines are shared and noisy, so absolute numbers move and only
ratios measured side by side mean much. The measured functions take turns: ``--rounds``
rounds, and in each round every function gets one warm-up call and then ``--repeats`` timed
calls, of which the round keeps the median. Before each turn the bench pauses briefly, so the
worker threads of the previous library (OpenBLAS's spin for about 0.1 s after a product;
PyTorch's OpenMP pool) are idle and do not steal a core from the next one. A figure is the
median over rounds; a ratio (share of the ceiling, speed-up over PyTorch) is the median of the
per-round ratios, with their range, so a burst of load on the machine hits both sides of a
ratio alike. Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import platform
import resource
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

from .choices import BENCH_MODELS, DEVICES
from .cliargs import int_arg, path_arg
from .config import CONFIGS, get_config
from .optim import clip_global_norm_, sgd_step_
from .training import build_model

VOCAB = 10_000  # the Penn Treebank vocabulary


SETTLE_S = 0.2  # pause before each turn: longer than OpenBLAS's ~0.1 s spin after its last product


def _median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _interleaved(fns: dict, rounds: int, repeats: int, settle=SETTLE_S) -> dict:
    """Time the functions in turns, ``rounds`` times: {name: [median seconds of each round]}."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(settle)
            times[name].append(_median_time(fn, repeats, warmup=1))
    return times


def _round_ratios(times, num, den):
    """times[num][r] / times[den][r] for every round r: a ratio taken within each round."""
    return np.asarray(times[num]) / np.asarray(times[den])


def _paired(times, num, den):
    """Median and range over rounds of the per-round ratios."""
    r = _round_ratios(times, num, den)
    return float(np.median(r)), [float(r.min()), float(r.max())]


def _quartiles(times, num, den):
    """The 25th and 75th percentiles of the per-round ratios (the range alone is at the mercy of one burst)."""
    return [float(q) for q in np.percentile(_round_ratios(times, num, den), [25, 75])]


def _reference(times, ref, work, unit, key=None, quartiles=True):
    """The figures of a reference step timed in the same turns as ``train`` (this minilstm's step).

    ``{ref}_{unit}_per_s``: its speed, ``work`` (tokens, words) per median step; ``key`` (default
    ``speed_vs_{ref}``): how many times faster this minilstm is, the median of the per-round ratios,
    with ``{key}_range`` and (``quartiles``) ``{key}_quartiles`` of them.
    """
    key = key or f"speed_vs_{ref}"
    figures = {f"{ref}_{unit}_per_s": work / float(np.median(times[ref]))}
    figures[key], figures[f"{key}_range"] = _paired(times, ref, "train")
    if quartiles:
        figures[f"{key}_quartiles"] = _quartiles(times, ref, "train")
    return figures


def _race(fns, row, rounds, repeats, against=None, torch=None):
    """Time minilstm's functions (``fns``: "train", its step, and any other measures) in turns with the
    references: ``against``, another minilstm's step (or None); ``torch``, a function of no arguments that
    builds PyTorch's step, returning (step, version), or None when PyTorch is not installed
    (``row["torch"]`` then says so); None when PyTorch was not asked for.

    Returns (times, torch_version), times as ``_interleaved``'s and torch_version None without PyTorch.
    """
    if against is not None:
        fns["against"] = against
    torch_version = None
    if torch is not None:
        res = torch()
        if res is None:
            row["torch"] = "not installed"
        else:
            fns["torch"], torch_version = res
    return _interleaved(fns, rounds, repeats), torch_version


def _batch(cfg, rng):
    x = rng.integers(0, VOCAB, (cfg.batch_size, cfg.num_steps))
    y = rng.integers(0, VOCAB, (cfg.batch_size, cfg.num_steps))
    return x, y


def _sync(xp):
    """Wait for the GPU to finish (its work is asynchronous), so the clock measures it; no-op on NumPy."""
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()


def train_fns(cfg, batch, device="cpu", training=None, optim=None):
    """A training step and an evaluation pass on one batch (x, y), as functions: (step, evaluate).

    minilstm's own by default; ``training`` and ``optim`` modules of another minilstm time that one
    (``--against``) with the very same code here, so only the package differs.
    """
    if training is None:
        model = build_model(cfg, VOCAB, device)  # exactly the model `minilstm train` builds
        clip, sgd = clip_global_norm_, sgd_step_
    else:
        model = training.build_model(cfg, VOCAB) if device == "cpu" else training.build_model(cfg, VOCAB, device)
        clip, sgd = optim.clip_global_norm_, optim.sgd_step_
    xp = model.xp
    x, y = (xp.asarray(a) for a in batch)
    state = [None]

    def step():
        loss, cache, state[0] = model.forward(x, y, state[0], train=True)
        grads = model.backward(cache)
        clip(grads, cfg.max_grad_norm)
        sgd(model.params, grads, 0.01)
        _sync(xp)

    def evaluate():
        model.forward(x, y, None, train=False)
        _sync(xp)

    return step, evaluate


def ceiling_fn(cfg, rng):
    """Only the GEMMs of one training step, float32, with preallocated operands: (gemms, flops)."""
    N, T, H, L, V = cfg.batch_size, cfg.num_steps, cfg.hidden_size, cfg.num_layers, VOCAB
    f = np.float32
    X = rng.standard_normal((N * T, H)).astype(f)
    Wx = rng.standard_normal((H, 4 * H)).astype(f)
    Wh = rng.standard_normal((H, 4 * H)).astype(f)
    h = rng.standard_normal((N, H)).astype(f)
    G = rng.standard_normal((N * T, 4 * H)).astype(f)
    g = rng.standard_normal((N, 4 * H)).astype(f)
    Wo = rng.standard_normal((H, V)).astype(f)
    S = rng.standard_normal((N * T, V)).astype(f)

    def gemms():
        for _ in range(L):
            X @ Wx                      # input projections, all T steps
            for _ in range(T):
                h @ Wh                  # recurrent product, per step
        X @ Wo                          # decoder
        S @ Wo.T                        # decoder backward: dx
        X.T @ S                         # decoder backward: dW
        for _ in range(L):
            for _ in range(T):
                g @ Wh.T                # dh_{t-1}, per step
            G @ Wx.T                    # dx
            X.T @ G                     # dWx
            X.T @ G                     # dWh

    flops = 2 * (L * (N * T * H * 4 * H + T * N * H * 4 * H) + 3 * N * T * H * V
                 + L * (T * N * 4 * H * H + 3 * N * T * 4 * H * H))
    return gemms, flops


# --- the classroom baseline: per-step products, float64, CS231n style -------------------

def _sigm(x):
    return 1.0 / (1.0 + np.exp(-x))


def classroom_step(params, x, y, L, H):
    """One training step written the way most course code does it (float64, per-step GEMMs)."""
    N, T = x.shape
    emb = params["embed"][x]  # (N, T, H)
    inp = [emb[:, t] for t in range(T)]
    caches = []
    for layer in range(L):
        Wx, Wh, b = params[f"Wx{layer}"], params[f"Wh{layer}"], params[f"b{layer}"]
        h, c = np.zeros((N, H)), np.zeros((N, H))
        outs, cs = [], []
        for t in range(T):
            a = inp[t] @ Wx + h @ Wh + b
            i, f, o, g = _sigm(a[:, :H]), _sigm(a[:, H:2 * H]), _sigm(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
            c_new = f * c + i * g
            h_new = o * np.tanh(c_new)
            cs.append((inp[t], h, c, i, f, o, g, c_new))
            h, c = h_new, c_new
            outs.append(h)
        caches.append(cs)
        inp = outs
    dWo, dbo = np.zeros_like(params["Wo"]), np.zeros_like(params["bo"])
    dinp = []
    for t in range(T):
        s = inp[t] @ params["Wo"] + params["bo"]
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(N), y[:, t]] -= 1
        p /= N
        dWo += inp[t].T @ p
        dbo += p.sum(axis=0)
        dinp.append(p @ params["Wo"].T)
    grads = {"Wo": dWo, "bo": dbo}
    for layer in reversed(range(L)):
        Wx, Wh = params[f"Wx{layer}"], params[f"Wh{layer}"]
        dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H)
        dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
        new_dinp = [None] * T
        for t in reversed(range(T)):
            xin, hp, cp, i, f, o, g, cn = caches[layer][t]
            dh = dinp[t] + dh_next
            tc = np.tanh(cn)
            dc = dc_next + dh * o * (1 - tc ** 2)
            da = np.concatenate([dc * g * i * (1 - i), dc * cp * f * (1 - f), dh * tc * o * (1 - o),
                                 dc * i * (1 - g ** 2)], axis=1)
            dWx += xin.T @ da
            dWh += hp.T @ da
            db += da.sum(axis=0)
            new_dinp[t] = da @ Wx.T
            dh_next = da @ Wh.T
            dc_next = dc * f
        grads.update({f"Wx{layer}": dWx, f"Wh{layer}": dWh, f"b{layer}": db})
        dinp = new_dinp
    for name, gr in grads.items():
        params[name] -= 0.01 * gr


def classroom_fn(cfg, rng):
    """The classroom step on its own random weights and batch, as a function of no arguments."""
    H, L = cfg.hidden_size, cfg.num_layers
    params = {"embed": rng.uniform(-0.1, 0.1, (VOCAB, H)), "Wo": rng.uniform(-0.1, 0.1, (H, VOCAB)),
              "bo": np.zeros(VOCAB)}
    for layer in range(L):
        params[f"Wx{layer}"] = rng.uniform(-0.1, 0.1, (H, 4 * H))
        params[f"Wh{layer}"] = rng.uniform(-0.1, 0.1, (H, 4 * H))
        params[f"b{layer}"] = np.zeros(4 * H)
    x, y = _batch(cfg, rng)
    return lambda: classroom_step(params, x, y, L, H)


def torch_fn(cfg, rng, threads, device="cpu"):
    """PyTorch's training step on the same config, (step, version); None if PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    dev = "cuda" if device == "gpu" else "cpu"  # on the GPU nn.LSTM runs cuDNN's fused LSTM
    H, L, N = cfg.hidden_size, cfg.num_layers, cfg.batch_size
    emb = torch.nn.Embedding(VOCAB, H).to(dev)
    lstm = torch.nn.LSTM(H, H, L, batch_first=True, dropout=cfg.dropout).to(dev)
    dec = torch.nn.Linear(H, VOCAB).to(dev)
    drop = torch.nn.Dropout(cfg.dropout)
    params = list(emb.parameters()) + list(lstm.parameters()) + list(dec.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    x, y = (torch.as_tensor(a, device=dev) for a in _batch(cfg, rng))
    state = [None]

    def step():
        opt.zero_grad()
        out, st = lstm(drop(emb(x)), state[0])
        state[0] = tuple(s.detach() for s in st)
        logits = dec(drop(out))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1), reduction="sum") / N
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()

    return step, torch.__version__


# --- the translation miniature's training step ----------------------------------------------

def translation_recipe(translate=None, **overrides):
    """The recipe of the translation experiment's regularized run (its own ``run_configs``), with
    ``overrides`` (a test's small sizes). ``translate``: another minilstm's experiments.translate."""
    if translate is None:
        from .experiments import translate
    return next(cfg for _, method, cfg in translate.run_configs(1, **overrides) if method == "regularized")


def translation_batch(cfg):
    """(corpus, batch): the built-in corpus and the batch of median length among its training pairs'
    (``batch_pairs`` without an rng sorts them by length), (inputs, targets, weights) each (N, T)."""
    from .data.parallel import batch_pairs, make_builtin_parallel

    corpus = make_builtin_parallel()
    batches = batch_pairs(corpus.train, cfg.batch_size, corpus.sizes[0], corpus.eos_id, dtype=cfg.dtype)
    return corpus, batches[len(batches) // 2]


def translation_train_fn(cfg, corpus, batch, device="cpu", translate=None, optim=None):
    """The translation model's training step on one batch (inputs, targets, weights), as a function of no
    arguments: what ``step()`` in experiments/translate.py's train_run does, forward, backward, clipping
    the global norm at ``cfg.max_grad_norm`` and one Adam step of ``cfg.lr``.

    minilstm's own by default; the ``translate`` (experiments.translate) and ``optim`` modules of another
    minilstm time that one (``--against``) with the very same code here.
    """
    if translate is None:
        from .experiments import translate
    return adam_train_fn(translate.build_model(cfg, corpus, device), batch, cfg, optim)


def adam_train_fn(model, batch, cfg, optim=None):
    """What runner.fit's step does, on one batch (host arrays), as a function of no arguments: forward,
    backward, clip the global norm at ``cfg.max_grad_norm``, one Adam step of ``cfg.lr``. ``optim``:
    another minilstm's optim module (``--against``); this one's by default."""
    if optim is None:
        from . import optim
    adam = optim.adam_init(model.params)
    xp = model.xp
    arrays = tuple(xp.asarray(a) for a in batch)

    def step():
        loss, cache = model.forward(*arrays, train=True)
        grads = model.backward(cache)
        optim.clip_global_norm_(grads, cfg.max_grad_norm)
        optim.adam_step_(model.params, grads, adam, cfg.lr)
        _sync(xp)

    step.model = model  # what it trains, for a test to look at
    return step


def torch_translation_fn(cfg, vocab_sizes, batch, threads, device="cpu"):
    """PyTorch's translation training step on the same recipe and batch, (step, version); None without PyTorch.

    vocab_sizes: (Vin, Vt), the embedding's rows and the softmax's words. nn.Embedding -> nn.Dropout ->
    nn.LSTM (L layers, batch_first, its own ``dropout=`` between layers) -> nn.Dropout -> nn.Linear (H -> Vt):
    D on the same non-recurrent connections as minilstm's ``zaremba``; every pair starts from a zero state.
    The loss is minilstm's: the cross-entropy of every token times its weight, summed and divided by N.
    Then clip_grad_norm_ and torch.optim.Adam (its defaults, as minilstm's adam_step_).
    """
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    dev = "cuda" if device == "gpu" else "cpu"
    dtype = getattr(torch, cfg.dtype)
    Vin, Vt = vocab_sizes
    H, L, p = cfg.hidden_size, cfg.num_layers, cfg.dropout
    emb = torch.nn.Embedding(Vin, H).to(dev, dtype)
    # nn.LSTM's dropout= acts between its layers only (and warns when there is just one).
    lstm = torch.nn.LSTM(H, H, L, batch_first=True, dropout=p if L > 1 else 0.0).to(dev, dtype)
    dec = torch.nn.Linear(H, Vt).to(dev, dtype)
    drop = torch.nn.Dropout(p)
    params = list(emb.parameters()) + list(lstm.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    x, y, w = (torch.as_tensor(a, device=dev) for a in batch)
    w = w.to(dtype).reshape(-1)
    N = x.shape[0]

    def step():
        opt.zero_grad()
        out, _ = lstm(drop(emb(x)))
        logits = dec(drop(out))
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, Vt), y.reshape(-1), reduction="none")
        loss = (nll * w).sum() / N
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()

    return step, torch.__version__


def _recipe(cfg) -> dict:
    """The recipe fields a miniature's row records (the same for translation, speech and captions)."""
    return {k: getattr(cfg, k) for k in ("hidden_size", "num_layers", "batch_size", "dropout", "dropout_mode", "lr",
                                         "max_grad_norm", "dtype")}


def translation_row(rounds, repeats, with_torch=False, device="cpu", against=None, threads=1, **overrides):
    """The translation row: minilstm's step (and the references asked for) timed in turns on one batch."""
    cfg = translation_recipe(**overrides)
    corpus, batch = translation_batch(cfg)
    words = float(batch[2].sum())
    Vs, Vt = corpus.sizes
    row = {"recipe": _recipe(cfg),
           "vocab": {"source": Vs, "target": Vt, "input": corpus.input_vocab_size},
           "batch_shape": list(batch[0].shape), "target_words_per_step": words}
    times, torch_version = _race(
        {"train": translation_train_fn(cfg, corpus, batch, device)}, row, rounds, repeats,
        against=None if against is None else against_translation_fn(against, overrides, corpus, batch, device),
        torch=(lambda: torch_translation_fn(cfg, (corpus.input_vocab_size, Vt), batch, threads, device))
        if with_torch else None)
    row["train_words_per_s"] = words / float(np.median(times["train"]))
    if against is not None:
        row.update(_reference(times, "against", words, "words"))
    if torch_version is not None:
        row["torch_version"] = torch_version
        row.update(_reference(times, "torch", words, "words"))
    return row


def _translation_summary(row, threads):
    r = row["recipe"]
    N, T = row["batch_shape"]
    line = (f"translation ({r['num_layers']}x{r['hidden_size']}, batch {N} x {T} steps, "
            f"{row['target_words_per_step']:.0f} target words, dropout {r['dropout']:g} {r['dropout_mode']}, Adam; "
            f"{threads} BLAS thread{'s' if threads != 1 else ''}): train {row['train_words_per_s']:,.0f} words/s")
    if "speed_vs_against" in row:
        q1, q3 = row["speed_vs_against_quartiles"]
        line += (f"; {row['speed_vs_against']:.3f}x (rounds' quartiles {q1:.3f}-{q3:.3f}) the --against version "
                 f"({row['against_words_per_s']:,.0f} words/s)")
    return line + _torch_clause(row, "words", with_range=True)


def _torch_clause(row, unit, with_range=False) -> str:
    """The end of a miniature's summary line: its speed against PyTorch's (rounds' quartiles, and the range
    with ``with_range``), or that PyTorch is not installed, or nothing when it was not asked for."""
    if "speed_vs_torch" in row:
        q1, q3 = row["speed_vs_torch_quartiles"]
        spread = f"rounds' quartiles {q1:.2f}-{q3:.2f}"
        if with_range:
            lo, hi = row["speed_vs_torch_range"]
            spread += f", range {lo:.2f}-{hi:.2f}"
        return (f"; {row['speed_vs_torch']:.2f}x ({spread}) PyTorch {row['torch_version']} "
                f"({row[f'torch_{unit}_per_s']:,.0f} {unit}/s)")
    return "; PyTorch not installed" if "torch" in row else ""


# --- the speech miniature's training step (frames in, a softmax per frame) --------------------

def speech_row(rounds, repeats, with_torch=False, device="cpu", threads=1, **overrides):
    """The speech row: the training step of ``minilstm speech``'s regularized run (its recipe, one batch of
    the built-in frames: (N, T, 13) frames, 20 phones), minilstm and (``with_torch``) PyTorch, in turns.
    Speed in frames/s (the weights' sum)."""
    from .data.frames import batch_frames, make_builtin_frames
    from .experiments import speech

    cfg = next(c for _, m, c in speech.run_configs(1, **overrides) if m == "regularized")
    corpus = make_builtin_frames(n_train=cfg.batch_size, n_valid=1, n_test=1)
    batch = batch_frames(corpus.train, cfg.batch_size, dtype=cfg.dtype)[0]
    model = speech.build_model(cfg, corpus, device)
    step = adam_train_fn(model, batch, cfg)
    frames = float(batch[2].sum())
    row = {"recipe": _recipe(cfg),
           "batch_shape": list(batch[0].shape), "classes": corpus.num_classes, "frames_per_step": frames}
    times, torch_version = _race({"train": step}, row, rounds, repeats, torch=(
        lambda: torch_speech_fn(cfg, corpus.num_classes, batch, threads, device)) if with_torch else None)
    row["train_frames_per_s"] = frames / float(np.median(times["train"]))
    if torch_version is not None:
        row["torch_version"] = torch_version
        row.update(_reference(times, "torch", frames, "frames"))
    return row


def torch_speech_fn(cfg, num_classes, batch, threads, device="cpu"):
    """PyTorch's frame-classifier step on the same recipe and batch, (step, version); None without PyTorch.
    nn.Dropout on the frames -> nn.LSTM (its dropout= between layers) -> nn.Dropout -> nn.Linear (H -> C):
    D where minilstm's ``zaremba`` puts it; the frame-weighted cross-entropy summed and divided by N; then
    clip_grad_norm_ and torch.optim.Adam."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    dev = "cuda" if device == "gpu" else "cpu"
    dtype = getattr(torch, cfg.dtype)
    x, y, w = (torch.as_tensor(a, device=dev) for a in batch)
    H, L, p, C = cfg.hidden_size, cfg.num_layers, cfg.dropout, num_classes
    lstm = torch.nn.LSTM(x.shape[2], H, L, batch_first=True, dropout=p if L > 1 else 0.0).to(dev, dtype)
    dec = torch.nn.Linear(H, C).to(dev, dtype)
    drop = torch.nn.Dropout(p)
    params = list(lstm.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    w = w.to(dtype).reshape(-1)

    def step():
        opt.zero_grad()
        out, _ = lstm(drop(x))
        nll = torch.nn.functional.cross_entropy(dec(drop(out)).reshape(-1, C), y.reshape(-1), reduction="none")
        ((nll * w).sum() / x.shape[0]).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()

    return step, torch.__version__


def _speech_summary(row, threads):
    r, (N, T, D) = row["recipe"], row["batch_shape"]
    line = (f"speech ({r['num_layers']}x{r['hidden_size']}, batch {N} x {T} frames x {D} features, {row['classes']} "
            f"classes, dropout {r['dropout']:g} {r['dropout_mode']}, Adam; {threads} BLAS thread"
            f"{'s' if threads != 1 else ''}): train {row['train_frames_per_s']:,.0f} frames/s")
    return line + _torch_clause(row, "frames")


# --- the caption miniature's training step (an image, then its words) -------------------------

def caption_row(rounds, repeats, with_torch=False, device="cpu", threads=1, **overrides):
    """The caption row: the training step of ``minilstm caption``'s regularized run (its recipe: 1x256, batch 32,
    dropout 0.5 zaremba, clip 5, Adam) on the first batch of the digit captions ((N, 192) pixels, (N, T - 1)
    words), minilstm and (``with_torch``) PyTorch, in turns. Speed in caption words/s (the weights' sum,
    <eos> included)."""
    from .data.digits import batch_captions
    from .experiments import caption

    cfg = next(c for _, m, c in caption.run_configs(1, 1, **overrides) if m == "regularized")
    corpus = caption.load_data()
    batch = batch_captions(corpus.train, cfg.batch_size, dtype=cfg.dtype)[0]
    model = caption.build_model(cfg, corpus, device)
    step = adam_train_fn(model, batch, cfg)
    words = float(batch[-1].sum())
    row = {"recipe": _recipe(cfg),
           "features": corpus.num_features, "vocab": corpus.vocab_size, "batch_shape": list(batch[2].shape),
           "words_per_step": words}
    times, torch_version = _race({"train": step}, row, rounds, repeats, torch=(
        lambda: torch_caption_fn(cfg, corpus.vocab_size, batch, threads, device)) if with_torch else None)
    row["train_words_per_s"] = words / float(np.median(times["train"]))
    if torch_version is not None:
        row["torch_version"] = torch_version
        row.update(_reference(times, "torch", words, "words"))
    return row


def torch_caption_fn(cfg, vocab_size, batch, threads, device="cpu"):
    """PyTorch's captioning step on the same recipe and batch, (step, version); None without PyTorch.
    nn.Linear (F -> H) on the image, prepended to nn.Embedding's words -> nn.Dropout -> nn.LSTM -> nn.Dropout ->
    nn.Linear (H -> V): the image as the first input and D where minilstm's ``zaremba`` puts it; the
    token-weighted cross-entropy summed and divided by N; then clip_grad_norm_ and torch.optim.Adam."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    dev = "cuda" if device == "gpu" else "cpu"
    dtype = getattr(torch, cfg.dtype)
    f, x, y, w = (torch.as_tensor(a, device=dev) for a in batch)
    H, L, p, V = cfg.hidden_size, cfg.num_layers, cfg.dropout, vocab_size
    img = torch.nn.Linear(f.shape[1], H).to(dev, dtype)
    emb = torch.nn.Embedding(V, H).to(dev, dtype)
    lstm = torch.nn.LSTM(H, H, L, batch_first=True, dropout=p if L > 1 else 0.0).to(dev, dtype)
    dec = torch.nn.Linear(H, V).to(dev, dtype)
    drop = torch.nn.Dropout(p)
    params = [*img.parameters(), *emb.parameters(), *lstm.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    w = w.to(dtype).reshape(-1)

    def step():
        opt.zero_grad()
        inputs = torch.cat([img(f)[:, None, :], emb(x)], dim=1)
        out, _ = lstm(drop(inputs))
        nll = torch.nn.functional.cross_entropy(dec(drop(out)).reshape(-1, V), y.reshape(-1), reduction="none")
        ((nll * w).sum() / f.shape[0]).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()

    return step, torch.__version__


def _caption_summary(row, threads):
    r, (N, T) = row["recipe"], row["batch_shape"]
    line = (f"caption ({r['num_layers']}x{r['hidden_size']}, batch {N} images of {row['features']} pixels x {T} steps, "
            f"V {row['vocab']}, dropout {r['dropout']:g} {r['dropout_mode']}, Adam; {threads} BLAS thread"
            f"{'s' if threads != 1 else ''}): train {row['train_words_per_s']:,.0f} words/s")
    return line + _torch_clause(row, "words")


# --- another version of minilstm, for before/after comparisons ----------------------------

AGAINST_MODULE = "minilstm_against"


class AgainstError(ValueError):
    """--against names something that is not a minilstm to compare with."""


def load_against(spec: str, workdir):
    """Import another minilstm as the package ``minilstm_against``: (training, config, optim, label).

    spec: a folder holding a ``minilstm/`` package (a checkout, an unpacked sdist), or ``git:REV``
    for a revision of the git checkout this minilstm runs from (extracted into ``workdir``).
    Its modules import each other relatively, so the copy runs its own code throughout.
    """
    if spec.startswith("git:"):
        root = _extract_revision(spec[4:], Path(workdir))
        label = spec
    else:
        root = Path(spec).expanduser()
        label = str(root)
    pkg = root / "minilstm"
    if not (pkg / "__init__.py").is_file():
        raise AgainstError(f"--against {spec}: {pkg} is not a minilstm package (no __init__.py); give the folder "
                           "that holds minilstm/, or git:REV for a revision of this checkout")
    if AGAINST_MODULE in sys.modules:
        raise AgainstError("another minilstm is already loaded in this process: compare against one per run")
    _probe_import(spec, root)
    loaded = importlib.util.spec_from_file_location(AGAINST_MODULE, pkg / "__init__.py",
                                                    submodule_search_locations=[str(pkg)])
    if loaded is None or loaded.loader is None:
        raise AgainstError(f"--against {spec}: {pkg / '__init__.py'} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(loaded)
    sys.modules[AGAINST_MODULE] = module
    try:
        loaded.loader.exec_module(module)
        parts = [importlib.import_module(f"{AGAINST_MODULE}.{m}") for m in ("training", "config", "optim")]
    except Exception as exc:
        unload_against()
        raise AgainstError(f"--against {spec}: could not import that minilstm ({type(exc).__name__}: {exc})") from exc
    version = getattr(module, "__version__", "?")
    return (*parts, f"{label} (minilstm {version})")


# An import of the other minilstm that takes longer than this is stuck (a lock, a prompt, a network wait).
AGAINST_IMPORT_TIMEOUT_S = 120


def _probe_import(spec, root) -> None:
    """Import the other minilstm once in a child process, with a time limit, before importing it here:
    an import that blocks would otherwise hang this process for good (nothing can interrupt it)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import minilstm.training, minilstm.config, minilstm.optim; "
            "assert minilstm.__file__.startswith(sys.argv[1]), minilstm.__file__")
    try:
        probe = subprocess.run([sys.executable, "-c", code, str(Path(root).resolve())], capture_output=True,
                               timeout=AGAINST_IMPORT_TIMEOUT_S, check=False, cwd=str(root), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AgainstError(f"--against {spec}: importing that minilstm did not finish within "
                           f"{AGAINST_IMPORT_TIMEOUT_S} s (it blocks at import); compare against another "
                           "revision") from None
    if probe.returncode != 0:
        why = probe.stderr.decode(errors="replace").strip().splitlines()
        raise AgainstError(f"--against {spec}: could not import that minilstm ({why[-1] if why else 'no reason given'})")


def unload_against():
    """Forget the other minilstm (its modules), so a later comparison in this process can load another."""
    for name in [m for m in sys.modules if m == AGAINST_MODULE or m.startswith(AGAINST_MODULE + ".")]:
        del sys.modules[name]


def _extract_revision(rev: str, workdir):
    """``git archive`` the minilstm/ folder of revision ``rev`` of this checkout into ``workdir``."""
    checkout = Path(__file__).resolve().parents[1]
    if not rev or rev.startswith("-"):
        raise AgainstError(f"--against git:{rev}: name a revision, e.g. git:HEAD~1 or git:v0.1.0")
    try:
        tar = subprocess.run(["git", "-C", str(checkout), "archive", "--format=tar", rev, "minilstm"],
                             capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgainstError(f"--against git:{rev} needs git and a git checkout of minilstm ({exc})") from exc
    if tar.returncode != 0:
        why = tar.stderr.decode(errors="replace").strip().splitlines()
        raise AgainstError(f"--against git:{rev}: git could not read that revision from {checkout} "
                           f"({why[-1] if why else 'no reason given'}); is this a git checkout, and the revision in it?")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as tf:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links and paths out of workdir
            tf.extractall(workdir, filter="data")
        else:
            tf.extractall(workdir)
    return Path(workdir)


def against_fn(parts, name, batch, device="cpu"):
    """The other minilstm's training step on the same recipe (its own definition of it) and batch."""
    training, config, optim, label = parts
    try:
        cfg = config.get_config(name)
        return train_fns(cfg, batch, device, training, optim)[0]
    except Exception as exc:  # another version: any failure is a one-line error, not a traceback
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise AgainstError(f"--against {label}: that minilstm cannot build the '{name}' recipe ({why}); "
                           f"compare with a recipe both versions have, e.g. --configs small") from None


def against_translation_fn(parts, overrides, corpus, batch, device="cpu"):
    """The other minilstm's translation step, on its own recipe (with the same overrides) and this batch."""
    try:
        translate = importlib.import_module(f"{AGAINST_MODULE}.experiments.translate")
        cfg = translation_recipe(translate, **overrides)
    except Exception as exc:
        raise AgainstError(f"--against {parts[3]}: that minilstm has no translation experiment to time "
                           f"({type(exc).__name__}: {exc})") from exc
    return translation_train_fn(cfg, corpus, batch, device, translate, parts[2])


# The variables that cap the BLAS threads, in the order OpenBLAS (NumPy's) reads them; MKL reads the last.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _threads():
    """The threads NumPy's matrix products use: as threadpoolctl reports them when it is installed; else
    the first of THREAD_VARS set to a whole number (at most the usable cores), else the usable cores."""
    try:
        from threadpoolctl import threadpool_info

        return max(i.get("num_threads", 1) for i in threadpool_info())
    except Exception:  # threadpoolctl is optional
        import os

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        for var in THREAD_VARS:
            value = os.environ.get(var, "").strip()
            if value.isdigit() and int(value) > 0:
                return min(int(value), cores)
        return cores


def run(configs=("small", "medium"), repeats=5, with_torch=False, classroom=True, out=None, log=print,
        device="cpu", rounds=5, against=None, models=("lm",), translation=None, speech=None,
        caption=None):
    """On ``device="gpu"`` only minilstm (CuPy) and PyTorch (cuDNN) are timed: the GEMM ceiling and the
    classroom baseline are NumPy measures, meaningless next to a GPU.

    against: the (training, config, optim, label) of another minilstm (``load_against``), timed
    in the same turns; ``speed_vs_against`` > 1 means this one is faster.
    models: any of choices.BENCH_MODELS. ``lm`` times ``configs``, a row each in ``results["configs"]``
    (empty without it); ``translation`` the translation step, its row in ``results["translation"]``.
    translation: overrides of the translation recipe's fields, e.g. {"hidden_size": 16} (tests)."""
    unknown = [m for m in models if m not in BENCH_MODELS]
    if unknown:
        raise ValueError(f"models must be among {BENCH_MODELS}, got {unknown}")
    rng = np.random.default_rng(0)
    threads = _threads()
    gpu = device == "gpu"
    results = {"machine": platform.platform(), "python": sys.version.split()[0], "numpy": np.__version__,
               "threads": threads, "rounds": rounds, "repeats": repeats, "device": device, "configs": {}}
    if against is not None:
        results["against"] = against[3]
    for name in configs if "lm" in models else ():
        cfg = get_config(name)
        tokens = cfg.batch_size * cfg.num_steps
        batch = _batch(cfg, rng)
        fns = dict(zip(("train", "eval"), train_fns(cfg, batch, device)))
        for fn in fns.values():  # one call each, so the peak memory read next includes minilstm's
            fn()
        # Read before the ceiling's operands and PyTorch exist. ru_maxrss only grows: for the first config
        # it is minilstm's own peak; for later configs an upper bound.
        row = {"minilstm_peak_rss_mib_so_far": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if not gpu:
            fns["ceiling"], flops = ceiling_fn(cfg, rng)
        times, torch_version = _race(
            fns, row, rounds, repeats, against=None if against is None else against_fn(against, name, batch, device),
            torch=(lambda: torch_fn(cfg, rng, threads, device)) if with_torch else None)
        med = {k: float(np.median(v)) for k, v in times.items()}
        row.update({"train_tokens_per_s": tokens / med["train"], "eval_tokens_per_s": tokens / med["eval"]})
        if gpu:
            from .backend import get_xp

            row["gpu_memory_pool_mib"] = get_xp("gpu").get_default_memory_pool().total_bytes() / 2 ** 20
        else:
            row.update({"ceiling_tokens_per_s": tokens / med["ceiling"], "ceiling_gflops": flops / med["ceiling"] / 1e9})
            row["fraction_of_ceiling"], row["fraction_of_ceiling_range"] = _paired(times, "ceiling", "train")
        if against is not None:
            row.update(_reference(times, "against", tokens, "tokens"))
        if torch_version is not None:
            figures = _reference(times, "torch", tokens, "tokens", key="speedup_vs_torch", quartiles=False)
            row["torch_tokens_per_s"] = figures.pop("torch_tokens_per_s")
            row["torch_version"] = torch_version
            row.update(figures)
        if classroom and not gpu:  # slow (float64, per-step products): timed alone, after the others
            t_cls = _median_time(classroom_fn(cfg, rng), max(2, repeats // 2), warmup=1)
            row["classroom_tokens_per_s"] = tokens / t_cls
            row["speedup_vs_classroom"] = t_cls / med["train"]
        results["configs"][name] = row
        log(_summary(name, row, gpu))
    if "translation" in models:
        row = translation_row(rounds, repeats, with_torch, device, against, threads, **(translation or {}))
        results["translation"] = row
        log(_translation_summary(row, threads))
    if "speech" in models:  # no --against here: another minilstm may have no speech experiment
        row = speech_row(rounds, repeats, with_torch, device, threads, **(speech or {}))
        results["speech"] = row
        log(_speech_summary(row, threads))
    if "caption" in models:  # no --against here either
        row = caption_row(rounds, repeats, with_torch, device, threads, **(caption or {}))
        results["caption"] = row
        log(_caption_summary(row, threads))
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"peak memory (max RSS of this process): {results['peak_rss_mib']:.0f} MiB")
    if out:
        from . import atomic

        atomic.write_json(out, results)  # whole or not at all
        log(f"wrote {out}")
    return results


def _summary(name, row, gpu):
    line = f"{name:>7}: train {row['train_tokens_per_s']:8,.0f} tok/s"
    if not gpu:
        lo, hi = row["fraction_of_ceiling_range"]
        line += (f" = {row['fraction_of_ceiling']:.0%} (rounds {lo:.0%}-{hi:.0%}) of the GEMM ceiling "
                 f"({row['ceiling_tokens_per_s']:,.0f} tok/s, {row['ceiling_gflops']:.0f} GFLOP/s)")
    line += f"; eval {row['eval_tokens_per_s']:,.0f} tok/s; max RSS {row['minilstm_peak_rss_mib_so_far']:,.0f} MiB"
    if "speed_vs_against" in row:
        q1, q3 = row["speed_vs_against_quartiles"]
        line += (f"; {row['speed_vs_against']:.3f}x (rounds' quartiles {q1:.3f}-{q3:.3f}) the --against version "
                 f"({row['against_tokens_per_s']:,.0f} tok/s)")
    if "speedup_vs_classroom" in row:
        line += f"; {row['speedup_vs_classroom']:.1f}x classroom"
    if "speedup_vs_torch" in row:
        lo, hi = row["speedup_vs_torch_range"]
        line += (f"; {row['speedup_vs_torch']:.2f}x (rounds {lo:.2f}-{hi:.2f}) PyTorch {row['torch_version']} "
                 f"({row['torch_tokens_per_s']:,.0f} tok/s)")
    elif "torch" in row:
        line += "; PyTorch not installed"
    return line


def main(argv=None):
    p = argparse.ArgumentParser(prog="minilstm bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", default=["lm"], choices=BENCH_MODELS,
                   help="what to time (default lm): lm, the language model's recipes (--configs); translation, "
                        "the translation miniature's training step (minilstm translate's regularized run), "
                        "in target words/s; speech, minilstm speech's regularized run, in frames/s; caption, "
                        "minilstm caption's regularized run, in words/s; or several")
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS),
                   help="language-model recipes to time (default: small medium), any of minilstm/config.py's")
    p.add_argument("--rounds", type=int_arg(1, 10_000), default=5, help="rounds of turns (default 5); figures are medians over them")
    p.add_argument("--repeats", type=int_arg(1, 10_000), default=5, help="timed calls per turn (default 5), after one warm-up")
    p.add_argument("--torch", action="store_true", help="also time PyTorch's nn.LSTM (if installed)")
    p.add_argument("--no-classroom", action="store_true", help="skip the slow per-step float64 baseline")
    p.add_argument("--out", type=path_arg, default="bench.json", help="JSON file for the figures (default bench.json)")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="gpu: time minilstm on CuPy (and PyTorch on CUDA with --torch)")
    p.add_argument("--against", metavar="SRC",
                   help="also time another minilstm's training step in the same turns: a folder holding its "
                        "minilstm/ package, or git:REV (a revision of this checkout); reports speed_vs_against")
    args = p.parse_args(argv)
    if args.configs is not None and "lm" not in args.model:
        p.error("--configs names language-model recipes, but --model does not include lm; add it (--model lm "
                f"{' '.join(args.model)}) or leave --configs out")
    import tempfile

    from .backend import GPUUnavailableError

    try:
        check_out(args.out)  # before minutes of timing, not after
        with tempfile.TemporaryDirectory(prefix="minilstm-against-") as workdir:
            against = load_against(args.against, workdir) if args.against else None
            run(args.configs or ["small", "medium"], args.repeats, args.torch, not args.no_classroom, args.out,
                device=args.device, rounds=args.rounds, against=against, models=args.model)
    except (GPUUnavailableError, AgainstError, OutError) as exc:
        print(f"minilstm bench: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # the reader went away (`| head`): cli.main ends quietly
    except OSError as exc:  # the --out file could not be written after all (disk full, permissions)
        print(f"minilstm bench: error: cannot write --out {args.out}: {exc.strerror or exc}; choose another --out",
              file=sys.stderr)
        return 1
    finally:
        unload_against()
    return 0


class OutError(ValueError):
    """--out names a place the results could not be written to."""


def check_out(out) -> None:
    """Refuse an --out the results could not be written to (a folder, a missing or read-only folder)."""
    import os

    path = Path(out)
    folder = path.parent
    if path.is_dir():
        raise OutError(f"--out {out} is a folder; give a file name, e.g. --out {path / 'bench.json'}")
    if not folder.is_dir():
        raise OutError(f"--out {out}: the folder {folder} does not exist; create it or choose another --out")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutError(f"--out {out}: the folder {folder} is not writable; choose another --out")


def add_cli(sub):
    """Register ``minilstm bench`` (cli.py forwards its arguments to main(), which has its own parser)."""
    b = sub.add_parser("bench", help="measure training/eval speed against the GEMM ceiling (and PyTorch)",
                       add_help=False, description="See `minilstm bench --help`.")
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=lambda args: main(args.rest))


if __name__ == "__main__":
    sys.exit(main())
