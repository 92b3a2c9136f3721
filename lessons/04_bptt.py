# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 4: backpropagation through time, truncated, and why we clip
#
# **What you will learn**
#
# * BPTT is nothing but lesson 2's step backward run in reverse over the
#   unrolled sequence, passing `(dh, dc)` from step `t+1` back to step `t`;
#   `minilstm.lstm_backward` does exactly that (we verify it);
# * **truncated** BPTT, as in the paper: carry the state `(h, c)` forward from
#   one chunk of `T` steps to the next, but stop the gradient at the chunk
#   boundary; what that keeps and what it throws away;
# * **vanishing and exploding gradients**: how `||dL/dh_t||` shrinks or grows
#   with the distance between step `t` and the loss, depending on the weights,
#   and how the forget gate's highway keeps it alive;
# * why the paper **clips** the global gradient norm (`clip_global_norm_`).

# %%
import numpy as np

from _lesson import banner, pick, plt, save

import minilstm as m
from minilstm import gradcheck
from minilstm.optim import clip_global_norm_, global_norm

banner("Lesson 4: BPTT, truncation, vanishing and exploding gradients")

# %% [markdown]
# ## BPTT = the step backward, in reverse
#
# Unroll the LSTM over `T` steps and it is an ordinary (deep) feed-forward graph
# whose layers share weights. Step `t` receives gradient from two places: the
# loss (or layer above) directly, `dh[:, t]`, and step `t+1`, which used
# `(h_t, c_t)` as its previous state. So:
#
### BEGIN DUPLICATE [lstm:sequence_backward] (instead: # *(The loop is this handout's
###     `[lstm:sequence_backward]` exercise, below: nothing comes back from after the last step; walk `t`
###     down from `T-1` to 0; each step's backward gets both of its gradients; the weights are shared by
###     every step, so what each step sends them adds up.)*)
# ```
# dh_next, dc_next = 0, 0                       (nothing after the last step)
# for t = T-1, ..., 0:
#     dx_t, dh_next, dc_next, dWx_t, dWh_t, db_t = step_backward(dh[:, t] + dh_next, dc_next)
#     dWx += dWx_t;  dWh += dWh_t;  db += db_t  (shared weights: gradients add up)
# ```
### END DUPLICATE
#
# Let us write that loop with `lstm_step_forward`/`lstm_step_backward` and compare
# it with the sequence versions `lstm_forward`/`lstm_backward`.

# %%
rng = np.random.default_rng(0)
N, T, D, H = 3, 7, 4, 5
x = rng.standard_normal((N, T, D))
h0 = rng.standard_normal((N, H)) * 0.1
c0 = rng.standard_normal((N, H)) * 0.1
Wx = rng.uniform(-0.5, 0.5, (D, 4 * H))
Wh = rng.uniform(-0.5, 0.5, (H, 4 * H))
b = rng.uniform(-0.1, 0.1, 4 * H)
dh = rng.standard_normal((N, T, H))          # the gradient the layer above sends to every h_t

# Forward, step by step, keeping every step's cache.
caches, h_t, c_t = [], h0, c0
for t in range(T):
    h_t, c_t, cache_t = m.lstm_step_forward(x[:, t], h_t, c_t, Wx, Wh, b)
    caches.append(cache_t)

# Backward, step by step, in reverse.
### BEGIN SOLUTION [lstm:sequence_backward] (hint: start from dh_next = dc_next = zeros (N, H); for t
### from T-1 down to 0 call m.lstm_step_backward(dh[:, t] + dh_next, dc_next, caches[t]), which returns
### the new dh_next and dc_next; store dx_t in dx_loop[:, t] and add the weight gradients to dWx_loop,
### dWh_loop, db_loop (zeros like Wx, Wh, b))
dx_loop = np.zeros_like(x)
dWx_loop, dWh_loop, db_loop = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
for t in reversed(range(T)):
    dx_t, dh_next, dc_next, dWx_t, dWh_t, db_t = m.lstm_step_backward(dh[:, t] + dh_next, dc_next, caches[t])
    dx_loop[:, t] = dx_t
    dWx_loop += dWx_t
    dWh_loop += dWh_t
    db_loop += db_t
### END SOLUTION

# The sequence versions.
h_seq, seq_cache = m.lstm_forward(x, h0, Wx, Wh, b, c0=c0)
dx, dh0, dWx, dWh, db, dc0 = m.lstm_backward(dh, seq_cache)

