"""The word-level LSTM language model of Zaremba, Sutskever & Vinyals (2014).

    tokens (N, T) --embedding--> (N, T, H) --D--> LSTM layer 1 --D--> ... LSTM layer L
        --D--> affine (H -> V) --> softmax cross-entropy against targets (N, T)

Where the dropout operator D goes is the whole point of the paper, and is the
``dropout_mode`` option:

``zaremba`` (default)
    D only on the non-recurrent connections: the embedding entering layer 1,
    h of layer l-1 entering layer l, and the top h entering the softmax. The
    recurrent h_{t-1} -> h_t and c_{t-1} -> c_t paths are never dropped, so
    information crosses D exactly L + 1 times on its way from any input to any
    output, however far apart in time they are.
``recurrent``
    The naive placement the paper argues against: the same masks as above,
    and D also on h_{t-1} as it enters every step, so memory is corrupted a
    little more at every time step it is carried.
``none``
    No dropout at all, whatever ``dropout`` says.

Parameters live in one dict of named arrays (``model.params``); ``backward``
returns a dict of gradients with the same names.

Shapes: N batch, T time, V vocabulary, H hidden (= embedding) size, L layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .backend import default_rng, get_xp, resolve_device
from .checks import ShapeError, check_shape, check_tokens
from .ops.affine import affine_backward, affine_forward
from .ops.dropout import dropout_backward, dropout_forward
from .ops.embedding import embedding_backward, embedding_forward
from .ops.lstm import lstm_backward, lstm_forward
from .ops.softmax import log_softmax, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .workspace import Workspace

DROPOUT_MODES = ("none", "zaremba", "recurrent")


@dataclass
class ModelCache:
    """The per-op caches of one forward pass, in the order backward unwinds them.

    masks: the dropout masks actually used, by name (see LSTMLanguageModel.mask_names),
    so a test or lesson can replay the exact same forward.
    """

    embed: object
    drops: list  # L + 1 DropoutCaches: D before layer 1 .. L, and D before the softmax
    lstms: list  # L LSTMCaches
    affine: object
    softmax: object = None
    masks: dict = field(default_factory=dict)
    generation: int = 0  # which forward made it (checked when buffers are reused)


class LSTMLanguageModel:
    """An L-layer LSTM language model with the paper's dropout, written by hand.

    Args:
      vocab_size (V), hidden_size (H), num_layers (L);
      dropout: the probability p of dropping a unit;
      dropout_mode: ``"zaremba"``, ``"recurrent"`` or ``"none"`` (module docstring);
      init_scale: weights start uniform in [-init_scale, init_scale], as in the paper;
      dtype: float32 to train, float64 to check gradients;
      device: ``"cpu"`` or ``"gpu"`` (default: ``$MINILSTM_DEVICE`` or cpu);
      seed: seeds both the initial weights and the model's own dropout generator;
      reuse_buffers: for speed (training and evaluation turn it on), forward
        writes its (N, T, V) scores, and backward the decoder's gradient, into
        arrays reused at every step (minilstm/workspace.py), and backward
        returns the embedding's gradient as a RowSparseGrad (only the rows of
        the words in the batch). Then a cache can be backpropagated once,
        before the next forward, and the gradients returned are overwritten by
        the next backward (both misuses raise an error). Off by default: every
        forward and backward returns fresh arrays, as a student would expect.
    """

    def __init__(self, vocab_size, hidden_size=200, num_layers=2, dropout=0.0, dropout_mode="zaremba",
                 init_scale=0.1, dtype="float32", device=None, seed=0, reuse_buffers=False):
        if dropout_mode not in DROPOUT_MODES:
            raise ValueError(f"dropout_mode must be one of {DROPOUT_MODES}, got {dropout_mode!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if int(vocab_size) < 1 or int(hidden_size) < 1 or int(num_layers) < 1:
            raise ValueError("vocab_size, hidden_size and num_layers must be positive")
        self.V, self.H, self.L = int(vocab_size), int(hidden_size), int(num_layers)
        self.dropout = float(dropout)
        self.dropout_mode = dropout_mode
        self.init_scale = float(init_scale)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.device = resolve_device(device)
        self.xp = get_xp(self.device)
        self.seed = seed
        self.params = self.init_params(default_rng(seed, self.xp))
        # The model's own generator for dropout masks, used when forward gets no rng.
        self.rng = default_rng(None if seed is None else seed + 1, self.xp)
        self.reuse_buffers = bool(reuse_buffers)
        self.workspace = Workspace()
        self._generation = 0  # counts forwards that wrote into the workspace, so a stale cache is caught

    # ------------------------------------------------------------------ setup
    def param_shapes(self):
        V, H = self.V, self.H
        shapes = {"embed.W": (V, H)}
        for layer in range(1, self.L + 1):
            shapes[f"lstm{layer}.Wx"] = (H, 4 * H)
            shapes[f"lstm{layer}.Wh"] = (H, 4 * H)
            shapes[f"lstm{layer}.b"] = (4 * H,)
        shapes["out.W"] = (H, V)
        shapes["out.b"] = (V,)
        return shapes

    def init_params(self, rng):
        """Every parameter uniform in [-init_scale, init_scale] (biases too, as in the paper's code)."""
        s = self.init_scale
        return {name: rng.uniform(-s, s, size=shape).astype(self.dtype)
                for name, shape in self.param_shapes().items()}

    def init_state(self, batch_size):
        """Zero state (h, c), each (L, N, H)."""
        z = self.xp.zeros((self.L, batch_size, self.H), dtype=self.dtype)
        return z, z.copy()

    @property
    def uses_dropout(self):
        return self.dropout_mode != "none" and self.dropout > 0.0

    def mask_names(self):
        """Names of the dropout masks one training forward draws, each (N, T, H).

        ``drop0`` on the embedding entering layer 1, ``drop{l}`` on h of layer l
        leaving it (``drop{L}`` enters the softmax), and in ``recurrent`` mode
        ``rec{l}`` on h_{t-1} inside layer l.
        """
        if not self.uses_dropout:
            return []
        names = [f"drop{layer}" for layer in range(self.L + 1)]
        if self.dropout_mode == "recurrent":
            names += [f"rec{layer}" for layer in range(1, self.L + 1)]
        return names

    def num_params(self):
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    # ---------------------------------------------------------------- forward
    def _check_inputs(self, tokens, targets, state):
        if tokens.ndim != 2:
            raise ShapeError(f"tokens must have shape (N, T), got {tuple(tokens.shape)}")
        check_tokens("tokens", tokens, self.V)
        N = tokens.shape[0]
        if targets is not None:
            check_tokens("targets", targets, self.V, shape=tokens.shape, names="(N, T) like tokens")
        if state is None:
            return self.init_state(N)
        h, c = state
        check_shape("state h", h, (self.L, N, self.H), "(L, N, H)")
        check_shape("state c", c, (self.L, N, self.H), "(L, N, H)")
        return state

    def _mask(self, name, x, train, rng, masks, used):
        if not train or not self.uses_dropout:
            return dropout_forward(x, 0.0, train=False)
        out, cache = dropout_forward(x, self.dropout, train=True, rng=rng, mask=masks.get(name))
        used[name] = cache.mask
        return out, cache

    def _body(self, tokens, state, train, rng, masks):
        """Everything up to the vocabulary scores (N, T, V)."""
        xp = self.xp
        masks = masks or {}
        rng = rng if rng is not None else self.rng
        p = self.params
        used = {}
        N, T = tokens.shape
        x, embed_cache = embedding_forward(tokens, p["embed.W"])  # (N, T, H)
        drops, lstms = [], []
        h_final, c_final = [], []
        for layer in range(1, self.L + 1):
            ### BEGIN SOLUTION [dropout:placement] (hint: D on the input of every layer (the embedding for
            ###     layer 1, h of layer l-1 for layer l): x, d = self._mask(name, x, train, rng, masks, used)
            ###     with the name from mask_names(); keep d in drops)
            x, d = self._mask(f"drop{layer - 1}", x, train, rng, masks, used)  # D: non-recurrent input
            drops.append(d)
            ### END SOLUTION
            h_masks = None
            if train and self.uses_dropout and self.dropout_mode == "recurrent":
                ### BEGIN SOLUTION [dropout:placement] (hint: recurrent mode only: h_masks (N, T, H) for
                ###     h_{t-1} inside this layer, the one in masks["rec{layer}"] if given, else a fresh one
                ###     drawn with rng (dropout_forward on an (N, T, H) array returns it in its cache); record
                ###     it in used[name] and lstm_forward applies it)
                name = f"rec{layer}"
                h_masks = masks.get(name)
                if h_masks is None:
                    _, rc = dropout_forward(xp.empty((N, T, self.H), self.dtype), self.dropout, rng=rng)
                    h_masks = rc.mask
                used[name] = h_masks
                ### END SOLUTION
            x, lc = lstm_forward(x, state[0][layer - 1], p[f"lstm{layer}.Wx"], p[f"lstm{layer}.Wh"],
                                 p[f"lstm{layer}.b"], c0=state[1][layer - 1], h_masks=h_masks)
            lstms.append(lc)
            h_final.append(lc.final_h)
            c_final.append(lc.final_c)
        ### BEGIN SOLUTION [dropout:placement] (hint: D once more on the top layer's h, before the softmax
        ###     (mask drop{L}); keep its cache in drops)
        x, d = self._mask(f"drop{self.L}", x, train, rng, masks, used)  # D: before the softmax
        drops.append(d)
        ### END SOLUTION
        out = None
        if self.reuse_buffers:  # every forward writes its scores into the same array, see __init__
            out = self.workspace.get("scores", (N, T, self.V), self.dtype, xp)
            self._generation += 1
        scores, aff_cache = affine_forward(x, p["out.W"], p["out.b"], out=out)  # (N, T, V)
        # The carried state is a copy: the next chunk's graph starts fresh (truncated BPTT).
        new_state = (xp.stack(h_final), xp.stack(c_final))
        cache = ModelCache(embed_cache, drops, lstms, aff_cache, masks=used, generation=self._generation)
        return scores, cache, new_state

    def forward(self, tokens, targets, state=None, train=True, rng=None, masks=None):
        """One forward pass over a chunk.

        Inputs: tokens, targets (N, T) integer ids; state (h, c) each (L, N, H)
        or None for zeros; train (dropout on); rng: generator for the masks
        (default: the model's own); masks: {name: (N, T, H)} to fix masks.
        Returns (loss, cache, new_state). The loss is summed over T and averaged
        over N (see ops/softmax.py for why).
        """
        state = self._check_inputs(tokens, targets, state)
        scores, cache, new_state = self._body(tokens, state, train, rng, masks)
        # With reused buffers, the scores become the probabilities in place (they are not needed again).
        loss, cache.softmax = softmax_cross_entropy_forward(scores, targets, overwrite_scores=self.reuse_buffers)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the loss is {loss}: training diverged. Lower the learning rate or the clipping norm, "
                "or check the data")
        return loss, cache, new_state

    def log_probs(self, tokens, state=None):
        """Evaluation-mode log-probabilities of the next word. Returns ((N, T, V), new_state)."""
        state = self._check_inputs(tokens, None, state)
        scores, _, new_state = self._body(tokens, state, False, None, None)
        return log_softmax(scores, self.xp), new_state

    # --------------------------------------------------------------- backward
    def backward(self, cache: ModelCache, dloss=1.0):
        """Gradients of the loss with respect to every parameter, by name.

        Dense arrays of the parameters' shapes; with ``reuse_buffers``, the
        embedding's is a RowSparseGrad (``.to_dense()`` for the full array).
        """
        grads = {}
        reuse = self.reuse_buffers
        if reuse and cache.generation != self._generation:
            raise RuntimeError("this cache's buffers were reused by a later forward (reuse_buffers=True): "
                               "call backward right after the forward that made the cache")
        dscores = softmax_cross_entropy_backward(dloss, cache.softmax, overwrite_cache=reuse)
        dW_out = self.workspace.get("d_out.W", (self.H, self.V), self.dtype, self.xp) if reuse else None
        dx, grads["out.W"], grads["out.b"] = affine_backward(dscores, cache.affine, dW_out=dW_out)
        ### BEGIN SOLUTION [dropout:placement] (hint: back through the D that sits before the softmax
        ###     (cache.drops[self.L]))
        dx = dropout_backward(dx, cache.drops[self.L])
        ### END SOLUTION
        for layer in range(self.L, 0, -1):
            # Truncated BPTT: no gradient flows into the state carried in from the last chunk.
            dx, _dh0, dWx, dWh, db, _dc0 = lstm_backward(dx, cache.lstms[layer - 1])
            grads[f"lstm{layer}.Wx"], grads[f"lstm{layer}.Wh"], grads[f"lstm{layer}.b"] = dWx, dWh, db
            ### BEGIN SOLUTION [dropout:placement] (hint: back through the D on this layer's input
            ###     (cache.drops[layer - 1]) before going down a layer)
            dx = dropout_backward(dx, cache.drops[layer - 1])
            ### END SOLUTION
        grads["embed.W"] = embedding_backward(dx, cache.embed, sparse=reuse)
        return {name: grads[name] for name in self.params}
