"""A short offline run (the local mutator, no LLM) beats the seed on each scheduling problem:
the search has somewhere to go on every built-in heuristic problem without a model."""

from __future__ import annotations

import sqlite3

import pytest

from evolve.cli import main

pytestmark = pytest.mark.slow

CASES = [
    # problem, overrides, evaluations
    ("scheduling/binpacking_online", [], 30),  # train: seed 6.0857, best 5.2869
    ("scheduling/jobshop", [], 40),  # ft10: seed 1207, best 1163 (seed=1)
    ("scheduling/flowshop", [], 40),  # ta001: seed 1396, best 1368 (seed=1)
]


@pytest.mark.parametrize(("problem", "overrides", "evaluations"), CASES, ids=[c[0] for c in CASES])
def test_a_short_offline_run_beats_the_seed(ray_session, tmp_path, problem, overrides, evaluations):
    runs = tmp_path / "runs"
    rc = main(
        [
            "run",
            f"runs_dir={runs}",
            "report.live=false",
            "literature.enabled=false",
            f"problem={problem}",
            f"budget.evaluations={evaluations}",
            "search.islands=1",
            "seed=1",
            *overrides,
        ]
    )
    assert rc == 0
    (db_path,) = runs.glob("*/*/evolve.db")
    db = sqlite3.connect(db_path)
    seed = db.execute("SELECT score, fitness FROM programs WHERE mode = 'seed'").fetchone()
    best = db.execute("SELECT score, MAX(fitness) FROM programs WHERE valid = 1").fetchone()
    assert best[1] > seed[1], f"best {best[0]} did not beat the seed's {seed[0]}"
