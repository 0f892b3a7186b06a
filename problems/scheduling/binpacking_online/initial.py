"""Seed program for online bin packing: first fit, with the terms of better rules switched off.

`priority` scores the bins an item fits in; the item goes to the highest, the first on ties.
As given every term is switched off (weights of 0, a small-gap threshold of 0), so every bin
scores the same: first fit, the weaker of FunSearch's two baselines. The terms are on the
scale of the gap, so even a mutator that only perturbs constants moves the packing: a weight
above 0 on the gap is best fit, -(bins - item) (FunSearch's own starting point), a penalty for
leaving a gap too small for a typical item, a preference for bins the item fills a large
fraction of. With a model, starting from best fit is one constant away.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """One priority per bin (the remaining capacity of each bin the item fits in); the item
    goes to the bin with the highest priority, the first one on ties."""
    capacity = bins.max()  # an empty bin is always among them
    gap = (bins - item) / capacity  # room left after placing the item, as a fraction
    best_fit = 0.0  # above 0: prefer the bin the item fills best (best fit)
    small_gap = 0.0  # a gap below this fraction of the capacity is hard to fill later
    small_gap_penalty = 0.05
    relative_fit = 0.0
    score = -best_fit * gap
    score -= small_gap_penalty * ((gap > 0) & (gap < small_gap))
    score += relative_fit * item / bins
    return score
# EVOLVE-BLOCK-END
