"""`evolve export RUN --format jsonl`: one JSON line per program, for analysis elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from evolve.population.database import Database
from evolve.report.run_data import db_path_of

FIELDS = ("id", "seq", "parent_id", "inspiration_ids", "island", "generation", "model", "mode",
          "status", "reason", "valid", "score", "fitness", "metrics", "features", "feedback",
          "diff", "code", "code_hash", "llm_call_id", "created_at")  # fmt: skip


def program_records(run: Path) -> Iterator[dict[str, Any]]:
    """Every program of a run in recording order, as plain dicts (the run id on each)."""
    db = Database(db_path_of(run), readonly=True)
    try:
        rid = db.run()["id"]
        for row in db.iter_programs(rid):
            rec = {"run_id": rid, **{k: row.get(k) for k in FIELDS}}
            if "node" in row:
                rec["node"] = row["node"]
            rec["valid"] = bool(rec["valid"])
            yield rec
    finally:
        db.close()


def write_jsonl(run: Path, out: IO[str]) -> int:
    n = 0
    for rec in program_records(run):
        out.write(json.dumps(rec, sort_keys=True, allow_nan=False) + "\n")
        n += 1
    return n
