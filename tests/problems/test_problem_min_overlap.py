"""erdos/min_overlap: hand-checked bounds, published step functions, exact verifier, numba vs numpy."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from evolve.problem import load_problem

P = load_problem("erdos/min_overlap")
EV = P.evaluator_module


def heights(name):
    return np.array(
        json.loads((P.path / f"constructions/{name}.json").read_text())["data"]["values"]
    )


def brute_exact(h):
    """The bound straight from the definition, in Fractions (small n only)."""
    hs = [Fraction(float(v)) for v in h]
    n = len(hs)
    total = sum(hs)
    g = [v * n / (2 * total) for v in hs]
    best = max(
        sum(g[i + k] * (1 - g[i]) for i in range(n) if 0 <= i + k < n) for k in range(-n + 1, n)
    )
    return best * 2 / n


def test_constant_half_gives_one_half():
    ev = P.score({"h": np.full(10, 0.5)})
    assert ev.valid and ev.score == pytest.approx(0.5, abs=1e-15)
    ver = EV.verify({"h": np.full(10, 0.5)}, {})
    assert ver.valid and ver.exact_value == "1/2"


def test_two_steps_by_hand():
    # h = (1, 0) rescaled to sum 1: already; shifts give 0, 1*(1-0) = 1 at k=-1.. -> bound 1
    ev = P.score({"h": np.array([1.0, 0.0])})
    assert ev.score == pytest.approx(1.0)
    assert EV.verify({"h": np.array([1.0, 0.0])}, {}).exact_value == "1/1"


@pytest.mark.parametrize(
    ("name", "recorded"),
    [("haugland2016_51step", 0.3809268534), ("alphaevolve2025_95step", 0.3809230351)],
)
def test_published_step_functions_reproduce_their_values(name, recorded):
    h = heights(name)
    ev = P.score({"h": h})
    assert ev.valid and ev.score == pytest.approx(recorded, abs=1e-9)
    ver = EV.verify({"h": h}, {})
    assert ver.valid and ver.value == pytest.approx(recorded, abs=1e-9)


def test_exact_bound_matches_the_definition():
    rng = np.random.default_rng(6)
    for n in (1, 2, 3, 8, 21):
        h = rng.uniform(0.05, 0.6, size=n)
        value, clipped = EV.exact_bound(h)
        assert clipped == 0 and value == brute_exact(h)


def test_capped_mass_is_added_to_the_bound():
    # Haugland's transcription rescales its 1.0 heights to just above 1: the verifier caps them
    # and adds the lost mass, so its bound is a rigorous upper bound slightly above the float one.
    value, clipped = EV.exact_bound(heights("haugland2016_51step"))
    assert 0 < clipped < Fraction(1, 10**15)
    assert float(value) == pytest.approx(0.38092685343308696, abs=1e-15)


def test_invalid_step_functions_are_rejected():
    assert "negative height" in P.score({"h": np.array([0.5, -0.1, 0.5])}).error
    assert "exceeds 1" in P.score({"h": np.array([1.0, 0.0, 0.0, 0.0])}).error
    assert "all heights are zero" in P.score({"h": np.zeros(4)}).error
    assert not EV.verify({"h": np.array([1.0, 0.0, 0.0, 0.0])}, {}).valid


def test_numba_matches_numpy_on_random_heights():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 400))
        h = rng.uniform(0, 1, size=n) * 0.5
        a, b = EV.evaluate({"h": h}, {}), EV.score_numpy({"h": h}, {})
        assert a.valid == b.valid
        if a.valid:
            assert a.score == pytest.approx(b.score, abs=1e-12)
            assert EV.verify({"h": h}, {}).value == pytest.approx(a.score, abs=1e-12)
