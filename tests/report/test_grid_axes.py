"""A grid's recorded axes describe its bins: every member's cell lies between its bin's edges,
and the database keeps the axes beside the elites (older runs without them read as none)."""

from __future__ import annotations

import random
import sqlite3

from evolve.population.database import Database
from evolve.population.island import Grid, Member


def _member(i: int, **features: float) -> Member:
    return Member(id=i, code=f"x = {i}", code_hash=f"h{i}", score=i, fitness=i, features=features)


def test_axes_edges_bound_every_cell():
    g = Grid(["a", "b"], bins=5)
    assert [ax["edges"] for ax in g.axes()] == [[], []]  # nothing seen yet
    rng = random.Random(3)
    members = [_member(i, a=rng.uniform(-50, 50), b=rng.expovariate(0.1)) for i in range(300)]
    for m in members:
        g.add(m, members)
    axes = g.axes()
    assert [ax["name"] for ax in axes] == ["a", "b"]
    for ax in axes:
        assert len(ax["edges"]) == ax["bins"] + 1 == 6
        assert ax["edges"] == sorted(ax["edges"])
    for m in members:
        for k, ax in zip(g.cell_of(m), axes, strict=True):
            v = m.features[ax["name"]]
            lo, hi = ax["edges"][k], ax["edges"][k + 1]
            assert lo - 1e-9 <= v <= hi + 1e-9 or (k == 0 and v <= lo) or (k == 4 and v >= hi)


def test_axes_are_stored_with_the_elites_and_missing_in_old_files(tmp_path):
    db = Database(tmp_path / "evolve.db")
    db.start_run("r", "p", 0, {}, {})
    axes = [{"name": "n", "bins": 2, "edges": [0.0, 1.0, 2.0]}]
    db.record_elites("r", 0, [{"cell": "1", "program_id": 1, "fitness": 1.0}], axes)
    db.record_elites("r", 1, [{"cell": "0", "program_id": 2, "fitness": 2.0}])  # axes unknown
    assert db.grid_axes("r") == {0: axes}
    db.close()
    # a database written before the grids table existed
    con = sqlite3.connect(tmp_path / "evolve.db")
    con.execute("DROP TABLE grids")
    con.commit()
    con.close()
    old = Database(tmp_path / "evolve.db", readonly=True)
    assert old.grid_axes("r") == {}
    assert len(old.elites("r")) == 2
    old.close()
