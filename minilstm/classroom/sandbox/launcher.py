"""The launcher of a graded part: the kernel's layers around student code, set up before it starts.

Run as a script, never imported by student code: ``python -I -S -B launcher.py SPEC`` (the spec that
``sandbox.write_spec`` wrote: what to run, the Landlock rules, the limits, the layers to set up), or
``--probe`` (which layers come up on this machine, as JSON). It imports only the standard library,
since it runs with no site-packages. The layers and what each defends: ``sandbox/__init__.py``.

How a part runs: the grader starts ``python -I -S -B launcher.py SPEC`` (this
file, run as a script: it imports only the standard library), the *launcher*.
The launcher unshares the PID, network and IPC namespaces and forks pid 1
(``_init``), which takes a mount namespace of its own, mounts ``/proc``,
sets ``pid_max``, puts the tmpfs over the part's folder (with copies of the
grader's inputs), turns the rest read-only and forks the *worker*; the
worker sets the rlimits, drops its privileges, restricts itself with
Landlock and ``exec``s the student's interpreter. When the worker ends, pid
1 kills and reaps every other process of the namespace, and only then takes
the outputs file (a regular file, at most the outputs' limit) and passes it
with the worker's status up the pipe; the launcher, outside the namespace,
writes it where the grader reads it. Every layer that the probe found
possible is required: one that fails to come up fails the part (exit status
125 and a message), never silently weaker.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import sys

HERE = os.path.abspath(__file__)
LAUNCH_FAILED = 125  # the launcher's exit status when a layer could not be set up

# --------------------------------------------------------------------------- kernel interfaces (Linux)

SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
SYS_MOUNT_SETATTR = 442  # the same numbers on every architecture (the unified syscall table)
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15   # ABI 2, 3, 5
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1                      # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1           # ABI 6
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # what a rule on a file may hold

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
MOUNT_ATTR_RDONLY, AT_RECURSIVE = 0x1, 0x8000

PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 28, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE set and locked, KEEP_CAPS off and locked
SECUREBITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
CAPABILITY_VERSION_3 = 0x20080522

PID_MAX_MIN = 301  # the kernel's smallest pid_max (RESERVED_PIDS + 1): about 300 processes per part
PID_MAX_PER_NAMESPACE = (6, 14)  # kernel release where /proc/sys/kernel/pid_max became per PID namespace


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.syscall.restype = ctypes.c_long
    return _LIBC


def _check(result, what):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _prctl(option, arg2=0, what="prctl"):
    libc = _libc()
    return _check(libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0),
                             ctypes.c_ulong(0)), what)


def _kernel_release() -> tuple:
    """(major, minor) of the running kernel, e.g. (6, 18)."""
    import re
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# --------------------------------------------------------------------------- Landlock

def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where there is none (not Linux, too old, not enabled)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = _libc()
        abi = libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                           ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(0, int(abi))


def _fs_rights(abi: int) -> int:
    """Every filesystem right this ABI knows: all are handled, so all are denied unless a rule grants them."""
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _grant(kind: str, abi: int) -> int:
    every = _fs_rights(abi)
    if kind == "read":     # read, list, execute: the interpreter, libraries, the student's copy, the probe
        return FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
    if kind == "list":     # a folder that holds something forbidden: its names, not what is beneath
        return FS_READ_DIR
    if kind == "write":    # the part's own folder: anything (REFER too: renames within it)
        return every
    if kind == "device":   # /dev/null and friends: read and write the device, nothing else
        return (FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV) & every
    raise ValueError(f"unknown rule kind {kind!r}")


def _landlock_restrict(rules, abi: int) -> None:
    """Allow only ``rules`` [(path, kind)] from now on, for this process and everything it starts."""
    libc = _libc()
    attr = _RulesetAttr(handled_access_fs=_fs_rights(abi))
    size = 8
    if abi >= 4:  # no rule grants a port: every TCP bind and connect is denied
        attr.handled_access_net, size = NET_BIND_TCP | NET_CONNECT_TCP, 16
    if abi >= 6:  # no signals and no abstract unix sockets beyond this sandbox
        attr.scoped, size = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL, 24
    ruleset = _check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                                  ctypes.c_size_t(size), ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for path, kind in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # e.g. /lib32 on this machine: nothing to allow
            try:
                access = _grant(kind, abi)
                if not _is_dir_fd(fd):
                    access &= FILE_RIGHTS
                rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
                _check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                                    ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                    ctypes.c_uint32(0)), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        _prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _is_dir_fd(fd) -> bool:
    import stat
    return stat.S_ISDIR(os.fstat(fd).st_mode)


# --------------------------------------------------------------------------- privileges, limits, namespaces

def _drop_privileges() -> None:
    """No capability left, none to regain: bounding and ambient sets emptied, securebits locked, no_new_privs."""
    libc = _libc()
    try:
        _prctl(PR_SET_SECUREBITS, SECUREBITS, "prctl(PR_SET_SECUREBITS)")
    except OSError as exc:
        if exc.errno != errno.EPERM:  # EPERM: no CAP_SETPCAP, i.e. nothing to lock (an ordinary user)
            raise
    cap = 0
    while cap < 64:
        if libc.prctl(ctypes.c_int(PR_CAPBSET_DROP), ctypes.c_ulong(cap), ctypes.c_ulong(0), ctypes.c_ulong(0),
                      ctypes.c_ulong(0)) < 0:
            err = ctypes.get_errno()
            if err == errno.EINVAL:
                break  # past the last capability this kernel knows
            if err != errno.EPERM:  # EPERM: an ordinary user, whose bounding set gives nothing anyway
                raise OSError(err, f"prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(err)}")
        cap += 1
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
    header, data = _CapHeader(CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")


def _capabilities() -> int:
    """The effective | permitted | inheritable capabilities of this process (0: none)."""
    header, data = _CapHeader(CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(_libc().capget(ctypes.byref(header), data), "capget")
    return sum((d.effective | d.permitted | d.inheritable) << (32 * i) for i, d in enumerate(data))


def _set_limits(limits: dict, in_user_namespace: bool) -> None:
    """The part's rlimits (soft = hard, never above what this process has): address space, CPU time (SIGXCPU,
    then SIGKILL 2 s later), file size (a larger write fails with EFBIG), open files; no core dumps."""
    import resource
    values = {"memory_bytes": resource.RLIMIT_AS, "cpu_seconds": resource.RLIMIT_CPU,
              "file_bytes": resource.RLIMIT_FSIZE, "open_files": resource.RLIMIT_NOFILE}
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, which in values.items():
        if limits.get(key) is None:
            continue
        hard = resource.getrlimit(which)[1]
        cap = (lambda v: v) if hard == resource.RLIM_INFINITY else (lambda v: min(v, hard))
        value = cap(int(limits[key]))
        resource.setrlimit(which, (value, cap(value + 2) if which == resource.RLIMIT_CPU else value))
    if in_user_namespace and limits.get("processes"):
        # In a user namespace of its own, the count is of this part's processes only. Elsewhere it would
        # count every process of the user (or, for root, nothing at all): the pid_max cap does that job.
        n = int(limits["processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (n, n))


def _unshare(flags: int) -> None:
    _check(_libc().unshare(ctypes.c_int(flags)), "unshare")


def _mount(source, target, fstype, flags, what, data=None):
    libc = _libc()
    enc = (lambda s: None if s is None else s.encode())
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), what)


def _readonly_everything_but(writable) -> None:
    """Every mount of this (private) mount namespace read-only, then each writable folder a rw bind of itself."""
    libc = _libc()

    class MountAttr(ctypes.Structure):
        _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                    ("userns_fd", ctypes.c_uint64)]

    for path in writable:
        _mount(path, path, None, MS_BIND | MS_REC, f"bind {path}")
    attr = MountAttr(attr_set=MOUNT_ATTR_RDONLY)
    _check(libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(-100), b"/", ctypes.c_uint(AT_RECURSIVE),
                        ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr / read-only")
    clear = MountAttr(attr_clr=MOUNT_ATTR_RDONLY)
    for path in writable:
        _check(libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(-100), path.encode(),
                            ctypes.c_uint(AT_RECURSIVE), ctypes.byref(clear), ctypes.c_size_t(ctypes.sizeof(clear))),
               f"mount_setattr {path} read-write")


def _map_own_ids(uid: int, gid: int) -> None:
    """In a fresh user namespace: be the same uid/gid inside as outside (files keep their owners)."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


