"""Run databases from an older schema: read as they are by show and report (migrated in a copy
in memory, the file untouched), migrated on disk when a run writes to them (resume).

fixtures/run_schema_v1.sqlite is a real run database written by evolve at schema version 1
(2026-12-01): three programs, an LLM call, an elite, an island and a literature verdict.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from evolve.cli import main
from evolve.population.database import SCHEMA_VERSION, Database, DatabaseError, schema_version

FIXTURE = Path(__file__).with_name("fixtures") / "run_schema_v1.sqlite"
RUN = "fixture-run"


@pytest.fixture
def old_run(tmp_path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(FIXTURE, run_dir / "evolve.db")
    return run_dir


def _file_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return schema_version(conn)


def test_reading_an_old_database_leaves_the_file_as_it_was(old_run):
    path = old_run / "evolve.db"
    before = path.read_bytes()
    assert SCHEMA_VERSION > 1 and _file_version(path) == 1
    db = Database(path, readonly=True)
    assert db.found_version == 1
    assert db.evaluations(RUN) == 3 and db.status_counts(RUN) == {"ok": 2, "crash": 1}
    assert [p["score"] for p in db.best(RUN, 2)] == [0.45, 0.5]
    db.close()
    assert path.read_bytes() == before


def test_show_and_report_read_an_old_database(old_run, capsys):
    assert main(["show", str(old_run)]) == 0
    shown = capsys.readouterr().out
    assert RUN in shown and "0.45" in shown, shown
    assert main(["report", str(old_run.parent)]) == 0
    assert "finished" in capsys.readouterr().out  # the run, with its verdict, listed
    assert _file_version(old_run / "evolve.db") == 1


def test_writing_migrates_the_file_and_keeps_every_row(old_run):
    path = old_run / "evolve.db"
    db = Database(path)
    assert db.found_version == 1 and _file_version(path) == SCHEMA_VERSION
    indexes = {r[0] for r in db.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "idx_literature_checks_run_id_program_id" in indexes
    assert db.evaluations(RUN) == 3
    code = "def solve():\n    return {'h': [9]}\n"
    db.record_program(RUN, {"code": code, "code_hash": "h9", "evaluation": {"status": "ok"}})
    assert db.evaluations(RUN) == 4
    seqs = [r[0] for r in db.db.execute("SELECT seq FROM programs ORDER BY id")]
    assert seqs == [1, 2, 3, 4]
    db.close()
    again = Database(path)
    assert again.found_version == SCHEMA_VERSION
    again.close()


def test_a_newer_schema_is_refused_with_what_to_do(old_run):
    path = old_run / "evolve.db"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [SCHEMA_VERSION + 1])
    for readonly in (True, False):
        with pytest.raises(DatabaseError, match="upgrade evolve"):
            Database(path, readonly=readonly)
