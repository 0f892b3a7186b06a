"""What a report says about one run, computed once from its database (read-only, no Ray).

`RunData.load` reads the run's tables through `Database` readers and derives everything the
pages and figures show: the best-so-far series against evaluations, wall time and dollars, when
the best was found, the lineage of the best, the improvement steps, failures by kind, LLM use per
model, the MAP-Elites grids and the literature checks. Rows keep the text that came from an LLM
or a child as it is; escaping is the page's job.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evolve.population.database import Database, DatabaseError

# Metrics of heuristic problems that make the generalisation gap (train vs validation vs test).
SPLIT_KEYS = ("train", "validation")


def split_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The train / validation / test_<dataset> metrics of a program, in that order."""
    out = {k: metrics[k] for k in SPLIT_KEYS if isinstance(metrics.get(k), (int, float))}
    for k in sorted(metrics):
        if (k == "test" or k.startswith("test_")) and isinstance(metrics[k], (int, float)):
            out[k] = metrics[k]
    return out


def db_path_of(path: Path) -> Path:
    """The evolve.db of a run folder, or the file itself."""
    db = path if path.suffix == ".db" else path / "evolve.db"
    if not db.exists():
        raise DatabaseError(f"no run database at {db}; give a run folder made by `evolve run`")
    return db


@dataclass
class Point:
    """One recorded program on the run's clocks."""

    id: int
    evaluation: int  # counted evaluations so far, this one included
    seconds: float  # since the run started
    dollars: float  # LLM cost so far
    island: int | None
    status: str
    score: float | None
    fitness: float | None
    model: str
    mode: str


@dataclass
class RunData:
    """Everything the pages and figures show about one run."""

    path: Path  # the run folder
    run: dict[str, Any]
    direction: str  # max or min
    points: list[Point]  # every counted evaluation (migrants and rejected edits left out)
    new_bests: list[Point]  # run-wide improvements of the best, in order
    seed: Point | None
    best: dict[str, Any] | None  # full row
    best_point: Point | None
    best_verdict: dict[str, Any] | None
    best_known: float | None
    lineage: list[dict[str, Any]]  # seed to best, full rows
    improvements: list[dict[str, Any]]  # full rows of the new bests
    responses: dict[int, str]  # LLM answers by call id (lineage and improvements)
    status_counts: dict[str, int]
    rejected: int
    failures: list[dict[str, Any]]  # per kind: count, top reasons with an example id
    examples: dict[int, dict[str, Any]]  # failure examples, full rows
    llm: list[dict[str, Any]]  # per model
    llm_totals: dict[str, float]
    migrations: list[dict[str, Any]]  # with the evaluation count at the time
    resets: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    grids: list[dict[str, Any]]  # per island: axes, cells
    wall_s: float
    overrides: list[str] | None
    config_text: str
    picked_by: str  # what chose the best: its score, or validation (heuristic problems)
    cascade: dict[str, Any]  # instances a heuristic problem's cascade ran and saved
    best_known_comparable: bool  # the best known value is on the score's scale

    def best_splits(self) -> dict[str, float]:
        """The best's train / validation / test metrics, the held-out test score included."""
        if self.best is None:
            return {}
        metrics = dict(self.best.get("metrics") or {})
        test = self.best.get("test_score")
        if test and test.get("status") == "ok":
            metrics.update(test.get("metrics") or {})
            if test.get("score") is not None:
                metrics.setdefault("test", test["score"])
        return split_metrics(metrics)

    @property
    def run_id(self) -> str:
        return str(self.run["id"])

    @property
    def problem(self) -> str:
        return str(self.run["problem"])

    @property
    def cost(self) -> float:
        return float(self.llm_totals.get("cost_usd") or 0.0)

    @property
    def evaluations(self) -> int:
        return int(self.run.get("evaluations") or 0)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b

    def reproduce_command(self) -> str:
        """The `evolve run` line that reruns this run (its Hydra overrides when recorded)."""
        if self.overrides is not None:
            args = [o for o in self.overrides if not o.startswith(("resume=", "runs_dir="))]
            if not any(o.startswith("seed=") for o in args):
                args.append(f"seed={self.run['seed']}")
            return " ".join(["evolve run", *args])
        problem = (self.run.get("config") or {}).get("problem", {}).get("name", self.problem)
        return f"evolve run problem.name={problem} seed={self.run['seed']}"

    @staticmethod
    def load(path: Path) -> RunData:
        """Read a run folder (or its evolve.db) read-only."""
        return _load(Path(path))


