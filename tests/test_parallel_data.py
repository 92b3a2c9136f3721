"""Tests of minilstm.data.parallel: the built-in English->French corpus, its best perplexity, the
model's view of a pair (reversed source, <sep>, target, <eos>), batching by length, and user files.

The best perplexity is checked independently of how the generator recorded it: for each pair the
whole target distribution is enumerated again from the English words alone (every combination of
synonym choices), and the recorded probability must be the enumerated one.
"""

from __future__ import annotations

import codecs
import itertools
import math
import time
from collections import Counter

import numpy as np
import pytest

from minilstm.data import DataError, ParallelCorpus, load_parallel, make_builtin_parallel
from minilstm.data import parallel as P


@pytest.fixture(scope="module")
def corpus():
    return make_builtin_parallel(seed=0)


def words(corpus, pair):
    src, tgt = pair
    return corpus.decode_src(src), corpus.decode_tgt(tgt)


def enumerate_targets(english_words):
    """{target tuple: probability}, by trying every combination of choices on the parsed English.

    Also returns the number of combinations, so the caller can check that no two gave the same target.
    """
    sent = P.parse_english(english_words)
    slots = []

    def record(options):
        slots.append(options)
        return 0

    P.french(sent, record)
    dist = Counter()
    combos = list(itertools.product(*(range(len(s)) for s in slots)))
    for combo in combos:
        answers = iter(combo)
        target = tuple(P.french(sent, lambda options: next(answers)))
        dist[target] += math.prod(slots[i][k][0] for i, k in enumerate(combo))
    return dict(dist), len(combos)


# ---------------------------------------------------------------------------
# The built-in corpus
# ---------------------------------------------------------------------------

def test_same_seed_same_corpus_other_seed_different(corpus):
    again = make_builtin_parallel(seed=0)
    other = make_builtin_parallel(seed=1)
    for split in P.SPLITS:
        a, b = getattr(corpus, split), getattr(again, split)
        assert len(a) == len(b)
        assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
        np.testing.assert_array_equal(corpus.nll[split], again.nll[split])
    assert corpus.best_perplexity == again.best_perplexity
    assert corpus.description == again.description
    same = sum(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
               for x, y in zip(corpus.train, other.train))
    assert same < len(corpus.train) // 10
    # The vocabularies are the grammar's, not the sample's: identical for every seed.
    assert (other.src_vocab, other.tgt_vocab) == (corpus.src_vocab, corpus.tgt_vocab)
    assert P.parallel_vocab_hash(other) == P.parallel_vocab_hash(corpus)


def test_sizes_lengths_and_vocabularies(corpus):
    assert corpus.name == "builtin-fr"
    assert [len(getattr(corpus, s)) for s in P.SPLITS] == [3000, 500, 500]
    assert corpus.sizes == (len(corpus.src_vocab), len(corpus.tgt_vocab)) == (119, 220)
    assert corpus.input_vocab_size == 119 + 1 + 220 and corpus.sep_id == 119
    assert P.UNK in corpus.src_vocab and {P.EOS, P.UNK} <= set(corpus.tgt_vocab)
    assert P.SEP not in corpus.src_vocab and P.SEP not in corpus.tgt_vocab
    for split in P.SPLITS:
        for pair in getattr(corpus, split):
            src, tgt = pair
            assert src.dtype == tgt.dtype == np.int64
            assert P.MIN_WORDS <= len(src) <= P.MAX_WORDS
            assert corpus.eos_id not in tgt and corpus.tgt_unk_id not in tgt and corpus.src_unk_id not in src
    # Every target word of the grammar occurs in train (except the two specials): all are learnable.
    seen = {int(i) for _, tgt in corpus.train for i in tgt}
    assert seen == set(range(len(corpus.tgt_vocab))) - {corpus.eos_id, corpus.tgt_unk_id}


def test_builtin_parallel_is_fast():
    start = time.perf_counter()
    make_builtin_parallel(seed=3)
    assert time.perf_counter() - start < 5


def test_valid_and_test_english_unseen_in_train(corpus):
    train = {tuple(s.tolist()) for s, _ in corpus.train}
    for split in ("valid", "test"):
        assert not any(tuple(s.tolist()) in train for s, _ in getattr(corpus, split))
    assert "in train: 0.0%/0.0%" in corpus.description


