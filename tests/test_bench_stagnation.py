"""bench/stagnation.py: replaying a kept run's database in order of record."""

from __future__ import annotations

import sqlite3

import bench_scripts
import pytest


@pytest.fixture(scope="module")
def stagnation():
    return bench_scripts.load("stagnation")


def test_replay_counts_stagnation_and_children_of_a_superseded_parent(stagnation, tmp_path) -> None:
    db_path = tmp_path / "evolve.db"
    db = sqlite3.connect(db_path)
    db.execute(
        "CREATE TABLE programs (id INTEGER PRIMARY KEY, seq INTEGER, parent_id INTEGER, "
        "valid INTEGER, fitness REAL, status TEXT, mode TEXT)"
    )
    # (id, parent, valid, fitness, status, mode) in order of record; patience 2 below
    rows = [
        (1, None, 1, 0.0, "evaluated", "seed"),
        (2, 1, 1, 1.0, "evaluated", "diff"),  # new best
        (3, 2, 1, 0.5, "evaluated", "diff"),
        (4, 2, 1, 0.5, "evaluated", "diff"),
        (5, 2, 1, 0.7, "evaluated", "diff"),  # two without a new best: stagnant from here
        (6, 1, 1, 2.0, "evaluated", "diff"),  # the seed's child, the seed below the best: new best
        (7, 6, 0, None, "rejected", "diff"),  # not counted
        (8, 1, 1, 1.5, "evaluated", "migrant"),  # not counted
        (9, 6, 0, None, "evaluated", "diff"),  # invalid child of the best
    ]
    db.executemany(
        "INSERT INTO programs VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i, seq, p, v, f, s, m) for seq, (i, p, v, f, s, m) in enumerate(rows)],
    )
    db.commit()
    db.close()
    run = stagnation.replay(db_path, patience=2)
    assert run == {
        "evaluations": 6,
        "stagnant": 2,
        "episodes": 1,
        "new_bests": 2,
        "below": 1,
        "below_new_best": 1,
        "below_gaps": [1.0],
    }
