"""Captions of handwritten digits: the paper's Table 4 (image caption generation) in miniature.

Zaremba et al. (2014, section 4.4) regularize Vinyals et al.'s Show-and-Tell captioner: a CNN
turns an image into a feature vector, and an LSTM writes the caption word by word. Here the
images are scikit-learn's bundled handwritten digits (``load_digits``: 1,797 images of 8x8
pixels, 16 grey levels, no download), three of them side by side make one 8x24 image, and its
caption names the three digits, in one of three phrasings:

    image 3|1|4   ->   "a picture of 3 1 4"   or   "the digits 3 1 4"   or   "3 1 4 written by hand"

Disjoint pools. The 1,797 digit images are shuffled once (``seed``) and cut into a training,
a validation and a test pool (1,000 / 390 / 390 images); a composite of a split uses images of
its own pool only, so a test image was never seen in training, not even inside another
composite: the model must read handwriting, not remember pictures.

Features. The fixed image features are the raw pixels scaled to [0, 1] (16 grey levels / 16),
F = 8 x 24 = 192 numbers per image, row by row; the model's own affine map (models/caption.py)
plays the role of the CNN's last layer. Nothing is fitted on any split, so nothing can leak.

Captions and references. Each training composite gets ONE caption, its phrasing drawn
uniformly; a validation or test composite has its drawn caption (for perplexity) and all three
phrasings as references (for BLEU). A bare "3 1 4" would have no 4-grams (BLEU undefined), and
one reference per image would mostly measure which phrasing the model happened to pick.

Best achievable perplexity. Given the image, the digits are (nearly always) legible, so the one
thing no model can predict is the phrasing: a 1-in-3 choice, revealed by the caption's first
word ("a", "the" or a digit), after which every word, ``<eos>`` included, is determined. So
``-log p(caption | image) >= log 3`` for every caption, and

    best perplexity = exp(log 3 x captions / tokens)       (tokens: words + <eos>)

about exp(3 log 3 / 20) = 1.18 (captions have 5 or 6 words + ``<eos>``). It is a floor: a model
that misreads a digit pays more.

Shapes: N images, F = 192 features, T = caption words + 1 (the image's step), V = 20 words.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from .corpus import DataError

DIGITS_PER_IMAGE = 3
IMAGE_SHAPE = (8, 8 * DIGITS_PER_IMAGE)  # rows, columns of a composite
NUM_FEATURES = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
POOLS = {"train": 1000, "valid": 390, "test": 390}  # digit images in each disjoint pool
SIZES = {"train": 1000, "valid": 500, "test": 500}  # composite images in each split
PHRASINGS = ("a picture of {}", "the digits {}", "{} written by hand")
# <eos> first (id 0, also the padding id: padding carries weight 0), then the digits, then the other words.
VOCAB = ("<eos>", *[str(d) for d in range(10)], "a", "picture", "of", "the", "digits", "written", "by", "hand")
SPLITS = ("train", "valid", "test")


def load_digit_images():
    """(images (1797, 8, 8) float in [0, 16], labels (1797,) int) from scikit-learn's bundled copy."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digit images come with scikit-learn: pip install 'minilstm[paper]' "
                        "(or pip install scikit-learn)") from None
    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


@dataclass
class CaptionSplit:
    """One split: N composite images and their captions.

    features (N, F) float: the pixels scaled to [0, 1]; digits (N, 3): the digits shown, left to right;
    captions: N lists of word ids (the caption drawn for the image, no <eos>); phrasing (N,): which
    of PHRASINGS it is; sources (N, 3): the index of each digit image in load_digits' order (for the
    disjointness check).
    """

    features: np.ndarray
    digits: np.ndarray
    captions: list
    phrasing: np.ndarray
    sources: np.ndarray

    def __len__(self):
        return len(self.captions)

    def references(self) -> list[list[list[int]]]:
        """For each image, its caption in every phrasing (word ids): the multi-reference BLEU's references."""
        return [[caption_ids(d, k) for k in range(len(PHRASINGS))] for d in self.digits]


@dataclass
class CaptionCorpus:
    """The three splits, the vocabulary (``<eos>`` = id 0) and the best achievable perplexity."""

    train: CaptionSplit
    valid: CaptionSplit
    test: CaptionSplit
    vocab: tuple = VOCAB
    seed: int = 0
    name: str = "digits"
    best_perplexity: dict = field(default_factory=dict)

    @property
    def eos_id(self) -> int:
        return 0

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_features(self) -> int:
        return self.train.features.shape[1]

    def split(self, name) -> CaptionSplit:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
        return getattr(self, name)

    def decode(self, ids) -> list[str]:
        return [self.vocab[i] for i in ids]

    @property
    def description(self) -> str:
        return (f"scikit-learn's 8x8 digits, {DIGITS_PER_IMAGE} side by side ({IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} "
                f"pixels), disjoint image pools {POOLS['train']:,}/{POOLS['valid']}/{POOLS['test']} "
                f"(train/valid/test), {len(self.train):,}/{len(self.valid)}/{len(self.test)} composites, "
                f"captions in {len(PHRASINGS)} phrasings, seed {self.seed}")


