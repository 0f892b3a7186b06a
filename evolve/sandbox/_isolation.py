"""Kernel isolation for one sandbox child: namespaces, Landlock, a private uid, rlimits.

Runs inside the fork server (stdlib and ctypes only, no evolve imports). Python 3.11 has no
os.unshare, so namespaces come from a raw clone(2) through libc, which also puts the child
into a fresh PID namespace without a second fork. Every step reports whether it worked, so
the server can say once which layers are unavailable on this kernel.
"""

from __future__ import annotations

import ctypes
import glob
import itertools
import os
import resource
import signal
import site
import sys
import sysconfig

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# x86_64 / aarch64 syscall numbers (Landlock numbers are the same on every architecture).
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT = 428, 429  # also the same everywhere (Linux >= 5.2)
_AT_FDCWD, _AT_RECURSIVE, _OPEN_TREE_CLONE, _MOVE_MOUNT_F_EMPTY_PATH = -100, 0x8000, 1, 0x4

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 1, 2, 4, 0x4000, 0x40000
_MS_REMOUNT, _MS_BIND = 32, 4096
_PR_SET_PDEATHSIG, _PR_SET_KEEPCAPS, _PR_SET_NO_NEW_PRIVS, _PR_SET_DUMPABLE = 1, 8, 38, 4

# Landlock access rights (see linux/landlock.h); which of them exist depends on the ABI version.
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_ALL_V1 = (1 << 13) - 1
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV


class IsolationError(OSError):
    """A layer that should work failed; the message names the step."""


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise IsolationError(err, f"{what}: {os.strerror(err)}")
    return ret


# --- processes and namespaces ---------------------------------------------------------------
def clone(flags: int) -> int:
    """fork(2) with namespace flags: returns 0 in the child, the child's pid in the parent.

    With flags == 0 this is os.fork(). The raw syscall skips CPython's at-fork hooks, so the
    child calls PyOS_AfterFork_Child itself; the fork server is single-threaded, which is
    what makes that safe.
    """
    if not flags:
        return os.fork()
    if _SYS_CLONE is None:
        raise IsolationError(0, f"clone: unsupported architecture {os.uname().machine}")
    pid = _check(
        _libc.syscall(_SYS_CLONE, ctypes.c_ulong(flags | signal.SIGCHLD), None, None, None, None),
        "clone",
    )
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
    return pid


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (unshare(2); Python 3.11 has no os.unshare)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


# Namespaces the fork server enters once for all its children, as root: creating a network
# namespace costs about a millisecond per clone(2), and an empty one holds nothing that
# outlives the one child running in it at a time. Children still get their own PID, mount
# and IPC namespaces (SysV shared memory outlives processes, so it must not be shared).
SERVER_SHARED = CLONE_NEWNET | CLONE_NEWUTS


def namespace_flags(root: bool) -> int:
    """Namespaces a child gets: its own PID, network, mount, IPC and hostname namespaces."""
    flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
    return flags if root else flags | CLONE_NEWUSER


def map_user_namespace(outer_uid: int, outer_gid: int) -> None:
    """In a fresh user namespace (non-root runs), map the one outer uid to itself."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{outer_uid} {outer_uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{outer_gid} {outer_gid} 1")


def die_with_parent() -> None:
    """SIGKILL this process (and so its whole PID namespace) if the fork server dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def mount_private_tmp(
    paths: list[str], size_mb: int, uid: int, gid: int, keep: list[str] | None = None
) -> None:
    """Hide each path behind a fresh, size-capped tmpfs in this (new) mount namespace.

    The first path becomes the child's working folder; the others (/run, /dev/shm, ...) are
    covered so that the child cannot reach the unix sockets and files that live there.
    Folders in `keep` (an interpreter or a virtualenv under /tmp) are put back where they were,
    on top of the tmpfs: copies of their mounts are taken before covering (open_tree) and
    attached again after (move_mount). Landlock still decides whether they may be read.
    """
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    kept = []
    try:
        for path in keep or []:
            fd = _libc.syscall(
                _SYS_OPEN_TREE, _AT_FDCWD, path.encode(), _OPEN_TREE_CLONE | _AT_RECURSIVE
            )
            kept.append((path, _check(fd, f"open_tree {path}")))
        for i, path in enumerate(paths):
            size = size_mb if i == 0 else 1
            opts = f"size={size}m,mode=0700,uid={uid},gid={gid}".encode()
            flags = _MS_NOSUID | _MS_NODEV | (0 if i == 0 else _MS_RDONLY)
            _check(
                _libc.mount(b"tmpfs", path.encode(), b"tmpfs", flags, opts),
                f"mount tmpfs on {path}",
            )
        for path, fd in kept:
            os.makedirs(path, mode=0o755, exist_ok=True)
            _check(
                _libc.syscall(
                    _SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, path.encode(), _MOVE_MOUNT_F_EMPTY_PATH
                ),
                f"move_mount {path}",
            )
            # Read-only here: it lies beneath the working folder, which Landlock lets it write.
            _check(
                _libc.mount(None, path.encode(), None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None),
                f"remount {path} read-only",
            )
    finally:
        for _, fd in kept:
            os.close(fd)


