"""One graded part in its child process: the child's view, starting it, and what comes back.

The child (``python -I -S -B``, inside the launcher's layers) sees a read-only
copy of the package assembled for the part (``assemble.py``), a fresh copy of
the probe harness and a site view with NumPy alone (``World``); it writes only
its own folder. Its outputs are read here once every process of the part is
dead, then the folder is deleted, so nothing of one part is left for another.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import zipfile
from pathlib import Path

from .. import sandbox
from ..assemble import assemble
from ..assignments import HERE as ASSIGNMENTS_DIR

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # the reference package, minilstm/
MAX_OUTPUT_BYTES = 64 * 2**20  # the largest file a part may write, and the largest outputs read back


BOOTSTRAP = '''\
"""Written by minilstm grade: a diagnostic guard, then the student's package, then the probe.

The limits and the sandbox were set before this interpreter started (minilstm/classroom/sandbox/)."""
import json, os, sys
job_dir = sys.argv[1]
with open(os.path.join(job_dir, "job.json")) as f:
    job = json.load(f)
sys.path[:0] = job["sys_path"]
import numpy
import _minilstm_probes

_READABLE = frozenset(job["readable"])


def _guard(event, args, _readable=_READABLE, _real=os.path.realpath, _fspath=os.fspath, _up=os.path.dirname):
    # A diagnostic, not a wall (the kernel's sandbox is the wall): it names a file a graded part tried to open
    # outside what it may read, and refuses ctypes and sockets, with a message the student can read.
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = _fspath(args[0])
        path = _real(path.decode() if isinstance(path, bytes) else path)
        seen = path
        while seen not in _readable:
            if _up(seen) == seen:
                raise PermissionError("minilstm grade: the reference package cannot be read while grading "
                                      f"({path} is outside what a graded part may read: its inputs, the "
                                      "submission, Python and NumPy)")
            seen = _up(seen)
    elif event.startswith(("ctypes.", "socket.")):
        raise PermissionError(f"minilstm grade: {event} is not allowed while grading")


sys.addaudithook(_guard)
_minilstm_probes._child_main(job_dir)
'''


def _numpy_dirs() -> list:
    """NumPy's package folder and its bundled libraries (``numpy.libs`` in a wheel), resolved."""
    import numpy
    package = Path(numpy.__file__).resolve().parent
    return [package] + sorted(d for d in package.parent.glob("numpy.libs") if d.is_dir())


def _forbidden_dirs() -> list:
    """What no child may read: the reference package, the folder holding it (the checkout, with .git, or
    site-packages), every site folder and whatever installs the reference there (editable finders,
    dist-info), resolved. NumPy's own folders are added back by name."""
    out = {str(PACKAGE_DIR), str(PACKAGE_DIR.parent)} | set(sandbox.site_folders())
    for d in sorted(out - {str(PACKAGE_DIR)} | {str(_numpy_dirs()[0].parent)}):
        for entry in Path(d).iterdir():
            if entry.name.lower().startswith(("minilstm", "__editable__")):
                out.add(os.path.realpath(entry))
    return sorted(out)


class World:
    """What every child of one grading run starts from, read-only, made once in ``root``: the site view
    (links to NumPy alone: not minilstm, not torch, no .pth file or editable finder), the probe harness
    (copied again for each child, so no child can spoil another's), the Landlock rules every child shares,
    and the layers this machine has (found once, before any child starts)."""

    def __init__(self, root: Path):
        self.layers = sandbox.layers()
        self.site_view = root / "site"
        self.site_view.mkdir()
        for d in _numpy_dirs():
            (self.site_view / d.name).symlink_to(d)
        self.probe_dir = root / "probe"
        self.probe_dir.mkdir()
        shutil.copy(ASSIGNMENTS_DIR / "probes.py", self.probe_dir / "_minilstm_probes.py")
        (self.probe_dir / "_minilstm_boot.py").write_text(BOOTSTRAP)
        # the system and Python, less the site folders, the reference and this run's scratch (other parts'
        # copies); NumPy's folders and the site view
        forbidden = _forbidden_dirs() + [str(root.resolve())]
        self.rules = sandbox.shared_rules([str(self.site_view)] + [str(d) for d in _numpy_dirs()], forbidden)


