"""Run child programs in isolated processes forked by a warm server, and read back their arrays.

A `Sandbox` owns a fork server (evolve/sandbox/_server.py, a separate single-threaded
`python -I` process with numpy imported; a second one with numba too serves children that use
numba). For every request a server hands the program to a child it forked in advance: the
child has its own PID, mount and IPC namespaces, the server's empty network namespace, a
private size-capped /tmp as its working folder, a Landlock domain that lets it
read only the Python installation and write only that folder, an unprivileged uid of its own,
and CPU, memory, file-size, process and open-file limits. It is killed with everything it
started at the wall-time limit.

The child's reply is a JSON status line and an .npz of arrays. This side parses both itself,
bounding every size before reading, with allow_pickle=False: nothing from the child is
unpickled or imported here, and nothing it reports (a score, a size, a time) is believed.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import logging
import math
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evolve.paths import PACKAGE_DIR, problems_dir

if TYPE_CHECKING:
    from evolve.evaluators.online import OnlineSession

log = logging.getLogger(__name__)

_SERVER = Path(__file__).with_name("_server.py")
# Only what an interpreter needs; nothing from the user's environment (no API keys, tokens).
_SAFE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
TAIL_CHARS = 2000
_HEADER_LIMIT = 1 << 16
_STARTUP_TIMEOUT_S = 120.0
_GRACE_S = 10.0  # how long past the child's wall limit we wait for the server to answer
_warned: set[str] = set()


UNCONFINED_FILES = (
    "no file isolation here (no Landlock, and not root, so no uid of its own): a child would "
    "have your own file rights and could rewrite the evaluator, its numba cache and the run "
    "database; turn Landlock on (Linux >= 5.13 with landlock in the LSM list, see "
    "`evolve doctor`), run as root, or accept the risk with sandbox.allow_unconfined_files=true"
)
UNCONFINED_ALLOWED = (
    "no file isolation: children have your own file rights (sandbox.allow_unconfined_files=true)"
)


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (not a child's fault); the message says what to change."""


@dataclass
class SandboxRequest:
    """What to run and within which limits."""

    code: str
    entrypoint: str = "solve"
    harness: str | None = None  # source of a problem's harness, run inside the sandbox
    inputs: dict[str, Any] = field(default_factory=dict)  # JSON-able instance data for the harness
    time_s: float = 30.0
    memory_mb: int = 2048  # address space the child may add to the preloaded interpreter
    max_output_bytes: int = 64 * 1024 * 1024
    max_file_bytes: int = 128 * 1024 * 1024
    max_processes: int = 64
    max_open_files: int = 256


@dataclass
class SandboxResult:
    """What came back: a status, the outputs (if any), and what the run cost."""

    status: str
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    error: str = ""
    stdout_tail: str = ""
    stderr_tail: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_memory_mb: float = 0.0
    online_error: str = ""  # an online run: why the trusted session stopped it ('' if it did not)
    online_refused: bool = False  # ... because it refused a decision (not the child's silence)


def _child_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in _SAFE_ENV_KEYS if k in os.environ}
    env.update(
        {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1",
            "NUMBA_CACHE_DIR": "/tmp/numba-cache",
            "HOME": "/nonexistent",
        }
    )
    return env


_LAYER_NAMES = {
    "pid_namespace": "PID namespace",
    "network_namespace": "network namespace",
    "mount_namespace": "private /tmp",
    "user_namespace": "user namespace",
    "private_uid": "private uid",
    "seccomp": "seccomp filter",
}


def describe_layers(features: dict[str, Any]) -> str:
    """The isolation layers of `Sandbox.features` in one line, missing ones last."""
    on = [name for key, name in _LAYER_NAMES.items() if features.get(key)]
    if features.get("landlock"):
        on.append(f"Landlock ABI {features['landlock']}")
    line = ", ".join(on) or "no isolation layer"
    if features.get("problems"):
        line += "; missing: " + "; ".join(features["problems"])
    return line


def missing_layer(problem: str) -> str:
    """What to say, once, about a layer this machine does not give."""
    return f"sandbox: {problem}; the other isolation layers still apply"


