"""Models built on the shared LSTM stack (minilstm/stack.py).

- ``translation``: translation as a conditional language model (the paper's Table 3)
- ``caption``: image captioning, the image's features as the first input (the paper's Table 4)
- ``ensemble``: K models as one, their probabilities averaged (the ensemble rows)

The Penn Treebank language model is ``minilstm.model.LSTMLanguageModel`` (it kept
its place: checkpoints, handouts and graded parts name it there).
"""

from .caption import CaptionModel
from .ensemble import Ensemble
from .translation import TranslationModel

__all__ = ["TranslationModel", "CaptionModel", "Ensemble"]
