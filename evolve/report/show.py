"""`evolve show RUN`: the run's best programs, per-island bests and the best's lineage."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evolve.population.database import Database, DatabaseError
from evolve.report.live import generalisation
from evolve.sandbox.runner import describe_layers


def open_run(path: Path) -> Database:
    db_path = path if path.suffix == ".db" else path / "evolve.db"
    if not db_path.exists():
        raise DatabaseError(f"no run database at {db_path}; give a run folder made by `evolve run`")
    return Database(db_path, readonly=True)


def lineage(db: Database, run_id: str, program_id: int) -> list[dict]:
    """The parent chain of a program, oldest first."""
    chain, seen = [], set()
    pid: int | None = program_id
    while pid is not None and pid not in seen:
        seen.add(pid)
        rows = db.programs(run_id, "id = ?", [pid], limit=1)
        if not rows:
            break
        chain.append(rows[0])
        pid = rows[0]["parent_id"]
    return chain[::-1]


def show_run(path: Path, console: Console, top: int = 5) -> None:
    db = open_run(path)
    run = db.run()
    rid = run["id"]
    counts = db.status_counts(rid)
    llm = db.llm_totals(rid)
    console.print(
        f"[bold]{run['problem']}[/bold] run {rid} ({run['status']}), seed {run['seed']}: "
        f"{run['evaluations']} evaluations; "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; LLM calls {llm['calls']}, ${llm['cost_usd']:.4f}"
    )
    rejected = db.rejection_kinds(rid)
    if rejected:  # turned away before running: uncounted, but each cost a model call
        console.print(
            "rejected before running: " + ", ".join(f"{k} {n}" for k, n in rejected.items()),
            highlight=False,
        )
    versions = run.get("versions")
    features = versions.get("sandbox") if isinstance(versions, dict) else None
    if features:  # recorded at the run's start (runs before that have none)
        console.print(f"sandbox: {describe_layers(features)}", highlight=False)
    best = db.best(rid, top)
    heuristic = bool(best) and "train" in best[0]["metrics"]
    if heuristic:
        # A heuristic problem: the best is picked by validation where there is one, and the
        # test score (scored once, for the run's best) sits beside train and validation.
        metric = "validation" if "validation" in best[0]["metrics"] else None
        best = db.best_by(rid, metric, db.direction(rid), top)
        tests = {t["program_id"]: t for t in db.test_scores(rid)}
    t = Table(title=f"best {len(best)} programs" + (" (by validation)" if heuristic else ""))
    sets = [s for s in ("train", "validation", "test") if heuristic]
    # The figures keep their width on an 80-column terminal (the model's name gives way):
    # "valida…" or "0.398…" would hide the generalisation gap the table is there to show.
    for col in ("id", "island", "generation", "score", *sets, "model", "mode"):
        figures = col == "score" or col in sets
        t.add_column(col, min_width=10 if figures else None, no_wrap=figures)
    for p in best:
        cells = []
        for s in sets:
            m = tests[p["id"]]["metrics"] if s == "test" and p["id"] in tests else p["metrics"]
            cells.append("-" if m.get(s) is None else f"{m[s]:.6g}")
        t.add_row(
            str(p["id"]),
            str(p["island"]),
            str(p["generation"]),
            f"{p['score']:.12g}",
            *cells,
            p["model"] or "",
            p["mode"],
        )
    console.print(t)
    if heuristic:
        for row in db.test_scores(rid):
            m = row["metrics"]
            by_ds = ", ".join(f"{k} {v:.6g}" for k, v in sorted(m.items()) if k.startswith("test_"))
            status = "" if row["status"] == "ok" else f" ({row['status']}: {escape(row['error'])})"
            console.print(
                f"held-out test of program {row['program_id']}: {generalisation(m)}{status}"
                + (f"; by dataset: {by_ds}" if by_ds else ""),
                highlight=False,
            )
        c = db.cascade_summary(rid)
        if c["instances_full"]:
            console.print(
                f"cascade: {c['stopped']} of {c['children']} children stopped early; "
                f"{c['instances_run']:.0f} instance runs instead of {c['instances_full']:.0f} "
                f"({100 * c['saved'] / c['instances_full']:.1f}% saved)",
                highlight=False,
            )
    rows = db.island_summary(rid)
    t = Table(title="islands")
    for col in ("island", "programs", "best score"):
        t.add_column(col)
    for island, best_fit, n in rows:
        brow = (
            db.programs(rid, "island = ? AND fitness = ?", [island, best_fit], limit=1)
            if best_fit is not None
            else []
        )
        t.add_row(str(island), str(n), f"{brow[0]['score']:.12g}" if brow else "-")
    console.print(t)
    if best:
        t = Table(title=f"lineage of program {best[0]['id']}")
        for col in ("id", "generation", "island", "status", "score"):
            t.add_column(col)
        for p in lineage(db, rid, best[0]["id"]):
            t.add_row(
                str(p["id"]),
                str(p["generation"]),
                str(p["island"]),
                p["status"],
                "-" if p["score"] is None else f"{p['score']:.12g}",
            )
        console.print(t)
    costs = db.llm_usage(rid)
    if costs:
        t = Table(title="LLM calls by model and island")
        for col in (
            "model",
            "island",
            "calls",
            "prompt tokens",
            "completion tokens",
            "cost $",
            "errors",
        ):
            t.add_column(col)
        for model, island, n, pt, ct, usd, errs in costs:
            t.add_row(
                str(model), str(island), str(n), str(pt), str(ct), f"{usd:.4f}", str(errs or 0)
            )
        console.print(t)
    nodes = db.evaluations_by_node(rid)
    if nodes:
        t = Table(title="evaluations by node")
        for col in ("node", "evaluations", "valid", "evaluation time s"):
            t.add_column(col)
        for n in nodes:
            t.add_row(
                (n["node"] or "(not recorded)")[:16],  # a prefix tells nodes apart
                str(n["evaluations"]),
                str(n["valid"]),
                f"{n['eval_wall_s']:.1f}",
            )
        console.print(t)
    checks = list(
        db.db["literature_checks"].rows_where("run_id = ?", [rid], order_by="id desc", limit=3)
    )
    for c in checks:
        console.print(
            f"literature (program {c['program_id']}): {escape(c['message'] or c['status'])}"
        )
    notes = db.scratchpad(rid)
    if notes:
        last = notes[-1]
        console.print(
            f"scratchpad ({len(notes)} version(s); this one from evaluation "
            f"{last['at_evaluation']} on):\n{last['note']}",
            highlight=False,
        )
    db.close()
