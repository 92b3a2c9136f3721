"""The GPU code path end to end, on any CPU, through a strict stand-in for CuPy (tests/fake_cupy.py).

``train --device gpu``, evaluation, sampling, checkpoint save and a bit-exact resume (the
dropout generator's state included) run with "device" arrays that refuse implicit
conversion to NumPy, and with the fused CUDA kernels' bodies compiled as C++ loops (the
harness of test_cuda_kernels_on_cpu.py). This catches dispatch and host-transfer bugs; it
does not replace a run on a real GPU (the ``gpu`` tests in test_backend_gpu.py).
"""

import sys

import numpy as np
import pytest
from fake_cupy import make_cupy, make_cupyx
from test_cuda_kernels_on_cpu import C_TYPES, CXX, _CPUKernel, _source

import minilstm as m
from minilstm import cli
from minilstm.data import Corpus, load_corpus
from minilstm.ops import cuda_kernels

pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++, c++ or clang++) on PATH")


@pytest.fixture(scope="module")
def fake_gpu(tmp_path_factory):
    """sys.modules["cupy"] / ["cupyx"] are the stand-ins for this module's tests; the kernels are built from them."""
    import ctypes
    import subprocess

    from kernel_source import kernel_specs

    specs = kernel_specs()
    build = tmp_path_factory.mktemp("fake_gpu_kernels")
    libs = {}
    for dtype, ctype in C_TYPES.items():
        src, lib = build / f"k_{ctype}.cpp", build / f"k_{ctype}.so"
        src.write_text(_source(specs, ctype))
        subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        libs[dtype] = ctypes.CDLL(str(lib))
    cupy = make_cupy(lambda ins, outs, op, name: _CPUKernel(libs, name, ins, outs))
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "cupy", cupy)
        mp.setitem(sys.modules, "cupyx", make_cupyx())
        cuda_kernels._kernels.cache_clear()
        yield cupy
        cuda_kernels._kernels.cache_clear()


@pytest.fixture(scope="module")
def corpus():
    full = load_corpus("builtin")
    return Corpus(name="builtin", vocab=full.vocab, train=full.train[:4000], valid=full.valid[:800],
                  test=full.test[:800], entropy=None, description="slice for tests")


FAST = dict(hidden_size=16, num_steps=10, batch_size=8, epochs=2, max_epoch=1, eval_batch_size=4, dropout=0.3)


def _quiet(*a):
    pass


def test_the_stand_in_is_strict(fake_gpu):
    cp = fake_gpu
    a = cp.zeros(3)
    assert type(a).__module__ == "cupy" and m.backend.get_array_module(a) is cp
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError):
        a + np.zeros(3)
    with pytest.raises(TypeError):
        np.exp(a)
    with pytest.raises(TypeError):
        cp.multiply(a, np.ones(3))
    np.testing.assert_array_equal(cp.asnumpy(cp.asarray(np.arange(3)) * 2), [0, 2, 4])


def test_train_on_the_gpu_path_matches_cpu_and_resumes_bit_exactly(fake_gpu, corpus, tmp_path):
    from minilstm.training import train

    cpu = train("tiny", out_dir=tmp_path / "cpu", corpus=corpus, progress=False, log=_quiet, device="cpu", **FAST)
    gpu = train("tiny", out_dir=tmp_path / "gpu", corpus=corpus, progress=False, log=_quiet, device="gpu", **FAST)
    assert all(type(p).__module__ == "cupy" for p in gpu.model.params.values())
    assert set(fake_gpu.kernel_calls) == {"minilstm_lstm_activate_gates", "minilstm_lstm_cell_forward",
                                          "minilstm_lstm_cell_backward", "minilstm_softmax_exp_shifted",
                                          "minilstm_softmax_cross_entropy_grad"}, fake_gpu.kernel_calls
    # The same masks (drawn on the host) and the same arithmetic: the GPU path follows the CPU one.
    for a, b in zip(gpu.history, cpu.history):
        assert a["valid_ppl"] == pytest.approx(b["valid_ppl"], rel=1e-5)
    for name, p in cpu.model.params.items():
        np.testing.assert_allclose(gpu.model.params[name].get(), p, rtol=0, atol=1e-5, err_msg=name)

    def stop(info):
        if info["step"] == 23:
            raise KeyboardInterrupt

    part = train("tiny", out_dir=tmp_path / "cut", corpus=corpus, progress=False, log=_quiet, device="gpu",
                 on_step=stop, **FAST)
    assert part.interrupted
    res = train("tiny", out_dir=tmp_path / "cut", corpus=corpus, progress=False, log=_quiet, device="gpu",
                resume=True, **FAST)
    for name, p in gpu.model.params.items():
        np.testing.assert_array_equal(res.model.params[name].get(), p.get(), err_msg=name)
    assert res.test_ppl == gpu.test_ppl


def test_cli_train_eval_sample_on_the_gpu_path(fake_gpu, corpus, tmp_path, capsys, monkeypatch):
    import minilstm.data as data_mod
    import minilstm.training as tr

    monkeypatch.setattr(tr, "load_corpus", lambda name, data_dir=None: corpus)
    monkeypatch.setattr(data_mod, "load_corpus", lambda name, data_dir=None: corpus)
    out = tmp_path / "run"
    assert cli.main(["train", "--device", "gpu", "--no-compare", "--out", str(out), "--hidden", "12", "--epochs",
                     "1", "--steps", "8", "--batch", "8", "--eval-batch", "4", "--dropout", "0.2",
                     "--no-progress"]) == 0
    ck = str(out / "last.npz")
    assert cli.main(["eval", ck, ck, "--device", "gpu", "--eval-batch", "4", "--no-progress"]) == 0
    assert cli.main(["eval", ck, "--device", "gpu", "--split", "valid", "--no-progress"]) == 0
    assert cli.main(["sample", ck, "--device", "gpu", "--length", "8", "--prime", corpus.vocab[5]]) == 0
    text = capsys.readouterr().out
    assert "average of 2 models" in text and "valid perplexity" in text


@pytest.mark.parametrize("mode, tie", [("variational", False), ("zaremba", True), ("variational", True)])
def test_new_modes_on_the_gpu_path_match_cpu(fake_gpu, corpus, tmp_path, mode, tie):
    """Variational dropout's (N, 1, H) masks and the tied decoder (its dense + row-sparse gradient sum)
    run on "device" arrays and follow the CPU path step for step."""
    from minilstm.training import train

    kw = dict(FAST, epochs=1, dropout_mode=mode, tie_weights=tie)
    cpu = train("tiny", corpus=corpus, progress=False, log=_quiet, device="cpu", evaluate_test=False, **kw)
    gpu = train("tiny", corpus=corpus, progress=False, log=_quiet, device="gpu", evaluate_test=False, **kw)
    assert ("out.W" in cpu.model.params) is not tie
    assert gpu.history[0]["valid_ppl"] == pytest.approx(cpu.history[0]["valid_ppl"], rel=1e-5)
    for name, p in cpu.model.params.items():
        np.testing.assert_allclose(gpu.model.params[name].get(), p, rtol=0, atol=1e-5, err_msg=name)