def test_recorded_probability_is_the_enumerated_one(corpus):
    """Independent check: the target distribution re-derived from the English alone sums to 1,
    every combination of choices gives a different sentence, and P(target) is the recorded one."""
    for split in P.SPLITS:
        for pair, nll in zip(getattr(corpus, split)[:300], corpus.nll[split][:300]):
            en, fr = words(corpus, pair)
            dist, combos = enumerate_targets(en)
            assert len(dist) == combos                      # no two choice sequences collide
            assert math.isclose(sum(dist.values()), 1.0, rel_tol=1e-12)
            assert tuple(fr) in dist
            assert math.isclose(dist[tuple(fr)], math.exp(-nll), rel_tol=1e-9)
            assert P.translations(en) == pytest.approx(dist)


def test_best_perplexity_recomputed_from_the_enumeration(corpus):
    vt = len(corpus.tgt_vocab)
    for split in P.SPLITS:
        pairs = getattr(corpus, split)
        total = 0.0
        for pair in pairs:
            en, fr = words(corpus, pair)
            total -= math.log(enumerate_targets(en)[0][tuple(fr)])
        tokens = sum(len(tgt) + 1 for _, tgt in pairs)        # one <eos> per sentence
        assert P.num_target_tokens(pairs) == tokens
        expected = math.exp(total / tokens)
        assert math.isclose(corpus.best_perplexity[split], expected, rel_tol=1e-9)
        assert 1.01 < corpus.best_perplexity[split] < 1.2 < vt  # synonyms make it > 1, far below Vt
        assert f"{expected:.4f}" in corpus.description


def test_per_token_conditionals_multiply_to_the_pair_probability(corpus):
    for pair, nll in zip(corpus.valid[:100], corpus.nll["valid"][:100]):
        en, fr = words(corpus, pair)
        logps = P.target_token_logprobs(en, fr)
        assert len(logps) == len(fr) + 1
        assert math.isclose(-sum(logps), nll, rel_tol=1e-9, abs_tol=1e-12)
    # A gender-changing synonym is decided at the article, before the noun shows it.
    en = "the car will wait".split()
    lp = P.target_token_logprobs(en, "la voiture attendra".split())
    assert lp == pytest.approx([math.log(.7), 0, 0, 0])
    lp = P.target_token_logprobs(en, "le véhicule attendra".split())
    assert lp == pytest.approx([math.log(.3), 0, 0, 0])


@pytest.mark.parametrize("english, expected", [
    ("the dog sleeps in the garden", {"le chien dort dans le jardin": 1.0}),
    ("these small dogs do not sleep", {"ces petits chiens ne dorment pas": 1.0}),
    ("she did not eat an apple", {"elle n' a pas mangé de pomme": .8, "elle n' a pas dévoré de pomme": .2}),
    ("they will not like a white cat", {"ils n' aimeront pas de chat blanc": .7,
                                        "ils n' adoreront pas de chat blanc": .3}),
    ("some girls ran at the gardens", {"des filles ont couru aux jardins": 1.0}),
    ("a king found the cake near a city", {"un roi a trouvé le gâteau près d' une ville": .7,
                                           "un roi a trouvé le gâteau à côté d' une ville": .3}),
    ("the cow laughs near the car", {"la vache rit près de la voiture": .49, "la vache rit près du véhicule": .21,
                                     "la vache rit à côté de la voiture": .21,
                                     "la vache rit à côté du véhicule": .09}),
    ("this big bike waits", {"ce grand vélo attend": .42, "cette grande bicyclette attend": .28,
                             "ce gros vélo attend": .18, "cette grosse bicyclette attend": .12}),
])
def test_hand_written_translations(english, expected):
    """The grammar's French, written by hand: agreement, adjective order, tenses, negation,
    pas de, contractions, and synonyms with their probabilities."""
    dist = P.translations(english)
    assert {" ".join(k): v for k, v in dist.items()} == pytest.approx(expected)


def test_target_distribution_is_a_function_of_the_english():
    """The English determines the structure (parse round trip), and the structure alone the French."""
    rng = np.random.default_rng(7)
    for _ in range(3000):
        sent = P.sample_sentence(rng)
        en = P.english(sent)
        assert P.parse_english(en) == sent
    with pytest.raises(DataError):
        P.parse_english("the dog eat")          # not a sentence of the grammar


