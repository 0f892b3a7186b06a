"""Evaluator workers: each a warm process (the problem's evaluator imported, its numba kernels
compiled, a sandbox ready) that pulls work from its evaluation queue (queue.py; several short
jobs at a time when the queue is long, long ones one at a time) and hands back the trusted
results with its next request for work.

Pulling rather than being handed work: a worker that is busy asks for nothing, a dead one
asks for nothing more (the queue puts what it held back in line), and the queue does
not have to track which worker is free.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import ray

from evolve.cluster import load_problem_ref, node_id

log = logging.getLogger(__name__)


@ray.remote(num_cpus=1, max_concurrency=2)  # the pull loop, plus calls like sandbox_features
class EvaluatorActor:
    """A warm worker: the problem's evaluator imported (numba kernels cached), a sandbox ready."""

    def __init__(
        self,
        problem_ref: dict[str, Any],
        timeout_s: float | None,
        preload: tuple[str, ...] = ("numpy", "numba"),
        on_demand: tuple[str, ...] = ("numba",),
        allow_unconfined_files: bool = False,
    ) -> None:
        import evolve.sandbox as sandbox
        from evolve.evaluators.scoring import load_cached_kernels, warm_up

        self.problem = load_problem_ref(problem_ref)
        warm_up(self.problem)  # the scoring process starts while the sandbox does
        if self.problem.heuristic:
            # Its instances and cascades call the trusted evaluator in this process: import
            # it, and load its cached kernels, once, now. A construction problem is scored in
            # the scoring process, and its inputs came with the problem: nothing to import.
            load_cached_kernels(self.problem.evaluator_module)
        self.timeout_s = timeout_s
        self.sandbox = sandbox.Sandbox(
            preload=tuple(preload),
            on_demand=tuple(on_demand),
            allow_unconfined_files=allow_unconfined_files,
        )
        self.node = node_id()

    def sandbox_features(self) -> dict[str, Any]:
        """Which isolation layers are in force where this worker runs."""
        return self.sandbox.features

    def pid(self) -> int:
        return os.getpid()

    def run_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """One job from the queue: a child as the search sees it (train, cascade first, and
        validation), or, kind "all_sets", a program on every set with no cascade (the run's
        final best, the test set included)."""
        from evolve.evaluators.harness import evaluate_code

        if job.get("kind") == "all_sets":
            ev = evaluate_code(self.problem, job["code"], self.timeout_s, sandbox=self.sandbox)
        else:
            ev = evaluate_code(
                self.problem,
                job["code"],
                self.timeout_s,
                sandbox=self.sandbox,
                sets=("train", "validation"),
                context=job.get("context"),
                use_cascade=True,
            )
        return {**ev.to_dict(), "node": self.node}  # the program row names where it ran

    def work(self, queue, key: str) -> None:
        """Pull jobs from the queue until it says stop: each request carries the result of
        the last job. Runs for the life of the run; the queue watches it to notice a death."""
        done: list[tuple[int, dict[str, Any]]] = []
        while True:
            jobs = ray.get(queue.take.remote(key, done))
            if jobs is None:
                return
            done = []
            for job in jobs:
                t0 = time.monotonic()
                try:
                    done.append((job["id"], {**self.run_job(job), "job_s": time.monotonic() - t0}))
                except Exception as exc:  # a bug on our side: that job fails, the worker goes on
                    log.exception("evaluation job failed")
                    from evolve.evaluators.evaluation import Evaluation

                    ev = Evaluation.failed(
                        "error", f"evaluator worker: {type(exc).__name__}: {exc}"
                    )
                    done.append((job["id"], {**ev.to_dict(), "node": self.node}))
