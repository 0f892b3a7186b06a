"""Seed program for the Erdős discrepancy problem: a greedy sequence with no backtracking."""

import numpy as np


# EVOLVE-BLOCK-START
def preferred_sign(i: int) -> int:
    """+1 if the last non-zero base-3 digit of i is 1, else -1 (a completely multiplicative
    sequence whose discrepancy grows like log_3 N)."""
    while i % 3 == 0:
        i //= 3
    return 1 if i % 3 == 1 else -1


def sequence(C: int) -> list[int]:
    """Extend x_1, x_2, ... one term at a time, taking the preferred sign if it keeps every
    partial sum x_d + x_2d + ... within [-C, C], else the other sign; stop when neither fits."""
    x: list[int] = []
    sums: dict[int, int] = {}  # d -> x_d + x_2d + ... so far
    i = 1
    while True:
        divisors = [d for d in range(1, i + 1) if i % d == 0]
        s = preferred_sign(i)
        choice = None
        for sign in (s, -s):
            if all(abs(sums.get(d, 0) + sign) <= C for d in divisors):
                choice = sign
                break
        if choice is None:
            return x
        for d in divisors:
            sums[d] = sums.get(d, 0) + choice
        x.append(choice)
        i += 1
# EVOLVE-BLOCK-END


def solve(C: int) -> dict:
    return {"x": np.array(sequence(C), dtype=np.int64)}
