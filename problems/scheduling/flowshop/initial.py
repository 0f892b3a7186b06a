"""Seed program for the permutation flow shop: sort the jobs by a weighted priority index.

The index as given is Palmer's slope (1965; jobs whose times grow along the line go first)
mixed with a little of the job's total time and of its time on the first machine: its weights
are knobs that a mutator changing only constants can tune. The tie-break noise (0) and its
seed leave the rule unchanged as given; the zero weight adds a term when perturbed.
"""

import random

import numpy as np

# EVOLVE-BLOCK-START
SEED = 12345  # the stream of tie-break noise
NOISE = 0.0  # tie-break noise, in mean processing times
W_SLOPE = 1.0  # Palmer's slope: time on late machines minus time on early ones
W_TOTAL = 0.2  # total processing time of the job
W_FIRST = -0.3  # time on the first machine (a negative weight starts with short ones)
W_LAST = 0.0  # time on the last machine (a positive weight ends with short ones)


def priority(slope, total, first, last, rng):
    """Higher goes earlier in the sequence. Times are in units of the mean processing time."""
    return (
        W_SLOPE * slope
        + W_TOTAL * total
        + W_FIRST * first
        + W_LAST * last
        + NOISE * rng.random()
    )
# EVOLVE-BLOCK-END


def sequence(times: np.ndarray) -> np.ndarray:
    """The job order: jobs sorted by decreasing priority (ties by job index)."""
    m, n = times.shape
    unit = float(times.mean()) or 1.0
    rng = random.Random(SEED)
    # Palmer's weights: -(m - 1), -(m - 3), ..., m - 1 from the first machine to the last.
    weights = np.arange(-(m - 1), m, 2)
    keys = []
    for j in range(n):
        t = times[:, j]
        p = priority(
            float(weights @ t) / unit / m,
            float(t.sum()) / unit,
            float(t[0]) / unit,
            float(t[-1]) / unit,
            rng,
        )
        keys.append((-p, j))
    return np.array([j for _, j in sorted(keys)], dtype=np.int64)


def solve(times: np.ndarray) -> dict:
    return {"permutation": sequence(times)}
