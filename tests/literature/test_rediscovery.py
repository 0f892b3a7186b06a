"""Rediscovery: a known construction is recognised under the problem's symmetries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evolve.literature import check
from evolve.literature.canonical import golomb_canonical
from evolve.problem import load_problem

OGR12 = [0, 2, 6, 24, 29, 40, 43, 55, 68, 75, 76, 85]


@pytest.mark.parametrize(
    "marks",
    [
        OGR12,
        [m + 1000 for m in OGR12],  # translated
        [85 - m for m in OGR12],  # reflected
        [500 - m for m in reversed(OGR12)],  # reflected, translated, listed in another order
    ],
)
def test_golomb_ruler_rediscovered_up_to_translation_and_reflection(marks):
    p = load_problem("erdos/golomb")
    outs = {"marks": np.array(marks)}
    ev = p.score(outs)
    assert ev.valid and ev.score == 85
    v = check(p, outs, ev)
    assert v.status == "rediscovers_known"
    assert v.matched["file"] == "constructions/optimal_n1_28.json"
    assert v.message().startswith("rediscovers the known construction")
    assert "optimal_n1_28.json" in v.message()


def test_golomb_rediscovery_for_another_instance_from_the_table():
    p = load_problem("erdos/golomb", params={"n": 10})
    ruler = json.loads((p.path / "constructions/optimal_n1_28.json").read_text())["data"]["rulers"][
        "10"
    ]
    outs = {"marks": np.array([55 - m for m in ruler])}
    v = check(p, outs, p.score(outs))
    assert v.status == "rediscovers_known"
    assert v.best_known == 55  # from known.yaml's values_by_n table


def test_golomb_fallback_canonical_agrees_with_the_evaluator():
    p = load_problem("erdos/golomb")
    for marks in (OGR12, [85 - m for m in OGR12], [7, 3, 1, 0]):
        outs = {"marks": np.array(marks)}
        assert golomb_canonical(outs, {})[1] == p.evaluator_module.canonical(outs, {})


def test_each_instance_is_matched_against_its_own_ruler():
    p = load_problem("erdos/golomb", params={"n": 11})
    ruler = json.loads((p.path / "constructions/optimal_n1_28.json").read_text())["data"]["rulers"][
        "11"
    ]
    outs = {"marks": np.array(ruler)}
    v = check(p, outs, p.score(outs))
    assert v.status == "rediscovers_known" and v.best_known == 72


def test_circle_packing_rediscovered_under_rotation_and_permutation():
    p = load_problem("packing/circles")
    rows = np.array(
        json.loads((p.path / "constructions/alphaevolve2025_n26.json").read_text())["data"][
            "circles"
        ]
    )
    perm = np.random.default_rng(0).permutation(len(rows))
    rows = rows[perm]
    outs = {
        "centers": np.c_[1.0 - rows[:, 1], rows[:, 0]],
        "radii": rows[:, 2],
    }  # rotated by 90 degrees
    ev = p.score(outs)
    assert ev.valid
    v = check(p, outs, ev)
    assert v.status == "rediscovers_known"
    assert v.matched["file"] == "constructions/alphaevolve2025_n26.json"


def test_a_different_construction_is_not_matched(tiny):
    outs = {"x": np.array([0, 1, 2, 3, 5])}
    v = check(tiny, outs, tiny.score(outs))
    assert v.status == "matches_known"
    assert v.matched["kind"] == "value"
