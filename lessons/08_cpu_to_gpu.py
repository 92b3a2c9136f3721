# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 8: from CPU to GPU
#
# **What you will learn**
#
# * how minilstm runs the *same* code on NumPy (CPU) and CuPy (GPU): the
#   `backend` module (`get_xp`, `get_array_module`, `to_device`, `to_host`);
# * what changes when you move to the GPU, and what does not;
# * what makes array code fast on a GPU, measured here on the CPU where the same
#   effects exist on a smaller scale: the fixed cost of every operation (a kernel
#   launch on a GPU), and why one big matrix product for the input projections of
#   all `T` steps beats `T` small ones; and three tricks of the CPU training
#   step (sums as matrix products, a row-sparse embedding gradient, reused buffers);
# * if this machine has a GPU (`backend.gpu_available()`), the same model on
#   both devices, compared number for number and timed, and the LSTM cell
#   written line by line (a kernel launch per line) timed against minilstm's
#   **fused** GPU cell; without a GPU those timings are skipped and the text
#   explains what they would show.

# %%
import time

import numpy as np

from _lesson import QUICK, banner, pick, plt, save

import minilstm as m
from minilstm import backend

banner("Lesson 8: CPU to GPU")
HAS_GPU = backend.gpu_available()
print("GPU available:", HAS_GPU, "" if HAS_GPU else "(CuPy missing or no CUDA device: GPU cells are skipped)")

# %% [markdown]
# ## One code, two array modules
#
# NumPy and CuPy have (almost) the same API: `cupy.tanh`, `cupy.matmul`,
# `a.reshape`, `xp.empty_like`... So every op in minilstm starts with
#
# ```python
# xp = get_array_module(x, Wx)     # numpy for NumPy arrays, cupy for CuPy arrays
# ```
#
# and then writes `xp.tanh(...)`, `x @ Wx`, etc. The arrays decide where the
# work happens. `get_xp(device)` gives the module for a device name, and
# `to_device` / `to_host` copy arrays between host memory and GPU memory.

# %%
print("get_xp('cpu')                 ->", backend.get_xp("cpu").__name__)
x = np.ones((2, 3))
print("get_array_module(numpy array) ->", backend.get_array_module(x).__name__)
print("get_array_module(1.0)         ->", backend.get_array_module(1.0).__name__, "(plain numbers: numpy)")
print("to_device(x, 'cpu') is x      ->", backend.to_device(x, "cpu") is x, "(no copy when already there)")
model_cpu = m.LSTMLanguageModel(50, 16, 2, seed=0, device="cpu")
print("a model on the cpu: model.xp  ->", model_cpu.xp.__name__,
      "; its parameters:", {type(p).__module__ for p in model_cpu.params.values()})
assert backend.get_array_module(*model_cpu.params.values()) is np, "a CPU model's parameters are NumPy arrays"

# %% [markdown]
# ## What changes, and what does not
#
# Does **not** change:
#
# * the op code: `c = f * prev_c + i * g` is the same line on both devices;
# * shapes, dtypes, the gate order, the math, the gradient check;
# * results: equal up to floating-point rounding (summation order in a GPU
#   matrix product differs from the CPU's).
#
# **Does** change:
#
# * where the arrays live. Mixing them is an error (CuPy refuses NumPy operands),
#   so data is moved once (`xp.asarray(batch)`), not inside the loop;
# * random numbers: `backend.default_rng(seed, xp)` draws on the host with NumPy
#   and copies to the GPU (`backend.HostRNG`): same seed, same masks, and a state
#   a checkpoint can save (CuPy's own generators cannot), at one copy per mask;
# * synchronization: GPU calls are asynchronous. `float(loss)` or `to_host(a)`
#   waits for the GPU to finish. One such sync per step is fine; one per
#   time step ruins the speed;
# * speed: float32 is much faster than float64 on most GPUs (train in float32;
#   check gradients in float64, on either device).

