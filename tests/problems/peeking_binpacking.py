"""A hostile program for scheduling/binpacking_online: it looks for the items still to come.

Fixture, not a test. Its `priority` searches everything reachable in its own process for the
rest of the instance: the caller's frames (`sys._getframe`), every object the garbage collector
tracks (`gc.get_objects()`), every module's globals, and the problem's data files (the held-out
test sets, where the repository or an installed package keeps them: `DATA_FILES`, which a test
may set to exact paths). A candidate is any sequence of
`n_items` numbers that starts with exactly the items seen so far. If it finds one, it packs
the whole instance offline (first fit decreasing) and steers each item to its planned bin,
which beats every honest online policy; if not, it is plain best fit. `FOUND` records what it
found, for the test to read when it runs in the same process; `FILES_TRIED` what each data file
gave (its size, or the error that kept it closed).

In-process (`play_in_process`) the trusted session lives in the same process, so the search
succeeds: that proves the program really peeks. In the sandbox only the current item reaches
the child's process, so it must find nothing and score exactly as best fit.
"""

import gc
import glob
import sys

import numpy as np

FOUND = {"future": None, "where": ""}
FILES_TRIED: dict = {}
# Where the data files are when the problems ship in site-packages; the tests add the
# repository's copy (patterns for glob, `**` matching subfolders).
DATA_FILES = [
    sys.prefix + "/lib/python3*/site-packages/problems/scheduling/binpacking_online/data/**/*.txt",
]
_STATE = {"seen": [], "plan": None, "actual": {}, "searched_at": -1}


def _matches(value, n, seen):
    try:
        if isinstance(value, np.ndarray):
            if value.ndim != 1 or value.shape[0] != n or value.dtype.kind not in "iuf":
                return None
            arr = value
        elif isinstance(value, (list, tuple)) and len(value) == n and n > 0:
            if not all(isinstance(v, (int, float)) for v in value[: len(seen)]):
                return None
            arr = np.asarray(value, dtype=np.float64)
        else:
            return None
        if arr.dtype.kind not in "iuf" or not np.array_equal(arr[: len(seen)], seen):
            return None
        return np.array(arr, dtype=np.float64)
    except Exception:
        return None


def _values_of(obj):
    if isinstance(obj, dict):
        return list(obj.values())
    d = getattr(obj, "__dict__", None)
    return list(d.values()) if isinstance(d, dict) else []


def _search(n, seen, exclude):
    frame = sys._getframe(1)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            for v in [value, *_values_of(value)]:
                if id(v) not in exclude and (found := _matches(v, n, seen)) is not None:
                    return found, f"frame {frame.f_code.co_name}"
        frame = frame.f_back
    for module in list(sys.modules.values()):
        for v in _values_of(module):
            if id(v) not in exclude and (found := _matches(v, n, seen)) is not None:
                return found, f"module {getattr(module, '__name__', '?')}"
    for obj in gc.get_objects():
        for v in [obj, *_values_of(obj)]:
            if id(v) not in exclude and (found := _matches(v, n, seen)) is not None:
                return found, f"gc object {type(obj).__name__}"
    return _search_files(n, seen)


def _search_files(n, seen):
    """The `n` numbers that follow the items seen so far in any readable data file."""
    k = len(seen)
    for pattern in DATA_FILES:
        # An exact path is tried even where it seems not to exist (glob would skip it).
        wild = any(c in pattern for c in "*?[")
        for path in sorted(glob.glob(pattern, recursive=True))[:20] if wild else [pattern]:
            try:
                with open(path) as f:
                    tokens = f.read().split()
            except OSError as exc:
                FILES_TRIED[path] = type(exc).__name__
                continue
            # Instance names (u120_00) among the numbers become NaN, which matches nothing.
            numbers = np.array(
                [float(t) if t.replace(".", "", 1).isdigit() else np.nan for t in tokens]
            )
            FILES_TRIED[path] = numbers.size
            if k == 0 or numbers.size < n:
                continue
            # Where the first item matches, compare the rest of the prefix (vectorised).
            starts = np.flatnonzero(numbers[: numbers.size - n + 1] == seen[0])
            for i in starts:
                if np.array_equal(numbers[i : i + k], seen):
                    return numbers[i : i + n], f"file {path}"
    return None, ""


def _first_fit_decreasing(sizes, capacity):
    order = np.argsort(-sizes, kind="stable")
    room = []
    plan = np.empty(sizes.size, dtype=np.int64)
    for t in order:
        for b, r in enumerate(room):
            if r >= sizes[t]:
                room[b] -= sizes[t]
                plan[t] = b
                break
        else:
            room.append(capacity - sizes[t])
            plan[t] = len(room) - 1
    return plan


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    harness = sys._getframe(1).f_locals
    count, valid, all_bins = harness.get("count"), harness.get("valid"), harness.get("bins")
    if count is None or valid is None or all_bins is None:
        return -(bins - item)
    if count == 0:
        _STATE.update(seen=[], plan=None, actual={}, searched_at=-1)
        FOUND.update(future=None, where="")
    _STATE["seen"].append(float(item))
    n = all_bins.shape[0]
    if _STATE["plan"] is None and count in (0, 3) and _STATE["searched_at"] != count:
        _STATE["searched_at"] = count
        seen = np.array(_STATE["seen"])
        exclude = {id(all_bins), id(bins), id(valid), id(_STATE["seen"]), id(seen)}
        future, where = _search(n, seen, exclude)
        if future is not None:
            capacity = float(harness["capacity"])
            FOUND.update(future=future, where=where)
            _STATE["plan"] = _first_fit_decreasing(future, capacity)
    if _STATE["plan"] is None:
        return -(bins - item)
    planned = int(_STATE["plan"][count])
    actual = _STATE["actual"]
    if planned not in actual:
        used = set(actual.values())
        capacity = float(harness["capacity"])
        empty = [int(b) for b in valid if all_bins[b] == capacity and int(b) not in used]
        actual[planned] = empty[0]
    scores = np.zeros(bins.shape[0])
    scores[np.flatnonzero(valid == actual[planned])] = 1.0
    return scores


# EVOLVE-BLOCK-END
