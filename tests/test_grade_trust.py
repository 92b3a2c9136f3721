"""The grade cannot be forged, and one broken part costs only that part.

Each forgery below is a few lines in a fresh handout (honestly 0 points) that
forged full marks from the grader that ran the student's code inside its own
pytest process; each targets that grader and the current one. Each broken
part is one function of an otherwise complete solution that loops forever,
ends the process, crashes it, exhausts its memory, returns a zip bomb or
leaves a process behind.
All submissions are graded in one run (two children at a time, 8 s per part),
so the whole module costs about as much as grading a few students.

``build(root)`` is importable on its own, to grade the same submissions with
another grader (how the report's "fails on the old grader" was measured).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from minilstm.classroom import assign, grade
from minilstm.classroom.assignments import ASSIGNMENTS, all_parts

REPO = Path(__file__).resolve().parents[1]
PARTS = all_parts()
PART_TIMEOUT = 8  # seconds per part: the endless loop costs this, once

# --------------------------------------------------------------------------- forgeries (appended to a fresh handout)

ATEXIT_REWRITES_RESULTS = '''
import atexit as _ae, json as _js, os as _os, shutil as _sh
def _forge():
    cfg = _os.environ.get("MINILSTM_GRADE_CONFIG")
    if cfg:  # a grader that keeps a results file: mark every test passed
        path = _js.load(open(cfg))["results"]
        res = _js.load(open(path))
        for t in res["tests"].values():
            t.update(outcome="passed", message="")
        open(path, "w").write(_js.dumps(res))
    for d in (_os.getcwd(), _os.path.dirname(_os.getcwd())):  # or overwrite whatever results sit near by
        if _os.path.exists(_os.path.join(d, "inputs.npz")):
            _sh.copy(_os.path.join(d, "inputs.npz"), _os.path.join(d, "outputs.npz"))
_ae.register(_forge)
'''

FAKE_RESULTS_THEN_EXIT = '''
import json as _js, os as _os
_cfg = _os.environ.get("MINILSTM_GRADE_CONFIG")
if _cfg:
    _c = _js.load(open(_cfg))
    open(_c["results"], "w").write(_js.dumps({"errors": [], "tests": {
        f"fake{i}": {"part": k, "outcome": "passed", "message": "", "phase": "call"}
        for i, k in enumerate(_c["parts"])}}))
    _os._exit(0)
for _d in (_os.getcwd(), _os.path.dirname(_os.getcwd())):
    if _os.path.exists(_os.path.join(_d, "job.json")):
        import numpy as _np
        _np.savez(_os.path.join(_d, "outputs.npz"), **{"fake/value": _np.zeros(3)})
        _os._exit(0)
'''

REPLACE_THE_WRITER = '''
import sys as _sys
_plugin = _sys.modules.get("minilstm_grading_plugin")
if _plugin is not None:  # the grading plugin's writer: every test passed
    _write = _plugin._write
    def _forged_write():
        for t in _plugin.RESULTS["tests"].values():
            t.update(outcome="passed", message="")
        _write()
    _plugin._write = _forged_write
for _name, _mod in list(_sys.modules.items()):  # whatever else grades in this process: answer with the inputs
    if hasattr(_mod, "run") and hasattr(_mod, "_child_main"):
        _mod.run = lambda part, inputs, **kw: dict(inputs)
'''

REWRITE_TEST_COPIES = '''
import json as _js, os as _os, sys as _sys
_cfg = _os.environ.get("MINILSTM_GRADE_CONFIG")
if _cfg:  # rewrite the scratch copies of the tests before pytest collects them
    _c = _js.load(open(_cfg))
    _src = "import pytest\\n" + "".join(f"@pytest.mark.part({k!r})\\ndef test_{i}():\\n    pass\\n"
                                          for i, k in enumerate(_c["parts"]))
    for _n in _os.listdir(_c["test_dir"]):
        if _n.startswith("test_"):
            open(_os.path.join(_c["test_dir"], _n), "w").write(_src)
STATUS = []
for _p in list(_sys.path):  # rewrite any grading code in reach so that every check passes
    for _f in ("_minilstm_probes.py", "minilstm/classroom/assignments/checks.py",
               "minilstm/classroom/assignments/probes.py"):
        _t = _os.path.join(_p, _f)
        if _os.path.exists(_t) and not _t.startswith(_os.path.dirname(_os.path.dirname(__file__))):
            try:
                with open(_t, "a"):  # appending nothing: harmless if it works, but it must not
                    pass
                STATUS.append(f"OPENED-FOR-WRITING {_t}")
            except OSError as exc:
                STATUS.append(f"refused {type(exc).__name__}")
'''

IMPORT_THE_REFERENCE = '''

def _reference():
    """Find the instructor's package and load its lstm module, whatever it takes."""
    try:
        import minilstm_reference.ops.lstm as ref  # a grader that put it on the path
        return ref
    except ImportError:
        pass
    import glob, importlib.util, os, re, site, sys
    mine = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    places = [REPO_HINT] + sys.path + list(site.getsitepackages())
    for d in places:
        for finder in glob.glob(os.path.join(d, "__editable__*minilstm*finder.py")):
            text = open(finder).read()
            places += [os.path.dirname(p) for p in re.findall(r"'(/[^']*minilstm)'", text)]
    for d in places:
        pkg = os.path.join(d, "minilstm")
        if os.path.isfile(os.path.join(pkg, "__init__.py")) and os.path.realpath(pkg) != os.path.realpath(mine):
            spec = importlib.util.spec_from_file_location("borrowed", os.path.join(pkg, "__init__.py"),
                                                          submodule_search_locations=[pkg])
            module = importlib.util.module_from_spec(spec)
            sys.modules["borrowed"] = module
            spec.loader.exec_module(module)
            import borrowed.ops.lstm as ref
            return ref
    raise ImportError("no reference found")


