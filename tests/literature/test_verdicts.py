"""Verdicts on real known values: every status is reachable, with the fixed wording."""

from __future__ import annotations

import json
import math
from itertools import product

import numpy as np
import pytest

from evolve.literature import STATUSES, Verdict, check
from evolve.problem import load_problem


def _discrepancy_one_sequence() -> np.ndarray:
    """A longest ±1 sequence of discrepancy 1 (length 11), found by brute force."""
    for signs in product((1, -1), repeat=11):
        ok = all(
            abs(sum(signs[d - 1 :: d][:k])) <= 1
            for d in range(1, 12)
            for k in range(1, 12 // d + 1)
        )
        if ok:
            return np.array(signs)
    raise AssertionError("no sequence found")


def test_below_known_on_min_overlap_names_value_date_and_citation():
    p = load_problem("erdos/min_overlap")
    outs = {"h": np.full(10, 0.5)}
    v = check(p, outs, p.score(outs))
    assert v.status == "below_known"
    assert v.best_known == 0.380871
    assert v.reference_value == pytest.approx(
        0.3808703105862199
    )  # the recomputed value is harder to beat
    assert v.as_of == "2026-08" and "EinsteinArena" in v.citation
    assert v.erdos_problem == 36 and v.erdos_status == "open"
    msg = v.message()
    assert msg.startswith("below the best known value 0.380870310586 as of 2026-08 (Together AI")
    assert "Erdős problem 36: open" in msg


def test_below_known_is_also_compared_with_the_disputed_claim():
    p = load_problem("erdos/min_overlap")
    outs = {"h": np.full(10, 0.5)}
    v = check(p, outs, p.score(outs))
    kinds = {c["against"]: c for c in v.compared_against}
    assert kinds["verified"]["value"] == pytest.approx(0.3808703105862199)
    assert kinds["claimed"]["status"] == "disputed" and kinds["claimed"]["value"] == 0.380868
    assert kinds["claimed"]["outcome"] == "below"


def test_matches_known_on_discrepancy_c1_uses_the_per_instance_value():
    p = load_problem("erdos/discrepancy", params={"C": 1})
    outs = {"x": _discrepancy_one_sequence()}
    ev = p.score(outs)
    assert ev.valid and ev.score == 11
    v = check(p, outs, ev)
    assert v.status == "matches_known"
    assert v.matched == {
        "kind": "value",
        "value": 11.0,
        "citation": v.citation,
        "status": "read_only",
    }
    assert v.instance == "C=1"
    assert v.message().startswith("matches the best known value 11 as of 2026-08 (classical")


def test_unreferenced_for_an_instance_beyond_the_table():
    p = load_problem("erdos/golomb", params={"n": 30})
    prime = 31  # Erdős-Turán: 2pk + (k^2 mod p) is a Golomb ruler
    outs = {"marks": np.array([2 * prime * k + (k * k) % prime for k in range(30)])}
    ev = p.score(outs)
    assert ev.valid
    v = check(p, outs, ev)
    assert v.status == "unreferenced"
    assert "no best known value for instance n=30" in v.reason
    assert v.erdos_problem == 30  # still known to be Erdős problem 30
    assert v.message().startswith("no known result to compare with:")


def test_unreferenced_without_known_yaml_or_catalogue_entry(tmp_path):
    from lit_helpers import make_tiny_problem

    p = load_problem(make_tiny_problem(tmp_path / "bare", known=False))
    outs = {"x": np.arange(9)}
    v = check(p, outs, p.score(outs))
    assert v.status == "unreferenced"
    assert "no known.yaml and no catalogue entry" in v.reason


def test_rediscovers_known_min_overlap_construction_after_scaling_and_reflection():
    p = load_problem("erdos/min_overlap")
    h = np.array(
        json.loads((p.path / "constructions/alphaevolve2025_95step.json").read_text())["data"][
            "values"
        ]
    )
    outs = {"h": 0.5 * h[::-1]}  # the evaluator rescales; reflection keeps the bound
    v = check(p, outs, p.score(outs))
    assert v.status == "rediscovers_known"
    assert v.matched["file"] == "constructions/alphaevolve2025_95step.json"
    assert "AlphaEvolve" in v.matched["attribution"]
    assert "rediscovers the known construction" in v.message()
    assert "alphaevolve2025_95step.json" in v.message()


@pytest.mark.parametrize(
    ("x", "status"),
    [
        ([1, 2], "below_known"),
        ([0, 1, 2, 3, 4], "rediscovers_known"),
        ([9, 9, 9, 9, 9], "matches_known"),
    ],
)
def test_statuses_on_the_tiny_problem(tiny, x, status):
    outs = {"x": np.array(x)}
    v = check(tiny, outs, tiny.score(outs))
    assert v.status == status
    d = json.loads(json.dumps(v.to_dict()))
    assert {"status", "best_known", "citation", "as_of", "matched", "message"} <= set(d)
    assert d["as_of"] == "2026-08" and d["citation"].startswith("Test and Example")


def test_verdict_statuses_are_the_five_of_the_architecture_and_contradicts_bound():
    # contradicts_bound: a value beyond a proven bound (scheduling lower bounds), an error.
    assert set(STATUSES) == {
        "improves_known",
        "matches_known",
        "rediscovers_known",
        "below_known",
        "unreferenced",
        "contradicts_bound",
    }


def test_invalid_evaluation_is_refused(tiny):
    outs = {"x": np.array([-1])}
    with pytest.raises(ValueError, match="needs a valid evaluation"):
        check(tiny, outs, tiny.score(outs))


def test_verdict_rejects_unknown_status_and_never_says_record():
    with pytest.raises(ValueError):
        Verdict(status="new_record", problem="x")
    v = Verdict(
        status="improves_known",
        problem="x",
        score=1.0,
        reference_value=2.0,
        as_of="2026-08",
        citation="C",
    )
    msg = v.message().lower()
    assert msg.startswith(
        "candidate improvement on the best known value as of 2026-08 (c), re-verified"
    )
    assert "record" not in msg and "discover" not in msg
    assert math.isfinite(json.loads(json.dumps(v.to_dict()))["score"])
