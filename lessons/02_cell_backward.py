# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 2: backpropagation through one LSTM cell
#
# **What you will learn**
#
# * how to derive the backward pass of one LSTM step, one line per forward line,
#   with nothing but the chain rule and two derivatives (`sigm' = s(1-s)`,
#   `tanh' = 1 - t^2`);
# * how to code it yourself from the values the forward pass cached, and check it
#   against `minilstm.lstm_step_backward`;
# * how to prove *both* right with finite differences (`minilstm.gradcheck`);
# * why the cell state is a "gradient highway": `dc_{t-1} = dc_t * f`.
#
# Prerequisite: lesson 1 (the forward equations).

# %%
import numpy as np

from _lesson import banner, plt, save

import minilstm as m
from minilstm import gradcheck

banner("Lesson 2: backprop through one LSTM cell")

# %% [markdown]
# ## The forward pass, as a chain of small steps
#
# To differentiate, write the forward pass as a sequence of elementary
# operations, each producing one named value:
#
# ```
# (1) a  = x Wx + h_prev Wh + b                        pre-activations (N, 4H)
# (2) i = sigm(a_i), f = sigm(a_f), o = sigm(a_o), g = tanh(a_g)
# (3) c  = f * c_prev + i * g
# (4) tc = tanh(c)
# (5) h  = o * tc
# ```
#
# The backward pass walks this list **from the bottom up**. We are given the
# gradients that reach the outputs of the step from the rest of the network,
# `dh = dL/dh` and `dc = dL/dc` (in a sequence, `dc` comes from step `t+1`, whose
# `c_{t+1} = f * c_t + ...` uses `c_t`). For each line we ask: "which inputs did
# it use, and by how much does a small change of each move its output?"
#
# **(5) h = o * tc.** A product: each factor's gradient is the upstream gradient
# times the *other* factor.
#
# ```
# do  = dh * tc
# dtc = dh * o
# ```
#
### BEGIN DUPLICATE [lstm:cell_backward] (instead: # **Lines (4), (3) and (2) are yours to derive**,
###     with the same rules (they are this handout's `[lstm:cell_backward]` exercise, below): a product
###     sends each factor the upstream gradient times the *other* factor; a sum passes it unchanged; a
###     value used twice (`c` feeds `tanh` and the next step) adds up its two gradients; a squashing
###     function multiplies by its slope, written with the value the forward pass kept (`sigm' = s(1-s)`,
###     `tanh' = 1 - t^2`). Name them `dc_total`, `df`, `dc_prev`, `di`, `dg` and `da_i` .. `da_g`, and
###     put the four gate gradients side by side in the order i, f, o, g: that is `da`, of shape
###     `(N, 4H)`.)
# **(4) tc = tanh(c).** `tanh'(c) = 1 - tanh(c)^2 = 1 - tc^2`, and we already
# have `tc`. `c` is used twice, here and by the next step, so the two gradients
# **add up**:
#
# ```
# dc_total = dc + dtc * (1 - tc^2)
# ```
#
# **(3) c = f * c_prev + i * g.** Again products (and a sum, which passes the
# gradient unchanged to both terms):
#
# ```
# df      = dc_total * c_prev
# dc_prev = dc_total * f          <- the gradient highway: only multiplied by f
# di      = dc_total * g
# dg      = dc_total * i
# ```
#
# **(2) the gates.** `sigm'(a) = s(1-s)` and `tanh'(a) = 1 - t^2`, written with
# the gate values the forward pass kept (no need to store `a`):
#
# ```
# da_i = di * i * (1 - i)        da_f = df * f * (1 - f)
# da_o = do * o * (1 - o)        da_g = dg * (1 - g^2)
# ```
#
# Put side by side in the order i, f, o, g they form `da` of shape `(N, 4H)`.
### END DUPLICATE
#
# **(1) a = x Wx + h_prev Wh + b.** An affine map, the same three rules as any
# fully connected layer (check the shapes: they force the transposes):
#
# ```
# dx      = da Wx^T     (N, D)      dWx = x^T da       (D, 4H)
# dh_prev = da Wh^T     (N, H)      dWh = h_prev^T da  (H, 4H)
#                                   db  = sum over the batch of da   (4H,)
# ```
#
# That is the whole backward pass: sixteen short lines, each a product or a sum.

# %% [markdown]
# ## Coding it by hand
#
# A random step, in float64 (lesson 3 explains why gradient checks need it):

# %%
rng = np.random.default_rng(0)
N, D, H = 3, 4, 5
x = rng.standard_normal((N, D))
prev_h = rng.standard_normal((N, H))
prev_c = rng.standard_normal((N, H))
Wx = rng.standard_normal((D, 4 * H)) * 0.4
Wh = rng.standard_normal((H, 4 * H)) * 0.4
b = rng.standard_normal(4 * H) * 0.1

