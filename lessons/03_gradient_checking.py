# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 3: gradient checking, and how it can fool you
#
# **What you will learn**
#
# * the centred difference and its higher-order cousins (orders 2, 4, 6), and
#   why the step size `h` has a *best* value: the V-shaped trade-off between
#   truncation error (big `h`) and rounding error (small `h`);
# * the relative error `|a - n| / max(|a| + |n|, floor)` and what values to expect;
# * why checks run in **float64** (float32 cannot pass, whatever `h`);
# * why dropout masks must be **fixed** while checking;
# * what a **kink** (ReLU, `abs`) does to a check;
# * what a **broken** backward pass looks like to the checker.
#
# Everything uses `minilstm.gradcheck`: `numerical_gradient`, `rel_error`,
# `check_op` and `check_model`.

# %%
import numpy as np

from _lesson import banner, pick, plt, save

import minilstm as m
from minilstm import gradcheck

banner("Lesson 3: gradient checking")

# %% [markdown]
# ## Centred differences of order 2, 4 and 6
#
# Taylor-expand `F` around `x` along one coordinate:
# `F(x ± h) = F ± h F' + h^2/2 F'' ± h^3/6 F''' + ...`. Subtracting the two
# cancels every even term:
#
# ```
# order 2:  (F(x+h) - F(x-h)) / 2h                                   = F' + O(h^2)
# order 4:  (8 [F(x+h) - F(x-h)] - [F(x+2h) - F(x-2h)]) / 12h         = F' + O(h^4)
# order 6:  (45 d1 - 9 d2 + d3) / 60h,  dk = F(x+kh) - F(x-kh)       = F' + O(h^6)
# ```
#
# (The one-sided `(F(x+h) - F(x)) / h` keeps the `h^2/2 F''` term: only O(h).)
# Higher orders combine more evaluations so that more error terms cancel
# (Richardson extrapolation).
#
# That is the **truncation** error, and it shrinks with `h`. But `F` is computed
# in floating point, good to about `eps * |F|` (`eps = 2.2e-16` in float64,
# `1.2e-7` in float32). The difference of two nearly equal values keeps that
# absolute error while we divide by `h`: a **rounding** error of about
# `eps * |F| / h`, which *grows* as `h` shrinks. The total error is smallest in
# between. Let us measure it on one LSTM step, whose exact gradient we trust
# after lesson 2.

# %%
rng = np.random.default_rng(0)
N, D, H = 3, 4, 5
x = rng.standard_normal((N, D))
prev_h = rng.standard_normal((N, H))
prev_c = rng.standard_normal((N, H))
Wx = rng.standard_normal((D, 4 * H)) * 0.4
Wh = rng.standard_normal((H, 4 * H)) * 0.4
b = rng.standard_normal(4 * H) * 0.1
dh = rng.standard_normal((N, H))
dc = rng.standard_normal((N, H))

_, _, cache = m.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
dWx_exact = m.lstm_step_backward(dh, dc, cache)[3]   # float64, proved right in lesson 2


DEFAULT_STEPS = {2: 1e-5, 4: 1e-3, 6: 5e-3}   # minilstm.gradcheck's default step h for each order


def make_F(dtype):
    """F = sum(next_h * dh) + sum(next_c * dc), computed entirely in `dtype`.

    Returns F and the copy of Wx that F reads (numerical_gradient perturbs it in place)."""
    args = [a.astype(dtype) for a in (x, prev_h, prev_c, Wx, Wh, b)]
    up_h, up_c = dh.astype(dtype), dc.astype(dtype)

    def F():
        nh, nc, _ = m.lstm_step_forward(*args)
        return float(np.sum(nh * up_h) + np.sum(nc * up_c))

    return F, args[3]


def one_sided(F, W, k, h):
    old = W[k]
    f0 = F()
    W[k] = old + h
    f1 = F()
    W[k] = old
    return (f1 - f0) / h


hs = np.logspace(-12, 0, pick(25, 49))
elements = [(0, 1), (1, 7), (2, 12), (3, 18), (0, 5)]   # a few entries of Wx, one per gate and more


def error_curve(dtype, order=None):
    """Median relative error over `elements` for each h in hs."""
    F, W = make_F(dtype)
    curve = []
    for h in hs:
        errs = []
        for k in elements:
            num = one_sided(F, W, k, h) if order is None else gradcheck.numerical_gradient(F, W, k, h=h,
                                                                                        order=order)
            errs.append(gradcheck.rel_error(dWx_exact[k], num).item())
        curve.append(np.median(errs))
    return np.array(curve)


