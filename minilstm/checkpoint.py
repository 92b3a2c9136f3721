"""Saving and loading training checkpoints safely.

A checkpoint is ONE ``.npz`` file (a zip of ``.npy`` arrays) that holds

* the model weights, under the keys ``param/<name>``;
* any extra arrays, e.g. the carried LSTM state (h, c), under ``array/<name>``;
* a JSON document with everything else (config, epoch, learning rate, the
  random generator's state, the metrics history...), stored as a uint8 array of
  UTF-8 bytes under the reserved key ``__meta__``.

Why this design?

No pickle.
    ``pickle`` (and ``np.load(..., allow_pickle=True)``) can run arbitrary code
    while loading: a checkpoint downloaded from somewhere could take over your
    machine. Plain numeric arrays plus JSON cannot do that, so we load with
    ``allow_pickle=False`` and refuse any file that contains Python objects.

One file, written atomically.
    Training saves a checkpoint every epoch, and also when you press Ctrl-C. If
    the program dies in the middle of writing (power cut, a second Ctrl-C, disk
    full), a half-written ``last.npz`` would destroy the previous good one. So we
    write to a temporary file in the same folder, flush it to the disk
    (``fsync``) and only then rename it over the old file with ``os.replace``.
    A rename within one folder is atomic: anyone opening the path sees either
    the complete old checkpoint or the complete new one, never a mixture.
    Keeping the metadata inside the same file (rather than a side-car
    ``.json``) means the weights and their description can never disagree.

Untrusted input.
    A checkpoint may come from anywhere, so loading reads every member's zip
    header and ``.npy`` header (dtype, shape) and the metadata first, checks
    them against each other and against sane bounds, and only then reads the
    data: an unexpected member is never decompressed, a compressed member (which
    ``np.savez`` never writes) or a declared size beyond the file's is refused,
    and a FIFO or device is refused before anything is read from it. A memory
    bomb is thus turned away in milliseconds, allocating nothing.

Clear errors.
    Every failure raises :class:`CheckpointError` with a message that says what
    went wrong and what to do about it (use ``best.npz`` instead of a damaged
    ``last.npz``, retrain, build the model from the checkpoint's own config...).
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT", "FORMAT_VERSION", "META_KEY", "Checkpoint", "CheckpointError",
    "save_checkpoint", "load_checkpoint", "check_compatible", "rng_state_to_json", "rng_from_json",
]

FORMAT = "minilstm-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__meta__"
PARAM_PREFIX = "param/"
ARRAY_PREFIX = "array/"

# What to tell the user when a file cannot be used.
_ADVICE = ("Use an earlier checkpoint of the same run instead (e.g. best.npz instead of last.npz, "
           "or the other way round), or retrain the model.")


class CheckpointError(RuntimeError):
    """A checkpoint could not be saved, loaded, or does not fit the current model/data."""


@dataclass
class Checkpoint:
    """Everything read back from one checkpoint file (all arrays are NumPy, on the host)."""

    params: dict[str, np.ndarray]
    meta: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None


# --------------------------------------------------------------------------- saving


def _to_numpy(value, what: str) -> np.ndarray:
    """A host NumPy array from a NumPy array, a CuPy array (via ``.get()``) or a number/list."""
    if not isinstance(value, np.ndarray) and hasattr(value, "get") and not isinstance(value, Mapping):
        # CuPy arrays live on the GPU; ``.get()`` copies them to the host. We do not
        # import cupy here, so checkpoints work on machines without a GPU.
        value = value.get()
    arr = np.asarray(value)
    if arr.dtype.hasobject:
        raise CheckpointError(f"cannot save {what}: it holds Python objects (dtype {arr.dtype}); "
                              "only numeric arrays can be stored without pickle")
    return arr


def _check_name(name, kind: str) -> str:
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{kind} names must be non-empty strings, got {name!r}")
    return name


# NumPy scalars that become an equal Python number/str/bool (np.float32(0.5) -> 0.5).
_NUMPY_SCALARS = (np.integer, np.floating, np.bool_, np.str_)


def _check_json(obj, where: str = "meta") -> None:
    """Raise a CheckpointError naming the first value in ``obj`` that JSON cannot store faithfully."""
    if obj is None or isinstance(obj, (str, bool, int, float) + _NUMPY_SCALARS):
        # Python ints of any size are fine: JSON has no size limit and Python reads them back
        # exactly (NumPy's PCG64 state holds 128-bit ints). NumPy scalars are converted below.
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                # json.dumps would silently turn 1 into "1", so the value would not round-trip.
                raise CheckpointError(f"{where} has a non-string key {key!r} ({type(key).__name__}); "
                                      "JSON object keys must be strings")
            _check_json(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_json(value, f"{where}[{i}]")
        return
    hint = " (store arrays with the `arrays` argument, not in meta)" if hasattr(obj, "shape") else ""
    raise CheckpointError(f"{where} is not JSON-serializable: a {type(obj).__name__}{hint}; "
                          "meta may only hold dicts, lists, str, int, float, bool and None")


def _json_default(obj):
    # A NumPy scalar (np.float32(0.5), np.int64(3)) becomes the equal Python number.
    if isinstance(obj, _NUMPY_SCALARS):
        return obj.item()
    raise TypeError(f"not JSON-serializable: {type(obj).__name__}")


def _encode_meta(meta: Mapping) -> np.ndarray:
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"meta must be a dict, got {type(meta).__name__}")
    _check_json(meta)
    # allow_nan keeps a diverged run's `inf` perplexity saveable (Python's json reads it back).
    text = json.dumps(meta, default=_json_default, allow_nan=True, sort_keys=True)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX). Not possible, and not needed, on Windows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path, params: dict, meta: dict, arrays: dict | None = None) -> Path:
    """Write ``params``, ``meta`` and ``arrays`` to the single file ``path``, atomically.

    params: name -> array (NumPy, or CuPy: copied to the host), stored as ``param/<name>``;
    meta: JSON-serializable dict; ``format``, ``format_version`` and ``param_shapes`` are added
          (to the stored copy; the caller's dict is not modified);
    arrays: optional name -> array, stored as ``array/<name>`` (e.g. the carried LSTM state).

    If anything fails, the file that was at ``path`` before (if any) is left untouched and
    no temporary file is left behind. Returns the path written.
    """
    path = Path(path)
    entries: dict[str, np.ndarray] = {}
    for name, value in dict(params).items():
        entries[PARAM_PREFIX + _check_name(name, "parameter")] = _to_numpy(value, f"parameter {name!r}")
    for name, value in dict(arrays or {}).items():
        entries[ARRAY_PREFIX + _check_name(name, "array")] = _to_numpy(value, f"array {name!r}")

    if not isinstance(meta, Mapping):
        raise CheckpointError(f"meta must be a dict, got {type(meta).__name__}")
    full_meta = dict(meta)
    full_meta["format"] = FORMAT
    full_meta["format_version"] = FORMAT_VERSION
    # Recorded so check_compatible() can compare shapes without touching the arrays.
    full_meta["param_shapes"] = {k[len(PARAM_PREFIX):]: list(v.shape)
                                 for k, v in entries.items() if k.startswith(PARAM_PREFIX)}
    # Likewise for the extra arrays, so a loader knows every member to expect before reading any.
    full_meta["array_shapes"] = {k[len(ARRAY_PREFIX):]: list(v.shape)
                                 for k, v in entries.items() if k.startswith(ARRAY_PREFIX)}
    entries[META_KEY] = _encode_meta(full_meta)
    _check_loadable(path, entries, _config_dtype(full_meta))

    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file must be in the SAME folder: os.replace is only atomic within
    # one file system, and a different folder (/tmp) may be on another one.
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    tmp_path = Path(tmp.name)
    try:
        with tmp:
            members: dict[str, Any] = entries  # every name has a prefix: none is savez's own allow_pickle
            np.savez(tmp, **members)
            tmp.flush()
            os.fsync(tmp.fileno())  # the bytes are on the disk before the rename makes them visible
        os.replace(tmp_path, path)
    except BaseException as exc:
        # BaseException: also a Ctrl-C in the middle of saving must not leave debris behind.
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CheckpointError(f"could not write checkpoint {path}: {exc}; the previous file at this "
                                  "path (if any) is unchanged. Check the disk space and permissions.") from exc
        raise
    _fsync_dir(path.parent)
    return path


def _check_loadable(path: Path, entries: dict, config_dtype: str | None) -> None:
    """Refuse to save what load_checkpoint would refuse (dtypes, sizes), before anything is written."""
    for key, arr in entries.items():
        refusal = None if key == META_KEY else _dtype_refusal(key, arr.dtype, config_dtype)
        if refusal:
            raise CheckpointError(f"cannot save {path}: {refusal}; load_checkpoint would refuse it. "
                                  "Cast it first (e.g. .astype(np.float32)).")
    if len(entries) > MAX_MEMBERS:
        raise CheckpointError(f"cannot save {path}: {len(entries):,} arrays, more than the {MAX_MEMBERS:,} "
                              "a checkpoint may hold")
    if entries[META_KEY].size > MAX_META_BYTES:
        raise CheckpointError(f"cannot save {path}: its metadata is {entries[META_KEY].size:,} bytes, more than "
                              f"the {MAX_META_BYTES:,} load_checkpoint reads; store large data as arrays")
    total = sum(arr.nbytes for arr in entries.values())
    if total > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"cannot save {path}: {total:,} bytes of arrays, more than the "
                              f"{MAX_CHECKPOINT_BYTES:,} load_checkpoint accepts")


# --------------------------------------------------------------------------- loading


# What NumPy and zipfile raise for a truncated or corrupted .npz.
_DAMAGE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError,
                  struct.error, UnicodeDecodeError, NotImplementedError, SyntaxError, RecursionError, TypeError)

# Bounds on what a checkpoint may declare, far above any real one (the paper's large model
# in float64 is about 0.5 GB), checked before anything of that size is read.
MAX_CHECKPOINT_BYTES = 8 << 30
MAX_META_BYTES = 16 << 20
MAX_MEMBERS = 1024
# The extra arrays train() stores (the carried LSTM state); any other is unexpected.
KNOWN_ARRAYS = ("state_h", "state_c")
_FLOAT_DTYPES = ("float32", "float64")


def _config_dtype(meta) -> str | None:
    """The dtype the metadata's config names ("float32"/"float64"), or None when it names none."""
    config = meta.get("config") if isinstance(meta, Mapping) else None
    dtype = config.get("dtype") if isinstance(config, Mapping) else None
    return dtype if dtype in _FLOAT_DTYPES else None


def _dtype_refusal(key: str, dtype: np.dtype, config_dtype: str | None) -> str | None:
    """Why an entry of ``dtype`` cannot be in a checkpoint, or None: the one rule save and load share.

    A parameter is float32 or float64, the dtype its config names if it names one; an extra
    array (the carried state, a step counter) may also be bool or integer, never complex or text.
    """
    if key.startswith(ARRAY_PREFIX) and dtype.kind in "biuf":
        return None
    if dtype.name not in _FLOAT_DTYPES:
        allowed = "float32/float64" if key.startswith(PARAM_PREFIX) else "bool, integer or float"
        return f"entry {key!r} is {dtype}, not {allowed}"
    if key.startswith(PARAM_PREFIX) and config_dtype is not None and dtype.name != config_dtype:
        return f"entry {key!r} is {dtype}, but its config says {config_dtype}"
    return None


def _damaged(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} is damaged or not a minilstm checkpoint ({why}). {_ADVICE}")


def _open_regular(path: Path):
    """Open ``path`` for reading only if it is a regular file (a FIFO would block for ever)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise CheckpointError(f"{path} is not a regular file (a FIFO, socket or device?); pass a checkpoint "
                                  "file (.npz) written by minilstm")
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open() still returns.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise CheckpointError(f"cannot open the checkpoint {path}: {exc.strerror or exc}; check the path "
                              "and its permissions") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CheckpointError(f"{path} is not a regular file; pass a checkpoint file (.npz) written by minilstm")
    return os.fdopen(fd, "rb"), st.st_size


def _npy_header(f, path: Path, key: str):
    """(shape, fortran_order, dtype) from the .npy header at the start of member ``f``; nothing else read."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        read = fmt.read_array_header_1_0
    elif version in ((2, 0), (3, 0)):
        read = fmt.read_array_header_2_0
    else:
        raise _damaged(path, f"entry {key!r}: unsupported .npy version {version}")
    try:  # a small bound on the header's length (NumPy >= 1.24 takes it as an argument)
        shape, fortran, dtype = read(f, max_header_size=10_000)
    except TypeError:
        shape, fortran, dtype = read(f)
    if dtype.hasobject:
        raise _damaged(path, f"entry {key!r} holds Python objects (pickle); refusing to load it, since "
                             "unpickling can run arbitrary code")
    if any(d < 0 for d in shape):
        raise _damaged(path, f"entry {key!r} declares the shape {shape}")
    return shape, fortran, dtype


def _read_member(zf, info, path: Path, key: str, check) -> np.ndarray:
    """One member: its header is read and passed to ``check(shape, dtype)``, then exactly its data."""
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_header(f, path, key)
        check(shape, dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        header_len = f.tell()
        if header_len + nbytes != info.file_size:
            raise _damaged(path, f"entry {key!r} declares {shape} {dtype} ({nbytes:,} bytes) but holds "
                                 f"{info.file_size - header_len:,} bytes")
        data = bytearray(nbytes)
        if f.readinto(memoryview(data)) != nbytes or f.read(1):  # reading to the end checks the CRC
            raise _damaged(path, f"entry {key!r} is truncated")
    arr = np.frombuffer(data, dtype=dtype)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _read_npz(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays): every header and the metadata checked before any array data is read."""
    fh, size = _open_regular(path)
    with fh:
        try:
            with zipfile.ZipFile(fh) as zf:
                return _read_members(zf, path, size)
        except CheckpointError:
            raise
        except MemoryError as exc:
            raise _damaged(path, "it declares more data than fits in memory") from exc
        except _DAMAGE_ERRORS as exc:
            if "pickle" in str(exc):
                raise _damaged(path, "an entry holds Python objects (pickle); refusing to load it, since "
                                     "unpickling can run arbitrary code") from exc
            if isinstance(exc, zipfile.BadZipFile) and "zip file" in str(exc):
                raise _damaged(path, "not an .npz archive (a zip of .npy arrays); refusing to "
                                     "unpickle it or guess its format") from exc
            raise _damaged(path, f"{type(exc).__name__}: {exc}") from exc


def _read_members(zf, path: Path, size: int):
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise _damaged(path, f"{len(infos):,} entries")
    by_key, declared = {}, 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise _damaged(path, f"unexpected entry {info.filename!r}")
        key = info.filename[:-4]
        if key in by_key:
            raise _damaged(path, f"entry {key!r} appears twice")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            # np.savez stores every member as is; a compressed one could inflate to any size.
            raise _damaged(path, f"entry {key!r} is compressed or encrypted, which minilstm never writes")
        declared += info.file_size
        by_key[key] = info
    if declared > size or declared > MAX_CHECKPOINT_BYTES:
        raise _damaged(path, f"its entries declare {declared:,} bytes in a file of {size:,}")
    if META_KEY not in by_key:
        raise _damaged(path, f"no {META_KEY!r} entry")
    meta_info = by_key.pop(META_KEY)
    if meta_info.file_size > MAX_META_BYTES:
        raise _damaged(path, f"its metadata is {meta_info.file_size:,} bytes")

    def meta_check(shape, dtype):
        if dtype != np.uint8 or len(shape) != 1:
            raise _damaged(path, f"{META_KEY!r} should be 1-D uint8 bytes, got {dtype} {shape}")

    meta = _decode_meta(path, _read_member(zf, meta_info, path, META_KEY, meta_check))
    shapes = _param_shapes(meta, path)
    extra = _param_shapes(meta, path, "array_shapes") if "array_shapes" in meta else None
    # Every member is expected before any is read: the params and arrays the metadata lists.
    expected = {PARAM_PREFIX + n for n in shapes} | {ARRAY_PREFIX + n for n in (extra or KNOWN_ARRAYS)}
    unexpected = sorted(set(by_key) - expected)
    if unexpected:
        raise _damaged(path, f"unexpected entry {unexpected[0]!r}")
    missing = sorted(PARAM_PREFIX + n for n in shapes if PARAM_PREFIX + n not in by_key)
    if missing:
        raise _damaged(path, f"parameter entry {missing[0]!r} listed in its metadata is missing")
    dtype = _config_dtype(meta)

    def array_check(key):
        def check(shp, dt):
            refusal = _dtype_refusal(key, dt, dtype)
            if refusal:
                raise _damaged(path, refusal)
            if key.startswith(ARRAY_PREFIX):
                want = extra.get(key[len(ARRAY_PREFIX):]) if extra is not None else None
                if want is not None and list(shp) != want:
                    raise _damaged(path, f"entry {key!r} is {list(shp)}, the metadata says {want}")
            elif list(shp) != shapes[key[len(PARAM_PREFIX):]]:
                raise _damaged(path, f"parameter shapes disagree with its metadata: {key!r} is "
                                     f"{list(shp)}, the metadata says {shapes[key[len(PARAM_PREFIX):]]}")
        return check

    arrays = {key: _read_member(zf, info, path, key, array_check(key)) for key, info in sorted(by_key.items())}
    return meta, arrays


def _param_shapes(meta: dict, path: Path, key: str = "param_shapes") -> dict:
    shapes = meta.get(key)
    if not isinstance(shapes, dict):
        raise _damaged(path, f"its metadata lacks {key!r}")
    for name, shape in shapes.items():
        if not name or not isinstance(shape, list) or len(shape) > 8 or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2 ** 40 for d in shape):
            raise _damaged(path, f"{key}[{name!r}] = {shape!r} is not a shape")
    return shapes


def _decode_meta(path: Path, raw: np.ndarray) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _damaged(path, f"{META_KEY!r} should be 1-D uint8 bytes, got {raw.dtype} {raw.shape}")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _damaged(path, f"its metadata is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise _damaged(path, "its metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise _damaged(path, f"format tag is {meta.get('format')!r}, expected {FORMAT!r}")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {version!r}, but this minilstm reads "
                              f"versions up to {FORMAT_VERSION}; upgrade minilstm, or retrain.")
    return meta


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; never unpickles anything.

    The file is treated as untrusted (see the module docstring): headers and metadata are
    checked before any array data is read, so a crafted file fails fast with a CheckpointError.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint file at {path}. Check the path; a training run folder holds "
                              "last.npz (latest epoch) and best.npz (best validation perplexity); if neither exists, "
                              "train the model first.")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; pass a checkpoint file inside it, "
                              f"e.g. {path / 'best.npz'} or {path / 'last.npz'}")
    meta, entries = _read_npz(path)
    params, arrays = {}, {}
    for key, value in entries.items():
        if key.startswith(PARAM_PREFIX):
            params[key[len(PARAM_PREFIX):]] = value
        else:
            arrays[key[len(ARRAY_PREFIX):]] = value
    return Checkpoint(params=params, meta=meta, arrays=arrays, path=path)


# --------------------------------------------------------------------------- compatibility


def check_compatible(meta: dict, vocab_hash=None, param_shapes: dict | None = None) -> None:
    """Refuse a checkpoint that does not fit the current data or model.

    vocab_hash: the current dataset's vocabulary hash; a checkpoint trained on another
        vocabulary would map word ids to the wrong words (None: not checked);
    param_shapes: name -> shape the current model expects (None: not checked).
    """
    saved_hash = meta.get("vocab_hash")
    # A checkpoint without a hash cannot be checked; we only refuse a definite mismatch.
    if vocab_hash is not None and saved_hash is not None and saved_hash != vocab_hash:
        raise CheckpointError(
            f"checkpoint trained on a different vocabulary/dataset: its vocab_hash is {saved_hash!r}, "
            f"the current data has {vocab_hash!r}. Evaluate it on the dataset it was trained on "
            "(see its config), or retrain on this one.")
    if param_shapes is None:
        return
    saved = meta.get("param_shapes")
    if not isinstance(saved, dict):
        raise CheckpointError("checkpoint metadata lacks 'param_shapes', so its parameters cannot be checked; "
                              "it was not written by minilstm's save_checkpoint. Retrain the model.")
    expected = {name: tuple(int(d) for d in shape) for name, shape in param_shapes.items()}
    got = {name: tuple(shape) for name, shape in saved.items()}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"checkpoint parameters do not match the model: missing {missing}, unexpected {extra}. "
            "It was made for a different architecture (e.g. num_layers); build the model from the "
            "checkpoint's own config (meta['config']).")
    for name in sorted(expected):
        if got[name] != expected[name]:
            raise CheckpointError(
                f"parameter {name!r} has shape {got[name]} in the checkpoint but the model expects "
                f"{expected[name]}: the checkpoint was made with a different config (hidden_size, "
                "num_layers or vocabulary size); build the model from the checkpoint's own config "
                "(meta['config']).")


# --------------------------------------------------------------------------- random generator state


# The bit generators whose state NumPy can set from a dict; we never look names up freely.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _state_to_json(obj):
    # MT19937/Philox keep part of their state in small NumPy arrays; PCG64 is all Python ints.
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _state_to_json(v) for k, v in obj.items()}
    return obj


def _state_from_json(obj):
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__", "dtype"}:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: _state_from_json(v) for k, v in obj.items()}
    return obj


def rng_state_to_json(generator: np.random.Generator) -> dict:
    """The exact state of a NumPy Generator as a JSON-serializable dict (see rng_from_json)."""
    bit_generator = getattr(generator, "bit_generator", None)
    if bit_generator is None:
        raise TypeError(f"expected a numpy.random.Generator, got {type(generator).__name__}")
    return _state_to_json(bit_generator.state)


def rng_from_json(state: dict) -> np.random.Generator:
    """A new Generator in exactly the saved state: it draws the same numbers the saved one would have."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise CheckpointError(f"cannot restore the random generator: unknown bit generator {name!r} "
                              f"(supported: {', '.join(_BIT_GENERATORS)})")
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = _state_from_json(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"cannot restore the random generator from the checkpoint: {exc}") from exc
    return np.random.Generator(bit_generator)
