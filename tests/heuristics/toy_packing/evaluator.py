"""Trusted evaluator of the toy online bin packing (a test fixture)."""

from pathlib import Path

import numpy as np

from evolve.evaluators import Evaluation
from evolve.evaluators.online import OnlineError, OnlineSession

CAPACITY = 100.0


def load_instances(source, params, folder):
    if "generator" in source:
        n = int(source.get("args", {}).get("n_items", 100))
        return [
            {
                "name": f"u{seed}",
                "sizes": np.random.default_rng(seed).integers(5, 70, n).astype(float),
            }
            for seed in source["seeds"]
        ]
    sizes = [float(x) for x in (Path(folder) / source["file"]).read_text().split()]
    return [{"name": Path(source["file"]).stem, "sizes": np.array(sizes)}]


class Session(OnlineSession):
    def __init__(self, sizes):
        self.sizes = sizes
        self.free = np.full(len(sizes), CAPACITY)
        self.assignment = []

    def header(self):
        return {"capacity": CAPACITY, "n_items": len(self.sizes)}

    def next_item(self):
        i = len(self.assignment)
        return None if i >= len(self.sizes) else [self.sizes[i]]

    def decide(self, decision):
        i = len(self.assignment)
        b = decision[0]
        if b != int(b) or not 0 <= b < len(self.free):
            raise OnlineError(f"item {i}: bin {float(b)!r} is not a bin index")
        b = int(b)
        if self.free[b] < self.sizes[i]:
            raise OnlineError(f"item {i} (size {self.sizes[i]:g}) does not fit in bin {b}")
        self.free[b] -= self.sizes[i]
        self.assignment.append(b)

    def outputs(self):
        return {"assignment": np.array(self.assignment, dtype=np.int64)}


def online_session(instance, params):
    return Session(instance["sizes"])


def evaluate(outputs, params, instance):
    a, sizes = outputs["assignment"], instance["sizes"]
    if a.shape != sizes.shape:
        return Evaluation.failed("invalid", f"{a.size} decisions for {sizes.size} items")
    load = np.bincount(a, weights=sizes)
    if np.any(load > CAPACITY):
        return Evaluation.failed("invalid", "a bin is over capacity")
    bins = int(np.count_nonzero(load))
    return Evaluation.ok(bins / len(sizes), "min", metrics={"bins": float(bins)})