def _clean_env(home: Path) -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home), "TMP": str(home), "TEMP": str(home),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MINILSTM_DEVICE": "cpu", "MPLBACKEND": "Agg"}
    # One BLAS thread: tiny matrices, and a thread pool per child would spin on a busy machine.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path: Path, limit=2000) -> str:
    try:
        data = path.read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in data.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def run_child(work: Path, student: Path, key: str, inputs: dict, timeout: float, memory_mb: int, world: World):
    """Run part ``key`` of the student's code on ``inputs`` in a sandboxed child; (outputs or None, reason).

    The child reads ``work/pkg`` (the assembled copy) and ``work/grader`` (the probe and bootstrap, copied
    for this child), writes only in ``work/box`` (job.json, inputs.npz, its outputs.npz; HOME and TMPDIR
    in box/home), and reads Python, NumPy and the system libraries: nothing else. The outputs are read
    here once every process of the part is dead; then the folder is deleted, so nothing of one part is
    left for another."""
    refused = sandbox.refusal(world.layers)
    if refused:
        return None, refused
    work.mkdir(parents=True)
    try:
        return _run_sandboxed(work, student, key, inputs, timeout, memory_mb, world)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_sandboxed(work, student, key, inputs, timeout, memory_mb, world):
    import numpy as np
    pkg, grader, box = work / "pkg", work / "grader", work / "box"
    home = box / "home"
    home.mkdir(parents=True)
    try:
        assemble(student, pkg, key)
    except (OSError, ValueError, RecursionError, shutil.Error) as exc:
        return None, f"the submission's minilstm/ could not be copied ({type(exc).__name__}: {exc}"[:300] + \
            "); this part scores 0"
    np.savez(box / "inputs.npz", **inputs)
    shutil.copytree(world.probe_dir, grader)
    own = [(str(pkg.resolve()), "read"), (str(grader.resolve()), "read")]
    rules = world.rules + own
    (box / "job.json").write_text(json.dumps({  # what the child needs: no path of the reference
        "part": key, "sys_path": [str(pkg), str(grader), str(world.site_view)],
        "readable": sorted({p for p, kind in rules if kind != "list"} | {str(box.resolve())})}))
    sandbox.write_spec(work / "sandbox.json", [sandbox.interpreter(), "-I", "-S", "-B",
                                               str(grader / "_minilstm_boot.py"), str(box)],
                       cwd=home, rules=rules, box=box, found=world.layers,
                       limits={"memory_bytes": int(memory_mb) * 2**20, "cpu_seconds": int(timeout) + 5,
                               "file_bytes": MAX_OUTPUT_BYTES, "output_bytes": MAX_OUTPUT_BYTES,
                               "open_files": 256, "processes": 64})
    log = work / "child.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(sandbox.command(work / "sandbox.json"), cwd=home, env=_clean_env(home),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                close_fds=True)
        try:
            code = proc.wait(timeout=timeout)
            reason = None
        except subprocess.TimeoutExpired:
            code, reason = None, f"did not finish within {timeout:g} s (an endless loop?); this part scores 0"
        finally:
            _kill_group(proc)  # the launcher, the part's pid 1 and with it every process of the part
    result = box / "outputs.npz"
    if reason is None and result.is_symlink():  # only where the part wrote in place (no private folder)
        reason = "the results that came back are a link, not a file; this part scores 0"
    if reason is None and not result.is_file():
        how = ("the process ended without returning results (os._exit, sys.exit or a crash at import?)"
               if code is not None and code >= 0 else f"the process was killed by signal {-code}")
        last = _tail(log)
        reason = f"{how}; exit status {code}" + (f"; last output: {last}" if last else "") + "; this part scores 0"
    if reason is not None:
        return None, reason
    try:
        with zipfile.ZipFile(result) as z:  # a small file may unpack to gigabytes: look before loading
            if result.stat().st_size > MAX_OUTPUT_BYTES or sum(i.file_size for i in z.infolist()) > MAX_OUTPUT_BYTES:
                raise ValueError("too large")
        with np.load(result, allow_pickle=False) as data:
            outputs = {str(k): data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - whatever the file holds, it is only data
        return None, f"the results that came back could not be read ({type(exc).__name__}); this part scores 0"
    if "!import_error" in outputs:
        return None, str(outputs["!import_error"])[:500]
    return outputs, None