# %%
if HAS_GPU:
    import cupy

    V, H, N, T = 200, 64, 8, 12
    r = np.random.default_rng(0)
    tok, tgt = r.integers(0, V, (N, T)), r.integers(0, V, (N, T))
    cpu = m.LSTMLanguageModel(V, H, 2, dtype="float64", seed=0, device="cpu")
    gpu = m.LSTMLanguageModel(V, H, 2, dtype="float64", seed=0, device="gpu")
    gpu.params = backend.params_to(cpu.params, "gpu")          # the same weights on both
    loss_c, cache_c, _ = cpu.forward(tok, tgt, train=False)
    loss_g, cache_g, _ = gpu.forward(cupy.asarray(tok), cupy.asarray(tgt), train=False)
    g_c, g_g = cpu.backward(cache_c), gpu.backward(cache_g)
    worst = max(m.gradcheck.rel_error(g_c[k], backend.to_host(g_g[k])).max() for k in g_c)
    print(f"loss cpu {loss_c:.12f}  gpu {loss_g:.12f}; worst gradient rel. difference {worst:.1e}")
    assert abs(loss_c - loss_g) < 1e-9 * abs(loss_c) and worst < 1e-6, "CPU and GPU should agree"
else:
    print("No GPU here. On a machine with one, this cell builds the same float64 model on both devices\n"
          "(gpu.params = backend.params_to(cpu.params, 'gpu')), runs forward and backward on each and\n"
          "checks that loss and gradients agree to rounding.")

# %% [markdown]
# ## The fixed cost of an operation
#
# Every array operation pays a fixed cost before touching any data: Python and
# NumPy dispatch on the CPU (around a microsecond), plus a **kernel launch** on
# the GPU (several microseconds, and the GPU's thousands of cores sit idle while
# the next launch is prepared). An operation on a small array is therefore all
# overhead. Measure the time of one elementwise `tanh` as the array grows:

# %%
def best_time(fn, repeat=5, number=None):
    """Best wall time of one call, in seconds (timeit-style: best of `repeat` batches)."""
    if number is None:
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-7)
        number = max(1, min(2000, int(0.02 / one)))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


sizes = np.unique(np.logspace(1, pick(6, 7), pick(8, 13)).astype(int))
per_call, per_elem = [], []
for n in sizes:
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    out = np.empty_like(a)
    t = best_time(lambda: np.tanh(a, out=out), repeat=pick(3, 5))
    per_call.append(t)
    per_elem.append(t / n)
for n, t in zip(sizes[::3], per_call[::3]):
    print(f"tanh on {n:>9,} floats: {t * 1e6:9.2f} us")

# %% [markdown]
# Below a few hundred elements the time hardly depends on the size: that is
# the fixed cost (the time printed for the smallest arrays); the dotted line is what the time
# would be without it. An LSTM step with `N = 20`, `H = 200` works on
# `(20, 800)` gate blocks, 16,000 numbers: on a CPU the work dominates. A GPU
# is the opposite case: a kernel launch costs several microseconds, in which a
# modern GPU could have processed millions of numbers, so a 16,000-number
# operation is almost pure overhead there, and an LSTM step issues dozens of
# them. That is why GPU implementations **fuse** the whole cell (the four
# nonlinearities, `c = f*c + i*g`, `tanh(c)`, `h = o*tanh(c)`) into one kernel:
# one launch instead of a dozen. minilstm keeps the cell as separate, readable
# array operations on the CPU (written in place to save memory traffic), and
# runs the same arithmetic as fused kernels on a GPU; the last section compares
# the two.
#
# ## One GEMM for all T input projections
#
# The input part of the pre-activations, `x_t Wx + b`, does not depend on the
# recurrence, so all `T` steps can be done at once as one `(N*T, D) x (D, 4H)`
# matrix product instead of `T` products of `(N, D) x (D, 4H)`. `lstm_forward`
# does exactly that (lesson 1); only `h_{t-1} Wh` must stay inside the time
# loop. Measure both ways for the `small` model's sizes:

# %%
N, D, H = 20, 200, 200
Wx = np.random.default_rng(1).standard_normal((D, 4 * H)).astype(np.float32)
T_values = [1, 2, 5, 10, 20, 35] + ([] if QUICK else [70, 140])
t_loop, t_gemm = [], []
for T in T_values:
    xs = np.random.default_rng(2).standard_normal((N, T, D)).astype(np.float32)
    out = np.empty((N, T, 4 * H), np.float32)

    def per_step():
        for t in range(T):
            np.matmul(xs[:, t], Wx, out=out[:, t])

    def one_gemm():
        np.matmul(xs.reshape(N * T, D), Wx, out=out.reshape(N * T, 4 * H))

    t_loop.append(best_time(per_step, repeat=pick(3, 7)))
    t_gemm.append(best_time(one_gemm, repeat=pick(3, 7)))
    assert np.allclose(out.reshape(N * T, 4 * H), xs.reshape(N * T, D) @ Wx, rtol=1e-4, atol=1e-3)
