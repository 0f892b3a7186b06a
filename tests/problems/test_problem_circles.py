"""packing/circles: exact validity, published packings, rejections, numba vs numpy."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from evolve.problem import load_problem

P = load_problem("packing/circles")
EV = P.evaluator_module


def load(n):
    data = json.loads((P.path / f"constructions/alphaevolve2025_n{n}.json").read_text())
    c = np.array(data["data"]["circles"])
    return {"centers": c[:, :2].copy(), "radii": c[:, 2].copy()}


def score(centers, radii, n=None):
    n = len(radii) if n is None else n
    return load_problem("packing/circles", params={"n": n}).score(
        {"centers": np.array(centers, dtype=float), "radii": np.array(radii, dtype=float)}
    )


def test_hand_checked_four_circles():
    # four circles of radius 1/4 in the four quadrants, pairwise tangent: sum exactly 1
    c = [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    ev = score(c, [0.25] * 4)
    assert ev.valid and ev.score == 1.0
    ver = EV.verify({"centers": np.array(c), "radii": np.full(4, 0.25)}, {"n": 4})
    assert ver.valid and ver.exact_value == "1/1"


@pytest.mark.parametrize(("n", "recorded"), [(26, 2.6358627564136983), (32, 2.937944526205518)])
def test_published_packings_reproduce_their_values(n, recorded):
    out = load(n)
    ev = load_problem("packing/circles", params={"n": n}).score(out)
    assert ev.valid, ev.error
    assert ev.score == pytest.approx(recorded, abs=1e-9)
    ver = EV.verify(out, {"n": n})
    assert ver.valid and abs(Fraction(ver.exact_value) - Fraction(recorded)) < Fraction(1, 10**9)


def test_overlap_is_named():
    ev = score([[0.3, 0.5], [0.6, 0.5]], [0.2, 0.2])
    assert not ev.valid and ev.error.startswith("overlap: circles 0 and 1 overlap")


def test_out_of_square_negative_radius_wrong_length():
    assert score([[0.1, 0.5]], [0.2]).error.startswith("out of range: circle 0")
    assert score([[0.9, 0.5]], [0.2]).error.startswith("out of range: circle 0")
    assert score([[0.5, 0.5]], [-0.1]).error.startswith("negative radius")
    assert score([[0.5, 0.5]], [0.1], n=26).error.startswith("wrong length: expected n = 26")


def _float_tangent_exact_overlap():
    """Two circles tangent in floating point (d^2 == (r1 + r2)^2 as floats) that overlap exactly."""
    rng = np.random.default_rng(5)
    while True:
        r1, r2 = rng.uniform(0.05, 0.2, size=2)
        angle = rng.uniform(0, np.pi / 2)
        c1 = np.array([0.3, 0.3])
        c2 = c1 + (r1 + r2) * np.array([np.cos(angle), np.sin(angle)])
        d2 = float(np.sum((c1 - c2) ** 2))
        exact = sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(c1, c2, strict=True))
        if d2 >= (r1 + r2) ** 2 and exact < (Fraction(r1) + Fraction(r2)) ** 2:
            return np.stack([c1, c2]), np.array([r1, r2])


def test_float_only_tangency_is_rejected_exactly():
    centers, radii = _float_tangent_exact_overlap()
    ev = score(centers, radii)
    assert not ev.valid and "overlap" in ev.error and "exact d^2" in ev.error
    assert not EV.verify({"centers": centers, "radii": radii}, {"n": 2}).valid
    # shrinking by a relative 1e-12 makes it exactly valid
    assert score(centers, radii * (1 - 1e-12)).valid


def test_touching_a_side_exactly_is_allowed_and_beyond_is_not():
    r = 0.1
    x = 1.0 - r  # fl(x + r) may equal 1 with x + r slightly above 1 in exact arithmetic
    exact_ok = Fraction(x) + Fraction(r) <= 1
    assert score([[x, 0.5]], [r]).valid == exact_ok
    assert score([[r, r]], [r]).valid


def test_numba_matches_numpy_on_random_packings():
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(1, 30))
        centers = rng.uniform(0, 1, size=(n, 2))
        radii = rng.uniform(0, 0.5 / np.sqrt(n), size=n) * (trial % 3 + 0.2)
        if trial % 5 == 0 and n > 1:  # make a float-tangent pair to exercise the exact path
            centers[1] = centers[0] + (radii[0] + radii[1]) * np.array([0.6, 0.8])
        out = {"centers": centers, "radii": radii}
        a, b = EV.evaluate(out, {"n": n}), EV.score_numpy(out, {"n": n})
        assert (a.valid, a.score, a.error) == (b.valid, b.score, b.error)
        assert EV.verify(out, {"n": n}).valid == a.valid
