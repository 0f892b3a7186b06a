"""Runs that survive kill -9, resume without losing counted work, and reproduce from a seed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evolve.cli import main

pytestmark = pytest.mark.slow


def _only_run_dir(runs: Path) -> Path:
    (run_dir,) = [p for p in (runs / "erdos-min_overlap").iterdir() if p.is_dir()]
    return run_dir


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_sigkill_then_resume_loses_nothing_and_keeps_budget(ray_session, tmp_path):
    runs = tmp_path / "runs"
    address = ray_session.get_runtime_context().gcs_address
    budget = 160
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evolve.cli",
            "run",
            f"runs_dir={runs}",
            "report.live=false",
            f"budget.evaluations={budget}",
            f"cluster.address={address}",
            "seed=11",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    db = None
    # A random moment mid-run, from a seed that is printed: EVOLVE_KILL_SEED=S replays it.
    seed = int(os.environ.get("EVOLVE_KILL_SEED") or random.SystemRandom().randrange(1 << 32))
    kill_at = 40 + random.Random(seed).randrange(60)
    print(f"killing the run at evaluation {kill_at} (EVOLVE_KILL_SEED={seed})")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"the run ended before it was killed: {proc.stderr.read().decode()[-2000:]}"
            )
        dbs = list(runs.glob("*/*/evolve.db"))
        if dbs:
            db = dbs[0]
            try:
                if (
                    _count(db, "SELECT COUNT(*) FROM programs WHERE status != 'rejected'")
                    >= kill_at
                ):
                    break
            except sqlite3.OperationalError:
                pass  # tables not created yet
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert db is not None
    # One snapshot: the killed driver's archive (an actor of the shared Ray) may record the
    # children it was evaluating for a moment more; resume waits until it has stopped.
    snap = sqlite3.connect(db, isolation_level=None)
    snap.execute("BEGIN")
    before = snap.execute(
        "SELECT id, code_hash, score FROM programs WHERE status != 'rejected' ORDER BY id"
    ).fetchall()
    counted_before = snap.execute("SELECT evaluations FROM runs").fetchone()[0]
    snap.execute("COMMIT")
    snap.close()
    assert counted_before == len(before) >= kill_at
    assert counted_before < budget

    run_dir = db.parent
    assert main(["run", f"resume={run_dir}", "report.live=false"]) == 0

    conn = sqlite3.connect(db)
    after = conn.execute(
        "SELECT id, code_hash, score FROM programs WHERE status != 'rejected' ORDER BY id"
    ).fetchall()
    assert after[: len(before)] == before  # nothing counted was lost or changed
    assert len(after) == budget  # the budget holds across the restart
    assert conn.execute("SELECT evaluations, status FROM runs").fetchone() == (budget, "completed")
    seqs = [r[0] for r in conn.execute("SELECT seq FROM programs ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE mode = 'seed'").fetchone()[0] == 1


def _sequence(tmp_path: Path, name: str) -> list[tuple]:
    runs = tmp_path / name
    assert (
        main(
            [
                "run",
                f"runs_dir={runs}",
                "report.live=false",
                "budget.evaluations=40",
                "seed=5",
                "search.islands=1",
                "sandbox.workers=1",
                "search.in_flight_per_island=1",
                "search.pipeline=false",
            ]
        )
        == 0
    )
    db = _only_run_dir(runs) / "evolve.db"
    return (
        sqlite3.connect(db)
        .execute("SELECT seq, parent_id, code_hash, status, score FROM programs ORDER BY seq")
        .fetchall()
    )


def test_same_seed_same_programs_and_scores(ray_session, tmp_path):
    a = _sequence(tmp_path, "a")
    b = _sequence(tmp_path, "b")
    assert len(a) >= 40
    assert a == b
