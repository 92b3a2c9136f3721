"""The library's edges (issue 22, API): every argument outside what is computed exactly is refused with
one clear line, and what is accepted is computed as documented.

float16 arrays, a NaN loss, a normalizer of 0, hidden_size=2.5 or True, a gradient check's step and
tolerance, checkpoints save and load accept the same things, a PTB file with a byte-order mark,
sample(length=-1); and the split names defined once.
"""

import warnings

import numpy as np
import pytest

import minilstm as m
from minilstm import gradcheck
from minilstm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minilstm.checks import NonFiniteError
from minilstm.config import get_config
from minilstm.ops.softmax import softmax_cross_entropy_forward


def _one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text and len(text) < 400, text
    return text


# ----------------------------------------------------------------------------- float16

def _f16_calls(rng):
    """(name, call) for every op given one float16 array where float32/float64 belong."""
    h = np.float16
    N, T, D, H, V = 2, 3, 4, 5, 7
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), np.zeros(4 * H)
    x3, h0 = rng.standard_normal((N, T, D)), np.zeros((N, H))
    return [
        ("lstm_forward x", lambda: m.lstm_forward(x3.astype(h), h0, Wx, Wh, b)),
        ("lstm_forward Wx", lambda: m.lstm_forward(x3, h0, Wx.astype(h), Wh, b)),
        ("lstm_step_forward", lambda: m.ops.lstm_step_forward(x3[:, 0].astype(h), h0, h0, Wx.astype(h), Wh, b)),
        ("affine_forward", lambda: m.ops.affine_forward(x3.astype(h), Wx.astype(h), b.astype(h))),
        ("embedding_forward", lambda: m.ops.embedding_forward(np.zeros((N, T), int), Wx.astype(h))),
        ("softmax", lambda: softmax_cross_entropy_forward(rng.standard_normal((N, T, V)).astype(h),
                                                          np.zeros((N, T), int))),
        ("dropout_forward", lambda: m.ops.dropout_forward(x3.astype(h), 0.5, rng=np.random.default_rng(0))),
        ("dropout_forward eval", lambda: m.ops.dropout_forward(x3.astype(h), 0.5, train=False)),
        ("dropout_mask", lambda: m.ops.dropout_mask((2, 3), 0.5, np.random.default_rng(0), np.float16)),
    ]


@pytest.mark.parametrize("index", range(9))
def test_float16_is_refused_by_every_op(rng, index):
    name, call = _f16_calls(rng)[index]
    with pytest.raises(TypeError, match="float32 or float64") as info:
        call()
    assert "float16" in _one_line(info), name


@pytest.mark.parametrize("dtype", ["float16", np.float16, "int32", "bogus"])
def test_a_model_refuses_a_dtype_the_ops_do_not_compute_in(dtype):
    with pytest.raises(TypeError, match="dtype must be one of float32, float64") as info:
        m.LSTMLanguageModel(10, 8, 1, dtype=dtype)
    _one_line(info)


def test_float32_and_float64_still_accepted(rng):
    for dtype in (np.float32, np.float64, "float32", np.dtype("float64")):
        mask = m.ops.dropout_mask((2, 3), 0.5, np.random.default_rng(0), dtype)
        assert mask.dtype == np.dtype(dtype)


# ----------------------------------------------------------------------------- softmax: NaN, normalizer

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_score_gives_a_named_error_not_a_nan_loss(rng, bad):
    scores = rng.standard_normal((2, 3, 7))
    y = np.zeros((2, 3), dtype=int)
    scores[1, 2, 0] = bad  # -inf on the target: probability 0, an infinite loss
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way to the message
        with pytest.raises(NonFiniteError, match="the loss is .*scores holds NaN or inf") as info:
            softmax_cross_entropy_forward(scores, y)
    _one_line(info)
    assert isinstance(info.value, FloatingPointError) and isinstance(info.value, ValueError)


def test_a_minus_inf_score_off_the_target_is_a_probability_zero(rng):
    scores = rng.standard_normal((2, 3, 7))
    scores[:, :, 3] = -np.inf  # word 3 impossible; the targets (0) are not it
    loss, _ = softmax_cross_entropy_forward(scores, np.zeros((2, 3), dtype=int))
    ref, _ = softmax_cross_entropy_forward(np.delete(scores, 3, axis=2), np.zeros((2, 3), dtype=int))
    assert np.isclose(loss, ref, rtol=1e-14)