class _Server:
    """The pipe to one fork server process: start, one request at a time, stop."""

    def __init__(self, config: dict[str, Any], allow_unconfined_files: bool = False) -> None:
        self.config = config
        self.allow_unconfined_files = allow_unconfined_files
        self.proc: subprocess.Popen | None = None
        self.buf = bytearray()
        self.features: dict[str, Any] = {}
        self.restarts = 0
        self.launched = False
        self.control: socket.socket | None = None  # online channels go to the server here

    def start(self) -> None:
        """Start the process and wait for its hello (which says the layers in force)."""
        self.launched = True
        self.control, theirs = socket.socketpair()
        config = {**self.config, "control_fd": theirs.fileno()}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(_SERVER), json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=_child_env(),
                cwd="/",
                close_fds=True,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a Ctrl-C meant for the engine does not reach the server
            )
        finally:
            theirs.close()
        self.buf = bytearray()
        try:
            hello = json.loads(self.read_line(time.monotonic() + _STARTUP_TIMEOUT_S))
        except (SandboxError, ValueError) as exc:
            self.stop()
            raise SandboxError(f"the sandbox server did not start: {exc}") from None
        self.features = hello.get("features", {})
        problems = self.features.get("problems") or []
        if not hello.get("ok"):
            self.stop()
            raise SandboxError(
                "strict sandbox: isolation layers unavailable on this machine: "
                + "; ".join(problems)
                + " (run as root on Linux >= 6.12, or use strict=False)"
            )
        if not (self.features.get("landlock") or self.features.get("private_uid")):
            # Neither Landlock nor a uid of its own: the child has the user's own file rights.
            if not self.allow_unconfined_files:
                self.stop()
                raise SandboxError(UNCONFINED_FILES)
            problems = [*problems, UNCONFINED_ALLOWED]
            self.features["problems"] = problems
        for problem in problems:
            if problem not in _warned:
                _warned.add(problem)
                log.warning(missing_layer(problem))

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self.control is not None:
            self.control.close()
            self.control = None
        if proc is None:
            return
        try:
            proc.stdin.close()  # the server exits on EOF after killing its spare children
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            _kill_tree(proc)
        finally:
            proc.stdout.close()

    def restart(self, why: str) -> None:
        log.warning("sandbox: %s; restarting it", why)
        self.restarts += 1
        if self.proc is not None:
            _kill_tree(self.proc)
            self.proc.stdout.close()
            self.proc = None
        if self.control is not None:
            self.control.close()
        self.start()

    def exchange(
        self, line: bytes, deadline: float, session: OnlineSession | None = None
    ) -> tuple[dict, bytes, bytes, bytes, tuple[str, bool]]:
        """Send one request line (and, online, serve the session's items to the child); return
        the reply header, stdout and stderr tails, raw result and why the session stopped."""
        assert self.proc and self.proc.stdin and self.control
        ours = None
        if session is not None:
            ours, theirs = socket.socketpair()
            try:
                socket.send_fds(self.control, [b"C"], [theirs.fileno()])
            finally:
                theirs.close()
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        online = ("", False)
        if ours is not None:
            online = _serve_online(session, ours, deadline)
        header = json.loads(self.read_line(deadline))
        out = self.read_exact(header["stdout_len"], deadline)
        err = self.read_exact(header["stderr_len"], deadline)
        return header, out, err, self.read_exact(header["result_len"], deadline), online

    def _fill(self, deadline: float) -> None:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        _wait_readable(fd, deadline)
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise SandboxError("the server closed its pipe")
        self.buf += chunk

    def read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_line(self, deadline: float) -> bytes:
        while (end := self.buf.find(b"\n")) < 0:
            if len(self.buf) > _HEADER_LIMIT:
                raise SandboxError("the server sent an over-long header")
            self._fill(deadline)
        return self.read_exact(end + 1, deadline)


