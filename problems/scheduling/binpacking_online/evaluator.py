"""Trusted evaluator for online bin packing (FunSearch's setting): instances, session, scoring.

Everything here runs in the evaluator's process, never in the child's. `load_instances` builds
the instances (seeded generators or the published files); `online_session` reveals one item at a
time to the child's harness and checks each decision against its own record of the bins;
`evaluate` rescores that record from scratch (every item in one bin, no bin over capacity) and
gives the % of excess bins over the L1 bound; `aggregate` combines the instances of a dataset
exactly as FunSearch does. Item sizes and capacities are integers (checked on load), so every
sum below is exact in float64 and the session, the kernel and `verify` cannot disagree.
"""

from __future__ import annotations

import glob
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from evolve.evaluators import Evaluation
from evolve.evaluators.online import OnlineError, OnlineSession
from evolve.evaluators.verification import Verification

# Sizes and capacities must stay integers far below 2**53 for float64 sums to be exact.
MAX_CAPACITY = 2**31
MAX_ITEMS = 1_000_000


class InstanceError(ValueError):
    """An instance source (problem.yaml entry or data file) that cannot be used."""


# --- instances ------------------------------------------------------------------------------
def weibull_sizes(
    rng: np.random.Generator,
    n_items: int = 500,
    capacity: int = 100,
    scale: float = 45.0,
    shape: float = 3.0,
) -> np.ndarray:
    """FunSearch's Weibull(45, 3) items: scale * Weibull(shape), rounded, clipped to [1, C]."""
    raw = scale * rng.weibull(shape, int(n_items))
    return np.clip(np.round(raw), 1, capacity).astype(np.float64)


def or_like_sizes(
    rng: np.random.Generator,
    n_items: int = 250,
    capacity: int = 150,
    low: int = 20,
    high: int = 100,
) -> np.ndarray:
    """Falkenauer's uniform class (OR-Library binpack1-4): integers uniform in [low, high]."""
    if not 1 <= low <= high <= capacity:
        raise InstanceError(
            f"or_like needs 1 <= low <= high <= capacity, got {low}, {high}, {capacity}"
        )
    return rng.integers(low, high + 1, int(n_items)).astype(np.float64)


GENERATORS = {"weibull": weibull_sizes, "or_like": or_like_sizes}


def read_orlib(path: Path) -> list[dict[str, Any]]:
    """OR-Library binpack format: a count, then per instance a name, `capacity n best`, n sizes."""
    tokens = path.read_text().split()
    try:
        count, pos = int(tokens[0]), 1
        out = []
        for _ in range(count):
            name = tokens[pos]
            capacity, n, best = (int(float(t)) for t in tokens[pos + 1 : pos + 4])
            sizes = np.array([float(t) for t in tokens[pos + 4 : pos + 4 + n]])
            if sizes.size != n:
                raise InstanceError(
                    f"{path}: instance {name} announces {n} items, has {sizes.size}"
                )
            out.append({"name": name, "sizes": sizes, "capacity": capacity, "best_known": best})
            pos += 4 + n
    except (IndexError, ValueError) as exc:
        if isinstance(exc, InstanceError):
            raise
        raise InstanceError(f"{path} is not in OR-Library binpack format ({exc})") from None
    if pos != len(tokens):
        raise InstanceError(f"{path}: {len(tokens) - pos} numbers left after {count} instances")
    return out


def read_funsearch(path: Path) -> list[dict[str, Any]]:
    """FunSearch's test files: `capacity n` on the first line, then n sizes."""
    try:
        tokens = path.read_text().split()
        capacity, n = int(float(tokens[0])), int(float(tokens[1]))
        sizes = np.array([float(t) for t in tokens[2:]])
    except (IndexError, ValueError) as exc:
        raise InstanceError(f"{path} is not `capacity n` followed by n sizes ({exc})") from None
    if sizes.size != n:
        raise InstanceError(f"{path} announces {n} items and has {sizes.size}")
    return [{"name": path.stem, "sizes": sizes, "capacity": capacity}]


READERS = {"orlib": read_orlib, "funsearch": read_funsearch}


def _checked(instance: dict[str, Any], where: str) -> dict[str, Any]:
    sizes = np.asarray(instance["sizes"], dtype=np.float64)
    capacity = instance["capacity"]
    if not (float(capacity).is_integer() and 1 <= capacity <= MAX_CAPACITY):
        raise InstanceError(f"{where}: capacity must be an integer in [1, 2**31], got {capacity}")
    if not 1 <= sizes.size <= MAX_ITEMS:
        raise InstanceError(f"{where}: {sizes.size} items; an instance has 1 to {MAX_ITEMS}")
    bad = np.flatnonzero((sizes != np.round(sizes)) | (sizes < 1) | (sizes > capacity))
    if bad.size:
        raise InstanceError(
            f"{where}: item {bad[0]} has size {sizes[bad[0]]}; sizes are integers in [1, {capacity}]"
        )
    return {**instance, "sizes": sizes, "capacity": int(capacity)}


