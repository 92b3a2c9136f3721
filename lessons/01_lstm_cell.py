# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 1: the LSTM cell, gate by gate
#
# **What you will learn**
#
# * the four gates of an LSTM cell, `i, f, o, g`, and the two state updates
#   `c = f*c + i*g` and `h = o*tanh(c)`, in the notation of Zaremba et al. (2014);
# * how `minilstm.lstm_step_forward` computes them as **one** `(N, 4H)` block, and
#   where each gate sits in that block;
# * that running the step in a loop gives exactly what `minilstm.lstm_forward`
#   computes for a whole sequence;
# * what the gates *do*, by building a one-unit memory by hand and watching it
#   store a value, hold it, and show it when asked.
#
# Run it with `python lessons/01_lstm_cell.py` (figures go to `lessons/out/`), or
# open it as a notebook: `jupytext --to notebook lessons/01_lstm_cell.py`.

# %%
import numpy as np

from _lesson import banner, pick, plt, save

import minilstm as m

banner("Lesson 1: the LSTM cell")

# %% [markdown]
# ## The idea
#
# An LSTM layer carries two vectors from step to step: the **memory cell** `c`
# and the **hidden state** `h` (what the layer shows to the outside world).
# At step `t`, with input `x_t` and the previous state `(h_{t-1}, c_{t-1})`, it
# computes one block of pre-activations and squashes it into four gates
# (section 3.1 of the paper):
#
# ```
# a = x_t Wx + h_{t-1} Wh + b          (N, 4H): four blocks of H columns
# i = sigm(a_i)     input gate         how much of g to write      in (0, 1)
# f = sigm(a_f)     forget gate        how much of c_{t-1} to keep in (0, 1)
# o = sigm(a_o)     output gate        how much of the memory to show
# g = tanh(a_g)     candidate          what to write               in (-1, 1)
#
# c_t = f * c_{t-1} + i * g            keep some old memory, write some new
# h_t = o * tanh(c_t)                  show some of it
# ```
#
# `*` is the elementwise product. The memory `c` changes only by a gated
# *multiplication* (`f`) and a gated *addition* (`i*g`): when `f = 1` and `i = 0`
# it is copied unchanged, for as many steps as you like. That additive path is
# why LSTMs remember (and, in lesson 4, why their gradients do not vanish).
#
# In minilstm the four blocks sit side by side along the last axis in the order
# **i, f, o, g**: `a[:, :H]` is `i`, `a[:, H:2H]` is `f`, `a[:, 2H:3H]` is `o`
# and `a[:, 3H:]` is `g` (the CS231n order).

# %% [markdown]
# ## One step, computed by hand and by minilstm
#
# We take a random cell (D = 3 inputs, H = 5 units, a batch of N = 2) and compute
# the step twice: once with plain NumPy, following the equations above line by
# line, and once with `m.lstm_step_forward`. The step returns
# `(next_h, next_c, cache)`; `cache.gates` holds `[i, f, o, g]` **after** their
# nonlinearities.

# %%
rng = np.random.default_rng(0)
N, D, H = 2, 3, 5
x = rng.standard_normal((N, D))
prev_h = rng.standard_normal((N, H)) * 0.5
prev_c = rng.standard_normal((N, H))
Wx = rng.standard_normal((D, 4 * H)) * 0.5
Wh = rng.standard_normal((H, 4 * H)) * 0.5
b = rng.standard_normal(4 * H) * 0.1


def sigm(z):
    return 1.0 / (1.0 + np.exp(-z))


# By hand, one line per equation.
a = x @ Wx + prev_h @ Wh + b                     # (N, 4H)
i_hand = sigm(a[:, 0 * H:1 * H])
f_hand = sigm(a[:, 1 * H:2 * H])
o_hand = sigm(a[:, 2 * H:3 * H])
g_hand = np.tanh(a[:, 3 * H:4 * H])
c_hand = f_hand * prev_c + i_hand * g_hand
h_hand = o_hand * np.tanh(c_hand)

# By minilstm.
next_h, next_c, cache = m.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
i, f, o, g = np.split(cache.gates, 4, axis=1)

