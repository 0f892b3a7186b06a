"""Run one child program in a separate, limited process and read back its arrays.

The child gets an empty temporary working folder, a scrubbed environment, its own process
group (killed whole at the time limit), and CPU, memory, file-size, process and open-file
limits. It returns outputs through a .npz file read with allow_pickle=False: bytes from the
child are never unpickled or imported here.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_CHILD = Path(__file__).with_name("_child.py")
# Only what an interpreter needs; nothing from the user's environment (no API keys, tokens).
_SAFE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
TAIL_CHARS = 2000


@dataclass
class SandboxRequest:
    """What to run and within which limits."""

    code: str
    entrypoint: str = "solve"
    harness: str | None = None  # source of a problem's harness, run inside the sandbox
    inputs: dict[str, Any] = field(default_factory=dict)  # JSON-able instance data for the harness
    time_s: float = 30.0
    memory_mb: int = 2048
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
            "HOME": "/nonexistent",
        }
    )
    return env


def _limits(req: SandboxRequest):
    mem = int(req.memory_mb) * 1024 * 1024
    cpu = max(1, int(req.time_s + 1))

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (req.max_file_bytes, req.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (req.max_open_files, req.max_open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_CHARS))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _read_outputs(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    if path.stat().st_size > max_bytes + 65536:
        raise ValueError(f"outputs are {path.stat().st_size} bytes; the limit is {max_bytes}")
    out: dict[str, np.ndarray] = {}
    with np.load(path, allow_pickle=False) as data:
        for name in data.files:
            out[name] = np.array(data[name])
    return out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(req: SandboxRequest) -> SandboxResult:
    """Run a child program to completion or to its limits; never raises for the child's faults."""
    workdir = Path(tempfile.mkdtemp(prefix="evolve-child-"))
    try:
        (workdir / "program.py").write_text(req.code)
        (workdir / "request.json").write_text(
            json.dumps(
                {
                    "entrypoint": req.entrypoint,
                    "harness": req.harness,
                    "inputs": req.inputs,
                    "max_output_bytes": req.max_output_bytes,
                }
            )
        )
        stdout_path, stderr_path = workdir / ".stdout", workdir / ".stderr"
        usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(_CHILD)],
                cwd=workdir,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                close_fds=True,
                start_new_session=True,
                preexec_fn=_limits(req),
            )
            timed_out = False
            try:
                proc.wait(timeout=req.time_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            # Kill the whole group either way: nothing the child started may outlive it.
            _kill_group(proc)
            proc.wait()
        wall = time.monotonic() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
        peak_mb = usage.ru_maxrss / 1024.0
        result = SandboxResult(
            status="crash",
            stdout_tail=_tail(stdout_path),
            stderr_tail=_tail(stderr_path),
            wall_s=wall,
            cpu_s=cpu,
            peak_memory_mb=peak_mb,
        )
        if timed_out:
            result.status, result.error = "timeout", f"killed at the wall-time limit of {req.time_s:g} s"
            return result
        rc = proc.returncode
        status: dict[str, Any] = {}
        try:
            status = json.loads((workdir / "status.json").read_text())
            if not isinstance(status, dict):
                status = {}
        except (OSError, ValueError):
            status = {}
        if rc == 0 and status.get("status") == "ok":
            try:
                result.outputs = _read_outputs(workdir / "outputs.npz", req.max_output_bytes)
                result.status = "ok"
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                result.status, result.error = "bad_output", f"unreadable outputs: {exc}"
            return result
        if rc is not None and rc < 0:
            sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            if -rc in (signal.SIGXCPU, signal.SIGKILL) and cpu >= req.time_s:
                result.status, result.error = "timeout", f"killed at the CPU-time limit ({sig})"
            else:
                result.status, result.error = "crash", f"killed by signal {sig}"
            return result
        kind = str(status.get("status", "crash"))
        if kind not in ("crash", "memory", "syntax_error", "bad_output"):
            kind = "crash"
        msg = str(status.get("error") or "")
        if not msg:
            last = result.stderr_tail.strip().splitlines()
            msg = f"exited with code {rc}" + (f": {last[-1]}" if last else "")
        if "MemoryError" in msg or "Cannot allocate memory" in result.stderr_tail:
            kind = "memory"
        result.status, result.error = kind, msg
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