def _direction(rows: list[dict[str, Any]], run: dict[str, Any]) -> str:
    # fitness is the score oriented so higher is better: its sign against the score says it
    for r in rows:
        s, f = r.get("score"), r.get("fitness")
        if r.get("valid") and s is not None and f is not None and s != 0:
            return "max" if (s > 0) == (f > 0) else "min"
    problem = (run.get("config") or {}).get("problem") or {}
    d = problem.get("direction")
    return d if d in ("max", "min") else "max"


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _load(path: Path) -> RunData:
    db_file = db_path_of(path)
    folder = db_file.parent
    db = Database(db_file, readonly=True)
    try:
        run = db.run()
        rid = run["id"]
        rows = db.timeline(rid)
        calls = db.llm_calls(rid)
        t0 = float(run.get("created_at") or (rows[0]["created_at"] if rows else 0.0))
        call_times = [float(c["created_at"] or 0.0) for c in calls]
        cum_cost = list(np.cumsum([float(c["cost_usd"] or 0.0) for c in calls]))

        def dollars_at(t: float) -> float:
            k = bisect.bisect_right(call_times, t)
            return float(cum_cost[k - 1]) if k else 0.0

        direction = _direction(rows, run)
        points: list[Point] = []
        new_bests: list[Point] = []
        seed: Point | None = None
        best_fit = -math.inf
        counted = 0
        rejected = 0
        eval_at_time: list[tuple[float, int]] = []
        for r in rows:
            if r["mode"] == "migrant":
                continue
            if r["status"] == "rejected":
                rejected += 1
                continue
            counted += 1
            t = float(r["created_at"] or t0)
            p = Point(
                id=r["id"],
                evaluation=counted,
                seconds=max(0.0, t - t0),
                dollars=dollars_at(t),
                island=r["island"],
                status=r["status"] or "",
                score=r["score"] if r["valid"] else None,
                fitness=r["fitness"] if r["valid"] else None,
                model=r["model"] or "",
                mode=r["mode"] or "",
            )
            points.append(p)
            eval_at_time.append((t, counted))
            if p.mode == "seed" and seed is None:
                seed = p
            if p.fitness is not None and p.fitness > best_fit:
                best_fit = p.fitness
                new_bests.append(p)

        best_rows = db.best(rid, 1)
        best = best_rows[0] if best_rows else None
        picked_by = "score"
        if best is not None and "train" in best["metrics"] and "validation" in best["metrics"]:
            # a heuristic problem: validation picks the run's best (train is what it optimised)
            by_validation = db.best_by(rid, "validation", direction, 1)
            if by_validation:
                best, picked_by = by_validation[0], "validation"
        # held-out test scores (a heuristic problem's final best), when recorded
        tests = {t["program_id"]: t for t in db.test_scores(rid)}
        if best is not None and best["id"] in tests:
            best["test_score"] = tests[best["id"]]
        best_point = None
        if best is not None:
            # a migrant copy of the best counts from its original
            best_point = next((p for p in points if p.id == best["id"]), None) or next(
                (p for p in new_bests if p.fitness == best["fitness"]), None
            )
        cascade = db.cascade_summary(rid)
        lineage = _lineage(db, rid, best["id"]) if best else []
        improvements = list(db.programs_by_id(rid, [p.id for p in new_bests]).values())
        improvements.sort(key=lambda r: r["seq"])
        responses = db.llm_responses(
            rid, [r["llm_call_id"] for r in [*lineage, *improvements] if r.get("llm_call_id")]
        )

        status_counts: dict[str, int] = {}
        for r in rows:
            if r["mode"] != "migrant":
                status_counts[r["status"]] = status_counts.get(r["status"], 0) + 1
        failures, example_ids = _failures(rows)
        examples = db.programs_by_id(rid, example_ids)

        llm = _llm_usage(calls, new_bests)
        times = [t for t, _ in eval_at_time]

        def evals_at(t: float) -> int:
            k = bisect.bisect_right(times, t)
            return eval_at_time[k - 1][1] if k else 0

        migrations = db.migrations(rid)
        resets = db.resets(rid)
        checks = db.literature_checks(rid)
        for m in [*migrations, *resets, *checks]:
            t = float(m.get("created_at") or t0)
            m["evaluation"] = evals_at(t)
            m["seconds"] = max(0.0, t - t0)
            m["dollars"] = dollars_at(t)
        # A check compares the program's own score, or (heuristic problems) a test-set score
        # on another scale: only the former puts the best known value on the score's axis.
        by_id = {p.id: p for p in points}
        for c in checks:
            checked = by_id.get(c.get("program_id"))
            own = checked.score if checked else None
            c["program_score"] = own
            # where the checked program sits on the best-so-far curve: a check can run long
            # after its program was found, and marked at its own time it would float off the curve
            c["program_point"] = checked
            c["comparable"] = (
                own is not None
                and c.get("score") is not None
                and abs(c["score"] - own) <= 1e-9 * max(1.0, abs(own))
            )
        last = next((c for c in reversed(checks) if c.get("best_known") is not None), None)
        best_known = last["best_known"] if last else None
        best_known_comparable = bool(last and last["comparable"])
        best_verdict = db.latest_verdict(rid, best["id"]) if best else None

        axes = db.grid_axes(rid)
        cells_by_island: dict[int, list[dict[str, Any]]] = {}
        for c in db.elites(rid):
            cells_by_island.setdefault(c["island"], []).append(c)
        elite_scores = {
            p.id: p.score for p in points if p.score is not None
        }  # elites are scored programs; migrant elites keep their origin's score below
        missing = [
            c["program_id"]
            for cs in cells_by_island.values()
            for c in cs
            if c["program_id"] not in elite_scores
        ]
        for pid, r in db.programs_by_id(rid, missing).items():
            elite_scores[pid] = r["score"]
        grids = []
        for isl in sorted(set(cells_by_island) | set(axes)):
            cs = cells_by_island.get(isl, [])
            for c in cs:
                c["score"] = elite_scores.get(c["program_id"])
            grids.append({"island": isl, "axes": axes.get(isl), "cells": cs})

        last = max(
            [float(run.get("updated_at") or t0)] + [float(r["created_at"] or t0) for r in rows[-1:]]
        )
        import yaml

        overrides = None
        ov_file = folder / ".hydra" / "overrides.yaml"
        if ov_file.exists():
            try:
                loaded = yaml.safe_load(ov_file.read_text())
                if isinstance(loaded, list):
                    overrides = [str(o) for o in loaded]
            except yaml.YAMLError:
                overrides = None
        config_text = yaml.safe_dump(run.get("config") or {}, sort_keys=False)
        return RunData(
            path=folder,
            run=run,
            direction=direction,
            points=points,
            new_bests=new_bests,
            seed=seed,
            best=best,
            best_point=best_point,
            best_verdict=best_verdict,
            best_known=best_known,
            lineage=lineage,
            improvements=improvements,
            responses=responses,
            status_counts=status_counts,
            rejected=rejected,
            failures=failures,
            examples=examples,
            llm=llm,
            llm_totals=db.llm_totals(rid),
            migrations=migrations,
            resets=resets,
            checks=checks,
            grids=grids,
            wall_s=max(0.0, last - t0),
            overrides=overrides,
            config_text=config_text,
            picked_by=picked_by,
            cascade=cascade,
            best_known_comparable=best_known_comparable,
        )
    finally:
        db.close()


