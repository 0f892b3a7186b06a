"""Instance sets and cascades of heuristic problems, as problem.yaml declares them.

A heuristic problem's child is a function run on many instances. problem.yaml names the sets
(`train`, what the search optimises; `validation`, which picks the run's best; `test`, never
seen by the search) and, in each, datasets with their source::

    instances:
      train:
        weibull: {generator: weibull, seeds: [0, 1, 2], args: {n_items: 500}}
      test:
        or1: {file: data/binpack1.txt, reader: orlib}
    cascade:
      - {name: quick, instances: 1, relative_to: parent, margin: 0.05}
      - {name: full}

The instances themselves come from the problem's trusted evaluator
(`load_instances(source, params, folder)`), in the evaluator's process only: a child never
sees a seed, a file name or an instance it is not being run on. The keys are checked by
problem.yaml's schema (evolve/schemas/problem.py), which builds these records.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One cascade stage: the first `instances` train instances (None: all of them).

    A child goes on to the next stage only if its score so far is no worse than the reference
    (`relative_to` its parent's score at this stage, or the island best's) by more than
    `margin` (relative), or, with `threshold`, no worse than that absolute score.
    """

    name: str
    instances: int | None = None
    relative_to: str = "parent"
    margin: float = 0.0
    threshold: float | None = None


@dataclass(frozen=True)
class Online:
    """An online problem's frame sizes (floats per item, floats per decision)."""

    item_size: int = 1
    decision_size: int = 1