for name, a, b_ in [("dx", dx_loop, dx), ("dh0", dh_next, dh0), ("dc0", dc_next, dc0),
                    ("dWx", dWx_loop, dWx), ("dWh", dWh_loop, dWh), ("db", db_loop, db)]:
    err = gradcheck.rel_error(a, b_).max()
    assert err < 1e-10, f"{name}: the step loop and lstm_backward disagree (rel. error {err:.1e})"
print("BPTT with a loop of lstm_step_backward == lstm_backward")

# %% [markdown]
# And, as always, the referee: finite differences on the whole sequence op.

# %%
inputs = dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b, c0=c0)
report = gradcheck.check_op(m.lstm_forward, m.lstm_backward, inputs, ["x", "h0", "Wx", "Wh", "b", "c0"],
                            max_checks=pick(10, 40))
print(report)
assert report.passed, "lstm_backward should pass the finite-difference check"

# %% [markdown]
# ## Truncated BPTT: carry the state, cut the gradient
#
# The Penn Treebank training set is one stream of ~930k words. Backpropagating
# through all of it at once is impossible, so the paper cuts it into chunks of
# `T` = 20 or 35 steps. For each chunk: forward from the state the previous chunk
# ended in, backward **within the chunk only**, one SGD step. The forward is
# exact (the model sees the whole past through the carried `(h, c)`); the
# gradient ignores how the weights affected the carried state.
#
# Check both statements on a sequence of `2K` steps cut into two chunks of `K`:

# %%
K = 6
x2 = rng.standard_normal((N, 2 * K, D))
dh2 = rng.standard_normal((N, 2 * K, H))
zeros = np.zeros((N, H))

# One piece: the reference.
h_full, cache_full = m.lstm_forward(x2, zeros, Wx, Wh, b)
g_full = m.lstm_backward(dh2, cache_full)

# Two chunks, the state carried across the boundary.
h_a, cache_a = m.lstm_forward(x2[:, :K], zeros, Wx, Wh, b)
h_b, cache_b = m.lstm_forward(x2[:, K:], cache_a.final_h, Wx, Wh, b, c0=cache_a.final_c)
assert np.allclose(np.concatenate([h_a, h_b], axis=1), h_full, atol=1e-14), "carrying (h, c) is exact"
print("forward: two chunks with the carried state == one long sequence")

# Truncated: each chunk's backward on its own (what minilstm's training does).
g_b = m.lstm_backward(dh2[:, K:], cache_b)
g_a_trunc = m.lstm_backward(dh2[:, :K], cache_a)
dWh_trunc = g_a_trunc[3] + g_b[3]

# Untruncated: chunk B's gradient on its initial state flows into chunk A.
g_a_full = m.lstm_backward(dh2[:, :K], cache_a, dh_final=g_b[1], dc_final=g_b[5])
dWh_chained = g_a_full[3] + g_b[3]

assert gradcheck.rel_error(dWh_chained, g_full[3]).max() < 1e-10, "chaining the chunks must give full BPTT"
lost = np.linalg.norm(dWh_trunc - g_full[3]) / np.linalg.norm(g_full[3])
print("backward: passing dh0/dc0 of chunk B into chunk A gives full BPTT exactly;")
print(f"          truncating changes dWh by {100 * lost:.1f}% of its norm (the cross-boundary part)")

# %% [markdown]
# What truncation throws away is the part of the gradient that travels further
# back than the chunk start. The next experiment shows how big that part can be.
#
# ## Vanishing and exploding gradients
#
# Put a loss at the **last** step only, `L = sum(h_T * u)` for a random `u`, and
# measure `||dL/dh_t||` for every earlier `t`. `lstm_backward` returns the
# gradient on the state a sequence *starts* from (`dh0`), so running it on the
# suffix that starts at step `t` (from the stored `h_t, c_t`) gives `dL/dh_t`
# exactly.
#
# Between steps the gradient is multiplied by the Jacobian `d h_{t+1} / d h_t`,
# which involves `Wh` and the gate slopes. Repeated `d` times:
#
# * if that product shrinks vectors, the gradient **vanishes** like `r^d`: the
#   loss cannot teach the weights anything about inputs `d` steps back;
# * if it stretches them, the gradient **explodes** like `R^d`;
# * the LSTM's escape: `dc_{t-1} = dc_t * f` (lesson 2). With the forget gate near
#   1 the cell path multiplies by ~1 per step, and the gradient survives.

