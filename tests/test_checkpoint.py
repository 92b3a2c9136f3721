"""Checkpoints: exact round trips, atomic writes, and clear refusals of bad files."""

import json
import os
import zipfile

import numpy as np
import pytest

from minilstm import checkpoint as ckpt
from minilstm.checkpoint import (CheckpointError, check_compatible, load_checkpoint, rng_from_json,
                                 rng_state_to_json, save_checkpoint)


def _params(rng):
    return {
        "embedding": rng.standard_normal((7, 4)).astype(np.float32),
        "W_0": rng.standard_normal((8, 16)),  # float64
        "b_0": np.array([np.nan, np.inf, -0.0, 1e-45], dtype=np.float32),  # odd values survive too
    }


def _save_good(path, rng):
    return save_checkpoint(path, _params(rng), {"epoch": 3, "vocab_hash": "abc"})


def test_round_trip_is_bit_exact(tmp_path, rng):
    params = _params(rng)
    arrays = {"state_h": rng.standard_normal((2, 3, 4)).astype(np.float32),
              "counts": np.arange(5, dtype=np.int64)}
    meta = {"epoch": 3, "lr": 0.5, "history": [{"valid_ppl": 120.5}], "name": "tiny 2x128 ü",
            "big": 2**127 + 12345, "np_scalar": np.float32(0.25), "nothing": None}
    path = save_checkpoint(tmp_path / "sub" / "last.npz", params, meta, arrays)
    assert path == tmp_path / "sub" / "last.npz"
    assert "format" not in meta  # the caller's dict is not modified

    ck = load_checkpoint(path)
    assert ck.path == path
    assert set(ck.params) == set(params) and set(ck.arrays) == set(arrays)
    for saved, loaded in [(params, ck.params), (arrays, ck.arrays)]:
        for name, value in saved.items():
            assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
            assert loaded[name].tobytes() == value.tobytes(), name  # bit for bit (NaN, -0.0 included)
    assert ck.meta["format"] == "minilstm-checkpoint" and ck.meta["format_version"] == 1
    assert ck.meta["big"] == 2**127 + 12345 and ck.meta["np_scalar"] == 0.25
    assert {k: ck.meta[k] for k in ("epoch", "lr", "history", "name", "nothing")} == \
        {k: meta[k] for k in ("epoch", "lr", "history", "name", "nothing")}
    assert ck.meta["param_shapes"]["W_0"] == [8, 16]
    assert os.listdir(tmp_path / "sub") == ["last.npz"]  # no temporary file left


def test_objects_with_get_are_copied_to_host(tmp_path):
    class FakeCupyArray:  # stands in for a CuPy array: .get() returns the host copy
        def __init__(self, a):
            self.a = a

        def get(self):
            return self.a

    w = np.ones((2, 2), dtype=np.float32)
    ck = load_checkpoint(save_checkpoint(tmp_path / "c.npz", {"w": FakeCupyArray(w)}, {}))
    np.testing.assert_array_equal(ck.params["w"], w)


def test_rng_state_round_trip_gives_identical_draws(tmp_path):
    gen = np.random.default_rng(1234)
    gen.random(17)  # move away from the seed state
    path = save_checkpoint(tmp_path / "r.npz", {}, {"rng": rng_state_to_json(gen)})
    restored = rng_from_json(load_checkpoint(path).meta["rng"])
    np.testing.assert_array_equal(restored.random(100), gen.random(100))
    np.testing.assert_array_equal(restored.integers(0, 10**9, 50), gen.integers(0, 10**9, 50))


def test_rng_other_bit_generator_and_bad_state():
    gen = np.random.Generator(np.random.MT19937(7))  # its state holds a NumPy array
    restored = rng_from_json(json.loads(json.dumps(rng_state_to_json(gen))))
    assert restored.random() == gen.random()
    with pytest.raises(CheckpointError, match="bit generator"):
        rng_from_json({"bit_generator": "os.system"})


