"""Trusted evaluator for the Erdős minimum overlap problem (upper bound on the constant).

n is the length of the returned array, never a number the program reports. The heights are
rescaled to sum n/2 and must then lie in [0, 1]. For n equal steps on [0, 2], the maximum
over continuous shifts of the overlap equals the maximum over grid shifts, so the discrete
correlation below is the exact bound for the step function.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numba import njit

from evolve.evaluators import Evaluation
from evolve.evaluators.verification import Verification

# Heights may exceed [0, 1] by this much after rescaling (floating-point rounding) and are
# then clipped; anything further out is invalid.
RANGE_SLACK = 1e-12


@njit(cache=True, fastmath=True)
def max_overlap(h: np.ndarray) -> float:
    """max over shifts k of sum_i h[i + k] * (1 - h[i]), both indices in range.

    fastmath lets the inner sum be vectorised (reassociated); the result agrees with the
    sequential sum to rounding, and records are confirmed by the exact `verify` anyway.
    """
    n = h.shape[0]
    g = 1.0 - h
    best = -np.inf
    for k in range(-(n - 1), n):
        lo = max(0, -k)
        hi = min(n, n - k)
        a = h[lo + k : hi + k]  # contiguous slices let LLVM vectorise the sum
        b = g[lo:hi]
        s = 0.0
        for i in range(a.shape[0]):
            s += a[i] * b[i]
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


def max_overlap_numpy(h: np.ndarray) -> float:
    """Reference for `max_overlap` in vectorised numpy."""
    return float(np.max(np.correlate(h, 1.0 - h, "full")))


def bound(h: np.ndarray) -> float:
    n = h.shape[0]
    return max_overlap(normalise(np.asarray(h, dtype=np.float64))) * 2.0 / n


def _evaluate(outputs: dict[str, np.ndarray], params: dict, kernel) -> Evaluation:
    h = outputs["h"]
    n = int(h.shape[0])
    try:
        hn = normalise(h)
    except ValueError as exc:
        return Evaluation.failed("invalid", str(exc))
    value = kernel(hn) * 2.0 / n
    return Evaluation.ok(
        value,
        "min",
        metrics={"bound": value, "n": float(n)},
        features={"n": float(n)},
        feedback=f"bound {value:.10f} with n = {n} steps",
    )


def evaluate(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Score a step function with the numba kernel."""
    return _evaluate(outputs, params, max_overlap)


def score_numpy(outputs: dict[str, np.ndarray], params: dict) -> Evaluation:
    """Reference scorer with np.correlate; must agree with `evaluate` to rounding."""
    return _evaluate(outputs, params, max_overlap_numpy)


def _pack(values: list[int], width: int) -> int:
    """Kronecker substitution: sum values[i] * 2^(8 * width * i), for non-negative values."""
    return int.from_bytes(b"".join(v.to_bytes(width, "little") for v in values), "little")


def exact_bound(h: np.ndarray) -> tuple[Fraction, Fraction]:
    """A rigorous upper bound on C from the heights `h`, in exact rational arithmetic.

    Returns (bound, clipped): `clipped` is the mass removed by capping rescaled heights at 1.

    Every float is a dyadic rational, so h_i = a_i / 2^E with integers a_i; with A = sum a_i
    the rescaled heights are a_i n / (2A). They are capped at 1, giving g_i = b_i / (2A) with
    b_i = min(a_i n, 2A), which lose a mass D = n/2 - sum g_i >= 0 (zero when no height
    exceeds 1). Adding the mass D back anywhere below 1 gives an admissible step function f,
    and since each correlation sum changes by at most the mass added, max_k corr_k(f) <=
    max_k corr_k(g) + D. So the bound returned is (2/n) (max_k corr_k(g) + D), exact, and equal
    to the bound of h itself when D = 0. With P_k the sum of the b_j overlapping shift k and
    Q_k = sum_i b_{i+k} b_i, corr_k(g) = (2A P_k - Q_k) / (4A^2). All Q_k come from one
    big-integer product (Kronecker substitution).
    """
    fracs = [Fraction(float(v)) for v in np.asarray(h, dtype=np.float64)]
    n = len(fracs)
    if any(f < 0 for f in fracs):
        raise ValueError("negative height")
    scale = max(f.denominator for f in fracs)  # a power of two, so a multiple of every other
    a = [f.numerator * (scale // f.denominator) for f in fracs]
    total = sum(a)
    if total == 0:
        raise ValueError("all heights are zero; the integral of h must be 1")
    two_a = 2 * total
    b = [min(v * n, two_a) for v in a]
    width = (2 * max(b).bit_length() + n.bit_length() + 8) // 8 + 1
    product = _pack(b, width) * _pack(b[::-1], width)
    raw = product.to_bytes(width * 2 * n, "little")
    # Coefficient t of the product is sum_i b_i b_{n-1-(t-i)} = Q_{n-1-t} (Q is symmetric).
    prefix = [0]
    for v in b:
        prefix.append(prefix[-1] + v)
    best = None
    for t in range(2 * n - 1):
        k = n - 1 - t
        q_k = int.from_bytes(raw[t * width : (t + 1) * width], "little")
        p_k = prefix[min(n, n + k)] - prefix[max(0, k)]
        num = two_a * p_k - q_k
        if best is None or num > best:
            best = num
    clipped = Fraction(n * total - prefix[-1], two_a)
    corr = Fraction(best, two_a * two_a)
    return (corr + clipped) * 2 / n, clipped


def verify(outputs: dict[str, np.ndarray], params: dict) -> Verification:
    """Exact rational recomputation of a rigorous bound from the float heights."""
    method = (
        "exact rational arithmetic (dyadic floats as integers; rescaled heights capped at 1 "
        "and the capped mass added to the bound)"
    )
    h = np.asarray(outputs["h"], dtype=np.float64)
    try:
        normalise(h)  # the same validity domain as evaluate (heights may exceed 1 by 1e-12)
        value, clipped = exact_bound(h)
    except ValueError as exc:
        return Verification(False, method=method, reason=str(exc))
    return Verification(
        True,
        float(value),
        f"{value.numerator}/{value.denominator}",
        method,
        f"n = {h.shape[0]} steps; mass capped at height 1: {float(clipped):.3g}",
    )
