"""Visible tests of the ``translation`` assignment: the target-only loss, and greedy decoding.

Translation as a conditional language model in one paragraph: one LSTM reads
``reversed(source) <sep> target <eos>`` as one sequence (minilstm/models/translation.py).
Only the target words and ``<eos>`` are predictions to score, so the softmax
cross-entropy takes per-token weights, 1 for those and 0 for the source, the
separator and the padding. To translate, the model reads the source and then
writes the target itself, word by word: greedy decoding takes the most likely
word at every step until ``<eos>`` (or a maximum length).
"""

import numpy as np
import pytest
from assignment_helpers import expect_close, expect_gradients, randn, rng

from minilstm import decoding, gradcheck
from minilstm.models.translation import TranslationModel
from minilstm.ops import softmax

# ---------------------------------------------------------------------------- masked_loss


def token_nll(scores, y):
    """-log p(y) of every token, written plainly: (N, T) from scores (N, T, V) and y (N, T)."""
    s = scores - scores.max(axis=-1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]


def batch(seed=0, N=3, T=5, V=7):
    """scores, targets and weights of a small batch; the weights mix 0 (ignored), 1 and other values."""
    r = rng(seed)
    scores = randn(r, N, T, V, scale=2.0)
    y = r.integers(0, V, (N, T))
    w = np.where(r.random((N, T)) < 0.4, 0.0, r.uniform(0.5, 2.0, (N, T)))
    w[0, 0], w[-1, -1] = 0.0, 1.0
    return scores, y, w


@pytest.mark.part("translation:masked_loss")
def test_the_weighted_loss_counts_each_token_by_its_weight():
    scores, y, w = batch(0)
    loss, _ = softmax.softmax_cross_entropy_forward(scores, y, weights=w)
    expect_close("softmax_cross_entropy_forward", "the weighted loss (sum of w * -log p over the tokens / N)",
                 loss, (w * token_nll(scores, y)).sum() / scores.shape[0])
    loss, _ = softmax.softmax_cross_entropy_forward(scores, y, normalizer=1.0, weights=w)
    expect_close("softmax_cross_entropy_forward", "the weighted loss with normalizer=1 (the summed weighted NLL)",
                 loss, (w * token_nll(scores, y)).sum())


@pytest.mark.part("translation:masked_loss")
def test_a_token_of_weight_zero_changes_nothing():
    scores, y, w = batch(1)
    before, _ = softmax.softmax_cross_entropy_forward(scores, y, weights=w)
    other = scores.copy()
    other[w == 0] = randn(rng(2), int((w == 0).sum()), scores.shape[-1], scale=5.0)  # other scores where w = 0
    after, cache = softmax.softmax_cross_entropy_forward(other, y, weights=w)
    expect_close("softmax_cross_entropy_forward", "the loss after changing the scores of weight-0 tokens "
                 "(they must add nothing)", after, before)
    dscores = softmax.softmax_cross_entropy_backward(1.0, cache)
    if np.any(dscores[w == 0] != 0):
        raise AssertionError("softmax_cross_entropy_backward: a token with weight 0 got a gradient; scale each row "
                             "of dscores by its token's weight (0 for an ignored token)")


@pytest.mark.part("translation:masked_loss")
def test_the_weighted_gradient_matches_finite_differences():
    scores, y, w = batch(3, N=2, T=4, V=5)
    report = gradcheck.check_op(lambda scores: softmax.softmax_cross_entropy_forward(scores, y, weights=w),
                                lambda d, c: (softmax.softmax_cross_entropy_backward(d, c),),
                                dict(scores=scores), ["scores"])
    expect_gradients("softmax_cross_entropy_backward", report,
                     "each row of the gradient is the unweighted row times its token's weight")


@pytest.mark.part("translation:masked_loss")
def test_weights_of_ones_give_the_plain_loss():
    scores, y, _ = batch(4)
    plain, plain_cache = softmax.softmax_cross_entropy_forward(scores, y)
    ones, ones_cache = softmax.softmax_cross_entropy_forward(scores, y, weights=np.ones(y.shape))
    expect_close("softmax_cross_entropy_forward", "the loss with weights of all ones", ones, plain, tol=1e-12)
    expect_close("softmax_cross_entropy_backward", "the gradient with weights of all ones",
                 softmax.softmax_cross_entropy_backward(1.0, ones_cache),
                 softmax.softmax_cross_entropy_backward(1.0, plain_cache), tol=1e-12)


# ---------------------------------------------------------------------------- greedy


