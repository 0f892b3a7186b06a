"""Scoring a heuristic problem's child: every instance of a set, cheap cascade stages first.

The child is run once per instance, each run in a fresh sandboxed process; the trusted
evaluator scores each instance from what came back (for an online problem, from the trusted
session's own record of the child's decisions). A dataset's score is the evaluator's
`aggregate` of its instances (the mean if it defines none), a set's score the mean of its
datasets. The child's score is its train score; validation and test scores are metrics
(`validation`, `test_<dataset>`, ...), never shown to the model that writes the next child.

Cascade: on train, stage 1 runs the first few instances; a child goes on only if its score so
far is no worse than its parent's (or the island best's) at that stage by more than the
stage's margin. A child stopped early is recorded with status `stopped`, the stage where it
stopped and the instances it did not cost.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evolve.evaluators.evaluation import Evaluation
from evolve.evaluators.instances import Stage
from evolve.evaluators.scoring import bounded_score

if TYPE_CHECKING:
    from evolve.evaluators.online import OnlineSession
    from evolve.problem import Problem
    from evolve.sandbox import SandboxRequest, SandboxResult

Runner = Callable[["SandboxRequest", "OnlineSession | None"], "SandboxResult"]
# Metric name prefixes the model writing the next child must never see.
HELD_OUT_PREFIXES = ("validation", "test")


def held_out(metric: str) -> bool:
    """True for a validation or test metric (kept out of prompts)."""
    return metric.startswith(HELD_OUT_PREFIXES)


class _Failed(Exception):
    def __init__(self, ev: Evaluation) -> None:
        self.ev = ev


def run_instance(
    problem: Problem,
    code: str,
    runner: Runner,
    where: str,
    instance: dict[str, Any],
    timeout: float | None,
) -> Evaluation:
    """Run the child on one instance in the sandbox and score it (trusted)."""
    from evolve.evaluators.harness import sandbox_request

    mod = problem.evaluator_module
    session = None
    if problem.online is not None:
        session = mod.online_session(instance, dict(problem.params))
        inputs = dict(session.header())
    else:
        hook = getattr(mod, "instance_inputs", None)
        if not callable(hook):
            return Evaluation.failed(
                "error",
                f"{problem.path / 'evaluator.py'} must define instance_inputs(instance, params): "
                "what the child gets for one instance",
            )
        inputs = dict(hook(instance, dict(problem.params)))
    result = runner(sandbox_request(problem, code, timeout, inputs=inputs), session)
    if result.online_refused:  # the root cause, whatever the child did after it
        ev = Evaluation.failed("invalid", f"{where}: {result.online_error}")
    elif result.status != "ok":
        feedback = result.error
        if result.stderr_tail.strip():
            feedback += "\nstderr (tail):\n" + result.stderr_tail.strip()[-1000:]
        ev = Evaluation.failed(result.status, f"{where}: {result.error}", feedback=feedback)
    elif result.online_error:
        ev = Evaluation.failed("invalid", f"{where}: {result.online_error}")
    else:
        outputs = session.outputs() if session is not None else result.outputs
        # In a scoring process of its own, killed past limits.score_time_s (score_timeout).
        ev = bounded_score(problem, outputs, instance)
        if not ev.valid:
            ev = Evaluation.failed(ev.status, f"{where}: {ev.error}", feedback=ev.feedback)
    ev.metrics.update({"eval_wall_s": result.wall_s, "eval_cpu_s": result.cpu_s})
    return ev


def _aggregate(problem: Problem, evals: list[Evaluation], instances: list[dict]) -> float:
    fn = getattr(problem.evaluator_module, "aggregate", None)
    if callable(fn):
        return float(fn(evals, instances, dict(problem.params)))
    return sum(float(e.score) for e in evals) / len(evals)


def _passes(
    problem: Problem, stage: Stage, score: float, context: dict[str, Any]
) -> tuple[bool, str]:
    """Whether a score so far lets the child go on, and the reference it was held to."""
    key = f"stage_{stage.name}"
    if stage.threshold is not None:
        ref, what, slack = stage.threshold, "the threshold", 0.0
    else:
        ref = ((context.get(stage.relative_to) or {}).get("metrics") or {}).get(key)
        if ref is None or not math.isfinite(float(ref)):
            return True, ""  # nothing to compare with (the seed, or a parent from before)
        ref, what = float(ref), f"its {stage.relative_to.replace('_', ' ')}'s"
        slack = stage.margin * abs(ref)
    ok = score >= ref - slack if problem.direction == "max" else score <= ref + slack
    return ok, f"{what} {ref:.6g}" + (f" with a margin of {stage.margin:g}" if slack else "")


class _SetRun:
    """Instances of one set run so far, grouped by dataset."""

    def __init__(self, problem: Problem, set_name: str) -> None:
        self.problem = problem
        self.set_name = set_name
        self.by_dataset: dict[str, tuple[list[Evaluation], list[dict]]] = {}

    def add(self, dataset: str, instance: dict, ev: Evaluation) -> None:
        evals, insts = self.by_dataset.setdefault(dataset, ([], []))
        evals.append(ev)
        insts.append(instance)

    def scores(self) -> dict[str, float]:
        return {
            ds: _aggregate(self.problem, evals, insts)
            for ds, (evals, insts) in self.by_dataset.items()
        }

    def score(self) -> float:
        s = self.scores()
        return sum(s.values()) / len(s)

    def evaluations(self) -> list[Evaluation]:
        return [e for evals, _ in self.by_dataset.values() for e in evals]


def evaluate_instances(
    problem: Problem,
    code: str,
    runner: Runner,
    *,
    sets: tuple[str, ...] = ("train", "validation"),
    context: dict[str, Any] | None = None,
    timeout: float | None = None,
    use_cascade: bool = True,
) -> Evaluation:
    """Score `code` on the instances of `sets` (train always first): an Evaluation whose score
    is the train score, with every set's and dataset's score as metrics."""
    context = context or {}
    t0 = time.monotonic()
    metrics: dict[str, float] = {}
    stages_done: list[dict[str, Any]] = []
    train = problem.instances("train")
    stages = (problem.cascade if use_cascade else []) or [Stage("full")]
    metrics["instances_full"] = float(len(train))
    run_count = 0
    train_run = _SetRun(problem, "train")
    try:
        for k, stage in enumerate(stages):
            end = len(train) if stage.instances is None else min(stage.instances, len(train))
            for dataset, inst in train[run_count:end]:
                ev = _one(problem, code, runner, "train", dataset, inst, timeout)
                run_count += 1
                train_run.add(dataset, inst, ev)
            so_far = train_run.score()
            metrics[f"stage_{stage.name}"] = so_far
            stages_done.append({"stage": stage.name, "instances": run_count, "score": so_far})
            last = k == len(stages) - 1 or run_count >= len(train)
            if last:
                break
            ok, against = _passes(problem, stage, so_far, context)
            stages_done[-1]["passed"] = ok
            if not ok:
                metrics.update(
                    instances_run=float(run_count),
                    cascade_stage=float(k + 1),
                    cascade_saved=float(len(train) - run_count),
                )
                why = (
                    f"stopped by the cascade after stage {stage.name!r} ({run_count} of "
                    f"{len(train)} train instances): score {so_far:.6g} against {against}"
                )
                return Evaluation(
                    valid=False,
                    status="stopped",
                    score=None,
                    metrics=metrics,
                    feedback=why,
                    artifacts={"cascade": json.dumps(stages_done)},
                    error=why,
                )
        metrics["cascade_stage"] = float(len(stages_done))
        metrics["instances_run"] = float(run_count)
        metrics.update({f"train_{ds}": v for ds, v in train_run.scores().items()})
        metrics["train"] = train_score = train_run.score()
        for set_name in ("validation", "test"):
            if set_name not in sets or not problem.instance_sets.get(set_name):
                continue
            held = _SetRun(problem, set_name)
            for dataset, inst in problem.instances(set_name):
                held.add(
                    dataset, inst, _one(problem, code, runner, set_name, dataset, inst, timeout)
                )
            metrics.update({f"{set_name}_{ds}": v for ds, v in held.scores().items()})
            metrics[set_name] = held.score()
    except _Failed as failed:
        ev = failed.ev
        ev.metrics.update(metrics)
        ev.metrics["instances_run"] = float(run_count)
        return ev
    runs = train_run.evaluations()
    features = _mean_features(runs)
    scores = ", ".join(f"{ds} {v:.6g}" for ds, v in train_run.scores().items())
    better = "higher" if problem.direction == "max" else "lower"
    feedback = f"train score {train_score:.6g} ({better} is better); by dataset: {scores}"
    ev = Evaluation.ok(
        train_score,
        problem.direction,
        metrics=metrics,
        features=features,
        feedback=feedback,
        artifacts={"cascade": json.dumps(stages_done)} if len(stages) > 1 else {},
    )
    ev.metrics["eval_wall_s"] = time.monotonic() - t0
    ev.metrics["eval_cpu_s"] = sum(e.metrics.get("eval_cpu_s", 0.0) for e in runs)
    return ev


def _one(
    problem: Problem,
    code: str,
    runner: Runner,
    set_name: str,
    dataset: str,
    instance: dict[str, Any],
    timeout: float | None,
) -> Evaluation:
    where = f"on {set_name} instance {instance.get('name', '?')} ({dataset})"
    ev = run_instance(problem, code, runner, where, instance, timeout)
    if not ev.valid:
        raise _Failed(ev)
    return ev


def _mean_features(evals: list[Evaluation]) -> dict[str, float]:
    keys = set().union(*(e.features for e in evals)) if evals else set()
    return {
        k: sum(e.features[k] for e in evals if k in e.features)
        / sum(1 for e in evals if k in e.features)
        for k in sorted(keys)
    }
