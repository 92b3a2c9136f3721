"""Bad input gets a clear error naming the argument and the expected shape."""

import numpy as np
import pytest

import minilstm as m
from minilstm.checks import ShapeError


@pytest.fixture
def lstm(rng):
    N, T, D, H = 2, 3, 4, 5
    return dict(x=rng.standard_normal((N, T, D)), h0=np.zeros((N, H)), Wx=rng.standard_normal((D, 4 * H)),
                Wh=rng.standard_normal((H, 4 * H)), b=np.zeros(4 * H))


@pytest.mark.parametrize("arg,shape,pattern", [
    ("x", (2, 3, 7), r"x must have shape \(N, T, D\)"),
    ("x", (2, 4), r"x must have shape \(N, T, D\)"),
    ("h0", (3, 5), r"h0 must have shape \(N, H\) = \(2, 5\)"),
    ("Wh", (5, 5), r"Wh must have shape \(H, 4H\) = \(5, 20\)"),
    ("b", (21,), r"b must have shape \(4H,\) = \(20,\)"),
    ("Wx", (4, 19), r"Wx must have shape \(D, 4H\)"),
])
def test_lstm_forward_wrong_shapes(lstm, arg, shape, pattern):
    lstm[arg] = np.zeros(shape)
    with pytest.raises((ShapeError, ValueError), match=pattern):
        m.lstm_forward(**lstm)


def test_lstm_step_wrong_shapes(lstm):
    x = lstm["x"][:, 0]
    with pytest.raises(ShapeError, match=r"prev_c must have shape \(N, H\) = \(2, 5\)"):
        m.lstm_step_forward(x, lstm["h0"], np.zeros((2, 4)), lstm["Wx"], lstm["Wh"], lstm["b"])
    with pytest.raises(ShapeError, match=r"x must have shape \(N, D\)"):
        m.lstm_step_forward(x[:, :3], lstm["h0"], lstm["h0"], lstm["Wx"], lstm["Wh"], lstm["b"])


def test_wrong_dtypes(lstm):
    bad = dict(lstm, x=lstm["x"].astype(np.float32))
    with pytest.raises(TypeError, match="x has dtype float32 but the weights are float64"):
        m.lstm_forward(**bad)
    bad = dict(lstm, x=lstm["x"].astype(np.int64))
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        m.lstm_forward(**bad)
    with pytest.raises(TypeError, match="x must be a NumPy or CuPy array"):
        m.lstm_forward(**dict(lstm, x=[[1.0]]))


def test_nan_inputs(lstm):
    lstm["x"][0, 1, 2] = np.nan
    with pytest.raises(FloatingPointError, match="x contains NaN"):
        m.lstm_forward(**lstm)
    lstm["x"][0, 1, 2] = 0
    lstm["h0"][1, 1] = np.inf
    with pytest.raises(FloatingPointError, match="h0 contains NaN or inf"):
        m.lstm_forward(**lstm)


def test_token_ids_out_of_range(rng):
    W = rng.standard_normal((10, 4))
    with pytest.raises(IndexError, match=r"tokens holds token id 10, outside the vocabulary \[0, 10\)"):
        m.embedding_forward(np.array([[1, 10]]), W)
    with pytest.raises(IndexError, match="token id -1"):
        m.embedding_forward(np.array([[-1, 2]]), W)
    with pytest.raises(TypeError, match="integer token ids"):
        m.embedding_forward(np.array([[1.0, 2.0]]), W)


def test_model_bad_inputs(rng):
    model = m.LSTMLanguageModel(10, 4, 2, dtype="float64")
    tokens = rng.integers(0, 10, (2, 3))
    with pytest.raises(IndexError, match="targets holds token id 12"):
        model.forward(tokens, np.full((2, 3), 12))
    with pytest.raises(ShapeError, match=r"targets must have shape \(N, T\) like tokens = \(2, 3\)"):
        model.forward(tokens, tokens[:, :2])
    with pytest.raises(ShapeError, match=r"tokens must have shape \(N, T\)"):
        model.forward(tokens[0], tokens[0])
    bad_state = (np.zeros((2, 3, 4)), np.zeros((2, 2, 4)))
    with pytest.raises(ShapeError, match=r"state h must have shape \(L, N, H\) = \(2, 2, 4\)"):
        model.forward(tokens, tokens, state=bad_state)
    with pytest.raises(ValueError, match="dropout_mode"):
        m.LSTMLanguageModel(10, 4, dropout_mode="everywhere")


def test_nan_loss_is_reported(rng):
    model = m.LSTMLanguageModel(10, 4, 1, dtype="float64")
    model.params["out.b"][3] = np.nan
    with pytest.raises(FloatingPointError, match="b contains NaN or inf"):
        model.forward(rng.integers(0, 10, (2, 3)), rng.integers(0, 10, (2, 3)))


def test_unknown_device():
    with pytest.raises(ValueError, match="device must be one of"):
        m.LSTMLanguageModel(10, 4, device="tpu")


def _lstm_args(rng, **kw):
    N, T, D, H = 2, 3, 4, 5
    d = dict(x=rng.standard_normal((N, T, D)), h0=np.zeros((N, H)), Wx=rng.standard_normal((D, 4 * H)),
             Wh=rng.standard_normal((H, 4 * H)), b=np.zeros(4 * H))
    d.update(kw)
    return d