def test_the_model_still_says_training_diverged(rng):
    model = m.LSTMLanguageModel(11, 6, 1, dtype="float64", seed=0)
    model.params["out.b"][:] = 1e308  # finite weights whose scores overflow
    model.params["out.b"][0] = -1e308
    tokens = rng.integers(0, 11, (2, 3))
    with pytest.raises(FloatingPointError, match="training diverged") as info:
        model.forward(tokens, tokens)
    _one_line(info)


@pytest.mark.parametrize("normalizer", [0, -1, -0.5, float("nan"), float("inf"), True, "2", None.__class__])
def test_a_normalizer_that_is_not_a_positive_number_is_refused(rng, normalizer):
    scores, y = rng.standard_normal((2, 3, 7)), np.zeros((2, 3), dtype=int)
    with pytest.raises(ValueError, match="normalizer must be a positive finite number") as info:
        softmax_cross_entropy_forward(scores, y, normalizer=normalizer)
    _one_line(info)


def test_a_positive_normalizer_divides_the_summed_nll(rng):
    scores, y = rng.standard_normal((2, 3, 7)), np.zeros((2, 3), dtype=int)
    total, _ = softmax_cross_entropy_forward(scores, y, normalizer=1)
    for normalizer in (2, 2.5, np.float32(4), np.int64(3)):
        loss, _ = softmax_cross_entropy_forward(scores, y, normalizer=normalizer)
        assert loss == total / normalizer
    assert softmax_cross_entropy_forward(scores, y)[0] == total / 2  # default: N


# ----------------------------------------------------------------------------- sizes

@pytest.mark.parametrize("value", [2.5, True, False, 0, -3, "8", 8.0, None])
def test_a_size_must_be_a_positive_int(value):
    with pytest.raises(ValueError, match="hidden_size must be a positive whole number") as info:
        m.LSTMLanguageModel(10, hidden_size=value, num_layers=1)
    _one_line(info)
    with pytest.raises(ValueError, match="num_layers must be a positive whole number"):
        m.LSTMLanguageModel(10, hidden_size=4, num_layers=value)
    with pytest.raises(ValueError, match="vocab_size must be a positive whole number"):
        m.LSTMLanguageModel(value, hidden_size=4, num_layers=1)
    from minilstm.stack import LSTMStack
    with pytest.raises(ValueError, match="input_size must be a positive whole number"):
        LSTMStack(value, 4, 1)
    if value is not None:
        with pytest.raises(ValueError, match="hidden_size must be"):
            get_config("tiny", hidden_size=value)


def test_numpy_integer_sizes_are_sizes():
    model = m.LSTMLanguageModel(np.int64(10), hidden_size=np.int32(4), num_layers=np.int64(1))
    assert (model.V, model.H, model.L) == (10, 4, 1) and type(model.H) is int


# ----------------------------------------------------------------------------- gradient-check settings

def _affine_case(rng):
    inputs = dict(x=rng.standard_normal((2, 3)), W=rng.standard_normal((3, 4)), b=rng.standard_normal(4))
    return m.ops.affine_forward, m.ops.affine_backward, inputs, ["x", "W", "b"]


