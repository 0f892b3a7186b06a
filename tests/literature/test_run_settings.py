"""The literature check follows the run and the problem: the run's time limit for its re-runs,
problem.yaml's direction (a known.yaml that disagrees is an error), and the problem's
tolerance when it compares a result with a published construction."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from lit_helpers import make_tiny_problem

import evolve
from evolve import literature
from evolve.literature.known import KnownError

SLOW_BEST = "import time\n\ndef solve():\n    time.sleep(1.5)\n    return {'x': list(range(6))}\n"


def test_a_direction_that_disagrees_with_problem_yaml_is_an_error(tmp_path):
    root = make_tiny_problem(tmp_path / "tiny")
    known = root / "known.yaml"
    known.write_text(known.read_text().replace("direction: max", "direction: min"))
    problem = evolve.load_problem(root)
    outputs = {"x": np.arange(3)}
    with pytest.raises(KnownError, match="make them agree") as exc:
        literature.check(problem, outputs, problem.score(outputs))
    assert "\n" not in str(exc.value) and "'min'" in str(exc.value)


def test_the_re_run_gets_the_runs_time_limit_not_the_problems(tmp_path):
    root = make_tiny_problem(tmp_path / "tiny")
    spec = root / "problem.yaml"
    spec.write_text(spec.read_text().replace("time_s: 20", "time_s: 1"))
    problem = evolve.load_problem(root)
    outputs = {"x": np.arange(6)}  # 6 beats the known 5
    ev = problem.score(outputs)
    default = literature.check(problem, outputs, ev, code=SLOW_BEST, rerun=True)
    assert default.status == "matches_known" and default.unconfirmed_improvement, default
    assert "timeout" in default.reason
    raised = literature.check(problem, outputs, ev, code=SLOW_BEST, rerun=True, timeout_s=20)
    assert raised.status == "improves_known" and raised.reverified, raised


def _float_problem(root, tolerance: float):
    root.mkdir(parents=True)
    (root / "problem.yaml").write_text(
        textwrap.dedent(f"""
            name: test/floats
            title: A float construction
            direction: max
            tolerance: {tolerance}
            description: "Return y, three floats; the score is their sum."
            outputs:
              y: {{dtype: float, shape: [3]}}
        """)
    )
    (root / "initial.py").write_text("def solve():\n    return {'y': [0.0, 0.0, 0.0]}\n")
    (root / "evaluator.py").write_text(
        "from evolve.evaluators import Evaluation\n\n"
        "def evaluate(outputs, params):\n"
        "    return Evaluation.ok(float(outputs['y'].sum()), 'max')\n"
    )
    (root / "known.yaml").write_text(
        textwrap.dedent("""
            id: float_test
            as_of: "2026-01"
            direction: max
            best_known: {value: 0.6, bound_kind: lower, citation: "Float (2020)", date: "2020",
                         status: verified_recomputed}
            constructions:
              - file: constructions/c.json
        """)
    )
    (root / "constructions").mkdir()
    (root / "constructions" / "c.json").write_text(
        '{"attribution": "Float (2020)", "published_value": 0.6, "data": {"y": [0.1, 0.2, 0.3]}}'
    )
    return evolve.load_problem(root)


@pytest.mark.parametrize(
    "scale, same", [(1 + 3e-8, True), (1 - 3e-8, True), (1 + 1e-4, False), (1.0, True)]
)
def test_rediscovery_compares_within_the_problems_tolerance(tmp_path, scale, same):
    problem = _float_problem(tmp_path / "floats", tolerance=1e-6)
    outputs = {"y": np.array([0.1, 0.2, 0.3]) * scale}
    v = literature.check(problem, outputs, problem.score(outputs))
    assert (v.status == "rediscovers_known") == same, v
