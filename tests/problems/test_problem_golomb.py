"""erdos/golomb: hand-checked rulers, the optimal table, rejections, numba vs numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evolve.problem import load_problem

P = load_problem("erdos/golomb")
EV = P.evaluator_module
RULERS = json.loads((P.path / "constructions/optimal_n1_28.json").read_text())["data"]["rulers"]


def score(marks, n=None):
    problem = P if n is None else load_problem("erdos/golomb", params={"n": n})
    return problem.score({"marks": np.array(marks, dtype=np.int64)})


def test_hand_checked_ruler():
    # differences of 0, 1, 4, 6: 1 3 6 / 4 5 / 2 -- all distinct, length 6
    ev = score([0, 1, 4, 6], n=4)
    assert ev.valid and ev.score == 6 and ev.fitness == -6


def test_translation_and_order_do_not_matter():
    assert score([106, 101, 110, 100], n=4).score == 10  # 0 1 6 10 shifted by 100, shuffled
    assert score([-3, -2, 1, 3], n=4).score == 6


@pytest.mark.parametrize("n", range(2, 29))
def test_optimal_rulers_reproduce_their_lengths(n):
    known = EV.optimal_lengths()[n]
    ev = score(RULERS[str(n)], n=n)
    assert ev.valid, ev.error
    assert ev.score == known and ev.metrics["gap_to_optimal"] == 0
    assert EV.verify({"marks": np.array(RULERS[str(n)])}, {"n": n}).exact_value == str(known)


def test_repeated_difference_is_named():
    ev = score([0, 1, 2, 6], n=4)
    assert not ev.valid and ev.status == "invalid"
    assert ev.error.startswith("repeated difference 1: 1-0 and 2-1")
    assert "repeated difference 1" in EV.verify({"marks": np.array([0, 1, 2, 6])}, {"n": 4}).reason


def test_repeated_mark_wrong_length_and_range():
    assert "repeated mark 4" in score([0, 1, 4, 4], n=4).error
    assert "wrong length" in score([0, 1, 4, 9, 11]).error  # 5 marks for n = 12
    assert "out of range" in score([0, 1, 4, 2**41], n=4).error
    assert not EV.verify({"marks": np.array([0, 1, 4])}, {"n": 12}).valid


def test_sparse_rulers_use_the_sorting_path():
    marks = [0, 10**9, 3 * 10**9, 7 * 10**9]
    assert score(marks, n=4).score == 7 * 10**9
    assert "repeated difference" in score([0, 10**9, 2 * 10**9, 7 * 10**9], n=4).error


def test_canonical_form_identifies_reflections():
    a = EV.canonical({"marks": np.array([0, 1, 4, 6])}, {"n": 4})
    assert a == (0, 1, 4, 6)
    assert a == EV.canonical({"marks": np.array([10, 12, 15, 16])}, {"n": 4})  # reflected


def test_numba_matches_numpy_on_random_rulers():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(2, 15))
        top = int(rng.choice([n * n, 3 * n * n, 10**7]))
        m = np.sort(rng.choice(top, size=n, replace=False)).astype(np.int64)
        assert EV.repeated_difference(m) == EV.repeated_difference_numpy(m)
        params = {"n": n}
        a, b = EV.evaluate({"marks": m}, params), EV.score_numpy({"marks": m}, params)
        assert (a.valid, a.score, a.error) == (b.valid, b.score, b.error)
        assert EV.verify({"marks": m}, params).valid == a.valid
