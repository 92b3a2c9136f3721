"""L LSTM layers with the dropout operator D: the part every experiment shares.

    x (N, T, D) --D--> LSTM layer 1 --D--> LSTM layer 2 ... LSTM layer L --D--> out (N, T, H)

This is the one place that decides where D goes. The language model (an
embedding below, a softmax above), the translation model (the same, over a
reversed source, a separator and the target) and any model with dense inputs
(image features, speech frames) put their own first and last layers around
it. D sits on the L + 1 vertical connections: the input entering layer 1,
h of layer l - 1 entering layer l, and the top h leaving the stack (named
``drop0`` .. ``drop{L}``); in the ``recurrent`` and ``variational`` modes also
on h_{t-1} inside every layer (``rec1`` .. ``rec{L}``). Why those places,
and what each mode means, is told in minilstm/model.py's docstring.

Every mask of a forward comes from one method, ``_get_mask``: the one given
by name in ``masks``, else a fresh draw from ``rng``, (N, T, H) for a fresh
mask at every step or (N, 1, H) for one mask per sequence. Every mask used is
recorded by name in the cache, so a test or a lesson can replay the very same
forward.

The stack owns no weights: its parameters (``lstm{l}.Wx`` (D or H, 4H),
``lstm{l}.Wh`` (H, 4H), ``lstm{l}.b`` (4H,)) live in the model's one dict of
named arrays and are passed in, so a model that swaps its ``params`` (a
checkpoint loaded, a gradient check's perturbation) needs nothing else.

Shapes: N batch, T time, D input size (the first layer's), H hidden size, L layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .backend import default_rng, get_array_module, get_xp, resolve_device
from .checks import check_positive_int
from .choices import DROPOUT_MODES, DTYPES, PER_SEQUENCE_MODES, RECURRENT_MASK_MODES
from .ops.affine import affine_backward
from .ops.dropout import dropout_backward, dropout_forward, dropout_mask
from .ops.lstm import lstm_backward, lstm_forward
from .ops.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward


@dataclass
class StackCache:
    """What one forward of the stack leaves for its backward.

    drops: the L + 1 DropoutCaches (D before layer 1 .. L, and D on the top h);
    lstms: the L LSTMCaches; masks: every dropout mask used, by name.
    """

    drops: list
    lstms: list
    masks: dict = field(default_factory=dict)


class LSTMStack:
    """L LSTM layers with D on the connections that ``dropout_mode`` names.

    Args: input_size (D, the first layer's input), hidden_size (H),
    num_layers (L), dropout (p), dropout_mode (one of choices.DROPOUT_MODES),
    dtype. ``forward``/``backward`` take the model's ``params`` dict.
    """

    def __init__(self, input_size, hidden_size, num_layers, dropout=0.0, dropout_mode="zaremba", dtype="float32"):
        if dropout_mode not in DROPOUT_MODES:
            raise ValueError(f"dropout_mode must be one of {DROPOUT_MODES}, got {dropout_mode!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.D, self.H, self.L = (check_positive_int("input_size", input_size),
                                  check_positive_int("hidden_size", hidden_size),
                                  check_positive_int("num_layers", num_layers))
        self.dropout = float(dropout)
        self.dropout_mode = dropout_mode
        self.dtype = dtype

    # ------------------------------------------------------------------ setup
    def param_shapes(self):
        """{name: shape} of the stack's weights, layer by layer (the order they are drawn in)."""
        shapes = {}
        for layer in range(1, self.L + 1):
            shapes[f"lstm{layer}.Wx"] = (self.D if layer == 1 else self.H, 4 * self.H)
            shapes[f"lstm{layer}.Wh"] = (self.H, 4 * self.H)
            shapes[f"lstm{layer}.b"] = (4 * self.H,)
        return shapes

    @property
    def uses_dropout(self):
        return self.dropout_mode != "none" and self.dropout > 0.0

    def mask_names(self):
        """Names of the masks one training forward draws: ``drop0`` .. ``drop{L}``, and in the
        ``recurrent`` and ``variational`` modes ``rec1`` .. ``rec{L}`` (none without dropout)."""
        if not self.uses_dropout:
            return []
        names = [f"drop{layer}" for layer in range(self.L + 1)]
        if self.dropout_mode in RECURRENT_MASK_MODES:
            names += [f"rec{layer}" for layer in range(1, self.L + 1)]
        return names

    def mask_shape(self, N, T, name=None):
        """(N, T, H): a fresh mask at every step; (N, 1, H) in a per-sequence mode (``variational``).
        The mask ``drop0`` on the stack's input has its width D instead of H."""
        W = self.D if name == "drop0" else self.H
        return (N, 1, W) if self.dropout_mode in PER_SEQUENCE_MODES else (N, T, W)

    # ------------------------------------------------------------------ masks
    def _get_mask(self, name, N, T, W, rng, masks, used):
        """The mask called ``name`` of this forward, for an input (N, T, W), recorded in used[name]:
        the one in masks[name] if given, else a fresh draw from rng. The one place any mask of the
        stack comes from. W is H everywhere but at ``drop0``, whose input is the stack's (N, T, D)."""
        mask = masks.get(name)
        if mask is None:
            if self.dropout_mode in PER_SEQUENCE_MODES:
                ### BEGIN SOLUTION [dropout:variational] (hint: draw ONE mask per sequence with
                ###     dropout_mask of shape (N, 1, W), p = self.dropout, rng and self.dtype: the axis of
                ###     length 1 is time, so every step of the chunk sees the same units dropped)
                mask = dropout_mask((N, 1, W), self.dropout, rng, self.dtype)
                ### END SOLUTION
            else:  # a fresh mask for every time step, as in the paper
                mask = dropout_mask((N, T, W), self.dropout, rng, self.dtype)
        used[name] = mask
        return mask

    def _mask(self, name, x, train, rng, masks, used):
        """D on x (N, T, H) with the mask called ``name``: the identity in evaluation or without dropout.

        Returns (out, DropoutCache). A per-sequence (N, 1, H) mask is applied
        to all T steps: dropout_forward broadcasts it over time, and its cache
        lets dropout_backward use the same mask going back.
        """
        if not train or not self.uses_dropout:
            return dropout_forward(x, 0.0, train=False)
        N, T, W = x.shape
        return dropout_forward(x, self.dropout, train=True, mask=self._get_mask(name, N, T, W, rng, masks, used))

    # ---------------------------------------------------------------- forward
    def forward(self, x, state, params, train, rng, masks=None):
        """The stack over a chunk.

        Inputs: x (N, T, D); state (h, c), each (L, N, H); params: the
        model's named weights; train: D on; rng: the generator fresh masks come
        from; masks: {name: mask} to fix some (names: mask_names(); shapes:
        mask_shape(N, T)).
        Returns (out (N, T, H), cache, new_state): new_state is the final (h, c),
        each (L, N, H), a fresh array (the next chunk's graph starts from it,
        truncated BPTT).
        """
        xp = get_array_module(x)
        masks = masks or {}
        p = params
        used = {}
        N, T = x.shape[:2]
        drops, lstms = [], []
        h_final, c_final = [], []
        for layer in range(1, self.L + 1):
            ### BEGIN SOLUTION [dropout:placement] (hint: D on the input of every layer (x for layer 1,
            ###     h of layer l-1 for layer l): x, d = self._mask(name, x, train, rng, masks, used)
            ###     with the name from mask_names(); keep d in drops)
            x, d = self._mask(f"drop{layer - 1}", x, train, rng, masks, used)  # D: non-recurrent input
            drops.append(d)
            ### END SOLUTION
            h_masks = None
            if train and self.uses_dropout and self.dropout_mode in RECURRENT_MASK_MODES:
                ### BEGIN SOLUTION [dropout:placement] (hint: recurrent and variational modes only: the
                ###     mask for h_{t-1} (N, T, H) inside this layer is self._get_mask(name, N, T, H, rng, masks,
                ###     used) with name rec{layer} and H = self.H; lstm_forward applies it as h_masks)
                h_masks = self._get_mask(f"rec{layer}", N, T, self.H, rng, masks, used)
                ### END SOLUTION
            x, lc = lstm_forward(x, state[0][layer - 1], p[f"lstm{layer}.Wx"], p[f"lstm{layer}.Wh"],
                                 p[f"lstm{layer}.b"], c0=state[1][layer - 1], h_masks=h_masks)
            lstms.append(lc)
            h_final.append(lc.final_h)
            c_final.append(lc.final_c)
        ### BEGIN SOLUTION [dropout:placement] (hint: D once more on the top layer's h, as it leaves the
        ###     stack (mask drop{L}); keep its cache in drops)
        x, d = self._mask(f"drop{self.L}", x, train, rng, masks, used)  # D: on the way out (to the softmax)
        drops.append(d)
        ### END SOLUTION
        # The carried state is a copy: the next chunk's graph starts fresh (truncated BPTT).
        new_state = (xp.stack(h_final), xp.stack(c_final))
        return x, StackCache(drops, lstms, used), new_state

    # --------------------------------------------------------------- backward
    def backward(self, dout, cache: StackCache, grads: dict):
        """Back through the stack. dout (N, T, H): the gradient on its output.

        Writes the layers' weight gradients into ``grads`` (by name) and
        returns (dx (N, T, D), (dh0, dc0)): the gradients on the input and on
        the initial state, each (L, N, H). A language model carrying state
        from chunk to chunk ignores the latter (truncated BPTT); a model whose
        initial state is computed (from an image, say) backpropagates it.
        """
        dh0s, dc0s = [None] * self.L, [None] * self.L
        ### BEGIN SOLUTION [dropout:placement] (hint: back through the D on the stack's output
        ###     (cache.drops[self.L]))
        dx = dropout_backward(dout, cache.drops[self.L])
        ### END SOLUTION
        for layer in range(self.L, 0, -1):
            dx, dh0s[layer - 1], dWx, dWh, db, dc0s[layer - 1] = lstm_backward(dx, cache.lstms[layer - 1])
            grads[f"lstm{layer}.Wx"], grads[f"lstm{layer}.Wh"], grads[f"lstm{layer}.b"] = dWx, dWh, db
            ### BEGIN SOLUTION [dropout:placement] (hint: back through the D on this layer's input
            ###     (cache.drops[layer - 1]) before going down a layer)
            dx = dropout_backward(dx, cache.drops[layer - 1])
            ### END SOLUTION
        xp = get_array_module(dx)
        return dx, (xp.stack(dh0s), xp.stack(dc0s))


class StackedModel:
    """What every model built on an LSTMStack (``self.stack``, with ``self.xp`` and ``self.dtype``)
    says about its D, its state and its size: read from the stack, the one place D is decided."""

    def _build_stack(self, input_size, hidden_size, num_layers, dropout, dropout_mode, init_scale, dtype, device,
                     seed):
        """The set-up every stacked model shares: dtype, device, the stack, and the model's own dropout
        generator (seed + 1; the weights are drawn from ``seed`` by init_params)."""
        self.init_scale = float(init_scale)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype is None or self.dtype.name not in DTYPES:  # the ops compute in these only (checks.py)
            raise TypeError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.device = resolve_device(device)
        self.xp = get_xp(self.device)
        self.seed = seed
        self.stack = LSTMStack(input_size, hidden_size, num_layers, float(dropout), dropout_mode, self.dtype)
        # The model's own generator for dropout masks, used when forward gets no rng.
        self.rng = default_rng(None if seed is None else seed + 1, self.xp)

    def init_params(self, rng):
        """Every parameter uniform in [-init_scale, init_scale] (biases too, as in the paper's code),
        drawn in param_shapes' order."""
        s = self.init_scale
        return {name: rng.uniform(-s, s, size=shape).astype(self.dtype)
                for name, shape in self.param_shapes().items()}

    def _output_loss(self, scores, targets, weights):
        """(loss, softmax cache) of the scores (N, T, V) against targets (N, T) with per-token weights:
        the weighted NLL summed over each sequence and averaged over the N sequences (ops/softmax.py).
        The scores are overwritten (they are not needed again). A loss that is not finite means training
        diverged, which is said in one line instead of training on."""
        loss, cache = softmax_cross_entropy_forward(scores, targets, weights=weights, overwrite_scores=True)
        if not math.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss}: training diverged. Lower the learning rate, "
                                     "or check the data")
        return loss, cache

    def _output_backward(self, cache, dloss, grads):
        """Back through the softmax and the output affine map (``out.W``, ``out.b``, written into
        ``grads``) of a model cache with ``.softmax`` and ``.affine``; returns d(top of the stack) (N, T, H)."""
        if cache.softmax is None:
            raise ValueError(f"this cache has no loss: backward needs the cache of {type(self).__name__}.forward "
                             "called with targets")
        dscores = softmax_cross_entropy_backward(dloss, cache.softmax, overwrite_cache=True)
        dx, grads["out.W"], grads["out.b"] = affine_backward(dscores, cache.affine)
        return dx

    @property
    def dropout(self):
        """p, the probability of dropping a unit."""
        return self.stack.dropout

    @property
    def dropout_mode(self):
        return self.stack.dropout_mode

    @property
    def uses_dropout(self):
        return self.stack.uses_dropout

    def mask_names(self):
        """Names of the dropout masks one training forward draws, each (N, T, H), or (N, 1, H) in a
        per-sequence mode (``variational``).

        ``drop0`` on the input entering layer 1, ``drop{l}`` on h of layer l
        leaving it (``drop{L}`` enters the softmax), and in ``recurrent`` and
        ``variational`` modes ``rec{l}`` on h_{t-1} inside layer l.
        """
        return self.stack.mask_names()

    def mask_shape(self, N, T):
        """The shape of every mask of a training forward on (N, T) tokens."""
        return self.stack.mask_shape(N, T)

    def init_state(self, batch_size):
        """Zero state (h, c), each (L, N, H)."""
        z = self.xp.zeros((self.stack.L, batch_size, self.stack.H), dtype=self.dtype)
        return z, z.copy()

    def num_params(self):
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))
