"""Trusted evaluator for circle packing: n disjoint disks in the unit square, maximise the sum of radii.

The verdict is exact. The numba kernel decides every constraint in floating point when the
rounding error provably cannot change the answer (comparisons of two floats are exact; for the
pair test d^2 - (r_i + r_j)^2 the computed value must exceed a bound on its rounding error),
and hands the few undecided cases to exact rational arithmetic (fractions.Fraction on the
float inputs). Touching disks and disks touching a side are allowed (open disks, closed
square). Published packings that are valid only in floating point (overlaps of 1e-18) are
therefore rejected.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numba import njit

from evolve.evaluators import Evaluation
from evolve.evaluators.verification import Verification

# Relative bound on the rounding error of dx*dx + dy*dy - s*s (each of dx, dy, s carries one
# rounding, each square one more, the sum two more): 16 units of 2^-53 is more than enough.
_ERR = 16.0 * 2.0**-53
_TINY = 1e-300  # covers underflow of the squares


@njit(cache=True)
def packing_scan(centers: np.ndarray, radii: np.ndarray) -> tuple[int, int, int, np.ndarray, int]:
    """Check radii >= 0, containment and disjointness, stopping at the first certain failure.

    Returns (code, i, j, undecided, m): code 0 = no certain failure, 1 = negative radius of
    circle i, 2 = circle i leaves the square, 3 = circles i and j overlap. undecided[:m] lists
    the checks the float filter could not decide before that point, as rows (i, j), with
    j = -1 for a containment check; the caller settles them exactly, in order.
    """
    n = radii.shape[0]
    undecided = np.empty((n * (n + 1) // 2 + 1, 2), dtype=np.int64)
    m = 0
    for i in range(n):
        if radii[i] < 0.0:
            return 1, i, -1, undecided, m
    for i in range(n):
        x = centers[i, 0]
        y = centers[i, 1]
        r = radii[i]
        if x < r or y < r:  # comparisons of floats are exact
            return 2, i, -1, undecided, m
        # x + r <= 1: rounding is monotonic and 1 is a float, so fl(x + r) < 1 proves it and
        # fl(x + r) > 1 disproves it; only fl(x + r) == 1 is undecided.
        hx = x + r
        hy = y + r
        if hx > 1.0 or hy > 1.0:
            return 2, i, -1, undecided, m
        if hx == 1.0 or hy == 1.0:
            undecided[m, 0] = i
            undecided[m, 1] = -1
            m += 1
    for i in range(n):
        for j in range(i + 1, n):
            dx = centers[i, 0] - centers[j, 0]
            dy = centers[i, 1] - centers[j, 1]
            s = radii[i] + radii[j]
            a = dx * dx + dy * dy
            b = s * s
            gap = a - b
            err = _ERR * (a + b) + _TINY
            if gap < -err:
                return 3, i, j, undecided, m
            if gap <= err:
                undecided[m, 0] = i
                undecided[m, 1] = j
                m += 1
    return 0, -1, -1, undecided, m


def packing_scan_numpy(centers: np.ndarray, radii: np.ndarray):
    """Reference for `packing_scan` in vectorised numpy (same filter, same order)."""
    n = radii.shape[0]
    empty = np.empty((0, 2), dtype=np.int64)
    neg = np.flatnonzero(radii < 0)
    if neg.size:
        return 1, int(neg[0]), -1, empty, 0
    x, y = centers[:, 0], centers[:, 1]
    hx, hy = x + radii, y + radii
    out = (x < radii) | (y < radii) | (hx > 1.0) | (hy > 1.0)
    touch = ~out & ((hx == 1.0) | (hy == 1.0))
    first_out = int(np.argmax(out)) if out.any() else n
    und_walls = np.flatnonzero(touch[:first_out])
    walls = np.stack([und_walls, np.full_like(und_walls, -1)], axis=1)
    if first_out < n:
        return 2, first_out, -1, walls, walls.shape[0]
    i, j = np.triu_indices(n, 1)
    dx = x[i] - x[j]
    dy = y[i] - y[j]
    s = radii[i] + radii[j]
    a = dx * dx + dy * dy
    b = s * s
    gap = a - b
    err = _ERR * (a + b) + _TINY
    bad = gap < -err
    first_bad = int(np.argmax(bad)) if bad.any() else i.shape[0]
    unsure = np.flatnonzero(np.abs(gap[:first_bad]) <= err[:first_bad])
    pairs = np.concatenate([walls, np.stack([i[unsure], j[unsure]], axis=1)])
    if first_bad < i.shape[0]:
        return 3, int(i[first_bad]), int(j[first_bad]), pairs, pairs.shape[0]
    return 0, -1, -1, pairs, pairs.shape[0]


def _fractions(centers: np.ndarray, radii: np.ndarray, i: int):
    return Fraction(float(centers[i, 0])), Fraction(float(centers[i, 1])), Fraction(float(radii[i]))


def exact_gap(centers: np.ndarray, radii: np.ndarray, i: int, j: int) -> Fraction:
    """Exact slack of one constraint: min side distance minus r (j = -1), or d^2 - (r_i + r_j)^2."""
    xi, yi, ri = _fractions(centers, radii, i)
    if j < 0:
        return min(xi - ri, yi - ri, 1 - xi - ri, 1 - yi - ri)
    xj, yj, rj = _fractions(centers, radii, j)
    return (xi - xj) ** 2 + (yi - yj) ** 2 - (ri + rj) ** 2


def _describe(centers: np.ndarray, radii: np.ndarray, code: int, i: int, j: int, gap=None) -> str:
    if code == 1:
        return f"negative radius {radii[i]:.6g} for circle {i}"
    if code == 2:
        c = centers[i]
        return (
            f"out of range: circle {i} (center ({c[0]:.10g}, {c[1]:.10g}), radius {radii[i]:.10g})"
            " is not inside the unit square"
        )
    d = float(np.hypot(*(centers[i] - centers[j])))
    text = (
        f"overlap: circles {i} and {j} overlap (center distance {d:.12g} < "
        f"r_{i} + r_{j} = {radii[i] + radii[j]:.12g})"
    )
    if gap is not None:
        text += f"; exact d^2 - (r_i + r_j)^2 = {float(gap):.3g}"
    return text


def _evaluate(outputs: dict[str, np.ndarray], params: dict, scan) -> Evaluation:
    n = int(params.get("n", 26))
    centers, radii = outputs["centers"], outputs["radii"]
    if centers.ndim != 2 or centers.shape[1] != 2 or radii.ndim != 1:
        return Evaluation.failed(
            "invalid",
            f"centers must be (n, 2) and radii (n,); got {centers.shape} and {radii.shape}",
        )
    if centers.shape[0] != n or radii.shape[0] != n:
        return Evaluation.failed(
            "invalid",
            f"wrong length: expected n = {n} circles, got {centers.shape[0]} centers and "
            f"{radii.shape[0]} radii",
        )
    code, i, j, undecided, m = scan(centers, radii)
    for a, b in undecided[:m]:
        gap = exact_gap(centers, radii, int(a), int(b))
        if gap < 0:
            kind = 2 if b < 0 else 3
            return Evaluation.failed(
                "invalid", _describe(centers, radii, kind, int(a), int(b), gap)
            )
    if code:
        return Evaluation.failed("invalid", _describe(centers, radii, int(code), int(i), int(j)))
    total = float(np.sum(radii))
    metrics = {
        "sum_radii": total,
        "n": float(n),
        "exact_checks": float(m),
        "max_radius": float(radii.max()),
        "radius_std": float(radii.std()),
    }
    return Evaluation.ok(
        total,
        "max",
        metrics=metrics,
        features={"radius_std": metrics["radius_std"]},
        feedback=f"valid packing of {n} circles, sum of radii {total:.10f} (exactly checked)",
    )


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Exact verdict with the numba float filter; score = sum of radii."""
    return _evaluate(outputs, params, packing_scan)


