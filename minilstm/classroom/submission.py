"""What the grader reads from a student's folder: the package's Python files, and nothing else.

Only the Python files of ``STUDENT/minilstm`` are copied (``copy_package``),
each at most MAX_SOURCE_BYTES, links followed only within the student's
folder, a UTF-8 BOM, CRLF line ends and another source encoding normalised
(``normalize_source``: honest work grades the same whatever the editor
saved). A class folder's submissions are its folders (``submissions_in``): a
link among them is never graded on its own.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
import stat
import tokenize
from pathlib import Path

from .errors import GradeError

MAX_SOURCE_BYTES = 2**20   # a larger file in minilstm/ is skipped (with a note), never read whole
MAX_SOURCE_FILES = 2000    # and so is everything past this many files
MAX_PACKAGE_BYTES = 64 * 2**20  # or this many bytes in all
# Left out without a note: compiled files, and py.typed (the package's empty typing marker, in every handout).
_SKIPPED_QUIETLY = (".pyc", ".pyo", "py.typed")
_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def inside(path, folder) -> bool:
    """Whether ``path``, every link resolved, is ``folder`` or lies under it."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def package_files(student: Path):
    """([(path in the package, file to read)], notes): the Python files of ``student/minilstm``.

    Hidden files and caches are left out quietly; files that are not Python source, larger than
    MAX_SOURCE_BYTES, not regular files, or links leading out of the student's folder are left out
    with a note. A link within the student's folder (a file or a folder) is followed. Raises
    GradeError when ``minilstm/`` itself leads out of the student's folder."""
    root = Path(student)
    pkg = root / "minilstm"
    if not inside(pkg, root):
        raise GradeError(f"minilstm/ is a link out of the student's folder (to {os.path.realpath(pkg)}): not graded")
    files: list[tuple[str, Path]]
    skipped: dict[str, list[str]]  # why -> the paths left out for that reason
    files, skipped, visited, total = [], {}, {os.path.realpath(pkg)}, 0
    todo = [(pkg, "")]
    while todo:
        folder, prefix = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.setdefault(f"could not be listed ({type(exc).__name__})", []).append(prefix or ".")
            continue
        for entry in entries:
            name, rel = entry.name, prefix + entry.name
            if name.startswith(".") or name == "__pycache__" or name.endswith(_SKIPPED_QUIETLY):
                continue
            try:
                if entry.is_symlink() and not inside(entry.path, root):
                    skipped.setdefault("links out of the student's folder", []).append(rel)
                    continue
                st = os.stat(entry.path)
            except OSError:
                skipped.setdefault("broken links or unreadable", []).append(rel)
                continue
            if stat.S_ISDIR(st.st_mode):
                real = os.path.realpath(entry.path)
                if real not in visited:
                    visited.add(real)
                    todo.append((Path(entry.path), rel + "/"))
            elif not stat.S_ISREG(st.st_mode):
                skipped.setdefault("not regular files", []).append(rel)
            elif not name.endswith(".py"):
                skipped.setdefault("not Python source", []).append(rel)
            elif st.st_size > MAX_SOURCE_BYTES:
                skipped.setdefault(f"larger than {MAX_SOURCE_BYTES // 2**20} MiB", []).append(
                    f"{rel} ({st.st_size / 2**20:.0f} MiB)")
            elif len(files) >= MAX_SOURCE_FILES or total + st.st_size > MAX_PACKAGE_BYTES:
                skipped.setdefault(f"past the first {MAX_SOURCE_FILES} files or "
                                   f"{MAX_PACKAGE_BYTES // 2**20} MiB", []).append(rel)
            else:
                files.append((rel, Path(entry.path)))
                total += st.st_size
    notes = []
    for why, names in sorted(skipped.items()):
        shown = ", ".join(f"minilstm/{n}" for n in sorted(names)[:4])
        more = f" and {len(names) - 4} more" if len(names) > 4 else ""
        notes.append(f"not copied for grading ({why}): {shown}{more}")
    return sorted(files), notes


def normalize_source(data: bytes) -> bytes:
    """The same code as UTF-8 without a BOM, with \\n line ends (a file that cannot be decoded is kept as it is)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data  # the child's import reports what is wrong with it
    if encoding not in ("utf-8", "utf-8-sig"):  # the cookie would now lie: keep the line, drop the claim
        lines = text.split("\n")
        for k in range(min(2, len(lines))):
            if _CODING_RE.match(lines[k].encode("utf-8", "replace")):
                lines[k] = f"# (was {encoding}; converted to UTF-8 by minilstm grade)"
        text = "\n".join(lines)
    return text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")


def copy_package(student: Path, dest_pkg: Path):
    """Copy the Python files of ``student/minilstm`` to ``dest_pkg``, normalised; (notes, digest)."""
    files, notes = package_files(student)
    digest = hashlib.sha256()
    dest_pkg.mkdir(parents=True, exist_ok=True)
    for rel, src in files:
        try:
            with open(src, "rb") as f:
                data = f.read(MAX_SOURCE_BYTES + 1)
        except OSError as exc:
            notes.append(f"not copied for grading (unreadable, {type(exc).__name__}): minilstm/{rel}")
            continue
        if len(data) > MAX_SOURCE_BYTES:
            notes.append(f"not copied for grading (it grew past {MAX_SOURCE_BYTES // 2**20} MiB): minilstm/{rel}")
            continue
        data = normalize_source(data)
        target = dest_pkg / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0" + hashlib.sha256(data).digest())
    return notes, digest.hexdigest()


def submissions_in(folder: Path, notes: list | None = None) -> list:
    """The student folders of a class folder (sorted), or [folder] when it is one submission.

    A link among the class folder's entries is never graded on its own (``notes`` gets why): one to
    another student's folder would grade that student twice, one elsewhere is outside the class."""
    folder = Path(folder)
    if (folder / "minilstm" / "__init__.py").is_file():
        return [folder]
    if not folder.is_dir():
        raise GradeError(f"{folder} is not a folder")
    base = folder.resolve()
    subs = []
    for d in sorted(folder.iterdir(), key=lambda e: e.name):
        if d.name.startswith("."):
            continue
        if d.is_symlink():
            target = Path(os.path.realpath(d))
            if target.parent == base and target.is_dir():
                why = f"a link to {target.name}, who is graded once, under {target.name}"
            elif inside(target, base):
                why = f"a link into {target.relative_to(base).as_posix()} inside the class folder: skipped"
            else:
                why = f"a link to {target}, outside the class folder: skipped"
            if notes is not None:
                notes.append(f"{folder / d.name}: {why}")
            continue
        if d.is_dir():
            subs.append(d)
    if not subs:
        raise GradeError(f"{folder} holds neither a minilstm package nor student folders")
    return subs
