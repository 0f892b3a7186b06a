"""erdos/sums_differences: hand-checked sets, AlphaEvolve's U1, rejections, numba vs numpy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evolve.problem import load_problem

P = load_problem("erdos/sums_differences")
EV = P.evaluator_module


def score(u):
    return P.score({"U": np.array(u, dtype=np.int64)})


def test_hand_checked_set():
    # U = {0, 1, 3}: U+U = {0,1,2,3,4,6} (6), U-U = {-3..3} (7), max 3
    ev = score([3, 0, 1])
    assert ev.valid
    assert ev.metrics["sumset"] == 6 and ev.metrics["difference_set"] == 7
    assert ev.score == pytest.approx(1 + math.log(7 / 6) / math.log(7), abs=1e-15)


def test_alphaevolve_u1_reproduces_its_value():
    data = json.loads((P.path / "constructions/alphaevolve2025_U1_2003.json").read_text())
    u = np.array(data["data"]["U"])
    ev = score(u)
    assert ev.valid and ev.score == pytest.approx(1.1479888965092757, abs=1e-9)
    ver = EV.verify({"U": u}, {})
    assert ver.valid and ver.value == pytest.approx(1.1479888965092757, abs=1e-12)
    assert "|U+U| = 93803" in ver.reason and "|U-U| = 807667" in ver.reason


def test_invalid_sets_are_rejected_with_the_reason():
    assert "U must contain 0" in score([1, 2, 5]).error
    assert "repeated element 2" in score([0, 2, 2, 5]).error
    assert "out of range" in score([0, -1, 4]).error
    assert "out of range" in score([0, 2**26]).error
    assert "positive integer" in score([0]).error
    assert not EV.verify({"U": np.array([1, 2])}, {}).valid


def test_numba_matches_numpy_on_random_sets():
    rng = np.random.default_rng(4)
    for _ in range(200):
        top = int(rng.integers(1, 5000))
        size = int(rng.integers(1, min(top, 200) + 1))
        u = np.unique(np.concatenate([[0, top], rng.integers(0, top + 1, size=size)]))
        assert EV.sum_difference_counts(u) == EV.sum_difference_counts_numpy(u)
        a, b = EV.evaluate({"U": u}, {}), EV.score_numpy({"U": u}, {})
        assert (a.valid, a.score, a.error) == (b.valid, b.score, b.error)
        assert EV.verify({"U": u}, {}).value == pytest.approx(a.score, abs=1e-14)