for T, a, b in zip(T_values, t_loop, t_gemm):
    print(f"T = {T:3d}: {T} GEMMs of ({N},{D})x({D},{4 * H}) {a * 1e3:7.3f} ms   one ({N * T},{D}) GEMM "
          f"{b * 1e3:7.3f} ms   speed-up {a / b:4.1f}x")

# %% [markdown]
# **Check.** The two ways compute the same numbers (asserted above). The
# speed-ups are printed, not asserted: a timing depends on the machine and on
# what else runs on it (a busy core can make either way look slower). On an
# idle machine the one big GEMM usually wins. How much depends on the BLAS
# library and on how many cores are free: a big product keeps all cores and
# vector units busy and reads `Wx` once instead of `T` times. On a GPU the gap
# is much larger, because each of the `T` small products is a kernel launch that
# leaves most of the GPU idle.

# %%
speedup_T20 = t_loop[T_values.index(20)] / t_gemm[T_values.index(20)]
print(f"at T = 20: one GEMM is {speedup_T20:.1f}x the speed of 20 small ones on this machine, now")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
ax1.loglog(sizes, np.array(per_call) * 1e6, "o-", label="time per call (measured)")
ax1.loglog(sizes, sizes * per_elem[-1] * 1e6, ":", color="0.4", label="pure throughput (time proportional to size)")
ax1.axvline(N * 4 * H, color="C3", ls="--", lw=1, label=f"one (N={N}, 4H={4 * H}) gate block")
ax1.set_xlabel("array size (float32 elements)")
ax1.set_ylabel("time of one np.tanh call (us)")
ax1.set_title("A fixed cost per operation, then time grows with size")
ax1.legend(fontsize=8)
ax1.grid(alpha=0.3, which="both")
ax2.plot(T_values, np.array(t_loop) * 1e3, "o-", color="C3", label=f"T products ({N},{D})x({D},{4 * H})")
ax2.plot(T_values, np.array(t_gemm) * 1e3, "s-", color="C0", label=f"one product ({N}T,{D})x({D},{4 * H})")
ax2.set_xlabel("number of time steps T")
ax2.set_ylabel("time for all T input projections (ms)")
ax2.set_title("Input projections x_t Wx: per step vs one GEMM (CPU)")
ax2.legend(fontsize=8)
ax2.grid(alpha=0.3)
fig.tight_layout()
save(fig, "08_overhead_and_gemm")

# %% [markdown]
# ## Where the time of a training step goes
#
# A last measurement on this machine: one training step (forward + backward) of
# a 2-layer model, split into the part that grows with the vocabulary (the
# softmax layer: an `(N*T, H) x (H, V)` product and its gradient) and the rest.
# For PTB (`V = 10,000`) the output layer dominates on a CPU; on a GPU every
# part gets faster, the big products most.

# %%
N, T, H = 20, 20, pick(64, 200)
rows = []
for V in pick([100, 1000], [100, 1000, 10000]):
    model = m.LSTMLanguageModel(V, H, 2, seed=0)
    r = np.random.default_rng(0)
    tok, tgt = r.integers(0, V, (N, T)), r.integers(0, V, (N, T))

    def step():
        loss, cache, _ = model.forward(tok, tgt)
        model.backward(cache)

    t_step = best_time(step, repeat=pick(2, 3), number=pick(2, 5))
    rows.append((V, t_step))
    print(f"V = {V:6,}: one training step (N={N}, T={T}, H={H}) {t_step * 1e3:8.1f} ms  "
          f"= {N * T / t_step:10,.0f} tokens/s")
share = 1 - rows[0][1] / rows[-1][1]
print(f"the part of a V = {rows[-1][0]:,} step that grows with V (mostly the output layer), estimated as "
      f"1 - t(V={rows[0][0]}) / t(V={rows[-1][0]:,}): {100 * share:.0f}%")

