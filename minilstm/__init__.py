"""minilstm: a hand-written NumPy/CuPy LSTM that teaches, and reproduces,
Zaremba, Sutskever & Vinyals (2014), "Recurrent Neural Network Regularization".
"""

from . import backend, gradcheck
from .backend import default_rng, get_array_module, get_xp, gpu_available, to_device, to_host
from .choices import DROPOUT_MODES
from .model import LSTMLanguageModel
from .ops import (
    affine_backward, affine_forward, dropout_backward, dropout_forward, dropout_mask,
    embedding_backward, embedding_forward, lstm_backward, lstm_forward, lstm_step_backward,
    lstm_step_forward, softmax_cross_entropy_backward, softmax_cross_entropy_forward,
)

from .stack import LSTMStack
from .training import evaluate, evaluate_ensemble, load_model, train

__version__ = "0.1.0"  # the one place the version is written (setup.cfg reads it)

__all__ = [
    "LSTMLanguageModel", "LSTMStack", "DROPOUT_MODES", "backend", "gradcheck",
    "train", "evaluate", "evaluate_ensemble", "load_model",
    "get_array_module", "get_xp", "gpu_available", "to_device", "to_host", "default_rng",
    "affine_forward", "affine_backward", "dropout_forward", "dropout_backward", "dropout_mask",
    "embedding_forward", "embedding_backward", "lstm_step_forward", "lstm_step_backward",
    "lstm_forward", "lstm_backward", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
]
