"""Models built on the shared LSTM stack (minilstm/stack.py).

- ``translation``: translation as a conditional language model (the paper's Table 3)

The Penn Treebank language model is ``minilstm.model.LSTMLanguageModel`` (it kept
its place: checkpoints, handouts and graded parts name it there).
"""

from .translation import TranslationModel

__all__ = ["TranslationModel"]
