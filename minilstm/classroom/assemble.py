"""The package one part is graded on: the student's files, with the reference rebound where the part may use it.

For part P, the student's ``minilstm/`` is copied (``submission.copy_package``)
and the functions of the parts P uses (``Part.uses``, ``reference_parts``) are
rebound to the reference's, by code appended to the student's module (so the
student's line numbers stay right): one bug costs one part. P's functions and
every other part's stay the student's, so a part cannot borrow a reference it
does not use. No copy of P's reference code is in the assembled package.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from .assignments import ASSIGNMENTS, module_file, part_key, reference_parts
from .regions import SOURCE_ROOT
from .submission import copy_package


def _find_def(tree, qualname):
    node, body = None, tree.body
    for name in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == name), None)
        if node is None:
            return None
        body = node.body
    return node


def _source_of(text, qualname):
    """The source lines of a function (with its decorators), or None."""
    node = _find_def(ast.parse(text), qualname)
    if node is None:
        return None
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    return "\n".join(text.splitlines()[start:node.end_lineno])


def _reference_patch(module_text, qualname):
    """Code appended to a student's module that rebinds ``qualname`` to the reference version.

    Appended (not substituted) so the student's line numbers stay right in messages.
    """
    src = _source_of(module_text, qualname)
    if "." not in qualname:
        return f"\n\n# minilstm grade: the reference {qualname} (another part)\n{src}\n"
    cls, attr = qualname.split(".", 1)
    body = textwrap.indent(textwrap.dedent(src), "    ")
    holder = f"_MinilstmReference_{cls}"
    return (f"\n\n# minilstm grade: the reference {qualname} (another part)\nclass {holder}:\n{body}\n"
            f"{cls}.{attr} = {holder}.__dict__[{attr!r}]\ndel {holder}\n")


# The reference's code of every part's functions, as patches to append: made once, in the main thread
# (ast.parse in the grading threads can fail on CPython 3.11, "AST constructor recursion depth mismatch",
# when the recursion limit changed since the thread started).
_PATCHES: dict[tuple[str, str], str] = {}


def reference_patches() -> dict:
    """{(module file, qualname): code appended to a student's module to rebind it to the reference}."""
    if not _PATCHES:
        made = {}
        for a in ASSIGNMENTS.values():
            for p in a.parts:
                for spec in p.functions:
                    rel, qualname = module_file(spec), spec.split(":", 1)[1]
                    made[(rel, qualname)] = _reference_patch(
                        (SOURCE_ROOT / rel).read_text(encoding="utf-8"), qualname)
        _PATCHES.update(made)
    return _PATCHES


def _unavailable_patch(qualname, owner, graded_key, why):
    """Code appended to a module that rebinds ``qualname`` (of part ``owner``) to a function that raises."""
    msg = (f"{qualname} [{owner}] is not available while [{graded_key}] is graded: {why}")
    fn = "def _minilstm_unavailable(*args, **kwargs):\n    raise NotImplementedError(" + repr(msg) + ")\n"
    if "." not in qualname:
        return f"\n\n# minilstm grade: {qualname} unavailable\n{fn}{qualname} = _minilstm_unavailable\n" \
               "del _minilstm_unavailable\n"
    cls, attr = qualname.split(".", 1)
    return f"\n\n# minilstm grade: {qualname} unavailable\n{fn}{cls}.{attr} = _minilstm_unavailable\n" \
           "del _minilstm_unavailable\n"


def assemble(student: Path, dest: Path, graded_key: str) -> None:
    """Copy the student's ``minilstm/`` to ``dest/minilstm`` for grading part ``graded_key``.

    Only the package's Python files are copied (``submission.package_files``: at most MAX_SOURCE_BYTES each,
    links followed only within the student's folder, a UTF-8 BOM, CRLF line ends and another source
    encoding normalised). The functions of the parts ``graded_key`` uses (``reference_parts``) are
    rebound to the reference's (one bug costs one part); every other part's functions stay the
    student's (a stub still raises), so a part cannot borrow the reference of a part it does not use.
    A file that does not parse and holds none of the graded part's functions is taken from the
    reference, with the functions of parts not used rebound to ones that raise."""
    _assemble(student, dest, graded_key, reference_patches())


def _assemble(student: Path, dest: Path, graded_key: str, reference: dict) -> None:
    copy_package(student, dest / "minilstm")
    allowed = reference_parts(graded_key)
    patches: dict[str, list[str]]  # module file -> qualnames rebound to the reference
    blocked: dict[str, list[tuple[str, str]]]  # module file -> (qualname, part key) of parts not allowed
    graded_files, patches, blocked = set(), {}, {}
    for a in ASSIGNMENTS.values():
        for p in a.parts:
            key = part_key(a, p)
            for spec in p.functions:
                rel, qualname = module_file(spec), spec.split(":", 1)[1]
                if key == graded_key:
                    graded_files.add(rel)
                elif key in allowed:
                    patches.setdefault(rel, []).append(qualname)
                else:
                    blocked.setdefault(rel, []).append((qualname, key))
    for rel in sorted(set(patches) | set(blocked)):
        target = dest / rel
        try:
            text = target.read_text(encoding="utf-8")
            compile(text, rel, "exec", dont_inherit=True)  # a syntax check without building AST objects
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            if rel in graded_files:
                continue  # the child's import reports the error under the graded part
            target.parent.mkdir(parents=True, exist_ok=True)
            why = "your copy of this file could not be read or does not compile, and this part does not use it"
            text = (SOURCE_ROOT / rel).read_text(encoding="utf-8")
            text += "".join(_unavailable_patch(q, owner, graded_key, why) for q, owner in blocked.get(rel, ()))
            target.write_text(text, encoding="utf-8")
            continue
        text += "".join(reference[(rel, q)] for q in patches.get(rel, ()))
        target.write_text(text, encoding="utf-8")