def load_instances(source: dict[str, Any], params: dict[str, Any], folder: Path) -> list[dict]:
    """The instances of one dataset: `{generator, seeds, args}` or `{file, reader}`.

    A generator gives one instance per seed (numpy's default_rng(seed)); a file pattern is
    expanded relative to the problem folder, in sorted order, and each file read by `reader`.
    """
    if "generator" in source:
        unknown = set(source) - {"generator", "seeds", "args"}
        name = source["generator"]
        if unknown or name not in GENERATORS:
            raise InstanceError(
                f"generated dataset {source}: needs generator (one of {sorted(GENERATORS)}), "
                "seeds (a list of integers) and args, nothing else"
            )
        seeds = source.get("seeds") or []
        if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise InstanceError(f"generated dataset {name}: seeds must be non-negative integers")
        args = dict(source.get("args") or {})
        try:
            made = [
                {
                    "name": f"{name}_{s}",
                    "sizes": GENERATORS[name](np.random.default_rng(s), **args),
                    "capacity": int(args.get("capacity", 100 if name == "weibull" else 150)),
                }
                for s in seeds
            ]
        except TypeError as exc:
            raise InstanceError(f"generator {name}: bad args {args}: {exc}") from None
        return [_checked(inst, f"generator {name}") for inst in made]
    if "file" in source:
        unknown = set(source) - {"file", "reader"}
        reader = source.get("reader")
        if unknown or reader not in READERS:
            raise InstanceError(
                f"file dataset {source}: needs file (a path or glob in the problem folder) and "
                f"reader (one of {sorted(READERS)}), nothing else"
            )
        paths = sorted(glob.glob(str(Path(folder) / source["file"])))
        if not paths:
            raise InstanceError(f"no file matches {source['file']!r} in {folder}")
        return [
            _checked(inst, f"{p} ({inst['name']})")
            for p in paths
            for inst in READERS[reader](Path(p))
        ]
    raise InstanceError(f"dataset {source}: give either generator/seeds/args or file/reader")


# --- the online session ---------------------------------------------------------------------
class BinPackingSession(OnlineSession):
    """One instance played online: one bin per item, all empty at the start (FunSearch's
    skeleton). Reveals the sizes one by one; a decision is the index of the bin to use."""

    item_size = 1
    decision_size = 1

    def __init__(self, sizes: np.ndarray, capacity: int) -> None:
        self._sizes = np.asarray(sizes, dtype=np.float64)
        self._capacity = int(capacity)
        n = self._sizes.size
        self._remaining = np.full(n, float(capacity))
        self._assignment = np.full(n, -1, dtype=np.int64)
        self._decided = 0
        self._pending = False

    def header(self) -> dict[str, float | int]:
        return {"capacity": self._capacity, "n_items": int(self._sizes.size)}

    def next_item(self) -> list[float] | None:
        if self._pending:
            raise OnlineError(f"item {self._decided} was revealed twice without a decision")
        if self._decided >= self._sizes.size:
            return None
        self._pending = True
        return [float(self._sizes[self._decided])]

    def decide(self, decision: np.ndarray) -> None:
        t = self._decided
        if not self._pending:
            raise OnlineError(f"a decision came for item {t} before it was revealed")
        value = float(np.asarray(decision, dtype=np.float64).ravel()[0])
        n = self._remaining.size
        if not (math.isfinite(value) and value.is_integer()):
            raise OnlineError(f"item {t}: the bin index must be an integer, got {value!r}")
        b = int(value)
        if not 0 <= b < n:
            raise OnlineError(f"item {t}: bin {b} is out of range (bins are 0..{n - 1})")
        size = self._sizes[t]
        if self._remaining[b] < size:
            raise OnlineError(
                f"item {t} (size {size:g}) does not fit in bin {b}: "
                f"{self._remaining[b]:g} of {self._capacity} left"
            )
        self._remaining[b] -= size
        self._assignment[t] = b
        self._decided += 1
        self._pending = False

    def outputs(self) -> dict[str, np.ndarray]:
        return {"assignment": self._assignment.copy()}


def online_session(instance: dict[str, Any], params: dict[str, Any]) -> BinPackingSession:
    """The trusted session for one instance (the child gets its header, then one item at a time)."""
    return BinPackingSession(instance["sizes"], instance["capacity"])


# --- scoring --------------------------------------------------------------------------------
@njit(cache=True)
def packing_scan(assignment: np.ndarray, sizes: np.ndarray, capacity: float):
    """(bins used, first item with a bin index out of [0, n), first bin over capacity); -1 = none.

    One bin per item is available, so a valid index is in [0, n). Sizes are integers, so the
    loads are exact and `load > capacity` decides the constraint.
    """
    n = sizes.shape[0]
    load = np.zeros(n, dtype=np.float64)
    for t in range(n):
        b = assignment[t]
        if b < 0 or b >= n:
            return -1, t, -1
        load[b] += sizes[t]
    used = 0
    over = -1
    for b in range(n):
        if load[b] > 0.0:
            used += 1
        if over < 0 and load[b] > capacity:
            over = b
    return used, -1, over