def _borrow(name):
    def stand_in(*args, **kwargs):
        return getattr(_reference(), name)(*args, **kwargs)
    return stand_in


for _name in ("cell_forward", "cell_backward", "lstm_step_forward", "lstm_step_backward", "lstm_forward",
              "lstm_backward"):
    globals()[_name] = _borrow(_name)
'''

LEAK_THE_TESTS = '''

def cell_forward(*args, **kwargs):
    """Print whatever grading material is in reach into the report."""
    import glob, json, os
    found = []
    cfg = os.environ.get("MINILSTM_GRADE_CONFIG")
    if cfg:
        for f in sorted(glob.glob(os.path.join(json.load(open(cfg))["test_dir"], "*hidden*"))):
            found.append(open(f).read()[:300])
    job = os.path.dirname(os.getcwd())
    for root, dirs, files in os.walk(job):
        dirs[:] = [d for d in dirs if d not in ("pkg", "home")]
        found += sorted(os.path.relpath(os.path.join(root, f), job) for f in files)
    raise NotImplementedError("LEAK " + " | ".join(found))
'''

FORGERIES = {  # id: (file to append to, code); each in a fresh handout of the lstm assignment: honestly 0/50
    "atexit-rewrites-results": ("minilstm/__init__.py", ATEXIT_REWRITES_RESULTS),
    "fake-results-then-os-exit": ("minilstm/__init__.py", FAKE_RESULTS_THEN_EXIT),
    "replace-the-grading-writer": ("minilstm/__init__.py", REPLACE_THE_WRITER),
    "rewrite-the-test-copies": ("minilstm/__init__.py", REWRITE_TEST_COPIES),
    "import-the-reference": ("minilstm/ops/lstm.py", IMPORT_THE_REFERENCE),
    "leak-the-hidden-tests": ("minilstm/ops/lstm.py", LEAK_THE_TESTS),
}

# --------------------------------------------------------------------------- broken parts (in a complete solution)

BROKEN = [  # (part, file, line in the reference, what goes before it)
    ("training:loop", "minilstm/training.py", "    loss, cache, state = model.forward(x, y, state, train=True)\n",
     "    while True:  # an endless loop\n        pass\n"),
    ("training:evaluate", "minilstm/training.py", "    state, nll, count = None, 0.0, 0\n",
     "    import os; os._exit(0)\n"),
    ("dropout:operator", "minilstm/ops/dropout.py", "    if cache.mask is None:\n",
     "    import os, signal; os.kill(os.getpid(), signal.SIGSEGV)\n"),
    ("lstm:cell_forward", "minilstm/ops/lstm.py", "    xp.multiply(f, prev_c, out=next_c)\n",
     "    hog = bytearray(3 * 2**30)  # beyond the memory cap\n"),
    ("lstm:step", "minilstm/ops/lstm.py",
     "    gates = x @ Wx + prev_h @ Wh + b  # (N, 4H): all four gates in one block\n",
     "    import atexit, os  # at exit, replace the results by 128 MiB of zeros packed into a small file\n"
     "    atexit.register(lambda: np.savez_compressed(os.path.join(os.path.dirname(os.getcwd()), 'outputs.npz'),\n"
     "                                                bomb=np.zeros(2**24)))\n"),
]
LINGER = ("lstm:sequence_forward", "minilstm/ops/lstm.py",
          "    gates = (x.reshape(N * T, D) @ Wx).reshape(N, T, 4 * H)  # (N, T, 4H)\n",
          "    import subprocess; subprocess.Popen(['sleep', '300'], stdout=subprocess.DEVNULL, "
          "stderr=subprocess.DEVNULL)\n"
          "    try:  # a sign of life, where the child may write outside its own folder (not in the sandbox)\n"
          "        open(PIDS, 'a').close()\n"
          "    except OSError:\n"
          "        pass\n")


def _edit(path: Path, anchor: str, before: str, count=None):
    text = path.read_text()
    assert anchor in text, f"{path}: the scenario no longer matches"
    path.write_text(text.replace(anchor, before + anchor))


def build(root: Path) -> dict:
    """{id: folder}: the forgeries, the broken parts, and a reference-like complete handout."""
    root = Path(root)
    out = {}
    for sid, (rel, code) in FORGERIES.items():
        folder = root / sid
        assign.write_student_version(folder, ["lstm"])
        code = code.replace("REPO_HINT", repr(str(REPO)))
        (folder / rel).write_text((folder / rel).read_text() + code)
        if sid == "rewrite-the-test-copies":  # what the rewrite achieved shows up in every stub's message
            lstm_py = folder / "minilstm/ops/lstm.py"
            lstm_py.write_text(lstm_py.read_text().replace(
                'raise NotImplementedError(\n', 'raise NotImplementedError(str(__import__("minilstm").STATUS) + \n'))
        out[sid] = folder
    broken = root / "broken-parts"
    assign.write_student_version(broken, None, solved=list(PARTS))
    # the parts filled in stand for the student's work: nothing given (for a grader that reads the handout's
    # record; this one grades by the plans in PLANS)
    meta = json.loads((broken / "assignment.json").read_text())
    (broken / "assignment.json").write_text(json.dumps({**meta, "solved": []}))
    for part, rel, anchor, before in BROKEN + [LINGER]:
        _edit(broken / rel, anchor, before.replace("PIDS", repr(str(root / "lingering-started"))))
    out["broken-parts"] = broken
    return out


PLANS = {**{sid: {"assignments": ["lstm"]} for sid in FORGERIES},  # what each submission is graded for
         "broken-parts": {"assignments": list(ASSIGNMENTS), "solved": []}}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    folders = build(root)
    seen, done = [], threading.Event()  # the lingering process, seen from here while the grading runs
    watcher = threading.Thread(target=_watch_for_lingering, args=(seen, done), daemon=True)
    watcher.start()
    started = time.monotonic()
    reports = grade.grade_many(list(folders.values()), jobs=2, timeout=PART_TIMEOUT, memory_mb=1024,
                               plans={folders[sid]: PLANS[sid] for sid in folders})
    seconds = time.monotonic() - started
    done.set()
    watcher.join()
    return {"reports": dict(zip(folders, reports)), "seconds": seconds, "root": root, "lingering_seen": bool(seen)}


def _watch_for_lingering(seen, done):
    while not done.is_set() and not seen and Path("/proc").is_dir():
        seen += [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == "sleep\x00300\x00"]
        time.sleep(0.02)


def scores(report):
    return {p["key"]: p["score"] for a in report["assignments"] for p in a["parts"]}


def messages(report):
    return "\n".join(m for a in report["assignments"] for p in a["parts"] for m in p["messages"] + [p["error"] or ""])


@pytest.mark.parametrize("sid", list(FORGERIES))
def test_a_forgery_earns_nothing(graded, sid):
    report = graded["reports"][sid]
    assert report["max_score"] == ASSIGNMENTS["lstm"].max_points
    assert report["score"] == 0, (sid, scores(report), messages(report))


def test_the_reference_package_is_out_of_reach(graded):
    text = messages(graded["reports"]["import-the-reference"])
    assert "PermissionError" in text and "reference package cannot be read" in text, text


def test_grading_code_in_reach_cannot_be_rewritten(graded):
    text = messages(graded["reports"]["rewrite-the-test-copies"])
    assert "OPENED-FOR-WRITING" not in text, text
    assert (REPO / "minilstm/classroom/assignments/checks.py").read_text().endswith("return ctx.messages\n")


def test_the_child_sees_its_inputs_and_nothing_of_the_answers(graded):
    text = messages(graded["reports"]["leak-the-hidden-tests"])
    leaks = {line.split("LEAK ", 1)[1] for line in text.splitlines() if "LEAK " in line}
    for leak in leaks:
        seen = set(leak.split(" (raised at")[0].split(" | "))
        assert seen <= {"child.log", "inputs.npz", "job.json", "grader/_minilstm_probes.py",
                        "grader/_minilstm_boot.py"}, seen
    assert leaks and "Hidden tests" not in text


def test_each_broken_part_costs_only_that_part(graded):
    report = graded["reports"]["broken-parts"]
    lost = {part for part, *_ in BROKEN}
    assert scores(report) == {key: 0 if key in lost else PARTS[key].points for key in PARTS}, messages(report)
    reasons = {p["key"]: p["error"] or "\n".join(p["messages"]) for a in report["assignments"] for p in a["parts"]}
    assert f"within {PART_TIMEOUT} s" in reasons["training:loop"]
    assert "ended without returning results" in reasons["training:evaluate"]
    assert "signal 11" in reasons["dropout:operator"]
    assert "MemoryError" in reasons["lstm:cell_forward"]
    assert "could not be read" in reasons["lstm:step"]
    for key in lost:  # one line each
        assert "\n" not in reasons[key], reasons[key]


def test_a_lingering_process_neither_holds_grading_nor_survives(graded):
    report = graded["reports"]["broken-parts"]
    # the student's code did start it: seen running while grading (its sign of life, a file, only where the
    # child may write outside its own folder)
    assert graded["lingering_seen"] or (graded["root"] / "lingering-started").exists()
    assert scores(report)["lstm:sequence_forward"] == PARTS["lstm:sequence_forward"].points
    # only the endless loop waited for its limit: everything else was done well within it
    assert graded["seconds"] < 4 * PART_TIMEOUT + 30, graded["seconds"]
    if not Path("/proc").is_dir():
        return  # no /proc to look in (macOS): the time bound above is the check
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == "sleep\x00300\x00"]
    assert not leftovers, "the student's lingering process survived grading"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_text()
    except OSError:
        return ""
