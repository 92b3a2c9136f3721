"""The verdicts: each group of checks compares what the student's code returned with the reference.

Runs in the grader's own process only (``minilstm/classroom/verdicts.py``), never in a
process that imports the student's code. Inputs are split by case
(``{case: {field: array}}``, see ``probes.py``); ``ref`` is what the reference
computed on them, ``theirs`` what came back from the student's child process.
Each check returns a list of messages, empty when the group passes. A message
starts with the function to fix and says which value is off and by how much.
"""

from __future__ import annotations

import math

import numpy as np

from . import probes

TOL = {"float64": 1e-7, "float32": 1e-4}


class Ctx:
    """One part's inputs, reference outputs and the student's outputs, by case."""

    def __init__(self, inputs, ref, theirs):
        self.inputs, self.ref, self.theirs = inputs, ref, theirs
        self.messages = []

    def say(self, text):
        if text and text not in self.messages:
            self.messages.append(text)

    def ran(self, function, case):
        """True when the case ran in the child; otherwise records its error."""
        got = self.theirs.get(case)
        if got is None:
            self.say(f"{function}: no result came back for this check")
            return False
        if "!error" in got:
            err = str(got["!error"])
            self.say(err if "your code here" in err else f"{function}: {err}")
            return False
        return True

    def close(self, function, what, case, field, tol=None, ref=None, dtype=None):
        """Compare one returned array with the reference; True when it matches."""
        want = self.ref[case][field] if ref is None else ref
        got = self.theirs[case].get(field)
        msg = compare(function, what, got, want, tol=tol, dtype=dtype)
        self.say(msg)
        return msg is None


def compare(function, what, got, want, tol=None, dtype=None):
    """None when ``got`` matches ``want``; else one message naming the function and the value."""
    want = np.asarray(want)
    if got is None:
        return f"{function}: {what} was not returned"
    got = np.asarray(got)
    if got.dtype.kind not in "fiub" or got.shape != want.shape:
        return f"{function}: {what} has shape {got.shape} ({got.dtype}), expected {want.shape} ({want.dtype})"
    if dtype is not None and got.dtype != np.dtype(dtype):
        return f"{function}: {what} is {got.dtype} for {dtype} inputs; keep the dtype"
    if want.dtype.kind == "b" or want.dtype.kind in "iu":
        if np.array_equal(got, want):
            return None
        return f"{function}: {what} is {got.tolist() if got.size < 5 else '...'}, expected " \
               f"{want.tolist() if want.size < 5 else '...'}"
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    if not np.all(np.isfinite(got64)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(got64))[0])
        return f"{function}: {what} holds NaN or inf (first at {where}; was every element written?)"
    tol = TOL[str(want.dtype)] if tol is None else tol
    scale = max(float(np.max(np.abs(want64))) if want64.size else 0.0, 1e-12)
    diff = np.abs(got64 - want64)
    err = float(diff.max()) / scale if diff.size else 0.0
    if err <= tol:
        return None
    at = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape))
    return (f"{function}: wrong {what}: largest difference {err:.1e} (relative to its scale) at {at}: "
            f"yours {got64[at]:+.6e}, expected {want64[at]:+.6e}")


def _detail(msg, name):
    """'largest difference ... at ...: yours ..., expected ...' of a compare() message, led by the value's name."""
    rest = msg.split(": ", 1)[1]
    if rest.startswith("wrong ") and ": " in rest:
        rest = rest.split(": ", 1)[1]
    return f"{name}: {rest}" if not rest.startswith(name) else rest


CHECKS: dict[str, dict] = {}  # part -> {group: check function}


def check(part, group):
    def register(fn):
        CHECKS.setdefault(part, {})[group] = fn
        return fn
    return register


def _unchanged(ctx, function, case, names):
    ok = True
    for name in names:
        got = ctx.theirs[case].get(f"{name}_after")
        if got is None or got.shape != ctx.inputs[case][name].shape or not np.array_equal(got, ctx.inputs[case][name]):
            ctx.say(f"{function}: it overwrote its input {name}; compute into new arrays (or the output buffers) "
                    "instead of updating an argument in place")
            ok = False
    return ok


# --------------------------------------------------------------------------- lstm

@check("lstm:cell_forward", "values")
def _(ctx):
    for case in ("small", "one", "saturated"):
        if ctx.ran("cell_forward", case):
            N, H = ctx.inputs[case]["prev_c"].shape
            for field in ("next_c", "tanh_c", "next_h"):
                ctx.close("cell_forward", f"{field} (N={N}, H={H})", case, field)


@check("lstm:cell_forward", "float32")
def _(ctx):
    if ctx.ran("cell_forward", "float32"):
        for field in ("next_c", "next_h"):
            ctx.close("cell_forward", f"{field} in float32", case="float32", field=field, dtype="float32")


@check("lstm:cell_forward", "inputs")
def _(ctx):
    for case in probes.CELL_FORWARD_CASES:
        if ctx.ran("cell_forward", case):
            _unchanged(ctx, "cell_forward", case, ("gates", "prev_c"))


GATES = ("da_i", "da_f", "da_o", "da_g")


