"""Prompt variants chosen by a bandit: the templates, the local mutator's crossover, and runs
that record which template each call used (offline and against an OpenAI-compatible stub)."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from llm_stub import StubLLM, reply

import evolve
from evolve.cli import main
from evolve.mutation.local import crossover, mutate_prompt
from evolve.mutation.prompts import ParentView, build_messages, template_names
from evolve.program import apply_response

PROBLEM = evolve.load_problem("erdos/min_overlap")
SEED = PROBLEM.initial_code


def _text(messages) -> str:
    return "\n".join(m["content"] for m in messages)


def test_every_builtin_template_renders_the_parent():
    second = ParentView(SEED.replace("0.5", "0.25", 1), 0.49)
    for name in template_names(PROBLEM.path):
        text = _text(build_messages(PROBLEM, ParentView(SEED, 0.5), [], name, second=second))
        assert "## Current program" in text and SEED.strip()[:40] in text
        assert ("## Second parent" in text) == (name == "crossover")
    assert "explain what limits" in _text(
        build_messages(PROBLEM, ParentView(SEED, 0.5), [], "explain")
    )


def test_unknown_templates_and_a_crossover_without_a_second_parent_are_errors():
    with pytest.raises(ValueError, match="template 'nope' is unknown"):
        build_messages(PROBLEM, ParentView(SEED, 0.5), [], "nope")
    with pytest.raises(ValueError, match="second parent"):
        build_messages(PROBLEM, ParentView(SEED, 0.5), [], "crossover")


def test_a_problem_adds_its_own_template(tmp_path):
    import shutil

    folder = tmp_path / "p"
    shutil.copytree(PROBLEM.path, folder)
    (folder / "prompts").mkdir(exist_ok=True)
    (folder / "prompts" / "symmetric.txt").write_text(
        "Make the step function symmetric.\n## Current program\n```python\n$code\n```\n"
    )
    p = evolve.load_problem(folder)
    assert "symmetric" in template_names(p.path)
    assert "Make the step function symmetric" in _text(
        build_messages(p, ParentView(SEED, 0.5), [], "symmetric")
    )


def test_the_local_crossover_takes_a_constant_from_the_second_parent():
    i = SEED.index("EVOLVE-BLOCK-START")
    other = SEED[:i] + SEED[i:].replace("0.5", "0.375", 1)
    m = crossover(SEED, other, random.Random(0))
    assert m is not None and "take 0.375 from the second parent" in m.description
    prompt = _text(
        build_messages(
            PROBLEM, ParentView(SEED, 0.5), [], "crossover", second=ParentView(other, 0.4)
        )
    )
    child, _ = apply_response(SEED, mutate_prompt(prompt, seed=1))
    assert "0.375" in child[child.index("EVOLVE-BLOCK-START") :]
    # Programs of different shapes: no splice, the generic moves answer instead.
    assert crossover(SEED, "def solve():\n    return 1\n", random.Random(0)) is None


def _templates(runs: Path) -> Counter:
    (db,) = runs.glob("*/*/evolve.db")
    rows = sqlite3.connect(db).execute("SELECT template FROM llm_calls").fetchall()
    return Counter(r[0] for r in rows)


@pytest.mark.slow
def test_an_offline_run_uses_and_records_every_variant(ray_session, tmp_path):
    rc = main(
        [
            "run",
            f"runs_dir={tmp_path}",
            "report.live=false",
            "literature.enabled=false",
            "budget.evaluations=40",
            "search.islands=1",
            "search.prompt_variants=[diff,explain,crossover]",
            "search.prompt_selection=ucb",
        ]
    )
    assert rc == 0
    used = _templates(tmp_path)
    assert set(used) == {"diff", "explain", "crossover"}, used


@pytest.mark.slow
def test_a_run_against_a_server_sends_the_second_parent(ray_session, tmp_path, monkeypatch):
    monkeypatch.setenv("EVOLVE_TEST_KEY", "sk-test")
    answers = [
        reply(
            f"Idea {k}.\n\n<<<<<<< SEARCH\n    h = np.array([\n=======\n"
            f"    h = np.array([\n        {0.3 + 0.01 * k:.2f}, {0.7 - 0.01 * k:.2f},\n>>>>>>> REPLACE\n"
        )
        for k in range(40)
    ]
    with StubLLM(default=answers[-1]) as stub:
        stub.script(*answers)
        rc = main(
            [
                "run",
                f"runs_dir={tmp_path}",
                "report.live=false",
                "literature.enabled=false",
                "budget.evaluations=12",
                "search.islands=1",
                "llm=openai",
                "llm.model=openai/stub",
                "llm.api_key_env=EVOLVE_TEST_KEY",
                f"llm.api_base=http://127.0.0.1:{stub.port}/v1",
                "search.prompt_variants=[crossover]",
            ]
        )
        prompts = [r.prompt for r in stub.requests if r.path.endswith("/chat/completions")]
    assert rc == 0
    used = _templates(tmp_path)
    # The first request has only the seed on the island: it falls back to a diff prompt.
    assert used["crossover"] >= 4 and set(used) <= {"crossover", "diff"}
    assert sum("## Second parent" in p for p in prompts) == used["crossover"]
