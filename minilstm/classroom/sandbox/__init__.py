"""The operating-system boundary around a graded part: the only code that starts student code.

Threat model, in short (lessons/INSTRUCTORS.md, "Trust model", has the page).
``minilstm grade`` runs each part of an untrusted submission in a child
process. A student who wants points without the work has three moves:
read the reference (the installed package, the checkout and its ``.git``,
another part's scratch copy, which may hold this part's reference, the
grader's memory through ``/proc``) and call it; outlive the part and
rewrite the grader's outputs afterwards (``fork`` + ``setsid``); or make
grading fail for everyone (1,000 processes, a 1 GiB file, signals to the
grader). The audit hook in the child (``child.BOOTSTRAP``) is a diagnostic:
it lives in the student's process and any student can switch it off. The
boundary is what the kernel enforces, set up here before the student's
interpreter starts:

1. **filesystem: Landlock** (Linux >= 5.13, ABI >= 1). An allow-list: the
   Python interpreter and standard library, NumPy's own folders, the system
   libraries (``/usr``, ``/lib*``: every Python site folder, the checkout and
   the reference package under them are left out), the read-only student
   copy and probe copy of this part, and read-write only the part's own
   folder (inputs, outputs, HOME, TMPDIR); ``/dev/null`` and ``/dev/urandom``.
   Nothing else can be opened, listed or executed, by any means (``dir_fd``,
   symlinks, ``subprocess`` + ``cat``, hard links: ABI >= 2 refuses to
   link a file in from outside, ABI 1 refuses any cross-folder link), and the
   kernel, not Python, says no. By ABI: >= 3 truncation is controlled,
   >= 4 TCP bind/connect is denied (no network), >= 5 device ioctls,
   >= 6 signals and abstract unix sockets are scoped (the child can signal
   neither the grader nor anything outside its own sandbox).
2. **namespaces** (root, or an unprivileged user namespace): a new PID
   namespace whose pid 1 is the grader's launcher (``fork`` + ``setsid``
   cannot escape it: when the part ends or times out, pid 1 exits and the
   kernel kills every process in the namespace); a mount namespace with a
   fresh ``/proc`` (only the part's own processes; the grader's
   ``/proc/PID/mem`` and ``cwd`` do not exist there), the part's own folder
   a private tmpfs (its size bounds the part's disk use, and no other
   process sees what it writes) and every other filesystem read-only (no
   ``chmod``, ``utime`` or truncation of anyone's files, which Landlock does
   not cover); a network namespace with no interfaces (no UDP either) and an
   IPC namespace.
3. **a process cap**: the PID namespace's own ``pid_max`` (Linux >= 6.14) is
   set to its minimum, 301, so a part holds at most about 300 processes and
   threads. ``RLIMIT_NPROC`` cannot do this for root (the kernel exempts uid
   0), and switching to an unprivileged uid does not work where Python lives
   under a private home (``/root`` is 0700), so it is set only where it
   counts (inside a user namespace).
4. **no privileges**: every capability dropped (bounding set, ambient,
   effective, permitted, inheritable), ``SECBIT_NOROOT`` locked and
   ``no_new_privs``: uid 0 in the child cannot raise its limits, mount,
   ``ptrace`` or read another process's memory (its capabilities are not a
   superset of theirs), or regain anything through a set-uid program.
5. **rlimits** set before the interpreter starts: address space, CPU time,
   file size (64 MiB: no 1 GiB file), open files, no core dumps.

Where a layer is missing, ``layers()`` says so (``python -m minilstm.classroom.sandbox``
prints it). Without the filesystem layer the grader refuses untrusted code
unless the instructor opts in (``allow_unsafe`` / ``MINILSTM_UNSAFE_NO_SANDBOX=1``).

The package's modules:

``__init__.py`` (this file)  the grader's side: which layers this machine has, the Landlock rules,
                            the spec a part's launcher follows
``launcher.py``              the launcher, run as a script before the student's interpreter: sets
                            the layers up (stdlib only)
``child.py``                 one graded part: the child's view (NumPy alone, the probe), starting
                            it, its outputs once every process of the part is dead
``__main__.py``              ``python -m minilstm.classroom.sandbox``: this machine's layers
"""

from __future__ import annotations

import json
import os
import sys

from .launcher import PID_MAX_MIN

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")

_LAYERS = None
_UNSAFE = False


