"""Canonical forms: two constructions that differ only by a symmetry of the problem compare equal.

A problem's evaluator.py may define `canonical(outputs, params) -> bytes | tuple`; it is used
first. Otherwise a fallback registered here by problem name is used (Golomb rulers: translation
and reflection; minimum overlap: scale and reflection), and otherwise the outputs themselves.
Floats are rounded to FLOAT_DIGITS significant digits only to drop the last bits of noise;
two forms are the same construction when `same_form` finds every number equal within the
problem's tolerance (so a construction read back from a JSON file, or recomputed with other
rounding, still matches).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from evolve.problem import Problem

FLOAT_DIGITS = 15


def same_form(a: Any, b: Any, tolerance: float) -> bool:
    """Whether two canonical forms agree: the same structure, equal strings and integers, and
    floats equal within `tolerance` (relative, and absolute near zero)."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(
            same_form(x, y, tolerance) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
        return False
    if isinstance(a, bytes) and isinstance(b, bytes):
        return a == b
    return type(a) is type(b) and a == b


def _rounded(a: np.ndarray) -> tuple:
    a = np.asarray(a)
    if a.dtype.kind == "f":
        # Round to significant digits; -0.0 and 0.0 are the same value.
        return tuple(float(f"{x:.{FLOAT_DIGITS}g}") + 0.0 for x in a.ravel().tolist())
    return tuple(int(x) for x in a.ravel().tolist())


def plain_canonical(outputs: dict[str, Any]) -> tuple:
    """The outputs as they are: names, shapes and (rounded) values."""
    out = []
    for name in sorted(outputs):
        a = np.asarray(outputs[name])
        out.append((name, a.shape, _rounded(a)))
    return tuple(out)


def _only_array(outputs: dict[str, Any], preferred: tuple[str, ...]) -> np.ndarray:
    for name in preferred:
        if name in outputs:
            return np.asarray(outputs[name])
    if len(outputs) == 1:
        return np.asarray(next(iter(outputs.values())))
    raise ValueError(f"cannot tell which output holds the construction among {sorted(outputs)}")


def golomb_canonical(outputs: dict[str, Any], params: dict[str, Any]) -> tuple:
    """A Golomb ruler up to translation and reflection: marks shifted to start at 0, and the
    lexicographically smaller of the ruler and its mirror image (a -> L - a)."""
    marks = np.unique(_only_array(outputs, ("marks", "ruler", "a")).astype(np.int64).ravel())
    if marks.size == 0:
        return ("golomb", ())
    marks = marks - marks[0]
    length = int(marks[-1])
    mirror = np.sort(length - marks)
    return ("golomb", min(tuple(int(x) for x in marks), tuple(int(x) for x in mirror)))


def min_overlap_canonical(outputs: dict[str, Any], params: dict[str, Any]) -> tuple:
    """A step function up to scale (the evaluator rescales to sum n/2) and reflection."""
    h = _only_array(outputs, ("h",)).astype(np.float64).ravel()
    total = float(h.sum())
    if total > 0:
        h = h * (h.size / 2.0 / total)
    fwd, back = _rounded(h), _rounded(h[::-1])
    return ("min_overlap", min(fwd, back))


def circles_canonical(outputs: dict[str, Any], params: dict[str, Any]) -> tuple:
    """A packing of circles in the unit square up to the order of the circles and the eight
    symmetries of the square."""
    c = np.asarray(outputs["centers"], dtype=np.float64).reshape(-1, 2)
    r = np.asarray(outputs["radii"], dtype=np.float64).ravel()
    forms = []
    for swap in (False, True):
        for fx in (False, True):
            for fy in (False, True):
                x, y = (c[:, 1], c[:, 0]) if swap else (c[:, 0], c[:, 1])
                x = 1.0 - x if fx else x
                y = 1.0 - y if fy else y
                rows = sorted(zip(_rounded(x), _rounded(y), _rounded(r), strict=False))
                forms.append(tuple(rows))
    return ("circles", min(forms))


# Fallbacks by problem name, for problems whose evaluator.py does not define canonical().
FALLBACKS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Hashable]] = {
    "erdos/golomb": golomb_canonical,
    "erdos/golomb_ruler": golomb_canonical,
    "erdos/min_overlap": min_overlap_canonical,
    "packing/circles": circles_canonical,
}


def _hashable(x: Any) -> Hashable:
    if isinstance(x, np.ndarray):
        return (x.shape, _rounded(x))
    if isinstance(x, (list, tuple)):
        return tuple(_hashable(v) for v in x)
    if isinstance(x, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in x.items()))
    if isinstance(x, float):
        return float(f"{x:.{FLOAT_DIGITS}g}")
    return x


def canonical_source(problem: Problem) -> str:
    """Which canonical form is used for a problem, for the verdict's record."""
    if callable(getattr(problem.evaluator_module, "canonical", None)):
        return "evaluator.canonical"
    if problem.name in FALLBACKS:
        return f"evolve.literature.canonical fallback for {problem.name}"
    return "plain (no symmetries)"


def _call_canonical(fn: Callable[..., Any], outputs: dict[str, Any], params: dict[str, Any]) -> Any:
    """canonical(outputs, params) is the contract; canonical(array) is accepted for a problem
    with one output."""
    try:
        n_args = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        n_args = 2
    if n_args == 1:
        return fn(next(iter(outputs.values())) if len(outputs) == 1 else outputs)
    return fn(outputs, params)


def canonical_form(problem: Problem, outputs: dict[str, Any]) -> Hashable:
    """The canonical form of `outputs` under the problem's symmetries."""
    fn = getattr(problem.evaluator_module, "canonical", None)
    if callable(fn):
        return _hashable(_call_canonical(fn, outputs, dict(problem.params)))
    fallback = FALLBACKS.get(problem.name)
    if fallback is not None:
        return fallback(outputs, dict(problem.params))
    return plain_canonical(outputs)