@pytest.mark.parametrize("kw,pattern", [
    (dict(h=0.0), "step h must be a positive finite number"),
    (dict(h=-1e-3), "step h must be a positive finite number"),
    (dict(h=float("nan")), "step h must be a positive finite number"),
    (dict(h=float("inf")), "step h must be a positive finite number"),
    (dict(h=True), "step h must be a positive finite number"),
    (dict(h=0.5), "step h must be small"),
    (dict(h=1e-15), "step h must be small"),
    (dict(tol=0), "tol must be a positive number below 1"),
    (dict(tol=-1e-7), "tol must be a positive number below 1"),
    (dict(tol=float("nan")), "tol must be a positive number below 1"),
    (dict(tol=float("inf")), "tol must be a positive number below 1"),
    (dict(tol=1.0), "tol must be a positive number below 1"),
    (dict(floor=0.0), "floor must be a positive finite number"),
    (dict(floor=float("nan")), "floor must be a positive finite number"),
])
def test_gradcheck_refuses_a_step_or_tolerance_that_cannot_give_a_verdict(rng, kw, pattern):
    forward, backward, inputs, names = _affine_case(rng)
    calls = []
    forward_counted = lambda **a: calls.append(1) or forward(**a)  # noqa: E731
    with pytest.raises(ValueError, match=pattern) as info:
        gradcheck.check_op(forward_counted, backward, inputs, names, **kw)
    _one_line(info)
    assert not calls, "refused before any forward pass"
    model = m.LSTMLanguageModel(5, 3, 1, dtype="float64")
    tokens = np.zeros((1, 2), dtype=int)
    with pytest.raises(ValueError, match=pattern):
        gradcheck.check_model(model, tokens, tokens, **kw)
    x = inputs["x"]
    with pytest.raises(ValueError, match=pattern):
        gradcheck.check_direction(lambda: float(x.sum()), x, np.ones_like(x), **kw)


def test_numerical_gradient_takes_any_positive_step_as_lesson_3_sweeps():
    x = np.array([0.3])
    for h in (1e-12, 0.5, 1.0):
        assert np.isfinite(gradcheck.numerical_gradient(lambda: float(x[0] ** 2), x, (0,), h=h, order=2))
    for h in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="step h must be a positive finite number"):
            gradcheck.numerical_gradient(lambda: float(x[0] ** 2), x, (0,), h=h)


def test_gradcheck_defaults_still_pass(rng):
    forward, backward, inputs, names = _affine_case(rng)
    report = gradcheck.check_op(forward, backward, inputs, names)
    assert report.passed and report.worst.max_rel_error < 1e-7


# ----------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("params,arrays,meta,pattern", [
    ({"w": np.zeros(3, np.int64)}, {}, {}, "'param/w' is int64, not float32/float64"),
    ({"w": np.zeros(3, np.float16)}, {}, {}, "'param/w' is float16, not float32/float64"),
    ({"w": np.zeros(3, np.complex128)}, {}, {}, "'param/w' is complex128"),
    ({"w": np.zeros(3)}, {"z": np.zeros(3, np.complex64)}, {}, "'array/z' is complex64, not bool, integer or float"),
    ({"w": np.zeros(3)}, {"s": np.array(["a", "b"])}, {}, "'array/s' is <U1"),
    ({"w": np.zeros(3)}, {}, {"config": {"dtype": "float32"}}, "'param/w' is float64, but its config says float32"),
])
def test_save_refuses_what_load_would_refuse(tmp_path, params, arrays, meta, pattern):
    path = tmp_path / "c.npz"
    with pytest.raises(CheckpointError, match=pattern) as info:
        save_checkpoint(path, params, meta, arrays)
    assert "load_checkpoint would refuse it" in _one_line(info)
    assert not path.exists() and not list(tmp_path.iterdir()), "nothing written, no temporary file left"


def test_what_save_accepts_load_reads_back_exactly(tmp_path):
    params = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, np.float64)}
    arrays = {name: np.arange(4).astype(dt) for name, dt in
              [("b1", np.bool_), ("i8", np.int8), ("i64", np.int64), ("u8", np.uint8), ("f16", np.float16),
               ("f32", np.float32), ("f64", np.float64)]}
    save_checkpoint(tmp_path / "c.npz", params, {"note": "x"}, arrays)
    ck = load_checkpoint(tmp_path / "c.npz")
    for saved, loaded in ((params, ck.params), (arrays, ck.arrays)):
        assert set(saved) == set(loaded)
        for name, value in saved.items():
            assert loaded[name].dtype == value.dtype and np.array_equal(loaded[name], value)


# ----------------------------------------------------------------------------- PTB text with a BOM

def _ptb_folder(folder, prefix=b"", encode=lambda t: t.encode("utf-8")):
    text = {"train": "the cat sat\nthe dog ran\n", "valid": "the cat ran\n", "test": "the dog sat\n"}
    folder.mkdir()
    for split, t in text.items():
        (folder / f"ptb.{split}.txt").write_bytes(prefix + encode(t))
    return folder


