"""The sandbox's child side: runs the candidate program inside the isolated process.

It executes the program's source, calls its entrypoint (or the problem's harness, which calls
into the program) and writes one reply to the result channel: a JSON line with a status,
then, when the status is ok, the returned arrays in numpy's non-pickle .npz format. The
candidate runs in this same process and may have replaced anything here (numpy, json, this
module), so nothing written here is believed: the trusted side re-parses and re-checks it.
"""

from __future__ import annotations

import contextlib
import io
import json
import linecache
import os
import signal
import socket
import sys
import traceback
from typing import Any, NoReturn

import numpy as np

try:  # in the fork server, the sandbox folder is on sys.path; elsewhere, the package
    import _channel
except ImportError:  # pragma: no cover - imported from the trusted side (tests, docs)
    from evolve.sandbox import _channel

MAX_ERROR_CHARS = 2000


def _reply(fd: int, header: dict[str, Any], payload: bytes = b"") -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the program may have replaced or closed it
            stream.flush()
    body = json.dumps(header).encode() + b"\n" + payload
    # Length-prefixed: processes the program forked may hold this pipe open, so EOF may never come.
    data = b"%d\n" % len(body) + body
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.close(fd)  # EOF tells the server the reply is complete
    except OSError:
        os._exit(0)
    # Wait to be killed: the server reads this process's CPU time and peak memory from /proc
    # first. No atexit handlers run, and threads the program started die with the process.
    while True:
        signal.pause()


def _fail(fd: int, status: str, message: str) -> NoReturn:
    _reply(fd, {"status": status, "error": message[:MAX_ERROR_CHARS]})


def _describe(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = next((f"line {fr.lineno}" for fr in reversed(tb) if fr.filename == "program.py"), "")
    text = f"{type(exc).__name__}: {exc}"
    return f"{text} ({where})" if where else text


def decode_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """The harness's inputs: numbers as they are, arrays rebuilt from their JSON form."""
    out = {}
    for key, value in inputs.items():
        if isinstance(value, dict) and "__ndarray__" in value:
            value = np.array(value["data"], dtype=value["__ndarray__"]).reshape(value["shape"])
        out[key] = value
    return out


def _open_channel(online: dict[str, Any]) -> _channel.Channel:
    """The child's end of an online request's channel, on the trusted side's CPU if it said
    which (a frame's round trip costs several times more across CPUs)."""
    if online.get("cpu") is not None:
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(0, {int(online["cpu"])})
    sock = socket.socket(fileno=int(online["fd"]))
    return _channel.Channel(sock, int(online["item_size"]), int(online["decision_size"]))


def run(req: dict[str, Any], code: str, fd: int) -> NoReturn:
    """Run one request and reply on `fd`; never returns."""
    # So tracebacks can quote the program's lines (without a file write on the critical path).
    linecache.cache["program.py"] = (len(code), None, code.splitlines(True), "program.py")
    try:
        compiled = compile(code, "program.py", "exec")
    except SyntaxError as exc:
        _fail(fd, "syntax_error", f"line {exc.lineno}: {exc.msg}")
    except Exception as exc:  # noqa: BLE001 - e.g. null bytes in the source
        _fail(fd, "syntax_error", _describe(exc))
    namespace: dict[str, Any] = {"__name__": "candidate", "__file__": "program.py"}
    entrypoint = str(req.get("entrypoint") or "solve")
    try:
        exec(compiled, namespace)
        if req.get("harness"):
            harness_ns: dict[str, Any] = {"__name__": "harness"}
            exec(compile(req["harness"], "harness.py", "exec"), harness_ns)
            inputs = decode_inputs(req.get("inputs") or {})
            online = req.get("online")
            if online:
                result = harness_ns["run"](namespace, inputs, _open_channel(online))
            else:
                result = harness_ns["run"](namespace, inputs)
        else:
            fn = namespace.get(entrypoint)
            if not callable(fn):
                _fail(fd, "bad_output", f"the program defines no function {entrypoint}()")
            result = fn()
    except MemoryError:
        _fail(fd, "memory", "MemoryError: the program exceeded its memory limit")
    except RecursionError:
        _fail(fd, "crash", "RecursionError: maximum recursion depth exceeded")
    except SystemExit as exc:
        _fail(fd, "crash", f"the program called sys.exit({exc.code!r})")
    except BaseException as exc:  # noqa: BLE001 - the child's failure is data for the parent
        _fail(fd, "crash", _describe(exc))
    _write_outputs(fd, result, entrypoint, int(req["max_output_bytes"]))


def _write_outputs(fd: int, result: Any, entrypoint: str, max_bytes: int) -> NoReturn:
    if not isinstance(result, dict):
        _fail(
            fd,
            "bad_output",
            f"{entrypoint}() returned {type(result).__name__}, not a dict of arrays",
        )
    arrays = {}
    total = 0
    try:
        for key, value in result.items():
            if not isinstance(key, str) or not key.isidentifier():
                _fail(fd, "bad_output", f"output name {key!r} is not a plain identifier")
            arr = np.asarray(value)
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                _fail(fd, "bad_output", f"output {key!r} has dtype {arr.dtype}, not numbers")
            total += arr.nbytes
            if total > max_bytes:
                _fail(fd, "bad_output", f"outputs are over {max_bytes} bytes (at {key!r})")
            arrays[key] = arr
        buf = io.BytesIO()
        np.savez(buf, **arrays)
    except MemoryError:
        _fail(fd, "memory", "MemoryError while converting the outputs")
    except Exception as exc:  # noqa: BLE001 - ragged lists, hostile __array__, ...
        _fail(fd, "bad_output", f"outputs could not be converted to arrays: {_describe(exc)}")
    _reply(fd, {"status": "ok"}, buf.getvalue())


def warm_up() -> None:
    """Touch what every run touches, so a spare child pays these copy-on-write faults (and
    numpy's first .npz, about 1.5 ms in a fresh fork) while it waits, not on the request's
    critical path. Kept to what every run needs anyway: a dry run of a whole program plus
    an allocation burst cut the critical path by 0.3 ms but cost 2 ms more CPU per child,
    which a busy machine cannot spare (bench/sandbox.py, bench/llm_throughput.py)."""
    compile("def solve():\n    return {}", "program.py", "exec")
    np.savez(io.BytesIO(), h=np.zeros(4))
    json.dumps({"status": "ok"})
    json.loads('{"status": "ok", "time_s": 1.0}')
