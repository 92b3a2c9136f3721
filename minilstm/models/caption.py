"""Image captioning as a conditional language model (Vinyals et al. 2015; Zaremba et al. 2014, section 4.4).

The LSTM sees the image once, as its FIRST input, then writes the caption word by word:

    step       0               1      2      ...   M
    input      W_img f + b     w_1    w_2    ...   w_M          f (F,): the image's fixed features
    predicts   w_1             w_2    w_3    ...   <eos>        every step counted (weight 1)

    features (N, F) --affine (F -> H)--> (N, 1, H) --+
    inputs (N, T-1) --embedding--------> (N, T-1, H) +--> (N, T, H) --stack (L layers with D)--> (N, T, H)
        --affine (H -> V)--> scores (N, T, V) --weighted softmax cross-entropy--> loss

Why the first input and not the initial state (Show-and-Tell's choice): the projected image then
enters the stack through the very connection every word enters by, so the paper's D drops units
of the image exactly as it drops units of a word (``drop0``), and the LSTM's gates decide what of
it to keep in the memory cell, from the zero state every caption starts in. Put into (h0, c0)
instead, the image would bypass D altogether (the recurrent connections are left intact by the
paper's method), and the regularized model would not regularize its only view of the image.

The image projection (``img.W`` (F, H), ``img.b`` (H,)) is learned with the rest: it plays the part
of the CNN's last layer, on fixed features (data/digits.py: raw pixels scaled to [0, 1]).

D is placed by the shared stack (minilstm/stack.py): ``zaremba`` drops the non-recurrent
connections only. Every caption starts from a zero state; batches are right-padded and padding
(weight 0) changes nothing before it (the LSTM reads left to right) and adds nothing to the loss.
The loss of a batch is the summed NLL of each caption averaged over the N captions
(experiments/runner.py's protocol); a model that knows nothing (uniform) has perplexity V.

For decoding (minilstm/decoding.py): ``start(features)`` reads the image and returns the first
word's log-probabilities, ``step(prev, state)`` feeds a word. decoding.py sizes its output by the
source's length, which an image does not have: pass ``max_len`` (experiments/caption.py does).

Shapes: N batch, F image features, T = caption words + 1, H hidden (= embedding) size, L layers,
V vocabulary (``<eos>`` included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import default_rng, get_array_module, to_host
from ..checks import ShapeError, check_positive_int, check_tokens
from ..ops.affine import AffineCache, affine_backward, affine_forward
from ..ops.embedding import EmbeddingCache, embedding_backward, embedding_forward
from ..ops.softmax import SoftmaxCache, log_softmax
from ..stack import StackCache, StackedModel


@dataclass
class CaptionCache:
    """image affine, embed, stack (its masks: ``cache.stack.masks``), output affine and softmax caches."""

    image: AffineCache
    embed: EmbeddingCache | None  # None when the captions are only the image's step
    stack: StackCache
    affine: AffineCache
    softmax: SoftmaxCache | None = None  # set by forward, with the loss

    @property
    def masks(self):
        return self.stack.masks


class CaptionModel(StackedModel):
    """An LSTM language model of captions conditioned on an image's features, fed as its first input.

    Args: num_features (F), vocab_size (V), eos_id, hidden_size (H), num_layers (L), dropout (p),
    dropout_mode, init_scale, dtype, device, seed (weights; the dropout generator gets seed + 1).
    """

    kind = "caption"  # what a checkpoint of it says it is

    def __init__(self, num_features, vocab_size, eos_id=0, hidden_size=256, num_layers=1, dropout=0.0,
                 dropout_mode="zaremba", init_scale=0.08, dtype="float32", device=None, seed=0):
        self.F = check_positive_int("num_features", num_features)
        self.V = check_positive_int("vocab_size", vocab_size)
        self.H = check_positive_int("hidden_size", hidden_size)
        self.L = check_positive_int("num_layers", num_layers)
        if isinstance(eos_id, bool) or not isinstance(eos_id, (int, np.integer)) or not 0 <= eos_id < self.V:
            raise ValueError(f"eos_id must be a word id in [0, {self.V}), got {eos_id!r}")
        self.eos = int(eos_id)
        self._build_stack(self.H, self.H, self.L, dropout, dropout_mode, init_scale, dtype, device, seed)
        self.params = self.init_params(default_rng(seed, self.xp))

    @property
    def target_vocab_size(self):
        return self.V

    def param_shapes(self):
        return {"img.W": (self.F, self.H), "img.b": (self.H,), "embed.W": (self.V, self.H),
                **self.stack.param_shapes(), "out.W": (self.H, self.V), "out.b": (self.V,)}

    # ---------------------------------------------------------------- checks
    def _check_features(self, features):
        """features must be (N, F) finite floats of the model's dtype (one line otherwise)."""
        shape = tuple(getattr(features, "shape", ()))
        if len(shape) != 2 or shape[1] != self.F:
            raise ShapeError(f"image features must have shape (N, F) with F = {self.F} (the model's), got {shape}")
        xp = get_array_module(features)
        if features.dtype.kind != "f":
            raise TypeError(f"image features must be floats, got dtype {features.dtype}")
        if not bool(xp.isfinite(features).all()):
            raise ValueError("image features contain NaN or inf; check the image file or feature array")
        return features.astype(self.dtype, copy=False)

    # ---------------------------------------------------------------- forward
    def _inputs(self, features, inputs):
        """(N, T, H): the projected image, then the embedded words; and the two caches."""
        img, img_cache = affine_forward(features, self.params["img.W"], self.params["img.b"])  # (N, H)
        if inputs.shape[1]:
            words, embed_cache = embedding_forward(inputs, self.params["embed.W"])  # (N, T-1, H)
            x = self.xp.concatenate([img[:, None, :], words], axis=1)
        else:
            x, embed_cache = img[:, None, :], None
        return x, img_cache, embed_cache

    def _body(self, features, inputs, train, rng, masks):
        x, img_cache, embed_cache = self._inputs(features, inputs)
        rng = rng if rng is not None else self.rng
        top, stack_cache, _ = self.stack.forward(x, self.init_state(x.shape[0]), self.params, train, rng, masks)
        scores, aff_cache = affine_forward(top, self.params["out.W"], self.params["out.b"])  # (N, T, V)
        return scores, CaptionCache(img_cache, embed_cache, stack_cache, aff_cache)

    def _check(self, features, inputs, targets=None):
        features = self._check_features(features)
        if inputs.ndim != 2 or inputs.shape[0] != features.shape[0]:
            raise ShapeError(f"inputs must have shape (N, T - 1) with N = {features.shape[0]} (the features'), "
                             f"got {tuple(inputs.shape)}")
        check_tokens("inputs", inputs, self.V)
        if targets is not None:
            N, T1 = inputs.shape
            check_tokens("targets", targets, self.V, shape=(N, T1 + 1), names="(N, T): one more step than inputs")
        return features

    def forward(self, features, inputs, targets, weights, train=True, rng=None, masks=None):
        """One batch (data.digits.batch_captions): features (N, F), inputs (N, T - 1), targets and weights (N, T).

        Returns (loss, cache): the weighted NLL summed over each caption, averaged over the N captions.
        """
        features = self._check(features, inputs, targets)
        scores, cache = self._body(features, inputs, train, rng, masks)
        loss, cache.softmax = self._output_loss(scores, targets, weights)
        return loss, cache

    def backward(self, cache: CaptionCache, dloss=1.0):
        """Gradients of the loss with respect to every parameter, the image projection included (dense arrays)."""
        grads: dict = {}
        dx = self._output_backward(cache, dloss, grads)  # the softmax, then the output affine map
        dx, _dstate0 = self.stack.backward(dx, cache.stack, grads)  # a zero initial state: nothing to learn there
        _, grads["img.W"], grads["img.b"] = affine_backward(dx[:, 0], cache.image)  # the image's step
        if cache.embed is not None:
            grads["embed.W"] = embedding_backward(dx[:, 1:], cache.embed)
        else:
            grads["embed.W"] = self.xp.zeros_like(self.params["embed.W"])
        return {name: grads[name] for name in self.params}

    def nll(self, features, inputs, targets, weights):
        """(summed NLL, counted tokens) of a batch in evaluation mode (no dropout), teacher forced."""
        loss, _ = self.forward(features, inputs, targets, weights, train=False)
        return loss * features.shape[0], float(weights.sum())

    def log_probs(self, features, inputs):
        """(N, T, V) log-probabilities of every step's next word, dropout off (the ensemble averages these)."""
        features = self._check(features, inputs)
        scores, _ = self._body(features, inputs, False, None, None)
        return log_softmax(scores)

    # --------------------------------------------------------------- decoding
    def start(self, features):
        """Read the images, features (N, F) or a list of N (F,) rows, from a zero state.

        Returns (state, log_probs): (h, c), each (L, N, H), and the (N, V) log-probs of the first word.
        """
        xp = self.xp
        features = xp.asarray(np.stack([to_host(f) for f in features]) if isinstance(features, list) else features)
        features = self._check_features(features)
        img, _ = affine_forward(features, self.params["img.W"], self.params["img.b"])
        top, _, state = self.stack.forward(img[:, None, :], self.init_state(img.shape[0]), self.params, False, None)
        scores, _ = affine_forward(top[:, 0], self.params["out.W"], self.params["out.b"])
        return state, log_softmax(scores)

    def step(self, prev_tokens, state):
        """Feed the words just emitted, prev_tokens (N,), from state; returns (state, (N, V) log-probs)."""
        xp = self.xp
        x, _ = embedding_forward(xp.asarray(prev_tokens, dtype=xp.int64)[:, None], self.params["embed.W"])
        top, _, new_state = self.stack.forward(x, state, self.params, False, None)
        scores, _ = affine_forward(top[:, 0], self.params["out.W"], self.params["out.b"])
        return new_state, log_softmax(scores)
