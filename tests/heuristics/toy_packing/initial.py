import numpy as np


# EVOLVE-BLOCK-START
def priority(item, bins):
    """First fit: every bin the same."""
    return np.zeros(len(bins)) * 1.0


# EVOLVE-BLOCK-END
