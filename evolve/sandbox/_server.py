"""The fork server: a single-threaded process that forks one isolated child per request.

Started by evolve.sandbox.runner as `python -I -B _server.py CONFIG_JSON` with a scrubbed
environment. It imports numpy and numba once, then keeps two children forked ahead of time,
already inside its namespaces, Landlock domain and private uid, waiting for its request; so a
request pays for a pipe write, not for a fork. It never runs candidate code itself.

Protocol on stdin/stdout, data only (never pickle):
  hello   server -> client: one JSON line {"hello": 1, "features": {...}}
  request client -> server: one JSON line (code, entrypoint, harness, inputs, limits). For an
          online request ("online" set) the client first sends, on the control socket, the
          child's end of a socket pair over which the client itself feeds the items: the
          server passes it on to the child and never reads from it.
  reply   server -> client: one JSON line with the lengths of the stdout tail, stderr tail and
          the child's raw reply, followed by exactly those bytes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

_STARTUP_MODULES = set(sys.modules)  # the interpreter's own: a child need not read their files
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import _child  # noqa: E402
import _isolation as iso  # noqa: E402
import _seccomp  # noqa: E402

sys.path.remove(_HERE)

TAIL_BYTES = 4000
IDLE_S = 0.002  # a request arriving within this of the last reply is "back to back"
_MASKED_DIRS = ("/run", "/var/run", "/dev/shm", "/var/tmp")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A forked child: its pid and the server's ends of its four pipes."""

    pid: int
    req_w: int
    res_r: int
    out_r: int
    err_r: int
    pidfd: int
    workdir: str


@dataclass
class Config:
    """What the client asked for when it started the server."""

    preload: list[str] = field(default_factory=lambda: ["numpy", "numba"])
    strict: bool = False
    read_paths: list[str] = field(default_factory=list)
    # Modules whose installed packages a child may read (the Sandbox's full preload, so a
    # child of the numpy-only server can still import numba), and folders it must never read.
    expose: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    disk_mb: int = 256
    max_log_bytes: int = 4 * 1024 * 1024
    spares: int = 2
    control_fd: int | None = None  # a unix socket on which online requests' channels arrive