def test_write_failure_leaves_previous_checkpoint_untouched(tmp_path, rng, monkeypatch):
    path = _save_good(tmp_path / "last.npz", rng)
    before = path.read_bytes()

    def savez_that_dies(file, **entries):
        file.write(b"PK\x03\x04 half a zip file")  # something partial reaches the disk...
        raise KeyboardInterrupt  # ...then the user presses Ctrl-C

    monkeypatch.setattr(np, "savez", savez_that_dies)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": np.zeros(3)}, {"epoch": 4})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.npz"]  # the temporary file was removed
    assert load_checkpoint(path).meta["epoch"] == 3


def test_failed_rename_is_a_checkpoint_error(tmp_path, rng, monkeypatch):
    path = _save_good(tmp_path / "last.npz", rng)
    before = path.read_bytes()

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.os, "replace", no_space)
    with pytest.raises(CheckpointError, match="previous file"):
        save_checkpoint(path, {"w": np.zeros(3)}, {})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.npz"]


def test_meta_must_be_json(tmp_path):
    with pytest.raises(CheckpointError, match=r"meta\['a'\]\['b'\].*ndarray"):
        save_checkpoint(tmp_path / "x.npz", {}, {"a": {"b": np.zeros(2)}})
    with pytest.raises(CheckpointError, match="non-string key"):
        save_checkpoint(tmp_path / "x.npz", {}, {1: "one"})
    with pytest.raises(CheckpointError, match="Python objects"):
        save_checkpoint(tmp_path / "x.npz", {"w": np.array([{}], dtype=object)}, {})
    assert not (tmp_path / "x.npz").exists() and os.listdir(tmp_path) == []


def _assert_helpful(exc_info, path):
    msg = str(exc_info.value)
    assert str(path) in msg and "damaged or not a minilstm checkpoint" in msg
    assert "best.npz" in msg and "retrain" in msg


def test_truncated_file_is_refused(tmp_path, rng):
    path = _save_good(tmp_path / "last.npz", rng)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as exc_info:
        load_checkpoint(path)
    _assert_helpful(exc_info, path)


def test_corrupted_bytes_are_refused(tmp_path, rng):
    path = _save_good(tmp_path / "last.npz", rng)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:  # flip a byte inside the stored weights: bad CRC
        info = z.getinfo("param/W_0.npy")
    data[info.header_offset + 30 + len(info.filename) + 600] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as exc_info:
        load_checkpoint(path)
    _assert_helpful(exc_info, path)


