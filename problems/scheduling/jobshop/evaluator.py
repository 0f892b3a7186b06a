"""Trusted evaluator for the job shop (J||Cmax) on one classic or Taillard instance.

An instance has n jobs and m machines; job j visits every machine once, in the order of its
route `machines[j]`, and its o-th operation takes `durations[j, o]`. A schedule comes in one of
two forms:

- `order` [m, n]: for each machine, the jobs in the order it processes them. The decoder builds
  the semi-active schedule (every operation as early as its job and its machine allow) and its
  makespan. Each row must be a permutation of the jobs, and the orders together with the routes
  must not wait on each other in a cycle (a deadlock, reported as the cycle of machines/jobs).
- `start` [n, m]: the start time of each job's o-th operation (route order), checked directly:
  non-negative, each operation after its job's previous one ends, no two operations overlapping
  on a machine. The makespan is the last end.

The decoder is a numba kernel (`decode`), cross-checked against an independent pure-Python
reference (`decode_reference`: longest paths in the disjunctive graph by Kahn's topological
order); `verify` uses the reference, in Python integers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import yaml
from numba import njit

from evolve.evaluators import Evaluation, taillard
from evolve.evaluators.verification import Verification

INSTANCES_DIR = Path(__file__).with_name("instances")
CLASSIC = ("ft06", "ft10", "ft20", *(f"la{i:02d}" for i in range(1, 41)))
TAILLARD = tuple(f"ta{i:02d}" for i in range(1, 81))
VALID_NAMES = "ft06, ft10, ft20, la01-la40, ta01-ta80"
# Start times above this are rejected, so that start + duration cannot overflow int64.
MAX_START = 2**40


class InstanceError(ValueError):
    """An instance name or file that cannot be used; the message says what to fix."""


def read_orlib(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(machines, durations) from an OR-Library job-shop file: a 'jobs machines' line, then
    one line per job of (machine, time) pairs, machines numbered from 0."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    try:
        n, m = int(rows[0][0]), int(rows[0][1])
        pairs = np.array([[int(x) for x in r] for r in rows[1 : n + 1]], dtype=np.int64)
    except (IndexError, ValueError) as exc:
        raise InstanceError(f"{path}: not an OR-Library job-shop file ({exc})") from None
    if pairs.shape != (n, 2 * m):
        raise InstanceError(f"{path}: expected {n} lines of {m} (machine, time) pairs")
    return pairs[:, 0::2].copy(), pairs[:, 1::2].copy()


@cache
def instance(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(machines, durations), both [jobs, machines], of a named instance; checked to be a
    job shop where every job visits every machine exactly once."""
    name = str(name).lower()
    if name in CLASSIC:
        machines, durations = read_orlib(INSTANCES_DIR / f"{name}.txt")
    elif name in TAILLARD:
        machines, durations = taillard.jobshop(name)
    else:
        raise InstanceError(f"unknown job-shop instance {name!r}; valid names: {VALID_NAMES}")
    m = machines.shape[1]
    if not np.all(np.sort(machines, axis=1) == np.arange(m)) or np.any(durations < 0):
        raise InstanceError(f"instance {name}: a route does not visit each machine once")
    machines.flags.writeable = durations.flags.writeable = False
    return machines, durations


def inputs(params: dict) -> dict[str, np.ndarray]:
    """What the program is given: the routes and the durations of the instance."""
    machines, durations = instance(params.get("instance", "ft10"))
    return {"machines": machines, "durations": durations}


@njit(cache=True)
def decode(order: np.ndarray, machines: np.ndarray, durations: np.ndarray):
    """Semi-active schedule of per-machine job orders `order` [m, n] (rows permutations).

    Returns (start [n, m] by route position, -1 where unscheduled; makespan; next position in
    each machine's order [m]; next operation of each job [n]). The schedule is complete when
    every job's next operation is m; otherwise the orders deadlock.
    """
    n, m = machines.shape
    start = np.full((n, m), -1, np.int64)
    job_next = np.zeros(n, np.int64)
    job_free = np.zeros(n, np.int64)
    mach_next = np.zeros(m, np.int64)
    mach_free = np.zeros(m, np.int64)
    done = 0
    progress = True
    while progress and done < n * m:
        progress = False
        for k in range(m):
            # Schedule this machine's queue for as long as its next job is ready for it.
            while mach_next[k] < n:
                j = order[k, mach_next[k]]
                o = job_next[j]
                if o >= m or machines[j, o] != k:
                    break
                t = max(job_free[j], mach_free[k])
                start[j, o] = t
                job_free[j] = t + durations[j, o]
                mach_free[k] = job_free[j]
                job_next[j] = o + 1
                mach_next[k] += 1
                done += 1
                progress = True
    makespan = 0
    for j in range(n):
        makespan = max(makespan, job_free[j])
    return start, makespan, mach_next, job_next