@check("lstm:cell_backward", "gradients")
def _(ctx):
    for case in probes.CELL_BACKWARD_CASES:
        if not ctx.ran("cell_backward", case):
            continue
        N, H = ctx.inputs[case]["prev_c"].shape
        got, ref = ctx.theirs[case], ctx.ref[case]
        wrong, worst, worst_name = [], None, None
        pieces = [(g, ("dgates", slice(k * H, (k + 1) * H))) for k, g in enumerate(GATES)] + [("dprev_c", ("dprev_c", None))]
        for name, (field, cols) in pieces:
            mine, want = got.get(field), ref[field]
            if mine is not None and cols is not None and np.shape(mine) == want.shape:
                mine, want = mine[:, cols], want[:, cols]
            elif cols is not None:
                want = want[:, cols]
            msg = compare("cell_backward", f"gradient {name}", mine, want)
            if msg:
                wrong.append(name)
                worst, worst_name = worst or msg, worst_name or name
        if wrong:
            ctx.say(f"cell_backward: wrong gradient {', '.join(wrong)} (N={N}, H={H}); " + _detail(worst, worst_name))


@check("lstm:cell_backward", "inputs")
def _(ctx):
    for case in probes.CELL_BACKWARD_CASES:
        if ctx.ran("cell_backward", case):
            _unchanged(ctx, "cell_backward", case, ("dh", "dc", "gates", "prev_c", "tanh_c"))


def _sizes(ctx, case, *fields):
    return ", ".join(f"{f}{ctx.inputs[case][f].shape}" for f in fields)


@check("lstm:step", "forward")
def _(ctx):
    for case in ("small", "one", "wide"):
        if ctx.ran("lstm_step_forward", case):
            for field in ("next_h", "next_c"):
                ctx.close("lstm_step_forward", f"{field} ({_sizes(ctx, case, 'x', 'prev_h')})", case, field)


def _grads(ctx, function, case, names, note="", dtype=None):
    wrong, worst = [], None
    for name in names:
        msg = compare(function, name, ctx.theirs[case].get(name), ctx.ref[case][name], dtype=dtype)
        if msg:
            wrong.append(name)
            worst = worst or (msg, name)
    if wrong:
        ctx.say(f"{function}: wrong gradient {', '.join(wrong)}{note}; " + _detail(*worst))
    return not wrong


@check("lstm:step", "backward")
def _(ctx):
    for case in ("small", "one", "wide"):
        if ctx.ran("lstm_step_forward / lstm_step_backward", case):
            _grads(ctx, "lstm_step_backward", case, probes.STEP_GRADS, f" ({_sizes(ctx, case, 'x', 'prev_h')})")


@check("lstm:step", "float32")
def _(ctx):
    if ctx.ran("lstm_step_forward / lstm_step_backward", "float32"):
        for field in ("next_h", "next_c"):
            ctx.close("lstm_step_forward", f"{field} in float32", "float32", field, dtype="float32")
        _grads(ctx, "lstm_step_backward", "float32", probes.STEP_GRADS, " in float32", dtype="float32")
        _unchanged(ctx, "lstm_step_forward / lstm_step_backward", "float32",
                   ("x", "prev_h", "prev_c", "Wx", "Wh", "b", "dnext_h", "dnext_c"))


SEQ_F64 = ("small", "one", "masked", "no_c0")


def _seq_note(ctx, case):
    note = _sizes(ctx, case, "x", "h0")
    if "h_masks" in ctx.inputs[case]:
        note += ", with h_masks"
    if "c0" not in ctx.inputs[case]:
        note += ", c0=None (must default to zeros)"
    return note


@check("lstm:sequence_forward", "forward")
def _(ctx):
    for case in SEQ_F64:
        if ctx.ran("lstm_forward", case):
            for field in ("h", "final_h", "final_c"):
                ctx.close("lstm_forward", f"{field} ({_seq_note(ctx, case)})", case, field)


@check("lstm:sequence_forward", "cache")
def _(ctx):
    for case in SEQ_F64:
        if ctx.ran("lstm_forward", case):
            if not _grads(ctx, "lstm_forward", case, probes.SEQUENCE_GRADS, f" ({_seq_note(ctx, case)})"):
                ctx.say("lstm_forward: the cache is wrong: the reference lstm_backward computed wrong gradients "
                        "from it; it must hold what LSTMCache's docstring lists (gates after their "
                        "nonlinearities, h, c, tanh_c for every step, and h_in, the masked h_{t-1})")


@check("lstm:sequence_forward", "inputs")
def _(ctx):
    for case in SEQ_F64:
        if ctx.ran("lstm_forward", case):
            _unchanged(ctx, "lstm_forward", case, [k for k in ("x", "h0", "c0", "Wx", "Wh", "b", "h_masks")
                                                    if k in ctx.inputs[case]])


@check("lstm:sequence_backward", "gradients")
def _(ctx):
    for case in SEQ_F64:
        if ctx.ran("lstm_backward", case):
            _grads(ctx, "lstm_backward", case, probes.SEQUENCE_GRADS, f" ({_seq_note(ctx, case)})")


