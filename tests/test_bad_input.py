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
    with pytest.raises(FloatingPointError, match="diverged"):
        model.forward(rng.integers(0, 10, (2, 3)), rng.integers(0, 10, (2, 3)))


def test_unknown_device():
    with pytest.raises(ValueError, match="device must be one of"):
        m.LSTMLanguageModel(10, 4, device="tpu")
