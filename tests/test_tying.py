"""Weight tying (Press & Wolf 2017; Inan et al. 2017): the decoder is the transposed embedding and the
shared matrix's gradient is the sum of both uses; checked by finite differences and, independently,
against an untied model whose out.W is embed.W.T."""

import json

import numpy as np
import pytest

import minilstm as m
from minilstm import gradcheck as gc
from minilstm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minilstm.ops.embedding import is_row_sparse
from minilstm.training import load_model, train

V, H, L, N, T = 13, 6, 2, 3, 5


def pair(mode="zaremba", **kw):
    """A tied model and an untied one with the same weights and out.W = embed.W.T."""
    kw = {"dropout": 0.4, "dropout_mode": mode, "init_scale": 0.3, "dtype": "float64", "seed": 2, **kw}
    tied = m.LSTMLanguageModel(V, H, L, tie_weights=True, **kw)
    untied = m.LSTMLanguageModel(V, H, L, **kw)
    untied.params = {**{k: v.copy() for k, v in tied.params.items()}, "out.W": tied.params["embed.W"].T.copy()}
    return tied, untied


def data(rng):
    return rng.integers(0, 6, (N, T)), rng.integers(0, V, (N, T))


def test_tied_model_has_no_decoder_matrix_of_its_own():
    tied, untied = pair()
    assert "out.W" not in tied.params and "out.W" in untied.params
    assert tied.num_params() == untied.num_params() - H * V
    assert tied.decoder_weight().shape == (H, V)
    assert np.shares_memory(tied.decoder_weight(), tied.params["embed.W"])


