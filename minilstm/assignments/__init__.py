"""The graded assignments: which solution regions make up each one, and what they are worth.

An *assignment* is a unit handed out at once (``minilstm assign OUT --assignment lstm``).
It is made of *parts*; a part is graded as a whole: its points are earned when
every test of that part passes, and lost otherwise.

The code of a part lives in the reference source between marker lines::

    ### BEGIN SOLUTION [lstm:cell_forward] (hint: c = f * prev_c + i * g; h = o * tanh(c))
    ...the reference code...
    ### END SOLUTION

``minilstm assign`` replaces such a region by ``raise NotImplementedError(hint)``
in the student version when its assignment is handed out. ``Part.functions``
lists the functions that hold the part's regions (``"module:qualname"``): the
student version names them in its README, and the grader uses them to test
each part in isolation (the functions of all *other* parts are swapped for the
reference ones while a part's tests run, so one bug costs one part's points).

Tests live next to this file:

``visible/``
    shipped to students as ``tests/``: ``test_<assignment>.py`` plus
    ``conftest.py`` and ``assignment_helpers.py``;
``hidden/``
    only in the instructor's installed package, never copied to a student
    version: ``test_<assignment>_hidden.py`` and the grading plugin.

Every test carries ``@pytest.mark.part("assignment:part")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VISIBLE_DIR = HERE / "visible"
HIDDEN_DIR = HERE / "hidden"


@dataclass(frozen=True)
class Part:
    """One graded unit of an assignment.

    name: short identifier used in the region tags (``[lstm:cell_forward]``);
    points: earned when all of the part's tests pass;
    title: one line for the student;
    functions: ``"minilstm.module:qualname"`` of every function holding one of
      the part's solution regions (a function belongs to one part only).
    """

    name: str
    points: int
    title: str
    functions: tuple

    def function_names(self):
        """The bare qualified names, e.g. ``LSTMLanguageModel._body``."""
        return [f.split(":", 1)[1] for f in self.functions]


@dataclass(frozen=True)
class Assignment:
    """A unit handed out and graded together."""

    name: str
    title: str
    summary: str
    parts: tuple

    @property
    def max_points(self):
        return sum(p.points for p in self.parts)

    def part(self, name):
        for p in self.parts:
            if p.name == name:
                return p
        raise ValueError(f"assignment {self.name!r} has no part {name!r}; "
                         f"its parts are {', '.join(p.name for p in self.parts)}")

    @property
    def visible_tests(self) -> Path:
        return VISIBLE_DIR / f"test_{self.name}.py"

    @property
    def hidden_tests(self) -> Path:
        return HIDDEN_DIR / f"test_{self.name}_hidden.py"


LSTM = Assignment(
    name="lstm",
    title="The LSTM: one step and a whole sequence, forward and backward",
    summary=(
        "Implement the LSTM cell of Zaremba et al. (2014), section 3.1, and backpropagation through time. "
        "Start with the cell equations (`cell_forward`, `cell_backward`), build one time step on them "
        "(`lstm_step_forward`, `lstm_step_backward`), then the whole sequence (`lstm_forward`, `lstm_backward`). "
        "Every backward pass is checked against finite differences (`minilstm.gradcheck`)."
    ),
    parts=(
        Part("cell_forward", 5, "the cell equations c = f * c_prev + i * g, h = o * tanh(c)",
             ("minilstm.ops.lstm:cell_forward",)),
        Part("cell_backward", 10, "backward through the cell equations and the gate nonlinearities",
             ("minilstm.ops.lstm:cell_backward",)),
        Part("step", 10, "one LSTM time step, forward and backward",
             ("minilstm.ops.lstm:lstm_step_forward", "minilstm.ops.lstm:lstm_step_backward")),
        Part("sequence_forward", 10, "the LSTM over a whole sequence (with optional recurrent masks)",
             ("minilstm.ops.lstm:lstm_forward",)),
        Part("sequence_backward", 15, "backpropagation through time",
             ("minilstm.ops.lstm:lstm_backward",)),
    ),
)

DROPOUT = Assignment(
    name="dropout",
    title="Dropout, and where the paper puts it",
    summary=(
        "Implement the inverted dropout operator D (`dropout_mask`, `dropout_forward`, `dropout_backward`), "
        "then place it in the language model (`LSTMLanguageModel._body` and `.backward`): on the non-recurrent "
        "connections only (`dropout_mode='zaremba'`, the paper's idea) and, for comparison, also on h(t-1) "
        "(`dropout_mode='recurrent'`, the naive placement the paper argues against)."
    ),
    parts=(
        Part("operator", 15, "the dropout operator D: mask, forward, backward",
             ("minilstm.ops.dropout:dropout_mask", "minilstm.ops.dropout:dropout_forward",
              "minilstm.ops.dropout:dropout_backward")),
        Part("placement", 15, "D in the model: zaremba (non-recurrent only) and recurrent placement",
             ("minilstm.model:LSTMLanguageModel._body", "minilstm.model:LSTMLanguageModel.backward")),
    ),
)

TRAINING = Assignment(
    name="training",
    title="Training the language model with truncated BPTT",
    summary=(
        "Measure perplexity (`evaluate`) and write the training step `train_step` (`train` calls it for every chunk): each chunk starts from the "
        "state the previous chunk left (but no gradient flows back across the boundary: truncated BPTT), "
        "then backward, clipping of the global gradient norm and an SGD step. The hidden test trains a small "
        "model on the built-in corpus and expects it to reach a target validation perplexity."
    ),
    parts=(
        Part("evaluate", 10, "perplexity of a token stream, state carried, dropout off",
             ("minilstm.training:evaluate",)),
        Part("loop", 20, "the truncated-BPTT training step: carried state, clipping, SGD",
             ("minilstm.training:train_step",)),
    ),
)

ASSIGNMENTS = {a.name: a for a in (LSTM, DROPOUT, TRAINING)}


def get_assignment(name: str) -> Assignment:
    """The assignment called ``name``; a ValueError listing the known ones otherwise."""
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise ValueError(f"unknown assignment {name!r}; known: {', '.join(ASSIGNMENTS)}") from None


def select(names=None) -> list:
    """Assignments by name, in course order; all of them when ``names`` is empty or None."""
    if not names:
        return list(ASSIGNMENTS.values())
    wanted = {get_assignment(n).name for n in names}
    return [a for a in ASSIGNMENTS.values() if a.name in wanted]


def part_key(assignment: Assignment, part: Part) -> str:
    """``"lstm:cell_forward"``: how tags, test markers and reports name a part."""
    return f"{assignment.name}:{part.name}"


def all_parts() -> dict:
    """{"assignment:part": Part} over every assignment."""
    return {part_key(a, p): p for a in ASSIGNMENTS.values() for p in a.parts}


def hidden_tests_available() -> bool:
    """True in the instructor's package; False in a student version (hidden/ is never copied)."""
    return HIDDEN_DIR.is_dir() and any(HIDDEN_DIR.glob("test_*_hidden.py"))
