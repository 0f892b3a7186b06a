"""Seed program: points on a jittered grid."""

import numpy as np


# EVOLVE-BLOCK-START
def points(n: int) -> np.ndarray:
    side = int(np.ceil(np.sqrt(n)))
    xs = (np.arange(side) + 0.5) / side
    grid = np.array([(x, y) for y in xs for x in xs])[:n]
    rng = np.random.default_rng(0)
    jitter = 0.05
    return np.clip(grid + jitter * rng.standard_normal(grid.shape), 0.0, 1.0)


# EVOLVE-BLOCK-END


def solve(n: int) -> dict:
    return {"points": points(n)}
