"""Seed program for the Erdős minimum overlap problem: a flat step function (bound 1/2)."""

import numpy as np


# EVOLVE-BLOCK-START
def heights() -> np.ndarray:
    """Heights of equal steps on [0, 2]; the evaluator rescales them to sum n/2."""
    h = np.array([
        0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
        0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
        0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
        0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
    ])
    return np.clip(h, 0.0, 1.0)
# EVOLVE-BLOCK-END


def solve() -> dict:
    return {"h": heights()}