# %%
def grad_norm_vs_distance(scale, forget_bias=0.0, T=60, N=8, H=32, seed=0):
    """||dL/dh_t|| for t = T-1 down to 0, for a loss at the last step only."""
    r = np.random.default_rng(seed)
    Wx = r.uniform(-scale, scale, (H, 4 * H))
    Wh = r.uniform(-scale, scale, (H, 4 * H))
    b = np.zeros(4 * H)
    b[H:2 * H] = forget_bias                           # the f block of the bias
    x = r.standard_normal((N, T, H))
    _, cache = m.lstm_forward(x, np.zeros((N, H)), Wx, Wh, b)
    u = r.standard_normal((N, H))                      # L = sum(h_{T-1} * u)
    norms = [np.linalg.norm(u)]                        # distance 0: dL/dh_{T-1} = u
    for t in range(T - 2, -1, -1):                     # suffix t+1 .. T-1, started from (h_t, c_t)
        _, suffix = m.lstm_forward(x[:, t + 1:], cache.h[:, t], Wx, Wh, b, c0=cache.c[:, t])
        dh = np.zeros_like(suffix.h)
        dh[:, -1] = u
        _, dh_t, *_ = m.lstm_backward(dh, suffix)
        norms.append(np.linalg.norm(dh_t))
    return np.array(norms)                             # index = distance T-1-t


T_far = pick(30, 60)
regimes = {
    "small weights (uniform ±0.1)": dict(scale=0.1),
    "small weights, forget-gate bias +3": dict(scale=0.1, forget_bias=3.0),
    "large weights (uniform ±4)": dict(scale=4.0),
}
curves = {name: grad_norm_vs_distance(T=T_far, **kw) for name, kw in regimes.items()}
for name, c in curves.items():
    print(f"{name:38s} ||dL/dh|| at distance 0: {c[0]:.1e}, at {T_far - 1}: {c[-1]:.1e}")

# %% [markdown]
# **Check.** Over `T` steps, small weights lose many orders of magnitude, large
# ones gain several, and the open forget gate keeps the gradient's size. (The
# first step back, from `u` itself through the small `Wh` into `h_{T-2}`, costs
# both small-weight networks a similar one-off factor, printed below and visible
# as the drop at `d = 1` in the figure; so we compare from distance 1 on.)

# %%
small, kept, large = curves.values()
print(f"the first step back divides ||dL/dh|| by {small[0] / small[1]:.1f} (small weights) and "
      f"{kept[0] / kept[1]:.1f} (with the forget-gate bias)")
assert small[-1] < 1e-5 * small[1], "with small weights the gradient should vanish"
assert large[-1] > 1e2 * large[1], "with large weights the gradient should explode"
assert 0.1 < kept[-1] / kept[1] < 10, "the forget-gate highway should keep the gradient's size"
print("vanishing, exploding and the highway, as predicted")

# %% [markdown]
# ## Clipping the global norm
#
# An exploding gradient, fed to SGD, throws the weights to a random far-away
# place in one step (`lr * 1e6` is not a step, it is a teleport). Exploding
# gradients are rare in a trained LSTM but they do happen, and one is enough.
# The paper's cure (following Mikolov, Pascanu et al.) is to rescale **all**
# gradients together when their joint norm exceeds a threshold (5 for the
# small and medium models, 10 for large):
#
# ```
# norm = sqrt(sum over every gradient array of sum(g^2))
# if norm > max_norm:  every g *= max_norm / norm
# ```
#
# The direction of the step is kept; only its length is capped. Here are the
# weight gradients of the three regimes for a loss at the last step, as the
# sequence gets longer, before and after `clip_global_norm_`:

# %%
def weight_grads(scale, forget_bias=0.0, T=60, N=8, H=32, seed=0):
    r = np.random.default_rng(seed)
    Wx = r.uniform(-scale, scale, (H, 4 * H))
    Wh = r.uniform(-scale, scale, (H, 4 * H))
    b = np.zeros(4 * H)
    b[H:2 * H] = forget_bias
    x = r.standard_normal((N, T, H))
    _, cache = m.lstm_forward(x, np.zeros((N, H)), Wx, Wh, b)
    dh = np.zeros_like(cache.h)
    dh[:, -1] = r.standard_normal((N, H)) / N          # L = mean over the batch of sum(h_{T-1} * u)
    _, _, dWx, dWh, db, _ = m.lstm_backward(dh, cache)
    return {"Wx": dWx, "Wh": dWh, "b": db}


