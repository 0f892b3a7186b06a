"""The sandbox's child side: runs inside the isolated process, never in a trusted one.

It loads the candidate program from program.py in its (empty, temporary) working folder,
calls its entrypoint (or the problem's harness, which calls into the program), and writes the
returned arrays to outputs.npz with numpy's non-pickle format. The trusted side reads that file
with allow_pickle=False and re-checks everything; nothing written here is believed.
"""

import json
import sys
import traceback


def _fail(kind: str, message: str) -> None:
    with open("status.json", "w") as f:
        json.dump({"status": kind, "error": message[:2000]}, f)
    sys.exit(3)


def main() -> None:
    with open("request.json") as f:
        req = json.load(f)
    with open("program.py") as f:
        source = f.read()
    try:
        code = compile(source, "program.py", "exec")
    except SyntaxError as exc:
        _fail("syntax_error", f"line {exc.lineno}: {exc.msg}")
    namespace = {"__name__": "candidate", "__file__": "program.py"}
    try:
        exec(code, namespace)
        if req.get("harness"):
            harness_ns = {"__name__": "harness"}
            exec(compile(req["harness"], "harness.py", "exec"), harness_ns)
            result = harness_ns["run"](namespace, req.get("inputs") or {})
        else:
            fn = namespace.get(req["entrypoint"])
            if not callable(fn):
                _fail("bad_output", f"the program defines no function {req['entrypoint']}()")
            result = fn()
    except MemoryError:
        _fail("memory", "MemoryError")
    except RecursionError:
        _fail("crash", "RecursionError: maximum recursion depth exceeded")
    except BaseException as exc:  # noqa: BLE001 - the child's failure is data for the parent
        if isinstance(exc, SystemExit):
            _fail("crash", f"the program called sys.exit({exc.code})")
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f"line {fr.lineno}" for fr in reversed(tb) if fr.filename == "program.py"), "")
        _fail("crash", f"{type(exc).__name__}: {exc} {('(' + where + ')') if where else ''}".strip())

    import numpy as np

    if not isinstance(result, dict):
        _fail("bad_output", f"{req['entrypoint']}() returned {type(result).__name__}, not a dict of arrays")
    arrays = {}
    for key, value in result.items():
        if not isinstance(key, str) or not key.isidentifier():
            _fail("bad_output", f"output name {key!r} is not a plain identifier")
        try:
            arr = np.asarray(value)
        except Exception as exc:  # noqa: BLE001
            _fail("bad_output", f"output {key!r} is not an array: {exc}")
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            _fail("bad_output", f"output {key!r} has dtype {arr.dtype}, not numbers")
        if arr.nbytes > req["max_output_bytes"]:
            _fail("bad_output", f"output {key!r} is {arr.nbytes} bytes; the limit is {req['max_output_bytes']}")
        arrays[key] = arr
    np.savez("outputs.npz", **arrays)
    with open("status.json", "w") as f:
        json.dump({"status": "ok"}, f)


if __name__ == "__main__":
    main()
