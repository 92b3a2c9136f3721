"""The leak check: no handed-out solution may survive anywhere in a handout, copied or restated.

``minilstm assign`` refuses to write a handout in which the code of a region it
hands out appears in any file it would write (``check_leaks``).
"""

from __future__ import annotations

import functools
import io
import json
import re
import textwrap
import tokenize
from pathlib import Path

from . import regions
from .errors import AssignError
from .regions import Region

VISIBLE = "minilstm/classroom/assignments/visible/"  # the visible tests, read by students: compared whole
LEAK_MIN_CHARS = 16  # a normalised line of a region this long must not appear anywhere else in the handout

# Two comparisons, both with the code of every region handed out (its comments left out):
#
# * code, line by line (normalise_python, normalise_line): what a region's code looks like when it is pasted
#   into another file, a lesson's code cell or a kernel string. Catches copies, not paraphrases.
# * text, as canonical tokens (canonical_tokens): markdown cells, comments, string literals (docstrings,
#   kernel sources), every file that is not Python, and the visible tests with their helpers, code included
#   (tests/: they are read, and must not compute the expected values the way the solution does). This is
#   where a solution is restated rather than copied: as pseudocode, in LaTeX-ish notation, or in C. Runs of
#   LEAK_SHINGLE canonical tokens are compared; runs that are public (in a hint of a handed-out part, twice or
#   more in the package's given code and text, or anywhere in the given code of the package and lessons) do
#   not count, so the paper's equations, which the docstrings and hints state, may be mentioned freely.