curves = {f"float64, order {o}": error_curve(np.float64, o) for o in (2, 4, 6)}
curves["float64, one-sided"] = error_curve(np.float64, None)
curves["float32, order 2"] = error_curve(np.float32, 2)
curves["float32, order 6"] = error_curve(np.float32, 6)
for name, curve in curves.items():
    j = int(np.argmin(curve))
    print(f"{name:20s} best h = {hs[j]:.0e}   smallest relative error {curve[j]:.1e}")

# %%
fig, ax = plt.subplots(figsize=(9, 5.5))
styles = {"float64, order 2": ("C0", "-"), "float64, order 4": ("C1", "-"), "float64, order 6": ("C2", "-"),
          "float64, one-sided": ("0.5", ":"), "float32, order 2": ("C3", "--"), "float32, order 6": ("C4", "--")}
for name, curve in curves.items():
    color, ls = styles[name]
    ax.loglog(hs, np.maximum(curve, 1e-16), ls, color=color, marker=".", label=name)
for order, h0 in DEFAULT_STEPS.items():
    ax.axvline(h0, color=styles[f"float64, order {order}"][0], lw=0.8, alpha=0.5)
ax.axhline(gradcheck.DEFAULT_TOL, color="k", lw=1, ls="-.", label=f"minilstm's tolerance {gradcheck.DEFAULT_TOL:g}")
ax.text(1.5e-12, 1.5e-2, "rounding: ~ eps |F| / h\n(slope -1)", fontsize=9)
ax.text(2e-3, 3e-15, "truncation:\n~ h^2, h^4, h^6", fontsize=9)
ax.set_xlabel("step size h")
ax.set_ylabel("relative error of the finite difference")
ax.set_ylim(1e-15, 10)
ax.set_title("Finite-difference error vs step: the V (thin lines: minilstm's default h per order)")
ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 0.08))
ax.grid(alpha=0.3, which="both")
save(fig, "03_error_vs_step")

# %% [markdown]
# Read the V: left of its bottom, rounding dominates and every method has the same
# slope -1 line (it depends on `eps`, not on the order). Right of it, truncation
# takes over with slope 2, 4 or 6 (1 for one-sided). A higher order bends up
# later, so its bottom sits at a larger `h` and *lower*: that is why minilstm
# defaults to order 6 with `h = 5e-3`. The float32 curves never get near the
# tolerance: their rounding arm is ~5x10^8 times higher (the ratio of
# the two `eps`).
#
# **Check.** The best float64 errors are far below the tolerance; float32 never
# reaches it.

# %%
best = {name: curve.min() for name, curve in curves.items()}
assert best["float64, order 6"] < 1e-10, f"order 6 should reach ~1e-12, got {best['float64, order 6']:.1e}"
assert best["float64, order 2"] < 1e-8, f"order 2 should reach ~1e-10, got {best['float64, order 2']:.1e}"
assert best["float32, order 2"] > gradcheck.DEFAULT_TOL, "float32 should not be able to pass a 1e-7 check"
assert best["float64, order 6"] < best["float64, order 2"], "order 6 should beat order 2 at its best step"
print("the V behaves as the theory says")

# %% [markdown]
# ## The relative error
#
# An absolute error means nothing on its own: 1e-6 is superb for a gradient of
# 10 and useless for a gradient of 1e-6. So we compare `|a - n|` with the size of
# the numbers, `|a| + |n|`. A gradient that is exactly zero (an embedding row no
# token used) would give 0/0, so the denominator has a **floor** (1e-4): tiny
# gradients must agree in absolute terms to `floor * tol = 1e-11`.
#
# Rules of thumb, float64: ~1e-10 or below is right; 1e-7 is the limit
# minilstm accepts; 1e-2 or more is a bug. `gradcheck.rel_error` computes it:

# %%
print("rel_error(1.0, 1.0 + 1e-9) =", gradcheck.rel_error(1.0, 1.0 + 1e-9).item())
print("rel_error(1e-6, 2e-6)      =", gradcheck.rel_error(1e-6, 2e-6).item(), " (below the floor: absolute)")
print("rel_error(0.3, 0.4)        =", gradcheck.rel_error(0.3, 0.4).item())

# %% [markdown]
# ## float64, or nothing
#
# `gradcheck` refuses float32 inputs outright, with the reason:

# %%
x32 = {k: v.astype(np.float32) for k, v in dict(x=x, prev_h=prev_h, prev_c=prev_c, Wx=Wx, Wh=Wh, b=b).items()}
try:
    gradcheck.check_op(m.lstm_step_forward, m.lstm_step_backward, x32, ["x", "prev_h", "prev_c", "Wx", "Wh", "b"])
    raise AssertionError("check_op should refuse float32")
except TypeError as exc:
    print("TypeError:", exc)

# %% [markdown]
# and the figure above shows why: float32 keeps ~7 digits, and a finite
# difference cancels most of them. Train in float32, check in float64.
#
# ## Dropout masks must be fixed
#
# A gradient check compares the derivative of **one** function at **one**
# point. A training-mode forward with dropout draws fresh random masks every
# time it runs, so `F(x + h)` and `F(x - h)` are values of *different*
# functions, and their difference is dominated by the change of mask, not by
# `h`. `check_model` therefore draws the masks once and replays them
# (`model.forward(..., masks=cache.masks)`). Watch both ways on a tiny
# two-layer model with dropout 0.5:

# %%
model = m.LSTMLanguageModel(vocab_size=10, hidden_size=6, num_layers=2, dropout=0.5, dtype="float64", seed=0)
tokens = rng.integers(0, 10, (3, 5))
targets = rng.integers(0, 10, (3, 5))

# The right way: check_model fixes the masks.
report = gradcheck.check_model(model, tokens, targets, names=["lstm1.Wh", "lstm2.Wx", "out.W"],
                               max_checks=pick(5, 20))
print(report)
assert report.passed, "with fixed masks the model's gradients should pass"

# The wrong way: every evaluation draws new masks from the model's generator.
loss, cache, _ = model.forward(tokens, targets, train=True)
grads = model.backward(cache)
W = model.params["lstm1.Wh"]


def F_fresh_masks():
    return model.forward(tokens, targets, train=True)[0]   # no masks=: new masks each call


def F_fixed_masks():
    return model.forward(tokens, targets, train=True, masks=cache.masks)[0]


print("\n element      analytic     fixed masks   fresh masks")
errs_fresh, noise = [], []
for k in [(0, 3), (2, 10), (4, 17), (5, 22)]:
    n_fixed = gradcheck.numerical_gradient(F_fixed_masks, W, k)
    n_fresh = gradcheck.numerical_gradient(F_fresh_masks, W, k)
    errs_fresh.append(gradcheck.rel_error(grads["lstm1.Wh"][k], n_fresh).item())
    noise.append(abs(n_fresh / grads["lstm1.Wh"][k]))
    print(f" {str(k):10s} {grads['lstm1.Wh'][k]:+11.4e}  {n_fixed:+11.4e}  {n_fresh:+11.4e}")
print(f"worst relative error with fresh masks: {max(errs_fresh):.2f}")
print(f"the fresh-mask estimates are {min(noise):.0e} to {max(noise):.0e} times the true gradient here")
assert max(errs_fresh) > 1e-3, "fresh masks should break the check"

# %% [markdown]
# With fresh masks the "numerical gradient" is noise of size `|ΔF| / h` with
# `ΔF` the change of loss between two masks: orders of magnitude larger than the
# true gradient (the run prints by how much). Any random operation (dropout, sampling, data shuffling) must be
# frozen while you check.
#
# ## Kinks: where the derivative does not exist
#
# The LSTM is built from `sigm` and `tanh`, smooth everywhere. Many networks are
# not: ReLU `max(0, x)` and `|x|` have a kink at 0. A centred difference straddles
# the kink whenever `x` is closer to it than the stencil's reach (`h` for
# order 2, `3h` for order 6), and then it measures an *average* of the two
# slopes. Here is a ReLU op written in minilstm's style and checked with
# `check_op`: once on inputs away from 0, once with a few inputs near 0.

# %%
def relu_forward(x):
    return np.maximum(x, 0.0), x


def relu_backward(dout, cache):
    return (dout * (cache > 0),)


far = rng.uniform(0.05, 1.0, (4, 5)) * rng.choice([-1.0, 1.0], (4, 5))
near = far.copy()
near[0, :3] = [1e-3, -4e-3, 2e-3]      # closer to the kink than 3h = 1.5e-2

r_far = gradcheck.check_op(relu_forward, relu_backward, {"x": far}, ["x"])
r_near = gradcheck.check_op(relu_forward, relu_backward, {"x": near}, ["x"])
print("away from the kink:", r_far)
print("near the kink:     ", r_near)
assert r_far.passed and not r_near.passed, "the kink should fail the check only when the stencil straddles it"