# --------------------------------------------------------------------------- the launcher (runs as a script)

NAMESPACES = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC  # the mount namespace is pid 1's own (``_init``)
REPORT_LIMIT = 2**27  # what pid 1 may pass up through the pipe: the status and the outputs file


def _enter_namespaces(spec: dict) -> None:
    """In the launcher: new PID, network and IPC namespaces for its next child (in a user namespace of its
    own where that is the way: an ordinary user, or a root without CAP_SYS_ADMIN)."""
    if spec["layers"].get("user_namespace"):
        uid, gid = os.getuid(), os.getgid()
        _unshare(NAMESPACES | CLONE_NEWUSER)
        _map_own_ids(uid, gid)
    else:
        _unshare(NAMESPACES)


def _private_mounts() -> None:
    """A mount namespace of pid 1's own, from which nothing propagates back to the machine."""
    _unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE, "make / private")


def _private_box(box: str, size: int) -> None:
    """A fresh tmpfs of ``size`` bytes over ``box`` (seen in this mount namespace only), holding copies of what
    the grader put there: the part's disk use is bounded, and what it writes nobody else can see."""
    folder = os.open(box, os.O_RDONLY | os.O_DIRECTORY)  # the grader's folder, reachable under the tmpfs
    try:
        _mount("tmpfs", box, "tmpfs", MS_NOSUID | MS_NODEV, "a private folder for the part",
               data=f"size={int(size)},nr_inodes=4096,mode=0700")
        for entry in os.scandir(folder):
            target = os.path.join(box, entry.name)
            if entry.is_dir(follow_symlinks=False):
                os.mkdir(target, 0o700)
            elif entry.is_file(follow_symlinks=False):
                src = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
                try:
                    with open(target, "wb") as out:
                        while True:
                            chunk = os.read(src, 2**20)
                            if not chunk:
                                break
                            out.write(chunk)
                finally:
                    os.close(src)
    finally:
        os.close(folder)


