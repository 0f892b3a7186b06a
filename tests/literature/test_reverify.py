"""The gate before improves_known: exact verifier, fresh re-run, identical outputs, re-score."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evolve.literature import check
from evolve.problem import load_problem

DETERMINISTIC = "import numpy as np\n\ndef solve():\n    return {'x': np.arange(6)}\n"
DETERMINISTIC_BIG = "import numpy as np\n\ndef solve():\n    return {'x': np.arange(20, 28)}\n"
UNSEEDED = (
    "import random\nimport numpy as np\n\n"
    "def solve():\n    return {'x': np.array([random.randrange(10**9) for _ in range(6)])}\n"
)
CLOCK = "import time\nimport numpy as np\n\ndef solve():\n    return {'x': np.full(6, time.time_ns() % 10**9)}\n"
CRASHES = "def solve():\n    raise RuntimeError('only worked once')\n"
SLEEPS = "import time\n\ndef solve():\n    time.sleep(60)\n"


def _run_once(problem, code):
    """First run, as the engine would: sandbox, then the trusted evaluator."""
    from evolve.evaluators.harness import sandbox_request
    from evolve.sandbox import run

    res = run(sandbox_request(problem, code))
    assert res.status == "ok", res.error
    return res.outputs, problem.score(res.outputs)


def test_improves_known_only_after_rerun_and_exact_verification(tiny):
    outs, ev = _run_once(tiny, DETERMINISTIC)
    v = check(tiny, outs, ev, code=DETERMINISTIC, rerun=True)
    assert v.status == "improves_known"
    assert v.reverified and not v.unconfirmed_improvement
    assert v.rerun["identical"] and v.rerun["status"] == "ok"
    assert v.verification["valid"] and v.verification["method"] == "integer arithmetic"
    msg = v.message()
    assert msg.startswith(
        "candidate improvement on the best known value as of 2026-08 "
        "(Test and Example, J. Tiny Problems 1 (2020)), re-verified"
    )
    assert "record" not in msg.lower() and "discover" not in msg.lower()
    # 6 beats the verified 5 but not the disputed claim of 7: the report says which.
    assert "does not beat the disputed claim 7 (Dubious et al." in msg
    json.dumps(v.to_dict())


def test_improvement_that_also_beats_the_disputed_claim(tiny):
    outs, ev = _run_once(tiny, DETERMINISTIC_BIG)
    v = check(tiny, outs, ev, code=DETERMINISTIC_BIG, rerun=True)
    assert v.status == "improves_known"
    against = {c["against"]: c["outcome"] for c in v.compared_against}
    assert against == {"verified": "improves", "claimed": "improves"}
    assert "also beats the disputed claim 7" in v.message()


@pytest.mark.parametrize("code", [UNSEEDED, CLOCK], ids=["random-without-seed", "clock"])
def test_nondeterministic_child_never_improves_known(tiny, code):
    outs, ev = _run_once(tiny, code)
    assert ev.valid and ev.score == 6
    v = check(tiny, outs, ev, code=code, rerun=True)
    assert v.status != "improves_known"
    assert v.status == "matches_known" and v.unconfirmed_improvement and not v.reverified
    assert "the re-run gave different outputs" in v.reason and "not deterministic" in v.reason
    assert v.rerun["identical"] is False
    assert "NOT re-verified" in v.message()


def test_rerun_that_crashes_is_recorded_with_the_reason(tiny):
    outs = {"x": np.arange(6)}
    v = check(tiny, outs, tiny.score(outs), code=CRASHES, rerun=True)
    assert v.status == "matches_known" and v.unconfirmed_improvement
    assert "the re-run in a fresh sandbox ended with crash" in v.reason
    assert "only worked once" in v.reason


def test_rerun_giving_other_deterministic_outputs_is_not_confirmed(tiny):
    outs = {"x": np.array([5, 4, 3, 2, 1, 0])}  # claimed to come from DETERMINISTIC, but does not
    v = check(tiny, outs, tiny.score(outs), code=DETERMINISTIC, rerun=True)
    assert v.status == "matches_known" and v.unconfirmed_improvement
    assert "differs at" in v.reason


def test_rerun_timeout_is_not_confirmed(tmp_path):
    from lit_helpers import make_tiny_problem

    folder = make_tiny_problem(tmp_path / "fast")
    text = (folder / "problem.yaml").read_text().replace("time_s: 20", "time_s: 1")
    (folder / "problem.yaml").write_text(text)
    p = load_problem(folder)
    outs = {"x": np.arange(6)}
    v = check(p, outs, p.score(outs), code=SLEEPS, rerun=True)
    assert v.status == "matches_known" and v.unconfirmed_improvement
    assert "ended with timeout" in v.reason


def test_without_code_or_rerun_an_improvement_is_not_confirmed(tiny):
    outs = {"x": np.arange(6)}
    ev = tiny.score(outs)
    no_code = check(tiny, outs, ev)
    assert no_code.status == "matches_known" and no_code.unconfirmed_improvement
    assert no_code.reason == "no program was given to re-run"
    not_asked = check(tiny, outs, ev, code=DETERMINISTIC)
    assert not_asked.reason == "the re-run in a fresh sandbox was not requested"
    assert not_asked.rerun is None


def test_exact_verifier_rejection_is_below_known(tiny):
    outs = {"x": np.array([0, 1, 2, 3, 4, 7])}
    v = check(tiny, outs, tiny.score(outs), code=DETERMINISTIC, rerun=True)
    assert v.status == "below_known"
    assert "the exact verifier rejects the outputs: entry 7 is forbidden" in v.reason
    assert v.rerun is None  # no re-run for a result the verifier already rejected


def test_exact_value_that_does_not_beat_is_decided_by_the_exact_value(tiny):
    outs = {"x": np.array([0, 1, 2, 3, 4, 13])}  # float score 6, exact value 5
    v = check(tiny, outs, tiny.score(outs), code=DETERMINISTIC, rerun=True)
    assert v.status == "matches_known" and not v.unconfirmed_improvement
    assert "the exact verifier gives 5.0, which does not beat 5.0" in v.reason


def test_problem_without_verify_cannot_improve_and_says_why(tmp_path):
    from lit_helpers import make_tiny_problem

    p = load_problem(make_tiny_problem(tmp_path / "noverify", verify=False))
    outs, ev = _run_once(p, DETERMINISTIC)
    v = check(p, outs, ev, code=DETERMINISTIC, rerun=True)
    assert v.status == "matches_known" and v.unconfirmed_improvement
    assert "has no exact verifier" in v.reason
    assert v.verification is None


def _run_db(tmp_path, code, score):
    """A real run database holding one valid program (#1 of run r1)."""
    from evolve.population.database import Database

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "run.db"
    db = Database(path)
    db.start_run("r1", "tiny", 0, {}, {})
    ev = {"status": "ok", "valid": True, "score": score, "fitness": score}
    assert db.record_program("r1", {"code": code, "code_hash": "h", "evaluation": ev}) == 1
    db.close()
    return path


def test_check_program_from_a_run_database(tmp_path, tiny):
    from evolve.literature import check_program

    d = check_program(tiny, _run_db(tmp_path, DETERMINISTIC, 6.0), "r1", 1)
    assert d["status"] == "improves_known" and d["reverified"] and d["program_id"] == 1
    assert d["message"].startswith("candidate improvement on the best known value as of 2026-08")


def test_check_program_nondeterministic_or_broken_is_never_an_improvement(tmp_path, tiny):
    from evolve.literature import check_program

    d = check_program(tiny, _run_db(tmp_path, UNSEEDED, 6.0), "r1", 1)
    assert d["status"] == "matches_known" and d["unconfirmed_improvement"]
    d = check_program(tiny, _run_db(tmp_path / "b", CRASHES, 6.0), "r1", 1)
    assert d["status"] == "matches_known" and "gave no valid outputs (crash" in d["reason"]
    with pytest.raises(ValueError, match="no program 2"):
        check_program(tiny, _run_db(tmp_path / "c", DETERMINISTIC, 6.0), "r1", 2)