def test_sampled_french_follows_the_stated_probabilities():
    """sample_french draws each target with the enumerated probability and records its -log P."""
    sent = P.parse_english("the doctor will carry this car near the river")
    dist = P.translations(P.english(sent))
    rng = np.random.default_rng(0)
    n = 20000
    counts = Counter()
    for _ in range(n):
        fr, nll = P.sample_french(sent, rng)
        assert math.isclose(math.exp(-nll), dist[tuple(fr)], rel_tol=1e-9)
        counts[tuple(fr)] += 1
    for target, p in dist.items():
        assert abs(counts[target] / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-3


def test_each_synonym_choice_is_between_distinct_tokens():
    lists = ([syn for _, _, syn in P.NOUNS] + [syn for _, syn, _ in P.ADJECTIVES]
             + [syn for _, _, syn in P.VERBS] + [syn for _, syn in P.PREPOSITIONS])
    with_synonyms = 0
    for syn in lists:
        assert math.isclose(sum(p for p, _ in syn), 1.0)
        if len(syn) > 1:
            with_synonyms += 1
            forms = [set(f for f in forms if f not in ("m", "f", "de")) for _, forms in syn]
            for a, b in itertools.combinations(forms, 2):
                assert not a & b, (a, b)
    assert 0.25 <= with_synonyms / len(lists) <= 0.35   # about 30% of the words


# ---------------------------------------------------------------------------
# The model's view: encode_pair, batch_pairs
# ---------------------------------------------------------------------------

def test_encode_pair_by_hand():
    Vs, eos = 10, 7
    inputs, targets, weights = P.encode_pair(np.array([1, 2, 3]), np.array([4, 5]), Vs, eos)
    # T = S + 1 + M = 6: reversed source, <sep> = Vs, target shifted by Vs + 1
    assert inputs.tolist() == [3, 2, 1, 10, 15, 16]
    assert targets.tolist() == [0, 0, 0, 4, 5, 7]
    assert weights.tolist() == [0, 0, 0, 1, 1, 1]
    assert inputs.dtype == targets.dtype == np.int64
    with pytest.raises(DataError, match=r"outside \[0, 10\)"):
        P.encode_pair(np.array([10]), np.array([1]), Vs, eos)


def test_encode_pair_on_the_corpus_reverses_the_source(corpus):
    vs, _ = corpus.sizes
    for src, tgt in corpus.valid[:50]:
        inputs, targets, weights = P.encode_pair(src, tgt, vs, corpus.eos_id)
        S, M = len(src), len(tgt)
        assert inputs.shape == targets.shape == weights.shape == (S + 1 + M,)
        assert corpus.decode_src(inputs[:S][::-1]) == corpus.decode_src(src)
        assert inputs[S] == vs == corpus.sep_id
        np.testing.assert_array_equal(inputs[S + 1:] - (vs + 1), tgt)
        np.testing.assert_array_equal(targets[S:], np.append(tgt, corpus.eos_id))
        assert weights.sum() == M + 1 and not weights[:S].any()


def test_num_target_tokens_counts_one_eos_per_sentence():
    pairs = [(np.array([1, 2]), np.array([3, 4])), (np.array([5]), np.array([], dtype=np.int64))]
    assert P.num_target_tokens(pairs) == 3 + 1


def _rows(batches):
    """Each row of each batch, unpadded to its own length, as a hashable tuple."""
    rows = []
    for inputs, targets, weights in batches:
        for x, y, w in zip(inputs, targets, weights):
            length = int(np.flatnonzero(w)[-1]) + 1             # the last counted position (<eos>)
            assert not x[length:].any() and not y[length:].any() and not w[length:].any()
            rows.append((tuple(x[:length]), tuple(y[:length]), tuple(w[:length])))
    return rows


def test_batch_pairs_shapes_padding_and_weights(corpus):
    vs, _ = corpus.sizes
    pairs = corpus.valid
    batches = P.batch_pairs(pairs, 32, vs, corpus.eos_id)
    assert len(batches) == math.ceil(len(pairs) / 32)
    assert [b[0].shape[0] for b in batches] == [32] * (len(batches) - 1) + [len(pairs) - 32 * (len(batches) - 1)]
    lengths = []
    for inputs, targets, weights in batches:
        assert inputs.shape == targets.shape == weights.shape and inputs.ndim == 2
        assert inputs.dtype == targets.dtype == np.int64 and weights.dtype == np.float32
        row_lengths = np.array([int(np.flatnonzero(w)[-1]) + 1 for w in weights])
        assert row_lengths.max() == inputs.shape[1]          # padded to the longest, no further
        lengths.append((row_lengths.min(), row_lengths.max()))
    # Without rng: sorted by length, the shortest batches first.
    assert all(a[1] <= b[0] for a, b in zip(lengths, lengths[1:]))
    assert sum(float(w.sum()) for _, _, w in batches) == P.num_target_tokens(pairs)
    # Every pair appears exactly once, as its own encode_pair, padded on the right.
    expected = Counter((tuple(x), tuple(y), tuple(w)) for x, y, w in
                       (P.encode_pair(s, t, vs, corpus.eos_id) for s, t in pairs))
    assert Counter(_rows(batches)) == expected
    (_, _, w64), *_ = P.batch_pairs(pairs, 32, vs, corpus.eos_id, dtype="float64")
    assert w64.dtype == np.float64


def test_batch_pairs_rng_shuffles_deterministically(corpus):
    vs, _ = corpus.sizes
    pairs = corpus.valid
    plain = P.batch_pairs(pairs, 16, vs, corpus.eos_id)
    a = P.batch_pairs(pairs, 16, vs, corpus.eos_id, rng=np.random.default_rng(1))
    b = P.batch_pairs(pairs, 16, vs, corpus.eos_id, rng=np.random.default_rng(1))
    c = P.batch_pairs(pairs, 16, vs, corpus.eos_id, rng=np.random.default_rng(2))
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))        # same rng, same batches
    widths = [[x[0].shape[1] for x in bs] for bs in (plain, a, c)]
    assert widths[1] != widths[0] and widths[1] != widths[2]             # the batch order is shuffled
    assert sorted(widths[1]) == widths[0]                                # but still batched by length
    assert Counter(_rows(a)) == Counter(_rows(plain))                    # the same rows, in other batches