print("input gate i (first example):", np.round(i[0], 3))
print("forget gate f               :", np.round(f[0], 3))
print("output gate o               :", np.round(o[0], 3))
print("candidate g                 :", np.round(g[0], 3))
print("next_c:", np.round(next_c[0], 3))
print("next_h:", np.round(next_h[0], 3))

# %% [markdown]
# **Check.** Every number must agree to rounding error. If you change the gate
# order in the hand version (try `f_hand = sigm(a[:, :H])`), this fails.

# %%
for name, mine, theirs in [("i", i_hand, i), ("f", f_hand, f), ("o", o_hand, o), ("g", g_hand, g),
                           ("next_c", c_hand, next_c), ("next_h", h_hand, next_h)]:
    err = np.max(np.abs(mine - theirs))
    assert err < 1e-12, f"{name}: the hand computation differs from lstm_step_forward by {err:.2e}"
assert np.all((0 < i) & (i < 1)) and np.all((-1 < g) & (g < 1)), "sigmoid gates live in (0,1), g in (-1,1)"
print("hand-computed gates and states match lstm_step_forward")

# %% [markdown]
# ## A whole sequence: the step in a loop, or `lstm_forward`
#
# Over a sequence, step `t` takes the state that step `t-1` produced. You can
# write that loop yourself with `lstm_step_forward`; `m.lstm_forward(x, h0, Wx,
# Wh, b, c0)` does the same thing faster, because the input projections
# `x_t Wx + b` of all `T` steps do not depend on the recurrence and are computed
# as *one* matrix product before the loop (lesson 8 measures the difference).

# %%
T = 12
xs = rng.standard_normal((N, T, D))
h0 = np.zeros((N, H))
c0 = np.zeros((N, H))

h_loop, c_loop = [], []
h_t, c_t = h0, c0
for t in range(T):
    h_t, c_t, _ = m.lstm_step_forward(xs[:, t], h_t, c_t, Wx, Wh, b)
    h_loop.append(h_t)
    c_loop.append(c_t)
h_loop = np.stack(h_loop, axis=1)  # (N, T, H)

h_seq, seq_cache = m.lstm_forward(xs, h0, Wx, Wh, b, c0=c0)
err = np.max(np.abs(h_seq - h_loop))
assert err < 1e-12, f"lstm_forward and the step loop disagree by {err:.2e}"
assert np.allclose(seq_cache.final_c, c_loop[-1]), "the final cell state should be c of the last step"
print(f"lstm_forward == a loop of lstm_step_forward over T={T} steps (max difference {err:.1e})")

# %% [markdown]
# ## What the gates do: a one-unit memory, built by hand
#
# Random weights show numbers, not meaning. So let us *design* a cell with a
# single unit (H = 1) that behaves like a memory register. The input has three
# channels, `x_t = [value, write, read]`:
#
# * `write = 1`: open the input gate (`i ~ 1`) and close the forget gate
#   (`f ~ 0`), so the old content is erased and `g = tanh(2 * value)` is stored;
# * `write = 0`: `i ~ 0` and `f ~ 1`: keep the memory as it is;
# * `read = 1`: open the output gate, so `h = o * tanh(c)` shows the memory;
#   otherwise `o ~ 0` and `h ~ 0` hides it.
#
# Each gate is `sigm(weight * channel + bias)`; a weight of 16 and a bias of -8
# make a clean switch (`sigm(8) = 0.9997`, `sigm(-8) = 0.0003`). There is no
# recurrent weight at all (`Wh = 0`): the memory lives in `c`, and the cell state
# path `c_t = f * c_{t-1} + ...` is what carries it.

# %%
S = 8.0                                   # switch sharpness
#                 i        f        o        g
Wx_mem = np.array([[0.0,     0.0,     0.0,     2.0],   # value  -> g
                   [2 * S,  -2 * S,   0.0,     0.0],   # write  -> open i, close f
                   [0.0,     0.0,     2 * S,   0.0]])  # read   -> open o
b_mem = np.array([-S, +S, -S, 0.0])       # by default: i closed, f open, o closed
Wh_mem = np.zeros((1, 4))

