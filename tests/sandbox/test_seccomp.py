"""Red team for the seccomp filter: each refused family of system calls, and what stays allowed.

The same probe runs in two places: in a sandbox child (where most of these calls would also
fail for lack of capabilities) and in a process of this test that holds every capability
(root, or the owner of a fresh user namespace) and then loads the filter, so that a refusal
can only come from the filter. Without the filter that process shows which calls would have
worked (printed, and asserted for the calls that always work with capabilities).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import tempfile
import textwrap

import pytest

from evolve.sandbox import Sandbox, SandboxRequest, _seccomp

sc = pytest.importorskip("pyseccomp", reason="the seccomp filter needs pyseccomp and libseccomp")
ARCH = sc.system_arch()


def nr(name: str) -> int:
    return sc.resolve_syscall(ARCH, name)


# One attempt per refused system call: (family, name, args). Pointers are NULL or point at
# harmless paths; with capabilities and no filter, several of these succeed.
NOWHERE = "/nonexistent-evolve-seccomp"
CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWNS = 0x10000000, 0x40000000, 0x04000000, 0x20000
ATTEMPTS = [
    ("namespaces", "unshare", [CLONE_NEWUTS]),
    ("namespaces", "setns", [0, 0]),
    ("namespaces", "clone", [CLONE_NEWUSER | 17, 0, 0, 0, 0]),  # 17: SIGCHLD
    ("mounts", "mount", ["none", "TARGET", "tmpfs", 0, 0]),
    ("mounts", "umount2", [NOWHERE, 0]),
    ("mounts", "pivot_root", [NOWHERE, NOWHERE]),
    ("mounts", "chroot", [NOWHERE]),
    ("mounts", "open_tree", [-100, "/", 1]),  # AT_FDCWD, OPEN_TREE_CLONE
    ("mounts", "move_mount", [-1, "", -1, "", 0]),
    ("mounts", "fsopen", ["tmpfs", 0]),
    ("mounts", "fsconfig", [-1, 0, 0, 0, 0]),
    ("mounts", "fsmount", [-1, 0, 0]),
    ("mounts", "fspick", [-100, "/", 0]),
    ("mounts", "mount_setattr", [-1, "", 0, 0, 0]),
    ("tracing", "ptrace", [0, 0, 0, 0]),  # PTRACE_TRACEME (in a throw-away process)
    ("tracing", "process_vm_readv", ["PID", 0, 0, 0, 0, 0]),
    ("tracing", "kcmp", ["PID", "PID", 0, 0, 0]),
    ("bpf and perf", "bpf", [0, 0, 0]),
    ("bpf and perf", "perf_event_open", [0, 0, -1, -1, 0]),
    ("userfaultfd", "userfaultfd", [1]),  # UFFD_USER_MODE_ONLY
    ("io_uring", "io_uring_setup", [1, 0]),
    ("io_uring", "io_uring_enter", [-1, 0, 0, 0, 0, 0]),
    ("io_uring", "io_uring_register", [-1, 0, 0, 0]),
    ("keys", "keyctl", [0, -3, 0]),  # KEYCTL_GET_KEYRING_ID of the session keyring
    ("keys", "add_key", [0, 0, 0, 0, 0]),
    ("keys", "request_key", [0, 0, 0, 0]),
    ("kernel images and modules", "kexec_load", [0, 0, 0, 0]),
    ("kernel images and modules", "kexec_file_load", [-1, -1, 0, 0, 0]),
    ("kernel images and modules", "init_module", [0, 0, 0]),
    ("kernel images and modules", "finit_module", [-1, "", 0]),
    ("kernel images and modules", "delete_module", ["evolve_nonexistent", 0]),
    ("personality", "personality", [0x0400000]),  # READ_IMPLIES_EXEC
    ("file handles", "name_to_handle_at", [-100, ".", 0, 0, 0]),
    ("file handles", "open_by_handle_at", [-1, 0, 0]),
    ("system-wide state", "acct", [NOWHERE]),
    ("system-wide state", "swapon", [NOWHERE, 0]),
    ("system-wide state", "reboot", [0, 0, 0, 0]),  # wrong magic: never reboots
    ("system-wide state", "syslog", [10, 0, 0]),  # SYSLOG_ACTION_SIZE_BUFFER
    ("system-wide state", "quotactl", [0, 0, 0, 0]),
]
# With capabilities and no filter, these always succeed (or fail with something else than EPERM).
WORK_WITH_CAPABILITIES = {"unshare", "clone", "open_tree", "fsopen", "personality", "ptrace"}

# Runs in the sandbox child and in the test's own process: returns {name: [ret, errno]}.
PROBE = textwrap.dedent("""
    import ctypes, os

    def attempt(calls, target):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        out = {}
        for family, name, number, args in calls:
            vals = []
            for a in args:
                if a == "TARGET":
                    a = target
                elif a == "PID":
                    a = os.getpid()
                vals.append(ctypes.c_char_p(a.encode()) if isinstance(a, str) else ctypes.c_long(a))
            r, w = os.pipe()
            pid = os.fork()  # each attempt in a throw-away process (ptrace, clone, personality)
            if pid == 0:
                ctypes.set_errno(0)
                ret = libc.syscall(ctypes.c_long(number), *vals)
                if ret == 0 and name == "clone":
                    os._exit(0)  # the new process itself
                os.write(w, f"{ret} {ctypes.get_errno()}".encode())
                os._exit(0)
            os.close(w)
            data = os.read(r, 100).decode().split()
            os.close(r)
            os.waitpid(pid, 0)
            out[name] = [int(data[0]), int(data[1])]
        return out