class Sandbox:
    """A warm worker: a fork server, one isolated child per `run`.

    >>> with Sandbox() as sb:
    ...     sb.run(SandboxRequest("def solve():\\n    return {'h': [0.5]}")).status
    'ok'

    `strict=True` refuses to start unless every isolation layer works on this machine;
    otherwise a missing layer is logged once per process and the others still apply.
    `read_paths` are extra folders a child may read (an installation outside sys.prefix).
    `disk_mb` caps everything the child writes into its private /tmp; `spares` is how many
    isolated children the server keeps forked ahead of requests. Safe to share between
    threads (requests are served one at a time); give each worker its own instance.

    Without Landlock and without root the child would have the user's own file rights (it
    could rewrite the evaluator and the run database): the sandbox refuses to start then,
    unless `allow_unconfined_files=True` says the user accepts that.

    `on_demand` names preloaded modules that make a fork dearer (numba's LLVM more than
    doubles the cost of forking and tearing down a child): when one of them is in `preload`,
    a server without it serves every child whose code never names it, and a second server
    with the full `preload`, started when the first such child comes, serves the rest. A
    child that names numba finds it imported.
    """

    def __init__(
        self,
        preload: tuple[str, ...] = ("numpy", "numba"),
        *,
        strict: bool = False,
        read_paths: tuple[str, ...] = (),
        disk_mb: int = 256,
        max_log_bytes: int = 4 * 1024 * 1024,
        spares: int = 2,
        on_demand: tuple[str, ...] = ("numba",),
        allow_unconfined_files: bool = False,
    ) -> None:
        config = {
            "preload": list(preload),
            "strict": strict,
            "read_paths": [str(Path(p).resolve()) for p in read_paths],
            # A child reads the preloaded libraries' packages, never the evolve package or
            # the problems (their evaluators and held-out data), wherever they are installed.
            "expose": list(preload),
            "hidden": [str(PACKAGE_DIR), str(problems_dir().resolve())],
            "disk_mb": int(disk_mb),
            "max_log_bytes": int(max_log_bytes),
            "spares": max(1, int(spares)),
        }
        self._heavy = tuple(m for m in on_demand if m in preload)
        names = "|".join(map(re.escape, self._heavy))
        self._heavy_re = re.compile(rf"\b({names})\b")
        # The light server first: it serves most children, and `server_pid` names it.
        configs = [config]
        if self._heavy:
            light = [m for m in preload if m not in self._heavy]
            configs = [{**config, "preload": light}, config]
        self._servers = [_Server(c, allow_unconfined_files) for c in configs]
        self._lock = threading.Lock()
        # The server with the on-demand modules starts when the first child names one: most
        # runs never need it, and importing numba costs seconds of CPU at start-up.
        self._servers[0].start()
        self.features: dict[str, Any] = self._servers[0].features

    # --- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the servers and their spare children."""
        with self._lock:
            for server in self._servers:
                server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def server_pid(self) -> int | None:
        """The pid of the server that runs children not naming an on-demand module."""
        proc = self._servers[0].proc
        return proc.pid if proc else None

    @property
    def server_pids(self) -> list[int]:
        """Every fork server's pid (for monitoring; children cannot see or signal them)."""
        return [s.proc.pid for s in self._servers if s.proc]

    @property
    def restarts(self) -> int:
        return sum(s.restarts for s in self._servers)

    def _server_for(self, req: SandboxRequest) -> _Server:
        if self._heavy and (
            self._heavy_re.search(req.code) or (req.harness and self._heavy_re.search(req.harness))
        ):
            return self._servers[-1]
        return self._servers[0]

    # --- running ------------------------------------------------------------------------------
    def run(
        self, req: SandboxRequest, session: OnlineSession | None = None, pin: bool = True
    ) -> SandboxResult:
        """Run one child to completion or to its limits; never raises for the child's faults.

        With an online `session`, the harness gets a channel as its third argument and this
        process feeds it the session's items one at a time, checking every decision; the
        result's `online_error` says why the session stopped early ('' if it did not).
        `pin=False` leaves both on whatever CPUs the kernel picks (for bench/online.py).
        """
        payload = {
            "code": req.code,
            "entrypoint": req.entrypoint,
            "harness": req.harness,
            "inputs": req.inputs,
            "time_s": float(req.time_s),
            "memory_mb": int(req.memory_mb),
            "max_output_bytes": int(req.max_output_bytes),
            "max_file_bytes": int(req.max_file_bytes),
            "max_processes": int(req.max_processes),
            "max_open_files": int(req.max_open_files),
        }
        if session is None:
            return self._send(req, payload)
        # The child and this thread trade a frame per item: on one CPU a round trip costs
        # several times less than across two, so both are pinned to this thread's CPU.
        cpu, saved = (_current_cpu() if pin else None), os.sched_getaffinity(0)
        payload["online"] = {
            "item_size": int(session.item_size),
            "decision_size": int(session.decision_size),
            "cpu": cpu,
        }
        if cpu is None:
            return self._send(req, payload, session)
        with contextlib.suppress(OSError, TypeError):
            os.sched_setaffinity(0, {cpu})
        try:
            return self._send(req, payload, session)
        finally:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, saved)

    def _send(
        self, req: SandboxRequest, payload: dict[str, Any], session: OnlineSession | None = None
    ) -> SandboxResult:
        line = json.dumps(payload).encode() + b"\n"
        server = self._server_for(req)
        with self._lock:
            if not server.launched:
                server.start()
            elif not server.alive:
                server.restart("the sandbox server had exited")
            t0 = time.monotonic()
            try:
                header, out, err, res, online = server.exchange(
                    line, t0 + float(req.time_s) + _GRACE_S, session
                )
            except (OSError, SandboxError, ValueError, KeyError) as exc:
                server.restart(f"the sandbox server failed during a run ({exc})")
                return SandboxResult(
                    status="error",
                    error=f"the sandbox server failed during the run and was restarted: {exc}",
                    wall_s=time.monotonic() - t0,
                )
        result = _interpret(req, header, out, err, res)
        result.online_error, result.online_refused = online
        return result