def decode_reference(
    order: np.ndarray, machines: np.ndarray, durations: np.ndarray
) -> tuple[list[list[int]] | None, int]:
    """Independent reference in pure Python: the earliest start of every operation is its
    longest path in the disjunctive graph (arcs along each route and each machine's order),
    taken in Kahn's topological order. (start by route position, makespan), or (None, -1) if
    the graph has a cycle."""
    n, m = len(machines), len(machines[0])
    pos = [[0] * m for _ in range(n)]  # route position of job j's operation on machine k
    for j in range(n):
        for o in range(m):
            pos[j][int(machines[j][o])] = o
    succ: dict[tuple[int, int], list[tuple[int, int]]] = {
        (j, o): [] for j in range(n) for o in range(m)
    }
    indeg = dict.fromkeys(succ, 0)
    for j in range(n):
        for o in range(m - 1):
            succ[(j, o)].append((j, o + 1))
            indeg[(j, o + 1)] += 1
    for k in range(m):
        row = [int(x) for x in order[k]]
        for a, b in zip(row, row[1:], strict=False):
            u, v = (a, pos[a][k]), (b, pos[b][k])
            succ[u].append(v)
            indeg[v] += 1
    start = [[0] * m for _ in range(n)]
    ready = [u for u, d in indeg.items() if d == 0]
    seen = 0
    while ready:
        u = ready.pop()
        seen += 1
        end = start[u[0]][u[1]] + int(durations[u[0]][u[1]])
        for v in succ[u]:
            start[v[0]][v[1]] = max(start[v[0]][v[1]], end)
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)
    if seen < n * m:
        return None, -1
    makespan = max(start[j][m - 1] + int(durations[j][m - 1]) for j in range(n))
    return start, makespan


def permutation_error(order: np.ndarray) -> str:
    """Why `order` [m, n] is not one permutation of the n jobs per machine ('' if it is)."""
    m, n = order.shape
    for k in range(m):
        row = order[k]
        bad = np.flatnonzero((row < 0) | (row >= n))
        if bad.size:
            return f"machine {k}: job index {int(row[bad[0]])} is not in 0..{n - 1}"
        counts = np.bincount(row, minlength=n)
        if np.any(counts > 1):
            missing = np.flatnonzero(counts == 0)
            return (
                f"machine {k}: job {int(np.argmax(counts > 1))} appears {int(counts.max())} times"
                f" and job {int(missing[0])} is missing; each machine's row must list every job once"
            )
    return ""


def deadlock_reason(
    order: np.ndarray, machines: np.ndarray, mach_next: np.ndarray, job_next: np.ndarray
) -> str:
    """The waiting cycle behind a deadlock: each stuck machine waits for the next job in its
    order, which is waiting to be processed first on another machine."""
    m, n = order.shape
    stuck = [k for k in range(m) if mach_next[k] < n]
    k, path, seen = stuck[0], [], {}
    while k not in seen:
        seen[k] = len(path)
        j = int(order[k, mach_next[k]])
        wanted = int(machines[j, job_next[j]])
        path.append(f"machine {k} waits for job {j}, which must first go to machine {wanted}")
        k = wanted
    cycle = path[seen[k] :]
    return (
        f"the machine orders deadlock (a cycle with the job routes): {'; '.join(cycle)}; "
        f"{len(stuck)} of {m} machines are stuck"
    )


def start_times_error(start: np.ndarray, machines: np.ndarray, durations: np.ndarray) -> str:
    """The first violated constraint of explicit start times [n, m] ('' if none)."""
    n, m = machines.shape
    out = np.argwhere((start < 0) | (start > MAX_START))
    if out.size:
        j, o = (int(x) for x in out[0])
        return f"job {j} operation {o} starts at {int(start[j, o])}, outside [0, 2**40]"
    end = start + durations
    late = np.argwhere(start[:, 1:] < end[:, :-1])
    if late.size:
        j, o = int(late[0][0]), int(late[0][1]) + 1
        return (
            f"precedence: job {j} operation {o} (machine {int(machines[j, o])}) starts at "
            f"{int(start[j, o])}, before its operation {o - 1} (machine {int(machines[j, o - 1])})"
            f" ends at {int(end[j, o - 1])}"
        )
    for k in range(m):
        jobs, ops = np.nonzero(machines == k)
        by_start = np.lexsort((end[jobs, ops], start[jobs, ops]))
        jobs, ops = jobs[by_start], ops[by_start]
        clash = np.flatnonzero(start[jobs[1:], ops[1:]] < end[jobs[:-1], ops[:-1]])
        if clash.size:
            i = int(clash[0])
            a, b = (int(jobs[i]), int(ops[i])), (int(jobs[i + 1]), int(ops[i + 1]))
            return (
                f"overlap on machine {k}: job {a[0]} runs [{int(start[a])}, {int(end[a])}) and "
                f"job {b[0]} starts at {int(start[b])}"
            )
    return ""