@pytest.mark.parametrize("mode", ["none", "zaremba"])  # tied + variational: tests/test_variational.py
def test_tied_model_passes_the_gradient_check(rng, mode):
    tied, _ = pair(mode)
    tokens, targets = data(rng)
    report = gc.check_model(tied, tokens, targets)
    assert [r.name for r in report] == list(tied.params)
    assert report.passed, str(report)
    assert report.worst.max_rel_error < 1e-7


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("mode", ["zaremba", "variational"])
def test_tied_equals_untied_with_the_transposed_embedding(rng, mode, fast):
    """Same loss; tied gradient of embed.W == untied embed.W gradient + (untied out.W gradient).T."""
    tied, untied = pair(mode, reuse_buffers=fast)
    tokens, targets = data(rng)
    state = tuple(rng.standard_normal((L, N, H)) * 0.5 for _ in range(2))
    _, c0, _ = tied.forward(tokens, targets, state)
    masks = c0.masks  # the same dropout masks for both
    loss_t, ct, st = tied.forward(tokens, targets, state, masks=masks)
    loss_u, cu, su = untied.forward(tokens, targets, state, masks=masks)
    assert loss_t == pytest.approx(loss_u, rel=1e-13)
    np.testing.assert_allclose(st[0], su[0], rtol=1e-13)
    gt, gu = tied.backward(ct), untied.backward(cu)
    assert not is_row_sparse(gt["embed.W"])  # the decoder touches every row: the sum is dense
    embed_u = gu["embed.W"].to_dense() if is_row_sparse(gu["embed.W"]) else gu["embed.W"]
    np.testing.assert_allclose(gt["embed.W"], embed_u + gu["out.W"].T, rtol=1e-12, atol=1e-14)
    for name in tied.params:
        if name != "embed.W":
            np.testing.assert_allclose(gt[name], gu[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_tied_training_step_moves_the_shared_matrix_by_both_gradients(rng):
    """One clipped SGD step of the tied model == the same step of the untied model, tied back."""
    tied, untied = pair(reuse_buffers=True)
    tokens, targets = data(rng)
    _, c0, _ = tied.forward(tokens, targets)
    masks = c0.masks
    _, ct, _ = tied.forward(tokens, targets, masks=masks)
    _, cu, _ = untied.forward(tokens, targets, masks=masks)
    gt, gu = tied.backward(ct), untied.backward(cu)
    gu["embed.W"] = gu["embed.W"].to_dense()
    expected = tied.params["embed.W"] - 0.1 * (gu["embed.W"] + gu["out.W"].T)
    m.optim.sgd_step_(tied.params, gt, 0.1)
    np.testing.assert_allclose(tied.params["embed.W"], expected, rtol=1e-12, atol=1e-14)


def test_tie_weights_is_recorded_in_checkpoints_and_old_ones_still_load(tmp_path):
    from minilstm.data import make_builtin_corpus

    corpus = make_builtin_corpus()
    res = train("tiny", out_dir=tmp_path / "tied", corpus=corpus, progress=False, log=lambda *a: None,
                hidden_size=8, epochs=1, train_tokens=600, eval_batch_size=50, tie_weights=True,
                evaluate_test=False)
    model, meta = load_model(tmp_path / "tied" / "last.npz")
    assert meta["config"]["tie_weights"] is True and model.tie_weights and "out.W" not in model.params
    for name in model.params:
        np.testing.assert_array_equal(model.params[name], res.model.params[name])
    assert json.loads((tmp_path / "tied" / "config.json").read_text())["tie_weights"] is True
    # A tied checkpoint cannot be forced into an untied model: a clear refusal, not a wrong model.
    untied = m.LSTMLanguageModel(res.model.V, 8, 2)
    from minilstm.checkpoint import check_compatible

    with pytest.raises(CheckpointError, match="missing \\['out.W'\\]"):
        check_compatible(meta, None, {k: v.shape for k, v in untied.params.items()})
    # A checkpoint written before tie_weights existed (no such key in its config) loads, untied.
    train("tiny", out_dir=tmp_path / "old", corpus=corpus, progress=False, log=lambda *a: None,
          hidden_size=8, epochs=1, train_tokens=600, eval_batch_size=50, evaluate_test=False)
    ck = load_checkpoint(tmp_path / "old" / "last.npz")
    meta_old = {k: v for k, v in ck.meta.items() if k not in ("format", "format_version", "param_shapes")}
    del meta_old["config"]["tie_weights"]
    save_checkpoint(tmp_path / "old.npz", ck.params, meta_old, ck.arrays)
    old, _ = load_model(tmp_path / "old.npz")
    assert not old.tie_weights and "out.W" in old.params


def test_cli_flag_and_gradcheck(capsys):
    from minilstm import cli

    args = cli.build_parser().parse_args(["train", "--tie-weights"])
    from minilstm.commands.train import _overrides

    assert _overrides(args)["tie_weights"] is True
    args = cli.build_parser().parse_args(["train", "--config", "medium-variational-tied", "--no-tie-weights"])
    assert _overrides(args)["tie_weights"] is False
    assert "tie_weights" not in _overrides(cli.build_parser().parse_args(["train"]))
    assert cli.main(["gradcheck", "--tie-weights", "--dropout-mode", "variational", "--steps", "3",
                     "--vocab", "7", "--hidden", "3", "--layers", "1"]) == 0
    assert "variational" in capsys.readouterr().out


def test_gpu_tied_variational_matches_numpy(rng):
    """The tied, variational fast path on CuPy: the same loss and gradients as on NumPy."""
    from minilstm import backend

    try:
        backend._import_cupy()
    except backend.GPUUnavailableError as exc:
        pytest.skip(f"no usable GPU: {exc}")
    import cupy

    kw = dict(dropout=0.4, dropout_mode="variational", dtype="float64", seed=3, reuse_buffers=True, tie_weights=True)
    cpu = m.LSTMLanguageModel(V, H, L, **kw)
    dev = m.LSTMLanguageModel(V, H, L, device="gpu", **kw)
    dev.params = backend.params_to(cpu.params, "gpu")
    tokens, targets = data(rng)
    _, cache, _ = cpu.forward(tokens, targets)
    masks = cache.masks
    loss_c, cc, _ = cpu.forward(tokens, targets, masks=masks)
    loss_g, cg, _ = dev.forward(cupy.asarray(tokens), cupy.asarray(targets), masks=backend.params_to(masks, "gpu"))
    assert abs(loss_c - loss_g) <= 1e-10 * abs(loss_c)
    gcpu, ggpu = cpu.backward(cc), dev.backward(cg)
    for name in gcpu:
        np.testing.assert_allclose(backend.to_host(ggpu[name]), gcpu[name], rtol=1e-10, atol=1e-12, err_msg=name)


test_gpu_tied_variational_matches_numpy = pytest.mark.gpu(test_gpu_tied_variational_matches_numpy)