@check("lstm:sequence_backward", "final_state")
def _(ctx):
    if ctx.ran("lstm_backward", "final"):
        _grads(ctx, "lstm_backward", "final", probes.SEQUENCE_GRADS,
               " with dh_final and dc_final, the gradients reaching the last step's h and c from outside the chunk")


@check("lstm:sequence_backward", "float32")
def _(ctx):
    if ctx.ran("lstm_backward", "float32"):
        _grads(ctx, "lstm_backward", "float32", probes.SEQUENCE_GRADS, " in float32", dtype="float32")
        _unchanged(ctx, "lstm_backward", "float32", ("dh",))


# --------------------------------------------------------------------------- dropout

@check("dropout:operator", "mask")
def _(ctx):
    for case, (p, dtype) in probes.MASK_CASES.items():
        if not ctx.ran("dropout_mask", case):
            continue
        mask, again = ctx.theirs[case].get("mask"), ctx.theirs[case].get("again")
        if mask is None or mask.shape != probes.MASK_SHAPE:
            ctx.say(f"dropout_mask: the mask has shape {getattr(mask, 'shape', None)}, expected {probes.MASK_SHAPE}")
            continue
        if mask.dtype != np.dtype(dtype):
            ctx.say(f"dropout_mask: asked for {dtype}, got {mask.dtype}")
            continue
        kept_value = 1.0 / (1.0 - p)
        values = mask.astype(np.float64)
        odd = ~((values == 0) | np.isclose(values, kept_value, rtol=1e-6))
        if odd.any():
            ctx.say(f"dropout_mask: with p = {p} every value must be 0 or 1/(1-p) = {kept_value:.4f} (inverted "
                    f"dropout), found {values[odd].flat[0]:.4f}")
            continue
        kept = float((values > 0).mean())
        if abs(kept - (1 - p)) > 0.015:
            ctx.say(f"dropout_mask: kept {kept:.3f} of the units with p = {p}, expected about {1 - p:.2f} "
                    "(keep each unit with probability 1 - p)")
        if again is None or not np.array_equal(again, mask):
            ctx.say("dropout_mask: the same seed gave two different masks; draw only from rng")
    if ctx.ran("dropout_mask", "steps"):
        a, b = ctx.theirs["steps"].get("mask"), ctx.theirs["steps"].get("second")
        if a is None or a.shape != (4, 6, 8):
            ctx.say("dropout_mask: the mask for shape (4, 6, 8) has the wrong shape")
        elif any(np.array_equal(a[:, t], a[:, 0]) for t in range(1, 6)):
            ctx.say("dropout_mask: time steps 0 and t share one mask; draw an independent value for every "
                    "element of shape (the paper uses a fresh mask per step)")
        elif b is None or np.array_equal(a, b):
            ctx.say("dropout_mask: two calls with one generator gave the same mask")


@check("dropout:operator", "forward_backward")
def _(ctx):
    if ctx.ran("dropout_forward", "given"):
        ctx.close("dropout_forward", "the output with a given mask (x * mask)", "given", "out")
        ctx.close("dropout_backward", "the gradient (dout * mask)", "given", "dx")
        _unchanged(ctx, "dropout_forward", "given", ("x",))
    if ctx.ran("dropout_forward", "drawn"):
        got, inp = ctx.theirs["drawn"], ctx.inputs["drawn"]
        mask = got.get("mask")
        if mask is None or mask.shape != inp["x"].shape:
            ctx.say("dropout_forward: cache.mask must be the mask drawn, of x's shape")
        else:
            kept = 1.0 / (1.0 - 0.4)
            if not np.all((mask == 0) | np.isclose(mask, kept)):
                ctx.say("dropout_forward: the drawn mask must hold 0 and 1/(1-p); draw it with dropout_mask")
            ctx.close("dropout_forward", "the output with a drawn mask (x * cache.mask)", "drawn", "out",
                      ref=inp["x"] * mask)
            ctx.close("dropout_backward", "the gradient with a drawn mask", "drawn", "dx", ref=inp["dout"] * mask)
    if ctx.ran("dropout_forward", "identity"):
        got, inp = ctx.theirs["identity"], ctx.inputs["identity"]
        ctx.close("dropout_forward", "the output in evaluation (train=False is the identity)", "identity", "eval",
                  ref=inp["x"])
        ctx.close("dropout_backward", "the gradient after evaluation (the identity)", "identity", "eval_dx",
                  ref=inp["dout"])
        ctx.close("dropout_forward", "the output with p = 0 (the identity)", "identity", "p0", ref=inp["x"])
        for field, what in (("eval_mask_none", "in evaluation"), ("p0_mask_none", "with p = 0")):
            if not bool(got.get(field, False)):
                ctx.say(f"dropout_forward: {what} D is the identity: return DropoutCache(None)")


@check("dropout:operator", "errors")
def _(ctx):
    if ctx.ran("dropout_forward", "errors"):
        got = ctx.theirs["errors"]
        if not bool(got.get("no_rng_raises", False)):
            ctx.say("dropout_forward: in training with neither rng nor mask it must raise ValueError "
                    "(say so, do not guess)")
        if not bool(got.get("bad_mask_raises", False)):
            ctx.say("dropout_forward: a mask whose shape is not x's must raise ValueError")


