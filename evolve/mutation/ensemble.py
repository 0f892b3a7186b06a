"""Ensemble selection: which model of the ensemble answers the next request.

Three policies, all deterministic given the caller's `random.Random`:

- `weighted`: a model with probability proportional to its configured weight; feedback ignored.
- `ucb`: UCB1. Each model's mean reward plus an exploration bonus sqrt(2 ln N / n_i).
- `thompson`: Thompson sampling with a Beta(1 + successes, 1 + failures) posterior per model.

A reward is 1.0 when the child beat its parent and 0.0 otherwise (the engine reports it after
each evaluation). The denominators count *selections*, not rewards: a request that never earns
a reward (an LLM error, an answer with no valid edit, a duplicate child) counts as a failure,
so a model that answers with garbage loses its share. Requests still in flight count as
failures until their reward arrives; with a few requests in flight per island that bias is small
and it spreads concurrent requests across models instead of piling them on one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from evolve.choices import Bandit

SELECTIONS = Bandit.values()


class Selector:
    """Chooses an arm (a model index) and learns from rewards."""

    def __init__(self, weights: Sequence[float]) -> None:
        if not weights:
            raise ValueError("an ensemble needs at least one model")
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise ValueError(f"ensemble weights must be >= 0 with one > 0, got {list(weights)}")
        self.weights = [float(w) for w in weights]
        self.pulls = [0] * len(weights)  # selections, including those still in flight
        self.rewards = [0.0] * len(weights)

    def choose(self, rng: random.Random) -> int:
        i = self._pick(rng)
        self.pulls[i] += 1
        return i

    def _pick(self, rng: random.Random) -> int:
        raise NotImplementedError

    def feedback(self, arm: int, reward: float) -> None:
        self.rewards[arm] += min(max(float(reward), 0.0), 1.0)

    def state(self) -> list[dict[str, float]]:
        """Per model: selections, total reward and mean reward (for logs and reports)."""
        return [
            {"pulls": n, "reward": r, "mean": r / n if n else 0.0}
            for n, r in zip(self.pulls, self.rewards, strict=True)
        ]


class Weighted(Selector):
    """By configured weight; rewards are recorded (for the state) but do not steer."""

    def _pick(self, rng: random.Random) -> int:
        return rng.choices(range(len(self.weights)), weights=self.weights)[0]


class UCB1(Selector):
    """UCB1 (Auer et al., 2002); untried models first, ties broken by the rng."""

    def __init__(self, weights: Sequence[float], exploration: float = math.sqrt(2.0)) -> None:
        super().__init__(weights)
        self.exploration = exploration

    def _pick(self, rng: random.Random) -> int:
        arms = [i for i, w in enumerate(self.weights) if w > 0]
        untried = [i for i in arms if self.pulls[i] == 0]
        if untried:
            return rng.choice(untried)
        total = sum(self.pulls[i] for i in arms)
        scores = {
            i: self.rewards[i] / self.pulls[i]
            + self.exploration * math.sqrt(math.log(total) / self.pulls[i])
            for i in arms
        }
        best = max(scores.values())
        return rng.choice([i for i in arms if scores[i] >= best - 1e-12])


class Thompson(Selector):
    """Thompson sampling with Beta(1 + reward, 1 + selections - reward) per model."""

    def _pick(self, rng: random.Random) -> int:
        arms = [i for i, w in enumerate(self.weights) if w > 0]
        draws = {
            i: rng.betavariate(
                1.0 + self.rewards[i], 1.0 + max(self.pulls[i] - self.rewards[i], 0.0)
            )
            for i in arms
        }
        return max(arms, key=lambda i: draws[i])


def make_selector(name: str, weights: Sequence[float]) -> Selector:
    """The selector for `llm.selection`; a clear error for an unknown name."""
    kinds = {"weighted": Weighted, "ucb": UCB1, "thompson": Thompson}
    if name not in kinds:
        raise ValueError(
            f"llm.selection={name!r} is unknown; choose one of {', '.join(SELECTIONS)}"
        )
    return kinds[name](weights)