# %% [markdown]
# ## Three more tricks of minilstm's CPU training step
#
# **Sums as matrix products.** The softmax needs the sum of every row of the
# `(N*T, V)` array of `exp` values, and the decoder's bias gradient the sum of
# every column of its gradient. A NumPy reduction (`a.sum(axis=1)`) runs on one
# core; the same sums written as matrix-vector products, `a @ ones(V)` and
# `ones(N*T) @ a`, run in the BLAS library, which is vectorised and uses every
# core it is allowed. `minilstm/ops/softmax.py` and `minilstm/ops/affine.py` do
# this. The results agree to float32 rounding:

# %%
M, V = N * T, pick(2000, 10000)
a = np.exp(np.random.default_rng(3).standard_normal((M, V)).astype(np.float32))
ones_V, ones_M = np.ones(V, np.float32), np.ones(M, np.float32)
assert np.allclose(a.sum(axis=1), a @ ones_V, rtol=1e-5) and np.allclose(a.sum(axis=0), ones_M @ a, rtol=1e-5)
t_rows = (best_time(lambda: a.sum(axis=1), repeat=pick(3, 7)), best_time(lambda: a @ ones_V, repeat=pick(3, 7)))
t_cols = (best_time(lambda: a.sum(axis=0), repeat=pick(3, 7)), best_time(lambda: ones_M @ a, repeat=pick(3, 7)))
for what, (t_sum, t_mv) in (("row sums   ", t_rows), ("column sums", t_cols)):
    print(f"{what} of a ({M}, {V:,}) array: .sum {t_sum * 1e3:6.3f} ms   matrix-vector product "
          f"{t_mv * 1e3:6.3f} ms   -> {t_sum / t_mv:.1f}x")

# %% [markdown]
# **A sparse embedding gradient.** A batch of `N*T = 400` words touches at most
# 400 of the 10,000 rows of the embedding table, so its gradient is zero almost
# everywhere. Built as a dense `(V, H)` array, it costs a pass to zero the array
# and another for the SGD update over all `V` rows. minilstm's training loop
# asks `embedding_backward(..., sparse=True)` for a `RowSparseGrad` instead: the
# distinct rows and their summed gradients, and SGD updates only those rows. The
# two updates give the same table:

# %%
from minilstm.ops.embedding import embedding_backward, embedding_forward

V, H, lr = 10000, pick(64, 200), 0.5
table = np.random.default_rng(4).standard_normal((V, H)).astype(np.float32)
tokens = np.random.default_rng(5).integers(0, V, (N, T))
_, emb_cache = embedding_forward(tokens, table)
d_emb = np.random.default_rng(6).standard_normal((N, T, H)).astype(np.float32)


def dense_update(W):
    W -= lr * embedding_backward(d_emb, emb_cache)  # (V, H), mostly zeros


def sparse_update(W):
    g = embedding_backward(d_emb, emb_cache, sparse=True)  # only the rows of words in the batch
    W[g.rows] -= lr * g.values


W_dense, W_sparse = table.copy(), table.copy()
dense_update(W_dense)
sparse_update(W_sparse)
assert np.allclose(W_dense, W_sparse, rtol=1e-6, atol=1e-6), "both updates must change the table alike"
t_dense = best_time(lambda: dense_update(table), repeat=pick(3, 7))
t_sparse = best_time(lambda: sparse_update(table), repeat=pick(3, 7))
print(f"embedding gradient + SGD step, V = {V:,}, H = {H}: dense {t_dense * 1e3:.2f} ms   "
      f"row-sparse {t_sparse * 1e3:.2f} ms   -> {t_dense / t_sparse:.1f}x")

# %% [markdown]
# **Reused buffers.** The largest arrays of a step, the `(N*T, V)` scores (16 MB
# for `small`) and the decoder's `(H, V)` gradient, have the same shape at every
# step. Asking for them afresh makes the operating system hand over new, zeroed
# memory pages each time, and those page faults cost as much as a matrix
# product. `minilstm/workspace.py` allocates them once per model and reuses
# them; the scores then become the probabilities and their gradient *in place*.
# The price is that a buffer is overwritten by the next step, so the model
# refuses a backward pass through a cache whose buffers a later forward pass
# has reused. (A loop that only allocates and frees one such array rarely shows
# the effect: the C allocator may keep handing back the same block. It shows in
# the full step, where other arrays come and go in between: profile it with
# `python -m cProfile` and `LSTMLanguageModel(..., reuse_buffers=False)`.)
#
# All of this is measured, step by step and against PyTorch, by
# `minilstm bench --torch` (README, "Speed").

