"""Runs that join a real 2-node Ray cluster on this machine: the work spreads over the nodes,
each program row names its node, and API keys reach the islands without entering Ray's logs."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from cluster_helpers import clean_env, evolve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/llm_stub.py

pytestmark = pytest.mark.slow

SECRET = "sk-test-CLUSTER-SECRET-9f8e7d6c5b4a"  # a key that must never be written anywhere
COMMON = ["report.live=false", "literature.enabled=false", "search.islands=2"]
# One evaluator per node: each reserves a whole node's CPUs, so Ray must use both nodes.
SPREAD = ["sandbox.workers=2", "sandbox.cpus_per_worker=2"]


def _edit(k: int) -> str:
    """A SEARCH/REPLACE edit every min_overlap child accepts: a distinct row of heights."""
    a, b = 0.30 + 0.01 * k, 0.70 - 0.01 * k
    return (
        f"<<<<<<< SEARCH\n    h = np.array([\n=======\n    h = np.array([\n"
        f"        {a:.2f}, {b:.2f},\n>>>>>>> REPLACE\n"
    )


def _db(runs: Path) -> sqlite3.Connection:
    (db,) = runs.glob("erdos-min_overlap/*/evolve.db")
    return sqlite3.connect(db)


def test_run_joins_the_cluster_and_records_each_node(two_nodes, tmp_path):
    r = evolve(
        "run",
        f"cluster.address={two_nodes.address}",
        f"runs_dir={tmp_path}",
        "budget.evaluations=16",
        *COMMON,
        *SPREAD,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    with _db(tmp_path) as db:
        rows = db.execute(
            "SELECT node, COUNT(*) FROM programs WHERE status != 'rejected' GROUP BY node"
        ).fetchall()
    per_node = dict(rows)
    assert sum(per_node.values()) == 16
    assert set(per_node) == set(two_nodes.nodes), "every evaluation names one of the two nodes"
    (run_dir,) = tmp_path.glob("erdos-min_overlap/*")
    shown = evolve("show", str(run_dir), env=clean_env(COLUMNS="200"))
    assert shown.returncode == 0, shown.stderr
    assert "evaluations by node" in shown.stdout
    for node in two_nodes.nodes:
        assert node[:16] in shown.stdout


def test_api_key_reaches_islands_on_every_node_and_no_log(two_nodes, tmp_path):
    """The cluster's processes never had the key; the driver hands it to the islands by
    method call, and no file of the Ray session (every node's logs) holds it afterwards."""
    from llm_stub import StubLLM, reply

    with StubLLM(default=reply(_edit(99))) as stub:
        stub.script(*(reply(_edit(k)) for k in range(40)))
        r = evolve(
            "run",
            f"cluster.address={two_nodes.address}",
            f"runs_dir={tmp_path}",
            "budget.evaluations=8",
            "llm=openai",
            "llm.model=openai/stub",
            f"llm.api_base=http://127.0.0.1:{stub.port}/v1",
            *COMMON,
            *SPREAD,
            env=clean_env(OPENAI_API_KEY=SECRET),
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert stub.requests, "the islands asked the LLM"
        assert all(q.headers["authorization"] == f"Bearer {SECRET}" for q in stub.requests)
    leaked = []
    for f in two_nodes.session_dir.rglob("*"):
        if f.is_file() and not f.is_symlink():
            try:
                if SECRET.encode() in f.read_bytes():
                    leaked.append(f)
            except OSError:  # sockets and files a node is still rotating
                continue
    assert not leaked, f"the API key is written in Ray's session files: {leaked[:5]}"
    assert any(two_nodes.session_dir.rglob("*.log")) or any(two_nodes.session_dir.rglob("*.out")), (
        "the session's logs were searched"
    )


def test_sweep_sends_each_job_to_the_cluster(two_nodes, tmp_path):
    """`-m hydra/launcher=ray` on a joined cluster: both jobs complete, each with a readable
    database, under the sweep folder on this machine, and one report covers them."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    r = evolve(
        "run",
        "-m",
        "hydra/launcher=ray",
        f"cluster.address={two_nodes.address}",
        "seed=0,1",
        "runs_dir=runs",  # relative to this command's folder, not to a Ray worker's
        "budget.evaluations=8",
        "report.live=false",
        "literature.enabled=false",
        "search.islands=1",
        "sandbox.workers=1",
        cwd=tmp_path,
        timeout=400,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (sweep,) = (tmp_path / "runs" / "sweeps").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0-erdos-min_overlap-seed0", "1-erdos-min_overlap-seed1"]
    for job in jobs:
        with sqlite3.connect(sweep / job / "evolve.db") as db:
            status, evaluations, seed = db.execute(
                "SELECT status, evaluations, seed FROM runs"
            ).fetchone()
            counted = db.execute(
                "SELECT COUNT(*) FROM programs WHERE status != 'rejected'"
            ).fetchone()[0]
        assert (status, evaluations, counted) == ("completed", 8, 8)
        assert seed == int(job[-1])
        assert (sweep / job / "best_program.py").exists()
    report = evolve("report", str(sweep), "--format", "json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    assert len(rows) == 2 and {row["seed"] for row in rows} == {0, 1}
