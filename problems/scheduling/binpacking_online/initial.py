"""Seed program for online bin packing: best fit, FunSearch's starting point.

`priority` scores the bins an item fits in; the item goes to the highest. As given it is best
fit, -(bins - item), scaled by the capacity (the same order, hence the same packing). The other
terms are switched off (a penalty for gaps below a threshold of 0, a weight of 0) so the seed
stays best fit, but they are on the scale of the gap, so even a mutator that only perturbs
constants moves the packing: a penalty for leaving a gap too small for a typical item, and a
preference for bins the item fills a large fraction of.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """One priority per bin (the remaining capacity of each bin the item fits in); the item
    goes to the bin with the highest priority, the first one on ties."""
    capacity = bins.max()  # an empty bin is always among them
    gap = (bins - item) / capacity  # room left after placing the item, as a fraction
    best_fit = 1.0
    small_gap = 0.0  # a gap below this fraction of the capacity is hard to fill later
    small_gap_penalty = 0.05
    relative_fit = 0.0
    score = -best_fit * gap
    score -= small_gap_penalty * ((gap > 0) & (gap < small_gap))
    score += relative_fit * item / bins
    return score
# EVOLVE-BLOCK-END