class Server:
    """Owns the spare children and answers requests one at a time."""

    def __init__(self, config: Config, exposed: list[str] = ()) -> None:
        self.config = config
        self.root = os.geteuid() == 0
        # Read here, before any clone: inside a fresh user namespace getuid() is the overflow
        # uid (65534) until the map is written.
        self.outer_uid, self.outer_gid = os.getuid(), os.getgid()
        self.pid = os.getpid()  # the server's; inside a child's PID namespace getpid() is 1
        self.seq = 0
        # Children forked ahead, oldest first. Two, so that back-to-back requests find one
        # already isolated while the server forks the replacement of the one just used.
        self.spares: list[Child] = []
        self.dying: list[tuple[int, int]] = []  # (pid, pidfd) killed and not yet reaped
        self.features: dict[str, object] = {}
        self.flags = 0
        # Working folders live here only when there is no private /tmp (no mount namespace).
        self.base = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"evolve-sandbox-{os.getpid()}")
        self.read_paths = iso.read_paths_for_interpreter(exposed, config.hidden)
        self.read_paths += list(config.read_paths)
        # What must be attached back when it lives under the child's private /tmp: whole
        # folders (Landlock, not the mount, decides what in them may be read).
        keep = {
            os.path.realpath(p) for p in (*iso.interpreter_roots(), *exposed, *config.read_paths)
        }
        keep = {p for p in keep if p.startswith("/tmp/") and os.path.exists(p)}
        self.keep = sorted(p for p in keep if not any(p.startswith(q + "/") for q in keep))
        # A Landlock rule on a folder covers every mount beneath it: with folders attached
        # back under the private /tmp, the child's working folder is a folder of its own
        # beside them, or it could read all of them (a virtualenv's site-packages).
        self.private_dir = "/tmp/work" if self.keep else "/tmp"
        self.landlock_abi = iso.landlock_abi()
        self.read_rules = iso.read_rules(self.read_paths)
        # Written once here by libseccomp; every child loads the same bytes last in _isolate.
        self.seccomp_program, self.seccomp_error = b"", ""
        try:
            self.seccomp_program = _seccomp.build()
        except (ImportError, OSError) as exc:
            self.seccomp_error = str(exc)
        self.vm_base = 0
        self.dying_dirs: list[str] = []

    # --- probing ------------------------------------------------------------------------------
    def probe(self) -> None:
        """Find out which layers this kernel allows, by forking one throw-away child per try."""
        shared = 0
        if self.root:
            try:
                iso.unshare(iso.SERVER_SHARED)
                shared = iso.SERVER_SHARED
            except OSError:
                pass  # each child then asks for its own (and says so if the kernel refuses)
        candidates = [iso.namespace_flags(self.root) & ~shared, 0]
        failures = []
        for flags in candidates:
            self.flags = flags
            report = self._probe_child()
            if report.get("ok"):
                break
            failures.append(report.get("error", "probe failed"))
        self.features = {
            "pid_namespace": bool(self.flags & iso.CLONE_NEWPID),
            "network_namespace": bool((self.flags | shared) & iso.CLONE_NEWNET),
            "mount_namespace": bool(report.get("mount")),
            "user_namespace": bool(self.flags & iso.CLONE_NEWUSER),
            "landlock": self.landlock_abi if report.get("landlock") else 0,
            "private_uid": bool(report.get("uid")),
            "seccomp": bool(report.get("seccomp")),
            "problems": report.get("problems", []),
        }
        if failures and self.flags == 0:
            self.features["problems"].insert(0, f"no namespaces ({failures[0]})")
        if not report.get("ok"):
            self.features["problems"] = failures

    def _probe_child(self) -> dict:
        r, w = os.pipe()
        try:
            pid = iso.clone(self.flags)
        except OSError as exc:
            os.close(r)
            os.close(w)
            return {"ok": False, "error": f"clone: {exc}"}
        if pid == 0:
            report: dict[str, object] = {"ok": True, "problems": []}
            try:
                os.close(r)
                workdir = self._isolate(report, self.seq, probe=True)
                with open(os.path.join(workdir, "probe"), "w") as f:
                    f.write("x")
                if report.get("landlock"):
                    try:
                        os.listdir(os.path.dirname(_HERE))
                        report["problems"].append("Landlock did not hide the evolve package")
                        report["landlock"] = False
                    except (PermissionError, FileNotFoundError):
                        pass  # hidden: by Landlock, or by the private /tmp when it lives there
                if report.get("seccomp") and not _seccomp.refuses_namespaces():
                    report["problems"].append("the seccomp filter let a namespace be created")
                    report["seccomp"] = False
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            os.write(w, json.dumps(report).encode())
            os._exit(0)
        os.close(w)
        data = _read_all(r)
        os.waitpid(pid, 0)
        try:
            return json.loads(data or b"{}")
        except ValueError:
            return {"ok": False, "error": "probe child sent no report"}

    # --- the child's side ----------------------------------------------------------------------
    def _uid(self, seq: int) -> int:
        # One unprivileged uid per live child: RLIMIT_NPROC then counts only its own processes,
        # and it owns no other process it could signal.
        return 2_000_000 + (self.pid % 1_000_000) * 64 + seq % 64

    def _isolate(self, report: dict, seq: int, probe: bool = False) -> str:
        """In the new child: namespaces, private /tmp, Landlock, uid. Returns the workdir."""
        os.setsid()
        iso.die_with_parent()
        uid = gid = self._uid(seq)
        in_userns = bool(self.flags & iso.CLONE_NEWUSER)
        if in_userns:
            # Not root: a user namespace of its own, where it is still the calling user (and
            # has capabilities only until drop_capabilities below).
            iso.map_user_namespace(self.outer_uid, self.outer_gid)
            owner, owner_gid = self.outer_uid, self.outer_gid
        else:
            # With Landlock the child's file accesses check as root (see drop_privileges), so
            # root owns its folder; without it, the child's own uid does.
            owner = owner_gid = 0 if self.landlock_abi > 0 else uid
        workdir = os.path.join(self.base, f"c{seq}")
        if (
            self.flags & iso.CLONE_NEWNS
            and (self.root or in_userns)
            and (probe or self.features.get("mount_namespace"))
        ):
            try:
                masked = [d for d in _MASKED_DIRS if os.path.isdir(d) and not os.path.islink(d)]
                masked = [
                    d for d in masked if not any(p.startswith(d + "/") for p in self.read_paths)
                ]
                iso.mount_private_tmp(
                    ["/tmp", *masked], self.config.disk_mb, owner, owner_gid, keep=self.keep
                )
                if self.private_dir != "/tmp":
                    os.mkdir(self.private_dir, 0o700)
                    os.chown(self.private_dir, owner, owner_gid)
                workdir = self.private_dir
                report["mount"] = True
            except OSError as exc:
                report["problems"].append(f"private /tmp: {exc}")
        if not report.get("mount"):
            os.makedirs(self.base, mode=0o711, exist_ok=True)
            os.makedirs(workdir, mode=0o700, exist_ok=True)
            if self.root:
                os.chown(workdir, owner, owner)
        os.chdir(workdir)
        use_landlock = self.landlock_abi > 0 and (probe or self.features.get("landlock"))
        if use_landlock:
            try:
                iso.landlock_restrict(self.read_rules, [workdir, "/dev/null"], self.landlock_abi)
                report["landlock"] = True
            except OSError as exc:
                report["problems"].append(f"Landlock: {exc}")
                use_landlock = False
        elif self.landlock_abi == 0:
            report["problems"].append("Landlock is not available in this kernel")
        if self.root and (probe or self.features.get("private_uid")):
            try:
                iso.drop_privileges(uid, gid, root_file_owner=use_landlock)
                iso.die_with_parent()  # a change of uid clears the parent-death signal
                report["uid"] = True
            except OSError as exc:
                report["problems"].append(f"private uid: {exc}")
        if in_userns:
            try:
                iso.drop_capabilities()
            except OSError as exc:
                report["problems"].append(f"dropping capabilities: {exc}")
        # Last: the layers above need mount, unshare and capset, which the filter refuses.
        if probe or self.features.get("seccomp"):
            try:
                if self.seccomp_error:
                    raise OSError(0, self.seccomp_error)
                _seccomp.load(self.seccomp_program)
                report["seccomp"] = True
            except OSError as exc:
                report["problems"].append(f"seccomp filter: {exc.strerror or exc}")
        return workdir

    def spawn(self) -> Child:
        """Fork the next child; it isolates itself and then waits for its request."""
        self.seq += 1
        seq = self.seq
        # A socket pair rather than a pipe, so that an online request can hand the child its
        # channel (SCM_RIGHTS) together with the request.
        req_r, req_w = (sk.detach() for sk in socket.socketpair())
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = iso.clone(self.flags)
        if pid == 0:  # the child: never returns
            try:
                self._become_child(seq, req_r, res_w, out_w, err_w)
            finally:
                os._exit(121)
        for fd in (req_r, res_w, out_w, err_w):
            os.close(fd)
        workdir = (
            self.private_dir
            if self.features.get("mount_namespace")
            else os.path.join(self.base, f"c{seq}")
        )
        return Child(pid, req_w, res_r, out_r, err_r, os.pidfd_open(pid), workdir)

    def refill(self) -> None:
        while len(self.spares) < self.config.spares:
            self.spares.append(self.spawn())

    def _become_child(self, seq: int, req_r: int, res_w: int, out_w: int, err_w: int) -> None:
        report: dict = {"problems": []}
        rng = sys.modules.get("numpy.random")
        if rng is not None:
            # Preloaded by the server: its global generator would be the same in every child.
            # Fresh entropy, as a fresh import of numpy.random would draw.
            rng.seed()
        try:
            devnull = os.open("/dev/null", os.O_RDWR)
            for src, dst in ((devnull, 0), (out_w, 1), (err_w, 2), (req_r, 3), (res_w, 4)):
                os.dup2(src, dst)
            os.closerange(5, 65536)
            self._isolate(report, seq)
            if self.config.strict and report["problems"]:
                raise iso.IsolationError(0, "; ".join(report["problems"]))
            _child.warm_up()
            data, fds = _read_request(3)
            request = json.loads(data)
            os.close(3)
            if request.get("online"):
                if len(fds) != 1:
                    raise RuntimeError(f"an online request came with {len(fds)} channels, not 1")
                request["online"]["fd"] = fds[0]
            else:
                for fd in fds:
                    os.close(fd)
        except Exception as exc:  # noqa: BLE001 - no candidate code has run yet
            msg = {"status": "error", "error": f"sandbox setup failed: {type(exc).__name__}: {exc}"}
            os.write(4, json.dumps(msg).encode() + b"\n")
            os._exit(120)
        here = os.getcwd()
        os.environ.update(
            {"HOME": here, "TMPDIR": here, "NUMBA_CACHE_DIR": os.path.join(here, "numba-cache")}
        )
        iso.set_limits(
            cpu_s=float(request["time_s"]),
            address_space=self.vm_base + int(request["memory_mb"]) * 1024 * 1024,
            file_bytes=int(request["max_file_bytes"]),
            open_files=int(request["max_open_files"]),
            # Counted per uid and user namespace: the child's own uid, or its own namespace.
            processes=int(request["max_processes"])
            if self.features.get("private_uid") or self.features.get("user_namespace")
            else None,
        )
        _child.run(request, request.pop("code"), 4)

    # --- the server's side ---------------------------------------------------------------------
    def reap(self, block: bool = False) -> None:
        """Collect children already killed; with `block`, wait for all of them."""
        still = []
        for pid, pidfd in self.dying:
            try:
                done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                os.close(pidfd)
            else:
                still.append((pid, pidfd))
        self.dying = still

    def handle(self, request: dict, burst: bool) -> tuple[dict, bytes, bytes, bytes]:
        channel = self._receive_channel() if request.get("online") else None
        child = self.spares.pop(0) if self.spares else self.spawn()
        payload = json.dumps(request).encode()
        with contextlib.suppress(OSError):  # if the child died waiting, its exit says why
            _send_request(child.req_w, payload, channel)
        if channel is not None:
            os.close(channel)  # the child holds it now; the server never reads it
        os.close(child.req_w)
        t0 = time.monotonic()
        if burst:  # requests back to back: fork the replacement while this child runs
            self.refill()
        deadline = t0 + float(request["time_s"])
        max_result = int(request["max_output_bytes"]) + (1 << 20)
        out, err, res = _Tail(), _Tail(), bytearray()
        end, status, rusage = "", None, None
        poller = select.poll()
        fds = {child.out_r: out, child.err_r: err, child.res_r: None}
        for fd in fds:
            poller.register(fd, select.POLLIN)
        poller.register(child.pidfd, select.POLLIN)
        open_fds = set(fds)
        while not end:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                end = "timeout"
                break
            for fd, _ in poller.poll(remaining * 1000):
                if fd == child.pidfd:
                    end = end or "exited"
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:  # EOF alone ends nothing: the process may still be running
                    poller.unregister(fd)
                    open_fds.discard(fd)
                elif fd == child.res_r:
                    res += chunk
                    if len(res) > max_result:
                        end = "oversize"
                    elif _complete(res):
                        end = "replied"
                else:
                    fds[fd].add(chunk)
                    if out.total + err.total > self.config.max_log_bytes:
                        end = "flood"
        cpu_s, peak_mb = _proc_usage(child.pid)
        has_children = _has_children(child.pid)
        _kill(child.pid)
        if end == "exited" or has_children:
            # Wait for the PID namespace to empty, so nothing the child started outlives the reply.
            _, status, rusage = os.wait4(child.pid, 0)
            os.close(child.pidfd)
            cpu_s = rusage.ru_utime + rusage.ru_stime
            peak_mb = rusage.ru_maxrss / 1024.0
        else:
            self.dying.append((child.pid, child.pidfd))
        for fd in open_fds:  # whatever is still buffered in the pipes
            data = _drain(fd, max_result - len(res) if fd == child.res_r else TAIL_BYTES * 4)
            if fd == child.res_r:
                res += data
            else:
                fds[fd].add(data)
        for fd in fds:
            os.close(fd)
        header = {
            "end": end,
            "wall_s": time.monotonic() - t0,
            "cpu_s": cpu_s,
            "peak_mb": peak_mb,
            "exit_code": os.waitstatus_to_exitcode(status) if status is not None else None,
            "log_bytes": out.total + err.total,
        }
        if not self.features.get("mount_namespace"):
            self.dying_dirs.append(child.workdir)
        return header, out.bytes(), err.bytes(), bytes(res)

    def _receive_channel(self) -> int | None:
        """The child's end of an online request's channel, sent by the client beforehand."""
        if self.config.control_fd is None:
            return None
        ctl = socket.socket(fileno=os.dup(self.config.control_fd))
        try:
            _, fds, _, _ = socket.recv_fds(ctl, 1, 1)
        finally:
            ctl.close()
        return fds[0] if fds else None

    def cleanup_dirs(self) -> None:
        self.reap(block=True)
        for d in self.dying_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.dying_dirs.clear()


