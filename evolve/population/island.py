"""An island: a sub-population with its own MAP-Elites grid, parent sampling and inspirations.

Islands evolve independently and exchange their best programs now and then (migration). The
grid keeps the best program per cell of the feature space, so diversity survives selection
pressure. Every per-iteration operation (add, has, sample_parent, sample_inspirations) costs
O(capacity + grid cells) at most, never O(programs ever seen): an island holds at most
`capacity` members plus its grid elites, whatever the size of the run's database.
"""

from __future__ import annotations

import bisect
import math
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from evolve.choices import Selection, Ties


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
    # When it joined the island holding it (1, 2, ...; set by the island): breaks ties in
    # the ranking by arrival on the island, which the engine makes step order (ordering.py),
    # where program ids follow the order children reach the database.
    order: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


Cell = tuple[int, ...]


def _rank_key(m: Member) -> tuple[float, int, int]:
    """Sort key: fittest first, ties broken by when the member joined, then by id."""
    return (-m.fitness, m.order, m.id)


class Grid:
    """MAP-Elites grid over named feature dimensions with `bins` bins each.

    Each dimension's range grows to cover every finite value observed (with a margin, so growth
    is rare: O(log range) times per dimension); the grid is then rebuilt from its elites and
    the island's members. When two elites fall into one cell after re-binning the fitter one
    stays elite and the other is returned as displaced: the island keeps it as a plain member,
    so it survives as long as it beats the island's other non-elite members. A missing feature counts as 0; a NaN or -inf
    goes to the first bin and +inf to the last, so a bad feature value never breaks the grid.
    """

    def __init__(self, dims: list[str], bins: int = 8) -> None:
        if bins < 1:
            raise ValueError(f"grid bins must be at least 1, got {bins}")
        self.dims = list(dims)
        self.bins = bins
        self.lo: dict[str, float] = {}
        self.hi: dict[str, float] = {}
        self.cells: dict[Cell, Member] = {}
        self._cell_by_id: dict[int, Cell] = {}

    def __len__(self) -> int:
        return len(self.cells)

    def _bin(self, dim: str, value: float) -> int:
        if math.isnan(value) or dim not in self.lo:
            return 0
        lo, hi = self.lo[dim], self.hi[dim]
        if value >= hi:
            return self.bins - 1 if hi > lo else 0
        if value <= lo:
            return 0
        # halves: hi - lo may overflow for features near the float range; the result cannot
        width = hi / 2 - lo / 2
        return min(self.bins - 1, int((value / 2 - lo / 2) / width * self.bins)) if width else 0

    def cell_of(self, m: Member) -> Cell:
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
                if v < self.lo[d]:
                    self.lo[d] = max(v - 0.25 * span, -sys.float_info.max)
                else:
                    self.hi[d] = min(v + 0.25 * span, sys.float_info.max)
                grown = True
        return grown

    def _place(self, m: Member) -> tuple[bool, Member | None]:
        """Put `m` in its cell if it beats the cell's elite; returns (placed, displaced)."""
        c = self.cell_of(m)
        cur = self.cells.get(c)
        if cur is not None and m.fitness <= cur.fitness:
            return False, None
        if cur is not None:
            del self._cell_by_id[cur.id]
        self.cells[c] = m
        self._cell_by_id[m.id] = c
        return True, cur

    def add(
        self, m: Member, population: Iterable[Member] | None = None
    ) -> tuple[bool, list[Member]]:
        """Offer a member; returns (became elite, former elites displaced from the grid).

        When `m` widens the range, the grid is rebuilt from its elites plus `population` (the
        island's members), fittest first, so every cell again holds the fittest member that
        falls in it; a member that was dominated in its old cell may become an elite.
        """
        displaced: list[Member] = []
        if self._grow(m):
            old = list(self.cells.values())
            pool = {e.id: e for e in old}
            for p in population or ():
                pool.setdefault(p.id, p)
            pool.pop(m.id, None)
            self.cells, self._cell_by_id = {}, {}
            for e in sorted(pool.values(), key=_rank_key):
                self._place(e)
            displaced = [e for e in old if not self.is_elite(e)]
        placed, out = self._place(m)
        if out is not None:
            displaced.append(out)
        return placed, displaced

    def is_elite(self, m: Member) -> bool:
        c = self._cell_by_id.get(m.id)
        return c is not None and self.cells[c] is m

    def elites(self) -> list[Member]:
        return list(self.cells.values())

    def axes(self) -> list[dict[str, Any]]:
        """Each dimension's name and bin edges (`bins + 1` of them; none before any value)."""
        out = []
        for d in self.dims:
            lo, hi = self.lo.get(d), self.hi.get(d)
            # halves, as in _bin: hi - lo may overflow near the float range
            edges = (
                []
                if lo is None or hi is None
                else [lo + (hi / 2 - lo / 2) * (2 * k / self.bins) for k in range(self.bins + 1)]
            )
            out.append({"name": d, "bins": self.bins, "edges": edges})
        return out