""")


def _calls() -> list[tuple[str, str, int, list]]:
    return [(family, name, nr(name), args) for family, name, args in ATTEMPTS]


def _own_process(load_filter: bool, target: str) -> dict:
    """Run the probe in a forked process that holds every capability, with or without the
    filter; inside a mount namespace of its own, so a mount that works changes nothing here."""
    program = _seccomp.build()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            root = os.geteuid() == 0
            uid, gid = os.getuid(), os.getgid()
            flags = CLONE_NEWNS if root else CLONE_NEWNS | CLONE_NEWUSER
            if libc.unshare(ctypes.c_int(flags)) != 0:
                raise OSError(ctypes.get_errno(), "unshare")  # no user namespaces here
            if not root:  # mapped, so that it may create namespaces in its turn
                for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1")):
                    with open(f"/proc/self/{name}", "w") as f:
                        f.write(text)
                with open("/proc/self/gid_map", "w") as f:
                    f.write(f"{gid} {gid} 1")
            libc.mount(None, b"/", None, 0x4000 | 0x40000, None)  # MS_REC | MS_PRIVATE
            if load_filter:
                _seccomp.load(program)
            ns: dict = {}
            exec(PROBE, ns)
            os.write(w, json.dumps(ns["attempt"](_calls(), target)).encode())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            os.write(w, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def _expected(name: str) -> int:
    return errno.ENOSYS if name == "clone3" else errno.EPERM


def test_the_filter_refuses_every_family_even_with_capabilities():
    with tempfile.TemporaryDirectory() as target:
        without = _own_process(False, target)
        with_filter = _own_process(True, target)
    if os.geteuid() != 0 and "unshare" in without.get("error", ""):
        pytest.skip(f"needs root or unprivileged user namespaces: {without['error']}")
    print("without the filter:", without)
    print("with the filter:   ", with_filter)
    assert "error" not in without and "error" not in with_filter, (without, with_filter)
    for name in WORK_WITH_CAPABILITIES:
        assert without[name][1] != errno.EPERM, (name, without[name])
    refused = {name: v for name, v in with_filter.items() if v != [-1, _expected(name)]}
    assert refused == {}, refused
    families = {family for family, _, _ in ATTEMPTS}
    assert families >= set(_seccomp.REFUSED) | {"personality"}
    print(f"{len(ATTEMPTS)} system calls in {len(families)} families refused")


def _run(code: str, **kw) -> object:
    with Sandbox(preload=("numpy",)) as sb:
        if not sb.features.get("seccomp"):
            pytest.fail(f"no seccomp filter: {sb.features.get('problems')}")
        return sb.run(SandboxRequest(code, time_s=20, **kw))


def test_a_child_is_refused_every_family():
    code = PROBE + textwrap.dedent(f"""
        def solve():
            got = attempt({_calls()!r}, "/tmp")
            print(got)
            return {{"ret": [v[0] for v in got.values()], "errno": [v[1] for v in got.values()]}}
    """)
    res = _run(code)
    assert res.status == "ok", res
    names = [name for _, name, _ in ATTEMPTS]
    pairs = zip(res.outputs["ret"].tolist(), res.outputs["errno"].tolist(), strict=True)
    got = dict(zip(names, pairs, strict=True))
    wrong = {n: v for n, v in got.items() if v != (-1, _expected(n))}
    assert wrong == {}, wrong


def test_nested_user_namespace_and_sethostname_are_refused():
    # The report of issue 13: as root with every layer on, this succeeded.
    code = textwrap.dedent("""
        import ctypes, socket
        def solve():
            libc = ctypes.CDLL(None, use_errno=True)
            ret = libc.unshare(ctypes.c_int(0x10000000 | 0x40000000 | 0x04000000))
            err = ctypes.get_errno()
            try:
                socket.sethostname("pwned")
                named = 1
            except OSError:
                named = 0
            return {"h": [ret, err, named]}
    """)
    res = _run(code)
    assert res.status == "ok" and res.outputs["h"].tolist() == [-1, errno.EPERM, 0], res


def test_clone3_says_enosys_so_that_threads_and_processes_still_start():
    code = textwrap.dedent("""
        import ctypes, os, subprocess, threading
        def solve():
            libc = ctypes.CDLL(None, use_errno=True)
            args = (ctypes.c_uint64 * 8)(0x10000000, 0, 0, 0, 17, 0, 0, 0)  # CLONE_NEWUSER
            ret = libc.syscall(ctypes.c_long(NR), ctypes.byref(args), ctypes.c_size_t(64))
            err = ctypes.get_errno()
            if ret == 0:
                os._exit(0)
            box = []
            t = threading.Thread(target=box.append, args=(7,))
            t.start()
            t.join()
            pid = os.fork()
            if pid == 0:
                os._exit(3)
            _, status = os.waitpid(pid, 0)
            spawned = subprocess.run(["/bin/true"]).returncode if os.path.exists("/bin/true") else 0
            return {"h": [ret, err, box[0], os.waitstatus_to_exitcode(status), spawned]}
    """).replace("NR", str(nr("clone3")))
    res = _run(code)
    assert res.status == "ok", res
    assert res.outputs["h"].tolist() == [-1, errno.ENOSYS, 7, 3, 0], res


@pytest.mark.skipif(platform.machine() != "x86_64", reason="32-bit entry exists on x86-64 only")
def test_a_32_bit_system_call_kills_the_child():
    # mov eax, 20 (getpid in the i386 table); int 0x80; ret
    code = textwrap.dedent("""
        import ctypes, mmap
        def solve():
            page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            page.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]))
            addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
            return {"h": [ctypes.CFUNCTYPE(ctypes.c_long)(addr)()]}
    """)
    res = _run(code)
    assert res.status == "crash" and "SIGSYS" in res.error, res


def test_numba_jit_and_messages_on_a_handed_socket_still_work():
    code = textwrap.dedent("""
        import array, os, socket
        import numba
        @numba.njit(cache=False)
        def total(n):
            s = 0.0
            for i in range(n):
                s += i
            return s
        def solve():
            a, b = socket.socketpair()
            r, w = os.pipe()
            socket.send_fds(a, [b"frame"], [w])
            msg, fds, _, _ = socket.recv_fds(b, 100, 1)
            os.write(fds[0], b"x")
            a.sendto(b"y", b.getsockname()) if a.type == socket.SOCK_DGRAM else a.sendall(b"y")
            return {"h": [total(10), float(msg == b"frame"), float(os.read(r, 1) == b"x"),
                          float(b.recvfrom(1)[0] == b"y")]}
    """)
    with Sandbox(preload=("numpy", "numba")) as sb:
        assert sb.features.get("seccomp"), sb.features
        res = sb.run(SandboxRequest(code, time_s=60))
    assert res.status == "ok" and res.outputs["h"].tolist() == [45.0, 1.0, 1.0, 1.0], res