def test_a_utf8_byte_order_mark_is_not_a_word(tmp_path):
    from minilstm.data.ptb import load_ptb

    plain = load_ptb(_ptb_folder(tmp_path / "plain"), download=False, verify=False)
    marked = load_ptb(_ptb_folder(tmp_path / "bom", prefix=b"\xef\xbb\xbf"), download=False, verify=False)
    assert marked.vocab == plain.vocab and not any("\ufeff" in w for w in marked.vocab)
    for split in m.choices.SPLITS:
        assert np.array_equal(getattr(marked, split), getattr(plain, split))


def test_utf16_text_is_refused_with_what_to_do(tmp_path):
    from minilstm.data import DataError
    from minilstm.data.ptb import load_ptb

    folder = _ptb_folder(tmp_path / "u16", encode=lambda t: t.encode("utf-16"))
    with pytest.raises(DataError, match="is UTF-16 text; save it as UTF-8") as info:
        load_ptb(folder, download=False, verify=False)
    _one_line(info)


# ----------------------------------------------------------------------------- sample

@pytest.fixture(scope="module")
def tiny_model():
    vocab = ["<eos>", "a", "b", "c"]
    return m.LSTMLanguageModel(len(vocab), 4, 1, seed=0), vocab


@pytest.mark.parametrize("length", [-1, 2.5, True, "3", None])
def test_sample_refuses_a_length_that_is_not_a_count(tiny_model, length):
    from minilstm.sample import sample

    with pytest.raises(ValueError, match="length must be a whole number of words, 0 or more") as info:
        sample(*tiny_model, length=length)
    _one_line(info)


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf"), True])
def test_sample_refuses_a_temperature_that_is_not_positive_and_finite(tiny_model, temperature):
    from minilstm.sample import sample

    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        sample(*tiny_model, length=3, temperature=temperature)


def test_sample_lengths_that_are_counts(tiny_model):
    from minilstm.sample import sample

    assert sample(*tiny_model, length=0) == []
    assert len(sample(*tiny_model, length=np.int64(4))) == 4


# ----------------------------------------------------------------------------- one source of truth

def test_the_split_names_are_defined_once():
    from minilstm import choices
    from minilstm.data import corpus, parallel, ptb

    assert corpus.SPLITS is choices.SPLITS and parallel.SPLITS is choices.SPLITS
    assert tuple(ptb.FILES) == choices.SPLITS


def test_lstm_backward_returns_what_its_docstring_says(rng):
    """Six values: CS231n's five in CS231n's order, then dc0 (the module docstring says so)."""
    from minilstm.ops import lstm

    N, T, D, H = 2, 3, 4, 5
    h, cache = lstm.lstm_forward(rng.standard_normal((N, T, D)), np.zeros((N, H)),
                                 rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), np.zeros(4 * H))
    grads = lstm.lstm_backward(rng.standard_normal(h.shape), cache)
    assert [g.shape for g in grads] == [(N, T, D), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,), (N, H)]
    assert "[:5]" in lstm.__doc__ and "dc0" in lstm.lstm_backward.__doc__
    assert "works unchanged" not in lstm.__doc__


# ----------------------------------------------------------------------------- divergence without warnings

def test_an_overflowing_gradient_norm_is_inf_without_a_warning():
    """A diverging run's float32 gradients square past 3.4e38: the norm is inf (training reports it as
    divergence), and NumPy's overflow warning is not repeated on the way (the suite makes it an error)."""
    from minilstm.optim import global_norm

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert global_norm({"a": np.full(10, 1e20, np.float32)}) == np.inf
        assert np.isclose(global_norm({"a": np.full(4, 3.0, np.float32)}), 6.0)


def test_a_diverged_model_raises_without_a_warning(rng):
    model = m.LSTMLanguageModel(11, 6, 1, dtype="float32", seed=0)
    for name, w in model.params.items():  # finite weights of both signs whose products overflow float32
        w[...] = rng.choice([-3e19, 3e19], size=w.shape)
    model.params["out.b"][...] = 3e38
    model.params["out.b"][::2] = -3e38  # the even words' scores fall 6e38 below the top: probability 0
    tokens = rng.integers(0, 11, (2, 3)) // 2 * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FloatingPointError, match="training diverged"):
            model.forward(tokens, tokens)
