"""What a child's numbers become in the run database: JSON columns hold valid JSON (no NaN or
Infinity tokens, which JSON has not and other readers reject), and plain values as they were."""

from __future__ import annotations

import json
import sqlite3

from evolve.population.database import Database

RUN = "run-1"


def _stored(tmp_path, metrics: dict) -> dict:
    path = tmp_path / "run.sqlite"
    db = Database(path)
    db.start_run(RUN, "erdos/min_overlap", 0, {}, {})
    ev = {"status": "ok", "valid": True, "score": 1.0, "fitness": 1.0, "metrics": metrics}
    db.record_program(RUN, {"code": "x = 1\n", "code_hash": "h", "island": 0, "evaluation": ev})
    db.close()
    with sqlite3.connect(path) as conn:
        text = conn.execute("SELECT metrics FROM programs").fetchone()[0]
    return json.loads(text, parse_constant=lambda c: f"invalid JSON constant {c}")


def test_non_finite_numbers_are_stored_as_null_at_any_depth(tmp_path):
    metrics = {
        "gap": float("nan"),
        "per_set": {"train": float("inf"), "test": [1.5, -float("inf")]},
    }
    assert _stored(tmp_path, metrics) == {
        "gap": None,
        "per_set": {"test": [1.5, None], "train": None},
    }


def test_finite_numbers_are_stored_as_they_were(tmp_path):
    metrics = {"b": 0.1, "a": {"n": 3, "names": ["x", "y"]}, "flag": True}
    assert _stored(tmp_path, metrics) == metrics
