"""MAP-Elites grid: bins that grow to the observed range without losing elites."""

from __future__ import annotations

import math
import random

from island_helpers import check_invariants, member

from evolve.population.island import Grid, Island


def test_one_elite_per_cell_the_fittest() -> None:
    g = Grid(["f"], bins=4)
    g.add(member(0, 1.0, f=0.0))
    g.add(member(1, 1.0, f=8.0))
    placed, out = g.add(member(2, 2.0, f=0.5))
    assert placed and [m.id for m in out] == [0]
    placed, out = g.add(member(3, 1.5, f=0.7))
    assert not placed and out == []
    assert sorted(m.id for m in g.elites()) == [1, 2]


def test_range_growth_rebins_and_reports_displaced_elites() -> None:
    g = Grid(["f"], bins=4)
    for i, f in enumerate([0.0, 1.0, 2.0, 3.0]):
        g.add(member(i, float(i), f=f))
    assert len(g) == 4
    placed, out = g.add(member(9, -1.0, f=100.0))  # squeezes 0..3 into the first bin
    assert placed
    assert {m.id for m in out} == {0, 1, 2}
    assert {m.id for m in g.elites()} == {3, 9}  # the fittest of the squeezed cell stays


def test_rebinning_keeps_displaced_elites_that_beat_spare_members() -> None:
    isl = Island(0, ["f"], capacity=5, bins=4)
    isl.add(member(0, 10.0, f=0.0))
    isl.add(member(1, 10.0, f=4.0))  # range about 0..4: cells of width about 1
    for i, f in [(2, 1.5), (3, 2.5)]:
        isl.add(member(i, 8.0 + i / 10, f=f))  # elites of their cells
    isl.add(member(4, 0.1, f=0.1))  # dominated by elite 0: a spare member
    assert isl.grid.is_elite(isl.members[2]) and not isl.grid.is_elite(isl.members[4])
    isl.add(member(5, 0.2, f=1000.0))  # huge range: 0..4 all fall into bin 0
    assert not isl.grid.is_elite(isl.members[2])  # displaced ...
    assert {2, 3} <= set(isl.members)  # ... but kept, the weak spare member went instead
    assert 4 not in isl.members
    check_invariants(isl)


def test_rebinning_promotes_a_member_alone_in_a_new_cell() -> None:
    isl = Island(0, ["f"], capacity=10, bins=3)
    isl.add(member(0, 5.0, f=0.0))
    isl.add(member(1, 5.0, f=9.0))  # bins [0,3) [3,6) [6,9]
    isl.add(member(2, 1.0, f=2.0))  # dominated by 0 in the first bin
    assert not isl.grid.is_elite(isl.members[2])
    isl.add(member(3, 1.0, f=-0.75))  # range -3..9: bins [-3,1) [1,5) [5,9]
    assert isl.grid.cell_of(isl.members[0]) != isl.grid.cell_of(isl.members[2])
    assert isl.grid.is_elite(isl.members[2])
    check_invariants(isl)


def test_missing_and_non_finite_features_never_break_the_grid() -> None:
    isl = Island(0, ["a", "b"], capacity=6, bins=3)
    weird = [math.nan, math.inf, -math.inf, None, 1.0, -1.0, 1e300, -1e300, 1.7e308, -1.7e308]
    rng = random.Random(3)
    for i in range(200):
        feats = {}
        for d in ("a", "b"):
            v = rng.choice(weird)
            if v is not None:
                feats[d] = v
        isl.add(member(i, rng.random(), **feats))
        check_invariants(isl)


def test_growth_is_rare() -> None:
    """The margin means a steadily growing feature re-bins O(log range) times, not each add."""
    g = Grid(["f"], bins=8)
    rebins = 0
    for i in range(10_000):
        lo, hi = dict(g.lo), dict(g.hi)
        g.add(member(i, 0.0, f=float(i)))
        rebins += (lo, hi) != (g.lo, g.hi)
    assert rebins < 60
