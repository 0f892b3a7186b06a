"""How an evaluated program becomes an island member, and which program is the run's best."""

from __future__ import annotations

from typing import Any

from evolve.population.island import Member
from evolve.problem import Problem


def selection_fitness(problem: Problem, ev: dict[str, Any]) -> float | None:
    """What picks the run's best, higher is better: the validation score where the problem
    has a validation set (guarding against programs that fit the train set only), else the
    fitness."""
    if not ev.get("valid"):
        return None
    metric = problem.selection_metric
    if metric is None:
        return ev["fitness"]
    value = (ev.get("metrics") or {}).get(metric)
    if value is None:
        return None
    return float(value) if problem.direction == "max" else -float(value)


def features_of(ev: dict[str, Any], code: str) -> dict[str, float]:
    """The problem's features plus generic ones (code length, evaluation time)."""
    f = dict(ev.get("features") or {})
    f.setdefault("code_length", float(len(code)))
    f.setdefault("eval_time", float((ev.get("metrics") or {}).get("eval_wall_s", 0.0)))
    return f


def member_of(
    pid: int, code: str, h: str, ev: dict[str, Any], generation: int = 0, island: int | None = None
) -> Member:
    """An island member from a fresh evaluation."""
    return Member(
        id=pid,
        code=code,
        code_hash=h,
        score=ev["score"],
        fitness=ev["fitness"],
        metrics=ev["metrics"],
        features=features_of(ev, code),
        feedback=ev.get("feedback", ""),
        generation=generation,
        island=island,
    )


def member_from_row(p: dict[str, Any], island: int | None) -> dict[str, Any]:
    """An island member (as a dict) from a recorded program row."""
    feats = features_of({"features": p["features"], "metrics": p["metrics"]}, p["code"])
    return Member(
        p["id"],
        p["code"],
        p["code_hash"],
        p["score"],
        p["fitness"],
        p["metrics"],
        feats,
        p["feedback"],
        p["generation"],
        island,
    ).to_dict()