class CountingModel:
    """A model that says ``first, first + 1, ...`` (wrapping around, never <eos>'s id) and then <eos>:
    sentence n starts at ``first = 1 + source[0] % (Vt - 1)`` and ends after as many words as its source
    has (with ``ends=False`` it never ends). It implements the decoding protocol of minilstm/decoding.py;
    its state is one (1, N, 3) array (first word, source length, step), the batch on axis 1.
    ``ties``: the last id is always as likely as the word (the lowest id must win).
    """

    xp = np
    eos = 0

    def __init__(self, Vt=7, ends=True, ties=False):
        self.target_vocab_size, self.ends, self.ties = Vt, ends, ties
        self.steps, self.rows = 0, []  # how many model.step calls, and the rows of each

    def words(self, source, n):
        """The first n words this model says for ``source`` (what greedy decoding must find)."""
        first = 1 + int(source[0]) % (self.target_vocab_size - 1)
        return [1 + (first - 1 + k) % (self.target_vocab_size - 1) for k in range(n)]

    def _log_probs(self, state):
        first, length, k = state[0].T  # each (N,)
        logits = np.zeros((len(k), self.target_vocab_size))
        word = 1 + (first - 1 + k) % (self.target_vocab_size - 1)
        logits[np.arange(len(k)), word] = 3.0
        if self.ties:
            logits[:, self.target_vocab_size - 1] = 3.0
        if self.ends:
            logits[k == length, self.eos] = 6.0
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def start(self, sources):
        state = np.array([[1 + int(s[0]) % (self.target_vocab_size - 1), len(s), 0] for s in sources])[None]
        return (state,), self._log_probs(state)

    def step(self, prev_tokens, state):
        self.steps += 1
        self.rows.append(len(prev_tokens))
        (state,) = state
        if len(prev_tokens) != state.shape[1]:
            raise AssertionError(f"greedy_decode: model.step got {len(prev_tokens)} words for a state of "
                                 f"{state.shape[1]} rows; feed one word per row of the state")
        state = state.copy()
        state[0, :, 2] += 1
        return (state,), self._log_probs(state)


SOURCES = [np.array([3, 1, 4]), np.array([1]), np.array([5, 9, 2, 6, 5]), np.array([3, 5])]


def expect_sentences(what, got, want):
    if not isinstance(got, list) or len(got) != len(want):
        raise AssertionError(f"greedy_decode: return a list of {len(want)} lists of target ids, one per source; "
                             f"got {got!r:.200}")
    for n, (mine, theirs) in enumerate(zip(got, want)):
        if [int(x) for x in mine] != theirs:
            raise AssertionError(f"greedy_decode: ({what}) sentence {n} is {list(mine)}, expected {theirs}")


@pytest.mark.part("translation:greedy")
def test_greedy_stops_at_eos_and_leaves_it_out():
    model = CountingModel()
    want = [model.words(s, len(s)) for s in SOURCES]  # as many words as the source, then <eos> (not returned)
    expect_sentences("a model that ends each sentence after as many words as its source",
                     decoding.greedy_decode(model, SOURCES), want)
    expect_sentences("one sentence", decoding.greedy_decode(CountingModel(), SOURCES[2:3]), want[2:3])


@pytest.mark.part("translation:greedy")
def test_greedy_stops_at_max_len():
    model = CountingModel(ends=False)
    expect_sentences("a model that never says <eos>, max_len=4", decoding.greedy_decode(model, SOURCES, max_len=4),
                     [model.words(s, 4) for s in SOURCES])
    expect_sentences("a model that never says <eos>, max_len=None: 2 S + 10 words for a source of S words",
                     decoding.greedy_decode(model, SOURCES), [model.words(s, 2 * len(s) + 10) for s in SOURCES])
    ending = CountingModel()  # <eos> would come after 5 words: max_len=3 cuts it first
    expect_sentences("max_len=3, before the <eos>", decoding.greedy_decode(ending, SOURCES[2:3], max_len=3),
                     [ending.words(SOURCES[2], 3)])


@pytest.mark.part("translation:greedy")
def test_ties_go_to_the_lowest_id():
    model = CountingModel(ties=True)
    expect_sentences("two words share the largest log-prob at every step: take the lower id",
                     decoding.greedy_decode(model, SOURCES), [model.words(s, len(s)) for s in SOURCES])


@pytest.mark.part("translation:greedy")
def test_one_model_step_per_time_step_for_the_whole_batch():
    model = CountingModel()
    decoding.greedy_decode(model, SOURCES)
    longest = max(len(s) for s in SOURCES) + 1  # its words and <eos>
    if model.steps != longest - 1:
        raise AssertionError(f"greedy_decode: model.step was called {model.steps} times; the longest sentence "
                             f"takes {longest} tokens (model.start gives the first), so {longest - 1} calls, each "
                             "for all the sentences still decoding")
    want = [sum(len(s) + 1 > t for s in SOURCES) for t in range(1, longest)]
    if model.rows != want:
        raise AssertionError(f"greedy_decode: model.step got {model.rows} rows at its calls, expected {want}: a "
                             "sentence leaves the batch once it said <eos> (drop its row from the state)")


def small_translation_model(seed=0):
    model = TranslationModel(7, 6, eos_id=2, hidden_size=8, num_layers=2, dtype="float64", seed=seed)
    r = rng(seed)
    for name, value in model.params.items():  # larger weights than the initialisation: varied translations
        model.params[name] = r.uniform(-2.0, 2.0, value.shape)
    return model


@pytest.mark.part("translation:greedy")
def test_batched_greedy_equals_one_sentence_at_a_time_and_a_beam_of_one():
    sources = [rng(k).integers(0, 7, 1 + k % 5) for k in range(8)]
    for seed in range(3):
        model = small_translation_model(seed)
        together = decoding.greedy_decode(model, sources)
        alone = [decoding.greedy_decode(model, [s])[0] for s in sources]
        expect_sentences(f"a random TranslationModel (seed {seed}): the batch against one sentence at a time",
                         together, [[int(x) for x in a] for a in alone])
        # beam_search (given) with a beam of 1 is greedy decoding exactly
        expect_sentences(f"a random TranslationModel (seed {seed}): against beam_search(beam_size=1)", together,
                         decoding.beam_search(model, sources, beam_size=1))
