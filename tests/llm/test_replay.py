"""llm=replay: answers from a recorded JSONL file, matched by prompt hash; export from a run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from evolve.mutation.client import LLMClient
from evolve.mutation.replay import export_replay, prompt_text

A = [{"role": "system", "content": "sys"}, {"role": "user", "content": "prompt A"}]
B = [{"role": "system", "content": "sys"}, {"role": "user", "content": "prompt B"}]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _client(path: Path, model: str = "evolve-replay/strict") -> LLMClient:
    cfg = {"model": model, "replay_file": str(path), "temperature": 0.8, "max_tokens": 100}
    cfg.update({"timeout_s": 5.0, "max_retries": 2})
    return LLMClient.from_config(cfg)


def _ask(client, messages, seed=0):
    return asyncio.run(client.acomplete(client.models[0], messages, seed=seed))


def test_answers_by_prompt_in_recorded_order(tmp_path):
    f = _write(
        tmp_path / "r.jsonl",
        [
            {"prompt": prompt_text(A), "response": "A1"},
            {"messages": B, "response": "B1"},
            {"prompt": prompt_text(A), "response": "A2"},
            {"prompt": prompt_text(A), "response": None},  # a recorded failure: skipped
        ],
    )
    client = _client(f)
    answers = [_ask(client, m).text for m in (A, B, A, A)]
    assert answers == ["A1", "B1", "A2", "A1"]  # repeats in file order, then round again
    assert _ask(client, B).cost_usd == 0.0


def test_replay_is_deterministic(tmp_path):
    f = _write(tmp_path / "r.jsonl", [{"messages": A, "response": f"A{i}"} for i in range(3)])
    runs = []
    for name in ("one", "two"):
        g = tmp_path / f"{name}.jsonl"
        g.write_text(f.read_text())  # a fresh recording (its own counters) each time
        client = _client(g)
        runs.append([_ask(client, A, seed=s).text for s in range(5)])
    assert runs[0] == runs[1] == ["A0", "A1", "A2", "A0", "A1"]


def test_a_recorded_seed_picks_its_answer(tmp_path):
    f = _write(
        tmp_path / "r.jsonl",
        [
            {"messages": A, "response": "first", "seed": 7},
            {"messages": A, "response": "second", "seed": 9},
        ],
    )
    client = _client(f)
    assert [_ask(client, A, seed=s).text for s in (9, 7, 9)] == ["second", "first", "second"]


def test_missing_prompt_is_a_recorded_error_not_a_crash(tmp_path):
    f = _write(tmp_path / "r.jsonl", [{"messages": A, "response": "A1"}])
    r = _ask(_client(f), B)
    assert r.text is None and r.attempts == 1  # not retried
    assert "no recorded answer" in r.error and "evolve-replay/local" in r.error


def test_missing_prompt_falls_back_to_the_local_mutator(tmp_path):
    import evolve
    from evolve.mutation.prompts import ParentView, build_messages
    from evolve.program import apply_response

    f = _write(tmp_path / "r.jsonl", [{"messages": A, "response": "A1"}])
    problem = evolve.load_problem("erdos/min_overlap")
    msgs = build_messages(problem, ParentView(problem.initial_code, 0.5))
    r = _ask(_client(f, "evolve-replay/local"), msgs, seed=4)
    child, mode = apply_response(problem.initial_code, r.text)
    assert mode == "diff" and child != problem.initial_code


def test_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        _client(bad)


def test_export_writes_answered_calls_in_order(tmp_path):
    from evolve.population.database import Database

    db = Database(tmp_path / "evolve.db")
    db.start_run("r1", "p", 0, {}, {})
    rows = [("prompt A", "A1"), ("prompt B", None), ("prompt A", "A2")]
    for prompt, response in rows:
        db.record_llm_call(
            "r1", {"island": 0, "model": "m", "prompt": prompt, "response": response}
        )
    db.close()
    out = tmp_path / "calls.jsonl"
    assert export_replay(tmp_path / "evolve.db", out) == 2
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["prompt"], r["response"]) for r in recs] == [("prompt A", "A1"), ("prompt A", "A2")]
    assert recs[0]["model"] == "m" and recs[0]["island"] == 0
    with pytest.raises(ValueError, match="does not exist"):
        export_replay(tmp_path / "nope.db", out)