# %%
xs = np.linspace(-0.03, 0.03, 241)
fig, ax = plt.subplots(figsize=(8, 4))
for order, color in [(2, "C0"), (6, "C2")]:
    hh = DEFAULT_STEPS[order]
    est = []
    for v in xs:
        arr = np.array([v])
        est.append(gradcheck.numerical_gradient(lambda: float(np.abs(arr[0])), arr, (0,), order=order))
    ax.plot(xs, est, color=color, lw=1.5, label=f"order {order} estimate, h = {hh:g}")
    ax.axvspan(-(order // 2) * hh, (order // 2) * hh, color=color, alpha=0.08)
ax.plot(xs, np.sign(xs), "k--", lw=1.5, label="true derivative of |x| (jumps at 0)")
ax.set_xlabel("x")
ax.set_ylabel("d|x|/dx")
ax.set_title("A kink fools the check wherever the stencil (shaded) straddles it")
ax.legend(fontsize=8, loc="upper left")
ax.grid(alpha=0.3)
save(fig, "03_kink")

# %% [markdown]
# The order-6 stencil with `h = 5e-3` reaches 1.5e-2 on each side, so it is
# fooled in a wider band than the order-2 stencil with `h = 1e-5` (invisible at
# this scale). For networks with kinks, check at points away from them, or use a
# small `h` and accept the larger rounding error; an LSTM has no such problem.
#
# ## Break a gradient on purpose
#
# A checker you have never seen fail is a checker you cannot trust. Two classic
# bugs:
#
# 1. inverted dropout whose backward forgets the `1/(1-p)` scale (passes the
#    gradient through the mask's *pattern* `mask != 0` instead of the mask);
# 2. an LSTM step whose backward ignores `dnext_c`, the gradient arriving from
#    the next step's cell state.

# %%
p = 0.5
xd = rng.standard_normal((4, 6))
mask = m.dropout_mask(xd.shape, p, np.random.default_rng(1), np.float64)


def drop_fwd(x):
    return m.dropout_forward(x, p, train=True, mask=mask)   # a fixed mask, as it must be


def drop_bwd_buggy(dout, cache):
    return dout * (cache.mask != 0)                          # BUG: forgot the 1/(1-p) scale


ok = gradcheck.check_op(drop_fwd, m.dropout_backward, {"x": xd}, ["x"])
bad = gradcheck.check_op(drop_fwd, drop_bwd_buggy, {"x": xd}, ["x"])
print("dropout, correct backward:", ok)
print("dropout, buggy backward:  ", bad)
assert ok.passed and not bad.passed, "the checker should catch the missing 1/(1-p)"


def lstm_bwd_buggy(dnext_h, dnext_c, cache):
    return m.lstm_step_backward(dnext_h, np.zeros_like(dnext_c), cache)   # BUG: dropped dnext_c


inputs = dict(x=x, prev_h=prev_h, prev_c=prev_c, Wx=Wx, Wh=Wh, b=b)
bad_lstm = gradcheck.check_op(m.lstm_step_forward, lstm_bwd_buggy, inputs,
                              ["x", "prev_h", "prev_c", "Wx", "Wh", "b"])
print("\nLSTM step, backward ignoring dnext_c:\n" + str(bad_lstm))
assert not bad_lstm.passed, "the checker should catch the missing cell-state gradient"

# %% [markdown]
# The dropout bug gives a relative error of exactly `|1 - 2| / (1 + 2) = 1/3` on
# every kept unit: the analytic gradient is 1, the true one `1/(1-p) = 2`.
# A wrong backward is off by about its own size, orders of magnitude above
# the error of a correct one (both printed above): there is no grey zone to argue about.
#
# ## Try this
#
# 1. Add `gradcheck.check_model(model, tokens, targets, order=2)` and `order=4`:
#    how do the reported errors compare with the default order 6? Then pass
#    `h=1e-8` with `order=2`. Which arm of the V are you on?
# 2. Change the kink demo to `max_checks=` and a large array of random normal
#    inputs. How often does a random input land close enough to 0 to fail?
# 3. Make a bug that `check_op` cannot see: a backward that is right but slow.
#    What does a gradient check *not* tell you?
# 4. In `F_fresh_masks`, pass `rng=m.default_rng(7)` (a fresh generator with the
#    same seed every call). Does the check pass now? Why?