def _lineage(db: Database, run_id: str, program_id: int) -> list[dict[str, Any]]:
    """The parent chain of a program, seed first (a cycle in a damaged file stops the walk)."""
    chain, seen = [], set()
    pid: int | None = program_id
    while pid is not None and pid not in seen:
        seen.add(pid)
        row = db.programs_by_id(run_id, [pid]).get(pid)
        if row is None:
            break
        chain.append(row)
        pid = row["parent_id"]
    return chain[::-1]


def _reason_head(reason: str | None) -> str:
    """A reason's first line, cut at 160 characters, so the same failure groups together."""
    line = (reason or "").strip().splitlines()[0] if (reason or "").strip() else "(no reason)"
    return line[:160]


# A number in a reason ("height 1.0158 at step 11 exceeds 1", "(line 15)"): the same failure
# with other numbers is the same failure, or no reason would ever count more than once.
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _failures(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    kinds: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["status"] == "ok" or r["mode"] == "migrant":
            continue
        k = kinds.setdefault(r["status"], {"kind": r["status"], "count": 0, "reasons": {}})
        k["count"] += 1
        head = _reason_head(r["reason"])
        entry = k["reasons"].setdefault(
            _NUMBER.sub("#", head),
            {"reason": head, "count": 0, "example": r["id"], "numbers_vary": False},
        )
        entry["count"] += 1
        entry["numbers_vary"] |= head != entry["reason"]
    out, example_ids = [], []
    for k in sorted(kinds.values(), key=lambda k: -k["count"]):
        top = sorted(k["reasons"].values(), key=lambda e: -e["count"])[:5]
        example_ids += [e["example"] for e in top]
        out.append({"kind": k["kind"], "count": k["count"], "reasons": top})
    return out, example_ids


def _llm_usage(calls: list[dict[str, Any]], new_bests: list[Point]) -> list[dict[str, Any]]:
    by_model: dict[str, dict[str, Any]] = {}
    for c in calls:
        m = by_model.setdefault(
            c["model"] or "(none)",
            {"model": c["model"] or "(none)", "calls": 0, "prompt_tokens": 0,
             "completion_tokens": 0, "cost_usd": 0.0, "errors": 0, "latencies": []},
        )  # fmt: skip
        m["calls"] += 1
        m["prompt_tokens"] += int(c["prompt_tokens"] or 0)
        m["completion_tokens"] += int(c["completion_tokens"] or 0)
        m["cost_usd"] += float(c["cost_usd"] or 0.0)
        m["errors"] += 1 if c["error"] else 0
        if c["latency_s"] is not None:
            m["latencies"].append(float(c["latency_s"]))
    improved: dict[str, int] = {}
    for p in new_bests:
        if p.mode != "seed":
            improved[p.model] = improved.get(p.model, 0) + 1
    out = []
    for m in sorted(by_model.values(), key=lambda m: -m["calls"]):
        lat = m.pop("latencies")
        m["latency_p50"] = _percentile(lat, 50)
        m["latency_p95"] = _percentile(lat, 95)
        m["improvements"] = improved.get(m["model"], 0)
        m["improvements_per_dollar"] = m["improvements"] / m["cost_usd"] if m["cost_usd"] else None
        out.append(m)
    return out


def metrics_json(text: str | None) -> dict[str, Any]:
    try:
        v = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return v if isinstance(v, dict) else {}


# Config keys that differ between the seeds of one experiment without making it another one.
_NOT_THE_EXPERIMENT = ("seed", "runs_dir", "resume", "run_dir", "hydra")


def experiment_key(run: dict[str, Any]) -> str:
    """The run's config with the seed and paths left out: runs with equal keys differ only by
    seed."""
    config = dict(run.get("config") or {})
    for k in _NOT_THE_EXPERIMENT:
        config.pop(k, None)
    return json.dumps([run.get("problem"), config], sort_keys=True, default=str)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: json.dumps(d, sort_keys=True, default=str)}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def seed_groups(runs: list[RunData]) -> list[tuple[str, list[RunData]]]:
    """Runs that differ only by seed, grouped; each group labelled by its problem and model and,
    when several groups share those, by the settings that tell them apart."""
    groups: dict[str, list[RunData]] = {}
    for r in runs:
        groups.setdefault(experiment_key(r.run), []).append(r)
    flats = {}
    for key, members in groups.items():
        config = dict(members[0].run.get("config") or {})
        for k in _NOT_THE_EXPERIMENT:
            config.pop(k, None)
        flats[key] = _flat(config)
    keys = sorted({k for f in flats.values() for k in f})
    differing = [k for k in keys if len({f.get(k) for f in flats.values()}) > 1]
    out: list[tuple[str, list[RunData]]] = []
    for key, members in groups.items():
        llm = (members[0].run.get("config") or {}).get("llm") or {}
        label = f"{members[0].problem} · {llm.get('model') or llm.get('name') or 'model?'}"
        extra = [f"{k}={flats[key].get(k, '-')}" for k in differing if k != "llm.model"][:3]
        if extra:
            label += " · " + ", ".join(extra)
        out.append((label, sorted(members, key=lambda r: r.run.get("seed") or 0)))
    return out
