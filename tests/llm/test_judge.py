"""The judge: reading its answers, the offline judge, and runs where it turns children away."""

from __future__ import annotations

import json
import sqlite3

import pytest
from llm_stub import StubLLM, reply

import evolve
from evolve.cli import main
from evolve.mutation.judge import local_answer, local_judgement, parse

SEED = evolve.load_problem("erdos/min_overlap").initial_code


@pytest.mark.parametrize(
    ("text", "accept", "p", "parsed"),
    [
        ('{"verdict": "accept", "p_improve": 0.7, "reason": "plausible"}', True, 0.7, True),
        (
            'Thinking... {"verdict": "REJECT", "p_improve": 0.02, "reason": "no-op"} done',
            False,
            0.02,
            True,
        ),
        ('{"verdict": "reject", "reason": "no"}', False, 0.0, True),  # no chance given
        ('{"verdict": "accept", "p_improve": 7}', True, 1.0, True),  # clipped
        ('{"verdict": "accept", "p_improve": "high"}', True, 0.5, True),
        ("I think it is fine.", True, 0.5, False),  # unreadable: accepted, and it says so
        ("", True, 0.5, False),
        (None, True, 0.5, False),
    ],
)
def test_answers_are_read_defensively(text, accept, p, parsed):
    j = parse(text)
    assert (j.accept, j.p_improve, j.parsed) == (accept, p, parsed)


def _in_block(code: str, old: str, new: str) -> str:
    i = code.index("EVOLVE-BLOCK-START")
    return code[:i] + code[i:].replace(old, new, 1)


def test_the_offline_judge_rejects_only_edits_that_change_nothing():
    docstring = _in_block(SEED, '"""', '"""Now with a better docstring. ')
    assert local_judgement(SEED, docstring).p_improve == 0.0
    assert local_judgement(SEED, _in_block(SEED, "0.5", "0.6")).p_improve == 0.5
    knob = "x = 1\n# EVOLVE-BLOCK-START\ndef solve():\n    unused = 3.0\n    return {'h': [x]}\n# EVOLVE-BLOCK-END\n"
    j = local_judgement(knob, knob.replace("3.0", "3.5"))
    assert not j.accept and "unused" in j.reason
    answer = json.loads(local_answer("## Parent program\n```python\nx = 1\n```\nno child"))
    assert answer["verdict"] == "accept"


@pytest.mark.slow
def test_a_judge_on_a_server_turns_children_away_and_is_audited(ray_session, tmp_path, monkeypatch):
    monkeypatch.setenv("EVOLVE_TEST_JUDGE_KEY", "sk-judge")
    no = reply('{"verdict": "reject", "p_improve": 0.05, "reason": "the stub says no"}')
    with StubLLM(default=no) as stub:
        rc = main(
            [
                "run",
                f"runs_dir={tmp_path}",
                "report.live=false",
                "literature.enabled=false",
                "budget.evaluations=8",
                "search.islands=1",
                "search.judge.enabled=true",
                "search.judge.model=openai/stub-judge",
                f"search.judge.api_base=http://127.0.0.1:{stub.port}/v1",
                "search.judge.api_key_env=EVOLVE_TEST_JUDGE_KEY",
                "search.judge.audit=0.5",
            ]
        )
        asked = [r for r in stub.requests if r.path.endswith("/chat/completions")]
    assert rc == 0
    (db_path,) = tmp_path.glob("*/*/evolve.db")
    db = sqlite3.connect(db_path)
    judged = db.execute("SELECT COUNT(*) FROM llm_calls WHERE template = 'judge'").fetchone()[0]
    assert judged == len(asked) > 0  # every judge call recorded
    assert all("## Proposed program" in r.prompt and "## The edit" in r.prompt for r in asked)
    turned_away = db.execute(
        "SELECT COUNT(*) FROM programs WHERE status = 'rejected' AND reason LIKE 'judge: the stub says no%'"
    ).fetchone()[0]
    audited = db.execute(
        "SELECT COUNT(*) FROM programs WHERE json_extract(metrics, '$.judge_rejected') = 1"
    ).fetchone()[0]
    assert turned_away > 0 and audited == 7  # every counted child after the seed was an audit
    assert turned_away + audited == judged