SELECTIONS = Selection.values()  # what each one does: evolve/choices.py
# elitist selection: after this many of the island's evaluations without a new best...
ELITIST_PATIENCE = 20
# ...this share of its parents are grid elites drawn at random (the rest: the best)
ELITIST_EXPLORE = 0.25


class Island:
    """A sub-population of the programs database.

    Members are kept sorted by fitness (best first) as they arrive, so sampling never sorts.
    `capacity` bounds the non-elite members: trimming removes the least fit member that is
    neither a grid elite nor the island's best, so the best and every elite always stay (an
    island can hold more than `capacity` members only when it has that many elites).
    """

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
        patience: int = ELITIST_PATIENCE,
        explore: float = ELITIST_EXPLORE,
        ties: str = "first",
    ) -> None:
        if selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}; choose one of {SELECTIONS}")
        if capacity < 1:
            raise ValueError(f"island capacity must be at least 1, got {capacity}")
        if ties not in Ties.values():
            raise ValueError(f"unknown tie rule {ties!r}; choose one of {Ties.values()}")
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"the elitist explore share must be in [0, 1], got {explore}")
        self.id = island_id
        self.feature_dims = list(feature_dims)
        self.bins = bins
        self.capacity = capacity
        self.selection = selection
        self.tournament_size = tournament_size
        self.temperature = temperature
        self.power_law_alpha = power_law_alpha
        self.exploit_ratio = exploit_ratio
        self.patience = patience
        self.explore = explore
        self.ties = ties
        self.evaluations = 0  # counted by the engine: evaluations of children bred here
        self.last_improvement = 0  # value of `evaluations` when the best last improved here
        self.resets = 0
        self._joined = 0  # members that ever joined (each one's `order`)
        self.origin: Member | None = None  # the first program this island got (the seed)
        self._clear()

    def _clear(self) -> None:
        self.grid = Grid(self.feature_dims, self.bins)
        self.members: dict[int, Member] = {}
        self._by_hash: dict[str, int] = {}
        self._ranked: list[Member] = []  # best first; ties broken by arrival, for determinism
        self._keys: list[tuple[float, int, int]] = []  # _rank_key of each entry of _ranked
        self.best: Member | None = None
        self._version = 0  # bumped on every membership change; keys the weights cache
        self._weights: tuple[int, list[float]] | None = None

    # --- membership ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, m: Member) -> bool:
        return m.id in self.members

    def has(self, code_hash: str) -> bool:
        """True if a member of this island has this code hash (O(1))."""
        return code_hash in self._by_hash

    def add(self, m: Member) -> bool:
        """Add a valid program bred here (or the seed); returns True if it is the new best.

        Duplicates (by code hash or id) and non-finite fitness are ignored. A new best marks
        an improvement for stagnation: `last_improvement` becomes `evaluations`.
        """
        return self._insert(m, counts_as_improvement=True)

    def accept_migrant(self, m: Member) -> bool:
        """Take a program from another island; False if it is already here (or unusable).

        Returns True only if the migrant is a member afterwards (a migrant worse than every
        member is trimmed at once and reported as not accepted). A migrant that becomes the
        best does not reset the stagnation clock: otherwise islands passing the same best
        around a ring would keep each other from ever being reset.
        """
        if self.has(m.code_hash) or m.id in self.members:
            return False
        self._insert(m, counts_as_improvement=False)
        return m.id in self.members

    def _insert(self, m: Member, counts_as_improvement: bool) -> bool:
        if m.code_hash in self._by_hash or m.id in self.members:
            return False
        if m.fitness is None or not math.isfinite(m.fitness):  # None: an invalid program's row
            return False
        # A copy: never mutate a member another island holds.
        self._joined += 1
        m = replace(m, island=self.id, order=self._joined)
        if self.origin is None:
            self.origin = m
        self.members[m.id] = m
        self._by_hash[m.code_hash] = m.id
        key = _rank_key(m)
        i = bisect.bisect_left(self._keys, key)
        self._keys.insert(i, key)
        self._ranked.insert(i, m)
        self._version += 1
        self.grid.add(m, self._ranked)
        improved = self.best is None or m.fitness > self.best.fitness
        if improved:
            self.best = m
            if counts_as_improvement:
                self.last_improvement = self.evaluations
        self._trim()
        return improved

    def _protected(self, m: Member) -> bool:
        return m is self.best or self.grid.is_elite(m)

    def _trim(self) -> None:
        """Keep at most `capacity` members: elites and the best always stay."""
        excess = len(self.members) - self.capacity
        if excess <= 0:
            return
        victims: list[int] = []  # indices into _ranked, worst first
        for i in range(len(self._ranked) - 1, -1, -1):
            if not self._protected(self._ranked[i]):
                victims.append(i)
                if len(victims) == excess:
                    break
        for i in victims:  # descending indices: deleting one leaves the others valid
            m = self._ranked.pop(i)
            del self._keys[i]
            del self.members[m.id]
            del self._by_hash[m.code_hash]
        if victims:
            self._version += 1

    # --- stagnation ------------------------------------------------------------------------
    def stagnant(self, evaluations_without_improvement: int) -> bool:
        """True if the island's best has not improved in that many of its own evaluations.

        0 (or less) means never stagnant, matching `search.stagnation_reset: 0`.
        """
        if evaluations_without_improvement <= 0:
            return False
        return self.evaluations - self.last_improvement >= evaluations_without_improvement

    def reset(self, seed_members: list[Member]) -> None:
        """Empty the island and re-seed it (e.g. with the seed program and a global best).

        The grid starts afresh; the evaluation counter carries on and the stagnation clock
        restarts now. Raises ValueError, leaving the island untouched, if no seed is usable.
        """
        if not any(m.fitness is not None and math.isfinite(m.fitness) for m in seed_members):
            raise ValueError(
                f"island {self.id} cannot be reset without a seed member of finite fitness"
            )
        self._clear()
        for m in seed_members:
            self._insert(m, counts_as_improvement=False)
        self.resets += 1
        self.last_improvement = self.evaluations

    # --- sampling --------------------------------------------------------------------------
    def ranked(self) -> list[Member]:
        """Members, best first (a copy; O(members))."""
        return list(self._ranked)

    def _cum_weights(self) -> list[float]:
        """Cumulative selection weights over `_ranked`, cached until membership changes."""
        if self._weights is not None and self._weights[0] == self._version:
            return self._weights[1]
        n = len(self._ranked)
        if self.selection == "power_law":
            weights = [(i + 1) ** -self.power_law_alpha for i in range(n)]
        else:  # proportional, on fitness normalised to [0, 1], sharpened by the temperature
            hi, lo = self._ranked[0].fitness, self._ranked[-1].fitness
            span = (hi - lo) or 1.0
            t = max(self.temperature, 1e-6)
            weights = [math.exp(((m.fitness - lo) / span - 1.0) / t) for m in self._ranked]
        cum, total = [], 0.0
        for w in weights:
            total += w
            cum.append(total)
        self._weights = (self._version, cum)
        return cum

    def sample_parent(self, rng: random.Random) -> Member:
        """A parent by the island's selection strategy; deterministic for a seeded rng.

        `elitist` is hill climbing made fit for local optima. The parent is the best; of the
        programs tied with it, `ties` says which: `first`, the first to reach its score (as
        hill climbing), or `uniform`, any of them with equal chance (a child as good as its
        parent joins the parents, so a run on a plateau spreads over it instead of re-editing
        one program). bench/search.py measured the first tie ahead at 150 evaluations and
        neither ahead on both problems at 2,000 (docs/search.md, eighth round). Once the
        island has gone `patience` of its evaluations without a new best, a share `explore`
        of parents are grid elites drawn at random: other regions of the feature space get
        offspring only when exploiting the best has stalled.
        """
        if not self._ranked:
            raise LookupError(f"island {self.id} is empty")
        ranked = self._ranked
        if self.selection == "hill_climb":
            return ranked[0]
        if self.selection == "elitist":
            if (
                self.explore > 0
                and self.evaluations - self.last_improvement >= self.patience
                and rng.random() < self.explore
            ):
                return rng.choice(self.grid.elites())
            if self.ties == "first":
                return ranked[0]  # ties rank by arrival: the first to reach the best
            # the members tied with the best are the first of the ranking
            ties = bisect.bisect_left(self._keys, (self._keys[0][0], math.inf))
            return ranked[rng.randrange(ties)]
        if self.selection == "seed" and self.origin is not None:
            return self.origin
        if self.selection == "tournament":
            k = max(1, min(self.tournament_size, len(ranked)))
            return ranked[min(rng.sample(range(len(ranked)), k))]
        return rng.choices(ranked, cum_weights=self._cum_weights())[0]

    def sample_inspirations(self, rng: random.Random, parent: Member, k: int) -> list[Member]:
        """Up to k programs other than the parent: the island's top ones, then diverse elites.

        round(k * exploit_ratio) come from the top of the ranking; the rest are grid elites
        drawn at random from other cells, topped up from the other members if the grid is
        too small. Cost O(members + cells).
        """
        if k <= 0:
            return []
        n_top = min(k, max(0, round(k * self.exploit_ratio)))
        chosen: list[Member] = []
        ids = {parent.id}
        for m in self._ranked:
            if len(chosen) >= n_top:
                break
            if m.id not in ids:
                chosen.append(m)
                ids.add(m.id)
        diverse = [e for e in self.grid.cells.values() if e.id not in ids]
        rng.shuffle(diverse)
        for e in diverse[: k - len(chosen)]:
            chosen.append(e)
            ids.add(e.id)
        if len(chosen) < k:
            rest = [m for m in self._ranked if m.id not in ids]
            chosen += rng.sample(rest, min(k - len(chosen), len(rest)))
        return chosen

    def state(self) -> dict[str, Any]:
        """The island's summary, as stored in the database's `islands` table."""
        return {
            "island": self.id,
            "best_program_id": self.best.id if self.best else None,
            "best_score": self.best.score if self.best else None,
            "size": len(self.members),
            "evaluations": self.evaluations,
            "last_improvement": self.last_improvement,
        }