def packing_scan_numpy(assignment: np.ndarray, sizes: np.ndarray, capacity: float):
    """Reference for `packing_scan` in vectorised numpy."""
    n = sizes.shape[0]
    out = np.flatnonzero((assignment < 0) | (assignment >= n))
    if out.size:
        return -1, int(out[0]), -1
    load = np.bincount(assignment, weights=sizes, minlength=n)
    over = np.flatnonzero(load > capacity)
    return int(np.count_nonzero(load > 0)), -1, int(over[0]) if over.size else -1


def l1_bound(sizes: np.ndarray, capacity: int) -> int:
    """ceil(sum of sizes / capacity), in integers (FunSearch's `l1_bound`)."""
    return -(-int(np.sum(sizes)) // int(capacity))


def _evaluate(outputs: dict, params: dict, instance: dict, kernel) -> Evaluation:
    sizes = np.asarray(instance["sizes"], dtype=np.float64)
    capacity = int(instance["capacity"])
    assignment = np.asarray(outputs["assignment"])
    name = instance.get("name", "instance")
    if assignment.shape != sizes.shape:
        return Evaluation.failed(
            "invalid", f"{name}: assignment has shape {assignment.shape}, expected ({sizes.size},)"
        )
    used, bad_item, over = kernel(assignment.astype(np.int64), sizes, float(capacity))
    if bad_item >= 0:
        b = int(assignment[bad_item])
        what = "was never placed" if b == -1 else f"is in bin {b}, out of range 0..{sizes.size - 1}"
        return Evaluation.failed("invalid", f"{name}: item {bad_item} {what}")
    if over >= 0:
        load = float(sizes[assignment == over].sum())
        return Evaluation.failed(
            "invalid", f"{name}: bin {over} holds {load:g}, over the capacity {capacity}"
        )
    l1 = l1_bound(sizes, capacity)
    excess = used - l1
    score = 100.0 * excess / l1
    metrics = {
        "bins": float(used),
        "l1_bound": float(l1),
        "excess": float(excess),
        "n_items": float(sizes.size),
        "fill": float(sizes.sum()) / (used * capacity),
    }
    if "best_known" in instance:
        metrics["best_known_bins"] = float(instance["best_known"])
    feedback = (
        f"{name}: {used} bins for {sizes.size} items, L1 bound {l1}, "
        f"{excess} excess ({score:.2f}%), mean fill {metrics['fill']:.3f}"
    )
    return Evaluation.ok(score, "min", metrics=metrics, feedback=feedback)


def evaluate(outputs: dict, params: dict, instance: dict) -> Evaluation:
    """Score one instance's assignment with the numba kernel: % excess bins over L1."""
    return _evaluate(outputs, params, instance, packing_scan)


def score_numpy(outputs: dict, params: dict, instance: dict) -> Evaluation:
    """Reference scorer in plain numpy; must agree with `evaluate` on every input."""
    return _evaluate(outputs, params, instance, packing_scan_numpy)


def aggregate(evaluations: list[Evaluation], instances: list[dict], params: dict) -> float:
    """A dataset's score as FunSearch computes it: (mean bins - mean L1) / mean L1, in %.

    Not the mean of the per-instance percentages: FunSearch's notebook averages the bin counts
    and the L1 bounds over the instances first (`evaluate` and `l1_bound_dataset`), so a large
    instance weighs more. Every evaluation must be valid.
    """
    if not evaluations or len(evaluations) != len(instances):
        raise ValueError(
            f"aggregate needs one evaluation per instance: {len(evaluations)} for {len(instances)}"
        )
    for ev, inst in zip(evaluations, instances, strict=True):
        if not ev.valid:
            raise ValueError(f"instance {inst.get('name')} is not valid: {ev.error}")
    mean_bins = np.mean([ev.metrics["bins"] for ev in evaluations])
    mean_l1 = np.mean([l1_bound(i["sizes"], i["capacity"]) for i in instances])
    return float(100.0 * (mean_bins - mean_l1) / mean_l1)


def verify(outputs: dict, params: dict, instance: dict) -> Verification:
    """Exact re-check in Python integers; the excess as a fraction."""
    method = "integer arithmetic (Python ints for every bin's load; the excess as a fraction)"
    sizes = [int(s) for s in np.asarray(instance["sizes"]).tolist()]
    capacity = int(instance["capacity"])
    assignment = [int(b) for b in np.asarray(outputs["assignment"]).ravel().tolist()]
    if len(assignment) != len(sizes):
        return Verification(
            False, method=method, reason=f"{len(assignment)} bins for {len(sizes)} items"
        )
    load: dict[int, int] = {}
    for t, (b, s) in enumerate(zip(assignment, sizes, strict=True)):
        if not 0 <= b < len(sizes):
            return Verification(False, method=method, reason=f"item {t} in bin {b}, out of range")
        load[b] = load.get(b, 0) + s
    for b, total in load.items():
        if total > capacity:
            return Verification(False, method=method, reason=f"bin {b} holds {total} > {capacity}")
    l1 = -(-sum(sizes) // capacity)
    excess = Fraction(100 * (len(load) - l1), l1)
    return Verification(True, float(excess), str(excess), method, f"{len(load)} bins, L1 {l1}")
