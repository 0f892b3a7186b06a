"""Sandbox-side harness for online bin packing: FunSearch's skeleton over the online channel.

Runs in the child's process. It keeps its own copy of the bins' remaining capacities (one bin
per item, all empty at the start), asks the program's `priority(item, bins)` about the bins the
item fits in, and sends the index of the highest (the first on ties, `np.argmax`). The trusted
session re-checks every decision against its own record; this copy only serves the program.
A priority of the wrong shape or with NaN ends the run with the reason (a crash).
"""

import numpy as np


def run(program: dict, inputs: dict, channel) -> dict:
    capacity = float(inputs["capacity"])
    bins = np.full(int(inputs["n_items"]), capacity)
    priority = program["priority"]
    count = 0
    while (item := channel.recv()) is not None:
        size = float(item[0])
        valid = np.nonzero(bins - size >= 0)[0]
        scores = np.asarray(priority(size, bins[valid]), dtype=np.float64)
        if scores.shape != valid.shape:
            raise ValueError(
                f"item {count}: priority(item, bins) must return one number per bin, shape "
                f"{valid.shape}; it returned shape {scores.shape}"
            )
        if np.isnan(scores).any():
            k = int(np.flatnonzero(np.isnan(scores))[0])
            raise ValueError(
                f"item {count} (size {size:g}): priority returned NaN for the bin with "
                f"{bins[valid][k]:g} left; return finite numbers (or +-inf)"
            )
        best = int(valid[np.argmax(scores)])
        bins[best] -= size
        channel.send([best])
        count += 1
    return {}
