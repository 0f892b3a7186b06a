"""The seccomp filter every sandbox child loads last: the kernel surface it may not touch.

The child is arbitrary native code on the host kernel; these are the system calls behind
recent privilege escalations (a user namespace gives namespaced admin capabilities, the way
into nf_tables and similar) and those a numeric program never needs. Each is refused with
EPERM (clone3 with ENOSYS, so that glibc falls back to clone, whose flags a filter can
read); a system call of another architecture (32-bit `int 0x80` on x86-64, x32) kills the
process. Everything else is allowed: numba's JIT (mmap/mprotect with PROT_EXEC), threads,
fork, and send/recv on sockets the child was handed.

libseccomp (through the `pyseccomp` ctypes binding) writes the BPF program once, in the fork
server; each child loads those bytes with one prctl(2). Stdlib and ctypes only at import
time (the server imports this before its children exist; pyseccomp is imported on demand).
"""

from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)

_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2

# Every namespace a clone/unshare flag can create (CLONE_NEWTIME, 0x80, only through unshare
# and clone3: in clone(2)'s flags those bits are the exit signal).
_CLONE_NEWNS, _CLONE_NEWCGROUP, _CLONE_NEWUTS, _CLONE_NEWIPC = (
    0x20000,
    0x2000000,
    0x4000000,
    0x8000000,
)
_CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
CLONE_NAMESPACES = (
    _CLONE_NEWNS
    | _CLONE_NEWCGROUP
    | _CLONE_NEWUTS
    | _CLONE_NEWIPC
    | _CLONE_NEWUSER
    | _CLONE_NEWPID
    | _CLONE_NEWNET
)

# The refused families, as listed in docs/sandbox.md and tested one by one in
# tests/sandbox/test_seccomp.py.
REFUSED: dict[str, tuple[str, ...]] = {
    "namespaces": ("unshare", "setns"),
    "mounts": (
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "open_tree",
        "move_mount",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
    ),
    "tracing": ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp"),
    "bpf and perf": ("bpf", "perf_event_open"),
    "userfaultfd": ("userfaultfd",),
    "io_uring": ("io_uring_setup", "io_uring_enter", "io_uring_register"),
    "keys": ("keyctl", "add_key", "request_key"),
    "kernel images and modules": (
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
    ),
    "file handles": ("name_to_handle_at", "open_by_handle_at"),
    "system-wide state": ("acct", "swapon", "swapoff", "reboot", "syslog", "quotactl"),
}
# personality(2) only as the query (0xffffffff) and the default Linux persona (0): no
# READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE or MMAP_PAGE_ZERO.
PERSONALITY_ALLOWED = (0x0, 0xFFFFFFFF)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def build() -> bytes:
    """The filter's BPF program, written by libseccomp for this machine's architecture.

    Raises OSError (or ImportError when pyseccomp or libseccomp is missing) with the reason.
    """
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError) as exc:  # pyseccomp raises RuntimeError without the .so
        raise ImportError(f"libseccomp is not usable ({exc}); pip install pyseccomp") from None
    f = sc.SyscallFilter(sc.ALLOW)
    # A system call of a non-native architecture (i386 or x32 entry on x86-64) is not checked
    # against the rules below by number, so it is never allowed.
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    eperm = sc.ERRNO(errno.EPERM)
    for names in REFUSED.values():
        for name in names:
            f.add_rule(eperm, name)
    for bit in range(32):
        flag = 1 << bit
        if flag & CLONE_NAMESPACES:
            f.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    # personality(2): the kernel reads 32 bits. A value other than 0 and 0xffffffff has,
    # somewhere around the circle of its bits, a set bit followed by a clear one; one rule per
    # such pair refuses exactly those values (libseccomp takes one test per argument a rule).
    for bit in range(32):
        mask = (1 << bit) | (1 << ((bit + 1) % 32))
        f.add_rule(eperm, "personality", sc.Arg(0, sc.MASKED_EQ, mask, 1 << bit))
    fd = os.memfd_create("evolve-seccomp")
    try:
        with os.fdopen(os.dup(fd), "wb") as out:
            f.export_bpf(out)
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


def load(program: bytes) -> None:
    """Confine this process (and everything it starts) with `program`, for good."""
    if not program or len(program) % 8:
        raise OSError(errno.EINVAL, "seccomp: empty or malformed filter program")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(NO_NEW_PRIVS): {os.strerror(err)}")
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")


def refuses_namespaces() -> bool:
    """True when this process can no longer create a namespace (the filter is in force)."""
    ret = _libc.unshare(ctypes.c_int(_CLONE_NEWUTS))
    return ret != 0 and ctypes.get_errno() == errno.EPERM
