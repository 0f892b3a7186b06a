"""Seed program for the sum-difference exponent: a 6-mark Golomb ruler (bound about 1.1096)."""

import numpy as np


# EVOLVE-BLOCK-START
def construct() -> list[int]:
    """A set U of non-negative integers containing 0.

    A Sidon set (all differences distinct) has |U - U| = k(k - 1) + 1 against
    |U + U| = k(k + 1)/2, a ratio near 2, but its maximum grows like k^2, which the
    log(2 max U + 1) in the denominator punishes. Large structured sets do far better."""
    return [0, 1, 4, 10, 12, 17]
# EVOLVE-BLOCK-END


def solve() -> dict:
    return {"U": np.array(construct(), dtype=np.int64)}