def _nan(shape):
    a = np.zeros(shape)
    a.flat[-1] = np.nan
    return a


@pytest.mark.parametrize("call,error,pattern", [
    (lambda r: m.lstm_forward(**_lstm_args(r, x=np.zeros((2, 0, 4)))), "EmptyError", r"x has shape \(N, T, D\) \(2, 0, 4\)"),
    (lambda r: m.lstm_forward(**_lstm_args(r, x=np.zeros((0, 3, 4)), h0=np.zeros((0, 5)))), "EmptyError", "every dimension"),
    (lambda r: m.lstm_forward(**_lstm_args(r, Wh=_nan((5, 20)))), "NonFiniteError", "Wh contains NaN"),
    (lambda r: m.lstm_forward(**_lstm_args(r, b=_nan(20))), "NonFiniteError", "b contains NaN"),
    (lambda r: m.lstm_forward(**_lstm_args(r, h_masks=_nan((2, 3, 5)))), "NonFiniteError", "h_masks contains NaN"),
    (lambda r: m.lstm_backward(np.zeros((2, 3, 5)), m.lstm_forward(**_lstm_args(r))[1], dc_final=np.zeros((2, 6))),
     "ShapeError", r"dc_final must have shape \(N, H\) = \(2, 5\)"),
    (lambda r: m.lstm_backward(_nan((2, 3, 5)), m.lstm_forward(**_lstm_args(r))[1]), "NonFiniteError", "dh contains"),
    (lambda r: m.affine_forward(np.zeros((2, 0, 3)), np.ones((3, 4)), np.ones(4)), "EmptyError", "x has shape"),
    (lambda r: m.affine_forward(np.zeros((2, 3)), _nan((3, 4)), np.ones(4)), "NonFiniteError", "W contains NaN"),
    (lambda r: m.embedding_forward(np.zeros((0, 3), int), np.ones((5, 4))), "EmptyError", "tokens has shape"),
    (lambda r: m.embedding_forward(np.full((1, 3), 4), _nan((5, 4))), "NonFiniteError", r"W\[tokens\] contains NaN"),
    (lambda r: m.embedding_backward(np.zeros((1, 3, 7)), m.embedding_forward(np.zeros((1, 3), int), np.ones((5, 4)))[1]),
     "ShapeError", r"dout must have shape \(N, T, H\) = \(1, 3, 4\)"),
    (lambda r: m.softmax_cross_entropy_forward(np.zeros((2, 0, 5)), np.zeros((2, 0), int)), "EmptyError", "scores"),
    (lambda r: m.dropout_forward(np.ones((2, 3)), 0.5, mask=_nan((2, 3))), "NonFiniteError", "mask contains NaN"),
    (lambda r: m.dropout_backward(np.zeros((2, 4)), m.dropout_forward(np.ones((2, 3)), 0.5, rng=r)[1]),
     "ShapeError", r"dout must have shape .* = \(2, 3\), got \(2, 4\)"),
    (lambda r: m.LSTMLanguageModel(10, 4, 1).forward(np.zeros((2, 0), int), np.zeros((2, 0), int)), "EmptyError",
     r"tokens has shape \(N, T\) \(2, 0\)"),
    (lambda r: m.LSTMLanguageModel(10, 4, 1).forward(np.zeros((0, 3), int), np.zeros((0, 3), int)), "EmptyError",
     r"\(0, 3\)"),
    (lambda r: (lambda mod: mod.backward(mod.forward(np.zeros((2, 3), int), np.zeros((2, 3), int))[1],
                                         dloss=np.ones(3)))(m.LSTMLanguageModel(10, 4, 1)), "ShapeError", "dloss must be one"),
    (lambda r: m.LSTMLanguageModel(10, 4, 1, dropout=0.5).forward(
        np.zeros((2, 3), int), np.zeros((2, 3), int), masks={"drop0": np.full((2, 3, 4), np.nan, np.float32)}),
     "NonFiniteError", "mask contains NaN"),
])
def test_public_api_refuses_empty_nan_and_misshapen_arguments(rng, call, error, pattern):
    """T = 0, N = 0, NaN weights, masks or upstream gradients, wrong gradient shapes: a ValueError subclass
    named after the problem (never an IndexError, a ZeroDivisionError, a broadcast or a silent NaN)."""
    import minilstm.checks as checks

    with pytest.raises(getattr(checks, error), match=pattern) as exc_info:
        call(rng)
    assert isinstance(exc_info.value, ValueError)


def test_embedding_checks_the_rows_it_reads():
    """A NaN in a row no token selects never reaches the output (and backward never reads W): the
    result is exact, so it is returned; a selected one is refused."""
    W = np.arange(20.0).reshape(5, 4)
    W[4, 1] = np.nan
    out, _ = m.embedding_forward(np.array([[0, 3, 3]]), W)
    np.testing.assert_array_equal(out, W[[[0, 3, 3]]])
    with pytest.raises(FloatingPointError, match=r"W\[tokens\] contains NaN or inf"):
        m.embedding_forward(np.array([[0, 4]]), W)
