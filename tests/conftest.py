"""Shared fixtures: one Ray session for the whole test run, offline litellm."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def ray_session():
    """Ray started once per test run (ray.init takes seconds); engine runs join it."""
    import ray

    from evolve.cluster import _lean_start

    if not ray.is_initialized():
        # address="local": a Ray of this test run's own, even if `ray start` left a cluster
        # running on this machine (ray.init() alone would join it). Started lean, as a run
        # starts its own Ray (cluster.lean_start).
        with _lean_start(log_to_driver=False):
            ray.init(
                address="local",
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
    yield ray
    ray.shutdown()
