"""Island membership: dedup, capacity trimming, migrants, stagnation and reset."""

from __future__ import annotations

import math
import random

import pytest
from island_helpers import check_invariants, member

from evolve.population.island import Island


def test_add_reports_new_best_and_dedups_by_hash_and_id() -> None:
    isl = Island(0, ["f"], capacity=10)
    assert isl.add(member(1, 1.0, f=0.0)) is True
    assert isl.add(member(2, 0.5, f=1.0)) is False
    assert isl.add(member(3, 2.0, f=2.0)) is True
    assert isl.best.id == 3
    same_code = member(4, 9.0, f=0.0)
    same_code.code_hash = "h1"
    assert isl.add(same_code) is False  # duplicate code: ignored even though fitter
    same_id = member(3, 9.0)
    same_id.code_hash = "other"
    assert isl.add(same_id) is False
    assert len(isl) == 3 and isl.best.id == 3
    assert isl.has("h1") and not isl.has("other")
    assert isl.add(member(5, math.nan)) is False
    assert isl.add(member(6, -math.inf)) is False
    assert len(isl) == 3
    check_invariants(isl)


def test_trimming_keeps_capacity_best_and_elites() -> None:
    rng = random.Random(7)
    isl = Island(0, ["a", "b"], capacity=12, bins=3)
    added = []
    for i in range(600):
        m = member(i, rng.gauss(0, 1), a=rng.gauss(0, 1), b=rng.uniform(-5, 5))
        isl.add(m)
        added.append(m)
        check_invariants(isl)
    assert isl.best.fitness == max(m.fitness for m in added)
    assert len(isl) <= max(isl.capacity, len(isl.grid) + 1)
    # a trimmed program is no longer held (the run database remembers it, not the island)
    gone = [m for m in added if m.id not in isl.members]
    assert gone and not any(isl.has(m.code_hash) for m in gone)


def test_trimming_never_evicts_elites_even_beyond_capacity() -> None:
    isl = Island(0, ["f"], capacity=2, bins=5)
    isl.add(member(0, 0.0, f=0.0))
    isl.add(member(1, 0.0, f=100.0))  # fixes the range: bins of width 20
    for i, f in enumerate([30.0, 50.0, 70.0], start=2):
        isl.add(member(i, -float(i), f=f))
    # five occupied cells, each with one elite: all kept despite capacity 2
    assert len(isl.grid) == 5 and len(isl) == 5
    assert all(isl.grid.is_elite(m) for m in isl.members.values())
    isl.add(member(9, -50.0, f=30.0))  # dominated in its cell, not elite: trimmed at once
    assert 9 not in isl.members
    check_invariants(isl)


def test_trimming_removes_the_least_fit_spare_member() -> None:
    isl = Island(0, [], capacity=3)  # no feature dims: the grid holds only the best
    for i, fit in enumerate([5.0, 1.0, 3.0, 4.0, 2.0]):
        isl.add(member(i, fit))
    assert sorted(m.fitness for m in isl.members.values()) == [3.0, 4.0, 5.0]


def test_accept_migrant_rejects_duplicates_and_copies() -> None:
    src = Island(0, ["f"], capacity=5)
    dst = Island(1, ["f"], capacity=5)
    m = member(1, 3.0, f=1.0)
    src.add(m)
    dst.add(member(2, 1.0, f=2.0))
    assert dst.accept_migrant(src.best) is True
    assert dst.accept_migrant(src.best) is False  # already here
    assert dst.has(m.code_hash) and dst.best.id == 1 and dst.best.island == 1
    assert src.best.island == 0  # the source's member is not mutated
    dupe = member(3, 4.0, f=1.0)
    dupe.code_hash = m.code_hash
    assert dst.accept_migrant(dupe) is False
    check_invariants(dst)


