"""The closed vocabularies of the run config and the problem files, as Enums.

Each is a `str` Enum, so a member compares equal to its value (`Direction.max == "max"`) and
code that reads a plain config dict keeps working; the schemas (evolve/config.py for the run
config, evolve/schemas/ for the files) accept only these values and name them in the error.
This module imports nothing heavy: the engine's hot paths use it too.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A member is its value, in messages and in saved configs."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Direction(Choice):
    """Whether a problem's score is to be maximised or minimised (problem.yaml, known.yaml)."""

    max = "max"
    min = "min"


class Selection(Choice):
    """How an island picks a parent (search.selection); see docs/search.md."""

    # the best (of its ties, the one search.ties names); grid elites at random for a share of
    # parents once the island stagnates
    elitist = "elitist"
    tournament = "tournament"
    proportional = "proportional"
    power_law = "power_law"  # the rank-th best with probability ~ rank^-alpha
    hill_climb = "hill_climb"  # always the best so far
    seed = "seed"  # always the seed program: the "sample" baseline of bench/search.py


class Ties(Choice):
    """Which of the programs tied with the best the elitist selection breeds from
    (search.ties); see docs/search.md."""

    first = "first"  # the first to reach the best score (as hill climbing does)
    uniform = "uniform"  # any of them, with equal chance (spreads over a plateau)


class Bandit(Choice):
    """How a model of the ensemble (llm.selection) or a prompt variant
    (search.prompt_selection) is chosen."""

    weighted = "weighted"
    ucb = "ucb"
    thompson = "thompson"


class InstanceSet(Choice):
    """The instance sets of a heuristic problem (problem.yaml `instances`)."""

    train = "train"  # what the search optimises
    validation = "validation"  # picks the run's best
    test = "test"  # never seen by the search


class Reference(Choice):
    """What a cascade stage compares a child's partial score with (`relative_to`)."""

    parent = "parent"
    island_best = "island_best"


class Dtype(Choice):
    """The kind of numbers an output array holds (problem.yaml `outputs`)."""

    float = "float"
    int = "int"
    bool = "bool"