def caption_ids(digits, phrasing: int) -> list[int]:
    """The word ids of the caption of ``digits`` (3 ints) in phrasing number ``phrasing``."""
    words = PHRASINGS[phrasing].format(" ".join(str(int(d)) for d in digits)).split()
    return [VOCAB.index(w) for w in words]


def caption_digits(ids) -> list[int]:
    """The digits a caption names, in order (its digit words; ids 1..10 are the digits 0..9)."""
    return [int(i) - 1 for i in ids if 1 <= int(i) <= 10]


def _compose(images, labels, pool, n, rng) -> CaptionSplit:
    """n composites of 3 images drawn (with replacement) from ``pool`` (indices), with drawn phrasings."""
    picks = pool[rng.integers(0, len(pool), size=(n, DIGITS_PER_IMAGE))]  # (n, 3) image indices
    pixels = np.concatenate([images[picks[:, k]] for k in range(DIGITS_PER_IMAGE)], axis=2)  # (n, 8, 24)
    phrasing = rng.integers(0, len(PHRASINGS), size=n)
    digits = labels[picks]
    captions = [caption_ids(d, int(k)) for d, k in zip(digits, phrasing)]
    return CaptionSplit((pixels / 16.0).reshape(n, -1), digits, captions, phrasing, picks)


def best_perplexity(split: CaptionSplit) -> float:
    """exp(log 3 x captions / tokens): the perplexity of a model that reads every digit right and knows
    the phrasing only up to its uniform 1-in-3 choice (module docstring)."""
    tokens = sum(len(c) + 1 for c in split.captions)
    return math.exp(math.log(len(PHRASINGS)) * len(split) / tokens)


def make_digit_captions(seed: int = 0, sizes=None) -> CaptionCorpus:
    """The corpus (module docstring), a function of ``seed`` alone. ``sizes``: {split: composites}."""
    sizes = {**SIZES, **(sizes or {})}
    for name, n in sizes.items():
        if name not in SPLITS or isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"sizes must map {', '.join(SPLITS)} to positive whole numbers, got {name}={n!r}")
    images, labels = load_digit_images()
    rng = np.random.default_rng([seed, 2014])
    order = rng.permutation(len(images))
    pools, start = {}, 0
    for name in SPLITS:  # disjoint: consecutive slices of one permutation
        pools[name] = order[start:start + POOLS[name]]
        start += POOLS[name]
    splits = {name: _compose(images, labels, pools[name], sizes[name], rng) for name in SPLITS}
    corpus = CaptionCorpus(train=splits["train"], valid=splits["valid"], test=splits["test"], seed=seed)
    corpus.best_perplexity = {name: best_perplexity(splits[name]) for name in SPLITS}
    return corpus


def corpus_hash(corpus: CaptionCorpus) -> str:
    """A short fingerprint of the vocabulary and the data: checkpoints of another corpus are refused."""
    h = hashlib.sha256(" ".join(corpus.vocab).encode())
    for name in SPLITS:
        s = corpus.split(name)
        h.update(np.ascontiguousarray(s.features, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(s.phrasing, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(s.digits, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def batch_captions(split: CaptionSplit, batch_size: int, dtype="float32", rng=None, eos_id: int = 0):
    """The split as a list of batches (features, inputs, targets, weights), right-padded.

    features (N, F); inputs (N, T - 1): the caption's words, fed after the image; targets (N, T): the
    words to predict at each step (the image's step predicts the first word, the last word predicts
    <eos>); weights (N, T): 1 on a caption's words and its <eos>, 0 on padding (id 0). With an ``rng``
    the captions are shuffled (training), else kept in order (evaluation). T = the longest caption + 1.
    """
    n = len(split)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    batches = []
    for i in range(0, n, batch_size):
        rows = order[i:i + batch_size]
        caps = [split.captions[r] for r in rows]
        T = max(len(c) for c in caps) + 1
        inputs = np.zeros((len(rows), T - 1), dtype=np.int64)
        targets = np.zeros((len(rows), T), dtype=np.int64)
        weights = np.zeros((len(rows), T), dtype=dtype)
        for k, cap in enumerate(caps):
            inputs[k, :len(cap)] = cap
            targets[k, :len(cap)] = cap
            targets[k, len(cap)] = eos_id
            weights[k, :len(cap) + 1] = 1.0
        batches.append((split.features[rows].astype(dtype), inputs, targets, weights))
    return batches
