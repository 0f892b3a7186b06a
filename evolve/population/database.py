"""The run's SQLite database: one file per run, WAL mode, one writer (the archive actor).

Everything that counts is written here before it counts: every child with its status and
reason, every LLM call, migrations and literature verdicts. Readers may open the file while a
run is live. A run killed at any moment resumes from this file.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlite_utils

SCHEMA_VERSION = 1


class DatabaseError(RuntimeError):
    """A database file that cannot be used; the message says what to do."""


def _json(value: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), sort_keys=True)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class Database:
    """Typed access to a run database (sqlite-utils underneath)."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise DatabaseError(f"no database at {self.path}")
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        try:
            self.db = sqlite_utils.Database(conn)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self._create()
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path} is not a usable evolve database: {exc}") from None

    # --- schema ----------------------------------------------------------------------------
    def _create(self) -> None:
        db = self.db
        if "meta" not in db.table_names():
            db["meta"].create({"key": str, "value": str}, pk="key")
            db["meta"].insert({"key": "schema_version", "value": str(SCHEMA_VERSION)})
        db["runs"].create(
            {
                "id": str,
                "problem": str,
                "seed": int,
                "config": str,
                "versions": str,
                "status": str,
                "created_at": float,
                "updated_at": float,
                "evaluations": int,
            },
            pk="id",
            if_not_exists=True,
        )
        db["programs"].create(
            {
                "id": int,
                "run_id": str,
                "seq": int,  # order of recording within the run
                "island": int,
                "generation": int,
                "parent_id": int,
                "inspiration_ids": str,
                "code": str,
                "code_hash": str,
                "diff": str,
                "mode": str,  # seed, diff, rewrite, migrant
                "model": str,
                "llm_call_id": int,
                "status": str,
                "reason": str,
                "valid": int,
                "score": float,
                "fitness": float,
                "metrics": str,
                "features": str,
                "feedback": str,
                "artifacts": str,
                "eval_wall_s": float,
                "eval_cpu_s": float,
                "node": str,  # the Ray node that evaluated it
                "created_at": float,
            },
            pk="id",
            if_not_exists=True,
        )
        if "node" not in db["programs"].columns_dict:
            # Files made before the column existed gain it (a NULL node: not recorded);
            # an added column needs no new schema version, older readers ignore it.
            db["programs"].add_column("node", str)
        db["llm_calls"].create(
            {
                "id": int,
                "run_id": str,
                "island": int,
                "model": str,
                "prompt": str,
                "response": str,
                "prompt_tokens": int,
                "completion_tokens": int,
                "cost_usd": float,
                "latency_s": float,
                "attempts": int,
                "seed": int,
                "error": str,
                "created_at": float,
            },
            pk="id",
            if_not_exists=True,
        )
        db["islands"].create(
            {
                "run_id": str,
                "island": int,
                "best_program_id": int,
                "best_score": float,
                "size": int,
                "evaluations": int,
                "last_improvement": int,
                "updated_at": float,
            },
            pk=("run_id", "island"),
            if_not_exists=True,
        )
        db["elites"].create(
            {"run_id": str, "island": int, "cell": str, "program_id": int, "fitness": float},
            pk=("run_id", "island", "cell"),
            if_not_exists=True,
        )
        db["migrations"].create(
            {
                "id": int,
                "run_id": str,
                "from_island": int,
                "to_island": int,
                "program_id": int,
                "created_at": float,
            },
            pk="id",
            if_not_exists=True,
        )
        db["resets"].create(
            {"id": int, "run_id": str, "island": int, "program_ids": str, "created_at": float},
            pk="id",
            if_not_exists=True,
        )
        db["literature_checks"].create(
            {
                "id": int,
                "run_id": str,
                "program_id": int,
                "problem": str,
                "status": str,
                "score": float,
                "best_known": float,
                "citation": str,
                "as_of": str,
                "matched": str,
                "reverified": int,
                "message": str,
                "details": str,
                "created_at": float,
            },
            pk="id",
            if_not_exists=True,
        )
        for table, cols in (
            ("programs", ["run_id", "seq"]),
            ("programs", ["run_id", "status"]),
            ("programs", ["code_hash"]),
            ("programs", ["run_id", "fitness"]),
            ("llm_calls", ["run_id"]),
        ):
            db[table].create_index(cols, if_not_exists=True)

    def _check_version(self) -> None:
        if "meta" not in self.db.table_names():
            raise DatabaseError(f"{self.path} has no evolve schema (no meta table)")
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version != SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path} has schema version {version}; this evolve reads version {SCHEMA_VERSION}"
            )

    # --- writes ----------------------------------------------------------------------------
    def start_run(self, run_id: str, problem: str, seed: int, config: dict, versions: dict) -> None:
        now = time.time()
        existing = self.db["runs"].count_where("id = ?", [run_id])
        if existing:
            self.db["runs"].update(run_id, {"status": "running", "updated_at": now})
        else:
            self.db["runs"].insert(
                {
                    "id": run_id,
                    "problem": problem,
                    "seed": seed,
                    "config": _json(config),
                    "versions": _json(versions),
                    "status": "running",
                    "created_at": now,
                    "updated_at": now,
                    "evaluations": 0,
                }
            )

    def finish_run(self, run_id: str, status: str) -> None:
        self.db["runs"].update(run_id, {"status": status, "updated_at": time.time()})

    def record_llm_call(self, run_id: str, call: dict[str, Any]) -> int:
        row = {"run_id": run_id, "created_at": time.time(), **call}
        return int(self.db["llm_calls"].insert(row).last_pk)

    def record_program(self, run_id: str, prog: dict[str, Any]) -> int:
        """Insert one child; counted evaluations (not rejected) bump the run's counter, atomically."""
        ev = prog.get("evaluation") or {}
        row = {
            "run_id": run_id,
            "island": prog.get("island"),
            "generation": prog.get("generation", 0),
            "parent_id": prog.get("parent_id"),
            "inspiration_ids": _json(prog.get("inspiration_ids") or []),
            "code": prog["code"],
            "code_hash": prog["code_hash"],
            "diff": prog.get("diff", ""),
            "mode": prog.get("mode", ""),
            "model": prog.get("model", ""),
            "llm_call_id": prog.get("llm_call_id"),
            "status": ev.get("status", prog.get("status", "rejected")),
            "reason": ev.get("error", prog.get("reason", "")),
            "valid": int(bool(ev.get("valid", False))),
            "score": _finite(ev.get("score")),
            "fitness": _finite(ev.get("fitness")) if ev.get("valid") else None,
            "metrics": _json(ev.get("metrics") or {}),
            "features": _json(ev.get("features") or {}),
            "feedback": ev.get("feedback", ""),
            "artifacts": _json(ev.get("artifacts") or {}),
            "eval_wall_s": (ev.get("metrics") or {}).get("eval_wall_s"),
            "eval_cpu_s": (ev.get("metrics") or {}).get("eval_cpu_s"),
            "node": ev.get("node"),
            "created_at": time.time(),
        }
        counted = row["status"] != "rejected" and prog.get("mode") != "migrant"
        with self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            seq = self.db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM programs WHERE run_id = ?", [run_id]
            ).fetchone()[0]
            row["seq"] = seq
            pid = int(self.db["programs"].insert(row).last_pk)
            if counted:
                self.db.execute(
                    "UPDATE runs SET evaluations = evaluations + 1, updated_at = ? WHERE id = ?",
                    [time.time(), run_id],
                )
        return pid

    def record_migration(
        self, run_id: str, from_island: int, to_island: int, program_id: int
    ) -> None:
        self.db["migrations"].insert(
            {
                "run_id": run_id,
                "from_island": from_island,
                "to_island": to_island,
                "program_id": program_id,
                "created_at": time.time(),
            }
        )

    def record_elites(self, run_id: str, island: int, cells: list[dict[str, Any]]) -> None:
        """Replace an island's MAP-Elites cells with its current grid."""
        with self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM elites WHERE run_id = ? AND island = ?", [run_id, island])
            self.db["elites"].insert_all(
                [{"run_id": run_id, "island": island, **c} for c in cells],
                pk=("run_id", "island", "cell"),
            )

    def record_reset(self, run_id: str, island: int, program_ids: list[int]) -> None:
        self.db["resets"].insert(
            {
                "run_id": run_id,
                "island": island,
                "program_ids": _json(program_ids),
                "created_at": time.time(),
            }
        )

    def record_island(self, run_id: str, state: dict[str, Any]) -> None:
        self.db["islands"].upsert(
            {"run_id": run_id, "updated_at": time.time(), **state}, pk=("run_id", "island")
        )

    def record_literature_check(
        self, run_id: str, program_id: int | None, verdict: dict[str, Any]
    ) -> int:
        row = {
            "run_id": run_id,
            "program_id": program_id,
            "problem": verdict.get("problem"),
            "status": verdict.get("status"),
            "score": _finite(verdict.get("score")),
            "best_known": _finite(verdict.get("best_known"))
            if isinstance(verdict.get("best_known"), (int, float))
            else None,
            "citation": verdict.get("citation"),
            "as_of": verdict.get("as_of"),
            "matched": _json(verdict.get("matched")),
            "reverified": int(bool(verdict.get("reverified"))),
            "message": verdict.get("message", ""),
            "details": _json(verdict),
            "created_at": time.time(),
        }
        return int(self.db["literature_checks"].insert(row).last_pk)

    # --- reads -----------------------------------------------------------------------------
    def run(self, run_id: str | None = None) -> dict[str, Any]:
        if run_id is None:
            row = self.db.execute("SELECT id FROM runs ORDER BY created_at LIMIT 1").fetchone()
            if row is None:
                raise DatabaseError(f"{self.path} holds no run")
            run_id = row[0]
        rows = list(self.db["runs"].rows_where("id = ?", [run_id]))
        if not rows:
            raise DatabaseError(f"{self.path} has no run {run_id!r}")
        r = rows[0]
        r["config"] = json.loads(r["config"])
        r["versions"] = json.loads(r["versions"])
        return r

    def evaluations(self, run_id: str) -> int:
        return int(
            self.db.execute("SELECT evaluations FROM runs WHERE id = ?", [run_id]).fetchone()[0]
        )

    def programs(
        self,
        run_id: str,
        where: str = "",
        params: list | None = None,
        order: str = "seq",
        limit: int | None = None,
    ) -> list[dict]:
        clause = "run_id = ?" + (f" AND ({where})" if where else "")
        rows = list(
            self.db["programs"].rows_where(
                clause, [run_id, *(params or [])], order_by=order, limit=limit
            )
        )
        for r in rows:
            for key in ("metrics", "features", "artifacts", "inspiration_ids"):
                r[key] = (
                    json.loads(r[key]) if r.get(key) else ({} if key != "inspiration_ids" else [])
                )
        return rows

    def best(self, run_id: str, limit: int = 1) -> list[dict]:
        return self.programs(run_id, "valid = 1", order="fitness DESC, seq ASC", limit=limit)

    def status_counts(self, run_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) FROM programs WHERE run_id = ? GROUP BY status", [run_id]
        ).fetchall()
        return {s: n for s, n in rows}

    def island_totals(self, run_id: str, island: int) -> dict[str, float]:
        """One island's recorded work: counted children, LLM calls and their cost."""
        counted = self.db.execute(
            "SELECT COUNT(*) FROM programs WHERE run_id = ? AND island = ? "
            "AND status != 'rejected' AND mode != 'migrant'",
            [run_id, island],
        ).fetchone()[0]
        calls, cost = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM llm_calls "
            "WHERE run_id = ? AND island = ?",
            [run_id, island],
        ).fetchone()
        return {"counted": counted, "llm_calls": calls, "cost_usd": float(cost)}

    def evaluations_by_node(self, run_id: str) -> list[dict[str, Any]]:
        """Counted evaluations per Ray node (node None: not recorded), most first."""
        if "node" not in self.db["programs"].columns_dict:  # a file older than the column
            return []
        rows = self.db.execute(
            "SELECT node, COUNT(*), SUM(valid), COALESCE(SUM(eval_wall_s), 0) FROM programs "
            "WHERE run_id = ? AND status != 'rejected' AND mode != 'migrant' "
            "GROUP BY node ORDER BY COUNT(*) DESC, node",
            [run_id],
        ).fetchall()
        return [
            {"node": node, "evaluations": n, "valid": int(valid or 0), "eval_wall_s": wall}
            for node, n, valid, wall in rows
        ]

    def llm_totals(self, run_id: str) -> dict[str, float]:
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0), "
            "COALESCE(SUM(cost_usd),0), SUM(error IS NOT NULL AND error != '') FROM llm_calls WHERE run_id = ?",
            [run_id],
        ).fetchone()
        return {
            "calls": row[0],
            "prompt_tokens": row[1],
            "completion_tokens": row[2],
            "cost_usd": row[3],
            "errors": row[4] or 0,
        }

    def close(self) -> None:
        self.db.conn.close()
