"""The replay of a run's history from its database: what `resume=` and the rebuild of a
dead island actor both use. Plain functions, no Ray: the events come out in recorded order
and an island applies them (IslandActor.restore).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from evolve.engine.budget import RunError
from evolve.engine.members import member_from_row, selection_fitness
from evolve.population.database import Database
from evolve.problem import Problem

Event = tuple[str, dict[str, Any] | None]


@dataclass
class History:
    """Everything a run needs to carry on from its database."""

    events: dict[int, list[Event]]  # per island: ("add"|"migrant"|"reset"|"eval", member)
    seed: dict[str, Any]  # the seed program's row
    best: dict[str, Any]  # the program that is the run's best (by selection fitness)
    steps: dict[int, int] = field(default_factory=dict)  # per island: LLM iterations so far


def history(db: Database, run_id: str, problem: Problem, islands: int) -> History:
    """Each island's events in recorded order: its own valid children, the migrants it
    accepted, its resets, and one "eval" per counted child (its evaluation count)."""
    rows = db.programs(run_id, "status != 'rejected'", order="seq")
    progs = [p for p in rows if p["valid"]]
    by_id = {p["id"]: p for p in progs}
    seeds = [p for p in progs if p["mode"] == "seed"]
    if not seeds:
        raise RunError(f"{db.path} has no valid seed program to resume from")
    timeline: list[tuple[float, int, str, dict | None]] = []
    for p in rows:
        isl = p["island"]
        if isl is None or not 0 <= isl < islands:
            continue
        timeline.append((p["created_at"], isl, "eval", None))
        if p["valid"]:
            timeline.append((p["created_at"], isl, "add", p))
    for to_island, pid, at in db.migration_events(run_id):
        if 0 <= to_island < islands and pid in by_id:
            timeline.append((at, to_island, "migrant", by_id[pid]))
    for island, ids, at in db.reset_events(run_id):
        members = [by_id[i] for i in ids if i in by_id]
        if 0 <= island < islands and members:
            timeline.append((at, island, "reset", {"members": members}))
    timeline.sort(key=lambda t: t[0])  # stable: a row's "eval" stays before its "add"
    events: dict[int, list[Event]] = {
        i: [("add", member_from_row(seeds[0], i))] for i in range(islands)
    }
    for _, isl, kind, p in timeline:
        if kind == "reset":
            members = [member_from_row(x, isl) for x in p["members"]]
            events[isl].append((kind, {"members": members}))
        else:
            events[isl].append((kind, None if p is None else member_from_row(p, isl)))

    def chosen(p: dict[str, Any]) -> float:
        sel = selection_fitness(problem, p)
        return -math.inf if sel is None else sel

    best = min(progs, key=lambda p: (-chosen(p), p["seq"]))
    steps = {i: int(db.island_totals(run_id, i)["llm_calls"]) for i in range(islands)}
    return History(events, seeds[0], best, steps)