def _placement(ctx, cases):
    for case in cases:
        mode, L = probes.PLACEMENT_CASES[case]
        what = f"dropout_mode={mode!r}, {L} layer{'s' if L > 1 else ''}"
        if not ctx.ran("LSTMStack.forward", case):
            continue
        got, ref = ctx.theirs[case], ctx.ref[case]
        if "masks_used" in ref:
            used = sorted(str(x) for x in np.atleast_1d(got.get("masks_used", np.array([], dtype=str))))
            want = sorted(str(x) for x in np.atleast_1d(ref["masks_used"]))
            if used != want:
                ctx.say(f"LSTMStack.forward: ({what}) the masks used were {used or 'none'}, expected "
                        f"{want or 'none'}: apply the given masks with self._mask, and take rec{{l}} from self._get_mask")
            for name in want:
                mine, given = got.get(f"used.{name}"), ctx.inputs[case].get(f"mask.{name}")
                if name in used and given is not None and (mine is None or mine.shape != given.shape
                                                           or not np.array_equal(mine, given)):
                    ctx.say(f"LSTMStack.forward: ({what}) the given mask {name} was not the one used; "
                            f"use masks[{name!r}] when given (self._get_mask does it)")
        if not ctx.close("LSTMStack.forward", f"training loss ({what}, the same masks)", case, "loss"):
            continue
        names = sorted(k for k in ref if k.startswith("grad."))
        wrong = [n[5:] for n in names if compare("", "", got.get(n), ref[n]) is not None]
        if wrong:
            worst = compare("LSTMStack.backward", f"gradient {wrong[-1]}", got.get(f"grad.{wrong[-1]}"),
                            ref[f"grad.{wrong[-1]}"])
            ctx.say(f"LSTMStack.backward: wrong gradient {', '.join(wrong)} ({what}); "
                    + _detail(worst, wrong[-1]) + ". Go back through every D the forward applied, with its mask")


@check("dropout:placement", "zaremba")
def _(ctx):
    _placement(ctx, ("zaremba1", "zaremba2", "zaremba3"))


@check("dropout:placement", "recurrent")
def _(ctx):
    _placement(ctx, ("recurrent1", "recurrent2"))


@check("dropout:placement", "none_and_eval")
def _(ctx):
    _placement(ctx, ("none",))
    if ctx.ran("LSTMStack.forward", "eval"):
        ctx.close("LSTMStack.forward", "loss in evaluation (train=False: no dropout)", "eval", "loss")


_SEQ, _MASK, _BCAST = "LSTMStack._get_mask", "LSTMStack._get_mask", "broadcast_over_time"


def _sequence_mask_problem(m, N, H, T, p):
    """What is wrong with one drawn per-sequence mask (None: nothing)."""
    if m is None:
        return "was not recorded in used (the masks of a training forward)"
    if m.shape != (N, 1, H):
        if m.shape == (N, T, H):
            return (f"has shape {m.shape}: a fresh mask for every time step (that is zaremba's D); variational "
                    f"dropout draws one (N, 1, H) = {(N, 1, H)} mask per sequence and shares it over the T steps")
        return f"has shape {m.shape}, expected (N, 1, H) = {(N, 1, H)}: one mask per sequence"
    kept_value = 1.0 / (1.0 - p)
    values = m.astype(np.float64)
    odd = ~((values == 0) | np.isclose(values, kept_value, rtol=1e-6))
    if odd.any():
        return (f"holds {values[odd].flat[0]:.4f}: with p = {p} every value must be 0 or 1/(1-p) = "
                f"{kept_value:.4f} (inverted dropout, draw it with dropout_mask)")
    if all(np.array_equal(m[0], m[n]) for n in range(1, N)):
        return "is the same for every sequence of the batch: draw one mask per sequence (shape (N, 1, H)), not one in all"
    return None