T_mem = 40
value = np.zeros(T_mem)
write = np.zeros(T_mem)
read = np.zeros(T_mem)
events = {2: ("write", 0.8), 12: ("read", None), 18: ("write", -0.5), 27: ("read", None),
          33: ("read", None)}
for t, (kind, v) in events.items():
    if kind == "write":
        write[t], value[t] = 1.0, v
    else:
        read[t] = 1.0
# Some distracting values on the value channel while nothing is written.
noise_rng = np.random.default_rng(1)
quiet = write == 0
value[quiet] = noise_rng.uniform(-1, 1, quiet.sum())

x_mem = np.stack([value, write, read], axis=1)[None]       # (N=1, T, D=3)
h_mem, mem_cache = m.lstm_forward(x_mem, np.zeros((1, 1)), Wx_mem, Wh_mem, b_mem)
gates_mem = mem_cache.gates[0]                              # (T, 4): i, f, o, g
c_mem = mem_cache.c[0, :, 0]
h_mem = h_mem[0, :, 0]

for t in (12, 27, 33):
    print(f"read at t={t:2d}: h = {h_mem[t]:+.3f}")

# %% [markdown]
# **Check.** At every read, `h` must show `tanh(tanh(2 * v))` of the value `v`
# written last, even though many noisy values went past in between; between
# reads `h` must stay near 0.

# %%
for t_read, t_write in [(12, 2), (27, 18), (33, 18)]:
    expected = np.tanh(np.tanh(2 * value[t_write]))
    assert abs(h_mem[t_read] - expected) < 0.02, (
        f"read at t={t_read} shows {h_mem[t_read]:+.3f}, expected {expected:+.3f} (written at t={t_write})")
others = np.ones(T_mem, bool)
others[[12, 27, 33]] = False
assert np.max(np.abs(h_mem[others])) < 0.01, "with the output gate closed, h should stay near 0"
print("the hand-built memory stores, holds and shows its value")

# %%
fig, axes = plt.subplots(5, 1, figsize=(9, 8), sharex=True)
ts = np.arange(T_mem)
axes[0].step(ts, value, where="mid", color="0.5", label="value channel")
axes[0].vlines(ts[write == 1], -1, 1, color="C2", lw=3, alpha=0.6, label="write = 1")
axes[0].vlines(ts[read == 1], -1, 1, color="C3", lw=3, alpha=0.6, label="read = 1")
axes[0].set_ylabel("input")
axes[0].legend(loc="upper right", fontsize=8, ncol=3)
for k, (name, color, lw, ls) in enumerate([("i (input gate)", "C2", 4, "-"), ("f (forget gate)", "C0", 1.5, "--"),
                                           ("o (output gate)", "C3", 2, "-")]):
    axes[1].plot(ts, gates_mem[:, k], color=color, lw=lw, ls=ls, label=name, drawstyle="steps-mid")
axes[1].set_ylabel("gates")
axes[1].legend(loc="center right", fontsize=8)
axes[2].plot(ts, gates_mem[:, 3], color="C1", label="g = tanh(2 value)", drawstyle="steps-mid")
axes[2].set_ylabel("candidate g")
axes[2].legend(loc="upper right", fontsize=8)
axes[3].plot(ts, c_mem, color="C4", lw=2, drawstyle="steps-mid")
axes[3].set_ylabel("memory c")
axes[4].plot(ts, h_mem, color="k", lw=2, drawstyle="steps-mid")
axes[4].set_ylabel("output h")
axes[4].set_xlabel("time step t")
for ax in axes:
    ax.grid(alpha=0.3)
fig.suptitle("A one-unit LSTM memory: write opens i and closes f, read opens o")
fig.tight_layout()
save(fig, "01_memory_cell")

# %% [markdown]
# Read the figure top to bottom: the value channel is noisy all the time, but
# `c` only changes at the two writes (where `i` opens and `f` closes); in
# between, `f ~ 1` copies it unchanged. `h` is zero except at the three reads,
# where `o` opens and shows `tanh(c)`.
#
# ## The gates of a generic cell on a signal
#
# A trained network does not have such clean switches, but its gates still react
# to the input. Here is a random cell (H = 16 units, weights uniform in
# `[-1, 1]`) driven by a toy signal: a slow sine wave, a square wave that flips
# every 15 steps, and a little noise. Each heatmap shows one gate, one row per
# unit, one column per time step.

