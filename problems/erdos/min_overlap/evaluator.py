"""Trusted evaluator for the Erdős minimum overlap problem (upper bound on the constant).

n is the length of the returned array, never a number the program reports. The heights are
rescaled to sum n/2 and must then lie in [0, 1]. For n equal steps on [0, 2], the maximum
over continuous shifts of the overlap equals the maximum over grid shifts, so the discrete
correlation below is the exact bound for the step function.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from evolve.evaluators import Evaluation

# Heights may exceed [0, 1] by this much after rescaling (floating-point rounding) and are
# then clipped; anything further out is invalid.
RANGE_SLACK = 1e-12


@njit(cache=True)
def max_overlap(h: np.ndarray) -> float:
    """max over shifts k of sum_i h[i + k] * (1 - h[i]), both indices in range."""
    n = h.shape[0]
    best = -np.inf
    for k in range(-(n - 1), n):
        lo = max(0, -k)
        hi = min(n, n - k)
        s = 0.0
        for i in range(lo, hi):
            s += h[i + k] * (1.0 - h[i])
        if s > best:
            best = s
    return best


def normalise(h: np.ndarray) -> np.ndarray:
    """Rescale to sum n/2; raise ValueError if the heights cannot be a valid step function."""
    n = h.shape[0]
    if np.any(h < 0):
        raise ValueError(f"negative height {h.min():.6g} at step {int(np.argmin(h))}")
    total = float(h.sum())
    if total <= 0:
        raise ValueError("all heights are zero; the integral of h must be 1")
    h = h * (n / 2.0 / total)
    if h.max() > 1.0 + RANGE_SLACK:
        raise ValueError(
            f"after rescaling to sum n/2, height {h.max():.6g} at step {int(np.argmax(h))} exceeds 1"
        )
    return np.clip(h, 0.0, 1.0)


def bound(h: np.ndarray) -> float:
    n = h.shape[0]
    return max_overlap(normalise(np.asarray(h, dtype=np.float64))) * 2.0 / n


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    h = outputs["h"]
    n = int(h.shape[0])
    try:
        hn = normalise(h)
    except ValueError as exc:
        return Evaluation.failed("invalid", str(exc))
    value = max_overlap(hn) * 2.0 / n
    return Evaluation.ok(
        value,
        "min",
        metrics={"bound": value, "n": float(n)},
        features={"n": float(n)},
        feedback=f"bound {value:.10f} with n = {n} steps",
    )
