"""Trusted evaluator for the permutation flow shop (Fm|prmu|Cmax) on Taillard's instances.

An instance (ta001-ta120, regenerated from Taillard's seeds) has n jobs and m machines; every
job visits machines 0, 1, ..., m-1 in that order, job j taking `times[k, j]` on machine k, and
every machine processes the jobs in the same order. The program returns that order,
`permutation` (0-based job indices, each exactly once); the makespan is the completion time of
the last job on the last machine:
    C[k, i] = max(C[k - 1, i], C[k, i - 1]) + times[k, permutation[i]].

`makespan` is the numba kernel (job by job); `makespan_reference` an independent pure-Python
loop (machine by machine, Python integers), used by `score_numpy` and `verify`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import yaml
from numba import njit

from evolve.evaluators import Evaluation, taillard
from evolve.evaluators.verification import Verification

INSTANCES = tuple(f"ta{i:03d}" for i in range(1, 121))


class InstanceError(ValueError):
    """An unknown instance name; the message lists the valid ones."""


@cache
def instance(name: str) -> np.ndarray:
    """times[k, j] of a Taillard flow-shop instance (ta001-ta120), read-only."""
    name = str(name).lower()
    if name not in INSTANCES:
        raise InstanceError(f"unknown flow-shop instance {name!r}; valid names: ta001-ta120")
    times = taillard.flowshop(name)
    times.flags.writeable = False
    return times


def inputs(params: dict) -> dict[str, np.ndarray]:
    """What the program is given: the processing times [machines, jobs]."""
    return {"times": instance(params.get("instance", "ta001"))}


@njit(cache=True)
def completion_times(permutation: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Completion time of each job (in permutation order) on the last machine."""
    m = times.shape[0]
    n = permutation.shape[0]
    c = np.zeros(m, np.int64)  # completion of the previous job on each machine
    out = np.empty(n, np.int64)
    for i in range(n):
        j = permutation[i]
        c[0] += times[0, j]
        for k in range(1, m):
            c[k] = max(c[k], c[k - 1]) + times[k, j]
        out[i] = c[m - 1]
    return out


@njit(cache=True)
def makespan(permutation: np.ndarray, times: np.ndarray) -> int:
    """Makespan of a valid permutation."""
    return completion_times(permutation, times)[-1]


def makespan_reference(permutation, times) -> int:
    """The same recurrence in the other loop order (machine by machine), in Python integers."""
    perm = [int(j) for j in permutation]
    row = [0] * len(perm)  # completion times on the previous machine
    for k in range(len(times)):
        t, done = times[k], 0
        for i, j in enumerate(perm):
            done = max(done, row[i]) + int(t[j])
            row[i] = done
    return row[-1]


def permutation_error(permutation: np.ndarray, n: int) -> str:
    """Why `permutation` is not a permutation of the n jobs ('' if it is)."""
    if permutation.ndim != 1 or permutation.shape[0] != n:
        return f"permutation must list each of the {n} jobs once; got shape {permutation.shape}"
    bad = np.flatnonzero((permutation < 0) | (permutation >= n))
    if bad.size:
        return (
            f"job index {int(permutation[bad[0]])} at position {int(bad[0])} is not in 0..{n - 1}"
        )
    counts = np.bincount(permutation, minlength=n)
    if np.any(counts > 1):
        dup = int(np.argmax(counts > 1))
        where = [int(i) for i in np.flatnonzero(permutation == dup)[:2]]
        missing = int(np.flatnonzero(counts == 0)[0])
        return (
            f"job {dup} appears at positions {where[0]} and {where[1]} and job {missing} is "
            "missing; give each job exactly once"
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


def _evaluate(outputs: dict[str, np.ndarray], params: dict, reference: bool) -> Evaluation:
    name = str(params.get("instance", "ta001")).lower()
    times = instance(name)
    m, n = times.shape
    perm = outputs["permutation"]
    why = permutation_error(perm, n)
    if why:
        return Evaluation.failed("invalid", why)
    ends = completion_times(perm, times)
    span = makespan_reference(perm, times) if reference else int(ends[-1])
    metrics = {
        "makespan": float(span),
        "jobs": float(n),
        "machines": float(m),
        # Mean job completion over the makespan: low when jobs leave early and evenly.
        "flow_ratio": float(ends.mean() / span),
    }
    feedback = f"valid permutation of {name} ({n} jobs x {m} machines), makespan {span}"
    return taillard.makespan_evaluation(span, metrics, feedback, bounds().get(name))


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Score a permutation with the numba kernel."""
    return _evaluate(outputs, params, reference=False)


def score_numpy(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Reference scorer (pure-Python recurrence); must agree with `evaluate`."""
    return _evaluate(outputs, params, reference=True)


def verify(outputs: dict[str, np.ndarray], params: dict) -> Verification:
    """Strict re-check in Python integers."""
    method = "integer arithmetic (the makespan recurrence in Python integers)"
    times = instance(params.get("instance", "ta001")).tolist()
    perm = np.asarray(outputs["permutation"])
    why = permutation_error(perm, len(times[0]))
    if why:
        return Verification(False, method=method, reason=why)
    span = makespan_reference(perm, times)
    return Verification(True, float(span), str(span), method, f"makespan {span}")
