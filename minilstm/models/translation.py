"""Translation as language modelling (Sutskever et al. 2014; Zaremba et al. 2014, section 4.3).

One LSTM reads a source sentence and its translation as one sequence,

    inputs   x_S ... x_2 x_1 <sep>  y_1  y_2 ... y_M           the source reversed, a separator, the target
    predicts  -   ...  -   -   y_1   y_2  y_3 ... <eos>         the next word, counted on the target only

and is trained as a language model on it: the loss and the perplexity count
only the target words and ``<eos>`` (per-token weight 1), never the source,
the separator or padding (weight 0; ops/softmax.py). Reading the source
backwards puts its first words next to the target's first words, which
Sutskever et al. found makes the long dependency short where it starts.

    inputs (N, T) --embedding--> (N, T, H) --stack (L layers with D)--> (N, T, H)
        --affine (H -> Vt)--> scores (N, T, Vt) --weighted softmax cross-entropy--> loss

D is placed by the shared stack (minilstm/stack.py), exactly as in the language
model: ``zaremba`` (the paper) drops the non-recurrent connections only.

Vocabularies (data/parallel.py): source ids in [0, Vs), the separator Vs, and a
target word t enters as Vs + 1 + t, so the embedding has Vin = Vs + 1 + Vt
rows; the softmax is over the Vt target words only (``<eos>`` among them), so a
model that knows nothing (uniform) has perplexity exactly Vt.

Every sentence pair starts from a zero state (no state is carried between
batches). Batches are right-padded: an LSTM reads left to right, so padding
after a sentence's end cannot change anything before it, and its weight 0
keeps it out of the loss and the gradient.

The loss of a batch is the target NLL summed over each sentence and averaged
over the N sentences (the language model's scale, ops/softmax.py); perplexity
is exp(total target NLL / total target tokens, ``<eos>`` included).

For decoding (minilstm/decoding.py) the model offers ``start(sources)`` (read
the reversed sources and ``<sep>``, return the state and the first word's
log-probabilities) and ``step(prev_tokens, state)``.

Shapes: N batch, T time, H hidden (= embedding) size, L layers, Vs / Vt source /
target vocabulary, Vin = Vs + 1 + Vt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import default_rng, to_host
from ..checks import ShapeError, check_tokens
from ..ops.affine import AffineCache, affine_forward
from ..ops.embedding import EmbeddingCache, embedding_backward, embedding_forward
from ..ops.softmax import SoftmaxCache, log_softmax
from ..stack import StackCache, StackedModel


@dataclass
class TranslationCache:
    """embed, stack (its masks: ``cache.stack.masks``), affine and softmax caches of one forward."""

    embed: EmbeddingCache
    stack: StackCache
    affine: AffineCache
    softmax: SoftmaxCache | None = None  # set by forward, with the loss

    @property
    def masks(self):
        return self.stack.masks


class TranslationModel(StackedModel):
    """A conditional LSTM language model over ``reversed(source) <sep> target <eos>``.

    Args: src_vocab_size (Vs), tgt_vocab_size (Vt), eos_id (the target id of
    ``<eos>``), hidden_size (H), num_layers (L), dropout (p), dropout_mode,
    init_scale, dtype, device, seed (weights; the model's own dropout
    generator gets seed + 1).
    """

    kind = "translation"  # what a checkpoint of it says it is (a language model's checkpoint says nothing)

    def __init__(self, src_vocab_size, tgt_vocab_size, eos_id, hidden_size=256, num_layers=2, dropout=0.0,
                 dropout_mode="zaremba", init_scale=0.08, dtype="float32", device=None, seed=0):
        for name, value in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        self.Vs, self.Vt, self.H, self.L = int(src_vocab_size), int(tgt_vocab_size), int(hidden_size), int(num_layers)
        if not 0 <= int(eos_id) < self.Vt:
            raise ValueError(f"eos_id must be a target id in [0, {self.Vt}), got {eos_id}")
        self.eos = int(eos_id)
        self.sep = self.Vs               # the separator's input id
        self.Vin = self.Vs + 1 + self.Vt  # source words, <sep>, target words
        self._build_stack(self.H, self.H, self.L, dropout, dropout_mode, init_scale, dtype, device, seed)
        self.params = self.init_params(default_rng(seed, self.xp))

    # ------------------------------------------------------------------ setup
    @property
    def target_vocab_size(self):
        return self.Vt

    def param_shapes(self):
        return {"embed.W": (self.Vin, self.H), **self.stack.param_shapes(), "out.W": (self.H, self.Vt),
                "out.b": (self.Vt,)}

    # ---------------------------------------------------------------- forward
    def _body(self, inputs, train, rng, masks):
        """inputs (N, T) -> scores (N, T, Vt), the cache, and the stack's cache (for its states)."""
        x, embed_cache = embedding_forward(inputs, self.params["embed.W"])
        rng = rng if rng is not None else self.rng
        x, stack_cache, _ = self.stack.forward(x, self.init_state(inputs.shape[0]), self.params, train, rng, masks)
        scores, aff_cache = affine_forward(x, self.params["out.W"], self.params["out.b"])
        return scores, TranslationCache(embed_cache, stack_cache, aff_cache)

    def forward(self, inputs, targets, weights, train=True, rng=None, masks=None):
        """One batch: inputs, targets (N, T) ids, weights (N, T) (1 counted, 0 not; data.parallel.batch_pairs).

        Returns (loss, cache): the weighted NLL summed over each sentence and
        averaged over the N sentences.
        """
        if inputs.ndim != 2:
            raise ShapeError(f"inputs must have shape (N, T), got {tuple(inputs.shape)}")
        check_tokens("inputs", inputs, self.Vin)
        check_tokens("targets", targets, self.Vt, shape=inputs.shape, names="(N, T) like inputs")
        scores, cache = self._body(inputs, train, rng, masks)
        loss, cache.softmax = self._output_loss(scores, targets, weights)
        return loss, cache

    def backward(self, cache: TranslationCache, dloss=1.0):
        """Gradients of the loss with respect to every parameter, by name (dense arrays)."""
        grads: dict = {}
        dx = self._output_backward(cache, dloss, grads)  # the softmax, then the output affine map
        # Every sentence starts from zeros: the gradient on the initial state goes nowhere.
        dx, _dstate0 = self.stack.backward(dx, cache.stack, grads)
        grads["embed.W"] = embedding_backward(dx, cache.embed)
        return {name: grads[name] for name in self.params}

    def nll(self, inputs, targets, weights):
        """(summed target NLL, counted tokens) of a batch in evaluation mode (no dropout), teacher forced."""
        loss, _ = self.forward(inputs, targets, weights, train=False)
        return loss * inputs.shape[0], float(weights.sum())

    # --------------------------------------------------------------- decoding
    def encode_sources(self, sources):
        """The input ids (N, S_max + 1) of reversed sources and <sep>, right-padded, and each <sep>'s position."""
        lengths = [len(s) for s in sources]
        inputs = np.zeros((len(sources), max(lengths) + 1), dtype=np.int64)
        for n, src in enumerate(sources):
            src = np.asarray(src, dtype=np.int64)
            if src.ndim != 1 or (src.size and (src.min() < 0 or src.max() >= self.Vs)):
                raise ValueError(f"source {n} must be a list of source ids in [0, {self.Vs})")
            inputs[n, :len(src)] = src[::-1]
            inputs[n, len(src)] = self.sep
        return inputs, np.asarray(lengths)

    def start(self, sources):
        """Read each source (reversed) and <sep> from a zero state.

        Returns (state, log_probs): the (h, c) at each sentence's <sep>, each
        (L, N, H), and the (N, Vt) log-probabilities of the first target word.
        The sources are right-padded to the longest; each sentence's state is
        taken at its own <sep>, before any padding.
        """
        xp = self.xp
        inputs, pos = self.encode_sources(sources)
        x, _ = embedding_forward(xp.asarray(inputs), self.params["embed.W"])
        N = inputs.shape[0]
        top, cache, _ = self.stack.forward(x, self.init_state(N), self.params, False, None)
        rows, at = xp.arange(N), xp.asarray(pos)
        h = xp.stack([lc.h[rows, at] for lc in cache.lstms])  # (L, N, H): the state right after <sep>
        c = xp.stack([lc.c[rows, at] for lc in cache.lstms])
        scores, _ = affine_forward(top[rows, at], self.params["out.W"], self.params["out.b"])  # (N, Vt)
        return (h, c), log_softmax(scores)

    def step(self, prev_tokens, state):
        """Feed the target words just emitted, prev_tokens (N,), from state; returns (state, (N, Vt) log-probs)."""
        xp = self.xp
        inputs = (xp.asarray(prev_tokens, dtype=xp.int64) + (self.Vs + 1))[:, None]  # target word t -> Vs + 1 + t
        x, _ = embedding_forward(inputs, self.params["embed.W"])
        top, _, new_state = self.stack.forward(x, state, self.params, False, None)
        scores, _ = affine_forward(top[:, 0], self.params["out.W"], self.params["out.b"])
        return new_state, log_softmax(scores)

    def host_params(self):
        return {k: to_host(v) for k, v in self.params.items()}
