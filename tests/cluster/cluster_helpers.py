"""Helpers for the multi-node tests: a real Ray cluster on this machine, run in its own process
(never the session's `ray_session`); tests join it with `evolve run cluster.address=...` in
subprocesses. Importable by name (tests/cluster is on sys.path through its conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without keys or Ray addresses: what a fresh shell on a node holds."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and k not in ("RAY_ADDRESS", "EVOLVE_DEBUG")
    }
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", RAY_AUTH_MODE="disabled", **extra)
    return env


@dataclass
class TestCluster:
    """A head node and worker nodes, each its own raylet."""

    proc: subprocess.Popen
    address: str
    session_dir: Path
    nodes: list[str]

    def command(self, line: str) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def remove_worker(self, i: int) -> str:
        return self.command(f"remove {i}")["removed"]


def start_cluster(head_cpus: int, *worker_cpus: int) -> TestCluster:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "cluster_node.py"), str(head_cpus), *map(str, worker_cpus)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=REPO,
    )
    assert proc.stdout
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        pytest.fail(f"the test cluster did not start (exit {proc.returncode})")
    info = json.loads(line)
    return TestCluster(proc, info["address"], Path(info["session_dir"]), info["nodes"])


def stop_cluster(c: TestCluster) -> None:
    assert c.proc.stdin
    c.proc.stdin.close()
    try:
        c.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        c.proc.kill()
        c.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def two_nodes():
    """A head and one worker node, 2 CPUs each."""
    c = start_cluster(2, 2)
    yield c
    stop_cluster(c)


def evolve(*args: str, env: dict[str, str] | None = None, timeout: float = 240, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "evolve.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or clean_env(),
        cwd=cwd or REPO,
    )


def actor_nodes(address: str) -> list[tuple[str, str, str]]:
    """(class name, node id, state) of every actor the cluster has known, dead ones included,
    asked from a fresh driver process (this one may hold the session's own Ray)."""
    code = (
        "import json, sys, ray; from ray._private import state\n"
        "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
        "rows = [[a['ActorClassName'], a['Address']['NodeID'], a['State']]"
        " for a in state.actors().values()]\n"
        "print('ACTORS ' + json.dumps(rows))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, address],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    assert r.returncode == 0, r.stderr
    # Ray prints its own notices to stdout too (a node's lagging heartbeats, ...).
    (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith("ACTORS ")]
    return [tuple(row) for row in json.loads(line.removeprefix("ACTORS "))]