def _take_outputs(box: str, name: str, limit: int):
    """The outputs file the part left in its private folder (a regular file no larger than ``limit``), or None."""
    import stat
    try:
        fd = os.open(os.path.join(box, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 2**20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= limit else None
    finally:
        os.close(fd)


def _init(spec: dict, report_fd: int) -> None:
    """pid 1 of the part's namespace: set the namespace up, fork the worker and wait for it; then kill and reap
    every other process of the namespace, take the outputs and pass them up with the worker's status. Never
    returns; when it exits, the kernel kills anything still left in the namespace."""
    layers = spec["layers"]
    status, outputs = LAUNCH_FAILED << 8, None
    try:
        if sys.platform.startswith("linux"):
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "prctl(PR_SET_PDEATHSIG)")  # the launcher killed: so are we
            if _reader_gone(report_fd):  # it died before that was set (getppid() says 0 across namespaces)
                os._exit(137)
        if layers.get("mounts"):
            _private_mounts()
            if layers.get("proc"):
                _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount a fresh /proc")
            if layers.get("pid_max"):  # before the mounts turn read-only
                with open("/proc/sys/kernel/pid_max", "w") as f:
                    f.write(str(spec["limits"].get("pid_max", PID_MAX_MIN)))
            if layers.get("private_box"):
                _private_box(spec["box"], spec["limits"]["disk_bytes"])
            if layers.get("readonly_mounts"):
                _readonly_everything_but([spec["box"]])
        worker = os.fork()
        if worker == 0:
            os.close(report_fd)
            _worker(spec)  # never returns
        while True:
            pid, got = os.waitpid(-1, 0)  # reap orphans until the worker is gone
            if pid == worker:
                status = got
                break
        if layers.get("namespaces") and os.getpid() == 1:
            # the part is over: every process of it dies, now, before its outputs are read
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while True:
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    break
        if layers.get("private_box"):
            outputs = _take_outputs(spec["box"], spec["outputs"], spec["limits"]["output_bytes"])
    except BaseException as exc:  # noqa: BLE001 - say which layer failed, and fail the part
        _say(f"minilstm sandbox: the namespace could not be set up ({exc})")
    try:
        header = json.dumps({"status": status, "outputs": -1 if outputs is None else len(outputs)})
        os.write(report_fd, header.encode() + b"\n")
        view = memoryview(outputs or b"")
        while view:
            view = view[os.write(report_fd, view):]
    finally:
        os._exit(0)


def _reader_gone(fd: int) -> bool:
    """Whether the other end of the pipe ``fd`` writes to is closed (its reader, the launcher, is dead)."""
    import select
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _worker(spec: dict) -> None:
    """The part's first process: limits, privileges, Landlock, then exec the student's interpreter."""
    layers = spec["layers"]
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        _set_limits(spec["limits"], bool(layers.get("user_namespace")))
        if layers.get("privileges"):
            _drop_privileges()
        if layers.get("landlock"):
            _landlock_restrict(spec["rules"], int(layers["landlock"]))
        os.chdir(spec["cwd"])
        os.execv(spec["argv"][0], spec["argv"])
    except BaseException as exc:  # noqa: BLE001
        _say(f"minilstm sandbox: the part's process could not be confined ({exc})")
    os._exit(LAUNCH_FAILED)


def _say(text: str) -> None:
    try:
        os.write(2, (text + "\n").encode())
    except OSError:
        pass


def _launch(spec: dict) -> int:
    """Run spec["argv"] confined as spec["layers"] says; returns (or dies with) the worker's status. The outputs
    the part left in its private folder are written where the grader reads them (``spec["box"]``)."""
    if spec["layers"].get("namespaces"):
        try:
            _enter_namespaces(spec)
        except OSError as exc:
            _say(f"minilstm sandbox: the namespaces could not be created ({exc})")
            return LAUNCH_FAILED
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _init(spec, write_end)
    os.close(write_end)
    chunks, size = [], 0
    while size <= REPORT_LIMIT:
        try:
            chunk = os.read(read_end, 2**20)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    data = b"".join(chunks)
    try:
        header, _, outputs = data.partition(b"\n")
        report = json.loads(header)
        status = int(report["status"])
    except (ValueError, KeyError, TypeError):
        return LAUNCH_FAILED
    if report.get("outputs", -1) >= 0 and len(outputs) == report["outputs"]:
        fd = os.open(os.path.join(spec["box"], spec["outputs"]),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as f:
            f.write(outputs)
    if os.WIFSIGNALED(status):  # die of the same signal, so the grader can say which
        sig = os.WTERMSIG(status)
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else LAUNCH_FAILED


# --------------------------------------------------------------------------- the probe: which layers work here

def _probe() -> dict:
    """Try every layer in a throw-away sandbox and say which came up (run by ``layers()`` in a child)."""
    out = {"platform": sys.platform, "kernel": os.uname().release, "uid": os.getuid()}
    if not sys.platform.startswith("linux"):
        return out
    out["landlock_abi"] = landlock_abi()
    ns = {}
    for user in ((False, True) if os.getuid() == 0 else (True,)):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:  # each attempt in its own process: unshare changes the caller
            code = 1
            try:
                _enter_namespaces({"layers": {"user_namespace": user}})
                code = 0
            except BaseException:  # noqa: BLE001
                pass
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            ns = {"namespaces": True, "user_namespace": user}
            break
    out["namespaces"] = bool(ns)
    out["user_namespace"] = bool(ns.get("user_namespace"))
    # Now the whole path once, each layer optional: the worker reports what it managed.
    import tempfile
    box = tempfile.mkdtemp(prefix="minilstm-sandbox-probe-")
    with open(os.path.join(box, "given"), "w") as f:
        f.write("x")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        report = {}
        try:
            if ns:
                _enter_namespaces({"layers": ns})
            child = os.fork()
            if child == 0:
                report.update(_probe_inside(ns, box))
                os.write(write_end, json.dumps(report).encode())
                os._exit(0)
            os.waitpid(child, 0)
        except BaseException as exc:  # noqa: BLE001
            os.write(write_end, json.dumps({"error": str(exc)}).encode())
        os._exit(0)
    os.close(write_end)
    data = b""
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    import shutil
    shutil.rmtree(box, ignore_errors=True)
    try:
        out.update(json.loads(data or b"{}"))
    except ValueError:
        pass
    return out


def _probe_inside(ns: dict, box: str | None) -> dict:
    """In the would-be pid 1: each layer tried, and checked (``box``: an empty folder to mount a tmpfs on)."""
    got = {}

    def attempt(name, fn):
        try:
            result = fn()
            got[name] = True if result is None else result
        except BaseException as exc:  # noqa: BLE001
            got[name] = False
            got[name + "_why"] = f"{type(exc).__name__}: {exc}"

    if ns:
        got["pid_namespace"] = os.getpid() == 1
        attempt("mounts", _private_mounts)
    if got.get("mounts"):
        attempt("proc", lambda: _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount /proc"))
        if _kernel_release() >= PID_MAX_PER_NAMESPACE and got.get("proc"):
            def pid_max():
                with open("/proc/sys/kernel/pid_max", "w") as f:
                    f.write(str(PID_MAX_MIN))
                with open("/proc/sys/kernel/pid_max") as f:
                    return int(f.read()) == PID_MAX_MIN
            attempt("pid_max", pid_max)
        else:  # before 6.14 pid_max is one number for the whole machine: never written
            got["pid_max"] = False
            got["pid_max_why"] = (f"Linux {os.uname().release}: pid_max is per PID namespace from "
                                  f"{'.'.join(map(str, PID_MAX_PER_NAMESPACE))}" if got.get("proc") else "no /proc")
        if box:
            attempt("private_box", lambda: _probe_private_box(box))
        attempt("readonly_mounts", _probe_readonly)
    def privileges():
        _drop_privileges()
        return _capabilities() == 0
    attempt("privileges", privileges)
    abi = landlock_abi()
    if abi:
        def landlock():
            _landlock_restrict([("/dev/null", "device")], abi)
            try:
                with open(HERE, "rb"):
                    return False  # still readable: the rules did nothing
            except PermissionError:
                return True
        attempt("landlock", landlock)
    else:
        got["landlock"] = False
        got["landlock_why"] = "this kernel has no Landlock (Linux >= 5.13 with landlock in the lsm= list)"
    return got


def _probe_private_box(box: str) -> bool:
    _private_box(box, 2**20)
    with open(os.path.join(box, "given")) as f:
        assert f.read() == "x", "the grader's file was not copied in"
    try:
        with open(os.path.join(box, "big"), "wb") as f:
            f.write(b"\0" * 2**21)  # 2 MiB into 1 MiB
    except OSError as exc:
        return exc.errno == errno.ENOSPC
    return False


def _probe_readonly():
    _readonly_everything_but([])
    try:
        os.utime("/", None)  # a metadata write: refused on a read-only mount, whoever we are
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return True
        raise
    return False


def main(argv=None) -> int:
    """``SPEC``: run the part it describes, confined; ``--probe``: print which layers work here (JSON)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--probe"]:
        sys.stdout.write(json.dumps(_probe()))
        return 0
    if len(argv) == 1 and not argv[0].startswith("-"):
        with open(argv[0]) as f:
            spec = json.load(f)
        return _launch(spec)
    _say("usage: launcher.py SPEC | --probe (started by minilstm grade; to list this machine's layers, run "
         "python -m minilstm.classroom.sandbox)")
    return 2


if __name__ == "__main__":
    sys.exit(main())
