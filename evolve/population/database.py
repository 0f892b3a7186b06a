"""The run's SQLite database: one file per run, WAL mode, one writer (the archive actor).

Everything that counts is written here before it counts: every child with its status and
reason, every LLM call, migrations and literature verdicts. Readers may open the file while a
run is live. A run killed at any moment resumes from this file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

SCHEMA_VERSION = 2

# Indexes added in version 2: the report looks up a program's verdicts, resume replays a
# run's migrations and resets.
_V2_INDEXES = (
    ("literature_checks", ("run_id", "program_id")),
    ("migrations", ("run_id",)),
    ("resets", ("run_id",)),
)


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    for table, cols in _V2_INDEXES:
        name = f"idx_{table}_{'_'.join(cols)}"
        conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({", ".join(cols)})')


# From a version to the next: each step runs in one transaction with the version's update.
# Never edit a step once released; add the next one and bump SCHEMA_VERSION.
MIGRATIONS = {1: _migrate_1_to_2}


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version a database file says it has (0 when it has no evolve schema)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring a database to SCHEMA_VERSION, one step per transaction; the version it had."""
    found = version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{where} has schema version {version}, written by a newer evolve; this one reads "
            f"up to {SCHEMA_VERSION}: upgrade evolve to open it"
        )
    if version == 0:
        raise DatabaseError(f"{where} has no evolve schema (no meta table)")
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version + 1)]
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        version += 1
    return found


class DatabaseError(RuntimeError):
    """A database file that cannot be used; the message says what to do."""


def _json(value: Any) -> str:
    """JSON text for a column: NaN and infinities become null (JSON has neither)."""
    try:
        # The common case, in C: nothing to clean.
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (ValueError, TypeError):
        pass

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


def _insert(
    conn: sqlite3.Connection, table: str, row: dict[str, Any], replace: bool = False
) -> sqlite3.Cursor:
    """INSERT one row (names are the schema's own, never from outside); with `replace`, in
    place of the row with the same key."""
    return conn.execute(_insert_sql(table, tuple(row), replace), list(row.values()))


@functools.lru_cache(maxsize=256)
def _insert_sql(table: str, names: tuple[str, ...], replace: bool) -> str:
    """The INSERT statement for a table and its columns (a few shapes, written once each)."""
    cols = ", ".join(f'"{k}"' for k in names)
    marks = ", ".join("?" for _ in names)
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    return f'{verb} INTO "{table}" ({cols}) VALUES ({marks})'