@check("dropout:variational", "per_sequence")
def _(ctx):
    if not ctx.ran(_MASK, "drawn"):
        return
    L, N, T, p = probes.VARIATIONAL_CASES["drawn"]
    H = probes.VARIATIONAL_SIZES["H"]
    got = ctx.theirs["drawn"]
    names = probes._mask_names("variational", L)
    used = sorted(str(x) for x in np.atleast_1d(got.get("masks_used", np.array([], dtype=str))))
    if used != sorted(names):
        ctx.say(f"{_MASK}: the masks recorded in used were {used or 'none'}, expected {sorted(names)}: "
                "record every mask, used[name] = the mask")
    # every mask comes from _get_mask (rec{l} straight, drop{l} through _mask): blame it
    bad_rec = False
    for name in sorted(names, key=lambda n: not n.startswith("rec")):  # rec{l} first: they tell whom to blame
        problem = _sequence_mask_problem(got.get(f"used.{name}"), N, H, T, p)
        if problem is None:
            continue
        if name.startswith("rec"):
            bad_rec = True
            ctx.say(f"{_SEQ}: the mask {name} (h(t-1) of layer {name[3:]}) {problem}")
        elif not bad_rec:
            ctx.say(f"{_MASK}: the mask {name} {problem}")
    masks = [got.get(f"used.{n}") for n in names]
    if all(m is not None and m.shape == (N, 1, H) for m in masks):
        kept = float(np.mean([(m > 0).mean() for m in masks]))
        if abs(kept - (1 - p)) > 0.025:
            ctx.say(f"{_SEQ}: kept {kept:.3f} of the units with p = {p}, expected about {1 - p:.2f} "
                    "(keep each unit with probability 1 - p: dropout_mask does it)")
        if any(not np.array_equal(got.get(f"again.{n}", np.zeros(0)), m) for n, m in zip(names, masks)):
            ctx.say(f"{_SEQ}: the same seed gave different masks; draw only from rng")
        # lstm_forward (given code) shares rec{l} over time with broadcast_over_time; drop{l} is applied by _mask
        wrong = [n for n, m in zip(names, masks) if got.get(f"applied.{n}") is None
                 or got[f"applied.{n}"].shape != (N, T, H)
                 or not np.array_equal(got[f"applied.{n}"], np.broadcast_to(m, (N, T, H)))]
        for name in wrong[:1]:
            shape = getattr(got.get(f"applied.{name}"), "shape", None)
            if any(n.startswith("rec") for n in wrong):
                ctx.say(f"{_BCAST}: the mask {name} as applied (shape {shape}) is not the (N, 1, H) mask at every "
                        f"one of the T = {T} steps: return broadcast_to(mask, shape) for an (N, 1, H) mask")
            else:
                ctx.say(f"{_MASK}: the mask {name} as applied (dropout_forward's cache.mask, shape {shape}) is not "
                        f"the sequence's (N, 1, H) mask at every one of the T = {T} steps: apply the mask recorded "
                        "in used[name] with dropout_forward(x, p, train=True, mask=...)")


def _variational_given(ctx, case):
    """Whether the case ran; says when the given masks were not the ones used."""
    L = probes.VARIATIONAL_CASES[case][0]
    if not ctx.ran(_MASK, case):
        return False
    got = ctx.theirs[case]
    for name in probes._mask_names("variational", L):
        mine, given = got.get(f"used.{name}"), ctx.inputs[case][f"mask.{name}"]
        if mine is None or mine.shape != given.shape or not np.array_equal(mine, given):
            fn = _SEQ if name.startswith("rec") or not np.array_equal(got.get("used.rec1", np.zeros(0)),
                                                                        ctx.inputs[case]["mask.rec1"]) else _MASK
            ctx.say(f"{fn}: ({L} layer{'s' if L > 1 else ''}) the given mask {name} was not the one used; use "
                    f"masks[{name!r}] when given")
    return True


@check("dropout:variational", "forward")
def _(ctx):
    shared = False
    if ctx.ran(_BCAST, "broadcast"):
        inp = ctx.inputs["broadcast"]
        shared = ctx.close(_BCAST, "view of an (N, 1, H) mask over (N, T, H) (the same mask at every step)",
                           "broadcast", "view", ref=np.broadcast_to(inp["mask"], inp["x"].shape))
        ctx.close(_BCAST, "result for a mask already of shape (N, T, H) (return it unchanged)", "broadcast", "full",
                  ref=inp["full"])
    fn = _MASK if shared else _BCAST  # a wrong view makes every loss wrong: name the cause
    for case in ("given1", "given2"):
        if not _variational_given(ctx, case):
            continue
        L = probes.VARIATIONAL_CASES[case][0]
        what = f"dropout_mode='variational', {L} layer{'s' if L > 1 else ''}, the same (N, 1, H) masks"
        ctx.close(fn, f"training loss ({what})", case, "loss")
        ctx.close(fn, f"final state h ({what})", case, "state_h")
        ctx.close(fn, f"final state c ({what})", case, "state_c")


@check("dropout:variational", "backward")
def _(ctx):
    inp = ctx.inputs["broadcast"]
    shared = ctx.ran(_BCAST, "broadcast") and compare(
        _BCAST, "", ctx.theirs["broadcast"].get("view"), np.broadcast_to(inp["mask"], inp["x"].shape)) is None
    for case in ("given1", "given2"):
        if not ctx.ran(_MASK, case):
            continue
        L = probes.VARIATIONAL_CASES[case][0]
        got, ref = ctx.theirs[case], ctx.ref[case]
        names = sorted(k for k in ref if k.startswith("grad."))
        wrong = [n[5:] for n in names if compare("", "", got.get(n), ref[n]) is not None]
        if wrong:
            worst = compare(_MASK, f"gradient {wrong[-1]}", got.get(f"grad.{wrong[-1]}"), ref[f"grad.{wrong[-1]}"])
            fix = (f"The backward goes back through the cache {_MASK} returns: apply the mask with "
                   "dropout_forward, so that its cache holds the mask as applied") if shared else \
                  (f"{_BCAST} gives a wrong view of the (N, 1, H) mask, and the backward multiplies by the same "
                   "view: fix it first")
            ctx.say(f"{_MASK if shared else _BCAST}: wrong gradient {', '.join(wrong)} (dropout_mode='variational', "
                    f"{L} layer{'s' if L > 1 else ''}, given masks); " + _detail(worst, wrong[-1]) + ". " + fix)