# %% [markdown]
# ## On a GPU
#
# With CuPy installed (`pip install -e ".[cuda12]"`), everything above runs on
# the GPU by passing `device="gpu"` (or `--device gpu` on the command line, or
# `MINILSTM_DEVICE=gpu`). The cell below times the same training step on both
# devices when a GPU is present. Note the `synchronize()`: without it you would
# time only the launches, not the work.

# %%
if HAS_GPU:
    import cupy

    V, H = 10000, 200
    r = np.random.default_rng(0)
    tok, tgt = r.integers(0, V, (N, T)), r.integers(0, V, (N, T))
    for device in ("cpu", "gpu"):
        model = m.LSTMLanguageModel(V, H, 2, seed=0, device=device)
        xp = model.xp
        tk, tg = xp.asarray(tok), xp.asarray(tgt)

        def step():
            loss, cache, _ = model.forward(tk, tg)
            model.backward(cache)
            if device == "gpu":
                cupy.cuda.Device().synchronize()

        step()                                                    # warm-up (kernel compilation)
        t = best_time(step, repeat=3, number=3)
        print(f"{device}: {t * 1e3:7.1f} ms per step, {N * T / t:10,.0f} tokens/s")
else:
    print("No GPU: skipping the CPU-vs-GPU timing. On a GPU, the arithmetic of a model this small\n"
          "takes very little time; the step time is set mostly by the number of kernel launches\n"
          "(dozens per time step) and by host-device synchronizations: the reason fused kernels\n"
          "and larger batches matter there.")

# %% [markdown]
# ## Fusing the cell (measured on a GPU)
#
# Written line by line, as in lesson 1, the cell is a chain of array
# operations: `-a`, `exp`, `1 +`, `1 /` for each of the three sigmoids, `tanh`
# for `g`, then `f * c_prev`, `i * g`, their sum, `tanh(c)` and `o * tanh(c)`.
# On a GPU each one is a kernel launch that reads its inputs from GPU memory and
# writes a temporary back: 18 launches per layer and time step. A **fused**
# kernel does all of it in one launch and one pass: each GPU thread reads the
# pre-activations and `c_prev` of one unit and writes its `c` and `h`. With CuPy
# that is an `ElementwiseKernel`, a few lines of CUDA C, for example
#
### BEGIN DUPLICATE [lstm:cell_forward] (instead: # `cupy.ElementwiseKernel("T a", "T s", "s = T(0.5) *
###     tanh(T(0.5) * a) + T(0.5);", "sigmoid")`, the sigmoid (the cell's own kernel would be this
###     handout's `[lstm:cell_forward]` exercise, written in C).)
# ```python
# cell_forward = cupy.ElementwiseKernel(
#     "T i, T f, T o, T g, T prev_c", "T c, T tanh_c, T h",
#     "c = f * prev_c + i * g;  tanh_c = tanh(c);  h = o * tanh_c;",
#     "lstm_cell_forward")
# ```
### END DUPLICATE
#
# minilstm does this on a GPU: the cell functions of `minilstm/ops/lstm.py`
# (`activate_gates_`, `cell_forward`, `cell_backward`) run their NumPy lines
# on the CPU, and one fused kernel each from `minilstm/ops/cuda_kernels.py` when
# they get CuPy arrays. The cell below checks that the line-by-line cell and
# minilstm's agree with `lstm_step_forward` (on whichever device is here), and
# on a GPU times the two (the matrix products are the same in both, so they are
# left out).

# %%
try:
    from minilstm.ops import cuda_kernels  # noqa: F401  (the fused CuPy kernels, if this minilstm has them)
    HAS_FUSED = True
except ImportError:
    HAS_FUSED = False
from minilstm.ops.lstm import activate_gates_, cell_forward   # the cell functions lstm_forward calls


