"""Sandbox-side harness: the child's priority() decides each item as it arrives."""

import numpy as np


def run(program, inputs, channel):
    bins = np.full(int(inputs["n_items"]), float(inputs["capacity"]))
    while (item := channel.recv()) is not None:
        x = float(item[0])
        valid = np.nonzero(bins >= x)[0]
        priorities = np.asarray(program["priority"](x, bins[valid]), dtype=float)
        b = int(valid[int(np.argmax(priorities))])
        bins[b] -= x
        channel.send([b])
    return {}
