"""The program row and the run's evaluation counter are one transaction, on any sqlite-utils.

A failure is injected between the two writes with a real SQLite trigger (the counter's
UPDATE aborts), on a real database file; a second connection then looks at what was kept.
"""

from __future__ import annotations

import sqlite3
from importlib.metadata import version

import pytest

from evolve.population.database import Database

RUN = "run-1"


def _program(code: str = "def solve():\n    return {}\n") -> dict:
    return {
        "code": code,
        "code_hash": str(abs(hash(code))),
        "island": 0,
        "evaluation": {"status": "ok", "valid": True, "score": 1.0, "fitness": 1.0},
    }


@pytest.fixture
def db(tmp_path):
    print(f"sqlite-utils {version('sqlite-utils')}")
    path = tmp_path / "run.sqlite"
    database = Database(path)
    database.start_run(RUN, "erdos/min_overlap", 0, {}, {})
    yield database, path
    database.close()


def _look(path) -> tuple[int, int, int]:
    """(programs, the run's counter, elites) as another reader sees them."""
    with sqlite3.connect(path) as other:
        programs = other.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
        counter = other.execute("SELECT evaluations FROM runs WHERE id = ?", [RUN]).fetchone()[0]
        elites = other.execute("SELECT COUNT(*) FROM elites").fetchone()[0]
    return programs, counter, elites


def _trigger(path, sql: str) -> None:
    with sqlite3.connect(path) as other:
        other.execute(sql)


def test_a_failure_between_the_row_and_the_counter_keeps_neither(db):
    database, path = db
    database.record_program(RUN, _program("a = 1\n"))
    assert _look(path)[:2] == (1, 1)
    _trigger(
        path,
        "CREATE TRIGGER fail_counter BEFORE UPDATE OF evaluations ON runs "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    with pytest.raises(sqlite3.DatabaseError, match="injected failure"):
        database.record_program(RUN, _program("a = 2\n"))
    assert _look(path)[:2] == (1, 1)  # no row without its count
    # The connection is not left inside a transaction: the next write goes through.
    _trigger(path, "DROP TRIGGER fail_counter")
    database.record_program(RUN, _program("a = 3\n"))
    assert _look(path)[:2] == (2, 2)
    seqs = [r[0] for r in sqlite3.connect(path).execute("SELECT seq FROM programs ORDER BY id")]
    assert seqs == [1, 2]


def test_a_failure_while_replacing_the_elites_keeps_the_old_grid(db):
    database, path = db
    database.record_elites(RUN, 0, [{"cell": "0,0", "program_id": 1, "fitness": 1.0}])
    _trigger(
        path,
        "CREATE TRIGGER fail_elite BEFORE INSERT ON elites "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    cells = [{"cell": f"{i},0", "program_id": i, "fitness": float(i)} for i in range(3)]
    with pytest.raises(sqlite3.DatabaseError, match="injected failure"):
        database.record_elites(RUN, 0, cells)
    assert _look(path)[2] == 1  # the old grid, not an empty one
    _trigger(path, "DROP TRIGGER fail_elite")
    database.record_elites(RUN, 0, cells)
    assert _look(path)[2] == 3


def test_a_group_commit_keeps_all_of_a_batch_or_none_of_it(db):
    """The archive writes whatever arrives within a few milliseconds in one transaction: a
    failure in its third child leaves none of the batch (calls, children, counts)."""
    database, path = db
    call = {"island": 0, "model": "m", "prompt": "p", "response": "r", "cost_usd": 0.5}
    batch = [(call, _program(f"b = {k}\n")) for k in range(3)] + [(call, None)]
    ids = database.record_iterations(RUN, batch)
    assert [p is not None for _, p in ids] == [True, True, True, False]
    assert _look(path)[:2] == (3, 3)
    _trigger(
        path,
        "CREATE TRIGGER fail_third BEFORE INSERT ON programs WHEN NEW.code = 'c = 2\n' "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    with pytest.raises(sqlite3.DatabaseError, match="injected failure"):
        database.record_iterations(RUN, [(call, _program(f"c = {k}\n")) for k in range(4)])
    assert _look(path)[:2] == (3, 3)
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] == 4
        # Each child points at its own call.
        links = other.execute("SELECT llm_call_id FROM programs ORDER BY id").fetchall()
    assert [r[0] for r in links] == [r[0] for r in ids[:3]]


def test_a_migration_round_is_one_transaction(db):
    """A round's migrations and every island's state and grid go in together: a failure in
    the second island's grid keeps the first round's rows, none of the second's."""
    database, path = db

    def snap(island: int, cells: int) -> dict:
        return {
            "state": {"island": island, "best_program_id": 1, "best_score": 1.0, "size": cells},
            "elites": [
                {"cell": f"{c},0", "program_id": 1, "fitness": float(c)} for c in range(cells)
            ],
            "axes": [{"name": "code_length", "bins": 4, "edges": [0, 1, 2, 3, 4]}],
        }

    database.record_round(RUN, [(0, 1, 1)], [snap(0, 2), snap(1, 1)])
    with sqlite3.connect(path) as other:
        seen = lambda sql: other.execute(sql).fetchall()  # noqa: E731
        assert seen("SELECT from_island, to_island, program_id FROM migrations") == [(0, 1, 1)]
        assert seen("SELECT island, size FROM islands ORDER BY island") == [(0, 2), (1, 1)]
        assert seen("SELECT island, COUNT(*) FROM elites GROUP BY island") == [(0, 2), (1, 1)]
        assert len(seen("SELECT axes FROM grids")) == 2
    _trigger(
        path,
        "CREATE TRIGGER fail_island_1 BEFORE INSERT ON elites WHEN NEW.island = 1 "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    with pytest.raises(sqlite3.DatabaseError, match="injected failure"):
        database.record_round(RUN, [(1, 0, 1)], [snap(0, 3), snap(1, 3)])
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == 1
        assert other.execute("SELECT size FROM islands WHERE island = 0").fetchone()[0] == 2
    assert _look(path)[2] == 3  # the first round's grids, not half of the second's
