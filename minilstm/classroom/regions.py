"""Solution regions and DUPLICATE blocks: the markers in the reference source, and what a handout makes of them.

The reference code marks what students write with solution regions (the
nbgrader / otter-grader convention)::

    def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
        \"\"\"c = f * c_prev + i * g;  h = o * tanh(c). ...\"\"\"
        H = prev_c.shape[1]
        ### BEGIN SOLUTION [lstm:cell_forward] (hint: c = f * prev_c + i * g; h = o * tanh(c))
        xp.multiply(f, prev_c, out=next_c)
        ...
        ### END SOLUTION

The tag ``[assignment:part]`` says which graded part the region belongs to,
and the hint lives beside the code it describes. A long hint may continue on
the following ``###`` lines until its parenthesis closes. To Python the
markers are comments, so the reference package runs unchanged.

For the assignment being handed out, each of its regions becomes::

        # YOUR CODE HERE [lstm:cell_forward]
        from minilstm.classroom.assignments import Unfinished
        raise Unfinished(
            "cell_forward: your code here [lstm:cell_forward]. Hint: c = f * prev_c + i * g; "
            "h = o * tanh(c)")

indented like the marker. Regions of other assignments keep their code (only
the marker lines go), so every handout is a complete, importable package
with a few holes. Docstrings and shape comments outside the regions stay.

Code elsewhere that repeats a part, or lesson text that restates it, sits
between ``### BEGIN DUPLICATE [assignment:part]`` and ``### END DUPLICATE``;
a whole file that only repeats solutions is listed in ``DUPLICATE_FILES``
(``render_duplicates``, ``duplicate_stub``).
"""

from __future__ import annotations

import ast
import io
import json
import re
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

from .assignments import all_parts, part_key
from .errors import AssignError

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the repository (or site-packages) holding minilstm/

# Never part of a handout, wherever they sit: the instructors' guide and build debris.
SKIP_NAMES = {"INSTRUCTORS.md", "__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis"}
SKIP_SUFFIXES = (".pyc", ".pyo")
LESSON_OUTPUTS = "out"  # lessons/out/: figures the lessons write when run (git-ignored, not source)

BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\b(?P<rest>.*)$")
END_RE = re.compile(r"^[ \t]*### END SOLUTION\s*$")
TAG_RE = re.compile(r"^\s*\[(?P<assignment>[A-Za-z_][\w-]*):(?P<part>[A-Za-z_][\w-]*)\]\s*(?P<rest>.*)$")
CONT_RE = re.compile(r"^[ \t]*###(?P<text>.*)$")
STUB_WIDTH = 100  # wrap the NotImplementedError message into literals of about this width

# Files that only repeat solutions in another form: replaced by a stub module when any of these parts is
# handed out (the fused CUDA kernels spell out the cell; bench's classroom baseline is a whole LSTM with
# BPTT and its train_fns the training step).
LSTM_CELL = {"lstm:cell_forward", "lstm:cell_backward"}
DUPLICATE_FILES = {
    "minilstm/ops/cuda_kernels.py": LSTM_CELL,
    "minilstm/bench.py": LSTM_CELL | {"lstm:step", "lstm:sequence_forward", "lstm:sequence_backward",
                                      "training:loop", "training:evaluate"},
}
# Code elsewhere that repeats a part (evaluate_ensemble is evaluate for K models), or lesson text that
# restates it, sits between ``### BEGIN DUPLICATE [assignment:part]`` and ``### END DUPLICATE``: a stub
# while that part is handed out (a one-line note for a block of comments or markdown), or the one line
# that ``(instead: ...)`` after the tag gives (continued on ``###`` lines like a hint).
DUP_BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN DUPLICATE \[(?P<key>[\w-]+:[\w-]+)\](?P<rest>.*)$")
DUP_END_RE = re.compile(r"^[ \t]*### END DUPLICATE\s*$")


@dataclass(frozen=True)
class Region:
    """One ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block.

    begin / end: 0-based line numbers of the BEGIN marker and of the END marker;
    code_start: first line after the marker (and its hint continuation lines);
    function: qualified name of the enclosing function (None at module level).
    """

    path: str
    begin: int
    code_start: int
    end: int
    indent: str
    assignment: str
    part: str
    hint: str
    function: str | None

    @property
    def key(self):
        return f"{self.assignment}:{self.part}"

    @property
    def where(self):
        return f"{self.path}:{self.begin + 1}"


