"""Seed program for circle packing: equal circles on a square grid (sum of radii n / (2k))."""

import numpy as np


# EVOLVE-BLOCK-START
def packing(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n equal circles on the first n cells of a k x k grid, k = ceil(sqrt(n)).

    The radii are shrunk by one part in 10^9: the evaluator checks tangency exactly, and
    1/(2k) rounded to a float can overlap its neighbour by a few units in the last place."""
    k = int(np.ceil(np.sqrt(n)))
    cells = [((i + 0.5) / k, (j + 0.5) / k) for j in range(k) for i in range(k)][:n]
    centers = np.array(cells, dtype=np.float64)
    radii = np.full(n, 0.5 / k * (1.0 - 1e-9))
    return centers, radii
# EVOLVE-BLOCK-END


def solve(n: int) -> dict:
    centers, radii = packing(n)
    return {"centers": centers, "radii": radii}