# --------------------------------------------------------------------------- training

def _evaluate(ctx, case):
    n, batch, steps, dropout = probes.EVALUATE_CASES[case]
    what = f"{n} words, batch_size={batch}, num_steps={steps}" + (f", a model with dropout {dropout}" if dropout else "")
    if not ctx.ran("evaluate", case):
        return
    got, ref = ctx.theirs[case], ctx.ref[case]
    if compare("", "", got.get("tokens"), ref["tokens"]) is not None:
        ctx.say(f"evaluate: ({what}) counted {got.get('tokens')} predicted words, expected {int(ref['tokens'])}: "
                "every word of every stream after its first is predicted once")
        return
    nll, want = got.get("nll"), float(ref["nll"])
    if nll is None or compare("", "", nll, ref["nll"], tol=1e-9) is not None:
        hint = ""
        if nll is not None and batch > 1 and math.isclose(float(nll) * batch, want, rel_tol=1e-6):
            hint = ": model.forward's loss is averaged over the N streams; multiply it by N to sum the NLL"
        elif dropout:
            hint = ": evaluate with dropout off (train=False) and carry the state from chunk to chunk"
        else:
            hint = ": carry the state from chunk to chunk, dropout off, sum the NLL of every word"
        ctx.say(f"evaluate: ({what}) total NLL {float(nll) if nll is not None else None}, expected {want:.6f}{hint}")
        return
    ctx.close("evaluate", f"perplexity ({what}): exp(nll / words)", case, "perplexity", tol=1e-9)


@check("training:evaluate", "stream")
def _(ctx):
    for case in ("stream", "batched", "long_chunks"):
        _evaluate(ctx, case)


@check("training:evaluate", "dropout_off")
def _(ctx):
    _evaluate(ctx, "dropout_model")


def _loop(ctx, case):
    steps, dropout, max_norm, lr = probes.LOOP_CASES[case]
    what = f"{steps} step{'s' if steps > 1 else ''}" + (f", dropout {dropout}" if dropout else "") + \
        f", max_grad_norm {max_norm}, lr {lr}"
    if not ctx.ran("train_step", case):
        return
    got, ref = ctx.theirs[case], ctx.ref[case]
    if compare("", "", got.get("gnorms"), ref["gnorms"], tol=1e-9) is not None:
        ctx.say(f"train_step: ({what}) returned gradient norms {np.round(got.get('gnorms', []), 6).tolist()}, "
                f"expected {np.round(ref['gnorms'], 6).tolist()}: gnorm is the global norm *before* clipping "
                "(what clip_global_norm_ returns)")
    if compare("", "", got.get("losses"), ref["losses"], tol=1e-9) is not None:
        ctx.say(f"train_step: ({what}) returned losses {np.round(got.get('losses', []), 6).tolist()}, expected "
                f"{np.round(ref['losses'], 6).tolist()}: forward this chunk from the state the previous chunk "
                "returned, dropout on")
    wrong = [k[6:] for k in sorted(ref) if k.startswith("param.") and compare("", "", got.get(k), ref[k], tol=1e-9)]
    if wrong:
        ctx.say(f"train_step: ({what}) the weights after the step{'s' if steps > 1 else ''} differ from one step "
                f"of truncated BPTT (in {', '.join(wrong)}): backward, clip the global norm to max_grad_norm "
                "(clip_global_norm_), then the SGD step with lr (sgd_step_)")
    for field in ("state_h", "state_c"):
        if compare("", "", got.get(field), ref[field], tol=1e-9) is not None:
            ctx.say(f"train_step: ({what}) the returned state is wrong: return the state model.forward returned, "
                    "to carry into the next chunk")
            break


@check("training:loop", "one_step")
def _(ctx):
    _loop(ctx, "one_step")


@check("training:loop", "carried")
def _(ctx):
    _loop(ctx, "carried")


@check("training:loop", "clipped")
def _(ctx):
    _loop(ctx, "clipped")


# --------------------------------------------------------------------------- translation

_SM_F, _SM_B = "softmax_cross_entropy_forward", "softmax_cross_entropy_backward"
MASKED_F64 = ("tokens", "rows", "sentences")


def _masked_what(case):
    shape, V, dtype, normalizer, kind = probes.MASKED_CASES[case.partition(".")[0]]
    what = f"scores {tuple(shape) + (V,)} {dtype}, normalizer {normalizer if normalizer else 'N (the default)'}"
    return what + (", weight 1 on the target words only" if kind == "target_only" else "")


def _token_nll(inp):
    """-log p(y) of every token (float64, the grader's own), and the weights, both of y's shape."""
    s = inp["scores"].astype(np.float64)
    s = s - s.max(axis=-1, keepdims=True)
    lp = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(lp, inp["y"][..., None], axis=-1)[..., 0], inp["weights"].astype(np.float64)


