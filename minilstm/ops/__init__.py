"""The hand-written ops: each a ``*_forward`` returning ``(out, cache)`` and a
``*_backward(dout, cache)`` returning the gradients. No autograd anywhere.

Each op takes its array module from its own arguments, ``xp =
backend.get_array_module(*arrays)`` (minilstm/backend.py), and checks them
with minilstm/checks.py, so the same code runs on NumPy and CuPy."""

from .affine import affine_backward, affine_forward
from .dropout import dropout_backward, dropout_forward, dropout_mask
from .embedding import embedding_backward, embedding_forward
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from .softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward

__all__ = [
    "affine_forward", "affine_backward",
    "dropout_forward", "dropout_backward", "dropout_mask",
    "embedding_forward", "embedding_backward",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
]