_SKIP_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                tokenize.ENCODING, tokenize.ENDMARKER}
_STRING_TOKENS = {tokenize.STRING} | ({tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set())

LEAK_SHINGLE = 6        # canonical tokens per compared run
LEAK_TEXT_TOKENS = 10   # a piece of text leaks a region when its shared runs cover this many of the region's tokens
LEAK_TEXT_RUN = 12      # ... and either one unbroken stretch of this many (a long line, or a few short ones)
LEAK_TEXT_SHARE = 0.25  # ... or this share of the region's tokens that are not public
LEAK_WINDOW = 60        # lines: longer texts are compared in windows of this many lines, half overlapping


@functools.lru_cache(maxsize=512)
def _python_tokens(text: str):
    """Python's tokens of text (a tuple), or None if it does not tokenize; cached, since every handout
    compares the same files."""
    try:
        return tuple(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None


def normalise_python(code: str) -> list:
    """One string per line of code: its tokens joined, comments and whitespace gone."""
    tokens = _python_tokens(code)
    if tokens is None:
        return [ln for ln in (normalise_line(x) for x in code.splitlines()) if ln]
    by_line: dict[int, list[str]] = {}
    for t in tokens:
        if t.type not in _SKIP_TOKENS:
            by_line.setdefault(t.start[0], []).append(t.string)
    return ["".join(v) for _, v in sorted(by_line.items())]


def normalise_line(line: str) -> str:
    """Any language, one line: no comment (#, //), no whitespace, no trailing ';' (kernel strings, notebooks)."""
    line = re.split(r"\s#|^#|//", line, maxsplit=1)[0]
    return re.sub(r"\s+", "", line).rstrip(";")


# Canonical tokens: one notation for code, pseudocode, LaTeX-ish text and CUDA C.
_NAMESPACES = re.compile(r"\b(?:np|xp|cp|cupy|numpy|math|torch|m|minilstm|cache|self)\s*\.\s*(?=[A-Za-z_])")
_TYPE_CAST = re.compile(r"\bT\(\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\)")  # CUDA's T(0.5)
_ELEMENT = re.compile(r"\[\s*[A-Za-z_]\w*\s*\]")  # x[k]: one element, as a C kernel reads and writes them
_CANON_SUBS = (
    (re.compile(r"_\{\s*[tT]\s*(?:[-+]\s*\d+\s*)?\}"), ""),                             # c_{t-1} -> c
    (re.compile(r"_\{\s*(\w+)\s*\}"), r"_\1"),                                          # W_{x} -> W_x
    (re.compile(r"\^\{?T\}?(?![A-Za-z0-9_])|\u1d40|\.T\b"), " T "),                 # Wx^T, Wx.T: transposes
    (re.compile(r"\\cdot|\\odot|\\circ|\\times|[\u2299\u2218\u00b7\u00d7]"), " * "),  # elementwise products
    (re.compile(r"\*\*|\^"), " ^ "),                                                 # tc**2, tc^2: powers
    (re.compile(r"\\sigma\b|\u03c3"), " sigm "),
)
_CANON_TOKEN = re.compile(r"[A-Za-z_]\w*|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+*/%^<>=!&|]=|[-+*/%^<>=~]")
_DECORATIONS = {"prev", "next", "t", "tm1", "in", "mine", "hand", "loop"}  # time steps and "my version of"
_SYNONYMS = {"sigmoid": "sigm", "sigma": "sigm", "expit": "sigm", "tanhf": "tanh", "expf": "exp", "logf": "log",
             "sqrtf": "sqrt"}  # C's float versions are the same functions
_OUT_CALL = re.compile(r"\b(multiply|add|subtract|divide|true_divide|matmul|dot|tanh|exp|log|sqrt|negative)\s*\(")
_OUT_OPS = {"multiply": "*", "add": "+", "subtract": "-", "divide": "/", "true_divide": "/", "matmul": "@",
            "dot": "@"}


def _split_args(text: str) -> list:
    depth, start, out = 0, 0, []
    for k, ch in enumerate(text):
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            out.append(text[start:k].strip())
            start = k + 1
    return out + [text[start:].strip()]


def _rewrite_out_calls(text: str) -> str:
    """``multiply(a, b, out=c)`` -> ``c = (a) * (b)``; ``tanh(a, out=c)`` -> ``c = tanh(a)`` (NumPy's in-place
    calls, as the reference writes the cell, in the notation pseudocode and kernels use)."""
    out, pos = [], 0
    while (m := _OUT_CALL.search(text, pos)) is not None:
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += (text[j] in "([{") - (text[j] in ")]}")
            j += 1
        args = _split_args(text[m.end():j - 1]) if depth == 0 else []
        dest = next((a for a in args if re.match(r"out\s*=", a)), None)
        if dest is None:
            out.append(text[pos:m.end()])
            pos = m.end()
            continue
        rest = [_rewrite_out_calls(a) for a in args if a is not dest]
        fn = m.group(1)
        expr = f" {_OUT_OPS[fn]} ".join(f"({a})" for a in rest) if fn in _OUT_OPS else f"{fn}({', '.join(rest)})"
        out.append(f"{text[pos:m.start()]}{dest.split('=', 1)[1].strip()} = {expr}")
        pos = j
    return "".join(out) + text[pos:]


def _canonical_name(name: str) -> str:
    if name in _SYNONYMS:
        return _SYNONYMS[name]
    kept = [p for p in name.split("_") if p not in _DECORATIONS]
    if len(kept) == 2 and len(kept[0]) == 1 and kept[0].isupper() and kept[1]:
        return "".join(kept)  # W_x is Wx
    return "_".join(kept) if any(kept) else name


def canonical_tokens(text: str) -> list:
    """The tokens of code, pseudocode or prose in one notation, for comparing restatements.

    Punctuation, quotes, comment markers and whitespace go; module and object prefixes go (``np.``,
    ``xp.``, ``cache.``, ``self.``); ``@`` and juxtaposition are the same (both are dropped);
    ``x.T``, ``x^T`` and ``xᵀ`` are ``x T``; ``**`` is ``^``; ``1.0`` is ``1``; CUDA's ``T(1)`` is ``1``;
    ``multiply(a, b, out=c)`` is ``c = a * b``; ``x[k]`` (one element, as in a C kernel) is ``x``, and
    ``tanhf`` is ``tanh``; names lose their time-step and ownership decorations
    (``c_{t-1}``, ``c_prev``, ``prev_c``, ``next_c``, ``c_t`` and ``c_mine`` are all ``c``), and sigmoid,
    sigm and σ are one word. So ``c = f * c_prev + i * g``, ``c_t = f_t * c_{t-1} + i_t * g_t`` and
    ``next_c = f * prev_c + i * g`` are the same tokens.
    """
    return list(_canonical(text))


@functools.lru_cache(maxsize=2048)
def _canonical(text: str) -> tuple:
    text = _TYPE_CAST.sub(r" \1 ", _rewrite_out_calls(_NAMESPACES.sub("", text)))
    text = _ELEMENT.sub(" ", text)
    for regex, replacement in _CANON_SUBS:
        text = regex.sub(replacement, text)
    out = []
    for tok in _CANON_TOKEN.findall(text):
        if tok[0].isalpha() or tok[0] == "_":
            tok = _canonical_name(tok)
        elif tok[0].isdigit() or tok[0] == ".":
            try:
                value = float(tok)
            except ValueError:
                pass
            else:
                tok = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
        out.append(tok)
    return tuple(out)


def _shingles(tokens) -> list:
    return [tuple(tokens[k:k + LEAK_SHINGLE]) for k in range(len(tokens) - LEAK_SHINGLE + 1)]


@functools.lru_cache(maxsize=2048)
def _shingle_set(text: str) -> frozenset:
    return frozenset(_shingles(_canonical(text)))


def _python_split(text: str):
    """(the code with comments and strings blanked, [(line, comment or string)]) of Python source; None if it
    does not tokenize."""
    tokens = _python_tokens(text)
    if tokens is None:
        return None
    starts = [0]
    for line in io.StringIO(text):  # the lines tokenize counts (splitlines would also split at \f)
        starts.append(starts[-1] + len(line))
    code, pos, prose = [], 0, []
    for t in tokens:
        if t.type == tokenize.COMMENT:
            prose.append((t.start[0], t.string.lstrip("#")))
        elif t.type in _STRING_TOKENS:
            prose.append((t.start[0], re.sub(r"^[rRbBuUfF]*", "", t.string)))
        else:
            continue
        begin, end = starts[t.start[0] - 1] + t.start[1], starts[t.end[0] - 1] + t.end[1]
        code += [text[pos:begin], " "]
        pos = end
    return "".join(code) + text[pos:], prose


def _without_comments(code: str) -> str:
    """Python source with its comments blanked (strings kept: a kernel's source is code too)."""
    tokens = _python_tokens(code)
    if tokens is None:
        return "\n".join(re.split(r"(?:^|\s)#", ln, maxsplit=1)[0] for ln in code.splitlines())
    lines = list(io.StringIO(code))
    for t in reversed([t for t in tokens if t.type == tokenize.COMMENT]):
        row, col = t.start
        lines[row - 1] = lines[row - 1][:col] + lines[row - 1][t.end[1]:]
    return "".join(lines)


def _decoded(rel: str, data: bytes):
    """(text, notebook cells) of one handout file: cells None unless it is a notebook that parses;
    (None, None) for a file that is not UTF-8 (nothing to search)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, None
    if rel.endswith(".ipynb"):
        try:
            return text, [(c.get("cell_type", "cell"), "".join(c.get("source", "")))
                          for c in json.loads(text).get("cells", [])]
        except (ValueError, AttributeError):
            pass
    return text, None


def _texts(rel: str, data: bytes) -> list:
    """The text(s) of one handout file to search, notebooks cell by cell."""
    text, cells = _decoded(rel, data)
    if text is None:
        return []
    return [source for _, source in cells] if cells is not None else [text]


def _windows(fragments: list, last_line: int) -> list:
    """[(place, text)] of [(line, text)] fragments, in windows of LEAK_WINDOW lines overlapping by half."""
    if last_line <= LEAK_WINDOW:
        return [("", "\n".join(t for _, t in fragments))] if fragments else []
    out, step = [], LEAK_WINDOW // 2
    for start in range(1, last_line + 1, step):
        inside = [t for line, t in fragments if start <= line < start + LEAK_WINDOW]
        if inside:
            out.append((f"lines {start}-{min(start + LEAK_WINDOW - 1, last_line)}", "\n".join(inside)))
        if start + LEAK_WINDOW > last_line:
            break
    return out


def _text_pieces(rel: str, data: bytes) -> list:
    """[(place, text)] of one handout file for the text comparison: a notebook's markdown cells whole and its
    code cells' comments and strings; the comments and strings of the package's and the lessons' Python
    (their code is compared line by line); the visible tests (tests/, minilstm/classroom/assignments/visible/) and
    every other text file whole."""
    text, cells = _decoded(rel, data)
    if text is None:
        return []
    if cells is not None:
        out = []
        for k, (kind, source) in enumerate(cells):
            split = _python_split(source) if kind == "code" else None
            body = "\n".join(t for _, t in split[1]) if split is not None else source
            out.append((f"cell {k + 1}, {kind}", body))
        return out
    if rel.endswith(".ipynb"):  # a notebook that does not parse: searched whole
        return [("", text)]
    lines = text.count("\n") + 1
    code_given = rel.endswith(".py") and (rel.startswith("lessons/") or rel.startswith("minilstm/")) \
        and not rel.startswith(VISIBLE)
    split = _python_split(text) if code_given else None
    if split is not None:
        fragments = [(line, t) for line, t in split[1]]
    else:
        fragments = list(enumerate(text.splitlines(), 1))
    return _windows(fragments, lines)


_GIVEN_CACHE: dict[tuple, dict] = {}


def _given(source_root: Path) -> dict:
    """What every handout gives away, cached per state of the files: ``lines``, the normalised lines of the
    package's code outside solution regions, duplicate blocks and duplicate files (with repeats, for the
    line comparison); ``text``, how often each canonical shingle occurs in that code and its comments and
    strings; ``code``, the shingles of the given code of the package and the lessons (no comments, no
    strings: a kernel's source in a string is not given code)."""
    package, lessons = source_root / "minilstm", source_root / "lessons"
    visible = package / "classroom" / "assignments" / "visible"
    paths = list(regions.source_files(package, skip_dirs=[visible]))
    if lessons.is_dir():
        paths += list(regions.source_files(lessons, skip_dirs=[lessons / regions.LESSON_OUTPUTS]))
    key = (str(source_root.resolve()), tuple((str(p), p.stat().st_mtime_ns) for p in paths))
    if key not in _GIVEN_CACHE:
        _GIVEN_CACHE.clear()
        _GIVEN_CACHE[key] = _read_given(source_root, paths)
    return _GIVEN_CACHE[key]


def _read_given(source_root: Path, paths: list) -> dict:
    from collections import Counter

    lines: list[str]
    text_counts: Counter[tuple]
    code: set[tuple]
    lines, text_counts, code = [], Counter(), set()
    for path in paths:
        rel = path.relative_to(source_root).as_posix()
        if path.suffix != ".py" or rel in regions.DUPLICATE_FILES:
            continue
        text = regions.render(path.read_text(encoding="utf-8"), rel, lambda r: True)
        text = regions.render_duplicates(text, rel, {"*"}, drop=True)
        split = _python_split(text)
        if split is not None:
            code.update(_shingle_set(split[0]))
        if rel.startswith("minilstm/"):
            lines += set(normalise_python(text)) | {normalise_line(x) for x in text.splitlines()}
            text_counts.update(_shingles(_canonical(text)))
    return {"lines": lines, "text": text_counts, "code": code}


def _region_code(region: Region, source_root: Path) -> str:
    src = (source_root / region.path).read_text(encoding="utf-8").splitlines()
    return textwrap.dedent("\n".join(src[region.code_start:region.end]))


_ADVICE = ("Put that code or text between '### BEGIN DUPLICATE [{key}]' and '### END DUPLICATE' in the source (a "
           "block of comments or markdown becomes a one-line note, or what '(instead: ...)' says), rewrite it so it "
           "teaches without the solution's steps, or list the file in DUPLICATE_FILES (minilstm/classroom/regions.py)")


def check_leaks(files: dict, stubbed: list, source_root: Path) -> None:
    """Refuse a handout in which the code of a handed-out region appears in any file it writes, copied or
    restated.

    Code, line by line: lines are compared normalised (tokens without comments or whitespace; kernel
    strings and notebooks line by line without ';' and comments). A line counts when it is at least
    LEAK_MIN_CHARS long, not in a hint and not boilerplate (found twice or more in the package's code
    outside the regions); a file leaks a region when two of its lines, or one line of 40 characters or
    more, appear in it.

    Text, as canonical tokens (``canonical_tokens``): markdown cells, comments, string literals, the
    visible tests and helpers, other text files; long ones in windows of LEAK_WINDOW lines. A run of
    LEAK_SHINGLE tokens of a region found in a piece of text counts unless it is public: in a hint of a
    handed-out region, twice or more in the package's given code and text, or in the given code of the
    package and the lessons. A piece leaks a region when the runs it shares cover LEAK_TEXT_TOKENS or more
    of the region's tokens, and either LEAK_TEXT_RUN of them in a row or LEAK_TEXT_SHARE of the region's
    tokens that are not public: several consecutive solution lines, or one long distinctive one.
    """
    leaks = find_leaks(files, stubbed, source_root)
    if leaks:
        keys = sorted({key for key, _ in leaks})
        raise AssignError("\n".join(message for _, message in leaks[:12])
                          + (f"\n(and {len(leaks) - 12} more)" if len(leaks) > 12 else "")
                          + "\n" + _ADVICE.format(key=keys[0] if len(keys) == 1 else "assignment:part"))


def find_leaks(files: dict, stubbed: list, source_root: Path) -> list:
    """[(part key, message)] of every leak check_leaks finds: per file (and notebook cell or window), the
    region it restates most."""
    given = _given(source_root)
    return _copied_lines(files, stubbed, source_root, given) + _restated_text(files, stubbed, source_root, given)


def _copied_lines(files: dict, stubbed: list, source_root: Path, given: dict) -> list:
    lines_given = "\n".join(given["lines"])
    hints = "\n".join(normalise_line(r.hint) for r in stubbed)

    def boilerplate(line):  # in given code twice or more (a line found once there may be a copied solution)
        return lines_given.count(line) >= 2
    needles: dict = {}  # region -> its lines
    for r in stubbed:
        for line in normalise_python(_region_code(r, source_root)):
            if len(line) >= LEAK_MIN_CHARS and line not in hints and not boilerplate(line):
                needles.setdefault(r, set()).add(line)
    leaks = []
    for rel in sorted(files):
        for text in _texts(rel, files[rel]):
            hay = {normalise_line(x) for x in text.splitlines()}
            blob = "\n".join(hay)
            for r, lines in needles.items():
                found = sorted(n for n in lines if n in hay or (len(n) >= 24 and n in blob))
                if len(found) >= 2 or any(len(n) >= 40 for n in found):
                    leaks.append((r.key, f"leak: {rel} contains the solution of [{r.key}] ({r.where}): "
                                         f"{', '.join(map(repr, found))}."))
                    break
    return leaks


def _restated_text(files: dict, stubbed: list, source_root: Path, given: dict) -> list:
    public = set(given["code"]) | {s for s, n in given["text"].items() if n >= 2}
    for r in stubbed:
        public.update(_shingles(canonical_tokens(r.hint)))
    needles: list[tuple]  # (region, its tokens, how many of them are not public)
    index: dict[tuple, list[tuple[int, int]]]
    needles, index = [], {}  # index: shingle -> [(needle, position)]
    for r in stubbed:
        tokens = canonical_tokens(_without_comments(_region_code(r, source_root)))
        shingles = _shingles(tokens)
        in_public = [False] * len(tokens)
        for k, s in enumerate(shingles):
            if s in public:
                in_public[k:k + LEAK_SHINGLE] = [True] * LEAK_SHINGLE
            else:
                index.setdefault(s, []).append((len(needles), k))
        needles.append((r, tokens, len(tokens) - sum(in_public)))
    leaks = []
    for rel in sorted(files):
        for place, text in _text_pieces(rel, files[rel]):
            covered: dict[int, set[int]] = {}
            for s in _shingle_set(text) & index.keys():
                for n, k in index[s]:
                    covered.setdefault(n, set()).update(range(k, k + LEAK_SHINGLE))
            found = []
            for n, positions in covered.items():
                run, start = _longest_run(positions)
                if len(positions) >= LEAK_TEXT_TOKENS and (
                        run >= LEAK_TEXT_RUN or len(positions) >= LEAK_TEXT_SHARE * needles[n][2]):
                    found.append((len(positions), -n, run, start))
            if not found:
                continue
            size, n, run, start = max(found)
            r, tokens, secret = needles[-n]
            excerpt = " ".join(tokens[start:start + run])
            excerpt = excerpt if len(excerpt) <= 100 else excerpt[:97] + "..."
            where = f"{rel} ({place})" if place else rel
            leaks.append((r.key, f"leak: {where} contains the solution of [{r.key}] ({r.where}), restated: "
                                 f"{excerpt!r} and more, {size} of its {secret} tokens that no hint or given code "
                                 "has (compared as canonical tokens, see check_leaks)."))
    return leaks


def _longest_run(positions: set):
    """(length, start) of the longest run of consecutive integers in positions."""
    best, best_start = 0, 0
    for p in sorted(positions):
        if p - 1 not in positions:
            length = 1
            while p + length in positions:
                length += 1
            if length > best:
                best, best_start = length, p
    return best, best_start
