"""The meta-scratchpad: the digest of recent children, and a run whose prompts carry it."""

from __future__ import annotations

import sqlite3

import pytest

from evolve.cli import main
from evolve.mutation.scratchpad import digest, edit_kind, local_answer

CONST = "--- a\n+++ b\n@@ -1 +1 @@\n-    x = 0.5\n+    x = 0.52\n"
OPER = "--- a\n+++ b\n@@ -1 +1 @@\n-    y = a + b\n+    y = a - b\n"
STRUCT = "--- a\n+++ b\n@@ -1 +1,2 @@\n-    y = a\n+    y = a\n+    y = y * y\n"


def test_edit_kinds():
    assert edit_kind(CONST) == "constants"
    assert edit_kind(OPER) == "operators"
    assert edit_kind(STRUCT) == "structure"
    assert edit_kind("") == "none"


def test_the_digest_counts_what_improved_and_what_failed():
    children = [
        {"diff": CONST, "status": "ok", "score": 0.4, "parent_score": 0.5},  # improved (min)
        {"diff": CONST, "status": "ok", "score": 0.6, "parent_score": 0.5},
        {"diff": OPER, "status": "invalid", "reason": "h out of range", "score": None},
        {"diff": OPER, "status": "invalid", "reason": "h out of range", "score": None},
        {"diff": STRUCT, "status": "timeout", "reason": "killed at 10 s", "score": None},
    ]
    text = digest(children, "min")
    assert "Of the last 5 children, 1 beat their parent." in text
    assert "edits of constants: 2 tried, 1 improved, 0 failed" in text
    assert "edits of operators: 2 tried, 0 improved, 2 failed" in text
    assert "invalid: h out of range (2x)" in text
    assert "Edits of constants have paid off best so far." in text
    # The same children read as a max problem: the other constant edit improved.
    assert "1 beat their parent" in digest(children, "max")
    assert local_answer(f"## Digest\n{text}\n\n## Examples\n...") == text


@pytest.mark.slow
def test_a_run_writes_versions_of_the_note_and_later_prompts_carry_it(ray_session, tmp_path):
    rc = main(
        [
            "run",
            f"runs_dir={tmp_path}",
            "report.live=false",
            "literature.enabled=false",
            "budget.evaluations=30",
            "search.islands=1",
            "search.scratchpad.enabled=true",
            "search.scratchpad.every=10",
        ]
    )
    assert rc == 0
    (db_path,) = tmp_path.glob("*/*/evolve.db")
    db = sqlite3.connect(db_path)
    notes = db.execute(
        "SELECT at_evaluation, note, llm_call_id FROM scratchpad ORDER BY id"
    ).fetchall()
    # One version per period of 10 evaluations, written as soon as the driver hears the
    # period is over (islands report in batches, so possibly a few evaluations later).
    ats = [n[0] for n in notes]
    assert len(ats) >= 2 and all(10 * (k + 1) <= at < 10 * (k + 2) for k, at in enumerate(ats))
    assert all(n[1].startswith("Of the last ") and "beat their parent" in n[1] for n in notes)
    calls = db.execute("SELECT id FROM llm_calls WHERE template = 'scratchpad'").fetchall()
    assert sorted(c[0] for c in calls) == sorted(n[2] for n in notes)  # every version's call
    carried = db.execute(
        "SELECT COUNT(*) FROM llm_calls WHERE prompt LIKE '%## Notes from this run so far%'"
    ).fetchone()[0]
    assert carried > 0
