"""The word-level LSTM language model of Zaremba, Sutskever & Vinyals (2014).

    tokens (N, T) --embedding--> (N, T, H) --D--> LSTM layer 1 --D--> ... LSTM layer L
        --D--> affine (H -> V) --> softmax cross-entropy against targets (N, T)

Where the dropout operator D goes is the whole point of the paper, and is the
``dropout_mode`` option (the names live in minilstm/choices.py). To compare
them, follow one piece of information from the word at time s to the
prediction at time s + t, t >= 0, and count how often it crosses D. It moves
up L + 1 times (embedding -> layer 1 -> ... -> layer L -> softmax) and along
time t times, each time step inside some layer either on h_{t-1} (through the
gates) or on the memory c_{t-1} -> c_t (never dropped, in any mode).

``zaremba`` (default)
    D only on the non-recurrent connections: the embedding entering layer 1,
    h of layer l-1 entering layer l, and the top h entering the softmax, with
    a fresh mask at every time step. The recurrent h_{t-1} -> h_t and
    c_{t-1} -> c_t paths are never dropped, so information crosses D exactly
    L + 1 times on its way from any input to any output, whatever t is.
``recurrent``
    The naive placement the paper argues against: the same masks as above,
    and D also on h_{t-1} as it enters every step, with a fresh mask at every
    step. A path that moves k of its t time steps along h crosses D
    L + 1 + k times (up to L + 1 + t), through L + 1 + k independent masks:
    the longer a memory is carried on h, the more often it is corrupted.
``variational`` (Gal & Ghahramani 2016)
    D at the same places as ``recurrent`` (inputs, outputs and h_{t-1}), but
    with one mask per sequence, (N, 1, H), shared by every time step. The
    count of crossings is the same as in ``recurrent``, L + 1 + k, but they
    go through at most 2L + 1 distinct masks (the L + 1 vertical ones and one
    on h_{t-1} per layer), however large t is: a unit of h_{t-1} that is
    dropped is dropped at every step, and one that is kept is kept at every
    step, so the noise does not compound along time. Dropping h_{t-1} with a
    fixed mask is dropping fixed rows of Wh, and a fixed mask on the inputs is
    dropping fixed rows of Wx: one thinned network per sequence, which is what
    the Bayesian reading of dropout asks for.
    Here a "sequence" is one chunk of T steps of truncated BPTT (the state is
    carried from chunk to chunk): the masks are redrawn at every forward, i.e.
    every chunk, as in Gal's own PTB code.
``none``
    No dropout at all, whatever ``dropout`` says.

``tie_weights`` (Press & Wolf 2017; Inan, Khosravi & Socher 2017): the decoder
uses the transposed embedding, scores = h @ embed.W.T + out.b, and there is no
``out.W``. The shared matrix is used twice, so its gradient is the sum of the
embedding's (rows of the words in the batch) and the decoder's (every row).
Tying needs the embedding size to equal H, which it always does here (the
embedding is (V, H)).

Parameters live in one dict of named arrays (``model.params``); ``backward``
returns a dict of gradients with the same names.

Shapes: N batch, T time, V vocabulary, H hidden (= embedding) size, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import default_rng
from .checks import NonFiniteError, ShapeError, check_positive_int, check_shape, check_tokens
from .choices import DROPOUT_MODES  # noqa: F401  (the names this docstring explains; re-exported)
from .ops.affine import AffineCache, affine_backward, affine_forward
from .ops.embedding import EmbeddingCache, embedding_backward, embedding_forward, is_row_sparse
from .ops.softmax import SoftmaxCache, log_softmax, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .stack import StackCache, StackedModel
from .workspace import Workspace

# The fast paths ``reuse_buffers=True`` bundles, each its own keyword (see LSTMLanguageModel).
FAST_PATHS = ("reuse_workspace", "inplace_softmax", "sparse_embedding_grad")

# A diverging run's weights are finite but huge, so its products overflow to inf and NaN on the way to the
# loss. forward reports that once, as a NonFiniteError ("training diverged"), and training reports an
# infinite gradient norm the same way: NumPy's RuntimeWarnings along the way would only repeat it.
_DIVERGENCE_IS_REPORTED = np.errstate(over="ignore", invalid="ignore")


@dataclass
class ModelCache:
    """The per-op caches of one forward pass, in the order backward unwinds them.

    stack: the LSTM stack's cache (minilstm/stack.py), whose ``drops``, ``lstms``
    and ``masks`` (the dropout masks actually used, by name, see
    LSTMLanguageModel.mask_names) are also reachable here, so a test or lesson
    can replay the exact same forward.
    """

    embed: EmbeddingCache
    stack: StackCache
    affine: AffineCache
    softmax: SoftmaxCache | None = None  # set by forward, with the loss
    generation: int = 0  # which forward made it (checked when buffers are reused)

    @property
    def drops(self):
        """The L + 1 DropoutCaches: D before layer 1 .. L, and D before the softmax."""
        return self.stack.drops

    @property
    def lstms(self):
        """The L LSTMCaches."""
        return self.stack.lstms

    @property
    def masks(self):
        return self.stack.masks


class LSTMLanguageModel(StackedModel):
    """An L-layer LSTM language model with the paper's dropout, written by hand.

    Args:
      vocab_size (V), hidden_size (H), num_layers (L);
      dropout: the probability p of dropping a unit;
      dropout_mode: ``"zaremba"``, ``"recurrent"``, ``"variational"`` or
        ``"none"`` (module docstring);
      init_scale: weights start uniform in [-init_scale, init_scale], as in the paper;
      dtype: float32 to train, float64 to check gradients;
      device: ``"cpu"`` or ``"gpu"`` (default: ``$MINILSTM_DEVICE`` or cpu);
      seed: seeds both the initial weights and the model's own dropout generator;
      tie_weights: the decoder is the transposed embedding (no ``out.W``; module docstring);
      reuse_buffers: for speed (training and evaluation turn it on), all three
        fast paths below at once. Off by default: every forward and backward
        returns fresh arrays, as a student would expect. Each can also be set on
        its own (None: follow ``reuse_buffers``); none changes any number a
        plain call returns:
      reuse_workspace: forward writes its (N, T, V) scores, and backward the
        decoder's gradient, into arrays reused at every step
        (minilstm/workspace.py). Then a cache can be backpropagated only
        before the next forward, and the gradients returned are overwritten by
        the next backward (misuse raises an error);
      inplace_softmax: the scores become the probabilities, and backward turns
        those into the gradient, in place: a cache can be backpropagated once
        (a second backward raises an error);
      sparse_embedding_grad: backward returns the embedding's gradient as a
        RowSparseGrad (only the rows of the words in the batch). With
        ``tie_weights`` the shared matrix's gradient is dense anyway (the
        decoder touches every row): the embedding's rows are then added into
        the decoder's dense gradient, without a dense scatter-add.
    """

    def __init__(self, vocab_size, hidden_size=200, num_layers=2, dropout=0.0, dropout_mode="zaremba",
                 init_scale=0.1, dtype="float32", device=None, seed=0, reuse_buffers=False, tie_weights=False,
                 reuse_workspace=None, inplace_softmax=None, sparse_embedding_grad=None):
        self.V, self.H, self.L = (check_positive_int("vocab_size", vocab_size),
                                  check_positive_int("hidden_size", hidden_size),
                                  check_positive_int("num_layers", num_layers))
        self.tie_weights = bool(tie_weights)
        # The L layers with D (minilstm/stack.py); the embedding (size H) is its input.
        self._build_stack(self.H, self.H, self.L, dropout, dropout_mode, init_scale, dtype, device, seed)
        self.params = self.init_params(default_rng(seed, self.xp))
        default = bool(reuse_buffers)
        self.reuse_workspace = default if reuse_workspace is None else bool(reuse_workspace)
        self.inplace_softmax = default if inplace_softmax is None else bool(inplace_softmax)
        self.sparse_embedding_grad = default if sparse_embedding_grad is None else bool(sparse_embedding_grad)
        self.workspace = Workspace()
        self._generation = 0  # counts forwards that wrote into the workspace, so a stale cache is caught

    @property
    def reuse_buffers(self):
        """True when every fast path is on (what ``reuse_buffers=True`` asked for)."""
        return all(getattr(self, name) for name in FAST_PATHS)

    # ------------------------------------------------------------------ setup
    def param_shapes(self):
        V, H = self.V, self.H
        shapes = {"embed.W": (V, H), **self.stack.param_shapes()}
        if not self.tie_weights:  # tied: the decoder is embed.W.T, no matrix of its own
            shapes["out.W"] = (H, V)
        shapes["out.b"] = (V,)
        return shapes

    # init_params (stack.StackedModel) draws in param_shapes' order, so a tied model's first arrays
    # are the untied model's (out.W is simply not drawn; out.b differs).

    def decoder_weight(self):
        """The decoder's (H, V) matrix: out.W, or with tie_weights the transposed embedding (a view)."""
        return self.params["embed.W"].T if self.tie_weights else self.params["out.W"]

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

    def _body(self, tokens, state, train, rng, masks):
        """Everything up to the vocabulary scores (N, T, V): embedding -> stack (with D) -> decoder."""
        rng = rng if rng is not None else self.rng
        N, T = tokens.shape
        x, embed_cache = embedding_forward(tokens, self.params["embed.W"])  # (N, T, H)
        x, stack_cache, new_state = self.stack.forward(x, state, self.params, train, rng, masks)
        out = None
        if self.reuse_workspace:  # every forward writes its scores into the same array, see __init__
            out = self.workspace.get("scores", (N, T, self.V), self.dtype, self.xp)
            self._generation += 1
        scores, aff_cache = affine_forward(x, self.decoder_weight(), self.params["out.b"], out=out)  # (N, T, V)
        cache = ModelCache(embed_cache, stack_cache, aff_cache, generation=self._generation)
        return scores, cache, new_state

    @_DIVERGENCE_IS_REPORTED
    def forward(self, tokens, targets, state=None, train=True, rng=None, masks=None):
        """One forward pass over a chunk.

        Inputs: tokens, targets (N, T) integer ids; state (h, c) each (L, N, H)
        or None for zeros; train (dropout on); rng: generator for the masks
        (default: the model's own); masks: {name: (N, T, H) or (N, 1, H)} to
        fix masks (names: mask_names(); shapes: mask_shape(N, T)).
        Returns (loss, cache, new_state). The loss is summed over T and averaged
        over N (see ops/softmax.py for why).
        """
        state = self._check_inputs(tokens, targets, state)
        scores, cache, new_state = self._body(tokens, state, train, rng, masks)
        # With reused buffers, the scores become the probabilities in place (they are not needed again).
        try:
            loss, cache.softmax = softmax_cross_entropy_forward(scores, targets,
                                                                overwrite_scores=self.inplace_softmax)
        except NonFiniteError as exc:  # the weights and tokens were finite, so the scores overflowed
            raise NonFiniteError("the loss is not finite: training diverged (the scores overflowed to inf or "
                                 "NaN). Lower the learning rate or the clipping norm, or check the data") from exc
        return loss, cache, new_state

    def log_probs(self, tokens, state=None):
        """Evaluation-mode log-probabilities of the next word. Returns ((N, T, V), new_state)."""
        state = self._check_inputs(tokens, None, state)
        scores, _, new_state = self._body(tokens, state, False, None, None)
        return log_softmax(scores), new_state

    # --------------------------------------------------------------- backward
    @_DIVERGENCE_IS_REPORTED
    def backward(self, cache: ModelCache, dloss=1.0):
        """Gradients of the loss with respect to every parameter, by name.

        Dense arrays of the parameters' shapes; with ``sparse_embedding_grad``
        (and untied weights), the embedding's is a RowSparseGrad
        (``.to_dense()`` for the full array).
        """
        grads = {}
        if self.reuse_workspace and cache.generation != self._generation:
            raise RuntimeError("this cache's buffers were reused by a later forward (reuse_buffers=True): "
                               "call backward right after the forward that made the cache")
        if cache.softmax is None:
            raise ValueError("this cache has no loss: backward needs the cache of forward(..., targets)")
        dscores = softmax_cross_entropy_backward(dloss, cache.softmax, overwrite_cache=self.inplace_softmax)
        if self.tie_weights:
            dx, d_decoder, grads["out.b"] = self._tied_decoder_backward(dscores, cache.affine)
        else:
            dW_out = (self.workspace.get("d_out.W", (self.H, self.V), self.dtype, self.xp)
                      if self.reuse_workspace else None)
            dx, grads["out.W"], grads["out.b"] = affine_backward(dscores, cache.affine, dW_out=dW_out)
        # Truncated BPTT: no gradient flows into the state carried in from the last chunk.
        dx, _dstate0 = self.stack.backward(dx, cache.stack, grads)
        grads["embed.W"] = embedding_backward(dx, cache.embed, sparse=self.sparse_embedding_grad)
        if self.tie_weights:
            # One matrix, two uses: its gradient is the sum of the embedding's and the decoder's.
            grads["embed.W"] = _add_into(d_decoder, grads["embed.W"])
        return {name: grads[name] for name in self.params}

    def _tied_decoder_backward(self, dscores, cache):
        """Backward of scores = x @ E.T + b with E = embed.W (V, H).

        Returns (dx (N, T, H), dE (V, H), db (V,)). dE = dscores^T x is
        computed as a (V, H) product directly (not the (H, V) product of
        affine_backward, transposed), so it can be written into a reused
        buffer and the embedding's rows added to it.
        """
        xp = self.xp
        x, V = cache.x, self.V
        d2 = dscores.reshape(-1, V)  # (N*T, V)
        x2 = x.reshape(-1, self.H)    # (N*T, H)
        E = cache.W.T  # the (V, H) embedding the forward used
        dx = (d2 @ E).reshape(x.shape)  # d(x @ E.T)/dx = dscores @ E
        if self.reuse_workspace:
            dE = xp.matmul(d2.T, x2, out=self.workspace.get("d_embed.W", (V, self.H), self.dtype, xp))
        else:
            dE = d2.T @ x2
        db = xp.ones(d2.shape[0], dtype=d2.dtype) @ d2  # as in affine_backward: BLAS on every core
        return dx, dE, db


def _add_into(dense, g):
    """dense += g, for g dense or row-sparse (its rows are distinct, so plain indexing adds each once)."""
    if is_row_sparse(g):
        dense[g.rows] += g.values
    else:
        dense += g
    return dense
