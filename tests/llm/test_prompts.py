"""Prompts: problem text, parent code and metrics, capped feedback, inspirations, overrides."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import evolve
from evolve.mutation.prompts import (
    FEEDBACK_CHARS,
    ParentView,
    build_messages,
    extract_current_program,
)


@pytest.fixture(scope="module")
def problem():
    return evolve.load_problem("erdos/min_overlap")


def test_prompt_holds_everything_the_model_needs(problem):
    parent = ParentView(problem.initial_code, 0.5, {"bound": 0.5, "eval_wall_s": 0.1}, "ok")
    insp = [ParentView("def f():\n    return 1\n", 0.45), ParentView("x = 2\n", None)]
    system, user = build_messages(problem, parent, insp, "diff")
    assert system["role"] == "system" and "EVOLVE-BLOCK" in system["content"]
    text = user["content"]
    assert problem.title in text and problem.description.splitlines()[0] in text
    assert "Score: 0.5 (lower is better)" in text
    assert '"bound": 0.5' in text and "eval_wall_s" not in text  # timings are not metrics
    assert "Inspiration 1 (score 0.45)" in text and "Inspiration 2 (score invalid)" in text
    assert "<<<<<<< SEARCH" in text and ">>>>>>> REPLACE" in text
    assert extract_current_program(text) == problem.initial_code


def test_rewrite_mode_asks_for_the_whole_block(problem):
    _, user = build_messages(problem, ParentView(problem.initial_code, 0.5), [], "rewrite")
    assert "```python block" in user["content"] and "<<<<<<< SEARCH" not in user["content"]
    with pytest.raises(ValueError, match="template 'poem' is unknown"):
        build_messages(problem, ParentView(problem.initial_code, 0.5), [], "poem")


def test_long_feedback_is_capped_keeping_the_stderr_tail(problem):
    feedback = "crash: ValueError\n" + "noise line\n" * 1000 + "stderr (tail):\nIndexError: boom"
    _, user = build_messages(problem, ParentView(problem.initial_code, None, {}, feedback))
    text = user["content"]
    assert "crash: ValueError" in text and "IndexError: boom" in text
    assert "characters omitted" in text
    shown = text.split("## Evaluator feedback on the current program")[1]
    assert len(shown.split("## Task")[0]) < FEEDBACK_CHARS + 200


def test_problem_can_override_templates(tmp_path: Path, problem):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "diff.txt").write_text("CUSTOM $title score=$score\n$code\n")
    (tmp_path / "prompts" / "system.txt").write_text("You are a packing expert.")
    p = SimpleNamespace(path=tmp_path, title="T", description="D", direction="max")
    system, user = build_messages(p, ParentView("x = 1\n", 2.0), [], "diff")
    assert system["content"] == "You are a packing expert."
    assert user["content"].startswith("CUSTOM T score=2")
    # Templates the problem does not override come from evolve's defaults.
    _, rewrite = build_messages(p, ParentView("x = 1\n", 2.0), [], "rewrite")
    assert "higher is better" in rewrite["content"]
