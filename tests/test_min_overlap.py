"""The min_overlap evaluator on hand-checkable cases and the published constructions."""

import json

import numpy as np
import pytest

import evolve
from evolve.evaluators.harness import evaluate_code

P = evolve.load_problem("erdos/min_overlap")


def test_constant_half_gives_half():
    for n in (1, 2, 10, 51):
        ev = P.score({"h": np.full(n, 0.5)})
        assert ev.valid and ev.score == pytest.approx(0.5, abs=1e-15)


def test_rescaling_uses_array_length():
    # Heights 0.25 rescale to 0.5: the same bound as constant 1/2.
    assert P.score({"h": [0.25] * 8}).score == pytest.approx(0.5)


def test_two_step_by_hand():
    # h = (0, 1) on [0, 2]: sum = 1 = n/2. Shift k=1: h[1]*(1-h[0]) = 1; bound = 2/2 * 1 = 1.
    ev = P.score({"h": [0.0, 1.0]})
    assert ev.score == pytest.approx(1.0)


@pytest.mark.parametrize(
    "name, recomputed",
    [("haugland2016_51step", 0.38092685343308696), ("alphaevolve2025_95step", 0.38092303510845016)],
)
def test_published_constructions(name, recomputed):
    d = json.loads((P.path / "constructions" / f"{name}.json").read_text())
    ev = P.score({"h": d["data"]["values"]})
    assert ev.valid
    assert ev.score == pytest.approx(recomputed, abs=1e-9)
    assert ev.score == pytest.approx(d["published_value"], abs=1e-6)


@pytest.mark.parametrize(
    "h, status, words",
    [
        ([0.5, -0.1, 0.5], "invalid", "negative"),
        ([1.0, 0.0, 0.0, 0.0], "invalid", "exceeds 1"),
        ([0.0, 0.0], "invalid", "zero"),
        ([0.5, float("nan")], "bad_output", "NaN"),
        ([[0.5, 0.5]], "bad_output", "dimension"),
        ([], "bad_output", "at least"),
    ],
)
def test_invalid_heights_rejected_with_reason(h, status, words):
    ev = P.score({"h": h})
    assert not ev.valid and ev.status == status and words in ev.error


def test_reported_size_is_ignored():
    ev = P.score({"h": np.full(10, 0.5), "n": 10.9999999})
    assert ev.status == "bad_output" and "unexpected output" in ev.error


def test_seed_program_runs_in_sandbox_and_is_poor():
    ev = evaluate_code(P, P.initial_code)
    assert ev.valid and ev.score == pytest.approx(0.5)


def test_infinite_loop_is_killed_as_timeout():
    code = "def solve():\n    while True:\n        pass\n"
    ev = evaluate_code(P, code, timeout=1.0)
    assert ev.status == "timeout" and not ev.valid