def _masked_forward(ctx, case):
    if not ctx.ran(_SM_F, case):
        return
    what = _masked_what(case)
    got, want = ctx.theirs[case].get("loss"), float(ctx.ref[case]["loss"])
    tol = TOL[str(ctx.inputs[case]["scores"].dtype)]
    if compare(_SM_F, "loss", got, ctx.ref[case]["loss"], tol=tol) is not None:
        inp = ctx.inputs[case]
        nll, w = _token_nll(inp)
        normalizer = probes.MASKED_CASES[case][3] or inp["y"].shape[0]
        mine = float(got) if got is not None and got.dtype.kind in "fiub" and got.size == 1 else None
        if mine is not None and math.isclose(mine, float(nll.sum()) / normalizer, rel_tol=tol):
            why = ("that is the unweighted loss: multiply each token's -log p by its weight before the sum "
                   "(weight 0: the token adds nothing)")
        elif mine is not None and w.sum() > 0 and math.isclose(mine, float((w * nll).sum() / w.sum()), rel_tol=tol):
            why = ("that is the weighted sum divided by the sum of the weights: the weights only multiply the "
                   "tokens' -log p; the sum is divided by normalizer as before")
        else:
            why = "expected sum over tokens of weight * -log p(y), divided by normalizer"
        yours = f"{mine:.6f}" if mine is not None else f"of shape {getattr(got, 'shape', None)}"
        ctx.say(f"{_SM_F}: ({what}) the weighted loss is {yours}, expected {want:.6f}: {why}")
    _unchanged(ctx, _SM_F, case, ("scores", "weights"))


def _masked_backward(ctx, case):
    if not ctx.ran(_SM_B, case):
        return
    what = _masked_what(case)
    inp, got = ctx.inputs[case], ctx.theirs[case].get("dscores")
    want = ctx.ref[case]["dscores"]
    dtype = str(inp["scores"].dtype)
    if got is not None and got.shape == want.shape and got.dtype.kind == "f":
        zero = inp["weights"] == 0
        bad = zero & np.any(got != 0, axis=-1)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            ctx.say(f"{_SM_B}: ({what}) the gradient of a token with weight 0 must be 0: {int(bad.sum())} of the "
                    f"{int(zero.sum())} rows of weight-0 tokens are not (first at token {at}); scale each row of "
                    "dscores by its token's weight")
            return
    msg = compare(_SM_B, f"gradient dscores ({what})", got, want, dtype=dtype)
    if msg is not None and got is not None and got.shape == want.shape:
        w = inp["weights"].astype(np.float64)[..., None]
        unweighted = np.divide(want, w, out=np.zeros_like(want, dtype=np.float64), where=w != 0)
        if compare("", "", got[np.broadcast_to(w != 0, got.shape)],
                   unweighted[np.broadcast_to(w != 0, got.shape)], tol=TOL[dtype]) is None and \
                not np.allclose(w[w != 0], 1.0):
            msg += ". The rows of weighted tokens are the unweighted gradient: multiply each row by its weight"
    ctx.say(msg)
    _unchanged(ctx, _SM_B, case, ("weights",))


@check("translation:masked_loss", "forward")
def _(ctx):
    for case in MASKED_F64 + ("float32",):
        _masked_forward(ctx, case)


@check("translation:masked_loss", "backward")
def _(ctx):
    for case in MASKED_F64 + ("float32",):
        _masked_backward(ctx, f"{case}.grad")


@check("translation:masked_loss", "ones")
def _(ctx):
    if not ctx.ran(f"{_SM_F} / {_SM_B}", "ones"):
        return
    what = _masked_what("ones")
    ctx.close(_SM_F, f"loss with weights of all ones ({what}; it must equal the plain loss)", "ones", "loss",
              ref=ctx.ref["ones"]["plain_loss"])
    ctx.close(_SM_B, f"gradient with weights of all ones ({what}; it must equal the plain gradient)", "ones",
              "dscores", ref=ctx.ref["ones"]["plain_dscores"])


_GD = "greedy_decode"


def _decoded(fields, prefix=""):
    """The N lists of ids of a greedy_decode result sent back as (tokens, lengths); None if malformed."""
    tokens, lengths = fields.get(f"{prefix}tokens"), fields.get(f"{prefix}lengths")
    if tokens is None or lengths is None or tokens.ndim != 1 or lengths.ndim != 1 or lengths.sum() != tokens.size \
            or (lengths < 0).any():
        return None
    return [s.tolist() for s in np.split(tokens, np.cumsum(lengths)[:-1])] if lengths.size else []


def _ids(seq, limit=12):
    return "[" + ", ".join(map(str, seq[:limit])) + (", ...]" if len(seq) > limit else "]")


def _limits(inp):
    lengths = inp["src_len"].astype(int)
    if "max_len" in inp:
        return [int(inp["max_len"])] * len(lengths), f"max_len={int(inp['max_len'])}"
    return [2 * s + 10 for s in lengths], "max_len=None: 2 S + 10 for a source of S words"