def layers(refresh: bool = False) -> dict:
    """{layer: {"active": bool, "detail": str}} for this machine, found by trying each in a throw-away child
    (once per process; ``refresh`` asks again). Layers: filesystem, pid_namespace, fresh_proc,
    private_folder, readonly_mounts, network, process_cap, privileges, signals, rlimits; "_probe" holds
    what the probe saw."""
    global _LAYERS
    if _LAYERS is None or refresh:
        import subprocess
        try:
            run = subprocess.run([sys.executable, "-I", "-S", "-B", LAUNCHER, "--probe"], capture_output=True,
                                 timeout=30, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
            found = json.loads(run.stdout or b"{}")
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            found = {"error": f"{type(exc).__name__}: {exc}"}
        _LAYERS = _summarize(found)
    return _LAYERS


def _summarize(p: dict) -> dict:
    abi = int(p.get("landlock_abi") or 0)
    ns = bool(p.get("namespaces")) and bool(p.get("pid_namespace"))
    fs = bool(p.get("landlock"))

    def why(key, default):
        return p.get(key + "_why") or default

    if p.get("error"):  # the probe itself failed: say so wherever a layer is missing
        p = dict(p, landlock_why=f"the sandbox probe failed: {p['error']}")
    out = {
        "filesystem": (fs, f"Landlock ABI {abi}: only Python, NumPy, the system libraries, the part's copy and its "
                           "own folder can be read; write only in its own folder" if fs else
                       why("landlock", f"Landlock ABI {abi} present but could not be applied" if abi else
                           "no Landlock on this kernel")),
        "pid_namespace": (ns, ("own PID namespace: every process of a part dies with it"
                               + (" (in a user namespace)" if p.get("user_namespace") else "")) if ns else
                          why("namespaces", "no PID namespace (needs root or unprivileged user namespaces): "
                                            "the process group is killed, a setsid daemon can escape")),
        "fresh_proc": (ns and bool(p.get("proc")), "a /proc of the part's own processes only" if p.get("proc")
                       else why("proc", why("mounts", "the machine's /proc"))),
        "private_folder": (ns and bool(p.get("private_box")),
                           "the part writes only into a tmpfs of its own (its size caps the part's disk use)"
                           if p.get("private_box") else why("private_box", why("mounts", "no mount namespace"))
                           + ": the part's folder is on the grader's disk"),
        "readonly_mounts": (ns and bool(p.get("readonly_mounts")),
                            "every filesystem read-only except the part's own folder" if p.get("readonly_mounts")
                            else why("readonly_mounts", "no private read-only mounts")),
        "network": ((ns or abi >= 4) and (ns or fs),
                    "no network: an empty network namespace" if ns else
                    ("TCP bind/connect denied by Landlock (UDP not)" if abi >= 4 and fs else "network reachable")),
        "process_cap": (ns and bool(p.get("pid_max")), f"at most {PID_MAX_MIN - 1} processes per part "
                        "(the PID namespace's pid_max)" if p.get("pid_max") else
                        why("pid_max", "no per-part process cap") + "; RLIMIT_NPROC does not bind root"),
        "privileges": (bool(p.get("privileges")), "every capability dropped, no_new_privs"
                       if p.get("privileges") else why("privileges", "capabilities kept")),
        "signals": ((fs and abi >= 6) or ns, ("Landlock scopes signals and abstract unix sockets" if fs and abi >= 6
                                              else "the grader is outside the part's PID namespace") if
                    ((fs and abi >= 6) or ns) else "the child can signal the grader's processes"),
        "rlimits": (sys.platform.startswith("linux") or sys.platform == "darwin",
                    "address space, CPU time, file size, open files, no core dumps"),
    }
    result = {k: {"active": bool(v[0]), "detail": v[1]} for k, v in out.items()}
    result["_probe"] = p
    return result


def describe(found: dict | None = None) -> str:
    """One line per layer: what is active on this machine and what is missing."""
    found = layers() if found is None else found
    lines = []
    for name, layer in found.items():
        if name.startswith("_"):
            continue
        lines.append(f"  {'yes' if layer['active'] else 'NO ':<4}{name:<16} {layer['detail']}")
    return "\n".join(lines)


def summary(found: dict | None = None) -> dict:
    """{layer: bool}, for a report."""
    found = layers() if found is None else found
    return {k: v["active"] for k, v in found.items() if not k.startswith("_")}


def allow_unsafe(flag: bool = True) -> None:
    """The instructor's explicit opt-in to grade without the filesystem layer (trusted code only)."""
    global _UNSAFE
    _UNSAFE = bool(flag)


def unsafe_allowed() -> bool:
    return _UNSAFE or os.environ.get("MINILSTM_UNSAFE_NO_SANDBOX", "") not in ("", "0")


def refusal(found: dict | None = None) -> str | None:
    """Why untrusted code must not be graded here, or None."""
    found = layers() if found is None else found
    if found["filesystem"]["active"] or unsafe_allowed():
        return None
    return ("refused: this machine has no filesystem sandbox for student code "
            f"({found['filesystem']['detail']}); the child could read the reference. Grade where Landlock is "
            "available (Linux >= 5.13), or, for code you trust, set MINILSTM_UNSAFE_NO_SANDBOX=1 "
            "(`python -m minilstm.classroom.sandbox` lists this machine's layers)")


def python_paths() -> list:
    """What the student's interpreter needs to start: the (base) interpreter, libpython, the standard library."""
    import sysconfig
    exe = interpreter()
    out = [exe]
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlib = sysconfig.get_config_var("LDLIBRARY")
    if libdir and ldlib and os.path.exists(os.path.join(libdir, ldlib)):
        out.append(os.path.realpath(os.path.join(libdir, ldlib)))
    stdlib = os.path.dirname(os.path.realpath(os.__file__))
    out.append(stdlib)
    dynload = sysconfig.get_config_var("DESTSHARED")
    if dynload and os.path.isdir(dynload):
        out.append(os.path.realpath(dynload))
    zipped = os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}{sys.version_info[1]}.zip")
    if os.path.exists(zipped):
        out.append(zipped)
    return out


