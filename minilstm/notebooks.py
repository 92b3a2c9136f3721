"""Lessons as notebooks: jupytext percent-format scripts -> validated ``.ipynb`` files.

The lessons are plain Python files in jupytext's "percent" format (``# %%`` code
cells, ``# %% [markdown]`` cells, an optional ``# ---`` YAML header). We do not
parse that format ourselves: jupytext reads it (raw cells, ``#%%`` markers,
``# %magic`` and ``# !pip`` lines, cell titles and tags, a kernelspec in the
header) and nbformat validates and writes the notebook.

Two things are ours, both for ``minilstm assign``'s promise that the same
source gives byte-identical files:

* every cell gets a fixed id, ``<lesson name>-<cell index>`` (nbformat would
  draw random ones), so a handout generated twice is the same, byte for byte;
* the notebook carries the lesson's own kernelspec, or ``python3`` when the
  header names none (Jupyter then opens it without asking for a kernel).

jupytext and nbformat are the ``classroom`` extra (``pip install
"minilstm[classroom]"``); they are imported only when a notebook is made.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MissingNotebookTools", "is_percent_script", "percent_to_notebook", "notebook_bytes",
           "cell_id", "DEFAULT_KERNELSPEC"]

# What Jupyter writes for the python3 kernel that ipykernel installs.
DEFAULT_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
# jupytext's cell marker, as its percent reader accepts it: "# %%", "#%%", "# %% title [markdown] key=value".
_CELL_MARKER = re.compile(r"^\s*#\s*%%(?!%)")
# nbformat 4.5: 1-64 characters of [a-zA-Z0-9-_].
_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]+")


class MissingNotebookTools(ImportError):
    """jupytext / nbformat are not installed; the message says which extra installs them."""


def _tools():
    try:
        import jupytext
        import nbformat
    except ImportError as exc:
        raise MissingNotebookTools(
            f"making notebooks needs jupytext and nbformat ({exc.name} is missing): "
            'pip install "minilstm[classroom]"') from None
    return jupytext, nbformat


def is_percent_script(text: str) -> bool:
    """True if ``text`` has at least one percent-format cell marker (``# %%`` or ``#%%``)."""
    return any(_CELL_MARKER.match(line) for line in text.splitlines())


def cell_id(name: str, index: int) -> str:
    """The fixed id of cell ``index`` of lesson ``name``: ``01_lstm_cell-7``; valid for nbformat 4.5."""
    stem = _ID_CHARS.sub("-", name).strip("-") or "cell"
    suffix = f"-{index}"
    return stem[:64 - len(suffix)] + suffix


def percent_to_notebook(text: str, name: str = "cell") -> Any:
    """The notebook (an nbformat ``NotebookNode``, version 4.5) of a percent-format script.

    name: the lesson's name (e.g. ``01_lstm_cell``), from which the cell ids are made.
    Code cells come without outputs or execution counts. Raises
    ``nbformat.ValidationError`` if the result is not a valid notebook, and
    MissingNotebookTools without the ``classroom`` extra.
    """
    jupytext, nbformat = _tools()
    nb = jupytext.reads(text, fmt="py:percent")
    nb.nbformat, nb.nbformat_minor = 4, max(5, int(nb.get("nbformat_minor", 5)))
    for index, cell in enumerate(nb.cells):
        cell["id"] = cell_id(name, index)
    meta = nb.metadata
    meta.setdefault("kernelspec", dict(DEFAULT_KERNELSPEC))
    meta.setdefault("language_info", {"name": "python"})
    nbformat.validate(nb)
    return nb


def notebook_bytes(nb: Any) -> bytes:
    """The notebook as Jupyter writes it (sorted keys, one-space indent), UTF-8, ending in a newline.

    Deterministic: the same notebook always gives the same bytes.
    """
    _, nbformat = _tools()
    text = nbformat.writes(nb, version=4)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")
