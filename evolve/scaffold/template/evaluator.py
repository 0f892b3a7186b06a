"""Trusted evaluator: recomputes the score from the returned points and checks every constraint."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import njit

from evolve.evaluators import Evaluation
from evolve.evaluators.verification import Verification


@njit(cache=True)
def min_distance_sq(p: np.ndarray) -> float:
    best = np.inf
    n = p.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            dx = p[i, 0] - p[j, 0]
            dy = p[i, 1] - p[j, 1]
            d = dx * dx + dy * dy
            if d < best:
                best = d
    return best


def _check(points: np.ndarray, params: dict) -> str | None:
    n = int(params["n"])
    if points.shape[0] != n:
        return f"expected {n} points, got {points.shape[0]}"
    if np.any(points < 0.0) or np.any(points > 1.0):
        i = int(np.argmax(np.any((points < 0) | (points > 1), axis=1)))
        return f"point {i} = {points[i].tolist()} lies outside the unit square"
    return None


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    points = outputs["points"]
    problem = _check(points, params)
    if problem:
        return Evaluation.failed("invalid", problem)
    score = math.sqrt(min_distance_sq(points))
    return Evaluation.ok(
        score, "max", metrics={"min_distance": score}, feedback=f"min distance {score:.9f}"
    )


def verify(outputs: dict[str, np.ndarray], params: dict) -> Verification:
    """Exact: squared distances in rational arithmetic on the float coordinates."""
    points = outputs["points"]
    problem = _check(points, params)
    if problem:
        return Verification(valid=False, reason=problem, method="exact rational arithmetic")
    q = [(Fraction(float(x)), Fraction(float(y))) for x, y in points]
    best = min((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 for i, a in enumerate(q) for b in q[i + 1 :])
    return Verification(
        valid=True,
        value=math.sqrt(best),
        exact_value=f"sqrt({best.numerator}/{best.denominator})",
        method="exact rational arithmetic (squared distance)",
    )