# --- Landlock --------------------------------------------------------------------------------
class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 where Landlock is missing or disabled."""
    ret = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(0, int(ret))


_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR


class ReadRules(list):
    """Read rules made ready once, in the server: (path, rights) pairs for landlock_restrict."""


def read_rules(paths: list[str]) -> ReadRules:
    """`paths` as read rules (a file gets only the rights that apply to files)."""
    return ReadRules(
        (os.fsencode(p), _READ if os.path.isdir(p) else _READ & _FILE_RIGHTS)
        for p in paths
        if os.path.exists(p)
    )


def _prepared(paths: list[str], access: int) -> list[tuple[bytes, int]]:
    return [(os.fsencode(p), access if os.path.isdir(p) else access & _FILE_RIGHTS) for p in paths]


def landlock_restrict(read_paths: list[str] | ReadRules, write_paths: list[str], abi: int) -> None:
    """Confine this process: read (and execute) only `read_paths`, write only `write_paths`.

    From ABI 4 on, TCP bind/connect are denied too; from ABI 6 on, signals and abstract unix
    sockets cannot reach any process outside the sandbox.
    """
    fs = _FS_ALL_V1
    if abi >= 2:
        fs |= _FS_REFER
    if abi >= 3:
        fs |= _FS_TRUNCATE
    if abi >= 5:
        fs |= _FS_IOCTL_DEV
    attr = _RulesetAttr(fs, 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        size = 24
    ruleset = _check(
        _libc.syscall(
            _SYS_LANDLOCK_CREATE_RULESET,
            ctypes.byref(attr),
            ctypes.c_size_t(size),
            ctypes.c_uint32(0),
        ),
        "landlock_create_ruleset",
    )
    try:
        reads = read_paths if isinstance(read_paths, ReadRules) else _prepared(read_paths, _READ)
        rules = itertools.chain(reads, _prepared(write_paths, fs))
        # Hundreds of read rules: one rule structure, no per-path Python objects, so a forked
        # child does not pay for copying pages it would touch otherwise.
        rule = _PathBeneathAttr(0, 0)
        ref = ctypes.byref(rule)
        add_rule, opened = _libc.syscall, os.open
        flags = os.O_PATH | os.O_CLOEXEC
        for path, allowed in rules:
            try:
                fd = opened(path, flags)
            except OSError:
                continue  # a path that does not exist needs no rule
            try:
                rule.allowed_access = allowed
                rule.parent_fd = fd
                if add_rule(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ref, 0) < 0:
                    _check(-1, f"landlock_add_rule {path!r}")
            finally:
                os.close(fd)
        _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        _check(
            _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)),
            "landlock_restrict_self",
        )
    finally:
        os.close(ruleset)


# --- privileges and limits -------------------------------------------------------------------
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _capset(bits: int) -> None:
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)(_CapData(bits, bits, 0), _CapData(0, 0, 0))
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)), "capset")


def drop_privileges(uid: int, gid: int, root_file_owner: bool) -> None:
    """Become `uid` with no capabilities: it owns no other process and counts its own forks.

    With `root_file_owner` (only ever together with Landlock, which decides what may be read
    and written) file access still checks as the file owner root, so an interpreter installed
    under a private home (/root/.pyenv) stays importable. Signals, RLIMIT_NPROC and ptrace all
    see the unprivileged uid.
    """
    os.setgroups([])
    if root_file_owner:
        _libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if root_file_owner:
        _capset(1 << 7)  # CAP_SETUID, just long enough to set the filesystem uid
        _libc.setfsuid(0)
        _libc.prctl(_PR_SET_KEEPCAPS, 0, 0, 0, 0)
    drop_capabilities()


def drop_capabilities() -> None:
    """Give up every capability (for a non-root run, those of the user namespace it created)
    and never gain any again."""
    _capset(0)
    _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def set_limits(
    *,
    cpu_s: float | None = None,
    address_space: int | None = None,
    file_bytes: int | None = None,
    open_files: int | None = None,
    processes: int | None = None,
) -> None:
    """Lower this process's rlimits (soft = hard, so the child cannot raise them again)."""
    if cpu_s is not None:
        cpu = max(1, int(cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    for which, value in (
        (resource.RLIMIT_AS, address_space),
        (resource.RLIMIT_FSIZE, file_bytes),
        (resource.RLIMIT_NOFILE, open_files),
        (resource.RLIMIT_NPROC, processes),
        (resource.RLIMIT_CORE, 0),
    ):
        if value is not None:
            resource.setrlimit(which, (int(value), int(value)))


def _package_folders(hidden: list[str]) -> set[str]:
    """Every folder of installed packages (site-packages, dist-packages) and `hidden`, resolved."""
    found = {p for p in hidden if p}
    found.update(site.getsitepackages())
    found.add(site.getusersitepackages())
    stdlib = {os.path.realpath(sysconfig.get_path(k)) for k in ("stdlib", "platstdlib")}
    for p in sys.path:
        # Anything on sys.path beside the standard library is an installed package's (an
        # editable install puts the project folder there).
        real = os.path.realpath(p) if p else ""
        if (
            real
            and os.path.isdir(real)
            and not any(real == s or real.startswith(s + "/lib-dynload") for s in stdlib)
        ):
            found.add(real)
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr", "/usr/local"}:
        for pattern in (
            "lib*/python3*/site-packages",
            "lib*/python3*/dist-packages",
            "lib/python3/dist-packages",
        ):
            found.update(glob.glob(os.path.join(base, pattern)))
    return {os.path.realpath(p) for p in found}


def _beneath(path: str, hide: set[str], out: set[str], seen: set[str]) -> None:
    """Add to `out` the fewest paths that cover `path` but nothing in `hide`.

    Landlock rules grant a whole tree, so a folder that holds a hidden one is replaced by its
    entries, one level at a time down to the hidden folder.
    """
    path = os.path.realpath(path)
    if path in hide or path in seen or not os.path.exists(path):
        return
    seen.add(path)
    if not any(h.startswith(path.rstrip("/") + "/") for h in hide):
        out.add(path)
        return
    try:
        entries = [e.path for e in os.scandir(path)]
    except OSError:
        return
    for entry in entries:
        _beneath(entry, hide, out, seen)


def interpreter_roots() -> list[str]:
    """The folders (and files) of the interpreter, its standard library and the system's
    shared libraries, before installed packages are carved out of them."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    roots.update(("/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/localtime"))
    roots.update(("/dev/zero", "/dev/urandom", "/dev/random"))
    return sorted(roots)


def read_paths_for_interpreter(exposed: list[str] = (), hidden: list[str] = ()) -> list[str]:
    """What a child may read: the interpreter, the standard library, the system's shared
    libraries, and the `exposed` package folders (the preloaded libraries and what they
    import); no other installed package (an installed problem plug-in, the evolve package and
    its problems, their held-out data) and nothing in `hidden`.
    """
    hide = _package_folders(list(hidden))
    out: set[str] = set()
    seen: set[str] = set()
    for root in interpreter_roots():
        _beneath(root, hide, out, seen)
    never = [os.path.realpath(p) for p in hidden if p]
    for path in exposed:
        path = os.path.realpath(path)
        if os.path.exists(path) and not any(path == h or path.startswith(h + "/") for h in never):
            out.add(path)
    return sorted(out)


def package_paths(modules: list[object]) -> list[str]:
    """The top-level folders (or single files) of installed packages that `modules` came from,
    with the `NAME.libs` folder beside each where its wheel keeps vendored shared libraries."""
    sites = sorted(_package_folders([]), key=len, reverse=True)
    out: set[str] = set()
    for module in modules:
        file = getattr(module, "__file__", None)
        if not isinstance(file, str):
            continue
        file = os.path.realpath(file)
        for site_dir in sites:
            if file.startswith(site_dir + "/"):
                top = os.path.join(site_dir, file[len(site_dir) + 1 :].split("/")[0])
                out.add(top)
                name = os.path.basename(top).split(".")[0]
                libs = os.path.join(site_dir, name + ".libs")
                if os.path.isdir(libs):
                    out.add(libs)
                break
    return sorted(out)
