"""Builders and invariant checks shared by the population tests."""

from __future__ import annotations

from evolve.population.island import Island, Member


def member(i: int, fitness: float, **features: float) -> Member:
    return Member(
        id=i, code=f"x = {i}", code_hash=f"h{i}", score=fitness, fitness=fitness, features=features
    )


def check_invariants(isl: Island) -> None:
    """What must hold after every operation, whatever the sequence of adds."""
    members = list(isl.members.values())
    assert len(isl.ranked()) == len(members) == len({m.code_hash for m in members})
    assert isl.ranked() == sorted(members, key=lambda m: (-m.fitness, m.id))
    for h in (m.code_hash for m in members):
        assert isl.has(h)
    if members:
        assert isl.best is not None and isl.best in isl
        assert isl.best.fitness == max(m.fitness for m in members)
    # every elite is a member, and is the fittest member of its cell
    for cell, e in isl.grid.cells.items():
        assert isl.members.get(e.id) is e
        assert isl.grid.cell_of(e) == cell
    for m in members:
        e = isl.grid.cells.get(isl.grid.cell_of(m))
        assert e is not None and e.fitness >= m.fitness
    # capacity bounds the members that are neither elite nor best
    spare = [m for m in members if not isl.grid.is_elite(m) and m is not isl.best]
    assert len(members) <= isl.capacity or not spare
