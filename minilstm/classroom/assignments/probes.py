"""Probes: what the grader asks each part's code to compute, on inputs it draws fresh.

A probe of a part is a list of *cases*. For each case the grader (the parent
process, ``minilstm/classroom/grade.py``) draws inputs with a secret seed
(``make_inputs``), runs the case with its own reference package, and sends the
same inputs to a child process that runs the case with the student's package
(``run``). The child sends back arrays only; the parent compares them with its
own and decides every verdict (``minilstm/classroom/assignments/checks.py``).

In the child, the grader's bootstrap imports this file (copied as
``_minilstm_probes.py``) and calls ``_child_main(JOB_DIR)``, which reads
``JOB_DIR/job.json`` and ``JOB_DIR/inputs.npz`` and writes
``JOB_DIR/outputs.npz``. It imports nothing but NumPy and ``minilstm`` (the
student's, in the child), so it can run as a lone script. Nothing in it is
secret: knowing the cases does not help, because the numbers are new for
every grading run and only correct code computes the right answers.

Each case returns {field: array}; an exception in a case becomes the field
``!error`` (a one-line message, with the file and line in the student's
package where it was raised), and costs only the groups that use that case.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------
# Input helpers (parent side)
# ---------------------------------------------------------------------------


def _randn(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# A student's exception text reaches the report whole up to this length (the stub hints run to
# about 450 characters); beyond it, it is cut, so a submission cannot flood the report.
MAX_ERROR_CHARS = 1000


def _activated(a):
    H = a.shape[1] // 4
    return np.concatenate([_sigmoid(a[:, :3 * H]), np.tanh(a[:, 3 * H:])], axis=1)


def _keep_mask(rng, shape, p=0.5):
    return (rng.random(shape) >= p) / (1.0 - p)


def _seed(rng):
    return np.array(int(rng.integers(0, 2**31 - 1)))


# ---------------------------------------------------------------------------
# lstm
# ---------------------------------------------------------------------------

CELL_FORWARD_CASES = {"small": (4, 3, 1.0, "float64"), "one": (1, 1, 8.0, "float64"),
                      "saturated": (5, 2, 8.0, "float64"), "float32": (2, 3, 1.0, "float32")}


def _make_cell_forward(rng):
    out = {}
    for case, (N, H, scale, dtype) in CELL_FORWARD_CASES.items():
        out[case] = {"gates": _activated(_randn(rng, N, 4 * H, scale=scale)).astype(dtype),
                     "prev_c": _randn(rng, N, H).astype(dtype)}
    return out


def _run_cell_forward(inp):
    from minilstm.ops import lstm
    gates, prev_c = inp["gates"], inp["prev_c"]
    next_c, tanh_c, next_h = (np.full(prev_c.shape, np.nan, prev_c.dtype) for _ in range(3))
    lstm.cell_forward(gates, prev_c, next_c, tanh_c, next_h, np)
    return {"next_c": next_c, "tanh_c": tanh_c, "next_h": next_h, "gates_after": gates, "prev_c_after": prev_c}


CELL_BACKWARD_CASES = {"small": (3, 4), "one": (1, 1), "wide": (5, 2), "tall": (2, 6)}


def _make_cell_backward(rng):
    out = {}
    for case, (N, H) in CELL_BACKWARD_CASES.items():
        a, prev_c = _randn(rng, N, 4 * H), _randn(rng, N, H)
        gates = _activated(a)
        c = gates[:, H:2 * H] * prev_c + gates[:, :H] * gates[:, 3 * H:]
        out[case] = {"dh": _randn(rng, N, H), "dc": _randn(rng, N, H), "gates": gates, "prev_c": prev_c,
                     "tanh_c": np.tanh(c)}
    return out


def _run_cell_backward(inp):
    from minilstm.ops import lstm
    N, H = inp["prev_c"].shape
    dgates = np.full((N, 4 * H), np.nan)
    dprev_c = lstm.cell_backward(inp["dh"], inp["dc"], inp["gates"], inp["prev_c"], inp["tanh_c"], dgates, np)
    out = {"dgates": dgates, "dprev_c": dprev_c}
    out.update({f"{k}_after": v for k, v in inp.items()})
    return out


STEP_CASES = {"small": (3, 4, 5, "float64"), "one": (1, 2, 5, "float64"), "wide": (4, 6, 2, "float64"),
              "float32": (2, 3, 4, "float32")}


def _make_step(rng):
    out = {}
    for case, (N, D, H, dtype) in STEP_CASES.items():
        arrays = {"x": _randn(rng, N, D), "prev_h": _randn(rng, N, H), "prev_c": _randn(rng, N, H),
                  "Wx": _randn(rng, D, 4 * H, scale=0.5), "Wh": _randn(rng, H, 4 * H, scale=0.5),
                  "b": _randn(rng, 4 * H, scale=0.5), "dnext_h": _randn(rng, N, H), "dnext_c": _randn(rng, N, H)}
        out[case] = {k: v.astype(dtype) for k, v in arrays.items()}
    return out


STEP_GRADS = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")


def _run_step(inp):
    from minilstm.ops import lstm
    args = {k: inp[k] for k in ("x", "prev_h", "prev_c", "Wx", "Wh", "b")}
    next_h, next_c, cache = lstm.lstm_step_forward(**args)
    out = {"next_h": next_h, "next_c": next_c}
    grads = lstm.lstm_step_backward(inp["dnext_h"], inp["dnext_c"], cache)
    out.update(zip(STEP_GRADS, grads))
    out.update({f"{k}_after": v for k, v in inp.items()})
    return out


SEQUENCE_CASES = {"small": (2, 4, 3, 5, False, "float64"), "one": (1, 1, 2, 3, False, "float64"),
                  "masked": (3, 7, 4, 2, True, "float64"), "no_c0": (2, 3, 2, 3, False, "float64"),
                  "final": (2, 3, 2, 3, False, "float64"), "float32": (2, 3, 2, 3, False, "float32")}
SEQUENCE_GRADS = ("dx", "dh0", "dWx", "dWh", "db", "dc0")


def _make_sequence(rng):
    out = {}
    for case, (N, T, D, H, masked, dtype) in SEQUENCE_CASES.items():
        arrays = {"x": _randn(rng, N, T, D), "h0": _randn(rng, N, H), "c0": _randn(rng, N, H),
                  "Wx": _randn(rng, D, 4 * H, scale=0.5), "Wh": _randn(rng, H, 4 * H, scale=0.5),
                  "b": _randn(rng, 4 * H, scale=0.5), "dh": _randn(rng, N, T, H)}
        if masked:
            arrays["h_masks"] = _keep_mask(rng, (N, T, H))
        if case == "final":
            arrays["dh_final"], arrays["dc_final"] = _randn(rng, N, H), _randn(rng, N, H)
        if case == "no_c0":
            del arrays["c0"]
        out[case] = {k: v.astype(dtype) for k, v in arrays.items()}
    return out


def _run_sequence(inp):
    """lstm_forward, then lstm_backward on its cache (one of them is the reference in the child)."""
    from minilstm.ops import lstm
    args = {k: inp[k] for k in ("x", "h0", "Wx", "Wh", "b", "c0", "h_masks") if k in inp}
    h, cache = lstm.lstm_forward(**args)
    out = {"h": h, "final_h": cache.final_h, "final_c": cache.final_c}
    finals = {k: inp[k] for k in ("dh_final", "dc_final") if k in inp}
    grads = lstm.lstm_backward(inp["dh"], cache, **finals)
    out.update(zip(SEQUENCE_GRADS, grads))
    out.update({f"{k}_after": v for k, v in inp.items()})
    return out


# ---------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------

MASK_CASES = {"p10": (0.1, "float32"), "p50": (0.5, "float64"), "p65": (0.65, "float32")}
MASK_SHAPE = (300, 100)


def _make_operator(rng):
    out = {case: {"p": np.array(p), "seed": _seed(rng)} for case, (p, _) in MASK_CASES.items()}
    out["steps"] = {"seed": _seed(rng)}
    x = _randn(rng, 5, 7)
    out["given"] = {"x": x, "mask": _keep_mask(rng, x.shape), "dout": _randn(rng, 5, 7)}
    out["drawn"] = {"x": _randn(rng, 6, 9), "seed": _seed(rng), "dout": _randn(rng, 6, 9)}
    out["identity"] = {"x": _randn(rng, 3, 4), "dout": _randn(rng, 3, 4)}
    out["errors"] = {"x": _randn(rng, 2, 3)}
    return out


def _run_operator_case(case, inp):
    from minilstm.ops import dropout
    if case in MASK_CASES:
        p, dtype = float(inp["p"]), np.dtype(MASK_CASES[case][1])
        seed = int(inp["seed"])
        return {"mask": dropout.dropout_mask(MASK_SHAPE, p, np.random.default_rng(seed), dtype),
                "again": dropout.dropout_mask(MASK_SHAPE, p, np.random.default_rng(seed), dtype)}
    if case == "steps":
        r = np.random.default_rng(int(inp["seed"]))
        return {"mask": dropout.dropout_mask((4, 6, 8), 0.5, r, np.dtype("float64")),
                "second": dropout.dropout_mask((4, 6, 8), 0.5, r, np.dtype("float64"))}
    if case == "given":
        out, cache = dropout.dropout_forward(inp["x"], 0.5, train=True, mask=inp["mask"])
        return {"out": out, "dx": dropout.dropout_backward(inp["dout"], cache), "x_after": inp["x"]}
    if case == "drawn":
        out, cache = dropout.dropout_forward(inp["x"], 0.4, train=True, rng=np.random.default_rng(int(inp["seed"])))
        return {"out": out, "mask": cache.mask, "dx": dropout.dropout_backward(inp["dout"], cache),
                "x_after": inp["x"]}
    if case == "identity":
        ev, ev_cache = dropout.dropout_forward(inp["x"], 0.5, train=False)
        p0, p0_cache = dropout.dropout_forward(inp["x"], 0.0, train=True, rng=np.random.default_rng(0))
        return {"eval": ev, "eval_dx": dropout.dropout_backward(inp["dout"], ev_cache),
                "eval_mask_none": np.array(ev_cache.mask is None), "p0": p0,
                "p0_mask_none": np.array(p0_cache.mask is None)}
    if case == "errors":
        raised = []
        for kwargs in ({}, {"mask": np.ones((inp["x"].shape[1], inp["x"].shape[0]))}):
            try:
                dropout.dropout_forward(inp["x"], 0.5, train=True, **kwargs)
                raised.append(False)
            except ValueError:
                raised.append(True)
        return {"no_rng_raises": np.array(raised[0]), "bad_mask_raises": np.array(raised[1])}
    raise KeyError(case)


PLACEMENT_CASES = {"zaremba1": ("zaremba", 1), "zaremba2": ("zaremba", 2), "zaremba3": ("zaremba", 3),
                   "recurrent1": ("recurrent", 1), "recurrent2": ("recurrent", 2), "none": ("none", 2),
                   "eval": ("zaremba", 2)}
PLACEMENT_SIZES = dict(V=11, H=4, N=3, T=3)


def _mask_names(mode, layers):
    if mode == "none":
        return []
    names = [f"drop{layer}" for layer in range(layers + 1)]
    if mode in ("recurrent", "variational"):
        names += [f"rec{layer}" for layer in range(1, layers + 1)]
    return names


def _model_params(rng, V, H, L, scale=0.5):
    shapes = {"embed.W": (V, H)}
    for layer in range(1, L + 1):
        shapes.update({f"lstm{layer}.Wx": (H, 4 * H), f"lstm{layer}.Wh": (H, 4 * H), f"lstm{layer}.b": (4 * H,)})
    shapes.update({"out.W": (H, V), "out.b": (V,)})
    return {f"param.{name}": rng.uniform(-scale, scale, size=shape) for name, shape in shapes.items()}


def _make_placement(rng):
    V, H, N, T = (PLACEMENT_SIZES[k] for k in "VHNT")
    out = {}
    for case, (mode, L) in PLACEMENT_CASES.items():
        d = _model_params(rng, V, H, L)
        d["tokens"] = rng.integers(0, V, (N, T))
        d["targets"] = rng.integers(0, V, (N, T))
        d["state_h"], d["state_c"] = _randn(rng, L, N, H, scale=0.5), _randn(rng, L, N, H, scale=0.5)
        for name in _mask_names(mode, L):
            d[f"mask.{name}"] = _keep_mask(rng, (N, T, H))
        out[case] = d
    return out


def _model_from(inp, mode, L, dropout):
    import minilstm
    V, H = inp["param.embed.W"].shape
    model = minilstm.LSTMLanguageModel(V, H, L, dropout=dropout, dropout_mode=mode, dtype="float64", seed=0)
    for name in model.params:
        model.params[name] = np.array(inp[f"param.{name}"], dtype=np.float64)
    return model


def _run_placement_case(case, inp):
    mode, L = PLACEMENT_CASES[case]
    model = _model_from(inp, mode, L, 0.5)
    masks = {k[len("mask."):]: v for k, v in inp.items() if k.startswith("mask.")}
    state = (inp["state_h"], inp["state_c"])
    train = case != "eval"
    loss, cache, new_state = model.forward(inp["tokens"], inp["targets"], state, train=train,
                                           masks=masks or None)
    out = {"loss": np.array(loss), "state_h": new_state[0], "state_c": new_state[1]}
    if train:
        grads = model.backward(cache)
        out.update({f"grad.{k}": np.asarray(v) for k, v in grads.items()})
        out["masks_used"] = np.array(sorted(cache.masks), dtype=str)
        out.update({f"used.{k}": np.asarray(v) for k, v in cache.masks.items() if v is not None})
    return out


# case: (layers, N, T, p); "drawn": masks the model draws (many units, for the keep rate), "given*": masks given
VARIATIONAL_CASES = {"drawn": (2, 60, 4, 0.4), "given1": (1, 3, 4, 0.5), "given2": (2, 3, 5, 0.5)}
VARIATIONAL_SIZES = dict(V=11, H=40)


def _make_variational(rng):
    V, H = VARIATIONAL_SIZES["V"], VARIATIONAL_SIZES["H"]
    out = {}
    for case, (L, N, T, p) in VARIATIONAL_CASES.items():
        hidden = H if case == "drawn" else 4
        d = _model_params(rng, V, hidden, L)
        d["tokens"] = rng.integers(0, V, (N, T))
        d["targets"] = rng.integers(0, V, (N, T))
        d["state_h"], d["state_c"] = _randn(rng, L, N, hidden, scale=0.5), _randn(rng, L, N, hidden, scale=0.5)
        if case == "drawn":
            d["seed"] = _seed(rng)
        else:
            for name in _mask_names("variational", L):
                d[f"mask.{name}"] = _keep_mask(rng, (N, 1, hidden), p)
        out[case] = d
    x = _randn(rng, 3, 5, 4)
    out["broadcast"] = {"x": x, "mask": _keep_mask(rng, (3, 1, 4)), "full": _keep_mask(rng, x.shape)}
    return out


def _run_variational_case(case, inp):
    from minilstm.ops import dropout
    if case == "broadcast":
        shape = inp["x"].shape
        return {"view": np.array(dropout.broadcast_over_time(inp["mask"], shape)),
                "full": np.array(dropout.broadcast_over_time(inp["full"], shape))}
    L, N, T, p = VARIATIONAL_CASES[case]
    model = _model_from(inp, "variational", L, p)
    state = (inp["state_h"], inp["state_c"])
    out = {}
    if case == "drawn":
        runs = []
        for _ in range(2):  # the same seed twice: the same masks (drawn from rng only)
            rng = np.random.default_rng(int(inp["seed"]))
            _, cache, _ = model.forward(inp["tokens"], inp["targets"], state, train=True, rng=rng)
            runs.append(cache)
        cache = runs[0]
        out["masks_used"] = np.array(sorted(cache.masks), dtype=str)
        out.update({f"used.{k}": np.asarray(v) for k, v in cache.masks.items() if v is not None})
        out.update({f"again.{k}": np.asarray(v) for k, v in runs[1].masks.items() if v is not None})
        # the masks as applied: dropout's cache (N, T, H) and lstm_forward's h_masks (N, T, H)
        out.update({f"applied.drop{k}": np.array(d.mask) for k, d in enumerate(cache.drops) if d.mask is not None})
        out.update({f"applied.rec{k + 1}": np.array(lc.h_masks) for k, lc in enumerate(cache.lstms)
                    if lc.h_masks is not None})
        return out
    masks = {k[len("mask."):]: v for k, v in inp.items() if k.startswith("mask.")}
    loss, cache, new_state = model.forward(inp["tokens"], inp["targets"], state, train=True, masks=masks)
    out.update({"loss": np.array(loss), "state_h": new_state[0], "state_c": new_state[1]})
    out["masks_used"] = np.array(sorted(cache.masks), dtype=str)
    out.update({f"used.{k}": np.asarray(v) for k, v in cache.masks.items() if v is not None})
    grads = model.backward(cache)
    out.update({f"grad.{k}": np.asarray(v) for k, v in grads.items()})
    return out


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------

EVALUATE_CASES = {"stream": (40, 1, 5, 0.0), "batched": (101, 4, 3, 0.0), "long_chunks": (23, 2, 10, 0.0),
                  "dropout_model": (61, 1, 7, 0.5)}
EVAL_SIZES = dict(V=9, H=5, L=2)


def _make_evaluate(rng):
    V, H, L = (EVAL_SIZES[k] for k in "VHL")
    out = {}
    for case, (n, batch, steps, _) in EVALUATE_CASES.items():
        d = _model_params(rng, V, H, L)
        d["ids"] = rng.integers(0, V, n)
        out[case] = d
    return out


def _run_evaluate_case(case, inp):
    from minilstm import training
    n, batch, steps, dropout = EVALUATE_CASES[case]
    model = _model_from(inp, "zaremba", EVAL_SIZES["L"], dropout)
    res = training.evaluate(model, inp["ids"], batch_size=batch, num_steps=steps)
    return {"perplexity": np.array(float(res.perplexity)), "nll": np.array(float(res.nll)),
            "tokens": np.array(int(res.tokens))}


# case: (steps, dropout, max_grad_norm, lr)
LOOP_CASES = {"one_step": (1, 0.0, 5.0, 1.0), "carried": (4, 0.3, 5.0, 0.7), "clipped": (3, 0.0, 0.05, 1.0)}
LOOP_SIZES = dict(V=10, H=4, L=2, N=3, T=4)


def _make_loop(rng):
    V, H, L, N, T = (LOOP_SIZES[k] for k in "VHLNT")
    out = {}
    for case, (steps, *_rest) in LOOP_CASES.items():
        d = _model_params(rng, V, H, L, scale=0.3)
        d["ids"] = rng.integers(0, V, (N, steps * T + 1))
        d["seed"] = _seed(rng)
        out[case] = d
    return out


def _run_loop_case(case, inp):
    import minilstm
    from minilstm import training
    steps, dropout, max_norm, lr = LOOP_CASES[case]
    V, H = inp["param.embed.W"].shape
    L, T = LOOP_SIZES["L"], LOOP_SIZES["T"]
    model = minilstm.LSTMLanguageModel(V, H, L, dropout=dropout, dropout_mode="zaremba", dtype="float64",
                                       seed=int(inp["seed"]))
    for name in model.params:
        model.params[name] = np.array(inp[f"param.{name}"], dtype=np.float64)
    ids, state, losses, norms = inp["ids"], None, [], []
    for k in range(steps):
        x, y = ids[:, k * T:(k + 1) * T], ids[:, k * T + 1:(k + 1) * T + 1]
        loss, gnorm, state = training.train_step(model, x, y, state, lr, max_norm)
        losses.append(float(loss))
        norms.append(float(gnorm))
    out = {"losses": np.array(losses), "gnorms": np.array(norms), "state_h": np.asarray(state[0]),
           "state_c": np.asarray(state[1])}
    out.update({f"param.{k}": np.asarray(v) for k, v in model.params.items()})
    return out


# ---------------------------------------------------------------------------
# translation
# ---------------------------------------------------------------------------

# case: (shape of y, V, dtype, normalizer (None: the default N), kind of weights)
MASKED_CASES = {"tokens": ((3, 5), 7, "float64", None, "mixed"), "rows": ((8,), 5, "float64", 2.0, "mixed"),
                "sentences": ((4, 9), 6, "float64", 1.0, "target_only"),
                "float32": ((2, 6), 8, "float32", None, "mixed"), "ones": ((3, 4), 6, "float64", None, "ones")}


def _make_masked_loss(rng):
    """Each case twice: ``name`` for the forward, ``name.grad`` (other numbers) for the backward."""
    out = {}
    for name, (shape, V, dtype, _, kind) in MASKED_CASES.items():
        for case in (name, f"{name}.grad") if kind != "ones" else (name,):
            if kind == "mixed":  # 0 for about a third of the tokens, other weights anywhere in [0.5, 2]
                w = np.where(rng.random(shape) < 0.35, 0.0, rng.uniform(0.5, 2.0, shape))
                w.flat[0], w.flat[-1] = 0.0, 1.0  # at least one of each
            elif kind == "target_only":  # a translation batch: source and separator, target and <eos>, padding
                w = np.zeros(shape)
                for n in range(shape[0]):
                    first = int(rng.integers(1, shape[1] - 2))
                    w[n, first:int(rng.integers(first + 1, shape[1] + 1))] = 1.0
            else:
                w = np.ones(shape)
            out[case] = {"scores": _randn(rng, *shape, V, scale=2.0).astype(dtype),
                         "y": rng.integers(0, V, shape), "weights": w.astype(dtype),
                         "dloss": np.array(rng.uniform(0.5, 1.5))}
    return out


def _run_masked_loss_case(case, inp):
    """The forward alone (``name``); the backward alone (``name.grad``), on the cache of the plain forward
    (given code) with the weights put in, as the weighted forward leaves them; "ones": both, and the plain loss."""
    from minilstm.ops import softmax
    name, _, grad = case.partition(".")
    normalizer = MASKED_CASES[name][3]
    scores, y, w, dloss = inp["scores"], inp["y"], inp["weights"], float(inp["dloss"])
    if name == "ones":
        loss, cache = softmax.softmax_cross_entropy_forward(scores, y, normalizer=normalizer, weights=w)
        plain, plain_cache = softmax.softmax_cross_entropy_forward(scores, y, normalizer=normalizer)
        return {"loss": np.array(float(loss)), "dscores": softmax.softmax_cross_entropy_backward(dloss, cache),
                "plain_loss": np.array(float(plain)),
                "plain_dscores": softmax.softmax_cross_entropy_backward(dloss, plain_cache)}
    if not grad:
        loss, _ = softmax.softmax_cross_entropy_forward(scores, y, normalizer=normalizer, weights=w)
        return {"loss": np.array(float(loss)), "scores_after": scores, "weights_after": w}
    _, cache = softmax.softmax_cross_entropy_forward(scores, y, normalizer=normalizer)
    cache.weights = w.reshape(-1)
    return {"dscores": softmax.softmax_cross_entropy_backward(dloss, cache), "weights_after": w}


class ToyDecoder:
    """A stand-in for a translation model (the decoding protocol of minilstm/decoding.py), from arrays.

    The logits of the next word are ``table[prev] + mean(emb[source]) + eos_logit * onehot(eos)`` (the sum
    instead of the mean with ``sum_source``, for integer logits and so ties), with
    ``eos_logit = eos_base[source[0]] + ramp[source[0]] * k`` at the sentence's k-th step (k = 0 for the
    first word, ``table``'s last row standing for "no word yet"): the source's first word decides whether
    (and about when) the sentence ends with <eos>, and the rest of the source what it says. The state is
    (bias (1, N, Vt), eos logit (1, N, 1), ramp (1, N, 1)), batch on axis 1; rows are independent.
    """

    xp = np

    def __init__(self, inp):
        self.table, self.emb = inp["table"], inp["emb"]
        self.eos_base, self.ramp = inp["eos_base"], inp["ramp"]
        self.eos = int(inp["eos"])
        self.pool = np.sum if "sum_source" in inp else np.mean
        self.target_vocab_size = self.table.shape[1]
        self.calls = self.rows = 0  # model.step calls, and the rows they stepped in all

    def _log_probs(self, logits):
        s = logits - logits.max(axis=1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=1, keepdims=True))

    def _logits(self, prev, state):
        bias, eos_logit, _ = state
        logits = self.table[prev] + bias[0]
        logits[:, self.eos] += eos_logit[0, :, 0]
        return self._log_probs(logits)

    def start(self, sources):
        sources = [np.asarray(s, dtype=np.int64) for s in sources]
        bias = np.stack([self.pool(self.emb[s], axis=0) for s in sources])[None]  # (1, N, Vt)
        first = np.array([s[0] for s in sources])
        state = (bias, self.eos_base[first][None, :, None], self.ramp[first][None, :, None])
        return state, self._logits(np.full(len(sources), self.table.shape[0] - 1), state)

    def step(self, prev_tokens, state):
        self.calls += 1
        prev = np.asarray(prev_tokens)
        self.rows += int(prev.size)
        if prev.shape != (state[0].shape[1],):
            raise ValueError(f"model.step got prev_tokens of shape {prev.shape} for a state of "
                             f"{state[0].shape[1]} rows: one word per row of the state")
        bias, eos_logit, ramp = state
        state = (bias, eos_logit + ramp, ramp)
        return state, self._logits(prev.astype(np.int64), state)


# case: (N, Vs, Vt, what the sources' first words do, max_len (None: 2 S + 10), source lengths up to)
# ends: "eos": every sentence ends with <eos> within 8 words, "never": no <eos> ever, "mixed": both;
# "ties": integer logits, so that several words share the largest log-prob.
GREEDY_CASES = {"eos_one": (1, 6, 7, "eos", None, 6), "eos_batch": (5, 6, 7, "eos", None, 6),
                "ties": (4, 5, 6, "ties", 12, 4),
                "cut_given": (3, 6, 7, "never", "draw", 6), "cut_default": (3, 6, 7, "never", None, 5),
                "cut_one": (2, 6, 7, "never", 1, 4),
                "batched": (7, 8, 9, "mixed", None, 6)}
# a small TranslationModel: its sources, decoded with the default max_len and with a short one
TRANSLATION_SIZES = dict(Vs=7, Vt=6, H=8, L=2, N=5)
TRANSLATION_CASES = {"model": None, "model_cut": 3}


def _sources(rng, n, Vs, longest, firsts=None):
    lengths = rng.integers(1, longest + 1, n)
    lengths[:min(n, 2)] = [1, longest][:min(n, 2)]  # the shortest and the longest possible
    src = [rng.integers(0, Vs, k) for k in lengths]
    if firsts is not None:
        for s, w in zip(src, firsts):
            s[0] = w
    return {"src": np.concatenate(src), "src_len": lengths}


def _split_sources(inp):
    return np.split(np.asarray(inp["src"], dtype=np.int64), np.cumsum(inp["src_len"])[:-1])


def _make_greedy(rng):
    out = {}
    for case, (N, Vs, Vt, ends, max_len, longest) in GREEDY_CASES.items():
        eos = int(rng.integers(0, Vt))
        if ends == "ties":
            table, emb = rng.integers(-1, 2, (Vt + 1, Vt)).astype(float), rng.integers(0, 2, (Vs, Vt)).astype(float)
        else:
            table, emb = rng.uniform(-2, 2, (Vt + 1, Vt)), rng.uniform(-1, 1, (Vs, Vt))
        # non-<eos> logits lie in [-3, 3]: with eos_base -4 and a ramp of 1.5, <eos> wins by the 8th word
        ending = {"eos": np.ones(Vs, bool), "ties": np.ones(Vs, bool), "never": np.zeros(Vs, bool),
                  "mixed": np.arange(Vs) % 2 == 0}[ends]
        d = {"table": table, "emb": emb, "eos": np.array(eos), "eos_base": np.where(ending, -4.0, -60.0),
             "ramp": np.where(ending, 1.5, 0.0)}
        if ends == "ties":  # integer logits in [-1, 5]: <eos> (from -4, one more every step) wins by the 11th word
            d["eos_base"], d["ramp"], d["sum_source"] = np.full(Vs, -3.0), np.full(Vs, 1.0), np.array(1)
        firsts = rng.permutation(np.arange(N) % Vs) if ends == "mixed" else None
        d.update(_sources(rng, N, Vs, longest, firsts))
        if max_len is not None:
            d["max_len"] = np.array(int(rng.integers(3, 8)) if max_len == "draw" else max_len)
        out[case] = d
    model = _draw_translation_model(rng)
    for case, max_len in TRANSLATION_CASES.items():
        out[case] = dict(model)
        if max_len is not None:
            out[case]["max_len"] = np.array(max_len)
    return out


def _draw_translation_model(rng, tries=50):
    """The weights, <eos> and sources of a small TranslationModel whose greedy translations end both ways:
    some sentences with <eos> after a word or more, some cut at their maximum length.

    Which word is <eos> changes only where greedy decoding stops, not the words before, so the grader
    decodes every source one word past its maximum length with no word stopping it (its reference
    greedy_decode, on the model seen through ``_NoEos``), then picks for <eos> a word found after the first
    position within the maximum length in some translations and nowhere, that extra word included, in
    others (so a decoder that goes one word too far is caught too); it redraws the weights when no word
    does (at most ``tries`` times, then it takes the last draw; with these scales about one draw in ten)."""
    Vs, Vt, H, L, N = (TRANSLATION_SIZES[k] for k in ("Vs", "Vt", "H", "L", "N"))
    for _ in range(tries):
        d = {"param.embed.W": rng.uniform(-2, 2, (Vs + 1 + Vt, H))}
        for layer in range(1, L + 1):
            d.update({f"param.lstm{layer}.Wx": rng.uniform(-2, 2, (H, 4 * H)),
                      f"param.lstm{layer}.Wh": rng.uniform(-2, 2, (H, 4 * H)),
                      f"param.lstm{layer}.b": rng.uniform(-1, 1, (4 * H,))})
        d.update({"param.out.W": rng.uniform(-3, 3, (H, Vt)), "param.out.b": rng.uniform(-1, 1, (Vt,)),
                  "eos": np.array(int(rng.integers(0, Vt)))})
        d.update(_sources(rng, N, Vs, 5))
        try:
            from minilstm.decoding import greedy_decode, max_target_length
            model = _NoEos(_translation_model(d))
            limits = [max_target_length(len(s)) for s in _split_sources(d)]
            chains = [greedy_decode(model, [s], max_len=n + 1)[0] for s, n in zip(_split_sources(d), limits)]
        except NotImplementedError:  # a grader without the reference greedy_decode: any draw will do
            return d
        both = [w for w in range(Vt) if any(w in c[1:n] and c[0] != w for c, n in zip(chains, limits))
                and any(w not in c for c in chains)]
        if both:
            d["eos"] = np.array(int(rng.choice(both)))
            return d
    return d


class _NoEos:
    """A model seen with no <eos> (an id no word has): greedy decoding runs every sentence to its maximum length."""

    eos = -1

    def __init__(self, model):
        self.model, self.target_vocab_size, self.xp = model, model.target_vocab_size, model.xp

    def start(self, sources):
        return self.model.start(sources)

    def step(self, prev_tokens, state):
        return self.model.step(prev_tokens, state)


def _translation_model(inp):
    """A TranslationModel (float64) with the weights and <eos> of ``inp``."""
    from minilstm.models.translation import TranslationModel
    s = TRANSLATION_SIZES
    model = TranslationModel(s["Vs"], s["Vt"], int(inp["eos"]), hidden_size=s["H"], num_layers=s["L"],
                             dtype="float64", seed=0)
    for name in model.params:
        model.params[name] = np.array(inp[f"param.{name}"], dtype=np.float64)
    return model


def _tokens(decoded, n):
    """The N lists of target ids greedy_decode returned, as (flat ids, lengths) arrays."""
    if not isinstance(decoded, (list, tuple)) or len(decoded) != n:
        raise ValueError(f"greedy_decode must return a list of {n} lists of target ids (one per source), "
                         f"got {type(decoded).__name__}" + (f" of length {len(decoded)}"
                                                            if isinstance(decoded, (list, tuple)) else ""))
    flat, lengths = [], []
    for sent in decoded:
        ids = [int(x) for x in sent]
        flat += ids
        lengths.append(len(ids))
    return {"tokens": np.array(flat, dtype=np.int64), "lengths": np.array(lengths, dtype=np.int64)}


def _no_beam_search(*args, **kwargs):
    raise NotImplementedError("greedy_decode: write the decoding loop itself; beam_search(..., beam_size=1) gives "
                              "the same words, but it is the course's code, not yours")


def _run_greedy_case(case, inp):
    from minilstm import decoding
    # beam_search with a beam of 1 is greedy decoding exactly (given code): the part is to write the loop
    saved = decoding.beam_search, decoding._beam_search
    decoding.beam_search = decoding._beam_search = _no_beam_search
    try:
        return _greedy_case(case, inp, decoding.greedy_decode)
    finally:  # (the grader runs this too, with its reference: leave its module as it was)
        decoding.beam_search, decoding._beam_search = saved


def _greedy_case(case, inp, greedy_decode):
    sources = _split_sources(inp)
    max_len = int(inp["max_len"]) if "max_len" in inp else None
    model = _translation_model(inp) if case in TRANSLATION_CASES else ToyDecoder(inp)
    out = _tokens(greedy_decode(model, sources, max_len=max_len), len(sources))
    if case in TRANSLATION_CASES:
        return out
    out["step_calls"], out["step_rows"] = np.array(model.calls), np.array(model.rows)
    if case == "batched":  # the same code on one sentence at a time
        alone = [greedy_decode(ToyDecoder(inp), [s], max_len=max_len) for s in sources]
        out.update({f"alone.{k}": v for k, v in _tokens([a[0] if isinstance(a, list) and len(a) == 1 else a
                                                          for a in alone], len(sources)).items()})
    return out


# ---------------------------------------------------------------------------
# The table: part -> (make inputs, run one case)
# ---------------------------------------------------------------------------

def _each(fn):
    return lambda case, inp: fn(inp)


PROBES = {
    "lstm:cell_forward": (_make_cell_forward, _each(_run_cell_forward)),
    "lstm:cell_backward": (_make_cell_backward, _each(_run_cell_backward)),
    "lstm:step": (_make_step, _each(_run_step)),
    "lstm:sequence_forward": (_make_sequence, _each(_run_sequence)),
    "lstm:sequence_backward": (_make_sequence, _each(_run_sequence)),
    "dropout:operator": (_make_operator, _run_operator_case),
    "dropout:placement": (_make_placement, _run_placement_case),
    "dropout:variational": (_make_variational, _run_variational_case),
    "training:evaluate": (_make_evaluate, _run_evaluate_case),
    "training:loop": (_make_loop, _run_loop_case),
    "translation:masked_loss": (_make_masked_loss, _run_masked_loss_case),
    "translation:greedy": (_make_greedy, _run_greedy_case),
}


def make_inputs(part: str, rng) -> dict:
    """{"case/field": array} for ``part``, drawn from ``rng`` (the parent's secret generator)."""
    make, _ = PROBES[part]
    return {f"{case}/{field}": np.asarray(v) for case, fields in make(rng).items() for field, v in fields.items()}


def _split(flat: dict) -> dict:
    cases: dict[str, dict] = {}
    for key, value in flat.items():
        case, _, field = key.partition("/")
        cases.setdefault(case, {})[field] = value
    return cases


def _where(exc, package_dir):
    """'minilstm/ops/lstm.py:66, in cell_forward': the innermost frame in the graded package."""
    import os
    import traceback
    if not package_dir:
        return ""
    root = os.path.dirname(package_dir)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if os.path.abspath(f.filename).startswith(package_dir + os.sep)]
    if not frames:
        return ""
    f = frames[-1]
    return f"{os.path.relpath(f.filename, root)}:{f.lineno}, in {f.name}"


