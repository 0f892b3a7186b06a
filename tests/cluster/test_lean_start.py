"""A run's own Ray starts lean (cluster.lean_start): without the head processes a run never
uses (Ray's API server, the autoscaler's monitor, the log monitor unless log_to_driver), and
in full on a Ray whose start-up this was not written against. Real Ray, in a process of its
own (the test run's shared Ray is already up in this one)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ray._private import node

from evolve.cluster import _lean_start

START_AND_REPORT = """
import json, sys
import ray
from evolve.cluster import init_ray

report = {}
for name, cluster in json.loads(sys.argv[1]).items():
    assert init_ray(cluster)
    head = ray._private.worker._global_node
    processes = sorted(head.all_processes)

    @ray.remote
    def square(x):
        return x * x

    report[name] = {"processes": processes, "work": ray.get([square.remote(i) for i in range(4)])}
    ray.shutdown()
print(json.dumps(report))
"""


@pytest.mark.slow
def test_a_runs_own_ray_starts_without_the_processes_it_never_uses_and_works():
    clusters = {
        "lean": {"address": None, "num_cpus": 1},
        "lean_logs": {"address": None, "num_cpus": 1, "log_to_driver": True},
        "full": {"address": None, "num_cpus": 1, "lean_start": False},
    }
    out = subprocess.run(
        [sys.executable, "-c", START_AND_REPORT, json.dumps(clusters)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for started in report.values():
        assert started["work"] == [0, 1, 4, 9]
    unused = {"dashboard", "monitor", "log_monitor"}
    assert not unused & set(report["lean"]["processes"])
    assert {"gcs_server", "raylet"} <= set(report["lean"]["processes"])
    # log_to_driver needs the log monitor: it stays.
    assert unused & set(report["lean_logs"]["processes"]) == {"log_monitor"}
    # lean_start=false: Ray starts as ray.init alone would.
    assert unused <= set(report["full"]["processes"])


def test_lean_start_skips_only_while_ray_starts():
    originals = {m: getattr(node.Node, m) for m in ("start_api_server", "start_monitor")}
    with pytest.raises(RuntimeError), _lean_start(log_to_driver=False):
        assert all(getattr(node.Node, m) is not fn for m, fn in originals.items())
        raise RuntimeError("ray.init failed")
    assert all(getattr(node.Node, m) is fn for m, fn in originals.items())


def test_a_ray_that_starts_differently_starts_in_full(monkeypatch):
    """Should a Ray release rename a head method's parameters, nothing is skipped."""

    def start_monitor(self, autoscaling_config):  # not the shape _lean_start knows
        raise AssertionError("not called here")

    monkeypatch.setattr(node.Node, "start_monitor", start_monitor)
    api_server = node.Node.start_api_server
    with _lean_start(log_to_driver=False):
        assert node.Node.start_monitor is start_monitor
        assert node.Node.start_api_server is api_server
