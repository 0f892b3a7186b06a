"""An island: a sub-population with its own MAP-Elites grid, parent sampling and inspirations.

Islands evolve independently and exchange their best programs now and then (migration). The
grid keeps the best program per cell of the feature space, so diversity survives selection
pressure. Every operation here costs O(grid size), never O(programs ever seen).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Member:
    """A program as the population sees it (the database holds the full record)."""

    id: int
    code: str
    code_hash: str
    score: float
    fitness: float
    metrics: dict[str, float] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    feedback: str = ""
    generation: int = 0
    island: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Grid:
    """MAP-Elites grid over named feature dimensions with `bins` bins each.

    Each dimension's range grows to cover every value observed; elites are re-binned when it
    does, and when two share a cell after re-binning the fitter one stays elite (the other is
    kept as a plain population member by the island, so nothing good is lost).
    """

    def __init__(self, dims: list[str], bins: int = 8) -> None:
        self.dims = list(dims)
        self.bins = bins
        self.lo: dict[str, float] = {}
        self.hi: dict[str, float] = {}
        self.cells: dict[tuple[int, ...], Member] = {}

    def _bin(self, dim: str, value: float) -> int:
        lo, hi = self.lo[dim], self.hi[dim]
        if hi <= lo:
            return 0
        return min(self.bins - 1, int((value - lo) / (hi - lo) * self.bins))

    def cell_of(self, m: Member) -> tuple[int, ...]:
        return tuple(self._bin(d, float(m.features.get(d, 0.0))) for d in self.dims)

    def _grow(self, m: Member) -> bool:
        grown = False
        for d in self.dims:
            v = float(m.features.get(d, 0.0))
            if not math.isfinite(v):
                continue
            if d not in self.lo:
                self.lo[d], self.hi[d] = v, v
                grown = True
            elif v < self.lo[d] or v > self.hi[d]:
                # Grow with a margin so the grid is not re-binned on every new extreme.
                span = max(self.hi[d] - self.lo[d], abs(v) * 0.1, 1e-9)
                self.lo[d] = min(self.lo[d], v - 0.25 * span) if v < self.lo[d] else self.lo[d]
                self.hi[d] = max(self.hi[d], v + 0.25 * span) if v > self.hi[d] else self.hi[d]
                grown = True
        return grown

    def add(self, m: Member) -> tuple[bool, list[Member]]:
        """Offer a member; returns (became elite, members displaced from the grid)."""
        displaced: list[Member] = []
        if self._grow(m):
            old = list(self.cells.values())
            self.cells = {}
            for e in old:
                c = self.cell_of(e)
                cur = self.cells.get(c)
                if cur is None or e.fitness > cur.fitness:
                    if cur is not None:
                        displaced.append(cur)
                    self.cells[c] = e
                else:
                    displaced.append(e)
        c = self.cell_of(m)
        cur = self.cells.get(c)
        if cur is None or m.fitness > cur.fitness:
            if cur is not None:
                displaced.append(cur)
            self.cells[c] = m
            return True, displaced
        return False, displaced

    def elites(self) -> list[Member]:
        return list(self.cells.values())


SELECTIONS = ("tournament", "proportional", "power_law", "hill_climb")


class Island:
    """A sub-population of the programs database."""

    def __init__(
        self,
        island_id: int,
        feature_dims: list[str],
        capacity: int = 40,
        bins: int = 8,
        selection: str = "tournament",
        tournament_size: int = 3,
        temperature: float = 1.0,
        power_law_alpha: float = 1.0,
        exploit_ratio: float = 0.7,
    ) -> None:
        if selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}; choose one of {SELECTIONS}")
        self.id = island_id
        self.grid = Grid(feature_dims, bins)
        self.capacity = capacity
        self.selection = selection
        self.tournament_size = tournament_size
        self.temperature = temperature
        self.power_law_alpha = power_law_alpha
        self.exploit_ratio = exploit_ratio
        self.members: dict[int, Member] = {}
        self.hashes: set[str] = set()
        self.best: Member | None = None
        self.evaluations = 0
        self.last_improvement = 0

    # --- membership ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.members)

    def has(self, code_hash: str) -> bool:
        return code_hash in self.hashes

    def add(self, m: Member) -> bool:
        """Add a valid program; returns True if it is the island's new best."""
        if m.code_hash in self.hashes or not math.isfinite(m.fitness):
            return False
        m.island = self.id
        self.members[m.id] = m
        self.hashes.add(m.code_hash)
        self.grid.add(m)
        improved = self.best is None or m.fitness > self.best.fitness
        if improved:
            self.best = m
            self.last_improvement = self.evaluations
        self._trim()
        return improved

    def _trim(self) -> None:
        """Keep at most `capacity` members: elites and the best always stay."""
        if len(self.members) <= self.capacity:
            return
        protected = {e.id for e in self.grid.elites()}
        if self.best is not None:
            protected.add(self.best.id)
        spare = sorted(
            (m for m in self.members.values() if m.id not in protected), key=lambda m: m.fitness
        )
        for m in spare[: len(self.members) - self.capacity]:
            del self.members[m.id]
            self.hashes.discard(m.code_hash)

    # --- sampling --------------------------------------------------------------------------
    def ranked(self) -> list[Member]:
        return sorted(self.members.values(), key=lambda m: (-m.fitness, m.id))

    def sample_parent(self, rng: random.Random) -> Member:
        if not self.members:
            raise LookupError(f"island {self.id} is empty")
        ranked = self.ranked()
        if self.selection == "hill_climb":
            return ranked[0]
        if self.selection == "tournament":
            k = min(self.tournament_size, len(ranked))
            picks = rng.sample(range(len(ranked)), k)
            return ranked[min(picks)]
        if self.selection == "power_law":
            weights = [(i + 1) ** -self.power_law_alpha for i in range(len(ranked))]
            return rng.choices(ranked, weights=weights)[0]
        # fitness-proportional with a temperature, on fitness normalised to [0, 1]
        fits = [m.fitness for m in ranked]
        lo, hi = min(fits), max(fits)
        span = (hi - lo) or 1.0
        t = max(self.temperature, 1e-6)
        weights = [math.exp(((f - lo) / span - 1.0) / t) for f in fits]
        return rng.choices(ranked, weights=weights)[0]

    def sample_inspirations(self, rng: random.Random, parent: Member, k: int) -> list[Member]:
        """A mix of the island's top programs and diverse elites from other grid cells."""
        if k <= 0:
            return []
        others = [m for m in self.ranked() if m.id != parent.id]
        if not others:
            return []
        n_top = max(1, round(k * self.exploit_ratio)) if k > 1 else 1
        chosen = others[:n_top]
        diverse = [e for e in self.grid.elites() if e.id != parent.id and e not in chosen]
        rng.shuffle(diverse)
        chosen += diverse[: k - len(chosen)]
        if len(chosen) < k:
            rest = [m for m in others if m not in chosen]
            chosen += rng.sample(rest, min(k - len(chosen), len(rest)))
        return chosen[:k]

    def state(self) -> dict[str, Any]:
        return {
            "island": self.id,
            "best_program_id": self.best.id if self.best else None,
            "best_score": self.best.score if self.best else None,
            "size": len(self.members),
            "evaluations": self.evaluations,
            "last_improvement": self.last_improvement,
        }
