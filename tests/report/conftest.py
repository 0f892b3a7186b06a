"""Runs shared by the report tests: one real short run with the local mutator and one against
the stub LLM (session-scoped: an engine run costs seconds), each made through `evolve run`."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_stub import StubLLM, reply

from evolve.cli import main

# Planted in every stub answer, hence in children's code, diffs and the LLM answers: the
# report must show it as text.
PAYLOAD = "</pre><script>alert('x')</script><img src=http://example.com/x.png>"


def _run_dir(runs: Path) -> Path:
    (run_dir,) = [p for p in (runs / "erdos-min_overlap").iterdir() if p.is_dir()]
    return run_dir


def stub_edit(k: int) -> str:
    """A valid SEARCH/REPLACE edit of every min_overlap child: two more steps, and the payload
    as a comment (so it lands in the code and the diff)."""
    a, b = 0.30 + 0.01 * k, 0.70 - 0.01 * k
    return (
        f"Idea {k}: add two steps. {PAYLOAD}\n\n<<<<<<< SEARCH\n    h = np.array([\n=======\n"
        f"    h = np.array([\n        # {PAYLOAD}\n        {a:.2f}, {b:.2f},\n>>>>>>> REPLACE\n"
    )


@pytest.fixture(scope="session")
def local_run(ray_session, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("local-runs")
    rc = main(
        [
            "run",
            f"runs_dir={runs}",
            "report.live=false",
            "budget.evaluations=60",
            "search.islands=2",
        ]
    )
    assert rc == 0
    return _run_dir(runs)


@pytest.fixture(scope="session")
def stub_run(ray_session, tmp_path_factory, monkeypatch_session) -> Path:
    runs = tmp_path_factory.mktemp("stub-runs")
    monkeypatch_session.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    answers = [reply(stub_edit(k), prompt_tokens=900, completion_tokens=60) for k in range(80)]
    with StubLLM(default=reply(stub_edit(99))) as stub:
        stub.script(reply("no edit here, " + PAYLOAD), *answers)
        rc = main(
            [
                "run",
                f"runs_dir={runs}",
                "report.live=false",
                "budget.evaluations=24",
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
    return _run_dir(runs)


@pytest.fixture(scope="session")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()