def run(part: str, inputs: dict, catch: bool = True, package_dir: str = "") -> dict:
    """Run every case of ``part`` on ``inputs``; {"case/field": array}.

    catch: turn an exception in a case into ``case/!error`` (the child); the
    parent runs its reference with catch=False, so a grader bug is loud.
    """
    _, run_case = PROBES[part]
    out = {}
    for case, inp in _split(inputs).items():
        # each case gets its own copies: a case that writes into its inputs spoils no other case
        inp = {k: np.array(v) for k, v in inp.items()}
        try:
            fields = run_case(case, inp)
        except BaseException as exc:  # noqa: BLE001 - a student's SystemExit or MemoryError costs this case only
            if not catch or isinstance(exc, KeyboardInterrupt):
                raise
            where = _where(exc, package_dir)
            text = " ".join(f"{type(exc).__name__}: {exc}".split())[:MAX_ERROR_CHARS]
            out[f"{case}/!error"] = np.array(text + (f" (raised at {where})" if where else ""))
            continue
        for field, value in fields.items():
            out[f"{case}/{field}"] = np.array(value)
    return out


def _child_main(job_dir: str) -> None:
    """The child (after the grader's bootstrap set its limits and sys.path): import the assembled
    student package, run the part's cases, write outputs.npz."""
    import json
    import os
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    with np.load(os.path.join(job_dir, "inputs.npz"), allow_pickle=False) as data:
        inputs = {k: data[k] for k in data.files}
    try:
        import minilstm
        package_dir = os.path.dirname(os.path.abspath(minilstm.__file__))
        outputs = run(job["part"], inputs, catch=True, package_dir=package_dir)
    except BaseException as exc:  # noqa: BLE001 - the package does not even import
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" ({os.path.relpath(exc.filename, job['sys_path'][0])}:{exc.lineno})"
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:MAX_ERROR_CHARS]
        outputs = {"!import_error": np.array(f"import minilstm failed: {text}{where}")}
    tmp = os.path.join(job_dir, "outputs.tmp.npz")
    np.savez(tmp, **outputs)
    os.replace(tmp, os.path.join(job_dir, "outputs.npz"))