class _Tail:
    """The last TAIL_BYTES of a stream, and how much was written in all."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buf += chunk
        if len(self.buf) > 2 * TAIL_BYTES:
            del self.buf[:-TAIL_BYTES]

    def bytes(self) -> bytes:
        return bytes(self.buf[-TAIL_BYTES:])


def _complete(reply: bytearray) -> bool:
    """True once a length-prefixed reply has fully arrived."""
    size, sep, body = bytes(reply[:24]).partition(b"\n")
    return bool(sep) and size.isdigit() and len(reply) - len(size) - 1 >= int(size)


def _kill(pid: int) -> None:
    # The child is PID 1 of its namespace: killing it kills every process inside. The group
    # kill covers kernels without PID namespaces.
    for fn, target in ((os.kill, pid), (os.killpg, pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            fn(target, signal.SIGKILL)


def _proc_usage(pid: int) -> tuple[float, float]:
    """CPU seconds and peak resident MB of a live child, read by us from /proc (not reported)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        with open(f"/proc/{pid}/status") as f:
            hwm = next((line for line in f if line.startswith("VmHWM:")), "VmHWM: 0 kB")
        return cpu, int(hwm.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0


def _has_children(pid: int) -> bool:
    """Whether any thread of the child has child processes (orphans are adopted by a thread)."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                if f.read().strip():
                    return True
        return False
    except OSError:
        return True  # cannot tell: be safe and wait


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _send_request(fd: int, payload: bytes, channel: int | None) -> None:
    """The request, with the online channel (if any) attached to its first bytes; then EOF."""
    sock = socket.socket(fileno=fd)
    try:
        sent = socket.send_fds(sock, [payload], [channel]) if channel is not None else 0
        sock.sendall(payload[sent:])
        sock.shutdown(socket.SHUT_WR)
    finally:
        sock.detach()  # the caller closes the fd


def _read_request(fd: int) -> tuple[bytes, list[int]]:
    """The whole request and any descriptors that came with it (read until EOF)."""
    sock = socket.socket(fileno=fd)
    chunks, fds = [], []
    try:
        while True:
            chunk, got, _, _ = socket.recv_fds(sock, 1 << 20, 4)
            fds.extend(got)
            if not chunk:
                return b"".join(chunks), fds
            chunks.append(chunk)
    finally:
        sock.detach()


def _drain(fd: int, limit: int) -> bytes:
    os.set_blocking(fd, False)
    chunks, n = [], 0
    try:
        while n < limit and (chunk := os.read(fd, 1 << 16)):
            chunks.append(chunk)
            n += len(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)[: max(0, limit)]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Lines:
    """Request lines from the client, with a way to ask whether one is waiting."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def waiting(self, timeout: float) -> bool:
        return bool(self.buf) or bool(select.select([self.fd], [], [], timeout)[0])

    def readline(self) -> bytes:
        while (end := self.buf.find(b"\n")) < 0:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return b""
            self.buf += chunk
        line = bytes(self.buf[: end + 1])
        del self.buf[: end + 1]
        return line


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmSize:"))
    return int(line.split()[1]) * 1024


def _exposed_packages(config: Config, before: set[str]) -> list[str]:
    """The installed package folders the preloaded modules came from, and those that importing
    the other `expose` modules would read (found in a throw-away child that imports them)."""
    loaded = [m for name, m in list(sys.modules.items()) if name not in before]
    paths = iso.package_paths(loaded)
    missing = [m for m in config.expose if m not in sys.modules]
    if not missing:
        return paths
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            for name in missing:
                with contextlib.suppress(Exception):  # not installed: nothing to expose
                    __import__(name)
            loaded = [m for name, m in list(sys.modules.items()) if name not in before]
            os.write(w, json.dumps(iso.package_paths(loaded)).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = _read_all(r)
    os.close(r)
    os.waitpid(pid, 0)
    with contextlib.suppress(ValueError):
        paths = sorted(set(paths) | set(json.loads(data or b"[]")))
    return paths


def main() -> None:
    config = Config(**json.loads(sys.argv[1]))
    proto_in = _Lines(0)
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print() in preloaded code must not corrupt the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client decides when the server stops
    for name in config.preload:
        __import__(name)
    if "numpy" in config.preload:
        # numpy imports numpy.random on first use, which costs every child that draws a random
        # number ~13 ms of CPU: once here instead (each child reseeds it: _become_child).
        import numpy.random  # noqa: F401
    if "numba" in config.preload:
        # Initialise LLVM once here, so a child's first @njit compiles faster.
        import numba

        numba.njit(lambda x: x + 1)(1)
    # Objects that exist now live for the server's lifetime: out of the collector's sight, a
    # child's garbage collections do not write to (and so copy) every page of the image.
    gc.collect()
    gc.freeze()
    server = Server(config, _exposed_packages(config, _STARTUP_MODULES))
    server.probe()
    shutil.rmtree(server.base, ignore_errors=True)
    # Leave room for the child's own allocations on top of the preloaded interpreter.
    server.vm_base = _vm_size() + (64 << 20)
    ok = not (config.strict and server.features["problems"])
    proto_out.write(
        json.dumps({"hello": 1, "ok": ok, "features": server.features}).encode() + b"\n"
    )
    proto_out.flush()
    if not ok:
        return
    server.refill()
    burst = False
    while line := proto_in.readline():
        request = json.loads(line)
        header, out, err, res = server.handle(request, burst)
        header.update(stdout_len=len(out), stderr_len=len(err), result_len=len(res))
        proto_out.write(json.dumps(header).encode() + b"\n" + out + err + res)
        proto_out.flush()
        server.reap()
        # Refill when idle; if the next request comes at once, refill during its run instead,
        # so a fork never sits between a reply and the next request.
        burst = proto_in.waiting(IDLE_S)
        if not burst:
            server.refill()
        if server.dying_dirs:
            server.cleanup_dirs()
    for spare in server.spares:
        _kill(spare.pid)
        server.dying.append((spare.pid, spare.pidfd))
    server.reap(block=True)
    server.cleanup_dirs()
    shutil.rmtree(server.base, ignore_errors=True)


if __name__ == "__main__":
    main()
