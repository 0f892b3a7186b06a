"""Leaderboards: the best result of every run under a folder, as a table, CSV, JSON or Markdown.

Each row is computed from a run's own database (never from a log line): its best valid
program, the evaluation count, LLM cost, and the latest literature verdict for that program.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from evolve.population.database import Database, DatabaseError

# The console table shows these; files get every column.
TABLE_COLUMNS = ("problem", "run", "evaluations", "best_score", "verdict", "cost_usd", "status")
COLUMNS = (
    "problem",
    "run",
    "seed",
    "models",
    "evaluations",
    "best_score",
    "best_program",
    "verdict",
    "verdict_message",
    "cost_usd",
    "status",
    "path",
)


def find_runs(root: Path) -> list[Path]:
    """Every run database under `root` (a run folder, a .db file, or a folder of runs)."""
    if root.is_file():
        return [root]
    if (root / "evolve.db").exists():
        return [root / "evolve.db"]
    return sorted(root.rglob("evolve.db"))


def run_row(db_path: Path) -> dict[str, Any]:
    db = Database(db_path, readonly=True)
    try:
        run = db.run()
        rid = run["id"]
        best = db.best(rid, 1)
        models = db.models(rid)
        verdict = message = ""
        check = db.latest_verdict(rid, best[0]["id"]) if best else None
        if check:
            message, verdict = check["message"] or "", check["status"] or ""
        return {
            "problem": run["problem"],
            "run": rid,
            "seed": run["seed"],
            "models": ",".join(models),
            "evaluations": run["evaluations"],
            "best_score": best[0]["score"] if best else None,
            "best_program": best[0]["id"] if best else None,
            "verdict": verdict,
            "verdict_message": message,
            "cost_usd": round(db.llm_totals(rid)["cost_usd"], 6),
            "status": run["status"],
            "path": str(db_path.parent),
        }
    finally:
        db.close()


def leaderboard(root: Path, problem: str | None = None) -> list[dict[str, Any]]:
    """Rows for every readable run, best first within each problem (by the problem's direction)."""
    from evolve.problem import load_problem

    rows, directions = [], {}
    for db_path in find_runs(root):
        try:
            row = run_row(db_path)
        except DatabaseError as exc:
            rows.append(
                {
                    **dict.fromkeys(COLUMNS, ""),
                    "path": str(db_path.parent),
                    "status": f"unreadable: {exc}",
                }
            )
            continue
        if problem and row["problem"] != problem:
            continue
        rows.append(row)
    for row in rows:
        name = row["problem"]
        if name and name not in directions:
            try:
                directions[name] = load_problem(name).direction
            except Exception:
                directions[name] = "max"

    def key(r: dict[str, Any]):
        s = r["best_score"]
        if s is None or s == "":
            return (str(r["problem"]), 1, 0.0)
        return (str(r["problem"]), 0, -s if directions.get(r["problem"]) == "max" else s)

    return sorted(rows, key=key)


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, sort_keys=True)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "md":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for r in rows:
            lines.append(
                "| "
                + " | ".join("" if r[c] is None else str(r[c]).replace("|", "\\|") for c in COLUMNS)
                + " |"
            )
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose table, md, csv or json")