@cache
def bounds() -> dict[str, tuple[int, int]]:
    """(best known upper bound, best published lower bound) per instance, from known.yaml."""
    known = yaml.safe_load(Path(__file__).with_name("known.yaml").read_text())
    return {
        str(k): (int(v["value"]), int(v["proven_bound"]["value"]))
        for k, v in known["values_by_instance"].items()
    }


def _schedule(outputs: dict[str, np.ndarray], params: dict, reference: bool):
    """(start [n, m], makespan, how it was given) or an invalid Evaluation."""
    machines, durations = instance(params.get("instance", "ft10"))
    n, m = machines.shape
    given = [k for k in ("order", "start") if k in outputs]
    if len(given) != 1:
        return Evaluation.failed(
            "invalid",
            "return exactly one of 'order' (per machine, the job sequence) or 'start' "
            f"(per job and operation, the start time); got {given or 'neither'}",
        )
    if given == ["start"]:
        start = outputs["start"]
        if start.shape != (n, m):
            return Evaluation.failed(
                "invalid", f"start must have shape [jobs, machines] = [{n}, {m}], got {start.shape}"
            )
        why = start_times_error(start, machines, durations)
        if why:
            return Evaluation.failed("invalid", why)
        return start, int((start + durations).max()), "start times"
    order = outputs["order"]
    if order.shape != (m, n):
        return Evaluation.failed(
            "invalid", f"order must have shape [machines, jobs] = [{m}, {n}], got {order.shape}"
        )
    why = permutation_error(order)
    if why:
        return Evaluation.failed("invalid", why)
    if reference:
        start, makespan = decode_reference(order, machines, durations)
        if start is None:
            _, _, mach_next, job_next = decode(order, machines, durations)
            return Evaluation.failed(
                "invalid", deadlock_reason(order, machines, mach_next, job_next)
            )
        return np.array(start, dtype=np.int64), makespan, "machine orders"
    start, makespan, mach_next, job_next = decode(order, machines, durations)
    if np.any(job_next < m):
        return Evaluation.failed("invalid", deadlock_reason(order, machines, mach_next, job_next))
    return start, int(makespan), "machine orders"


def _evaluate(outputs: dict[str, np.ndarray], params: dict, reference: bool) -> Evaluation:
    name = str(params.get("instance", "ft10")).lower()
    got = _schedule(outputs, params, reference)
    if isinstance(got, Evaluation):
        return got
    start, makespan, form = got
    machines, durations = instance(name)
    n, m = machines.shape
    ends = (start + durations).max(axis=1)
    metrics = {
        "makespan": float(makespan),
        "jobs": float(n),
        "machines": float(m),
        # Mean job completion over the makespan: high when jobs finish together at the end,
        # low when most finish early; a schedule shape the makespan alone does not say.
        "flow_ratio": float(ends.mean() / makespan) if makespan else 0.0,
        "utilisation": float(durations.sum() / (m * makespan)) if makespan else 0.0,
    }
    feedback = f"valid schedule ({form}) of {name} ({n} jobs x {m} machines), makespan {makespan}"
    return taillard.makespan_evaluation(makespan, metrics, feedback, bounds().get(name))


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Score a schedule with the numba decoder."""
    return _evaluate(outputs, params, reference=False)


def score_numpy(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Reference scorer (pure-Python disjunctive-graph decoder); must agree with `evaluate`."""
    return _evaluate(outputs, params, reference=True)


def verify(outputs: dict[str, np.ndarray], params: dict) -> Verification:
    """Strict re-check in Python integers: machine orders through the independent
    disjunctive-graph decoder, start times constraint by constraint."""
    got = _schedule(outputs, params, reference=True)
    method = "integer arithmetic (disjunctive-graph longest paths / explicit constraint checks)"
    if isinstance(got, Evaluation):
        return Verification(False, method=method, reason=got.error)
    _, makespan, form = got
    return Verification(
        True, float(makespan), str(makespan), method, f"{form}, makespan {makespan}"
    )
