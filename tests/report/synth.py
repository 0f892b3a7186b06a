"""Synthetic run databases written through the real `Database` writer (real SQLite files), for
report tests that need a given size, direction or seed set without running the engine."""

from __future__ import annotations

import random
from pathlib import Path

from evolve.population.database import Database

FAILURES = (
    ("timeout", "timed out after 10 s"),
    ("crash", "ZeroDivisionError: division by zero"),
    ("invalid", "heights must be finite and non-negative"),
)


def _code(k: int, payload: str) -> str:
    rows = "\n".join(
        f"        {0.5 + 0.001 * ((k * 7 + j) % 13):.4f}, 0.5, 0.5," for j in range(24)
    )
    return (
        '"""A synthetic child."""\n\nimport numpy as np\n\n\n# EVOLVE-BLOCK-START\n'
        f"def heights() -> np.ndarray:\n    # {payload} variant {k}\n"
        f"    h = np.array([\n{rows}\n    ])\n    return h\n# EVOLVE-BLOCK-END\n"
    )


def make_run(
    folder: Path,
    *,
    problem: str = "synthetic/max",
    direction: str = "max",
    n: int = 200,
    seed: int = 0,
    islands: int = 2,
    drift: float = 1.0,
    payload: str = "",
    model: str = "stub/model-a",
    best_known: float | None = None,
    noise: float = 0.05,
    climb: float = 0.0,
    text_lines: int = 1,
) -> Path:
    """A completed run of `n` counted evaluations in `folder`/evolve.db; returns the folder.

    `noise` is the spread of each child's fitness about the run's drift (small: many new bests);
    `climb` the share of children bred from the current best (a long lineage, as a hill-climbing
    run has); `text_lines` the lines of each diff and LLM answer (an LLM writes tens)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    db = Database(folder / "evolve.db")
    rid = f"synthetic-seed{seed}"
    sign = 1.0 if direction == "max" else -1.0
    config = {"problem": {"name": problem}, "llm": {"model": model}, "seed": seed}
    db.start_run(rid, problem, seed, config, {"evolve": "test", "sandbox": {"pid_namespace": True}})
    ids: list[int] = []
    best, best_id = -float("inf"), None
    more = "".join(
        f"\n{payload} reasoning line {j}: lower the steps near x = 1" for j in range(1, text_lines)
    )
    for k in range(n):
        island = k % islands
        fitness = 1.0 + drift * k / n + rng.gauss(0, noise)
        status, reason = "ok", ""
        if k and k % 7 == 0:
            status, reason = FAILURES[(k // 7) % len(FAILURES)]
        call = {
            "island": island,
            "model": model,
            "prompt": "prompt",
            "response": f"Idea {k}: {payload}{more}\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE",
            "prompt_tokens": 900,
            "completion_tokens": 60,
            "cost_usd": 0.002,
            "latency_s": 0.5 + rng.random(),
            "attempts": 1,
            "seed": k,
            "error": None,
        }
        call_id = db.record_llm_call(rid, call) if k else None
        ev = {"status": status, "error": reason, "valid": status == "ok"}
        if status == "ok":
            ev.update(
                score=sign * fitness,
                fitness=fitness,
                metrics={
                    "train": sign * fitness,
                    "validation": sign * fitness * 0.98,
                    "test_small": sign * fitness * 0.95,
                },  # fmt: skip
                features={"n": 24 + k % 5, "code_length": 400 + k % 50},
                feedback=f"bound {sign * fitness:.6f} {payload}",
            )
        if best_id is not None and rng.random() < climb:
            parent = best_id
        else:
            parent = ids[rng.randrange(len(ids))] if ids else None
        pid = db.record_program(
            rid,
            {
                "island": island,
                "generation": k,
                "parent_id": parent,
                "code": _code(k, payload),
                "code_hash": f"h{seed}-{k}",
                "diff": f"--- parent\n+++ child\n@@ -8 +8 @@\n-    # old\n+    # {payload} {k}\n"
                + "".join(f"-    {j}.0, old\n+    {j}.5, new {k}\n" for j in range(1, text_lines)),
                "mode": "diff" if k else "seed",
                "model": model if k else "",
                "llm_call_id": call_id,
                "evaluation": ev,
            },
        )
        ids.append(pid)
        if status == "ok" and fitness > best:
            best, best_id = fitness, pid
            if best_known is not None and k % 50 == 0:
                verdict = {
                    "problem": problem,
                    "status": "below_known",
                    "score": sign * fitness,
                    "best_known": best_known,
                    "citation": f"A. Author, {payload} Journal (2020)",
                    "as_of": "2026-01",
                    "message": f"below the best known value {payload}",
                }
                db.record_literature_check(rid, pid, verdict)
        if k and k % max(1, n // 4) == 0:
            db.record_migration(rid, 0, 1 % islands, pid)
    # the held-out test score of the best by validation (as the engine records at the end)
    (chosen,) = db.best_by(rid, "validation", direction, 1)
    v = chosen["metrics"]["validation"]
    db.record_test_score(
        rid, chosen["id"], {"status": "ok", "score": v, "metrics": {"test_heldout": v * 0.9}}
    )
    axes = [
        {"name": "n", "bins": 4, "edges": [24.0, 25.0, 26.0, 27.0, 28.0]},
        {"name": "code_length", "bins": 3, "edges": [400.0, 420.0, 440.0, 460.0]},
    ]
    for isl in range(islands):
        cells = [
            {"cell": f"{a},{b}", "program_id": ids[(a * 3 + b + isl) % len(ids)], "fitness": 1.0}
            for a in range(4)
            for b in range(3)
            if (a + b + isl) % 2 == 0
        ]
        db.record_elites(rid, isl, cells, axes)
    db.finish_run(rid, "completed")
    db.close()
    return folder
