"""Taillard's benchmark generator (EJOR 64(2):278-285, 1993), shared by the scheduling problems.

Taillard published seeds, not instance files: the job-shop instances ta01-ta80 and the
permutation flow-shop instances ta001-ta120 are regenerated here from his linear congruential
generator and the seeds in `taillard_seeds.json` (copied from the shared reference, beside
this module). The generator is his exactly, including the double-precision `unif`, so every
processing time is reproduced bit for bit (tests check the published check vector and the
published makespans).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np

from evolve.evaluators.evaluation import Evaluation

SEEDS_FILE = Path(__file__).with_name("taillard_seeds.json")

# Lehmer's minimal standard generator, in Schrage's form so nothing overflows 32 bits.
_M, _A, _B, _C = 2**31 - 1, 16807, 127773, 2836


class TaillardStream:
    """One stream of Taillard's generator; `unif(low, high)` draws an integer in [low, high]."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def unif(self, low: int, high: int) -> int:
        k = self.seed // _B
        self.seed = _A * (self.seed % _B) - k * _C
        if self.seed < 0:
            self.seed += _M
        # Computed in IEEE double as in Taillard's C code; floor of a value in [0, 1).
        return low + math.floor(self.seed / _M * (high - low + 1))


@cache
def seeds() -> dict:
    """The seed table: {"jobshop": {name: row}, "flowshop": {name: row}, ...}."""
    raw = json.loads(SEEDS_FILE.read_text())
    return {
        "source": raw["source"],
        "jobshop": {r["instance"]: r for r in raw["jobshop"]},
        "flowshop": {r["instance"]: r for r in raw["flowshop"]},
    }


def jobshop(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Job-shop instance `name` (ta01-ta80): (machines, durations), both [jobs, machines];
    row i is job i's route, machines numbered from 0."""
    row = seeds()["jobshop"].get(name)
    if row is None:
        raise KeyError(name)
    n, m = int(row["jobs"]), int(row["machines"])
    times = TaillardStream(row["time_seed"])
    durations = np.array([[times.unif(1, 99) for _ in range(m)] for _ in range(n)], np.int64)
    route = TaillardStream(row["machine_seed"])  # one stream across all jobs
    machines = np.empty((n, m), np.int64)
    for i in range(n):
        order = list(range(m))
        for j in range(m):
            k = route.unif(j, m - 1)
            order[j], order[k] = order[k], order[j]
        machines[i] = order
    return machines, durations


def flowshop(name: str) -> np.ndarray:
    """Flow-shop instance `name` (ta001-ta120): p[k, j] = time of job j on machine k."""
    row = seeds()["flowshop"].get(name)
    if row is None:
        raise KeyError(name)
    n, m = int(row["jobs"]), int(row["machines"])
    times = TaillardStream(row["time_seed"])
    return np.array([[times.unif(1, 99) for _ in range(n)] for _ in range(m)], np.int64)


def makespan_evaluation(
    makespan: int,
    metrics: dict[str, float],
    feedback: str,
    bounds: tuple[int, int] | None,
) -> Evaluation:
    """A valid schedule's Evaluation for the job and flow shops: the makespan as the score,
    the gap to the best known value in the metrics, and the bounds in the feedback."""
    if bounds is not None:
        ub, lb = bounds
        metrics["gap_to_best_known"] = float(makespan - ub)
        known = f"the proven optimum is {ub}" if ub == lb else f"best known {ub}, lower bound {lb}"
        feedback += f"; {known}"
    return Evaluation.ok(
        makespan,
        "min",
        metrics=metrics,
        features={"flow_ratio": metrics["flow_ratio"]},
        feedback=feedback,
    )
