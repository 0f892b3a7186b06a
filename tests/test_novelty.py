"""The novelty filter: the offline embedding, and real runs that reject near-duplicates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import evolve
from evolve.cli import main
from evolve.population.novelty import cosine, embed_offline, nearest

SEED = evolve.load_problem("erdos/min_overlap").initial_code


def _in_block(code: str, old: str, new: str) -> str:
    i = code.index("EVOLVE-BLOCK-START")
    assert old in code[i:], old
    return code[:i] + code[i:].replace(old, new, 1)


def test_constants_nudged_below_two_digits_read_as_the_same_program():
    near = _in_block(SEED, "0.5", "0.5001")
    assert cosine(embed_offline(SEED), embed_offline(near)) == pytest.approx(1.0)


def test_a_new_expression_or_a_new_constant_is_not_the_same_program():
    e = embed_offline(SEED)
    for other in (_in_block(SEED, "0.5", "0.9"), _in_block(SEED, "0.5", "(0.5 + 1e-3 * n)")):
        assert cosine(e, embed_offline(other)) < 0.9995


def test_the_fixed_scaffold_outside_the_block_does_not_count():
    moved = SEED.replace('"""', '"""Another docstring. ', 1) + "\n\ndef unused():\n    return 42\n"
    assert cosine(embed_offline(SEED), embed_offline(moved)) == pytest.approx(1.0)


def test_nearest_is_the_most_similar_and_skips_other_dimensions():
    e = embed_offline(SEED)
    others = {1: embed_offline(_in_block(SEED, "0.5", "7.0")), 2: embed_offline(SEED), 3: [1.0]}
    near = nearest(e, others)
    assert near.program_id == 2 and near.similarity == pytest.approx(1.0)
    assert nearest(e, {}) is None


def _run(tmp_path: Path, *overrides: str) -> sqlite3.Connection:
    runs = tmp_path / "runs"
    rc = main(
        ["run", f"runs_dir={runs}", "report.live=false", "literature.enabled=false", *overrides]
    )
    assert rc == 0
    (db,) = runs.glob("*/*/evolve.db")
    return sqlite3.connect(db)


@pytest.mark.slow
def test_a_run_rejects_near_duplicates_and_still_spends_its_budget(ray_session, tmp_path, capsys):
    # The filter is on by default: only its threshold is given here.
    db = _run(
        tmp_path, "budget.evaluations=40", "search.islands=1", "search.novelty.threshold=0.9999"
    )
    rejected = db.execute(
        "SELECT reason FROM programs WHERE status = 'rejected' AND reason LIKE 'novelty:%'"
    ).fetchall()
    assert rejected, "the local mutator's constant nudges should trip the filter"
    assert all("to program #" in r[0] and "threshold 0.9999" in r[0] for r in rejected)
    counted = db.execute("SELECT evaluations FROM runs").fetchone()[0]
    assert counted == 40  # rejected children are not counted: the budget buys distinct ones
    # `evolve show` says why children were turned away, as the database records it
    (run_dir,) = (tmp_path / "runs").glob("*/*")
    capsys.readouterr()
    assert main(["show", str(run_dir)]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("rejected before"))
    kinds = dict(part.rsplit(" ", 1) for part in line.split(": ", 1)[1].split(", "))
    assert int(kinds["novelty"]) == len(rejected)
    total = db.execute("SELECT COUNT(*) FROM programs WHERE status = 'rejected'").fetchone()[0]
    assert sum(int(n) for n in kinds.values()) == total


@pytest.mark.slow
def test_switched_off_the_filter_turns_nothing_away(ray_session, tmp_path):
    # The run above, with the filter off: it rejected near-duplicates there.
    db = _run(
        tmp_path,
        "budget.evaluations=40",
        "search.islands=1",
        "search.novelty.threshold=0.9999",
        "search.novelty.enabled=false",
    )
    (novelty,) = db.execute(
        "SELECT COUNT(*) FROM programs WHERE reason LIKE 'novelty:%'"
    ).fetchone()
    assert novelty == 0
    assert db.execute("SELECT evaluations FROM runs").fetchone()[0] == 40


@pytest.mark.slow
def test_a_run_embeds_through_litellm_against_a_local_server(ray_session, tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("EVOLVE_TEST_EMBEDDING_KEY", "sk-test-embedding")
    sys.path.insert(0, str(Path(__file__).parent))
    from llm_stub import StubLLM

    with StubLLM() as stub:
        db = _run(
            tmp_path,
            "budget.evaluations=12",
            "search.islands=1",
            "search.novelty.enabled=true",
            "search.novelty.model=openai/stub-embedding",
            f"search.novelty.api_base=http://127.0.0.1:{stub.port}/v1",
            "search.novelty.api_key_env=EVOLVE_TEST_EMBEDDING_KEY",
            "search.novelty.threshold=0.99999",
        )
        embedded = [r for r in stub.requests if r.path.endswith("/embeddings")]
    assert embedded, "no embedding request reached the server"
    rows = db.execute(
        "SELECT COUNT(*) FROM llm_calls WHERE model = 'openai/stub-embedding'"
    ).fetchone()[0]
    assert rows == len(embedded)  # every embedding call is recorded like any other call
