"""Model averaging: K models as one, by averaging their predicted PROBABILITIES.

The paper's Tables 1 and 4 compare one regularized model with an ensemble of non-regularized
ones. The ensemble's distribution over the next word is the mean of its members':

    p(w | context) = (1/K) sum_k p_k(w | context)

a mixture, which is itself a probability distribution, and what an "averaged model" means in
Zaremba et al. (and in ``minilstm eval`` with several checkpoints); its perplexity is never above
the members' average perplexity (log is concave). Averaging the log-probs (scores) instead is
another thing: unnormalized, exp(mean_k log p_k) is no distribution and scores exactly the members'
average perplexity; renormalized, prod_k p_k^(1/K) / Z is a different model (a product of experts)
that punishes a word any one member finds unlikely, where the mixture keeps a word any member finds
likely. tests/test_caption.py pins which one this is.

``Ensemble`` offers what one model offers to decoding (minilstm/decoding.py): ``start`` and
``step`` return log(mean_k p_k) (computed as logsumexp_k log p_k - log K, which stays finite where
exp would underflow); its state is every member's state side by side in one flat tuple, so the
decoder's row bookkeeping (axis 1 of every array) works unchanged. ``nll`` scores a batch with the
averaged probabilities, for the ensemble's perplexity.

Shapes: K members, N batch, T steps, V vocabulary.
"""

from __future__ import annotations

from ..backend import get_array_module


def log_mean_exp(log_probs):
    """log((1/K) sum_k exp(log_probs[k])) over the first axis, stably: (K, ...) -> (...)."""
    xp = get_array_module(log_probs)
    top = log_probs.max(axis=0)
    return top + xp.log(xp.exp(log_probs - top).mean(axis=0))


class Ensemble:
    """K trained models of one kind and one vocabulary as one model whose probabilities are their mean."""

    def __init__(self, models, vocab=None):
        models = list(models)
        if not models:
            raise ValueError("an ensemble needs at least one model")
        kinds = {getattr(m, "kind", None) for m in models}
        if len(kinds) != 1:
            raise ValueError(f"an ensemble's models must be of one kind, got {sorted(map(str, kinds))}")
        sizes = {m.target_vocab_size for m in models}
        if len(sizes) != 1:
            raise ValueError(f"an ensemble's models must share one vocabulary, got vocabulary sizes {sorted(sizes)}")
        self.models = models
        self.kind = models[0].kind
        self.eos = models[0].eos
        if any(m.eos != self.eos for m in models):
            raise ValueError("an ensemble's models must share one vocabulary, but their <eos> ids differ")
        self.target_vocab_size = models[0].target_vocab_size
        self.xp = models[0].xp
        self.vocab = vocab
        self._width = None  # arrays of state per member (2 for an LSTM's (h, c))

    def __len__(self):
        return len(self.models)

    # ---------------------------------------------------------------- scoring
    def log_probs(self, *inputs):
        """(..., V) log of the averaged probabilities of every step: inputs as each member's log_probs takes."""
        return log_mean_exp(self.xp.stack([m.log_probs(*inputs) for m in self.models]))

    def nll(self, *batch):
        """(summed NLL, counted tokens) of a batch (..., targets, weights) under the averaged probabilities."""
        *inputs, targets, weights = batch
        xp = self.xp
        lp = self.log_probs(*inputs)  # (N, T, V)
        picked = xp.take_along_axis(lp, targets[..., None], axis=-1)[..., 0]  # (N, T)
        return float(-(picked * weights).sum()), float(weights.sum())

    # --------------------------------------------------------------- decoding
    def _join(self, outs):
        states = [s for s, _ in outs]
        self._width = len(states[0])
        flat = tuple(a for s in states for a in s)
        return flat, log_mean_exp(self.xp.stack([lp for _, lp in outs]))

    def _split(self, flat):
        w = self._width
        return [tuple(flat[k * w:(k + 1) * w]) for k in range(len(self.models))]

    def start(self, sources):
        """Every member reads the sources; returns (all states in one tuple, (N, V) log mean probability)."""
        return self._join([m.start(sources) for m in self.models])

    def step(self, prev_tokens, state):
        return self._join([m.step(prev_tokens, s) for m, s in zip(self.models, self._split(state))])


def check_same_setting(metas, paths):
    """One-line refusal unless every checkpoint's meta dict says the same kind, vocabulary and data.

    metas: the checkpoints' meta dicts; paths: their names (for the message).
    """
    first, where = metas[0], paths[0]
    for meta, path in zip(metas[1:], paths[1:]):
        for key, what in (("kind", "kind of model"), ("vocab", "vocabulary"), ("vocab_hash", "data")):
            if meta.get(key) != first.get(key):
                raise ValueError(f"{path} and {where} have another {what}; an ensemble averages models of one "
                                 "experiment (same kind, vocabulary and data)")
    return True


__all__ = ["Ensemble", "log_mean_exp", "check_same_setting"]
