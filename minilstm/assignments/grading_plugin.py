"""The pytest plugin ``minilstm grade`` loads into the pytest run on a student's code.

It runs inside the grading subprocess, where the student's folder comes first
on ``sys.path``. It

1. checks that ``import minilstm`` finds the *student's* package (a grader that
   silently imported the reference would give everyone full marks);
2. tests each part in isolation: before a test of part P runs, every function
   of every *other* part (listed in ``minilstm/assignments/__init__.py``) is
   replaced, wherever the student's package refers to it, by the reference
   version (a copy of the instructor's package importable as
   ``minilstm_reference``). So a test of ``lstm:sequence_backward`` runs the
   student's ``lstm_backward`` on top of the reference ``cell_backward``, and
   one bug costs one part's points. Without a reference (a student running
   ``minilstm grade`` on their own copy), nothing is replaced;
3. records every test's part, outcome and a one-paragraph message, and writes
   them as JSON for the grader.

Configuration comes from the JSON file named by ``$MINILSTM_GRADE_CONFIG``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

import pytest

CONFIG = json.loads(Path(os.environ["MINILSTM_GRADE_CONFIG"]).read_text())
STUDENT = Path(CONFIG["student_dir"]).resolve()
TEST_DIR = Path(CONFIG["test_dir"]).resolve()
RESULTS = {"tests": {}, "errors": []}
MAX_MESSAGE = 800


def _write():
    Path(CONFIG["results"]).write_text(json.dumps(RESULTS, indent=1))


def _inside(path, folder):
    try:
        Path(path).resolve().relative_to(folder)
        return True
    except (ValueError, OSError):
        return False


def _student_frame(tb):
    """The innermost traceback frame in the student's code, as 'file:line, in function'."""
    frames = [f for f in traceback.extract_tb(tb) if _inside(f.filename, STUDENT)]
    if not frames:
        return ""
    f = frames[-1]
    rel = Path(f.filename).resolve().relative_to(STUDENT).as_posix()
    return f"{rel}:{f.lineno}, in {f.name}"


def _message(excinfo) -> str:
    """What a student should read: the assertion text, or the error and where their code raised it."""
    exc = excinfo.value
    where = _student_frame(excinfo.tb)
    if isinstance(exc, NotImplementedError):
        text = str(exc) or "NotImplementedError"
    elif isinstance(exc, AssertionError) and not where:
        text = str(exc)  # our tests' messages already name the function and the value
    elif excinfo.typename in ("Failed", "XFailed"):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" + (f" (raised at {where})" if where else "")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()][:4]
    text = "\n".join(lines)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


def pytest_configure(config):
    config.addinivalue_line("markers", "part(name): the graded part ('assignment:part') this test belongs to")


def pytest_sessionstart(session):
    try:
        import minilstm
    except BaseException as exc:  # a SyntaxError or ImportError in the student's package
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" ({exc.filename}:{exc.lineno})"
        RESULTS["errors"].append(f"import minilstm failed: {type(exc).__name__}: {exc}{where}")
        _write()
        pytest.exit("the student's minilstm does not import", returncode=3)
    origin = Path(minilstm.__file__).resolve()
    if not _inside(origin, STUDENT):
        RESULTS["errors"].append(f"minilstm was imported from {origin}, not from the student's folder {STUDENT}; "
                                 "nothing was graded")
        _write()
        pytest.exit("grading the wrong package", returncode=3)


def pytest_collectreport(report):
    if report.failed:
        text = str(report.longrepr).strip().splitlines()
        RESULTS["errors"].append(f"could not load {report.nodeid or 'the tests'}: " + " | ".join(text[-3:]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    marker = item.get_closest_marker("part")
    entry = RESULTS["tests"].setdefault(item.nodeid, {
        "part": marker.args[0] if marker else None, "outcome": "passed", "message": "", "phase": ""})
    if rep.failed and entry["outcome"] != "failed":
        entry.update(outcome="failed", phase=rep.when,
                     message=_message(call.excinfo) if call.excinfo else str(rep.longrepr)[-MAX_MESSAGE:])
    elif rep.skipped and entry["outcome"] == "passed":
        entry.update(outcome="skipped", message=str(rep.longrepr[-1]) if isinstance(rep.longrepr, tuple) else "")


def pytest_sessionfinish(session, exitstatus):
    _write()


# ---------------------------------------------------------------------------
# Isolation: swap other parts' functions for the reference ones
# ---------------------------------------------------------------------------

def _student_modules():
    """The student's package modules, and the test modules (they may hold imported names too)."""
    tests = str(TEST_DIR) + os.sep
    return [mod for name, mod in list(sys.modules.items()) if mod is not None and (
        name == "minilstm" or name.startswith("minilstm.") or str(getattr(mod, "__file__", "")).startswith(tests))]


def _swap(spec: str, reference: str, monkeypatch, modules):
    """Replace the student's ``module:qualname`` by the reference's, everywhere it is referenced."""
    module, qualname = spec.split(":", 1)
    mine = importlib.import_module(module)
    ref = importlib.import_module(reference + module[len("minilstm"):])
    if "." in qualname:  # a method: patch it on the student's class
        cls_name, attr = qualname.split(".", 1)
        if hasattr(mine, cls_name):
            monkeypatch.setattr(getattr(mine, cls_name), attr, getattr(ref, cls_name).__dict__[attr])
        return
    old, new = getattr(mine, qualname, None), getattr(ref, qualname)
    if old is None:  # the student removed or renamed it: that part's own tests will say so
        return
    for mod in modules:
        for attr, value in list(vars(mod).items()):
            if value is old:
                monkeypatch.setattr(mod, attr, new)


@pytest.fixture(autouse=True)
def _isolate_part(request, monkeypatch):
    marker = request.node.get_closest_marker("part")
    reference = CONFIG.get("reference")
    if marker is not None and reference:
        under_test = marker.args[0]
        modules = _student_modules()
        for key, specs in CONFIG["parts"].items():
            if key != under_test:
                for spec in specs:
                    _swap(spec, reference, monkeypatch, modules)
    yield
