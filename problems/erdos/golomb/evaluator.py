"""Trusted evaluator for Golomb rulers (Sidon sets; Erdős problem 30).

A ruler is the set of integers in `marks`; its size is the array's length, which must equal the
problem parameter n. Order does not matter and the ruler is normalised by translation (the
smallest mark is moved to 0), so the score is max(marks) - min(marks). Every pairwise
difference must be distinct; a repeated mark is the difference 0 occurring twice.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import yaml
from numba import njit

from evolve.evaluators import Evaluation
from evolve.evaluators.verification import Verification

# Marks must lie in [-MAX_ABS_MARK, MAX_ABS_MARK], so that every difference fits easily in int64.
MAX_ABS_MARK = 2**40


@njit(cache=True)
def repeated_difference(m: np.ndarray) -> int:
    """The smallest difference occurring twice among sorted, distinct marks `m`; 0 if none.

    A marker array over [0, L] when the ruler is short enough (the usual case, O(n^2)),
    otherwise sorting all n(n-1)/2 differences.
    """
    n = m.shape[0]
    if n < 2:
        return 0
    length = m[n - 1] - m[0]
    best = 0
    if length <= 16 * n * n + 1024:
        seen = np.zeros(length + 1, dtype=np.uint8)
        for i in range(n):
            for j in range(i + 1, n):
                d = m[j] - m[i]
                if seen[d]:
                    if best == 0 or d < best:
                        best = d
                else:
                    seen[d] = 1
        return best
    diffs = np.empty(n * (n - 1) // 2, dtype=np.int64)
    t = 0
    for i in range(n):
        for j in range(i + 1, n):
            diffs[t] = m[j] - m[i]
            t += 1
    diffs.sort()
    for t in range(1, diffs.shape[0]):
        if diffs[t] == diffs[t - 1]:
            return diffs[t]
    return 0


def repeated_difference_numpy(m: np.ndarray) -> int:
    """Reference for `repeated_difference` in vectorised numpy."""
    i, j = np.triu_indices(m.shape[0], 1)
    values, counts = np.unique(m[j] - m[i], return_counts=True)
    repeated = values[counts > 1]
    return int(repeated[0]) if repeated.size else 0


@cache
def optimal_lengths() -> dict[int, int]:
    """Proved optimal lengths by number of marks (OEIS A003022), read from known.yaml."""
    known = yaml.safe_load((Path(__file__).parent / "known.yaml").read_text())
    return {int(k): int(v) for k, v in known["values_by_n"].items()}


def canonical(outputs: dict[str, np.ndarray], params: dict) -> tuple[int, ...]:
    """The ruler up to translation and reflection (a -> L - a): the smaller of the two forms."""
    m = np.sort(np.asarray(outputs["marks"], dtype=np.int64))
    m = m - m[0]
    forward = tuple(int(v) for v in m)
    backward = tuple(int(v) for v in (m[-1] - m)[::-1])
    return min(forward, backward)


def _pairs_with_difference(m: np.ndarray, d: int) -> list[tuple[int, int]]:
    i, j = np.nonzero(m[None, :] - m[:, None] == d)
    return [(int(m[b]), int(m[a])) for a, b in zip(i, j, strict=True)]


def _evaluate(outputs: dict[str, np.ndarray], params: dict, kernel) -> Evaluation:
    n = int(params.get("n", 12))
    marks = outputs["marks"]
    if marks.ndim != 1:
        return Evaluation.failed("invalid", f"marks must be a 1-D array, got shape {marks.shape}")
    if marks.shape[0] != n:
        return Evaluation.failed(
            "invalid", f"wrong length: expected exactly n = {n} marks, got {marks.shape[0]}"
        )
    if np.any(np.abs(marks) > MAX_ABS_MARK):
        k = int(np.argmax(np.abs(marks)))
        return Evaluation.failed(
            "invalid", f"mark {int(marks[k])} at index {k} is out of range (|mark| <= 2**40)"
        )
    m = np.sort(marks)
    dup = np.flatnonzero(m[1:] == m[:-1])
    if dup.size:
        return Evaluation.failed("invalid", f"repeated mark {int(m[dup[0]])}")
    d = int(kernel(m))
    if d:
        pairs = _pairs_with_difference(m, d)[:2]
        shown = " and ".join(f"{b}-{a}" for b, a in pairs)
        return Evaluation.failed("invalid", f"repeated difference {d}: {shown}")
    length = int(m[-1] - m[0])
    optimal = optimal_lengths().get(n)
    metrics = {"length": float(length), "n": float(n)}
    feedback = f"valid Golomb ruler with {n} marks, length {length}"
    if optimal is not None:
        metrics["gap_to_optimal"] = float(length - optimal)
        feedback += f" (the proved optimum for n = {n} is {optimal})"
    return Evaluation.ok(
        length, "min", metrics=metrics, features={"n": float(n)}, feedback=feedback
    )


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Score a ruler with the numba kernel."""
    return _evaluate(outputs, params, repeated_difference)


def score_numpy(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Reference scorer in plain numpy; must agree with `evaluate` on every input."""
    return _evaluate(outputs, params, repeated_difference_numpy)


def verify(outputs: dict[str, np.ndarray], params: dict) -> Verification:
    """Strict check in Python integers: every difference recomputed into a set."""
    method = "integer arithmetic (all pairwise differences in a Python set)"
    n = int(params.get("n", 12))
    marks = sorted(int(v) for v in np.asarray(outputs["marks"]).ravel())
    if len(marks) != n:
        return Verification(False, method=method, reason=f"expected {n} marks, got {len(marks)}")
    seen: dict[int, tuple[int, int]] = {}
    for i, a in enumerate(marks):
        for b in marks[i + 1 :]:
            d = b - a
            if d == 0:
                return Verification(False, method=method, reason=f"repeated mark {a}")
            if d in seen:
                (c, e) = seen[d]
                return Verification(
                    False, method=method, reason=f"repeated difference {d}: {e}-{c} and {b}-{a}"
                )
            seen[d] = (a, b)
    length = marks[-1] - marks[0]
    return Verification(True, float(length), str(length), method, f"{n} marks, length {length}")
