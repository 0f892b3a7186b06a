"""Shared helpers and fixtures for the sandbox red-team suite: the problem, process-table checks."""

from __future__ import annotations

import os
import time

import pytest

import evolve
from evolve.evaluators.harness import evaluate_code
from evolve.sandbox import default_sandbox

# The flat seed scores exactly 1/2; any later child that scores otherwise was affected.
GOOD = "import numpy as np\n\ndef solve():\n    return {'h': np.full(24, 0.5)}\n"


@pytest.fixture(scope="session")
def problem():
    return evolve.load_problem("erdos/min_overlap")


@pytest.fixture(scope="session")
def server_pid(problem):
    evaluate_code(problem, GOOD)  # starts this process's default sandbox
    return default_sandbox().server_pid


def _status(pid: int) -> dict[str, str]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def descendants(root: int) -> list[tuple[int, int, str]]:
    """(pid, ppid, state) of every live (non-zombie) process below `root`."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _status(int(entry))
            if st and not st.get("State", "").startswith(("Z", "X")):
                parents[int(entry)] = (int(st.get("PPid", "0")), st.get("State", ""))
    found, frontier = [], {root}
    while frontier:
        nxt = {pid for pid, (ppid, _) in parents.items() if ppid in frontier}
        found += [(pid, parents[pid][0], parents[pid][1]) for pid in nxt]
        frontier = nxt
    return found


def processes_named(marker: str) -> list[int]:
    """Live processes whose name (comm) or command line contains `marker`."""
    hits = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if (marker in comm or marker in cmdline) and _status(int(entry)).get("State", "Z")[
            0
        ] != "Z":
            hits.append(int(entry))
    return hits


SPARES = 2  # children the server keeps forked ahead (evolve/sandbox/_server.py)


def assert_only_spare(server: int, within_s: float = 2.0) -> None:
    """Below the server there are only idle spare children: nothing a child started survives.

    A child killed a moment ago may still be tearing down its memory, so this waits up to
    `within_s`; a real survivor (a daemon, a fork bomb) never goes away and fails the test.
    """
    deadline = time.monotonic() + within_s
    while True:
        procs = descendants(server)
        direct = [p for p in procs if p[1] == server]
        if len(procs) <= SPARES and len(direct) == len(procs):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes survived below the sandbox server: {procs}")
        time.sleep(0.02)


@pytest.fixture
def clean(problem, server_pid):
    """After the test: a good child still scores exactly 1/2 and nothing survived."""
    yield
    for pid in default_sandbox().server_pids:
        assert_only_spare(pid)
    ev = evaluate_code(problem, GOOD)
    assert ev.status == "ok" and ev.score == pytest.approx(0.5, abs=1e-12), ev
