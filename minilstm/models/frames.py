"""Frame classification: an LSTM names the class of every speech frame (Zaremba et al. 2014, section 4.2).

    frames (N, T, D) --stack (L layers with D; drop0 on the frames)--> (N, T, H)
        --affine (H -> C)--> scores (N, T, C) --weighted softmax cross-entropy--> loss

The paper's acoustic model (Table 2): frames of an utterance in, one softmax
per frame out, the frame accuracy as the score. The frames are dense vectors
(D = 13 MFCC-like numbers), so there is no embedding: they enter layer 1
directly, and D (dropout) is placed by the shared stack (minilstm/stack.py)
exactly as for words: ``zaremba`` (the paper) on the non-recurrent connections
only, ``drop0`` on the frames entering layer 1 (a mask of width D there),
``drop{L}`` on the top h entering the softmax.

Every utterance starts from a zero state. Utterances shorter than the batch's
longest are right-padded with weight-0 frames: the LSTM reads left to right,
so padding after an utterance cannot change anything before it, and its
weight 0 keeps it out of the loss, the gradient and the accuracy.

The loss of a batch is the weighted frame NLL summed over each utterance and
averaged over the N utterances (the language model's scale, ops/softmax.py),
so ``runner.fit`` trains it as it trains the translation model.

Shapes: N batch, T frames, D features, H hidden size, L layers, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import default_rng, get_array_module, to_host
from ..checks import ShapeError, check_all_finite, check_float, check_tokens
from ..ops.affine import AffineCache, affine_forward
from ..ops.softmax import SoftmaxCache
from ..stack import StackCache, StackedModel


@dataclass
class FramesCache:
    """stack (its masks: ``cache.stack.masks``), affine and softmax caches of one forward."""

    stack: StackCache
    affine: AffineCache
    softmax: SoftmaxCache | None = None  # set by forward, with the loss

    @property
    def masks(self):
        return self.stack.masks


class FrameClassifier(StackedModel):
    """An LSTM stack over dense frames with a softmax over C classes at every frame.

    Args: feature_size (D), num_classes (C), hidden_size (H), num_layers (L),
    dropout (p), dropout_mode, init_scale, dtype, device, seed (weights; the
    model's own dropout generator gets seed + 1).
    """

    kind = "speech"  # what a checkpoint of it says it is

    def __init__(self, feature_size, num_classes, hidden_size=128, num_layers=2, dropout=0.0,
                 dropout_mode="zaremba", init_scale=0.08, dtype="float32", device=None, seed=0):
        for name, value in (("feature_size", feature_size), ("num_classes", num_classes),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        self.D, self.C, self.H, self.L = int(feature_size), int(num_classes), int(hidden_size), int(num_layers)
        if self.C < 2:
            raise ValueError(f"num_classes must be 2 or more, got {self.C}")
        self._build_stack(self.D, self.H, self.L, dropout, dropout_mode, init_scale, dtype, device, seed)
        self.params = self.init_params(default_rng(seed, self.xp))

    def param_shapes(self):
        return {**self.stack.param_shapes(), "out.W": (self.H, self.C), "out.b": (self.C,)}

    # ---------------------------------------------------------------- forward
    def _check_frames(self, frames):
        if getattr(frames, "ndim", None) != 3 or frames.shape[2] != self.D:
            raise ShapeError(f"frames must have shape (N, T, {self.D}) (D = {self.D} features per frame), "
                             f"got {tuple(getattr(frames, 'shape', ()))}")
        check_float("frames", frames, like=self.params["out.W"])
        check_all_finite({"frames": frames})  # a NaN frame would poison every later step of its utterance

    def scores(self, frames, train=False, rng=None, masks=None):
        """frames (N, T, D) -> (scores (N, T, C), FramesCache without its softmax)."""
        self._check_frames(frames)
        return self._scores(frames, train, rng, masks)

    def _scores(self, frames, train, rng, masks):
        rng = rng if rng is not None else self.rng
        top, stack_cache, _ = self.stack.forward(frames, self.init_state(frames.shape[0]), self.params, train,
                                                 rng, masks)
        scores, aff_cache = affine_forward(top, self.params["out.W"], self.params["out.b"])
        return scores, FramesCache(stack_cache, aff_cache)

    def forward(self, frames, labels, weights, train=True, rng=None, masks=None):
        """One batch: frames (N, T, D), labels (N, T) class ids, weights (N, T) (1 a frame, 0 padding).

        Returns (loss, cache): the weighted frame NLL summed over each utterance, averaged over the N
        utterances. ``masks`` {name: mask} fixes dropout masks (a gradient check replays them).
        """
        self._check_frames(frames)
        check_tokens("labels", labels, self.C, shape=frames.shape[:2], names="(N, T) like frames")
        scores, cache = self._scores(frames, train, rng, masks)
        loss, cache.softmax = self._output_loss(scores, labels, weights)
        return loss, cache

    def backward(self, cache: FramesCache, dloss=1.0):
        """Gradients of the loss with respect to every parameter, by name."""
        grads: dict = {}
        dx = self._output_backward(cache, dloss, grads)  # the softmax, then the output affine map
        # The frames are data and every utterance starts from zeros: dx and the state's gradient go nowhere.
        self.stack.backward(dx, cache.stack, grads)
        return {name: grads[name] for name in self.params}

    # ------------------------------------------------------------- evaluation
    def nll(self, frames, labels, weights):
        """(summed frame NLL, counted frames) of a batch in evaluation mode (no dropout)."""
        loss, _ = self.forward(frames, labels, weights, train=False)
        return loss * frames.shape[0], float(weights.sum())

    def predict(self, frames):
        """The most probable class of every frame: (N, T) int64, dropout off."""
        scores, _ = self.scores(frames)
        return scores.argmax(axis=2)

    def frame_accuracy(self, frames, labels, weights):
        """(frames right, frames counted) of a batch: weight-0 padding counts for nothing."""
        xp = get_array_module(frames)
        right = (self.predict(frames) == xp.asarray(labels)) * weights
        return float(right.sum()), float(weights.sum())

    def host_params(self):
        return {k: to_host(v) for k, v in self.params.items()}
