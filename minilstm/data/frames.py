"""Speech frames for frame classification: a synthetic corpus from a hidden Markov model, its Bayes ceiling,
your own frames from ``.npz`` files, batching.

Zaremba et al. (2014, section 4.2, Table 2) regularize an acoustic model: an
LSTM reads the feature frames of an utterance (one every 10 ms) and says, at
every frame, which sound is being spoken; the score is the *frame accuracy*.
Their corpus (Icelandic speech) is not public, so ``make_builtin_frames``
makes a miniature whose answer is known exactly.

The generator: a hidden Markov model over phone sub-states
------------------------------------------------------------

P phones, each of K left-to-right sub-states (onset, middle, end), so S = P K
hidden states. Each frame the state either stays (probability ``stay``) or
moves on; after its last sub-state a phone hands over to the first sub-state of
the next phone, drawn from a seeded random *bigram* (a sparse Dirichlet row per
phone, never the same phone again), so which phone comes next is partly
predictable from the one before: the context an LSTM can learn. Each state
emits a D-dimensional Gaussian frame (D = 13, like 13 MFCCs) with unit
variance around its own mean; the means are drawn N(0, I) and scaled by
``separation``, chosen so that the best possible frame accuracy is near the
paper's ~70%.

    state s = phone * K + k        x_t ~ N(mu_s, I)          label_t = phone of s_t

Labels are phones, not sub-states: like the phone targets of TIMIT-style frame
classification, with C = P = 20 classes. The sub-states are still there for a
reason: they make a phone non-stationary inside (its onset sounds unlike its
end) and its duration a sum of K geometric waits, peaked instead of memoryless,
so that *where* the model is inside a phone is information worth tracking.

The Bayes ceiling: filtering by the forward algorithm
-----------------------------------------------------

An LSTM reads left to right: at frame t it has seen x_1..x_t and nothing
after. The best any such reader can do is to name the phone of highest
*filtered* posterior,

    alpha_t(s) = p(s_t = s | x_1..x_t)
               ∝ N(x_t; mu_s, I) * sum_r alpha_{t-1}(r) A[r, s]       (the forward algorithm)
    guess_t    = argmax_p  sum_{s of phone p} alpha_t(s)

computed here in float64, normalised at every step (the *scaled* forward
algorithm: no underflow over 200 frames), with the emission likelihoods in log
space shifted by their maximum, vectorised over utterances (``HMM.filter``).
Its accuracy on a split is the *Bayes ceiling*: no model reading left to right
can beat it in expectation (``bayes_scores``); a model's number above it would
be luck of the split, and is one of the things the tests check against an
independent brute-force enumeration of every state path.

Your own frames
---------------

``load_frames(data_dir)`` reads ``train.npz``, ``valid.npz`` and ``test.npz``,
each with ``features`` (U, T, D) floats and ``labels`` (U, T) class ids in
[0, C), and optionally ``lengths`` (U,) for utterances shorter than T (the
rest is padding, weight 0). There is no Bayes ceiling for them (no known model).

Shapes: U utterances, T frames, D features, S states, P phones = C classes, K sub-states.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .corpus import DataError

FEATURES = 13  # D: 13 MFCC-like coefficients per frame


# ---------------------------------------------------------------------------
# The hidden Markov model
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class HMM:
    """start (S,), trans (S, S) rows summing to 1, means (S, D), phone_of (S,): the phone of each state.
    Every emission is N(means[s], I) (unit variance)."""

    start: np.ndarray
    trans: np.ndarray
    means: np.ndarray
    phone_of: np.ndarray
    num_phones: int

    @property
    def num_states(self) -> int:
        return self.trans.shape[0]

    @property
    def feature_size(self) -> int:
        return self.means.shape[1]

    def sample(self, num_utts: int, num_frames: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """(features (U, T, D) float64, states (U, T) int64), all utterances drawn together, step by step."""
        S, D = self.means.shape
        cum_start, cum_trans = np.cumsum(self.start), np.cumsum(self.trans, axis=1)
        states = np.empty((num_utts, num_frames), dtype=np.int64)
        # Inverse-CDF draws: the first cumulative probability above a uniform number (clipped for rounding).
        s = np.minimum((rng.random((num_utts, 1)) > cum_start).sum(axis=1), S - 1)
        for t in range(num_frames):
            if t:
                s = np.minimum((rng.random((num_utts, 1)) > cum_trans[s]).sum(axis=1), S - 1)
            states[:, t] = s
        features = self.means[states] + rng.standard_normal((num_utts, num_frames, D))
        return features, states

    def log_emissions(self, features) -> np.ndarray:
        """log N(x_t; mu_s, I) up to a constant shared by every state: (U, T, S), float64.
        -||x - mu||^2 / 2 = x.mu - ||mu||^2 / 2 - ||x||^2 / 2; the last term is the same for every s and
        cancels when alpha is normalised, so it is left out."""
        x = np.asarray(features, dtype=np.float64)
        return x @ self.means.T - 0.5 * (self.means ** 2).sum(axis=1)

    def filter(self, features) -> np.ndarray:
        """p(phone at t | x_1..x_t) for every frame: (U, T, P), float64 (the scaled forward algorithm).

        At every step: predict (alpha @ A, the prior of s_t given x_1..x_{t-1}), weigh by the emission
        likelihoods (exp of the log ones minus their row maximum: no overflow, no underflow to 0 for
        every state at once), renormalise. Then sum the sub-states of each phone.
        """
        logb = self.log_emissions(features)
        U, T, S = logb.shape
        post = np.empty((U, T, S))
        prior = np.broadcast_to(self.start, (U, S))
        for t in range(T):
            b = np.exp(logb[:, t] - logb[:, t].max(axis=1, keepdims=True))
            alpha = prior * b
            alpha /= alpha.sum(axis=1, keepdims=True)
            post[:, t] = alpha
            prior = alpha @ self.trans
        phones = np.zeros((U, T, self.num_phones))
        # Sum the sub-states of each phone. (NumPy takes slices in ufunc.at's index; its stubs do not.)
        np.add.at(phones, (slice(None), slice(None), self.phone_of), post)  # type: ignore[arg-type, unused-ignore]
        return phones


def make_hmm(seed=0, num_phones=20, substates=3, feature_size=FEATURES, stay=0.65, separation=0.42,
             concentration=0.25) -> HMM:
    """The generator's HMM, all from ``seed`` (module docstring). ``concentration``: the bigram's Dirichlet
    parameter (small: a few likely successors per phone); ``separation``: the scale of the means."""
    rng = np.random.default_rng([seed, 1])
    P, K = num_phones, substates
    S = P * K
    bigram = rng.dirichlet(np.full(P - 1, concentration), size=P)  # each phone's successors, itself excluded
    trans = np.zeros((S, S))
    for p in range(P):
        for k in range(K):
            s = p * K + k
            trans[s, s] = stay
            if k < K - 1:
                trans[s, s + 1] = 1 - stay  # on to the next sub-state
            else:
                others = [q for q in range(P) if q != p]
                trans[s, [q * K for q in others]] = (1 - stay) * bigram[p]  # on to the first sub-state of a phone
    start = np.zeros(S)
    start[::K] = 1.0 / P  # an utterance starts at the onset of any phone
    means = separation * rng.standard_normal((S, feature_size))
    return HMM(start, trans, means, np.repeat(np.arange(P), K), P)


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

@dataclass
class FrameSplit:
    """features (U, T, D) float32, labels (U, T) int64, weights (U, T) float32 (1 a frame, 0 padding)."""

    features: np.ndarray
    labels: np.ndarray
    weights: np.ndarray

    def __len__(self):
        return self.features.shape[0]

    def first(self, k: int) -> "FrameSplit":
        """The first k utterances (all for 0)."""
        return self if not k else FrameSplit(self.features[:k], self.labels[:k], self.weights[:k])

    @property
    def num_frames(self) -> int:
        return int(np.count_nonzero(self.weights))


@dataclass
class FramesCorpus:
    name: str
    description: str
    num_classes: int
    train: FrameSplit
    valid: FrameSplit
    test: FrameSplit
    hmm: HMM | None = None
    class_names: list = field(default_factory=list)

    @property
    def feature_size(self) -> int:
        return self.train.features.shape[2]

    def split(self, name: str) -> FrameSplit:
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]


def frames_hash(corpus: FramesCorpus) -> str:
    """A 16-hex-digit fingerprint of the training split (a checkpoint refuses other data)."""
    h = hashlib.sha256(f"{corpus.num_classes}:{corpus.train.features.shape}".encode())
    for a in (corpus.train.features, corpus.train.labels, corpus.train.weights):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def make_builtin_frames(seed=0, n_train=1000, n_valid=200, n_test=200, num_frames=200, **hmm_args) -> FramesCorpus:
    """The synthetic corpus (module docstring): the same ``seed`` gives the same arrays, bit for bit.
    Each split is drawn from its own generator, so asking for more training utterances leaves the
    validation and test utterances unchanged."""
    hmm = make_hmm(seed, **hmm_args)
    splits = []
    for k, n in enumerate((n_train, n_valid, n_test)):
        x, states = hmm.sample(n, num_frames, np.random.default_rng([seed, 2, k]))
        splits.append(FrameSplit(x.astype(np.float32), hmm.phone_of[states],
                                 np.ones(states.shape, dtype=np.float32)))
    desc = (f"synthetic speech frames: an HMM of {hmm.num_phones} phones x {hmm.num_states // hmm.num_phones} "
            f"sub-states, {hmm.feature_size}-dimensional unit-variance Gaussian frames, {num_frames}-frame "
            f"utterances ({n_train} / {n_valid} / {n_test}), seed {seed}")
    return FramesCorpus("builtin-frames", desc, hmm.num_phones, splits[0], splits[1], splits[2], hmm=hmm,
                        class_names=[f"ph{p}" for p in range(hmm.num_phones)])


def bayes_scores(hmm: HMM, split: FrameSplit) -> dict:
    """The Bayes ceiling on a split: the accuracy of the filtered posterior's argmax (``accuracy``), its
    expectation under the model (``expected``: the mean of the largest posterior, the same number with
    less noise), and the per-frame NLL of the true phone (``nll``; exp of it is the best frame perplexity).
    Computed on the very float32 frames the models read."""
    post = hmm.filter(split.features)
    w = split.weights.astype(np.float64)
    n = w.sum()
    truth = np.take_along_axis(post, split.labels[..., None], axis=2)[..., 0]
    return {"accuracy": float(((post.argmax(axis=2) == split.labels) * w).sum() / n),
            "expected": float((post.max(axis=2) * w).sum() / n),
            "nll": float((-np.log(np.maximum(truth, 1e-300)) * w).sum() / n)}


# ---------------------------------------------------------------------------
# Your frames
# ---------------------------------------------------------------------------

def _read_split(path: Path, feature_size) -> FrameSplit:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise DataError(f"{path} is missing; a frames folder holds train.npz, valid.npz and test.npz") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as .npz ({str(exc)[:120]})") from None
    if "features" not in arrays or "labels" not in arrays:
        raise DataError(f"{path} must hold 'features' (U, T, D) and 'labels' (U, T); it holds {sorted(arrays)}")
    x, y = arrays["features"], arrays["labels"]
    if x.ndim != 3 or x.shape[0] < 1 or x.shape[1] < 1 or x.dtype.kind not in "fiu":
        raise DataError(f"{path}: features must be numbers of shape (U, T, D), got {x.dtype} {x.shape}")
    if feature_size is not None and x.shape[2] != feature_size:
        raise DataError(f"{path}: frames have {x.shape[2]} features, expected {feature_size} "
                        "(every split must have the same feature size)")
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise DataError(f"{path}: features hold NaN or inf (first at utterance {bad[0]}, frame {bad[1]}); "
                        "clean or drop those frames")
    if y.shape != x.shape[:2] or y.dtype.kind not in "iu" or (y < 0).any():
        raise DataError(f"{path}: labels must be class ids (whole numbers >= 0) of shape {x.shape[:2]}, "
                        f"got {y.dtype} {y.shape}")
    w = np.ones(y.shape, dtype=np.float32)
    if "lengths" in arrays:
        n = arrays["lengths"]
        if n.shape != (x.shape[0],) or n.dtype.kind not in "iu" or (n < 1).any() or (n > x.shape[1]).any():
            raise DataError(f"{path}: lengths must be ({x.shape[0]},) whole numbers from 1 to {x.shape[1]}")
        w = (np.arange(x.shape[1]) < n[:, None]).astype(np.float32)
    return FrameSplit(x.astype(np.float32), y.astype(np.int64) * (w > 0), w)


def load_frames(data_dir, feature_size=None) -> FramesCorpus:
    """Your frames from ``data_dir``/{train,valid,test}.npz (module docstring); one-line DataError for
    anything unusable. ``feature_size``: D required (None: the training split's)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder (it should hold train.npz, valid.npz, test.npz)")
    train = _read_split(data_dir / "train.npz", feature_size)
    valid = _read_split(data_dir / "valid.npz", train.features.shape[2])
    test = _read_split(data_dir / "test.npz", train.features.shape[2])
    C = int(max(s.labels.max() for s in (train, valid, test))) + 1
    if C < 2:
        raise DataError(f"{data_dir}: the labels name only one class; frame classification needs two or more")
    return FramesCorpus(f"frames:{data_dir.name}", f"your frames in {data_dir}", C, train, valid, test)


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------

def batch_frames(split: FrameSplit, batch_size: int, dtype="float32", rng=None) -> list[tuple]:
    """[(features (N, T, D), labels (N, T), weights (N, T))]: utterances in a random order with ``rng``, in
    order without (evaluation). Padding (weight 0) needs no sorting here: frames of one corpus share T."""
    order = np.arange(len(split)) if rng is None else rng.permutation(len(split))
    out = []
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        out.append((split.features[idx].astype(dtype, copy=False), split.labels[idx],
                    split.weights[idx].astype(dtype, copy=False)))
    return out
