"""Trusted evaluator for the sum-difference exponent (Gyarmati-Hennecart-Ruzsa lemma, constant C_3a).

`U` is a set of non-negative integers containing 0, given as an integer array (any order, no
repeats). With M = max U, the lemma of Gyarmati, Hennecart and Ruzsa gives the lower bound

    C_3a >= 1 + log(|U - U| / |U + U|) / log(2M + 1),

valid because |U - U| <= 2M + 1 always holds for such U. The score is that bound. Sizes of
the sumset and difference set are counted exactly with marker arrays over [0, 2M].
"""

from __future__ import annotations

import math
from decimal import Context, Decimal

import numpy as np
from numba import njit

from evolve.evaluators import Evaluation
from evolve.evaluators.verification import Verification

# max U is capped so that the two marker arrays (2M + 1 and M + 1 bytes) stay near 100 MB.
MAX_ELEMENT = 2**25


@njit(cache=True)
def sum_difference_counts(u: np.ndarray) -> tuple[int, int]:
    """(|U + U|, |U - U|) for sorted, distinct, non-negative integers u; O(|U|^2)."""
    n = u.shape[0]
    top = u[n - 1]
    sums = np.zeros(2 * top + 1, dtype=np.uint8)
    diffs = np.zeros(top + 1, dtype=np.uint8)
    for i in range(n):
        a = u[i]
        for j in range(i, n):
            sums[a + u[j]] = 1
            diffs[u[j] - a] = 1
    s = 0
    for t in range(sums.shape[0]):
        s += sums[t]
    d = 0
    for t in range(1, diffs.shape[0]):
        d += diffs[t]
    return s, 2 * d + 1


def sum_difference_counts_numpy(u: np.ndarray) -> tuple[int, int]:
    """Reference for `sum_difference_counts`: marker arrays filled from np.add/subtract.outer."""
    top = int(u[-1])
    sums = np.zeros(2 * top + 1, dtype=bool)
    sums[np.add.outer(u, u).ravel()] = True
    diffs = np.zeros(2 * top + 1, dtype=bool)
    diffs[(np.subtract.outer(u, u) + top).ravel()] = True
    return int(np.count_nonzero(sums)), int(np.count_nonzero(diffs))


def ghr_bound(sums: int, diffs: int, top: int) -> float:
    return 1.0 + math.log(diffs / sums) / math.log(2 * top + 1)


def _check_set(u: np.ndarray) -> tuple[np.ndarray | None, str]:
    if u.ndim != 1:
        return None, f"U must be a 1-D array, got shape {u.shape}"
    if np.any(u < 0):
        k = int(np.argmin(u))
        return None, f"out of range: element {int(u[k])} at index {k} is negative"
    if np.any(u > MAX_ELEMENT):
        k = int(np.argmax(u))
        return None, f"out of range: element {int(u[k])} at index {k} exceeds 2**25"
    s = np.sort(u)
    dup = np.flatnonzero(s[1:] == s[:-1])
    if dup.size:
        return None, f"repeated element {int(s[dup[0]])} (U is a set)"
    if s[0] != 0:
        return None, "U must contain 0"
    if s.shape[0] < 2:
        return None, "U must contain a positive integer besides 0"
    return s, ""


def _evaluate(outputs: dict[str, np.ndarray], params: dict, kernel) -> Evaluation:
    u, reason = _check_set(outputs["U"])
    if u is None:
        return Evaluation.failed("invalid", reason)
    sums, diffs = (int(v) for v in kernel(u))
    top = int(u[-1])
    value = ghr_bound(sums, diffs, top)
    metrics = {
        "bound": value,
        "size": float(u.shape[0]),
        "max": float(top),
        "sumset": float(sums),
        "difference_set": float(diffs),
        "log2_max": math.log2(top),
    }
    return Evaluation.ok(
        value,
        "max",
        metrics=metrics,
        features={"log2_max": metrics["log2_max"]},
        feedback=(
            f"bound {value:.10f}: |U| = {u.shape[0]}, max U = {top}, |U+U| = {sums}, "
            f"|U-U| = {diffs}"
        ),
    )


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Score a set with the numba kernel."""
    return _evaluate(outputs, params, sum_difference_counts)


def score_numpy(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Reference scorer in numpy; must agree with `evaluate` on every input."""
    return _evaluate(outputs, params, sum_difference_counts_numpy)


def verify(outputs: dict[str, np.ndarray], params: dict) -> Verification:
    """Counts in exact integer arithmetic (big-integer bitsets); the logarithms to 40 digits."""
    method = (
        "integer arithmetic (|U+U| and |U-U| as Python big-integer bitsets); "
        "value = 1 + ln(|U-U|/|U+U|)/ln(2 max U + 1) in 40-digit decimal"
    )
    values = sorted(int(v) for v in np.asarray(outputs["U"]).ravel())
    if len(set(values)) != len(values):
        return Verification(False, method=method, reason="repeated element")
    if not values or values[0] != 0:
        return Verification(False, method=method, reason="U must contain 0 (and nothing negative)")
    if len(values) < 2:
        return Verification(False, method=method, reason="U needs a positive element")
    bits = 0
    for v in values:
        bits |= 1 << v
    sums = 0
    diffs = 0
    for v in values:
        sums |= bits << v
        diffs |= bits >> v
    n_sums = sums.bit_count()
    n_diffs = 2 * (diffs.bit_count() - 1) + 1
    top = values[-1]
    if n_diffs > 2 * top + 1:  # impossible for such U; kept as the lemma's stated hypothesis
        return Verification(False, method=method, reason="|U-U| > 2 max U + 1")
    ctx = Context(prec=40)
    value = ctx.add(
        1,
        ctx.divide(
            ctx.ln(ctx.divide(Decimal(n_diffs), Decimal(n_sums))), ctx.ln(Decimal(2 * top + 1))
        ),
    )
    return Verification(
        True,
        float(value),
        None,
        method,
        f"|U| = {len(values)}, max U = {top}, |U+U| = {n_sums}, |U-U| = {n_diffs}; "
        f"value to 40 digits {value}",
    )
