"""Sampling text from a trained language model.

Start from a zero state, feed the priming words one by one (carrying the
state), then repeatedly draw the next word from softmax(scores / temperature)
and feed it back in. Temperature < 1 sharpens the distribution (safer, more
repetitive text), > 1 flattens it (more surprising, more mistakes).
"""

from __future__ import annotations

import math

import numpy as np

from .backend import to_host
from .data import DataError, encode


def sample(model, vocab, length=50, temperature=1.0, prime="", rng=None, stop_at_eos=False, progress=False):
    """Generate ``length`` words after the words of ``prime``. Returns the list of generated words.

    rng: a NumPy generator (seeded by the caller) for the draws.
    progress: show how far it is (a bar on a terminal, a few lines in a log): long samples take minutes.
    """
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be a whole number of words, 0 or more, got {length!r}"[:200])
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating))
            or not math.isfinite(temperature) or temperature <= 0):  # NaN would pass a plain `<= 0`
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}"[:200])
    rng = rng if rng is not None else np.random.default_rng(0)
    word_to_id = {w: i for i, w in enumerate(vocab)}
    words = prime.split()
    if words:
        try:
            ids = encode(words, word_to_id)
        except DataError as exc:
            raise DataError(f"cannot prime with {prime!r}: {exc}") from exc
    else:  # no prime: start as after the end of a sentence
        ids = encode(["<eos>"], word_to_id) if "<eos>" in word_to_id else np.array([0])
    xp = model.xp
    state = None
    lp, state = model.log_probs(xp.asarray(np.asarray(ids)[None, :]), state)  # (1, T, V)
    out = []
    from .progress import progress_iter

    for _ in progress_iter(range(length), length, progress, "words"):
        logits = to_host(lp[0, -1]).astype(np.float64) / temperature
        p = np.exp(logits - logits.max())
        p /= p.sum()
        nxt = int(rng.choice(len(p), p=p))
        out.append(vocab[nxt])
        if stop_at_eos and vocab[nxt] == "<eos>":
            break
        lp, state = model.log_probs(xp.asarray(np.array([[nxt]])), state)
    return out


def format_text(words):
    """Words to text, one sentence per line at every <eos>."""
    return " ".join(words).replace(" <eos> ", "\n").replace("<eos>", "\n").strip()
