"""The graded assignments: which solution regions make up each one, and what they are worth.

An *assignment* is a unit handed out at once (``minilstm assign OUT --assignment lstm``).
It is made of *parts*; a part is made of *groups* of checks, and each group
earns its points when all of its checks pass (partial credit within a part).

The code of a part lives in the reference source between marker lines::

    ### BEGIN SOLUTION [lstm:cell_forward] (hint: c = f * prev_c + i * g; h = o * tanh(c))
    ...the reference code...
    ### END SOLUTION

``minilstm assign`` replaces such a region by ``raise NotImplementedError(hint)``
in the student version when its assignment is handed out. ``Part.functions``
lists the functions that hold the part's regions (``"module:qualname"``): the
student version names them in its README, and the grader uses them to test
each part in isolation. ``Part.uses`` names the parts whose functions the
part's code (and its probe) may call: while a part is graded, the functions of
those parts, and of the parts they use in turn (``reference_parts``), are the
reference's, so a bug there costs nothing here (one bug costs one part); every
other part's functions stay the student's own (a stub still raises), so a part
cannot borrow the reference of a part it does not use (``lstm:step`` built on
``lstm_forward`` is graded with the student's ``lstm_forward``).

A group marked ``needs_output`` (input validation, error handling, "the inputs
are left unchanged") counts only once the part computes a correct value: when
at least one of the part's groups without the mark passes. An untouched stub,
or one that returns None, passes or raises ValueError, earns nothing.

What grades a part lives next to this file:

``probes.py``
    what the part's code is asked to compute, on inputs the grader draws fresh
    for every grading run (run by the student's code in a child process, and
    by the reference in the grader);
``checks.py``
    the groups' verdicts and messages, computed in the grader from the
    returned arrays and the reference's;
``visible/``
    shipped to students as ``tests/``: ``test_<assignment>.py`` plus
    ``conftest.py`` and ``assignment_helpers.py``, a learning aid the student
    runs with pytest; they do not decide the grade.

None of this is secret (the package is public): the grade's integrity rests on
the trust boundary of ``minilstm/classroom/sandbox/``, not on hidden tests. Adding a part
is one ``Part`` entry here, one ``PROBES`` entry and one ``CHECKS`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VISIBLE_DIR = HERE / "visible"


class Unfinished(NotImplementedError):
    """Raised by a stub of a student version: the part it belongs to is not written yet.

    A NotImplementedError (so ``except NotImplementedError`` and pytest treat it as before) whose
    message starts with the function and its part, ``cell_forward: your code here
    [lstm:cell_forward]. Hint: ...``. Jupyter (IPython) shows it as that one line instead of a
    traceback into the stub (``_render_traceback_``); the lessons do the same for scripts.
    """

    @property
    def part(self):
        import re
        m = re.search(r"\[([\w-]+:[\w-]+)\]", str(self))
        return m.group(1) if m else None

    def one_line(self):
        return f"Unfinished part [{self.part}] (see ASSIGNMENT.md): {self}"

    def _render_traceback_(self):
        return [self.one_line()]


@dataclass(frozen=True)
class Group:
    """A group of checks within a part: earns ``points`` when all of its checks pass.

    needs_output: the group (input validation, error handling, inputs left unchanged) counts only when
    at least one group of its part without this mark passed too: points for work, never for a stub.
    """

    name: str
    points: int
    title: str
    needs_output: bool = False


@dataclass(frozen=True)
class Part:
    """One graded unit of an assignment.

    name: short identifier used in the region tags (``[lstm:cell_forward]``);
    title: one line for the student;
    functions: ``"minilstm.module:qualname"`` of every function holding one of
      the part's solution regions (a function belongs to one part only);
    groups: the part's groups of checks; the part's points are their sum;
    uses: keys of the parts whose functions this part's code and probe call (``"lstm:cell_forward"``):
      while this part is graded, those parts' functions (and those of the parts they use, in turn)
      are the reference's; every other part's functions stay the student's.
    """

    name: str
    title: str
    functions: tuple
    groups: tuple
    uses: tuple = ()

    @property
    def points(self):
        return sum(g.points for g in self.groups)

    def function_names(self):
        """The bare qualified names, e.g. ``LSTMStack.forward``."""
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
        raise ValueError(f"assignment {self.name} has no part {name}; "
                         f"its parts are {', '.join(p.name for p in self.parts)}")

    @property
    def visible_tests(self) -> Path:
        return VISIBLE_DIR / f"test_{self.name}.py"


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
        Part("cell_forward", "the cell equations c = f * c_prev + i * g, h = o * tanh(c)",
             ("minilstm.ops.lstm:cell_forward",),
             (Group("values", 3, "next_c, tanh_c, next_h for several shapes, saturated gates too"),
              Group("float32", 1, "float32 in, float32 out"),
              Group("inputs", 1, "the inputs are left unchanged", needs_output=True))),
        Part("cell_backward", "backward through the cell equations and the gate nonlinearities",
             ("minilstm.ops.lstm:cell_backward",),
             (Group("gradients", 8, "da_i, da_f, da_o, da_g and dprev_c for several shapes"),
              Group("inputs", 2, "the inputs are left unchanged", needs_output=True))),
        Part("step", "one LSTM time step, forward and backward",
             ("minilstm.ops.lstm:lstm_step_forward", "minilstm.ops.lstm:lstm_step_backward"),
             (Group("forward", 4, "next_h and next_c"),
              Group("backward", 4, "dx, dprev_h, dprev_c, dWx, dWh, db"),
              Group("float32", 2, "float32 in, float32 out; the inputs are left unchanged")),
             uses=("lstm:cell_forward", "lstm:cell_backward")),
        Part("sequence_forward", "the LSTM over a whole sequence (with optional recurrent masks)",
             ("minilstm.ops.lstm:lstm_forward",),
             (Group("forward", 5, "h and the final state, with and without recurrent masks, c0 defaulting to zeros"),
              Group("cache", 3, "the cache lets the reference lstm_backward compute the right gradients"),
              Group("inputs", 2, "the inputs are left unchanged", needs_output=True)),
             uses=("lstm:cell_forward", "lstm:sequence_backward", "dropout:variational")),
        Part("sequence_backward", "backpropagation through time",
             ("minilstm.ops.lstm:lstm_backward",),
             (Group("gradients", 10, "dx, dh0, dWx, dWh, db, dc0, with and without recurrent masks"),
              Group("final_state", 3, "gradients arriving on the final h and c (dh_final, dc_final)"),
              Group("float32", 2, "float32 in, float32 out; dh left unchanged")),
             uses=("lstm:cell_backward", "lstm:sequence_forward", "dropout:variational")),
    ),
)

DROPOUT = Assignment(
    name="dropout",
    title="Dropout, and where the paper puts it",
    summary=(
        "Implement the inverted dropout operator D (`dropout_mask`, `dropout_forward`, `dropout_backward`), "
        "then place it in the LSTM stack every model shares (`LSTMStack.forward` and `.backward`): on the non-recurrent "
        "connections only (`dropout_mode='zaremba'`, the paper's idea) and, for comparison, also on h(t-1) "
        "(`dropout_mode='recurrent'`, the naive placement the paper argues against). Last, what came after: "
        "variational dropout (Gal & Ghahramani 2016, `dropout_mode='variational'`), one mask per sequence shared "
        "by every time step, on the inputs, the output and h(t-1) (`LSTMStack._get_mask`, "
        "`broadcast_over_time`)."
    ),
    parts=(
        Part("operator", "the dropout operator D: mask, forward, backward",
             ("minilstm.ops.dropout:dropout_mask", "minilstm.ops.dropout:dropout_forward",
              "minilstm.ops.dropout:dropout_backward"),
             (Group("mask", 6, "keep rate, values 0 and 1/(1-p), dtype, a fresh value per element, reproducible"),
              Group("forward_backward", 6, "x * mask with a given or drawn mask, the identity in evaluation and "
                                           "for p = 0, the gradient"),
              Group("errors", 3, "ValueError without rng or with a mask of the wrong shape",
                    needs_output=True)),
             uses=("dropout:variational",)),
        Part("placement", "D in the model: zaremba (non-recurrent only) and recurrent placement",
             ("minilstm.stack:LSTMStack.forward", "minilstm.stack:LSTMStack.backward"),
             (Group("zaremba", 8, "loss and gradients with the paper's placement, 1 to 3 layers"),
              Group("recurrent", 5, "loss and gradients with D also on h(t-1)"),
              Group("none_and_eval", 2, "no mask with dropout_mode='none' or in evaluation", needs_output=True)),
             uses=("dropout:operator", "dropout:variational", "lstm:sequence_forward", "lstm:sequence_backward",
                   "translation:masked_loss")),
        Part("variational", "variational dropout: one mask per sequence, shared by every time step",
             ("minilstm.ops.dropout:broadcast_over_time", "minilstm.stack:LSTMStack._get_mask"),
             (Group("per_sequence", 5, "every mask drawn is (N, 1, H), 0 or 1/(1-p), about 1 - p kept, different "
                                       "for every sequence, and the same at every time step where it is applied"),
              Group("forward", 4, "loss and state with given (N, 1, H) masks, 1 and 2 layers; the broadcast view"),
              Group("backward", 4, "the gradients through the shared masks, 1 and 2 layers")),
             uses=("dropout:operator", "dropout:placement", "lstm:sequence_forward", "lstm:sequence_backward",
                   "translation:masked_loss")),
    ),
)

TRAINING = Assignment(
    name="training",
    title="Training the language model with truncated BPTT",
    summary=(
        "Measure perplexity (`evaluate`) and write the training step `train_step` (`train` calls it for every chunk): each chunk starts from the "
        "state the previous chunk left (but no gradient flows back across the boundary: truncated BPTT), "
        "then backward, clipping of the global gradient norm and an SGD step. The grader runs your step on "
        "weights and data it draws and compares the weights after it with the course's reference."
    ),
    parts=(
        Part("evaluate", "perplexity of a token stream, state carried, dropout off",
             ("minilstm.training:evaluate",),
             (Group("stream", 6, "perplexity, NLL and word count for one and several streams"),
              Group("dropout_off", 4, "a model with dropout: no dropout in evaluation, state carried")),
             uses=("dropout:placement", "translation:masked_loss")),
        Part("loop", "the truncated-BPTT training step: carried state, clipping, SGD",
             ("minilstm.training:train_step",),
             (Group("one_step", 8, "loss, gradient norm, weights and state after one step"),
              Group("carried", 6, "four steps with dropout, the state carried from chunk to chunk"),
              Group("clipped", 6, "steps where the global norm is clipped")),
             uses=("dropout:placement", "translation:masked_loss")),
    ),
)

TRANSLATION = Assignment(
    name="translation",
    title="Translation as a conditional language model",
    summary=(
        "Zaremba et al. (2014), section 4.2, translate with one LSTM that reads the source (reversed), a "
        "separator and the target as one sequence (`minilstm/models/translation.py`). Two pieces make that "
        "model a translator. First the loss counts only the target words: per-token weights in the softmax "
        "cross-entropy (`softmax_cross_entropy_forward` and `_backward`, the `weights` branches; 1 for a target "
        "word or `<eos>`, 0 for the source, the separator and padding, which then add nothing to the loss and "
        "get no gradient). Then decoding without the reference target: greedy decoding (`greedy_decode`), the "
        "most likely word at every step, all sentences of a batch at once, each stopping at its `<eos>` or its "
        "maximum length. Beam search (`beam_search`, given) generalizes it: a beam of 1 gives exactly your greedy "
        "decoder's words (a visible test compares them; `greedy_decode` is graded with `beam_search` out of reach, "
        "so write the loop)."
    ),
    parts=(
        Part("masked_loss", "per-token weights in the softmax cross-entropy: only the target words count",
             ("minilstm.ops.softmax:softmax_cross_entropy_forward",
              "minilstm.ops.softmax:softmax_cross_entropy_backward"),
             (Group("forward", 4, "the weighted loss for several shapes and normalizers; weight-0 tokens add nothing"),
              Group("backward", 4, "the gradient with weights: each row scaled by its weight, zero where it is 0"),
              Group("ones", 2, "weights of all ones give the plain loss and gradient", needs_output=True))),
        Part("greedy", "greedy decoding: the argmax word at every step, a batch of sentences at once",
             ("minilstm.decoding:greedy_decode",),
             (Group("eos", 4, "the words of every sentence up to its <eos>, which is not included"),
              Group("max_len", 3, "a sentence without <eos> stops at max_len tokens (given, or 2 S + 10 by default)"),
              Group("batched", 4, "sentences finishing at different steps: each one as decoded alone, one "
                                  "model.step per time step, finished sentences out of the batch"),
              Group("model", 4, "a small random TranslationModel, sources of different lengths")),
             uses=("dropout:placement",)),
    ),
)

ASSIGNMENTS = {a.name: a for a in (LSTM, DROPOUT, TRAINING, TRANSLATION)}


def get_assignment(name: str) -> Assignment:
    """The assignment called ``name``; a ValueError listing the known ones otherwise."""
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise ValueError(f"unknown assignment {name}; known: {', '.join(ASSIGNMENTS)}") from None


def select(names=None) -> list:
    """Assignments by name, in course order; all of them when ``names`` is empty or None."""
    if not names:
        return list(ASSIGNMENTS.values())
    wanted = {get_assignment(n).name for n in names}
    return [a for a in ASSIGNMENTS.values() if a.name in wanted]


def part_key(assignment: Assignment, part: Part) -> str:
    """``"lstm:cell_forward"``: how tags, test markers and reports name a part."""
    return f"{assignment.name}:{part.name}"


def module_file(spec: str) -> str:
    """``"minilstm.ops.lstm:cell_forward"`` -> ``"minilstm/ops/lstm.py"``: the file holding a part's function."""
    return spec.split(":", 1)[0].replace(".", "/") + ".py"


def all_parts() -> dict:
    """{"assignment:part": Part} over every assignment."""
    return {part_key(a, p): p for a in ASSIGNMENTS.values() for p in a.parts}


def reference_parts(key: str) -> set:
    """The parts whose functions are the reference's while part ``key`` is graded: the parts it uses,
    the parts those use, and so on (a reference function calls the functions of its own uses); never
    ``key`` itself. Every other part's functions stay the student's."""
    parts = all_parts()
    seen, todo = set(), list(parts[key].uses)
    while todo:
        k = todo.pop()
        if k not in seen and k != key:
            seen.add(k)
            todo += list(parts[k].uses)
    return seen