def test_batch_pairs_shuffles_ties_before_the_sort():
    """12 pairs in 3 lengths (4 of each), batches of 3: a batch straddles two lengths, and which pair
    of the shorter length lands in it is decided by the shuffle of the ties."""
    pairs = [(np.array([i]), np.full(i // 4, 1)) for i in range(12)]    # src id i names the pair
    members = lambda bs: [sorted(int(v) for v in x[:, 0]) for x, _, _ in bs]   # noqa: E731
    plain = P.batch_pairs(pairs, 3, 12, 0)
    assert members(plain) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    seen = set()
    for seed in range(8):
        batches = P.batch_pairs(pairs, 3, 12, 0, rng=np.random.default_rng(seed))
        by_length = sorted(members(batches), key=lambda m: sorted(i // 4 for i in m))
        # Whatever the shuffle, a batch holds the lengths of the sorted cut: {0,0,0}, {0,1,1}, {1,1,2}, {2,2,2}.
        assert [sorted(i // 4 for i in m) for m in by_length] == [[0, 0, 0], [0, 1, 1], [1, 1, 2], [2, 2, 2]]
        seen.add(tuple(map(tuple, by_length)))
    assert len(seen) > 1                                                 # the ties were shuffled


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(pairs=[]), "no pairs to batch"),
    (dict(rng=np.random.RandomState(0)), "rng must be a numpy Generator"),
    (dict(dtype="int32"), "floating-point"),
])
def test_batch_pairs_refuses_bad_arguments(corpus, kwargs, message):
    args = dict(pairs=corpus.valid[:5], batch_size=2, Vs=corpus.sizes[0], eos_id=corpus.eos_id)
    args.update(kwargs)
    with pytest.raises(DataError, match=message):
        P.batch_pairs(**args)


# ---------------------------------------------------------------------------
# The container, the helpers, the hash
# ---------------------------------------------------------------------------

def test_encode_decode_helpers(corpus):
    assert corpus.encode_src("the dog zebra").tolist() == [corpus.src_word_to_id["the"],
                                                           corpus.src_word_to_id["dog"], corpus.src_unk_id]
    ids = corpus.encode_tgt(["le", "chien", "dort"])
    assert corpus.decode_tgt(ids) == ["le", "chien", "dort"] and ids.dtype == np.int64
    assert corpus.encode_tgt("le zèbre").tolist()[1] == corpus.tgt_unk_id
    with pytest.raises(DataError, match="outside the vocabulary"):
        corpus.decode_tgt([len(corpus.tgt_vocab)])


def test_container_refuses_bad_pairs():
    ok = dict(name="x", src_vocab=["<unk>", "a"], tgt_vocab=["<eos>", "<unk>", "b"], valid=[], test=[])
    ParallelCorpus(train=[([1], [2])], **ok)
    with pytest.raises(DataError, match="outside"):
        ParallelCorpus(train=[([2], [2])], **ok)
    with pytest.raises(DataError, match="lacks <eos>"):
        ParallelCorpus(**{**ok, "tgt_vocab": ["<unk>", "b"]}, train=[])


def test_parallel_vocab_hash(corpus):
    h = P.parallel_vocab_hash(corpus)
    assert len(h) == 16 and int(h, 16) >= 0
    assert P.parallel_vocab_hash(corpus) == h
    changed = ParallelCorpus("x", corpus.src_vocab, corpus.tgt_vocab[:-1] + ["zzz"], [], [], [])
    assert P.parallel_vocab_hash(changed) != h
    # Moving the boundary between the two lists changes the hash.
    moved = ParallelCorpus("x", corpus.src_vocab + [corpus.tgt_vocab[-1]], corpus.tgt_vocab[:-1], [], [], [])
    assert P.parallel_vocab_hash(moved) != h


# ---------------------------------------------------------------------------
# User data
# ---------------------------------------------------------------------------

GOOD = {
    "train.src": "the cat sleeps\nthe dog runs\na cat runs\n",
    "train.tgt": "le chat dort\nle chien court\nun chat court\n",
    "valid.src": "the bird sleeps\n",
    "valid.tgt": "l' oiseau dort\n",
    "test.src": "a dog sleeps\n",
    "test.tgt": "un chien dort\n",
}


def write(folder, files):
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def test_load_parallel_reads_user_data(tmp_path):
    folder = write(tmp_path / "toy", {**GOOD, "train.src": codecs.BOM_UTF8 + b"the cat sleeps\r\nthe dog runs\r\n"
                                      b"a cat runs"})
    c = load_parallel(folder)
    assert c.name == "toy" and c.best_perplexity is None and c.nll is None
    assert [len(getattr(c, s)) for s in P.SPLITS] == [3, 1, 1]
    # The vocabulary comes from train only: specials first, then by frequency, ties alphabetical.
    assert c.src_vocab == ["<unk>", "cat", "runs", "the", "a", "dog", "sleeps"]
    assert c.tgt_vocab[:2] == ["<eos>", "<unk>"] and "oiseau" not in c.tgt_vocab
    assert words(c, c.train[0]) == (["the", "cat", "sleeps"], ["le", "chat", "dort"])   # no BOM, no \r
    assert words(c, c.valid[0]) == (["the", "<unk>", "sleeps"], ["<unk>", "<unk>", "dort"])
    assert "valid: 1 source and 2 target words not in the training vocabulary mapped to <unk>" in c.description
    assert "test: 0 source and 0 target" in c.description
    batches = P.batch_pairs(c.train, 2, c.sizes[0], c.eos_id)
    assert sum(float(w.sum()) for _, _, w in batches) == P.num_target_tokens(c.train) == 12


@pytest.mark.parametrize("change, pattern", [
    ({"valid.tgt": None}, r"lacks valid\.tgt; .*train\.src, train\.tgt, valid\.src, valid\.tgt, test\.src, test\.tgt"),
    ({"train.tgt": "le chat dort\nle chien court\n"}, r"train\.src has 3 lines but train\.tgt has 2"),
    ({"train.src": "the cat sleeps\n\na cat runs\n"}, r"train\.src, line 2 is empty"),
    ({"test.tgt": "un chien dort\n   \n"}, r"test\.tgt, line 2 is empty"),
    ({"valid.src": b"the b\xe9te sleeps\n"}, r"valid\.src, line 1: not UTF-8"),
    ({"train.tgt": "le chat dort\nle chien court\n" + "x " * 201 + "\n"},
     r"train\.tgt, line 3 has 201 words, more than the limit of 200"),
    ({"train.tgt": "le chat dort <eos>\nle chien court\nun chat court\n"}, r"train\.tgt, line 1: <eos> is reserved"),
    ({"test.src": ""}, r"test\.src is empty"),
    ({"valid.src": "the bird sleeps\n".encode("utf-16")}, r"valid\.src is UTF-16"),
    ({"train.src": b"the cat\0sleeps\n"}, r"train\.src contains NUL bytes"),
])
def test_load_parallel_refuses_bad_data(tmp_path, change, pattern):
    files = {**GOOD, **change}
    folder = write(tmp_path / "data", {k: v for k, v in files.items() if v is not None})
    with pytest.raises(DataError, match=pattern) as info:
        load_parallel(folder)
    assert "\n" not in str(info.value)                       # one line


def test_load_parallel_refuses_a_missing_folder(tmp_path):
    with pytest.raises(DataError, match="is not a folder; a parallel corpus folder holds six UTF-8 files"):
        load_parallel(tmp_path / "nowhere")