lengths = np.unique(np.geomspace(2, T_far, pick(8, 15)).astype(int))
max_norm = 5.0
before = {name: [] for name in regimes}
after = {name: [] for name in regimes}
for name, kw in regimes.items():
    for L in lengths:
        grads = weight_grads(T=int(L), **kw)
        g_copy = {k: v.copy() for k, v in grads.items()}
        norm = clip_global_norm_(grads, max_norm)             # in place; returns the norm before
        before[name].append(norm)
        after[name].append(global_norm(grads))
        # Clipping keeps the direction: the clipped gradient is a positive multiple of the original.
        flat0 = np.concatenate([v.ravel() for v in g_copy.values()])
        flat1 = np.concatenate([v.ravel() for v in grads.values()])
        cos = flat0 @ flat1 / (np.linalg.norm(flat0) * np.linalg.norm(flat1))
        assert cos > 1 - 1e-12, "clipping must not change the direction"
        assert after[name][-1] <= max_norm * (1 + 1e-9), "after clipping the norm is at most max_norm"
        if norm <= max_norm:
            assert np.allclose(flat0, flat1), "a gradient below the threshold must be left alone"
print(f"clip_global_norm_: norms capped at {max_norm}, directions unchanged")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
colors = ["C0", "C2", "C3"]
for (name, c), color in zip(curves.items(), colors):
    ax1.semilogy(np.arange(len(c)), c, color=color, lw=2, label=name)
ax1.set_xlabel("distance in time d = T-1-t (steps back from the loss)")
ax1.set_ylabel("||dL/dh_t||")
ax1.set_title("Gradient reaching h_t from a loss at the last step")
ax1.legend(fontsize=8)
ax1.grid(alpha=0.3, which="both")

for (name, color) in zip(regimes, colors):
    ax2.semilogy(lengths, before[name], "-o", color=color, ms=4, label=f"{name}")
    ax2.semilogy(lengths, after[name], "--", color="k" if color == "C3" else color, lw=1.5)
ax2.plot([], [], "--", color="0.3", label="the same after clip_global_norm_ (dashed)")
ax2.axhline(max_norm, color="k", lw=1, ls=":", label=f"clip threshold {max_norm:g}")
ax2.set_xlabel("sequence length T (loss at the last step)")
ax2.set_ylabel("global norm of (dWx, dWh, db)")
ax2.set_title("Weight-gradient norm: raw (solid) and clipped (dashed)")
ax2.legend(fontsize=8)
ax2.grid(alpha=0.3, which="both")
fig.tight_layout()
save(fig, "04_vanishing_exploding")

# %% [markdown]
# Left: small weights (blue) lose roughly a factor 10 every few steps, so
# truncating BPTT at 20 or 35 steps costs little that the gradient would have
# carried anyway; large weights (red) explode; the open forget gate (green)
# carries the gradient flat over the whole distance: this is the "long
# short-term memory". Right: the weight gradient of the exploding network grows
# with the length of the sequence; clipping (dashed) caps it at 5 and leaves a
# gradient below the threshold untouched (the dashed line runs on top of the
# solid one there). The threshold is a scale for the *rare* bad step; in the
# paper's training the gradient norm is usually below it.
#
# In training, minilstm does exactly this every step:
# `gnorm = clip_global_norm_(grads, cfg.max_grad_norm); sgd_step_(params, grads, lr)`
# (see `minilstm/training.py`), and logs how often it clipped.
#
# ## Try this
#
# 1. In `grad_norm_vs_distance`, try forget biases 1, 2, 5 and scales 0.5, 1, 2.
#    Where is the border between vanishing and exploding?
# 2. Measure `||dL/dc_t||` instead of `||dL/dh_t||` (`lstm_backward` also returns
#    `dc0`). Which one carries the memory?
# 3. Make the two-chunk experiment with `K = 2` and `K = 20` and small weights:
#    how does the fraction of the gradient lost by truncation change?
# 4. Train a tiny model with `max_grad_norm=1e9` (no clipping) and `lr=5` using
#    `minilstm.training.train("tiny", epochs=1, ...)`. What happens to the loss?