@pytest.mark.parametrize("content", [os.urandom(2000), b""], ids=["random", "empty"])
def test_random_bytes_are_refused(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc_info:
        load_checkpoint(path)
    _assert_helpful(exc_info, path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    meta = np.frombuffer(json.dumps({"format": "minilstm-checkpoint", "format_version": 1}).encode(), np.uint8)
    np.savez(path, __meta__=meta, **{"param/w": np.array([{"run": "code"}], dtype=object)})
    with pytest.raises(CheckpointError, match="pickle") as exc_info:
        load_checkpoint(path)
    _assert_helpful(exc_info, path)


def test_plain_npz_without_meta_or_tag_is_refused(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(3))
    with pytest.raises(CheckpointError, match="__meta__"):
        load_checkpoint(plain)
    tagged = tmp_path / "other.npz"
    np.savez(tagged, __meta__=np.frombuffer(b'{"format": "something-else"}', np.uint8))
    with pytest.raises(CheckpointError, match="format tag"):
        load_checkpoint(tagged)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(CheckpointError, match="not an .npz"):
        load_checkpoint(single)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file") as exc_info:
        load_checkpoint(tmp_path / "nope.npz")
    assert "nope.npz" in str(exc_info.value) and "best.npz" in str(exc_info.value)
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_vocab_mismatch_is_refused(tmp_path, rng):
    meta = load_checkpoint(_save_good(tmp_path / "c.npz", rng)).meta
    check_compatible(meta, "abc")  # same vocabulary: fine
    check_compatible(meta, None)  # nothing to compare
    with pytest.raises(CheckpointError, match="different vocabulary/dataset"):
        check_compatible(meta, "xyz")


def test_shape_mismatch_is_refused(tmp_path, rng):
    meta = load_checkpoint(_save_good(tmp_path / "c.npz", rng)).meta
    shapes = {k: v.shape for k, v in _params(rng).items()}
    check_compatible(meta, "abc", shapes)
    with pytest.raises(CheckpointError, match=r"'W_0'.*\(8, 16\).*\(8, 32\)"):
        check_compatible(meta, "abc", {**shapes, "W_0": (8, 32)})
    with pytest.raises(CheckpointError, match="missing"):
        check_compatible(meta, "abc", {**shapes, "W_1": (8, 16)})


# --------------------------------------------------------------------------- untrusted files


def _model_checkpoint(tmp_path, **cfg_overrides):
    """A real (tiny) training checkpoint: V=10, H=4, L=1."""
    from minilstm.config import get_config
    from minilstm.training import Progress, _save, build_model

    cfg = get_config("tiny", hidden_size=4, num_layers=1, **cfg_overrides)
    model = build_model(cfg, 10)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return _save(tmp_path, "good.npz", model, cfg, "h", Progress(), None)


def _npy(arr_or_header, data=b""):
    """.npy bytes of an array, or of a bare header dict followed by ``data``."""
    import io

    buf = io.BytesIO()
    if isinstance(arr_or_header, dict):
        np.lib.format.write_array_header_1_0(buf, arr_or_header)
        buf.write(data)
    else:
        np.save(buf, arr_or_header)
    return buf.getvalue()


def _rewrite(src, dst, replace=None, drop=(), add=None, compress=None):
    """Copy the zip ``src`` to ``dst`` with some members replaced, dropped or added (raw .npy bytes)."""
    replace, add = dict(replace or {}), dict(add or {})
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            key = info.filename[:-4]
            if key in drop:
                continue
            data = replace.get(key, zin.read(info))
            zout.writestr(info.filename, data, compress_type=(compress or {}).get(key, zipfile.ZIP_STORED))
        for key, data in add.items():
            zout.writestr(key + ".npy", data, compress_type=(compress or {}).get(key, zipfile.ZIP_STORED))
    return dst


def _meta_of(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(np.load(z.open("__meta__.npy")).tobytes())


def _with_meta(src, dst, edit):
    meta = _meta_of(src)
    edit(meta)
    raw = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    return _rewrite(src, dst, replace={"__meta__": _npy(raw)})


def _refused_fast(path, pattern, loader=load_checkpoint):
    """Refused with a one-line CheckpointError, in well under a second, allocating almost nothing."""
    import time
    import tracemalloc

    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=pattern) as exc_info:
        loader(path)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0, elapsed
    assert peak < 20 << 20, f"{peak:,} bytes allocated"
    assert "\n" not in str(exc_info.value)


def test_deflated_zeros_bomb_is_refused_unread(tmp_path):
    good = _model_checkpoint(tmp_path)
    zeros = _npy({"descr": "|u1", "fortran_order": False, "shape": (200 << 20,)}, bytes(200 << 20))
    bomb = _rewrite(good, tmp_path / "bomb.npz", add={"param/zeros": zeros},
                    compress={"param/zeros": zipfile.ZIP_DEFLATED})
    assert bomb.stat().st_size < 1 << 20
    _refused_fast(bomb, "compressed")
    # Unexpected but stored: refused before a byte of it is read.
    odd = _rewrite(good, tmp_path / "odd.npz", add={"param/extra": _npy(np.zeros(3, np.float32))})
    _refused_fast(odd, "unexpected entry 'param/extra'")


def test_huge_declared_shape_is_refused_before_allocating(tmp_path):
    good = _model_checkpoint(tmp_path)
    huge = _npy({"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)}, bytes(64))
    bad = _with_meta(_rewrite(good, tmp_path / "a.npz", replace={"param/out.b": huge}), tmp_path / "b.npz",
                     lambda meta: meta["param_shapes"].update({"out.b": [100_000, 100_000]}))
    _refused_fast(bad, r"declares \(100000, 100000\) float32")


def test_metadata_claiming_a_huge_model_is_refused_before_allocating(tmp_path):
    from minilstm.training import load_model

    good = _model_checkpoint(tmp_path)
    bad = _with_meta(good, tmp_path / "h.npz", lambda meta: meta["config"].update(hidden_size=16000))
    _refused_fast(bad, r"config says vocab_size x hidden_size = \(10, 16000\)", load_model)
    worse = _with_meta(good, tmp_path / "w.npz", lambda meta: meta["config"].update(hidden_size=30000))
    _refused_fast(worse, "hidden_size = 30,000 is beyond the limit", load_model)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import signal

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this OS")
    fifo = tmp_path / "last.npz"
    os.mkfifo(fifo)
    signal.signal(signal.SIGALRM, lambda *a: pytest.fail("load_checkpoint blocked on a FIFO"))
    signal.alarm(5)
    try:
        _refused_fast(fifo, "not a regular file")
    finally:
        signal.alarm(0)


@pytest.mark.parametrize("edit,pattern", [
    (lambda m: m["config"].update(colour="red"), r"unknown field\(s\) \['colour'\]"),
    (lambda m: m["config"].pop("hidden_size"), r"lacks the field\(s\) \['hidden_size'\]"),
    (lambda m: m["config"].update(dropout=float("nan")), "dropout must be a finite number"),
    (lambda m: m["config"].update(num_layers="2"), "num_layers must be of type int"),
    (lambda m: m.update(vocab_size=-3), "vocab_size -3 is not a whole number"),
    (lambda m: m.pop("config"), "must be a JSON object of config fields"),
])
def test_bad_metadata_fields_are_refused(tmp_path, edit, pattern):
    from minilstm.training import load_model

    bad = _with_meta(_model_checkpoint(tmp_path), tmp_path / "m.npz", edit)
    _refused_fast(bad, pattern, lambda p: load_model(p))


@pytest.mark.parametrize("what,pattern", [
    ("int64", "is int64, not float32/float64"),
    ("float64", "is float64, but its config says float32"),
    ("nan", "contains NaN or inf"),
])
def test_bad_weights_are_refused_not_cast(tmp_path, what, pattern):
    from minilstm.training import load_model

    good = _model_checkpoint(tmp_path)
    w = load_checkpoint(good).params["out.b"]
    w = {"int64": w.astype(np.int64), "float64": w.astype(np.float64)}.get(what, w.copy())
    if what == "nan":
        w[0] = np.nan
    bad = _rewrite(good, tmp_path / "w.npz", replace={"param/out.b": _npy(w)})
    _refused_fast(bad, pattern, lambda p: load_model(p))


def test_damaged_bytes_only_ever_give_a_checkpoint_error(tmp_path):
    """300 seeded corruptions (flipped, truncated, zeroed bytes) of a real checkpoint: load_model either
    succeeds or raises a one-line CheckpointError, never anything else."""
    from minilstm.training import load_model

    good = _model_checkpoint(tmp_path).read_bytes()
    r = np.random.default_rng(0)
    bad = tmp_path / "x.npz"
    outcomes = {"refused": 0, "loaded": 0}
    for trial in range(300):
        data = bytearray(good)
        kind = trial % 3
        if kind == 0:
            for i in r.integers(0, len(data), r.integers(1, 8)):
                data[i] ^= 1 << int(r.integers(0, 8))
        elif kind == 1:
            data = data[:int(r.integers(0, len(data)))]
        else:
            start = int(r.integers(0, len(data)))
            n = min(int(r.integers(1, 64)), len(data) - start)
            data[start:start + n] = bytes(n)
        bad.write_bytes(bytes(data))
        try:
            load_model(bad)
            outcomes["loaded"] += 1
        except CheckpointError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 250, outcomes
    print(outcomes)