# %%
T_sig = pick(60, 120)
H_sig = 16
t_axis = np.arange(T_sig)
signal = np.stack([np.sin(t_axis / 6.0),
                   np.where((t_axis // 15) % 2 == 0, 1.0, -1.0),
                   0.3 * np.random.default_rng(2).standard_normal(T_sig)], axis=1)[None]  # (1, T, 3)
r = np.random.default_rng(3)
Wx_r = r.uniform(-1, 1, (3, 4 * H_sig))
Wh_r = r.uniform(-1, 1, (H_sig, 4 * H_sig)) * 0.5
b_r = r.uniform(-0.5, 0.5, 4 * H_sig)
h_sig, sig_cache = m.lstm_forward(signal, np.zeros((1, H_sig)), Wx_r, Wh_r, b_r)
G = sig_cache.gates[0]                               # (T, 4H)

fig, axes = plt.subplots(6, 1, figsize=(10, 11), sharex=True,
                         gridspec_kw={"height_ratios": [1, 2, 2, 2, 2, 2]})
axes[0].plot(t_axis, signal[0, :, 0], label="sine")
axes[0].plot(t_axis, signal[0, :, 1], label="square")
axes[0].plot(t_axis, signal[0, :, 2], label="noise", alpha=0.6)
axes[0].set_ylabel("input x")
axes[0].legend(loc="upper right", fontsize=8, ncol=3)
panels = [("i: input gate", G[:, :H_sig], "viridis", (0, 1)),
          ("f: forget gate", G[:, H_sig:2 * H_sig], "viridis", (0, 1)),
          ("o: output gate", G[:, 2 * H_sig:3 * H_sig], "viridis", (0, 1)),
          ("g: candidate", G[:, 3 * H_sig:], "RdBu_r", (-1, 1)),
          ("c: memory cell", sig_cache.c[0], "RdBu_r", None)]
for ax, (title, data, cmap, lim) in zip(axes[1:], panels):
    vmax = lim[1] if lim else np.abs(data).max()
    vmin = lim[0] if lim else -vmax
    im = ax.imshow(data.T, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                   extent=(-0.5, T_sig - 0.5, H_sig - 0.5, -0.5))
    ax.set_ylabel(f"{title}\nunit")
    fig.colorbar(im, ax=ax, pad=0.01)
# An invisible colorbar keeps the signal panel as wide as the heatmaps below it.
fig.colorbar(im, ax=axes[0], pad=0.01).ax.set_visible(False)
axes[-1].set_xlabel("time step t")
axes[0].set_xlim(-0.5, T_sig - 0.5)
fig.suptitle("Gates of a random 16-unit LSTM cell driven by a toy signal")
fig.tight_layout()
save(fig, "01_gate_heatmaps")

# %% [markdown]
# The gates switch when the square wave flips (every 15 steps): they are
# functions of the input. The memory `c` integrates: a unit whose forget gate
# sits near 1 (bright rows in `f`) changes slowly and keeps a trace of the past,
# one with a small `f` follows the current input. The paper's language models
# learn such gates from data.
#
# ## Try this
#
# 1. In the memory cell, lower the forget bias from `+S` to `+3` (`b_mem[1] = 3`).
#    How fast does the stored value leak away? (`f ** steps` tells you.)
# 2. Set `b_mem[2] = +S` (output gate always open). What does `h` look like now?
# 3. Give the memory cell a recurrent weight, e.g. `Wh_mem[0, 3] = 1.0` (h feeds g).
#    Why does nothing change while the read gate is closed, and almost nothing
#    even at the reads? (Look at `i` there.)
# 4. Write a two-unit register that can store two values independently
#    (hint: two write channels, `Wx` of shape `(4, 8)`).
# 5. Time `lstm_forward` against your step loop for `T = 200, H = 256`: which is
#    faster, and why? (Lesson 8 answers.)
