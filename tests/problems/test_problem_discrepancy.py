"""erdos/discrepancy: hand-checked sequences, rejections, numba vs numpy."""

from __future__ import annotations

import numpy as np
import pytest

from evolve.problem import load_problem

P = load_problem("erdos/discrepancy")
EV = P.evaluator_module
# A maximal sequence for C = 1 (length 11): x_1..x_11.
C1_MAX = [1, -1, -1, 1, -1, 1, 1, -1, -1, 1, 1]


def score(x, C=None):
    problem = P if C is None else load_problem("erdos/discrepancy", params={"C": C})
    return problem.score({"x": np.array(x, dtype=np.int64)})


def test_length_11_with_discrepancy_1():
    ev = score(C1_MAX, C=1)
    assert ev.valid and ev.score == 11 and ev.metrics["discrepancy"] == 1
    assert EV.verify({"x": np.array(C1_MAX)}, {"C": 1}).exact_value == "11"


def test_no_extension_of_the_c1_sequence_is_valid():
    for last in (1, -1):
        ev = score([*C1_MAX, last], C=1)
        assert not ev.valid and "the first 11 terms are a valid sequence" in ev.error


def test_violation_names_d_and_k():
    # d = 2: x_2 + x_4 + x_6 = 3 > 2, while every d = 1 partial sum stays within 2
    x = [-1, 1, -1, 1, -1, 1]
    ev = score(x)
    assert not ev.valid
    assert "d = 2, k = 3" in ev.error and "the first 5 terms" in ev.error
    assert "> C = 2" in EV.verify({"x": np.array(x)}, {"C": 2}).reason


def test_entries_must_be_plus_minus_one():
    ev = score([1, -1, 0, 1])
    assert not ev.valid and ev.error.startswith("out of range: x_3 = 0")
    assert not EV.verify({"x": np.array([1, 2])}, {"C": 2}).valid


def test_numba_matches_numpy_on_random_sequences():
    rng = np.random.default_rng(2)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        x = rng.choice(np.array([-1, 1]), size=n)
        c = int(rng.integers(1, 6))
        assert EV.discrepancy_scan(x, c) == EV.discrepancy_scan_numpy(x, c)
        a, b = EV.evaluate({"x": x}, {"C": c}), EV.score_numpy({"x": x}, {"C": c})
        assert (a.valid, a.score, a.error) == (b.valid, b.score, b.error)
        assert EV.verify({"x": x}, {"C": c}).valid == a.valid


@pytest.mark.parametrize("c", [2, 3])
def test_character_like_sequence_is_valid_up_to_its_known_length(c):
    # x_i = sign of the last non-zero base-3 digit: |partial sums| <= number of 1 digits,
    # so the first failure is at 1...1 (c + 1 ones in base 3) = (3^(c+1) - 1) / 2.
    def chi(i):
        while i % 3 == 0:
            i //= 3
        return 1 if i % 3 == 1 else -1

    n_fail = (3 ** (c + 1) - 1) // 2
    x = np.array([chi(i) for i in range(1, n_fail + 1)])
    assert score(x[:-1], C=c).score == n_fail - 1
    assert not score(x, C=c).valid
