"""The paper's experiments beyond Table 1, one module each.

- ``translate``: Table 3 in miniature (``minilstm translate``)

Table 1 (the Penn Treebank language model) is ``minilstm train`` (training.py) and
the regularization lab (lab.py).
"""