def _read_hint(rest: str, lines: list, start: int, where: str, keyword: str = "hint"):
    """Parse ``(hint: ...)`` from the BEGIN line's remainder and any ``###`` continuation lines.

    The hint ends where its opening parenthesis closes, so hints may contain
    parentheses of their own. Returns (hint, index of the first code line).
    ``keyword``: "instead" for a DUPLICATE block's ``(instead: ...)``.
    """
    rest = rest.strip()
    if not rest:
        return "", start
    if not rest.startswith(f"({keyword}:"):
        raise AssignError(f"{where}: after the tag, expected '({keyword}: ...)', got {rest!r}")
    text, depth, i = rest[len(f"({keyword}:"):], 1, start
    pieces = []
    while True:
        for pos, ch in enumerate(text):
            depth += (ch == "(") - (ch == ")")
            if depth == 0:
                if text[pos + 1:].strip():
                    raise AssignError(f"{where}: text after the {keyword}'s closing parenthesis (an unbalanced "
                                      f"\")\" in the {keyword}, as in '[0, 1)', closes it early)")
                pieces.append(text[:pos])
                return " ".join(p.strip() for p in pieces if p.strip()), i
        pieces.append(text)
        m = CONT_RE.match(lines[i]) if i < len(lines) else None
        if m is None or BEGIN_RE.match(lines[i]) or END_RE.match(lines[i]) or DUP_END_RE.match(lines[i]):
            raise AssignError(f"{where}: the {keyword}'s parenthesis never closes; continue a long {keyword} on "
                              "lines starting with ### and end it with ')'")
        text, i = m.group("text"), i + 1