def _sentence_problem(mine, want, eos, limit):
    """Why one decoded sentence differs from the reference's (None: it does not)."""
    if mine == want:
        return None
    if mine == want + [eos]:
        return f"it ends with <eos> (id {eos}): leave <eos> out of the returned words"
    if len(mine) > limit:
        return (f"it has {len(mine)} words, more than its limit of {limit} token{'s' if limit != 1 else ''}: a "
                "sentence is done at its limit-th token (<eos> counted)")
    if len(want) < limit and mine[:len(want)] == want:
        return (f"it goes on after the <eos> (id {eos}) the model chose as word {len(want) + 1}: a sentence is "
                "done when it emits <eos>")
    if len(want) == limit and mine == want[:len(mine)]:
        return (f"it stops after {len(mine)} words; without <eos> a sentence gets its limit of {limit} tokens: "
                "stop at the limit-th token, not before")
    k = next((i for i, (a, b) in enumerate(zip(mine, want)) if a != b), min(len(mine), len(want)))
    return f"the words differ from word {k + 1} on"


def _greedy(ctx, case, what):
    """True when every sentence of ``case`` is the reference's; otherwise says what is wrong with the first."""
    if not ctx.ran(_GD, case):
        return False
    inp = ctx.inputs[case]
    mine, want = _decoded(ctx.theirs[case]), _decoded(ctx.ref[case])
    if mine is None or len(mine) != len(want):
        ctx.say(f"{_GD}: ({what}) it must return a list of {len(want)} lists of target ids, one per source")
        return False
    limits, rule = _limits(inp)
    eos = int(inp["eos"])
    wrong = [n for n in range(len(want)) if mine[n] != want[n]]
    if not wrong:
        return True
    n = wrong[0]
    why = _sentence_problem(mine[n], want[n], eos, limits[n])
    if case == "ties" and why.startswith("the words differ"):
        why += ("; several words share the largest log-prob in this model: take the lowest id (np.argmax does; "
                "_top_k(lp, 1) too)")
    if case == "batched" and why.startswith("the words differ"):
        alone = _decoded(ctx.theirs[case], "alone.")
        if alone is not None and len(alone) == len(want) and alone[n] == want[n]:
            why += (f"; decoded alone, your code gets sentence {n} right: in the batch the rows got mixed up. When "
                    "sentences finish, drop their rows from every array of the state (axis 1) and from active "
                    "alike, and feed each remaining row its own word")
    S = int(inp["src_len"][n])
    ctx.say(f"{_GD}: ({what}, {rule}) sentence {n} of {len(want)} (source of {S} word{'s' if S != 1 else ''}) "
            f"is {_ids(mine[n])}, expected {_ids(want[n])}: {why}"
            + (f" ({len(wrong) - 1} more sentence{'s' if len(wrong) > 2 else ''} wrong)" if len(wrong) > 1 else ""))
    return False


@check("translation:greedy", "eos")
def _(ctx):
    _greedy(ctx, "eos_one", "one sentence that ends with <eos>")
    _greedy(ctx, "eos_batch", "a batch of sentences that all end with <eos>")
    _greedy(ctx, "ties", "a model with ties, every sentence ending with <eos>")


@check("translation:greedy", "max_len")
def _(ctx):
    _greedy(ctx, "cut_given", "a model that never emits <eos>")
    _greedy(ctx, "cut_default", "a model that never emits <eos>")
    _greedy(ctx, "cut_one", "a model that never emits <eos>")


@check("translation:greedy", "batched")
def _(ctx):
    N = probes.GREEDY_CASES["batched"][0]
    if _greedy(ctx, "batched", f"{N} sentences, some ending with <eos>, some cut at their limit, at different steps"):
        got, ref = ctx.theirs["batched"], ctx.ref["batched"]
        calls, rows = got.get("step_calls"), got.get("step_rows")
        if calls is None or rows is None or calls.size != 1 or rows.size != 1:
            ctx.say(f"{_GD}: no record of the model.step calls came back")
        elif int(calls) > int(ref["step_calls"]):
            ctx.say(f"{_GD}: model.step was called {int(calls)} times where {int(ref['step_calls'])} suffice (one "
                    "per time step after model.start, the longest sentence's words - 1): advance all the sentences "
                    "still decoding together, one model.step per time step")
        elif int(rows) > int(ref["step_rows"]):
            ctx.say(f"{_GD}: model.step stepped {int(rows)} rows in all where {int(ref['step_rows'])} suffice: a "
                    "sentence leaves the batch once it emitted <eos> or its last token (drop its row from the "
                    "state and from active)")


@check("translation:greedy", "model")
def _(ctx):
    N = probes.TRANSLATION_SIZES["N"]
    _greedy(ctx, "model", f"a random TranslationModel, {N} sources of 1 to 5 words")
    _greedy(ctx, "model_cut", f"a random TranslationModel, {N} sources of 1 to 5 words")


def judge(part_key: str, inputs: dict, ref: dict, theirs: dict) -> dict:
    """{group name: [messages]} (an empty list: the group passes)."""
    split = probes._split
    ins, rs, th = split(inputs), split(ref), split(theirs)
    out = {}
    for group, fn in CHECKS[part_key].items():
        ctx = Ctx(ins, rs, th)
        fn(ctx)
        out[group] = ctx.messages
    return out


def judge_group(part_key: str, group: str, inputs: dict, ref: dict, theirs: dict) -> list:
    """The messages of one group (an empty list: it passes)."""
    split = probes._split
    ctx = Ctx(split(inputs), split(ref), split(theirs))
    CHECKS[part_key][group](ctx)
    return ctx.messages
