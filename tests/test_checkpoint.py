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