next_h, next_c, cache = m.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)

# Pretend the rest of the network sent these gradients back to h and c:
dh = rng.standard_normal((N, H))
dc = rng.standard_normal((N, H))

# %% [markdown]
# Everything the backward pass needs is in the cache: the gates (after their
# nonlinearities), `tanh(c)`, and the inputs `x, prev_h, prev_c` and weights.
# Now the sixteen lines, exactly as derived:

# %%
i, f, o, g = np.split(cache.gates, 4, axis=1)
tc = cache.tanh_c

### BEGIN SOLUTION [lstm:cell_backward] (hint: line (5) is derived above; derive (4), (3) and (2) the same
### way, from the bottom up, and write them as do, dtc, dc_total (the gradient on c, both paths added), df,
### dc_prev_mine, di, dg, then da = the four gate gradients side by side in the order i, f, o, g
### (np.concatenate along axis 1), shape (N, 4H))
# (5) h = o * tc
do = dh * tc
dtc = dh * o
# (4) tc = tanh(c), and c also goes to the next step
dc_total = dc + dtc * (1 - tc ** 2)
# (3) c = f * c_prev + i * g
df = dc_total * cache.prev_c
dc_prev_mine = dc_total * f
di = dc_total * g
dg = dc_total * i
# (2) the gate nonlinearities
da = np.concatenate([di * i * (1 - i),
                     df * f * (1 - f),
                     do * o * (1 - o),
                     dg * (1 - g ** 2)], axis=1)     # (N, 4H), order i, f, o, g
### END SOLUTION
### BEGIN SOLUTION [lstm:step] (hint: line (1) is affine: dx_mine and dh_prev_mine are da times the
### transposed weights; dWx_mine, dWh_mine are the transposed inputs (cache.x, cache.prev_h) times da;
### db_mine sums da over the batch)
# (1) a = x Wx + h_prev Wh + b
dx_mine = da @ cache.Wx.T
dh_prev_mine = da @ cache.Wh.T
dWx_mine = cache.x.T @ da
dWh_mine = cache.prev_h.T @ da
db_mine = da.sum(axis=0)
### END SOLUTION

mine = dict(dx=dx_mine, dprev_h=dh_prev_mine, dprev_c=dc_prev_mine, dWx=dWx_mine, dWh=dWh_mine, db=db_mine)

# %% [markdown]
# ## Compare with `lstm_step_backward`
#
# `m.lstm_step_backward(dnext_h, dnext_c, cache)` returns
# `(dx, dprev_h, dprev_c, dWx, dWh, db)`.

# %%
theirs = dict(zip(["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"], m.lstm_step_backward(dh, dc, cache)))
for name in mine:
    err = gradcheck.rel_error(mine[name], theirs[name]).max()
    print(f"{name:8s} max relative difference {err:.1e}")
    assert err < 1e-12, f"your {name} differs from lstm_step_backward (rel. error {err:.2e}): re-derive that line"
print("the hand-written backward pass matches lstm_step_backward")

# %% [markdown]
# Agreement between two implementations only says they make the *same*
# mistakes, if any. The referee is the definition of the derivative itself.
#
# ## Checking by finite differences
#
# For any scalar function `F` of an input `x`,
# `dF/dx_k ~ (F(x + h e_k) - F(x - h e_k)) / (2h)`. To turn the step's two
# outputs into one scalar, take `F = sum(next_h * dh) + sum(next_c * dc)`: its
# gradient with respect to every input is exactly what the backward pass
# computes from `(dh, dc)`. Here is one element done by hand with
# `gradcheck.numerical_gradient`, which perturbs `Wx[1, 7]` in place:

# %%
def F():
    nh, nc, _ = m.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    return float(np.sum(nh * dh) + np.sum(nc * dc))


k = (1, 7)   # column 7 is in the f block (H = 5: i is 0-4, f is 5-9)
numeric = gradcheck.numerical_gradient(F, Wx, k, h=1e-5, order=2)
print(f"dF/dWx{k}: analytic {dWx_mine[k]:+.12f}   numeric {numeric:+.12f}")
assert gradcheck.rel_error(dWx_mine[k], numeric) < 1e-7, "the finite difference disagrees with your dWx"

# %% [markdown]
# `gradcheck.check_op` does the same for every element of every input, with
# random upstream gradients, and reports the worst relative error per input. It
# takes the forward and backward functions and a dict of the forward's inputs;
# `grad_names` maps the backward's outputs to those inputs, in order.
# Note that we can hand it **our own** backward, wrapped to the same signature.