def _enclosing_functions(text: str) -> list:
    """[(first line, last line, qualname)] of every function, 0-based, innermost last."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    spans = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    spans.append((child.lineno - 1, child.end_lineno - 1, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def _comment_lines(text: str):
    """0-based numbers of the lines that are a comment and nothing else (None if not tokenizable).

    Markers count only there: a docstring that *shows* a marker (like this module's) is not a region.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    lines = text.splitlines()
    return {t.start[0] - 1 for t in tokens
            if t.type == tokenize.COMMENT and not lines[t.start[0] - 1][:t.start[1]].strip()}


def find_regions(text: str, path: str) -> list:
    """All solution regions of one source file, checked for well-formedness.

    Raises AssignError (with file:line) for a missing END, a nested BEGIN, a
    missing ``[assignment:part]`` tag, an empty region, or code indented less
    than its marker (the stub would not be valid Python).
    """
    if "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text:
        return []  # most files: no need to tokenize and parse them
    lines = text.splitlines()
    spans = _enclosing_functions(text)
    comments = _comment_lines(text)

    def marker(regex, k):
        return (comments is None or k in comments) and regex.match(lines[k])

    regions, i = [], 0
    while i < len(lines):
        if marker(END_RE, i):
            raise AssignError(f"{path}:{i + 1}: '### END SOLUTION' without a BEGIN")
        m = marker(BEGIN_RE, i)
        if not m:
            i += 1
            continue
        where = f"{path}:{i + 1}"
        tag = TAG_RE.match(m.group("rest"))
        if tag is None:
            raise AssignError(f"{where}: a solution region needs a tag, e.g. "
                              "'### BEGIN SOLUTION [lstm:cell_forward] (hint: ...)'")
        hint, code_start = _read_hint(tag.group("rest"), lines, i + 1, where)
        end = code_start
        while end < len(lines) and not marker(END_RE, end):
            if marker(BEGIN_RE, end):
                raise AssignError(f"{path}:{end + 1}: solution regions cannot be nested (the one at {where} "
                                  "is still open)")
            end += 1
        if end == len(lines):
            raise AssignError(f"{where}: '### BEGIN SOLUTION' without a matching '### END SOLUTION'")
        indent = m.group("indent")
        code = [ln for ln in lines[code_start:end] if ln.strip()]
        if not code:
            raise AssignError(f"{where}: the solution region is empty")
        shallowest = min(len(ln) - len(ln.lstrip()) for ln in code)
        if shallowest != len(indent):
            raise AssignError(f"{where}: the marker must be indented like the region's code "
                              f"({shallowest} spaces), so the stub lands in the right block")
        inside = [name for first, last, name in spans if first <= i <= last]
        regions.append(Region(path, i, code_start, end, indent, tag.group("assignment"), tag.group("part"),
                              hint, inside[-1] if inside else None))
        i = end + 1
    return regions


def _literal(s: str) -> str:
    """A Python string literal for s (JSON escapes are valid Python escapes)."""
    return json.dumps(s, ensure_ascii=False)


def stub_lines(region: Region) -> list:
    """The lines that replace a region in the student version, indented like its marker."""
    who = region.function or region.path
    message = f"{who}: your code here [{region.key}]."
    if region.hint:
        message += f" Hint: {region.hint}"
    chunks = textwrap.wrap(message, STUB_WIDTH, break_long_words=False, break_on_hyphens=False,
                           drop_whitespace=False)
    ind = region.indent
    # Unfinished is a NotImplementedError that Jupyter shows as one line naming the part (not a traceback)
    out = [f"{ind}# YOUR CODE HERE [{region.key}]", f"{ind}from minilstm.classroom.assignments import Unfinished",
           f"{ind}raise Unfinished("]
    out += [f"{ind}    {_literal(chunk)}" for chunk in chunks]
    out[-1] += ")"
    return out


def render(text: str, path: str, stub) -> str:
    """The student's text of one file: regions for which ``stub(region)`` is true become stubs,
    the others keep their code; every marker line goes."""
    lines = text.splitlines()
    out, pos = [], 0
    for region in find_regions(text, path):
        out += lines[pos:region.begin]
        out += stub_lines(region) if stub(region) else lines[region.code_start:region.end]
        pos = region.end + 1
    out += lines[pos:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def render_duplicates(text: str, path: str, stubbed: set, drop: bool = False) -> str:
    """Replace ``### BEGIN DUPLICATE [key]`` blocks by a stub when ``key`` is handed out ("*": any key),
    or by nothing (``drop``); drop the markers. A block of comments only (a lesson's markdown, pseudocode
    in comments) becomes a one-line comment saying what was left out. ``(instead: line)`` after the tag,
    continued on ``###`` lines if long, replaces the block by that one line (e.g. a call of the student's
    function, or ``# text`` in markdown) rather than a stub."""
    if "### BEGIN DUPLICATE" not in text:
        return text
    lines, out, i = text.splitlines(), [], 0
    spans = _enclosing_functions(text)
    while i < len(lines):
        m = DUP_BEGIN_RE.match(lines[i])
        if not m:
            if DUP_END_RE.match(lines[i]):
                raise AssignError(f"{path}:{i + 1}: '### END DUPLICATE' without a BEGIN")
            out.append(lines[i])
            i += 1
            continue
        instead, body = _read_hint(m.group("rest"), lines, i + 1, f"{path}:{i + 1}", keyword="instead")
        end = next((k for k in range(body, len(lines)) if DUP_END_RE.match(lines[k])), None)
        if end is None:
            raise AssignError(f"{path}:{i + 1}: '### BEGIN DUPLICATE' without '### END DUPLICATE'")
        if any(DUP_BEGIN_RE.match(ln) for ln in lines[body:end]):
            raise AssignError(f"{path}:{i + 1}: DUPLICATE blocks cannot be nested")
        key, ind = m.group("key"), m.group("indent")
        kept = [ln for ln in lines[body:end] if ln.strip()]
        if drop:
            pass
        elif instead and (key in stubbed or "*" in stubbed):
            out.append(ind + instead)
        elif (key in stubbed or "*" in stubbed) and kept and all(ln.lstrip().startswith("#") for ln in kept):
            out.append(f"{ind}# (Left out of this handout: it would give away [{key}].)")
        elif key in stubbed or "*" in stubbed:
            inside = [name for first, last, name in spans if first <= i <= last]
            who = inside[-1] if inside else path
            out += [f"{ind}raise NotImplementedError(",
                    f"{ind}    {_literal(f'{who} is not part of this handout: it would give away [{key}]')})"]
        else:
            out += lines[body:end]
        i = end + 1
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def duplicate_stub(rel: str, keys: set) -> str:
    """A module standing in for a file that would give away the parts ``keys``."""
    parts = ", ".join(sorted(keys))
    return (f'"""Not part of this handout: the full {rel} repeats the solution of {parts}.\n\n'
            'It comes back with the next handout (or the course\'s reference package). Everything in the\n'
            'assignment runs on NumPy without it.\n"""\n\n\n'
            'def __getattr__(name):\n'
            f'    raise NotImplementedError(f"{rel}: {{name}} is not part of this handout (it would give away '
            f'{parts}); run on the CPU (NumPy)")\n\n\n'
            'def main(argv=None):\n'
            f'    print("{rel} is not part of this handout (it would give away {parts})")\n'
            '    return 2\n')


def source_files(root: Path, skip_dirs=()):
    """Files under root, sorted, without caches, compiled files or skipped folders."""
    skip_dirs = {Path(d).resolve() for d in skip_dirs}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_NAMES for part in rel.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        if any(d == path.resolve() or d in path.resolve().parents for d in skip_dirs):
            continue
        if path.is_file():
            yield path


def collect_regions(source_root: Path = SOURCE_ROOT) -> list:
    """Every solution region in the package and the lessons (for checks and for the guide)."""
    regions = []
    for base in ("minilstm", "lessons"):
        root = source_root / base
        if not root.is_dir():
            continue
        skip = [root / "classroom" / "assignments"] if base == "minilstm" else ()
        for path in source_files(root, skip_dirs=skip):
            if path.suffix == ".py":
                rel = path.relative_to(source_root).as_posix()
                regions += find_regions(path.read_text(encoding="utf-8"), rel)
    return regions


def check_regions(regions: list, assignments) -> None:
    """Every tag names a known part; every package region sits in a function its part lists;
    every part handed out has at least one region (or the handout would not be a task)."""
    known = all_parts()
    for r in regions:
        if r.key not in known:
            raise AssignError(f"{r.where}: unknown part [{r.key}]; known parts: {', '.join(known)}")
        if r.path.startswith("minilstm/"):
            spec = r.path[:-3].replace("/", ".") + ":" + (r.function or "")
            if spec not in known[r.key].functions:
                raise AssignError(
                    f"{r.where}: the region [{r.key}] is in {r.function or 'module level'}, which part "
                    f"{r.key} does not list in minilstm/classroom/assignments/__init__.py (add {spec!r} to its "
                    "functions; the grader swaps whole functions to test parts in isolation)")
    have = {r.key for r in regions}
    for a in assignments:
        for p in a.parts:
            if part_key(a, p) not in have:
                raise AssignError(f"part {part_key(a, p)} has no solution region in the source: nothing to hand out")
