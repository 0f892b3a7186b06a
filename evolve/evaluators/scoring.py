"""Trusted scoring with a time bound: a problem's evaluator run in a scoring process of its own.

`Problem.score` is trusted code, but what it scores is not: outputs at the size limit can make
a quadratic kernel run for minutes. The engine's workers and `Problem.evaluate` therefore
score through a `Scorer`: a separate Python process (started once per problem and worker,
its numba kernels compiled once) that receives the arrays as an .npz and answers with the
Evaluation as JSON. Past the problem's `limits.score_time_s` the scoring process is killed
and the child is recorded as `score_timeout`; the worker itself never waits longer, and the
next child gets a fresh scoring process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

from evolve.evaluators.evaluation import Evaluation

_STARTUP_S = 120.0  # importing evolve and compiling the evaluator's kernels, once
_HEADER = struct.Struct("<Q")


class Scorer:
    """One problem's scoring process; `score(outputs)` returns within the time limit."""

    def __init__(self, problem: Any) -> None:
        self.problem = problem
        self.time_s = float(problem.limits.score_time_s)
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evolve.evaluators.scoring", json.dumps(self.problem.to_dict())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # killed as a group, never by a Ctrl-C meant for the run
        )
        try:
            _read_frame(proc.stdout.fileno(), time.monotonic() + _STARTUP_S)  # ready
        except (TimeoutError, EOFError):
            _kill(proc)
            raise RuntimeError("the scoring process did not start") from None
        return proc

    def score(
        self, outputs: dict[str, np.ndarray], instance: dict[str, Any] | None = None
    ) -> Evaluation:
        """The trusted evaluator's verdict (on one `instance` of a heuristic problem), or
        `score_timeout` past the limit."""
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in outputs.items()})
        # The child's outputs travel as an .npz; the instance is the trusted evaluator's own
        # data, going from one trusted process to another, so pickle is safe for it.
        extra = pickle.dumps(instance, protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            try:
                if self.proc is None or self.proc.poll() is not None:
                    self.proc = self._start()
                _write_frame(self.proc.stdin.fileno(), buf.getvalue())
                _write_frame(self.proc.stdin.fileno(), extra)
                reply = _read_frame(self.proc.stdout.fileno(), time.monotonic() + self.time_s)
            except TimeoutError:
                self.close()
                return Evaluation.failed(
                    "score_timeout",
                    f"the trusted evaluator took longer than {self.time_s:g} s to score these "
                    "outputs (limits.score_time_s); smaller outputs score faster",
                )
            except (OSError, EOFError, RuntimeError) as exc:
                self.close()
                return Evaluation.failed("error", f"the scoring process failed: {exc}")
        d = json.loads(reply)
        d["fitness"] = -np.inf if d.get("fitness") is None else d["fitness"]
        return Evaluation(**d)

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _kill(proc)


_scorers: dict[str, Scorer] = {}
_scorers_lock = threading.Lock()


def _scorer(problem: Any) -> Scorer:
    key = json.dumps(problem.to_dict(), sort_keys=True)
    with _scorers_lock:
        scorer = _scorers.get(key)
        if scorer is None:
            scorer = _scorers[key] = Scorer(problem)
    return scorer


def bounded_score(
    problem: Any, outputs: dict[str, np.ndarray], instance: dict[str, Any] | None = None
) -> Evaluation:
    """Score through this process's scoring process for `problem` (started on first use)."""
    return _scorer(problem).score(outputs, instance)


def warm_up(problem: Any) -> threading.Thread:
    """Start `problem`'s scoring process in the background: it imports evolve and compiles
    the evaluator's kernels (seconds), which then overlaps with the rest of a worker's start
    instead of delaying its first child. A failure here is met again, and reported, at the
    first score."""
    scorer = _scorer(problem)

    def start() -> None:
        with scorer.lock:
            if scorer.proc is None or scorer.proc.poll() is not None:
                with contextlib.suppress(RuntimeError, OSError):
                    scorer.proc = scorer._start()

    thread = threading.Thread(target=start, name="scorer-warm-up", daemon=True)
    thread.start()
    return thread


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(Exception):
            stream.close()


def _write_frame(fd: int, data: bytes) -> None:
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    out = bytearray()
    while len(out) < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise EOFError("the scoring process exited")
        out += chunk
    return bytes(out)


def _read_frame(fd: int, deadline: float | None) -> bytes:
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return _read_exact(fd, size, deadline)


def load_cached_kernels(module: Any) -> int:
    """Load the machine code numba cached on disk for `module`'s kernels (`@njit(cache=True)`
    at module level) now rather than at their first call, where it costs about 0.5 s here and
    would delay the run's first score. Returns how many were loaded. Any kernel this cannot
    load (no cache yet, a numba without these internals) is left to its first call, as
    before: this only moves work earlier, it never changes a result."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return 0
    loaded = 0
    for kernel in list(vars(module).values()):
        if not isinstance(kernel, Dispatcher) or getattr(kernel, "_cache", None) is None:
            continue
        try:
            cache, codegen = kernel._cache, kernel.targetctx.codegen()
            for key in cache._cache_file._load_index():
                # Only code cached for this machine's CPU and the kernel's current source:
                # anything else would be compiled here, for a signature the run may never use.
                if key == cache._index_key(key[0], codegen):
                    kernel.compile(key[0])  # in the cache: loaded, not compiled
                    loaded += 1
        except Exception:  # noqa: BLE001 - a private interface; its first call still works
            continue
    return loaded


def _serve(problem_ref: dict[str, Any]) -> None:
    """The scoring process: load the problem, then score one .npz per frame until EOF."""
    from evolve.problem import load_problem

    problem = load_problem(problem_ref["path"], params=problem_ref.get("params") or None)
    load_cached_kernels(problem.evaluator_module)  # import, and load its kernels, before ready
    out, inp = os.dup(1), sys.stdin.buffer.fileno()
    os.dup2(2, 1)  # a print() in the evaluator must not corrupt the replies
    _write_frame(out, b"ready")
    while True:
        try:
            request = _read_frame(inp, None)
        except EOFError:
            return
        instance = pickle.loads(_read_frame(inp, None))  # from the trusted parent, see score()
        with np.load(io.BytesIO(request), allow_pickle=False) as npz:
            outputs = {k: npz[k] for k in npz.files}
        verdict = problem.score(outputs, instance).to_dict()
        _write_frame(out, json.dumps(verdict, default=_plain).encode())


def _plain(value: Any) -> Any:
    """numpy scalars and arrays an evaluator left in its metrics, as JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot send {type(value).__name__} from the scoring process")


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