def site_folders() -> list:
    """Every folder this Python installs packages into (the venv's, the base interpreter's, the system's,
    the user's): all left out of the child's view, NumPy's own folders being added back one by one."""
    import site
    import sysconfig
    found = list(site.getsitepackages()) + list(site.getsitepackages([sys.base_prefix, sys.base_exec_prefix]))
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars)
        found += [paths["purelib"], paths["platlib"]]
    try:
        found.append(site.getusersitepackages())
    except (AttributeError, OSError):
        pass
    out = []
    for d in found:
        if d and os.path.isdir(d) and os.path.realpath(d) not in out:
            out.append(os.path.realpath(d))
    return out


def interpreter() -> str:
    """The base interpreter (not a venv's link, whose pyvenv.cfg may sit in a folder the child cannot read)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc/ld.so.cache")
DEVICES = (("/dev/null", "device"), ("/dev/zero", "device"), ("/dev/urandom", "device"), ("/dev/random", "device"))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def allow_except(roots, forbidden) -> list:
    """Rules [(path, kind)] whose union reads ``roots`` less everything under ``forbidden`` (Landlock can only
    add, never subtract): a root that holds a forbidden path is replaced by its entries, recursively, and
    itself may only be listed ("list": names, not contents, which is what Python's import needs of it)."""
    forbidden = [os.path.realpath(f) for f in forbidden]
    out = []

    def add(path):
        real = os.path.realpath(path)
        if any(_within(real, f) for f in forbidden):
            return
        if not any(_within(f, real) for f in forbidden) or not os.path.isdir(real):
            out.append((real, "read"))
            return
        try:
            entries = sorted(os.listdir(real))
        except OSError:
            return
        out.append((real, "list"))
        for name in entries:
            add(os.path.join(real, name))

    for root in roots:
        if os.path.lexists(root):
            add(root)
    seen, unique = set(), []
    for rule in out:
        if rule not in seen:
            seen.add(rule)
            unique.append(rule)
    return unique


def shared_rules(read, forbidden) -> list:
    """The read-only rules every child of a grading run shares: the system, Python, ``read`` (NumPy's folders),
    less ``forbidden`` (site folders, the reference, the checkout, the grading scratch)."""
    rules = allow_except(list(SYSTEM_READ) + python_paths(), forbidden)
    rules += [(os.path.realpath(p), "read") for p in read if os.path.exists(p)]
    rules += [d for d in DEVICES if os.path.exists(d[0])]
    return rules


def command(spec_path) -> list:
    """The command that runs the child described by the spec file ``spec_path`` (written by ``write_spec``)."""
    return [interpreter(), "-I", "-S", "-B", LAUNCHER, str(spec_path)]


def write_spec(path, argv, cwd, rules, box, limits: dict, found: dict | None = None,
               outputs: str = "outputs.npz") -> dict:
    """Write the launcher's spec: what to run, where, the rules (shared + this part's; ``box``, the part's own
    folder, is the one it may write), limits (memory_bytes, cpu_seconds, file_bytes, open_files, processes,
    disk_bytes, output_bytes), the layers to set up (those ``layers()`` found)."""
    found = layers() if found is None else found
    probe = found["_probe"]
    ns = found["pid_namespace"]["active"]
    box = os.path.realpath(box)
    limits = dict(limits)
    limits.setdefault("output_bytes", limits.get("file_bytes") or 2**26)
    limits.setdefault("disk_bytes", 2 * limits["output_bytes"] + 2**24)
    limits.setdefault("pid_max", PID_MAX_MIN)
    spec = {
        "argv": [str(a) for a in argv], "cwd": str(cwd), "box": box, "outputs": outputs,
        "rules": [(str(p), k) for p, k in rules] + [(box, "write")],
        "limits": limits,
        "layers": {
            "namespaces": ns, "user_namespace": ns and bool(probe.get("user_namespace")),
            "mounts": ns and bool(probe.get("mounts")),
            "proc": found["fresh_proc"]["active"], "readonly_mounts": found["readonly_mounts"]["active"],
            "private_box": found["private_folder"]["active"],
            "pid_max": found["process_cap"]["active"], "privileges": found["privileges"]["active"],
            "landlock": int(probe.get("landlock_abi") or 0) if found["filesystem"]["active"] else 0,
        },
    }
    with open(path, "w") as f:
        json.dump(spec, f)
    return spec
