"""Seed program for Golomb rulers: the greedy (Mian-Chowla) ruler, far from optimal."""

import numpy as np


# EVOLVE-BLOCK-START
def ruler(n: int) -> list[int]:
    """Marks of an n-mark Golomb ruler: greedily add the smallest mark that keeps all
    differences distinct. For n = 12 this gives length 122 (the optimum is 85)."""
    marks = [0]
    diffs = set()
    candidate = 1
    while len(marks) < n:
        new = {candidate - m for m in marks}
        if len(new) == len(marks) and not (new & diffs):
            diffs |= new
            marks.append(candidate)
        candidate += 1
    return marks
# EVOLVE-BLOCK-END


def solve(n: int) -> dict:
    return {"marks": np.array(ruler(n), dtype=np.int64)}