def test_migrant_worse_than_everything_is_not_accepted_when_full() -> None:
    dst = Island(0, [], capacity=2)
    dst.add(member(1, 5.0))
    dst.add(member(2, 4.0))
    assert dst.accept_migrant(member(3, 1.0)) is False
    assert not dst.has("h3")


def test_stagnation_clock_and_migrants() -> None:
    isl = Island(0, ["f"], capacity=10)
    isl.add(member(0, 1.0))
    assert not isl.stagnant(3)
    for i in range(1, 4):
        isl.evaluations += 1  # what the engine does per counted child
        isl.add(member(i, 0.0, f=float(i)))
    assert isl.stagnant(3) and not isl.stagnant(4)
    assert not isl.stagnant(0)  # 0 means never reset
    isl.accept_migrant(member(10, 9.0))  # a better migrant is not the island's own progress
    assert isl.best.id == 10 and isl.stagnant(3)
    isl.evaluations += 1
    assert isl.add(member(11, 10.0)) is True
    assert isl.last_improvement == 4 and not isl.stagnant(1)


def test_reset_reseeds_and_restarts_the_clock() -> None:
    isl = Island(0, ["f"], capacity=10, bins=4)
    for i in range(20):
        isl.evaluations += 1
        isl.add(member(i, float(i % 5), f=float(i)))
    assert isl.stagnant(10)
    seed, elite = member(100, 0.5, f=0.0), member(101, 7.0, f=3.0)
    isl.reset([seed, elite])
    assert set(isl.members) == {100, 101} and isl.best.id == 101
    assert isl.evaluations == 20 and isl.last_improvement == 20 and isl.resets == 1
    assert not isl.stagnant(1) and not isl.has("h3")
    assert isl.grid.lo["f"] == 0.0 and isl.grid.hi["f"] < 4.0  # a fresh grid
    check_invariants(isl)
    with pytest.raises(ValueError, match="finite fitness"):
        isl.reset([member(200, math.nan)])
    assert set(isl.members) == {100, 101}  # a refused reset leaves the island as it was
    assert isl.state()["size"] == 2


def test_empty_island_cannot_sample() -> None:
    with pytest.raises(LookupError, match="island 3 is empty"):
        Island(3, []).sample_parent(random.Random(0))


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown selection 'roulette'"):
        Island(0, [], selection="roulette")
    with pytest.raises(ValueError, match="capacity"):
        Island(0, [], capacity=0)
    with pytest.raises(ValueError, match=r"explore share must be in \[0, 1\], got 1.5"):
        Island(0, [], selection="elitist", explore=1.5)


@pytest.mark.parametrize(
    "selection", ["elitist", "tournament", "proportional", "power_law", "hill_climb"]
)
def test_random_operations_keep_every_invariant(selection: str) -> None:
    rng = random.Random(11)
    isl = Island(0, ["a", "b"], capacity=8, bins=3, selection=selection)
    other = Island(1, ["a", "b"], capacity=8, bins=3)
    best_ever = -math.inf
    for i in range(600):
        m = member(i, rng.gauss(0, 1), a=rng.expovariate(1.0) * i, b=rng.choice([0.0, 1.0, 2.0]))
        op = rng.random()
        if op < 0.6:
            isl.evaluations += 1
            was = isl.best.fitness if isl.best else -math.inf
            assert isl.add(m) is (m.fitness > was)
            best_ever = max(best_ever, m.fitness)
        elif op < 0.8:
            other.add(m)
            if other.best is not None and isl.accept_migrant(other.best):
                best_ever = max(best_ever, other.best.fitness)
        elif op < 0.99 and len(isl):
            parent = isl.sample_parent(rng)
            assert parent in isl
            insp = isl.sample_inspirations(rng, parent, 3)
            assert parent not in insp and all(x in isl for x in insp)
        elif len(isl):
            isl.reset([isl.best, member(10_000 + i, -5.0)])
        if isl.best is not None:
            assert isl.best.fitness == best_ever
        check_invariants(isl)
        check_invariants(other)
