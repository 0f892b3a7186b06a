"""Real runs through the engine (Ray, sandbox, SQLite) with the LLM layer on real HTTP."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from llm_helpers import SECRET
from llm_stub import StubLLM, garbage, rate_limited, reply, server_error, slow, truncated

from evolve.cli import main
from evolve.mutation.replay import export_replay

pytestmark = pytest.mark.slow


def _edit(k: int) -> str:
    """A valid SEARCH/REPLACE edit of every min_overlap program this run can make: it inserts
    a different row of heights after the array's opening line, which every child keeps."""
    a, b = 0.30 + 0.01 * k, 0.70 - 0.01 * k
    return (
        f"Idea {k}: add two steps.\n\n<<<<<<< SEARCH\n    h = np.array([\n=======\n"
        f"    h = np.array([\n        {a:.2f}, {b:.2f},\n>>>>>>> REPLACE\n"
    )


def _run_dir(runs: Path) -> Path:
    (run_dir,) = [p for p in (runs / "erdos-min_overlap").iterdir() if p.is_dir()]
    return run_dir


def test_run_against_an_openai_compatible_server(ray_session, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    failures = [
        rate_limited(retry_after=0.2),  # retried after Retry-After, then answered
        server_error(500),  # retried
        garbage(),  # retried
        truncated("<<<<<<< SEARCH\n    h = np.array([\n====="),  # recorded, edit rejected
        reply("I would rather not change anything."),  # no edit: rejected
    ]
    answers = [reply(_edit(k), prompt_tokens=900, completion_tokens=60) for k in range(60)]
    with StubLLM(default=reply(_edit(99))) as stub:
        stub.script(*failures, *answers)
        rc = main(
            [
                "run",
                f"runs_dir={tmp_path}",
                "report.live=false",
                "budget.evaluations=20",
                "llm=openai",
                "llm.model=openai/stub",
                f"llm.api_base=http://127.0.0.1:{stub.port}/v1",
                "llm.backoff_s=0.05",
                "literature.enabled=false",
                "llm.input_cost_per_mtok=2.0",
                "llm.output_cost_per_mtok=8.0",
            ]
        )
        assert rc == 0
        assert stub.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    run_dir = _run_dir(tmp_path)
    db = sqlite3.connect(run_dir / "evolve.db")
    db.row_factory = sqlite3.Row
    calls = [dict(r) for r in db.execute("SELECT * FROM llm_calls ORDER BY id")]
    assert len(calls) >= 19 and {c["model"] for c in calls} == {"openai/stub"}
    answered = [c for c in calls if c["response"]]
    assert all(c["prompt_tokens"] > 0 and c["completion_tokens"] > 0 for c in answered)
    for c in answered:  # dollars from the configured prices, per call
        want = (c["prompt_tokens"] * 2.0 + c["completion_tokens"] * 8.0) / 1e6
        assert c["cost_usd"] == pytest.approx(want)
    assert sum(c["attempts"] for c in calls) >= len(calls) + 3  # the 429, 500 and garbage
    assert any(c["error"] == "truncated: finish_reason=length" for c in calls)
    # Programs: 20 counted evaluations, and rejected answers recorded with the reason.
    counted = db.execute("SELECT COUNT(*) FROM programs WHERE status != 'rejected'").fetchone()
    assert counted[0] == 20
    reasons = [r[0] for r in db.execute("SELECT reason FROM programs WHERE status='rejected'")]
    assert any(r.startswith("malformed") for r in reasons)
    assert any(r.startswith("no_edit") for r in reasons)
    best = db.execute("SELECT MIN(score) FROM programs WHERE valid = 1").fetchone()[0]
    assert best is not None
    # The key appears in no table, nor in the saved config or the log.
    for table in ("llm_calls", "programs", "runs"):
        for row in db.execute(f"SELECT * FROM {table}"):
            assert SECRET not in json.dumps([str(v) for v in row])
    for f in run_dir.rglob("*"):
        if f.is_file() and f.suffix in (".yaml", ".log", ".py", ".json", ".txt", ".html"):
            assert SECRET not in f.read_text(errors="replace"), f


def test_replay_of_a_local_run_reproduces_it(ray_session, tmp_path):
    """With several requests in flight and the pipeline on: the island applies results in
    step order and a replay answers by prompt and seed, so the order requests are sent in
    does not matter."""
    common = [
        "report.live=false",
        "budget.evaluations=16",
        "search.islands=1",
        "search.in_flight_per_island=2",
        "search.pipeline=true",
        "seed=7",
        "literature.enabled=false",
    ]
    assert main(["run", f"runs_dir={tmp_path / 'a'}", "llm=local", *common]) == 0
    first = _run_dir(tmp_path / "a")
    calls = tmp_path / "calls.jsonl"
    assert export_replay(first / "evolve.db", calls) >= 15
    replay = ["llm=replay", f"llm.replay_file={calls}", "llm.diff_probability=1.0"]
    assert main(["run", f"runs_dir={tmp_path / 'b'}", *replay, *common]) == 0
    second = _run_dir(tmp_path / "b")

    def programs(run: Path) -> list[tuple]:
        db = sqlite3.connect(run / "evolve.db")
        return db.execute(
            "SELECT step, code_hash, status, score FROM programs ORDER BY step IS NOT NULL, step"
        ).fetchall()

    assert programs(first) == programs(second)
    db = sqlite3.connect(second / "evolve.db")
    assert db.execute("SELECT COUNT(*) FROM llm_calls WHERE error IS NOT NULL").fetchone()[0] == 0
    assert {r[0] for r in db.execute("SELECT model FROM llm_calls")} == {"evolve-replay/strict"}


def _pipelined_run(tmp_path: Path, pipeline: bool) -> tuple[int, int, int]:
    """(requests, the most in flight at once, how often the next request reached the server
    before the last answer's child was recorded) for a 1-island run with 1 request slot."""
    with StubLLM(default=reply(_edit(99))) as stub:
        stub.script(*[reply(_edit(k)) for k in range(40)])
        runs = tmp_path / f"pipeline-{pipeline}"
        rc = main(
            [
                "run",
                f"runs_dir={runs}",
                "report.live=false",
                "budget.evaluations=10",
                "search.islands=1",
                "search.in_flight_per_island=1",
                f"search.pipeline={str(pipeline).lower()}",
                "sandbox.workers=1",
                "literature.enabled=false",
                "llm=openai",
                "llm.model=openai/stub",
                f"llm.api_base=http://127.0.0.1:{stub.port}/v1",
            ]
        )
        assert rc == 0
    db = sqlite3.connect(_run_dir(runs) / "evolve.db")
    recorded = [
        r[0]
        for r in db.execute("SELECT created_at FROM programs WHERE mode != 'seed' ORDER BY seq")
    ]
    arrivals = [r.wall for r in stub.requests]
    assert len(arrivals) == len(recorded)  # one request per child, no failures
    early = sum(arrivals[i + 1] < recorded[i] for i in range(len(recorded) - 1))
    return len(arrivals), stub.max_active, early


def test_pipeline_starts_the_next_request_while_the_last_child_is_evaluated(ray_session, tmp_path):
    n, most, early = _pipelined_run(tmp_path, pipeline=True)
    assert most == 1  # never more requests in flight than slots
    assert early >= (n - 1) // 2, (n, early)  # the next request did not wait for the score
    n, most, early = _pipelined_run(tmp_path, pipeline=False)
    assert most == 1 and early == 0  # strictly one iteration after another


def _budget_run(tmp_path: Path, stub: StubLLM, *budget: str) -> tuple[int, Path]:
    runs = tmp_path / "runs"
    rc = main(
        [
            "run",
            f"runs_dir={runs}",
            "report.live=false",
            "budget.evaluations=1000",
            *budget,
            "search.islands=2",
            "search.in_flight_per_island=2",
            "sandbox.workers=1",
            "literature.enabled=false",
            "llm=openai",
            "llm.model=openai/stub",
            f"llm.api_base=http://127.0.0.1:{stub.port}/v1",
            "llm.timeout_s=300",
            "llm.input_cost_per_mtok=1000.0",
            "llm.output_cost_per_mtok=1000.0",
        ]
    )
    return rc, _run_dir(runs)


def _cancelled(run: Path) -> list[tuple]:
    db = sqlite3.connect(run / "evolve.db")
    return db.execute(
        "SELECT prompt_tokens, cost_usd, error FROM llm_calls WHERE error LIKE 'cancelled%'"
    ).fetchall()


def test_a_wall_time_budget_cancels_the_requests_in_flight_and_charges_them(
    ray_session, tmp_path, capsys
):
    """Every request after the first few takes 120 s: the run stops at its wall-time budget
    without waiting for them, records each as cancelled with its prompt's estimated price,
    and says by how much it went over."""
    with StubLLM(default=slow(120, _edit(99))) as stub:
        stub.script(*[reply(_edit(k)) for k in range(4)])
        rc, run = _budget_run(tmp_path, stub, "budget.wall_time_s=45")
    assert rc == 0
    cancelled = _cancelled(run)
    assert cancelled, "the slow requests in flight were not recorded as cancelled"
    assert all(pt > 0 and cost > 0 for pt, cost, _ in cancelled), cancelled
    db = sqlite3.connect(run / "evolve.db")
    created, updated = db.execute("SELECT created_at, updated_at FROM runs").fetchone()
    # The slow answers would have taken 120 s: the run did not wait for any of them.
    assert updated - created < 100, updated - created
    out = capsys.readouterr().out
    assert "wall-time budget of 45 s reached" in out
    assert "past the wall-time budget" in out and "cancelled in flight" in out


def test_a_cost_budget_counts_cancelled_requests_and_reports_the_overshoot(
    ray_session, tmp_path, capsys
):
    """Two answers cost $1.90 each against a $3 budget; the requests in flight when the limit
    is reached (slow) are cancelled and charged, and the total over the limit is reported."""
    big = [reply(_edit(k), prompt_tokens=900, completion_tokens=1000) for k in range(2)]
    with StubLLM(default=slow(120, _edit(99))) as stub:
        stub.script(*big)
        rc, run = _budget_run(tmp_path, stub, "budget.max_cost_usd=3.0")
    assert rc == 0
    db = sqlite3.connect(run / "evolve.db")
    total = db.execute("SELECT SUM(cost_usd) FROM llm_calls").fetchone()[0]
    cancelled = _cancelled(run)
    assert cancelled and sum(c for _, c, _ in cancelled) > 0
    assert total > 3.0  # what the run spent, cancelled requests included
    # Not one request waited out its 120 s (every one in flight at the limit was cancelled).
    assert db.execute("SELECT MAX(latency_s) FROM llm_calls").fetchone()[0] < 60
    out = capsys.readouterr().out
    assert "cost budget of $3 reached" in out and "past the cost budget" in out
