"""Trusted evaluator for the Erdős discrepancy problem (longest sequence of bounded discrepancy).

`x` is x_1..x_N (stored from index 0); N is the array's length. Every entry must be +1 or -1,
and for every d >= 1 and k >= 1 with kd <= N, |x_d + x_2d + ... + x_kd| <= C (the problem
parameter). The score is N. The scan visits sum_d N/d = O(N log N) terms.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from evolve.evaluators import Evaluation
from evolve.evaluators.verification import Verification

KNOWN_MAXIMUM = {1: 11, 2: 1160}  # proved maxima (C = 1 classical; C = 2 Konev and Lisitsa 2014)


@njit(cache=True)
def discrepancy_scan(x: np.ndarray, c: int) -> tuple[int, int, int, int]:
    """(discrepancy, p, d, k): the largest |x_d + ... + x_kd| over all d, k with kd <= N, and the
    smallest position p = kd at which a partial sum first exceeds c, with its d and k
    (p = N + 1, d = k = 0 when none does). The prefix x_1..x_{p-1} has discrepancy <= c."""
    n = x.shape[0]
    worst = 0
    first = n + 1
    first_d = 0
    first_k = 0
    for d in range(1, n + 1):
        s = 0
        for p in range(d, n + 1, d):
            s += x[p - 1]
            a = s if s >= 0 else -s
            if a > worst:
                worst = a
            if a > c and p < first:
                first = p
                first_d = d
                first_k = p // d
    return worst, first, first_d, first_k


def discrepancy_scan_numpy(x: np.ndarray, c: int) -> tuple[int, int, int, int]:
    """Reference for `discrepancy_scan`: a cumulative sum along each progression."""
    n = x.shape[0]
    worst, first, first_d, first_k = 0, n + 1, 0, 0
    for d in range(1, n + 1):
        a = np.abs(np.cumsum(x[d - 1 :: d]))
        worst = max(worst, int(a.max()))
        over = np.flatnonzero(a > c)
        if over.size and (over[0] + 1) * d < first:
            first, first_d, first_k = int((over[0] + 1) * d), d, int(over[0] + 1)
    return worst, first, first_d, first_k


def _evaluate(outputs: dict[str, np.ndarray], params: dict, kernel) -> Evaluation:
    c = int(params.get("C", 2))
    x = outputs["x"]
    if x.ndim != 1:
        return Evaluation.failed("invalid", f"x must be a 1-D array, got shape {x.shape}")
    bad = np.flatnonzero((x != 1) & (x != -1))
    if bad.size:
        i = int(bad[0])
        return Evaluation.failed(
            "invalid", f"out of range: x_{i + 1} = {int(x[i])} (index {i}) is not +1 or -1"
        )
    n = int(x.shape[0])
    worst, first, d, k = (int(v) for v in kernel(np.ascontiguousarray(x, dtype=np.int64), c))
    if first <= n:
        return Evaluation.failed(
            "invalid",
            f"discrepancy {worst} > C = {c}: |x_{d} + x_{2 * d} + ... + x_{k * d}| = {c + 1} "
            f"(d = {d}, k = {k}); the first {first - 1} terms are a valid sequence",
        )
    known = KNOWN_MAXIMUM.get(c)
    metrics = {"length": float(n), "discrepancy": float(worst), "C": float(c)}
    feedback = f"valid: length N = {n} with discrepancy {worst} <= C = {c}"
    if known is not None:
        feedback += f" (the proved maximum for C = {c} is {known})"
    plus = float(np.count_nonzero(x == 1)) / n
    metrics["plus_fraction"] = plus
    return Evaluation.ok(
        n, "max", metrics=metrics, features={"plus_fraction": plus}, feedback=feedback
    )


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Score a sequence with the numba kernel."""
    return _evaluate(outputs, params, discrepancy_scan)


def score_numpy(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Reference scorer in numpy; must agree with `evaluate` on every input."""
    return _evaluate(outputs, params, discrepancy_scan_numpy)


def verify(outputs: dict[str, np.ndarray], params: dict) -> Verification:
    """Strict check in Python integers: every partial sum of every progression recomputed."""
    method = "integer arithmetic (every homogeneous progression summed in Python ints)"
    c = int(params.get("C", 2))
    x = [int(v) for v in np.asarray(outputs["x"]).ravel()]
    for i, v in enumerate(x):
        if v not in (1, -1):
            return Verification(False, method=method, reason=f"x_{i + 1} = {v} is not +1 or -1")
    n = len(x)
    for d in range(1, n + 1):
        s = 0
        for k, p in enumerate(range(d, n + 1, d), start=1):
            s += x[p - 1]
            if abs(s) > c:
                return Verification(
                    False, method=method, reason=f"|x_{d} + ... + x_{k * d}| = {abs(s)} > C = {c}"
                )
    return Verification(True, float(n), str(n), method, f"length {n}, discrepancy <= {c}")
