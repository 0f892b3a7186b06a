"""scheduling/flowshop: a hand-checked makespan, the 1200 published permutations, the generator
against the proven optima, rejections, numba against the reference, verdicts (disputed ta051,
contradicts_bound, the proven optimum, rediscovery), the seed in the sandbox."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import yaml

from evolve.evaluators.harness import evaluate_code
from evolve.literature import check
from evolve.literature.known import known_table
from evolve.problem import load_problem

P = load_problem("scheduling/flowshop")
EV = P.evaluator_module
PUBLISHED = json.loads((P.path / "published/libralesso2022.json").read_text())["solutions"]


def test_hand_checked_3x3_makespan():
    # times[k, j]: job 0 = (3, 2, 2), job 1 = (1, 4, 1), job 2 = (2, 1, 3) on machines 0, 1, 2.
    times = np.array([[3, 1, 2], [2, 4, 1], [2, 1, 3]])
    # Order 1 0 2. Machine 0: job 1 ends 1, job 0 ends 4, job 2 ends 6. Machine 1: job 1
    # ends 1+4=5, job 0 max(4,5)+2=7, job 2 max(6,7)+1=8. Machine 2: job 1 ends 5+1=6, job 0
    # max(7,6)+2=9, job 2 max(8,9)+3=12. Makespan 12; completions on the last machine 6 9 12.
    perm = np.array([1, 0, 2])
    assert EV.makespan(perm, times) == 12
    assert EV.completion_times(perm, times).tolist() == [6, 9, 12]
    assert EV.makespan_reference(perm, times.tolist()) == 12
    # Order 0 1 2: machine 0 ends 3, 4, 6; machine 1: 5, 9, 10; machine 2: 7, 10, 13.
    assert EV.makespan(np.array([0, 1, 2]), times) == 13


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_permutations_reproduce_their_makespans(name):
    times = EV.instance(name)
    for solver, claimed, perm in PUBLISHED[name]:
        perm = np.array(perm, dtype=np.int64)
        assert EV.permutation_error(perm, times.shape[1]) == ""
        assert EV.makespan(perm, times) == claimed, (name, solver)


def test_all_1200_permutations_are_there():
    assert len(PUBLISHED) == 120 and sum(len(v) for v in PUBLISHED.values()) == 1200


def test_generator_reaches_the_proven_optima():
    # Where a published permutation attains the proven optimum (UB = LB), the regenerated
    # instance must give exactly that makespan: a wrong time anywhere would shift it.
    closed = 0
    for name, rows in PUBLISHED.items():
        ub, lb = EV.bounds()[name]
        best = min(EV.makespan(np.array(p), EV.instance(name)) for _, _, p in rows)
        assert best >= lb, name
        if ub == lb and best == ub:
            closed += 1
    # 86 instances (the stored constructions): a wrong time anywhere in one would break this.
    doc = json.loads((P.path / "constructions/libralesso2022_best.json").read_text())
    assert closed == len(doc["data"]["permutation"]) == 86


def test_instance_sizes_and_unknown_names():
    assert EV.instance("ta001").shape == (5, 20)
    assert EV.instance("ta120").shape == (20, 500)
    p = load_problem("scheduling/flowshop", params={"instance": "ta121"})
    with pytest.raises(ValueError, match="unknown flow-shop instance 'ta121'; valid names"):
        p.child_inputs()


def test_invalid_permutations_are_rejected_with_the_reason():
    perm = np.arange(20)
    perm[5] = 3
    ev = P.score({"permutation": perm})
    assert ev.status == "invalid"
    assert ev.error.startswith("job 3 appears at positions 3 and 5 and job 5 is missing")
    assert not EV.verify({"permutation": perm}, P.params).valid
    assert "is not in 0..19" in P.score({"permutation": np.r_[np.arange(19), 20]}).error
    assert "each of the 20 jobs once" in P.score({"permutation": np.arange(19)}).error


def test_numba_matches_the_reference_on_random_permutations():
    rng = np.random.default_rng(5)
    for name in ("ta001", "ta031", "ta061", "ta091"):
        p = load_problem("scheduling/flowshop", params={"instance": name})
        n = EV.instance(name).shape[1]
        for _ in range(40):
            perm = rng.permutation(n)
            a, b = p.score({"permutation": perm}), EV.score_numpy({"permutation": perm}, p.params)
            assert a.valid and (a.score, a.metrics) == (b.score, b.metrics)
            assert EV.verify({"permutation": perm}, p.params).value == a.score


def test_known_table_keeps_disputed_values():
    p = load_problem("scheduling/flowshop", params={"instance": "ta051"})
    t = known_table(p)
    assert t.best.number == 3846 and t.proven_bound.number == 3771
    claims = {c.number: c for c in t.claimed}
    assert claims[3850].disputed and "Taillard" in claims[3850].citation
    assert claims[3700].disputed and "not credible" in claims[3700].note


def test_known_yaml_keeps_the_reference_files_counts():
    # The shared reference (flowshop/bounds.json): 120 instances, 101 proven optimal (best
    # known = lower bound) and 27 whose public values disagree (kept as disputed claims).
    rows = yaml.safe_load((P.path / "known.yaml").read_text())["values_by_instance"]
    assert sorted(rows) == [f"ta{i:03d}" for i in range(1, 121)]
    closed = [n for n, r in rows.items() if r["value"] == r["proven_bound"]["value"]]
    assert len(closed) == 101
    assert all(r["value"] > r["proven_bound"]["value"] for n, r in rows.items() if n not in closed)
    disputed = [
        n for n, r in rows.items() if any(c["status"] == "disputed" for c in r.get("claimed", []))
    ]
    assert len(disputed) == 27 and "ta051" in disputed
    for name in disputed:
        assert all(c["citation"] and c["note"] for c in rows[name]["claimed"]), name


def test_verdict_on_ta051_is_compared_with_its_disputed_values():
    p = load_problem("scheduling/flowshop", params={"instance": "ta051"})
    perm = np.array(min(PUBLISHED["ta051"], key=lambda r: r[1])[2])
    ev = p.score({"permutation": perm})
    assert ev.score == 3858
    v = check(p, {"permutation": perm}, ev)
    assert v.status == "below_known" and v.proven_bound == 3771
    disputed = {c["value"]: c["outcome"] for c in v.compared_against if c["status"] == "disputed"}
    assert disputed == {3700: "below", 3850: "below"}


def _construction(name: str) -> list[int]:
    doc = json.loads((P.path / "constructions/libralesso2022_best.json").read_text())
    return doc["data"]["permutation"][name]


def test_published_construction_is_a_rediscovery_and_another_optimum_a_match():
    # ta001 is closed: 1278 is optimal. The stored construction (IBS_bi_min_alpha) is a
    # rediscovery; IBS_bi_min_bound found a different permutation of the same makespan.
    perm = _construction("ta001")
    v = check(P, {"permutation": perm}, P.score({"permutation": perm}))
    assert v.status == "rediscovers_known" and "Libralesso" in v.message()
    solver, claimed, other = PUBLISHED["ta001"][1]
    assert solver == "IBS_bi_min_bound" and claimed == 1278 and other != perm
    v = check(P, {"permutation": other}, P.score({"permutation": other}))
    assert v.status == "matches_known"
    assert v.message().startswith("matches the proven optimum 1278 as of 2026-07 (")


def test_contradicts_bound_with_a_wrong_lower_bound(tmp_path, caplog):
    folder = tmp_path / "flowshop"
    shutil.copytree(P.path, folder, ignore=shutil.ignore_patterns("__pycache__"))
    known = yaml.safe_load((folder / "known.yaml").read_text())
    known["values_by_instance"]["ta001"]["proven_bound"]["value"] = 1300  # a data error
    del known["constructions"]
    (folder / "known.yaml").write_text(yaml.safe_dump(known, allow_unicode=True))
    p = load_problem(folder)
    perm = _construction("ta001")
    with caplog.at_level(logging.ERROR, logger="evolve.literature.check"):
        v = check(p, {"permutation": perm}, p.score({"permutation": perm}))
    assert v.status == "contradicts_bound"
    assert v.message().startswith("ERROR: 1278 beats the proven lower bound 1300")
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_seed_program_is_valid_in_the_sandbox():
    for name in ("ta001", "ta061"):
        p = load_problem("scheduling/flowshop", params={"instance": name})
        ev = evaluate_code(p, p.initial_code)
        assert ev.valid, ev.error
        assert ev.score >= EV.bounds()[name][1] and 0 < ev.features["flow_ratio"] < 1


def test_verified_values_are_attained_by_a_stored_permutation():
    rows = yaml.safe_load((P.path / "known.yaml").read_text())["values_by_instance"]
    for name, row in rows.items():
        best = min(EV.makespan(np.array(p), EV.instance(name)) for _, _, p in PUBLISHED[name])
        assert best >= row["value"], name  # nothing published beats the best known value
        assert (row["status"] == "verified_recomputed") == (best == row["value"]), name