def score_numpy(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Reference scorer in numpy; must agree with `evaluate` on every input."""
    return _evaluate(outputs, params, packing_scan_numpy)


def verify(outputs: dict[str, np.ndarray], params: dict) -> Verification:
    """Every constraint and the sum in exact rational arithmetic, no float filter."""
    method = "exact rational arithmetic (fractions.Fraction on the float inputs)"
    n = int(params.get("n", 26))
    centers = np.asarray(outputs["centers"], dtype=np.float64)
    radii = np.asarray(outputs["radii"], dtype=np.float64)
    if centers.shape != (n, 2) or radii.shape != (n,):
        return Verification(False, method=method, reason=f"expected ({n}, 2) centers and {n} radii")
    circles = [_fractions(centers, radii, i) for i in range(n)]
    for i, (x, y, r) in enumerate(circles):
        if r < 0:
            return Verification(False, method=method, reason=f"negative radius for circle {i}")
        if min(x - r, y - r, 1 - x - r, 1 - y - r) < 0:
            return Verification(False, method=method, reason=f"circle {i} leaves the unit square")
    for i in range(n):
        xi, yi, ri = circles[i]
        for j in range(i + 1, n):
            xj, yj, rj = circles[j]
            gap = (xi - xj) ** 2 + (yi - yj) ** 2 - (ri + rj) ** 2
            if gap < 0:
                return Verification(
                    False,
                    method=method,
                    reason=f"circles {i} and {j} overlap: d^2 - (r_i + r_j)^2 = {float(gap):.3g}",
                )
    total = sum(c[2] for c in circles)
    return Verification(
        True, float(total), f"{total.numerator}/{total.denominator}", method, f"{n} disjoint disks"
    )
