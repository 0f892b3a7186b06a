"""Seed program for online bin packing: best fit, FunSearch's starting point.

`priority` scores the bins an item fits in; the item goes to the highest. As given it is best
fit, -(bins - item): the fuller the bin after the item, the better. The other terms have weight
0 so the seed stays best fit, but they give a mutator that only perturbs constants directions
to move in: a bonus for an exact or near-exact fit, a penalty for leaving a gap too small for a
typical item, and a preference for bins the item fills a large fraction of.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """One priority per bin (the remaining capacity of each bin the item fits in); the item
    goes to the bin with the highest priority, the first one on ties."""
    gap = bins - item  # room left in each bin after placing the item (>= 0)
    best_fit = 1.0
    exact_fit_bonus = 0.0
    small_gap_penalty = 0.0
    small_gap = 10.0
    relative_fit = 0.0
    score = -best_fit * gap
    score += exact_fit_bonus * (gap <= 0.5)
    score -= small_gap_penalty * ((gap > 0.5) & (gap < small_gap))
    score += relative_fit * item / bins  # bins >= item >= 1 here
    return score
# EVOLVE-BLOCK-END
