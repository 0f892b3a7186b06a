"""A Ray cluster of separate raylets on this machine, for the multi-node tests.

`python cluster_node.py HEAD_CPUS WORKER_CPUS [WORKER_CPUS ...]` starts a head node and worker
nodes (each its own raylet: removing one kills every actor on it, as losing a machine would),
prints one JSON line {"address", "session_dir", "nodes": [head, worker...]}, then follows
commands on stdin, one a line, answering each with a JSON line: `remove I` removes worker I
with every process on it at once, as when a machine is lost; `add CPUS` adds a worker. End of input shuts the cluster down (only its own processes).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from ray.cluster_utils import Cluster


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc: no psutil needed)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while being read
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def remove(cluster: Cluster, node) -> None:
    """Kill a node's raylet and, in the same instant, its workers (the raylet's descendants),
    which would otherwise run on for a moment after their raylet is gone."""
    raylet = node.all_processes["raylet"][0].process.pid
    doomed = _descendants(raylet)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            os.kill(pid, signal.SIGKILL)
    cluster.remove_node(node, allow_graceful=False)


def main(argv: list[str]) -> None:
    head_cpus, *worker_cpus = (int(a) for a in argv)
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": head_cpus, "include_dashboard": False},
    )
    try:
        workers = [cluster.add_node(num_cpus=c) for c in worker_cpus]
        cluster.wait_for_nodes()
        nodes = [cluster.head_node.node_id] + [w.node_id for w in workers]
        session = cluster.head_node.get_session_dir_path()
        print(json.dumps({"address": cluster.address, "session_dir": session, "nodes": nodes}))
        sys.stdout.flush()
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "remove":
                node = workers[int(arg)]
                remove(cluster, node)
                print(json.dumps({"removed": node.node_id}))
            elif cmd == "add":
                node = cluster.add_node(num_cpus=int(arg))
                workers.append(node)
                print(json.dumps({"added": node.node_id}))
            else:
                print(json.dumps({"error": f"unknown command {line.strip()!r}"}))
            sys.stdout.flush()
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