def _replace_grid(
    conn: sqlite3.Connection,
    run_id: str,
    island: int,
    cells: list[dict[str, Any]],
    axes: list[dict[str, Any]] | None,
) -> None:
    """An island's MAP-Elites cells (and axes, if given) in place of its previous ones."""
    conn.execute("DELETE FROM elites WHERE run_id = ? AND island = ?", [run_id, island])
    for c in cells:
        _insert(conn, "elites", {"run_id": run_id, "island": island, **c})
    if axes is not None:
        row = {"run_id": run_id, "island": island, "axes": _json(axes), "updated_at": time.time()}
        _insert(conn, "grids", row, replace=True)


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
        # The schema version the file had when opened (older ones are migrated: on disk when
        # writing, in a copy in memory when only reading).
        self.found_version = SCHEMA_VERSION
        try:
            if readonly:
                version = schema_version(conn)
                if 0 < version < SCHEMA_VERSION:
                    mem = sqlite3.connect(":memory:", isolation_level=None)
                    conn.backup(mem)
                    conn.close()
                    conn = mem
                    self.found_version = migrate(conn, str(self.path))
            elif "meta" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}:
                self.found_version = migrate(conn, str(self.path))
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
                "step": int,  # the island's iteration that made it (NULL: seed, migrant)
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
        for column, kind in (("node", str), ("step", int)):
            if column not in db["programs"].columns_dict:
                # Files made before the column existed gain it (NULL: not recorded); an
                # added column needs no new schema version, older readers ignore it.
                db["programs"].add_column(column, kind)
        # A heuristic problem's final best scored once on the held-out test set (a table of
        # its own: created here, so databases from before it simply have no test scores).
        db["test_scores"].create(
            {
                "id": int,
                "run_id": str,
                "program_id": int,
                "status": str,
                "error": str,
                "score": float,
                "metrics": str,
                "created_at": float,
            },
            pk="id",
            if_not_exists=True,
        )
        db["scratchpad"].create(
            {
                "id": int,
                "run_id": str,
                "at_evaluation": int,  # the note is in force from this many evaluations on
                "note": str,
                "llm_call_id": int,
                "created_at": float,
            },
            pk="id",
            if_not_exists=True,
        )
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
        # Added after the first schema: the prompt template of each call (older files gain it).
        if "template" not in db["llm_calls"].columns_dict:
            db["llm_calls"].add_column("template", str)
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
        db["grids"].create(  # each island's MAP-Elites axes, as of its last recorded elites
            {"run_id": str, "island": int, "axes": str, "updated_at": float},
            pk=("run_id", "island"),
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
        _migrate_1_to_2(db.conn)  # a new file starts at the current version

    def _check_version(self) -> None:
        if "meta" not in self.db.table_names():
            raise DatabaseError(f"{self.path} has no evolve schema (no meta table)")
        migrate(self.db.conn, str(self.path))  # no-op at SCHEMA_VERSION; refuses a newer one

    # --- writes ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the raw connection, committed only if the block ends.

        Plain SQL inside, not sqlite-utils' write methods: sqlite-utils 3.x commits inside
        Table.insert (4.x uses a savepoint), which would split the transaction in two.
        """
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

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
        return self.record_iterations(run_id, [(None, prog)])[0][1]

    def record_iterations(
        self, run_id: str, items: list[tuple[dict[str, Any] | None, dict[str, Any] | None]]
    ) -> list[tuple[int | None, int | None]]:
        """Write many iterations in ONE transaction (a group commit): each item an LLM call
        and/or the child it produced (the child row points at its call), and the run's counter
        bumped by the counted children. Nothing of the batch is written unless all of it is.
        Returns (call id, program id) per item, None where the item had no call or no child."""
        out: list[tuple[int | None, int | None]] = []
        now = time.time()
        with self._transaction() as conn:
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM programs WHERE run_id = ?", [run_id]
            ).fetchone()[0]
            counted = 0
            for call, prog in items:
                call_id = None
                if call is not None:
                    row = {"run_id": run_id, "created_at": now, **call}
                    call_id = int(_insert(conn, "llm_calls", row).lastrowid)
                pid = None
                if prog is not None:
                    seq += 1
                    row = self._program_row(run_id, prog)
                    row["seq"] = seq
                    if call_id is not None:
                        row["llm_call_id"] = call_id
                    pid = int(_insert(conn, "programs", row).lastrowid)
                    counted += int(row["status"] != "rejected" and prog.get("mode") != "migrant")
                out.append((call_id, pid))
            if counted:
                conn.execute(
                    "UPDATE runs SET evaluations = evaluations + ?, updated_at = ? WHERE id = ?",
                    [counted, now, run_id],
                )
        return out

    def _program_row(self, run_id: str, prog: dict[str, Any]) -> dict[str, Any]:
        ev = prog.get("evaluation") or {}
        row = {
            "run_id": run_id,
            "island": prog.get("island"),
            "step": prog.get("step"),
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
        return row

    def record_test_score(self, run_id: str, program_id: int, ev: dict[str, Any]) -> int:
        """A program's scores on every instance set, test included (see Evolution)."""
        row = {
            "run_id": run_id,
            "program_id": program_id,
            "status": ev.get("status", ""),
            "error": ev.get("error", ""),
            "score": _finite(ev.get("score")),
            "metrics": _json(ev.get("metrics") or {}),
            "created_at": time.time(),
        }
        return int(self.db["test_scores"].insert(row).last_pk)

    def record_scratchpad(
        self, run_id: str, at_evaluation: int, note: str, llm_call_id: int | None
    ) -> int:
        row = {
            "run_id": run_id,
            "at_evaluation": at_evaluation,
            "note": note,
            "llm_call_id": llm_call_id,
            "created_at": time.time(),
        }
        return int(self.db["scratchpad"].insert(row).last_pk)

    def scratchpad(self, run_id: str) -> list[dict]:
        """Every version of the run's note, oldest first."""
        if "scratchpad" not in self.db.table_names():
            return []
        return list(self.db["scratchpad"].rows_where("run_id = ?", [run_id], order_by="id"))

    def recent_children(self, run_id: str, n: int) -> list[dict]:
        """The last `n` counted children with their parent's score (for the scratchpad)."""
        rows = self.db.execute(
            "SELECT c.diff, c.status, c.reason, c.score, p.score FROM programs c "
            "LEFT JOIN programs p ON p.id = c.parent_id "
            "WHERE c.run_id = ? AND c.status != 'rejected' AND c.mode NOT IN ('seed', 'migrant') "
            "ORDER BY c.seq DESC LIMIT ?",
            [run_id, n],
        ).fetchall()
        return [
            {"diff": d, "status": st, "reason": r, "score": s, "parent_score": ps}
            for d, st, r, s, ps in reversed(rows)
        ]

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

    def record_round(
        self,
        run_id: str,
        migrations: list[tuple[int, int, int]],
        islands: list[dict[str, Any]],
    ) -> None:
        """A migration round in one transaction: its accepted migrations (source island,
        destination island, program id), then each island's state and MAP-Elites grid
        ({"state", "elites", "axes"}: cells and axes replace the island's previous ones)."""
        now = time.time()
        with self._transaction() as conn:
            for src, dst, program_id in migrations:
                _insert(
                    conn,
                    "migrations",
                    {
                        "run_id": run_id,
                        "from_island": src,
                        "to_island": dst,
                        "program_id": program_id,
                        "created_at": now,
                    },
                )
            for snap in islands:
                state = {"run_id": run_id, **snap["state"], "updated_at": now}
                _insert(conn, "islands", state, replace=True)
                _replace_grid(conn, run_id, state["island"], snap["elites"], snap["axes"])

    def record_elites(
        self,
        run_id: str,
        island: int,
        cells: list[dict[str, Any]],
        axes: list[dict[str, Any]] | None = None,
    ) -> None:
        """Replace an island's MAP-Elites cells with its current grid (and its axes if given:
        each dimension's name, bin count and bin edges), in one transaction."""
        with self._transaction() as conn:
            _replace_grid(conn, run_id, island, cells, axes)

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

    def write_mark(self, run_id: str) -> tuple[int, int, int]:
        """What the run's writers have written so far (its last call, its last program, its
        counter): unchanged between two looks means nobody wrote in between."""
        row = self.db.execute(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM llm_calls WHERE run_id = ?), "
            "(SELECT COALESCE(MAX(id), 0) FROM programs WHERE run_id = ?), "
            "(SELECT evaluations FROM runs WHERE id = ?)",
            [run_id, run_id, run_id],
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2] or 0)

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

    def program_code(self, run_id: str, program_id: int) -> str:
        row = self.db.execute(
            "SELECT code FROM programs WHERE run_id = ? AND id = ?", [run_id, program_id]
        ).fetchone()
        if row is None:
            raise DatabaseError(f"{self.path} has no program {program_id} in run {run_id!r}")
        return row[0]

    def test_scores(self, run_id: str) -> list[dict]:
        """Held-out test scores recorded for this run's best programs, newest last."""
        if "test_scores" not in self.db.table_names():
            return []
        rows = list(self.db["test_scores"].rows_where("run_id = ?", [run_id], order_by="id"))
        for r in rows:
            r["metrics"] = json.loads(r["metrics"]) if r.get("metrics") else {}
        return rows

    def best_by(
        self, run_id: str, metric: str | None, direction: str, limit: int = 1
    ) -> list[dict]:
        """The best valid programs by `metric` (a key of their metrics, in the problem's
        `direction`), or by fitness when `metric` is None."""
        if metric is None:
            return self.best(run_id, limit)
        order = "DESC" if direction == "max" else "ASC"
        return self.programs(
            run_id,
            "valid = 1 AND json_extract(metrics, ?) IS NOT NULL",
            ["$." + metric],
            order=f"json_extract(metrics, '$.{metric}') {order}, seq ASC",
            limit=limit,
        )

    def cascade_summary(self, run_id: str) -> dict[str, float]:
        """Instances a heuristic problem's cascade ran and saved, over the run's children."""
        row = self.db.execute(
            "SELECT COUNT(*), SUM(status = 'stopped'), "
            "COALESCE(SUM(json_extract(metrics, '$.instances_run')), 0), "
            "COALESCE(SUM(json_extract(metrics, '$.instances_full')), 0), "
            "COALESCE(SUM(json_extract(metrics, '$.cascade_saved')), 0) "
            "FROM programs WHERE run_id = ? AND json_extract(metrics, '$.instances_full') IS NOT NULL",
            [run_id],
        ).fetchone()
        return {
            "children": row[0],
            "stopped": row[1] or 0,
            "instances_run": row[2],
            "instances_full": row[3],
            "saved": row[4],
        }

    def direction(self, run_id: str) -> str:
        """'max' or 'min', read from the recorded programs (fitness = score for max)."""
        row = self.db.execute(
            "SELECT score, fitness FROM programs WHERE run_id = ? AND valid = 1 AND score != 0 LIMIT 1",
            [run_id],
        ).fetchone()
        return "min" if row and row[1] == -row[0] else "max"

    def best(self, run_id: str, limit: int = 1) -> list[dict]:
        return self.programs(run_id, "valid = 1", order="fitness DESC, seq ASC", limit=limit)

    def status_counts(self, run_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) FROM programs WHERE run_id = ? GROUP BY status", [run_id]
        ).fetchall()
        return {s: n for s, n in rows}

    def rejection_kinds(self, run_id: str) -> dict[str, int]:
        """Children turned away before running, by why: `duplicate`, `novelty` (the filter),
        `judge`, or the edit's fault (`no_change`, `no_edit`, `malformed`, ...), most first."""
        rows = self.db.execute(
            "SELECT CASE WHEN reason LIKE 'duplicate%' THEN 'duplicate' "
            "WHEN instr(reason, ':') > 0 THEN substr(reason, 1, instr(reason, ':') - 1) "
            "ELSE COALESCE(reason, '') END AS kind, COUNT(*) FROM programs "
            "WHERE run_id = ? AND status = 'rejected' GROUP BY kind ORDER BY 2 DESC, kind",
            [run_id],
        ).fetchall()
        return {k: n for k, n in rows}

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

    def island_summary(self, run_id: str) -> list[tuple[int, float | None, int]]:
        """(island, best fitness, programs) per island, in island order."""
        return self.db.execute(
            "SELECT island, MAX(fitness), COUNT(*) FROM programs WHERE run_id = ? "
            "AND island IS NOT NULL GROUP BY island ORDER BY island",
            [run_id],
        ).fetchall()

    def llm_usage(self, run_id: str) -> list[tuple]:
        """(model, island, calls, prompt tokens, completion tokens, cost, errors) per model
        and island."""
        return self.db.execute(
            "SELECT model, island, COUNT(*), COALESCE(SUM(prompt_tokens), 0), "
            "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0), "
            "SUM(error IS NOT NULL AND error != '') FROM llm_calls "
            "WHERE run_id = ? GROUP BY model, island ORDER BY model, island",
            [run_id],
        ).fetchall()

    def scored_program(self, run_id: str, program_id: int) -> tuple[str, float | None, bool] | None:
        """(code, recorded score, valid) of one program, None if the run has no such program."""
        row = self.db.execute(
            "SELECT code, score, valid FROM programs WHERE id = ? AND run_id = ?",
            [program_id, run_id],
        ).fetchone()
        return None if row is None else (row[0], row[1], bool(row[2]))

    def answered_calls(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Every answered LLM call (prompt, response, model, island, seed), in call order."""
        cols = self._columns("llm_calls")
        want = ["prompt", "response", "model", "island"] + (["seed"] if "seed" in cols else [])
        sql = f"SELECT {', '.join(want)} FROM llm_calls WHERE response IS NOT NULL"
        args: list[Any] = []
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        rows = self.db.execute(sql + " ORDER BY id", args).fetchall()
        return [dict(zip(want, row, strict=True)) for row in rows]

    def evaluated_hashes(self, run_id: str) -> list[str]:
        """Code hashes of every program this run has evaluated (rejected ones excluded)."""
        rows = self.db.execute(
            "SELECT DISTINCT code_hash FROM programs "
            "WHERE run_id = ? AND code_hash != '' AND status != 'rejected'",
            [run_id],
        ).fetchall()
        return [r[0] for r in rows]

    def migration_events(self, run_id: str) -> list[tuple[int, int, float]]:
        """(to island, program id, when) of every migration, in recorded order."""
        return self.db.execute(
            "SELECT to_island, program_id, created_at FROM migrations WHERE run_id = ? ORDER BY id",
            [run_id],
        ).fetchall()

    def reset_events(self, run_id: str) -> list[tuple[int, list[int], float]]:
        """(island, program ids it was re-seeded with, when) of every reset, in order."""
        rows = self.db.execute(
            "SELECT island, program_ids, created_at FROM resets WHERE run_id = ? ORDER BY id",
            [run_id],
        ).fetchall()
        return [(i, json.loads(ids), at) for i, ids, at in rows]

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

    # --- readers for reports (any table or column added later may be missing: older runs) ---
    def _columns(self, table: str) -> set[str]:
        return {r[1] for r in self.db.execute(f"PRAGMA table_info({table})").fetchall()}

    def _rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def timeline(self, run_id: str) -> list[dict[str, Any]]:
        """Every program in recording order, without code, diff or feedback (small rows).
        `metrics` stays a JSON string; a `node` column is included when the schema has one."""
        cols = [
            "id", "seq", "island", "generation", "parent_id", "mode", "model", "llm_call_id",
            "status", "reason", "valid", "score", "fitness", "metrics", "created_at",
        ]  # fmt: skip
        if "node" in self._columns("programs"):
            cols.append("node")
        return self._rows(
            f"SELECT {', '.join(cols)} FROM programs WHERE run_id = ? ORDER BY seq", [run_id]
        )

    def programs_by_id(self, run_id: str, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Full rows (code, diff, metrics parsed) of the given programs, by id."""
        out: dict[int, dict[str, Any]] = {}
        ids = sorted({int(i) for i in ids})
        for k in range(0, len(ids), 500):  # stay under SQLite's parameter limit
            chunk = ids[k : k + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.programs(run_id, f"id IN ({marks})", chunk):
                out[r["id"]] = r
        return out

    def iter_programs(self, run_id: str, batch: int = 500):
        """Every program, full rows in recording order, read `batch` at a time."""
        last = 0
        while True:
            rows = self.programs(run_id, "seq > ?", [last], limit=batch)
            if not rows:
                return
            yield from rows
            last = rows[-1]["seq"]

    def llm_calls(self, run_id: str) -> list[dict[str, Any]]:
        """Every LLM call's accounting (no prompt or response), in order."""
        return self._rows(
            "SELECT id, island, model, prompt_tokens, completion_tokens, cost_usd, latency_s, "
            "attempts, error, created_at FROM llm_calls WHERE run_id = ? ORDER BY id",
            [run_id],
        )

    def llm_responses(self, run_id: str, call_ids: list[int]) -> dict[int, str]:
        ids = sorted({int(i) for i in call_ids if i is not None})
        out: dict[int, str] = {}
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.db.execute(
                f"SELECT id, response FROM llm_calls WHERE run_id = ? AND id IN ({marks})",
                [run_id, *chunk],
            ).fetchall():
                out[r[0]] = r[1] or ""
        return out

    def models(self, run_id: str) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT model FROM llm_calls WHERE run_id = ? AND model IS NOT NULL", [run_id]
        ).fetchall()
        return sorted(r[0] for r in rows)

    def migrations(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM migrations WHERE run_id = ? ORDER BY id", [run_id])

    def resets(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM resets WHERE run_id = ? ORDER BY id", [run_id])

    def literature_checks(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM literature_checks WHERE run_id = ? ORDER BY id", [run_id])
        for r in rows:
            try:
                r["details"] = json.loads(r["details"]) if r.get("details") else {}
            except json.JSONDecodeError:
                r["details"] = {}
        return rows

    def latest_verdict(self, run_id: str, program_id: int) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT * FROM literature_checks WHERE run_id = ? AND program_id = ? "
            "ORDER BY id DESC LIMIT 1",
            [run_id, program_id],
        )
        return rows[0] if rows else None

    def elites(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT island, cell, program_id, fitness FROM elites WHERE run_id = ? "
            "ORDER BY island, cell",
            [run_id],
        )

    def grid_axes(self, run_id: str) -> dict[int, list[dict[str, Any]]]:
        """Each island's MAP-Elites axes (name, bins, edges); empty for runs that predate them."""
        if "grids" not in self.db.table_names():
            return {}
        return {
            r["island"]: json.loads(r["axes"])
            for r in self._rows("SELECT island, axes FROM grids WHERE run_id = ?", [run_id])
        }

    def island_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM islands WHERE run_id = ? ORDER BY island", [run_id])

    def close(self) -> None:
        self.db.conn.close()