# %%
inputs = dict(x=x, prev_h=prev_h, prev_c=prev_c, Wx=Wx, Wh=Wh, b=b)
names = ["x", "prev_h", "prev_c", "Wx", "Wh", "b"]


def my_backward(dnext_h, dnext_c, cache):
    """The lines above, as a function with lstm_step_backward's signature."""
    ### BEGIN SOLUTION [lstm:cell_backward] (hint: the same lines as your cell above, with dnext_h and
    ### dnext_c in place of dh and dc; return (dx, dprev_h, dprev_c, dWx, dWh, db))
    i, f, o, g = np.split(cache.gates, 4, axis=1)
    tc = cache.tanh_c
    dc_total = dnext_c + dnext_h * o * (1 - tc ** 2)
    da = np.concatenate([dc_total * g * i * (1 - i), dc_total * cache.prev_c * f * (1 - f),
                         dnext_h * tc * o * (1 - o), dc_total * i * (1 - g ** 2)], axis=1)
    return (da @ cache.Wx.T, da @ cache.Wh.T, dc_total * f,
            cache.x.T @ da, cache.prev_h.T @ da, da.sum(axis=0))
    ### END SOLUTION


report_mine = gradcheck.check_op(m.lstm_step_forward, my_backward, inputs, names)
report_lib = gradcheck.check_op(m.lstm_step_forward, m.lstm_step_backward, inputs, names)
print("your backward:\n" + str(report_mine))
print("\nminilstm's lstm_step_backward:\n" + str(report_lib))
assert report_mine.passed, "your backward pass fails the finite-difference check"
assert report_lib.passed, "lstm_step_backward fails the finite-difference check"

# %% [markdown]
# ## A picture: where the gradient gets through
#
# Two things deserve a figure. Left: every analytic gradient element against its
# finite-difference estimate; a correct backward pass puts all of them on the
# diagonal. Right: the factors the gradient is multiplied by on its way back. A
# gate near 0 or 1 (saturated) has slope `s(1-s) ~ 0` and lets almost no
# gradient through to its weights; but the cell-state path multiplies by `f`
# itself, which is close to 1 exactly when the cell is *remembering*.

# %%
ana, num = [], []
for name, arr in inputs.items():
    grad = theirs["d" + name]
    for idx in np.ndindex(*arr.shape):
        ana.append(grad[idx])
        num.append(gradcheck.numerical_gradient(F, arr, idx))
ana, num = np.array(ana), np.array(num)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
ax1.scatter(num, ana, s=10, alpha=0.7)
lim = np.abs(np.concatenate([ana, num])).max() * 1.05
ax1.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="analytic = numeric")
ax1.set_xlabel("finite-difference estimate")
ax1.set_ylabel("analytic gradient (lstm_step_backward)")
ax1.set_title(f"{ana.size} gradient elements, worst rel. error "
              f"{gradcheck.rel_error(ana, num).max():.0e}")
ax1.legend()
ax1.grid(alpha=0.3)

z = np.linspace(-8, 8, 400)
s = 1 / (1 + np.exp(-z))
ax2.plot(z, s * (1 - s), label="sigm'(a) = s(1-s)   (i, f, o)")
ax2.plot(z, 1 - np.tanh(z) ** 2, label="tanh'(a) = 1 - t^2   (g, and tanh(c))")
ax2.plot(z, s, "--", color="C2", label="f = sigm(a_f): the factor on dc_prev")
ax2.set_xlabel("pre-activation a")
ax2.set_ylabel("factor applied to the gradient")
ax2.set_title("What each nonlinearity passes back")
ax2.set_ylim(-0.05, 1.45)
ax2.legend(fontsize=8, loc="upper left")
ax2.grid(alpha=0.3)
fig.tight_layout()
save(fig, "02_backward_check")

# %% [markdown]
# The slopes of the sigmoid and tanh vanish away from 0: a saturated gate stops
# learning. The dashed line is different in kind: the memory's gradient
# `dc_prev = dc_total * f` is scaled by the forget gate *value*, so a cell that
# keeps its memory (`f ~ 1`) also keeps its gradient. Lesson 4 follows that over
# many steps.
#
# ## Try this
#
# 1. Delete the `dc +` in `dc_total` (forget that `c` also feeds the next step)
#    and run `check_op` on your backward. Which inputs fail? Why does even `dx`
#    fail, although the mistake is on the cell-state path and `x` only enters
#    through the gates?
# 2. Use `i * (1 - i)` for the g gate by mistake (a classic copy-paste bug). How
#    large is the relative error? Is it larger for some inputs than others?
# 3. Set `dc = 0` and `dh = 0` except one unit: which entries of `dWh` are non-zero?
# 4. Derive the backward pass of a GRU's update `h = (1 - z) * h_prev + z * n`
#    in the same style, and compare its "highway" factor with `f`.
