"""Every built-in problem of this suite: its seed runs in the real sandbox and is valid."""

from __future__ import annotations

import pytest
import yaml

from evolve.evaluators.harness import evaluate_code
from evolve.problem import load_problem

SEEDS = {
    "erdos/min_overlap": 0.5,
    "erdos/golomb": 122,
    "erdos/discrepancy": 44,
    "erdos/sums_differences": 1.1095433583508467,
    "packing/circles": 26 * 0.5 / 6 * (1 - 1e-9),
}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_runs_in_sandbox_and_is_valid(name):
    problem = load_problem(name)
    ev = evaluate_code(problem, problem.initial_code)
    assert ev.valid, ev.error
    assert ev.score == pytest.approx(SEEDS[name], rel=1e-12)
    # the seed is clearly improvable: strictly worse than the best known value
    known = yaml.safe_load((problem.path / "known.yaml").read_text())["best_known"]["value"]
    assert problem.better(known, ev.score)
    # and the strict verifier agrees
    ver = problem.evaluator_module.verify(_outputs_of(problem), dict(problem.params))
    assert ver.valid and ver.value == pytest.approx(ev.score, rel=1e-12)


def _outputs_of(problem):
    """Run the seed in this process (trusted code only: it is our own seed) to get its arrays."""
    ns: dict = {}
    exec(compile(problem.initial_code, "initial.py", "exec"), ns)
    if problem.harness is not None:
        harness: dict = {}
        exec(compile(problem.harness.read_text(), "harness.py", "exec"), harness)
        return problem.check_outputs(harness["run"](ns, dict(problem.params)))
    return problem.check_outputs(ns[problem.entrypoint]())


@pytest.mark.parametrize(
    ("name", "params"),
    [("erdos/golomb", {"n": 14}), ("packing/circles", {"n": 32}), ("erdos/discrepancy", {"C": 1})],
)
def test_seed_follows_the_instance_parameter(name, params):
    problem = load_problem(name, params=params)
    ev = evaluate_code(problem, problem.initial_code)
    assert ev.valid, ev.error
    assert ev.metrics.get("n", ev.metrics.get("C")) == float(next(iter(params.values())))


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_known_yaml_has_the_shared_format(name):
    problem = load_problem(name)
    known = yaml.safe_load((problem.path / "known.yaml").read_text())
    assert known["id"] == problem.literature_id
    assert known["direction"] == problem.direction
    best = known["best_known"]
    for key in ("value", "bound_kind", "citation", "date", "status"):
        assert key in best, key
    assert best["status"] in ("verified_recomputed", "read_only", "disputed")
    for c in known["constructions"]:
        assert (problem.path / c["file"]).exists()
    if name != "erdos/min_overlap":  # its README belongs to the problem's original author
        assert (problem.path / "README.md").exists()
