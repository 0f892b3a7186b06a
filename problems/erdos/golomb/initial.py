"""Seed program for Golomb rulers: the greedy (Mian-Chowla) ruler, far from optimal.

The greedy is randomised by two knobs that leave it unchanged as given (skip = 0): `skip`, the
chance of passing over an admissible mark, and `seed`, the stream of those choices. They give
even a mutator that only perturbs constants a space of distinct rulers to search.
"""

import random

import numpy as np


# EVOLVE-BLOCK-START
def ruler(n: int) -> list[int]:
    """Marks of an n-mark Golomb ruler: greedily add the smallest mark that keeps all
    differences distinct. For n = 12 this gives length 122 (the optimum is 85)."""
    rng = random.Random(12345)
    skip = 0.0
    marks = [0]
    diffs = set()
    candidate = 1
    while len(marks) < n:
        new = {candidate - m for m in marks}
        if len(new) == len(marks) and not (new & diffs) and rng.random() >= skip:
            diffs |= new
            marks.append(candidate)
        candidate += 1
    return marks
# EVOLVE-BLOCK-END


def solve(n: int) -> dict:
    return {"marks": np.array(ruler(n), dtype=np.int64)}