def cell_line_by_line(a, prev_c, xp):
    """Lesson 1's equations, one array operation (one GPU kernel launch) at a time: 18 in all."""
    H = prev_c.shape[1]
    i = 1 / (1 + xp.exp(-a[:, :H]))
    f = 1 / (1 + xp.exp(-a[:, H:2 * H]))
    o = 1 / (1 + xp.exp(-a[:, 2 * H:3 * H]))
    g = xp.tanh(a[:, 3 * H:])
    c = f * prev_c + i * g
    return c, o * xp.tanh(c)


def cell_minilstm(a, prev_c, xp, buf, next_c, tanh_c, next_h):
    """minilstm's cell: squash a copy of a in place, then c and h (fused kernels on a GPU)."""
    buf[...] = a                                       # the gates are squashed in place: keep `a` intact
    activate_gates_(buf, prev_c.shape[1], xp)
    cell_forward(buf, prev_c, next_c, tanh_c, next_h, xp)
    return next_c, next_h


xp = backend.get_xp("gpu" if HAS_GPU else "cpu")
Nf, Hf = 20, 200                                       # the small model's batch and width
r = np.random.default_rng(0)
xf, hf, cf = (xp.asarray(r.standard_normal((Nf, Hf)).astype(np.float32)) for _ in range(3))
Wxf, Whf = (xp.asarray(r.uniform(-0.1, 0.1, (Hf, 4 * Hf)).astype(np.float32)) for _ in range(2))
bf = xp.zeros(4 * Hf, np.float32)
ref_h, ref_c, _ = m.lstm_step_forward(xf, hf, cf, Wxf, Whf, bf)
a_pre = xf @ Wxf + hf @ Whf + bf                       # the pre-activations, shared by both versions
bufs = (xp.empty_like(a_pre), xp.empty_like(cf), xp.empty_like(cf), xp.empty_like(cf))
for name, (c_out, h_out) in [("line by line", cell_line_by_line(a_pre, cf, xp)),
                             ("minilstm", cell_minilstm(a_pre, cf, xp, *bufs))]:
    err = max(float(abs(c_out - ref_c).max()), float(abs(h_out - ref_h).max()))
    print(f"{name:12s} cell vs lstm_step_forward ({xp.__name__}): max difference {err:.1e}")
    assert err < 1e-5, f"the {name} cell should compute what lstm_step_forward computes"

if HAS_GPU:
    import cupy

    def per_call(fn, reps=200):
        """GPU time of one call: `reps` calls, then one synchronize (a sync per call would be timed too)."""
        def many():
            for _ in range(reps):
                fn()
            cupy.cuda.Device().synchronize()
        many()                                         # warm-up: compiles the kernels
        return best_time(many, repeat=5, number=1) / reps

    t_lines = per_call(lambda: cell_line_by_line(a_pre, cf, cupy))
    t_mini = per_call(lambda: cell_minilstm(a_pre, cf, cupy, *bufs))
    launches = "3 launches: copy, gates, cell" if HAS_FUSED else "no fused kernels in this minilstm"
    print(f"elementwise part of one cell step (N={Nf}, H={Hf}, float32) on the GPU:\n"
          f"  line by line (18 launches) {t_lines * 1e6:6.1f} us\n"
          f"  minilstm ({launches}) {t_mini * 1e6:6.1f} us   ->  {t_lines / t_mini:.1f}x")
else:
    print("No GPU: skipping the timing. On a GPU this cell times the line-by-line cell (18 kernel\n"
          "launches) against minilstm's fused one (a copy and two kernels); at the small model's size\n"
          "each launch is almost pure overhead, so expect the fused cell to be several times faster.\n"
          "(On this CPU both run as NumPy lines: minilstm's fused kernels exist only for CuPy arrays.)")

# %% [markdown]
# ## Try this
#
# 1. Re-run the GEMM comparison with `N = 1` and with `N = 200`. When does the
#    per-step loop lose the most?
# 2. Time `lstm_forward` for `H = 32` and `H = 1024` with `T = 35`. Which share
#    of the time is the recurrent `h_{t-1} Wh` product (it cannot be batched
#    over time), and which the elementwise gate code?
# 3. Set `OPENBLAS_NUM_THREADS=1` (before Python starts) and repeat the
#    measurements. Which ones change, and why? (Small products are often *faster*
#    on one thread: starting threads is another fixed cost.)
# 4. On a GPU: time one step with `float64` and with `float32`. Compare the ratio
#    with the CPU's.