def _current_cpu() -> int | None:
    """The CPU this thread runs on (field 39 of /proc/thread-self/stat), or None."""
    try:
        with open("/proc/thread-self/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def _serve_online(session: OnlineSession, sock: socket.socket, deadline: float) -> tuple[str, bool]:
    """Feed the session's items to the child, pinned to one CPU with it; '' when every item
    was decided, else why the session stopped (a refused decision, silence, the time limit);
    and whether it was a refusal."""
    from evolve.evaluators.online import ChildSilent, OnlineError, serve

    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        serve(session, sock)
        return "", False
    except ChildSilent as exc:
        return str(exc), False
    except OnlineError as exc:
        return str(exc), True
    except OSError as exc:  # a timeout, or the child closed its end mid-frame
        return f"the online exchange failed: {type(exc).__name__}: {exc}", False
    finally:
        sock.close()


def _wait_readable(fd: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        raise SandboxError("the server did not answer in time")


def _kill_tree(proc: subprocess.Popen) -> None:
    # The server leads its own session; its children die with it (PR_SET_PDEATHSIG).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stdin:
        with contextlib.suppress(OSError):
            proc.stdin.close()


# --- reading what the child sent ---------------------------------------------------------------
def _interpret(
    req: SandboxRequest, header: dict, out: bytes, err: bytes, res: bytes
) -> SandboxResult:
    result = SandboxResult(
        status="crash",
        stdout_tail=out.decode("utf-8", "replace")[-TAIL_CHARS:],
        stderr_tail=err.decode("utf-8", "replace")[-TAIL_CHARS:],
        wall_s=float(header["wall_s"]),
        cpu_s=float(header["cpu_s"]),
        peak_memory_mb=float(header["peak_mb"]),
    )
    end = header["end"]
    if end == "timeout":
        result.status, result.error = (
            "timeout",
            f"killed at the wall-time limit of {req.time_s:g} s",
        )
        return result
    if end == "flood":
        result.error = f"wrote {header['log_bytes']} bytes or more to stdout/stderr; killed"
        return result
    if end == "oversize":
        result.status = "bad_output"
        result.error = f"its outputs are over the limit of {req.max_output_bytes} bytes; killed"
        return result
    status, body = _split_reply(res)
    kind = str(status.get("status", ""))
    message = " ".join(str(status.get("error") or "").split())[:TAIL_CHARS]
    if kind == "ok":
        try:
            result.outputs = read_npz(body, req.max_output_bytes)
            result.status = "ok"
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            result.status, result.error = "bad_output", f"unreadable outputs: {exc}"
        return result
    if kind in ("crash", "memory", "syntax_error", "bad_output", "error") and message:
        result.status, result.error = kind, message
        return result
    code = header.get("exit_code")
    if code is not None and code < 0:
        sig = _signal_name(-code)
        if -code in (signal.SIGXCPU, signal.SIGKILL) and result.cpu_s >= req.time_s:
            result.status, result.error = "timeout", f"killed at the CPU-time limit ({sig})"
        else:
            result.error = f"killed by signal {sig}"
        return result
    last = result.stderr_tail.strip().splitlines()
    result.error = f"exited with code {code} before returning" + (f": {last[-1]}" if last else "")
    if "MemoryError" in result.stderr_tail:
        result.status = "memory"
    return result


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


def _split_reply(res: bytes) -> tuple[dict, bytes]:
    size, sep, rest = res[:24].partition(b"\n")
    if not sep or not size.isdigit():
        return {}, b""
    rest = res[len(size) + 1 : len(size) + 1 + int(size)]
    line, sep, body = rest.partition(b"\n")
    if not sep or len(line) > _HEADER_LIMIT:
        return {}, b""
    try:
        status = json.loads(line)
    except ValueError:
        return {}, b""
    return (status if isinstance(status, dict) else {}), body


def read_npz(data: bytes, max_bytes: int) -> dict[str, np.ndarray]:
    """Parse an .npz from untrusted bytes: no pickles, every size checked before allocating.
    Any bytes give the arrays or a ValueError (tests/test_fuzz_inputs.py tries them)."""
    if len(data) > max_bytes + (1 << 20):
        raise ValueError(f"outputs are {len(data)} bytes; the limit is {max_bytes}")
    try:
        return _read_npz(data, max_bytes)
    except _ZIP_FAULTS as exc:
        # A child controls these bytes: what zipfile and zlib raise on a damaged, encrypted
        # or exotic archive is the child's fault, recorded as bad output like any other.
        raise ValueError(f"not a readable .npz ({type(exc).__name__}: {exc})") from None


_ZIP_FAULTS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,  # compression methods and flags zipfile does not support
    RuntimeError,  # an encrypted member
    struct.error,
    UnicodeDecodeError,
    OverflowError,
)


def _read_npz(data: bytes, max_bytes: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            total += info.file_size
            if total > max_bytes + (1 << 16) * (len(out) + 1):
                raise ValueError(f"outputs unpack to over {max_bytes} bytes")
            if not info.filename.endswith(".npy"):
                raise ValueError(f"unexpected member {info.filename!r}")
            with zf.open(info) as f:
                raw = f.read(info.file_size + 1)
            if len(raw) != info.file_size:
                raise ValueError(f"member {info.filename!r} has the wrong size")
            fp = io.BytesIO(raw)
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            if dtype.hasobject or dtype.kind not in "biuf":
                raise ValueError(f"output {info.filename[:-4]!r} has dtype {dtype}, not numbers")
            count = math.prod(int(n) for n in shape)
            if count < 0 or count * dtype.itemsize != len(raw) - fp.tell():
                raise ValueError(
                    f"output {info.filename[:-4]!r}: shape {shape} does not match its data"
                )
            arr = np.frombuffer(raw, dtype=dtype, count=count, offset=fp.tell())
            arr = arr.reshape(shape, order="F" if fortran else "C")
            out[info.filename[:-4]] = np.array(arr)  # owned, writeable, native copy
    return out


# --- the per-process default ----------------------------------------------------------------------
_default: Sandbox | None = None
_default_pid = 0
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The lazily started Sandbox of this process (a forked process gets its own)."""
    global _default, _default_pid
    with _default_lock:
        if _default is None or _default_pid != os.getpid():
            _default, _default_pid = Sandbox(), os.getpid()
            atexit.register(_default.close)
        return _default


def run(req: SandboxRequest) -> SandboxResult:
    """Run a child program in this process's default Sandbox; never raises for the child's faults."""
    return default_sandbox().run(req)
