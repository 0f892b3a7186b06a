"""bench/search.py's runner processes: real runs on the test session's Ray, in parallel."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "search.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_search", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runners_share_the_ray_and_keep_each_run_apart(bench, ray_session, tmp_path) -> None:
    runners = bench.Runners(2, ray_session.get_runtime_context().gcs_address)
    try:
        jobs = [
            {
                "problem": "erdos/min_overlap",
                "arm": bench.ARMS["hill"],
                "seed": seed,
                "budget": 4,
                "llm": "local",
                "root": str(tmp_path),
            }
            for seed in (0, 0)
        ]
        results = [f.result(timeout=600) for f in [runners.submit(j) for j in jobs]]
        bad = runners.submit({**jobs[0], "problem": "erdos/no_such_problem"})
        with pytest.raises(RuntimeError, match="no_such_problem"):
            bad.result(timeout=600)
        # a failed run leaves its runner usable
        again = runners.submit({**jobs[1], "seed": 1, "budget": 3}).result(timeout=600)
    finally:
        runners.close()
    assert [r["seed"] for r in results] == [0, 0] and again["seed"] == 1
    assert all(r["evaluations"] == 4 for r in results) and again["evaluations"] == 3
    # one folder and one database per run, even for a seed run twice at once
    dbs = sorted(tmp_path.glob("*/*/*/evolve.db"))
    assert len(dbs) == 3
    for r in results:
        assert set(r["best"]) == {"25", "50", "100"}
        assert r["best"]["100"] <= r["best"]["25"]  # min_overlap: lower is better
    # what the bench reports is what the run databases hold
    in_dbs = sorted(
        sqlite3.connect(db).execute("SELECT MIN(score) FROM programs WHERE valid").fetchone()[0]
        for db in dbs
    )
    assert in_dbs == sorted([r["best"]["100"] for r in results] + [again["best"]["100"]])
