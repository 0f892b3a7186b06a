"""bench/search.py's runner processes: real runs on the test session's Ray, in parallel."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import bench_scripts
import pytest


@pytest.fixture(scope="module")
def bench():
    return bench_scripts.load("search")


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
    # a runner runs many commands in one process: each run's log holds that run alone
    for db in dbs:
        log = (db.parent / "run.log").read_text()
        assert log.count("start-up: the config ready") == 1, log
    # every counted child but the seed is compared with its parent; hill climbing breeds
    # from the best so far, so its first child is the seed's
    for r in [*results, again]:
        kids = r["children"]
        outcomes = kids["better"] + kids["equal"] + kids["worse"] + kids["invalid"]
        assert outcomes == r["evaluations"] - 1
        assert 1 <= kids["of_seed"] <= outcomes and 1 <= kids["parents"] <= outcomes
    # each run's model calls, as its database records them; the baselines filter nothing
    for r in [*results, again]:
        assert r["llm_calls"] >= r["evaluations"] - 1  # every child but the seed is a call
        assert r["rejected_novelty"] == 0 and r["rejected_judge"] == 0
    assert sum(r["llm_calls"] for r in [*results, again]) == sum(
        sqlite3.connect(db).execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] for db in dbs
    )


def test_children_counts_each_outcome_against_the_parent(bench, tmp_path) -> None:
    """A database laid out as the engine records it: the seed, and children of each kind."""
    db_path = tmp_path / "evolve.db"
    db = sqlite3.connect(db_path)
    db.execute(
        "CREATE TABLE programs (id INTEGER PRIMARY KEY, parent_id INTEGER, status TEXT, "
        "mode TEXT, valid INTEGER, fitness REAL)"
    )
    db.executemany(
        "INSERT INTO programs VALUES (?, ?, ?, ?, ?, ?)",
        [
            (1, None, "ok", "seed", 1, 1.0),
            (2, 1, "ok", "diff", 1, 2.0),  # better than the seed
            (3, 1, "ok", "diff", 1, 1.0),  # as good
            (4, 2, "ok", "diff", 1, 0.5),  # worse than its parent (2)
            (5, 2, "crash", "diff", 0, None),  # invalid
            (6, 2, "rejected", "diff", None, None),  # never evaluated: not counted
            (7, 2, "ok", "migrant", 1, 2.0),  # a copy from another island: not counted
        ],
    )
    db.commit()
    db.close()
    assert bench.children(db_path) == {
        "better": 1,
        "equal": 1,
        "worse": 1,
        "invalid": 1,
        "parents": 2,
        "of_seed": 2,
    }


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state  # exited, not yet reaped by its new parent


def test_a_runner_whose_bench_is_gone_exits_instead_of_retrying_ray(bench) -> None:
    # The bench process starts a runner on a Ray that answers nowhere, then dies.
    script = (
        "import os, subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, {bench.__file__!r}, '--runner', '127.0.0.1:9',"
        " '--bench-pid', str(os.getpid())],"
        " stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(8)\n"  # the runner is in ray.init by then
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    pid = int(out.stdout)
    for _ in range(120):
        if _gone(pid):
            break
        time.sleep(0.5)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the orphaned runner was still retrying Ray after a minute")


def test_an_arm_given_on_the_command_line_is_the_engine_with_its_overrides(bench) -> None:
    taken = {**bench.ARMS, **bench.FEATURES}
    assert bench.parse_arm("uniform_ties=search.ties=uniform", taken) == (
        "uniform_ties",
        ["search.ties=uniform"],
    )
    assert bench.parse_arm("wide= search.islands=4  search.population_size=80", taken) == (
        "wide",
        ["search.islands=4", "search.population_size=80"],
    )
    assert bench.parse_arm("lean=~search.novelty +search.x=1", taken)[1] == [
        "~search.novelty",
        "+search.x=1",
    ]
    for text, message in [
        ("search.ties", "give NAME=OVERRIDE"),
        ("=search.ties=uniform", "give NAME=OVERRIDE"),
        ("a b=search.ties=uniform", "give NAME=OVERRIDE"),
        ("hill=search.ties=uniform", "the arm 'hill' exists already"),
        ("x=", "one or more Hydra overrides"),
        ("x=search.ties", "one or more Hydra overrides"),
        ("x==uniform", "one or more Hydra overrides"),
    ]:
        with pytest.raises(ValueError, match=message):
            bench.parse_arm(text, taken)


def test_a_bad_arm_stops_the_bench_before_it_starts_anything() -> None:
    script = Path(__file__).resolve().parents[1] / "bench" / "search.py"
    out = subprocess.run(
        [sys.executable, str(script), "--arm", "hill=search.ties=uniform"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "the arm 'hill' exists already; choose another name" in out.stderr
