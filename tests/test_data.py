"""Tests of minilstm.data: PTB reading/verification/download, the built-in corpus, batching.

Nothing here touches the internet: downloads are tested against a local HTTP
server on 127.0.0.1, and the default download URLs are pointed at a dead local
port for every test, so a bug cannot quietly fetch from the network.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import math
import os
import shutil
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilstm.data import (Corpus, DataError, batchify, decode, download_ptb, encode, find_ptb_dir,
                           iterate_chunks, load_corpus, load_ptb, make_builtin_corpus, num_chunks,
                           vocab_hash)
from minilstm.data import ptb, synthetic

REPO = Path(__file__).resolve().parents[1]
NAMES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")


def _real_ptb_dir():
    """$MINILSTM_DATA if set, else ../shared/data/ptb if it exists, else None (read at import,
    before the autouse fixture below clears MINILSTM_DATA)."""
    env = os.environ.get("MINILSTM_DATA")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "data" / "ptb"]
    for folder in candidates:
        if all((folder / n).is_file() for n in NAMES):
            return folder
    return None


REAL_PTB = _real_ptb_dir()
needs_ptb = pytest.mark.skipif(REAL_PTB is None, reason="the real PTB files are not available: set "
                               "MINILSTM_DATA to a folder with ptb.{train,valid,test}.txt")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the user's MINILSTM_DATA or cache, and no default URL reaches the network."""
    monkeypatch.delenv("MINILSTM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(ptb, "DEFAULT_BASE_URL", "http://127.0.0.1:9/nowhere/")
    monkeypatch.setattr(ptb, "FALLBACK_BASE_URLS", ())


def write_ptb(folder, train, valid, test):
    """Write three small PTB-format files (each a string) into ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in zip(NAMES, (train, valid, test)):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


TRAIN = " the cat sat \n the dog sat \n a cat ran \n"
VALID = " the cat ran \n"
TEST = " a dog sat \n the cat \n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# Corpus, encode, decode, vocab_hash
# ---------------------------------------------------------------------------

def test_encode_decode_round_trip():
    vocab = ["<eos>", "the", "cat"]
    w2i = {w: i for i, w in enumerate(vocab)}
    ids = encode("the cat <eos>", w2i)
    assert ids.dtype == np.int64 and ids.tolist() == [1, 2, 0]
    assert decode(ids, vocab) == ["the", "cat", "<eos>"]


def test_encode_names_unknown_words_and_hints_unk():
    w2i = {"<eos>": 0, "<unk>": 1, "the": 2}
    with pytest.raises(DataError, match=r"2 word\(s\) not in the vocabulary: 'zebra', 'N'") as err:
        encode(["the", "zebra", "N", "zebra"], w2i)
    assert "<unk>" in str(err.value)


def test_decode_rejects_out_of_range_ids():
    with pytest.raises(DataError, match="outside the vocabulary"):
        decode([0, 5], ["a", "b"])


def test_vocab_hash_is_short_stable_and_order_sensitive():
    h = vocab_hash(["<eos>", "a", "b"])
    assert h == hashlib.sha256(b"<eos>\na\nb").hexdigest()[:16]
    assert h != vocab_hash(["<eos>", "b", "a"])


def test_corpus_checks_ids_and_reports_best_perplexity():
    c = Corpus("x", ["a", "b"], [0, 1], [1], [0], entropy={"valid": 1.0})
    assert c.vocab_size == 2 and c.word_to_id == {"a": 0, "b": 1}
    assert c.train.dtype == np.int64
    assert c.best_perplexity("valid") == pytest.approx(math.e)
    assert c.best_perplexity("test") is None
    assert "vocab_size=2" in repr(c)
    with pytest.raises(DataError, match="outside"):
        Corpus("x", ["a"], [0, 1], [0], [0])


def test_load_corpus_rejects_unknown_name():
    with pytest.raises(DataError, match="builtin, ptb"):
        load_corpus("wikitext")


# ---------------------------------------------------------------------------
# PTB: reading a PTB-format folder
# ---------------------------------------------------------------------------

def test_reads_like_data_lua_and_builds_sorted_vocab(tmp_path):
    c = load_ptb(write_ptb(tmp_path / "d", TRAIN, VALID, TEST), verify=False)
    # Counts in train: <eos> 3, cat 2, sat 2, the 2, a 1, dog 1, ran 1 -> ties alphabetical.
    assert c.vocab == ["<eos>", "cat", "sat", "the", "a", "dog", "ran"]
    assert decode(c.train, c.vocab) == "the cat sat <eos> the dog sat <eos> a cat ran <eos>".split()
    assert decode(c.valid, c.vocab) == "the cat ran <eos>".split()
    assert decode(c.test, c.vocab) == "a dog sat <eos> the cat <eos>".split()
    assert c.name == "ptb" and c.entropy is None and c.best_perplexity("valid") is None


def test_unknown_valid_word_is_named_with_its_line(tmp_path):
    folder = write_ptb(tmp_path / "d", TRAIN, " the cat sat \n the zebra ran \n", TEST)
    with pytest.raises(DataError, match=r"ptb\.valid\.txt, line 2: the word 'zebra'"):
        load_ptb(folder, verify=False)


@pytest.mark.parametrize("name, verify", [("ptb.test.txt", False), ("ptb.train.txt", True)])
@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_file_is_refused(tmp_path, name, verify, content):
    folder = write_ptb(tmp_path / "d", TRAIN, VALID, TEST)
    (folder / name).write_bytes(content)
    with pytest.raises(DataError, match=rf"{name} is empty"):
        load_ptb(folder, verify=verify)


@pytest.mark.parametrize("content, what", [(b"the cat\x00\x01\x02 sat\n", "NUL"),
                                           (b"the caf\xe9 sat\n", "not UTF-8")])
def test_binary_file_is_refused(tmp_path, content, what):
    folder = write_ptb(tmp_path / "d", TRAIN, VALID, TEST)
    (folder / "ptb.train.txt").write_bytes(content)
    with pytest.raises(DataError, match=what):
        load_ptb(folder, verify=False)
    with pytest.raises(DataError, match="SHA-256"):   # with verification on: refused even earlier
        load_ptb(folder, verify=True)


def test_verification_refuses_files_that_are_not_mikolovs(tmp_path):
    folder = write_ptb(tmp_path / "d", TRAIN, VALID, TEST)
    with pytest.raises(DataError, match=r"ptb\.train\.txt: wrong SHA-256.*verify=False"):
        load_ptb(folder)          # verify=True is the default
    assert load_ptb(folder, verify=False).vocab_size == 7


@pytest.fixture(scope="module")
def real_corpus():
    if REAL_PTB is None:
        pytest.skip("the real PTB files are not available")
    t0 = time.perf_counter()
    corpus = load_ptb(REAL_PTB, download=False)
    return corpus, time.perf_counter() - t0


@needs_ptb
def test_real_ptb_token_counts_and_vocabulary(real_corpus):
    c, seconds = real_corpus
    assert (len(c.train), len(c.valid), len(c.test)) == (929_589, 73_760, 82_430)
    assert c.vocab_size == 10_000
    assert c.vocab[:3] == ["the", "<unk>", "<eos>"]  # the most frequent words come first
    lines = (REAL_PTB / "ptb.valid.txt").read_text().count("\n")
    assert int((c.valid == c.word_to_id["<eos>"]).sum()) == lines == 3370
    assert seconds < 10, f"reading PTB took {seconds:.1f} s (should be about 1 s)"


@needs_ptb
def test_real_ptb_via_load_corpus_is_identical(real_corpus):
    c = load_corpus("ptb", data_dir=REAL_PTB)
    assert vocab_hash(c.vocab) == vocab_hash(real_corpus[0].vocab)
    assert np.array_equal(c.test, real_corpus[0].test)


@pytest.fixture
def ptb_copy(tmp_path):
    if REAL_PTB is None:
        pytest.skip("the real PTB files are not available")
    folder = tmp_path / "ptb-copy"
    folder.mkdir()
    for name in NAMES:
        shutil.copyfile(REAL_PTB / name, folder / name)
    return folder


@needs_ptb
def test_real_ptb_with_one_changed_byte_is_refused(ptb_copy):
    path = ptb_copy / "ptb.valid.txt"
    data = bytearray(path.read_bytes())
    data[1000] = ord("x") if data[1000] != ord("x") else ord("y")
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        load_ptb(ptb_copy)
    msg = str(err.value)
    assert "ptb.valid.txt" in msg and ptb.PTB_SHA256["ptb.valid.txt"] in msg and sha(bytes(data)) in msg
    assert "damaged" in msg


@needs_ptb
def test_real_ptb_truncated_is_refused(ptb_copy):
    path = ptb_copy / "ptb.train.txt"
    path.write_bytes(path.read_bytes()[:1_000_000])
    with pytest.raises(DataError, match=r"ptb\.train\.txt.*truncated \(1,000,000 of 5,101,618 bytes"):
        load_ptb(ptb_copy)


# ---------------------------------------------------------------------------
# PTB: where the files are looked for
# ---------------------------------------------------------------------------

def test_find_ptb_dir_order(tmp_path, monkeypatch):
    explicit = write_ptb(tmp_path / "explicit", TRAIN, VALID, TEST)
    env = write_ptb(tmp_path / "env", TRAIN, VALID, TEST)
    cache = write_ptb(tmp_path / "xdg-cache" / "minilstm" / "ptb", TRAIN, VALID, TEST)
    assert find_ptb_dir(download=False) == cache                      # 3. the cache
    monkeypatch.setenv("MINILSTM_DATA", str(env))
    assert find_ptb_dir(download=False) == env                        # 2. $MINILSTM_DATA
    assert find_ptb_dir(explicit, download=False) == explicit         # 1. the explicit folder
    assert find_ptb_dir(str(explicit)) == explicit


def test_cache_dir_default_without_xdg(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ptb.cache_dir() == Path.home() / ".cache" / "minilstm" / "ptb"


def test_missing_everywhere_without_download_says_where_and_how(tmp_path):
    with pytest.raises(DataError) as err:
        find_ptb_dir(download=False)
    msg = str(err.value)
    assert str(tmp_path / "xdg-cache" / "minilstm" / "ptb") in msg
    assert "--data-dir" in msg and "MINILSTM_DATA" in msg and "network" in msg


def test_explicit_folder_missing_or_incomplete(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="is not a folder.*--data-dir"):
        find_ptb_dir(tmp_path / "nope")
    folder = write_ptb(tmp_path / "d", TRAIN, VALID, TEST)
    (folder / "ptb.test.txt").unlink()
    with pytest.raises(DataError, match=r"lacks ptb\.test\.txt"):
        find_ptb_dir(folder)
    monkeypatch.setenv("MINILSTM_DATA", str(folder))
    with pytest.raises(DataError, match=r"\$MINILSTM_DATA .* lacks ptb\.test\.txt"):
        find_ptb_dir()


def test_failed_download_into_cache_explains_how_to_fix():
    with pytest.raises(DataError, match="download into .* failed.*--data-dir"):
        find_ptb_dir()   # the default URLs point at a dead local port (see `isolated`)


# ---------------------------------------------------------------------------
# PTB: downloading (from a local HTTP server only)
# ---------------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(root: Path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, its base URL) on 127.0.0.1; /good/ holds the fake files FAKE."""
    root = tmp_path / "www"
    write_ptb(root / "good", TRAIN, VALID, TEST)
    (root / "empty").mkdir()
    srv, thread, url = _serve(root, monkeypatch)
    yield root, url
    srv.shutdown()
    srv.server_close()
    thread.join()


FAKE_SUMS = {n: sha(t.encode()) for n, t in zip(NAMES, (TRAIN, VALID, TEST))}


def _leftovers(folder):
    """Anything in ``folder`` but the final files: temporaries of a failed download."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name not in NAMES)


def test_download_good_files(server, tmp_path):
    root, url = server
    dest = download_ptb(tmp_path / "dest", base_url=url + "good", sha256=FAKE_SUMS)
    for name, text in zip(NAMES, (TRAIN, VALID, TEST)):
        assert (dest / name).read_text() == text
    assert _leftovers(dest) == []
    assert load_ptb(dest, verify=False).vocab_size == 7


def test_download_refuses_corrupt_file_and_keeps_no_file(server, tmp_path):
    root, url = server
    bad = TRAIN.replace("dog", "cow").encode()
    (root / "good" / "ptb.train.txt").write_bytes(bad)
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as err:
        download_ptb(dest, base_url=url + "good", sha256=FAKE_SUMS)
    msg = str(err.value)
    assert "ptb.train.txt" in msg and FAKE_SUMS["ptb.train.txt"] in msg and sha(bad) in msg
    assert not (dest / "ptb.train.txt").exists() and _leftovers(dest) == []


def test_download_refuses_truncated_file(server, tmp_path):
    root, url = server
    (root / "good" / "ptb.valid.txt").write_text(VALID[:5])
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=r"wrong SHA-256 for ptb\.valid\.txt"):
        download_ptb(dest, base_url=url + "good", sha256=FAKE_SUMS)
    assert not (dest / "ptb.valid.txt").exists() and _leftovers(dest) == []


def test_download_404_names_the_url(server, tmp_path):
    _, url = server
    with pytest.raises(DataError, match=r"could not download ptb\.train\.txt: .*empty/ptb\.train\.txt: HTTP 404"):
        download_ptb(tmp_path / "dest", base_url=url + "empty/", sha256=FAKE_SUMS)
    assert not (tmp_path / "dest" / "ptb.train.txt").exists()


def test_download_falls_back_to_the_next_url(server, tmp_path):
    _, url = server
    dest = download_ptb(tmp_path / "dest", base_url=[url + "empty", url + "good"], sha256=FAKE_SUMS)
    assert all((dest / n).is_file() for n in NAMES)


class _HostileHandler(http.server.BaseHTTPRequestHandler):
    """/endless/*: bytes for ever; /trickle/*: one byte every 50 ms; /huge/*: announces a terabyte."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        import time

        kind = self.path.strip("/").split("/")[0]
        self.send_response(200)
        if kind == "huge":
            self.send_header("Content-Length", str(10 ** 12))
        elif kind == "trickle":
            self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100_000):
                if kind == "trickle":
                    self.wfile.write(b"a")
                    self.wfile.flush()
                    time.sleep(0.05)
                else:
                    self.wfile.write(b"z" * 65536)
        except OSError:  # the client gave up: as it should
            pass


@pytest.fixture
def hostile(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("kind,limits,pattern", [
    ("endless", dict(max_bytes=1 << 20), "more than the 1,048,576 bytes expected"),
    ("huge", dict(), "announces 1,000,000,000,000 bytes, more than the"),
    ("trickle", dict(deadline=1.0, timeout=0.5), r"not complete after 1 s"),
])
def test_download_limits_size_and_time(hostile, tmp_path, kind, limits, pattern):
    import time

    dest = tmp_path / "dest"
    t0 = time.monotonic()
    with pytest.raises(DataError, match=pattern):
        download_ptb(dest, base_url=hostile + kind, sha256={"ptb.train.txt": "0" * 64}, **limits)
    assert time.monotonic() - t0 < 5
    assert list(dest.iterdir()) == []  # no partial file, no temporary


def test_download_size_cap_defaults_to_the_known_size(hostile, tmp_path):
    """Mikolov's files have known sizes: a server sending more is cut off there."""
    with pytest.raises(DataError, match="more than the 399,782 bytes expected"):
        download_ptb(tmp_path / "d", base_url=hostile + "endless", sha256={"ptb.valid.txt": "0" * 64})


def test_download_keeps_files_already_verified(tmp_path):
    dest = write_ptb(tmp_path / "dest", TRAIN, VALID, TEST)
    # No server at all: nothing needs fetching, so nothing is fetched.
    assert download_ptb(dest, base_url="http://127.0.0.1:9/", sha256=FAKE_SUMS) == dest


@needs_ptb
def test_find_ptb_dir_downloads_real_files_into_cache(tmp_path, monkeypatch):
    srv, thread, url = _serve(REAL_PTB, monkeypatch)
    try:
        folder = find_ptb_dir(base_url=url)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()
    assert folder == tmp_path / "xdg-cache" / "minilstm" / "ptb"
    for name in NAMES:
        assert sha((folder / name).read_bytes()) == ptb.PTB_SHA256[name]


# ---------------------------------------------------------------------------
# The built-in corpus
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def builtin():
    t0 = time.perf_counter()
    corpus = make_builtin_corpus()
    return corpus, time.perf_counter() - t0


@pytest.fixture(scope="module")
def grammar():
    return synthetic.Grammar()


def test_builtin_is_deterministic_with_a_stable_vocabulary(builtin):
    a, seconds = builtin
    b = make_builtin_corpus()
    for split in ("train", "valid", "test"):
        assert np.array_equal(getattr(a, split), getattr(b, split))
    assert a.entropy == b.entropy and a.vocab == b.vocab
    assert a.name == "builtin" and a.vocab[0] == "<eos>" and a.vocab[1:] == sorted(a.vocab[1:])
    assert a.vocab_size == 57
    assert vocab_hash(a.vocab) == "e0af8311d3c5d75d"  # changes only if the grammar's words change
    assert (len(a.train), len(a.valid), len(a.test)) == (200_000, 20_000, 20_000)
    assert seconds < 2.0, f"generating the built-in corpus took {seconds:.2f} s"


def test_builtin_depends_on_seed_and_sizes():
    small = make_builtin_corpus(seed=1, train_tokens=500, valid_tokens=300, test_tokens=200)
    assert (len(small.train), len(small.valid), len(small.test)) == (500, 300, 200)
    other = make_builtin_corpus(seed=2, train_tokens=500, valid_tokens=300, test_tokens=200)
    assert not np.array_equal(small.train, other.train)
    # Each split has its own stream: the valid split does not depend on the train size.
    bigger = make_builtin_corpus(seed=1, train_tokens=900, valid_tokens=300, test_tokens=200)
    assert np.array_equal(small.valid, bigger.valid)
    with pytest.raises(DataError, match="valid_tokens"):
        make_builtin_corpus(valid_tokens=0)


def test_builtin_entropy_is_sensible(builtin):
    c, _ = builtin
    for split in ("train", "valid", "test"):
        h = c.entropy[split]
        assert math.isfinite(h) and h > 0
        assert 4 < c.best_perplexity(split) < 15
    # The three splits come from the same source: their entropies agree up to sampling noise.
    assert max(c.entropy.values()) - min(c.entropy.values()) < 0.05
    # A unigram model is far worse than the floor (there is structure to learn).
    counts = np.bincount(c.train, minlength=c.vocab_size) + 1.0
    unigram = -np.log(counts / counts.sum())[c.valid].mean()
    assert unigram > c.entropy["valid"] + 1.0


def test_recorded_entropy_is_recoverable_from_the_words_alone(builtin, grammar):
    """The state is a function of the history: re-parsing the words gives back the same -log p."""
    c, _ = builtin
    logp = grammar.logprobs(decode(c.valid, c.vocab))
    assert -np.mean(logp) == pytest.approx(c.entropy["valid"], rel=1e-12)
    ids, nll = grammar.generate(3000, np.random.default_rng(7), c.word_to_id)
    np.testing.assert_allclose(-np.array(grammar.logprobs(decode(ids, c.vocab))), nll, rtol=1e-12)


def test_next_word_probabilities_sum_to_one_in_every_reachable_state(grammar, builtin):
    vocab = set(builtin[0].vocab)
    seen, todo = {grammar.start_state}, deque([grammar.start_state])
    while todo:
        options = grammar.next_words(todo.popleft())
        assert set(options) <= vocab
        assert all(p > 0 for p, _ in options.values())
        assert sum(p for p, _ in options.values()) == pytest.approx(1.0, abs=1e-12)
        for _, nxt in options.values():
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert 100 < len(seen) < 100_000


def test_word_probabilities_multiply_to_the_derivation_probability(grammar):
    """Brute force, by another route: a plain recursive PCFG sampler records the probability of its
    choices; since no two choice sequences give the same words, the product of the next-word
    probabilities must equal it exactly."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        words, logp_derivation = grammar.sample_derivation(rng)
        assert words[-1] == "<eos>" and words.count("<eos>") == 1
        assert sum(grammar.logprobs(words)) == pytest.approx(logp_derivation, abs=1e-9)


def _zipf(k, n):
    return (1 / (k + 1)) / sum(1 / (j + 1) for j in range(n))


def _state_after(grammar, sentence):
    state = grammar.start_state
    for w in sentence.split():
        state = grammar.next_words(state)[w][1]
    return state


def test_next_word_distribution_by_hand(grammar):
    """Two prefixes whose next-word distribution is worked out by hand from the rules."""
    # "the dog that the cats": the inner subject "cats" is at depth 1, so next comes its
    # modifier (none .75 -> the gap verb, plural; PP .10; relative clause .15).
    dist = {w: p for w, (p, _) in grammar.next_words(_state_after(grammar, "the dog that the cats")).items()}
    expected = {"that": .15}
    expected.update({pl: .75 * _zipf(k, 6) for k, (_, pl) in enumerate(synthetic.VERBS_T)})
    expected.update({prep: .10 * _zipf(k, 4) for k, prep in enumerate(synthetic.PREPS)})
    assert dist == pytest.approx(expected, abs=1e-15)
    # "... chase": the relative clause is closed; the main verb must agree with "dog" (singular).
    dist = {w: p for w, (p, _) in grammar.next_words(_state_after(grammar, "the dog that the cats chase")).items()}
    expected = {sg: .45 * _zipf(k, 5) for k, (sg, _) in enumerate(synthetic.VERBS_I)}
    expected.update({sg: .55 * _zipf(k, 6) for k, (sg, _) in enumerate(synthetic.VERBS_T)})
    assert dist == pytest.approx(expected, abs=1e-15)


def test_agreement_holds_across_embedding(grammar):
    singular = {sg for sg, _ in synthetic.VERBS_I + synthetic.VERBS_T}
    plural = {pl for _, pl in synthetic.VERBS_I + synthetic.VERBS_T}
    for prefix in ("the dogs that the cat near the boys sees",
                   "the dogs near the cat that the boy sees",
                   "no dogs that the boys that the girl likes follow"):
        nxt = set(grammar.next_words(_state_after(grammar, prefix)))
        assert nxt & plural and not nxt & singular       # "dogs ... run", never "runs"
    # At the maximum depth (2) a noun takes no modifier: the nesting is bounded.
    assert "that" not in grammar.next_words(_state_after(grammar, "the dogs near the cat that the boys"))


def test_docstring_examples_are_sentences_of_the_grammar(grammar):
    examples = [line.split() for line in synthetic.__doc__.splitlines()
                if line.strip().endswith("<eos>") and "->" not in line]
    assert len(examples) == 4
    for words in examples:
        grammar.logprobs(words)   # raises if a word is impossible where it stands
    state = _state_after(grammar, "the dog that the cats")
    assert state == ("MOD[pl,1]", "VERB_T[pl]", "VP[sg]", "<eos>")   # as the docstring says


def test_ambiguous_grammar_is_detected():
    rules = {"S": [(.5, ("A", "<eos>")), (.5, ("B", "<eos>"))], "A": [(1.0, ("x", "y"))], "B": [(1.0, ("x", "z"))]}
    with pytest.raises(synthetic.GrammarError, match="'x' can be produced in two ways"):
        synthetic.Grammar(rules).next_words(("S",))


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------

def test_batchify_example():
    data = batchify(np.arange(11), 2)
    assert data.dtype == np.int64 and data.flags.c_contiguous
    assert data.tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_iterate_chunks_example():
    data = batchify(np.arange(11), 2)
    chunks = [(x.tolist(), y.tolist()) for x, y in iterate_chunks(data, 2)]
    assert chunks == [([[0, 1], [5, 6]], [[1, 2], [6, 7]]),
                      ([[2, 3], [7, 8]], [[3, 4], [8, 9]])]
    assert [x.tolist() for x, _ in iterate_chunks(data, 2, start=1)] == [[[2, 3], [7, 8]]]
    assert list(iterate_chunks(data, 2, start=2)) == []


def test_batching_errors():
    with pytest.raises(DataError, match="too few"):
        batchify(np.arange(5), 3)
    with pytest.raises(DataError, match="1-D"):
        batchify(np.zeros((2, 4), dtype=np.int64), 1)
    with pytest.raises(DataError, match="batch_size"):
        batchify(np.arange(10), 0)
    data = batchify(np.arange(12), 2)   # rows of 6 tokens
    with pytest.raises(DataError, match="no chunk of 6 steps"):
        iterate_chunks(data, 6)         # raised at the call, not at the first next()
    with pytest.raises(DataError, match=r"start must be a chunk index in \[0, 2\]"):
        iterate_chunks(data, 2, start=3)
    with pytest.raises(DataError, match="num_steps"):
        num_chunks(data, 0)
    with pytest.raises(DataError, match="batchify first"):
        iterate_chunks(np.arange(10), 2)


@given(length=st.integers(2, 400), batch_size=st.integers(1, 12), num_steps=st.integers(1, 30),
       data=st.data())
def test_batching_properties(length, batch_size, num_steps, data):
    ids = np.arange(length, dtype=np.int64) * 7 + 3     # distinct values: any misplacement shows
    row_len = length // batch_size
    if row_len < 2:
        with pytest.raises(DataError):
            batchify(ids, batch_size)
        return
    batched = batchify(ids, batch_size)
    assert batched.shape == (batch_size, row_len)
    for n in range(batch_size):
        assert np.array_equal(batched[n], ids[n * row_len:(n + 1) * row_len])

    count = num_chunks(batched, num_steps)
    assert count == (row_len - 1) // num_steps
    if count == 0:
        with pytest.raises(DataError):
            iterate_chunks(batched, num_steps)
        return
    chunks = list(iterate_chunks(batched, num_steps))
    assert len(chunks) == count
    for x, y in chunks:
        assert x.shape == y.shape == (batch_size, num_steps) and x.dtype == y.dtype == np.int64
        assert np.array_equal(x[:, 1:], y[:, :-1])               # y is x shifted by one step
    # The chunks tile every row contiguously, so the state can be carried from one to the next.
    xs = np.concatenate([x for x, _ in chunks], axis=1)
    ys = np.concatenate([y for _, y in chunks], axis=1)
    assert np.array_equal(xs, batched[:, :count * num_steps])
    assert np.array_equal(ys, batched[:, 1:count * num_steps + 1])
    # Resuming from chunk `start` gives exactly the remaining chunks.
    start = data.draw(st.integers(0, count))
    rest = list(iterate_chunks(batched, num_steps, start=start))
    assert len(rest) == count - start
    for (x, y), (x0, y0) in zip(rest, chunks[start:]):
        assert np.array_equal(x, x0) and np.array_equal(y, y0)
