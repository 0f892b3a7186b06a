"""scheduling/jobshop: hand-checked decoding, Taillard's generator, ft06's optimum, rejections,
numba against the disjunctive-graph reference, the verdicts, the seed in the sandbox, the CLI."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

import evolve
from evolve.evaluators import taillard
from evolve.literature import check
from evolve.literature.known import known_table
from evolve.problem import load_problem

P = load_problem("scheduling/jobshop", params={"instance": "ft06"})
EV = P.evaluator_module

# A 3-job, 3-machine instance, (machine, time) along each route:
#   job 0: M0 3, M1 2, M2 2      job 1: M0 2, M2 1, M1 4      job 2: M1 4, M2 3, M0 1
MACHINES = np.array([[0, 1, 2], [0, 2, 1], [1, 2, 0]])
DURATIONS = np.array([[3, 2, 2], [2, 1, 4], [4, 3, 1]])
# Machine orders M0: 0 1 2, M1: 2 0 1, M2: 0 1 2. By hand, each start = max(job ready,
# machine free): j0 on M0 [0,3); j1 on M0 [3,5); j2 on M1 [0,4); j0 on M1 [max(3,4)=4,6);
# j0 on M2 [6,8); j1 on M2 [max(5,8)=8,9); j2 on M2 [max(4,9)=9,12); j1 on M1 [max(9,6)=9,13);
# j2 on M0 [max(12,5)=12,13). Makespan 13.
ORDER = np.array([[0, 1, 2], [2, 0, 1], [0, 1, 2]])
START = np.array([[0, 4, 6], [3, 8, 9], [0, 9, 12]])


def test_hand_checked_3x3_decoding():
    start, makespan, _, job_next = EV.decode(ORDER, MACHINES, DURATIONS)
    assert makespan == 13 and (job_next == 3).all()
    assert start.tolist() == START.tolist()
    ref_start, ref_makespan = EV.decode_reference(ORDER, MACHINES, DURATIONS)
    assert ref_makespan == 13 and ref_start == START.tolist()
    assert EV.start_times_error(START, MACHINES, DURATIONS) == ""


def test_hand_checked_3x3_deadlock_names_the_cycle():
    # M0 wants job 2 first, but job 2 must go to M1 first; M1 wants job 0 first, but job 0
    # must go to M0 first: a cycle of two machines.
    order = np.array([[2, 0, 1], [0, 2, 1], [0, 1, 2]])
    _, _, mach_next, job_next = EV.decode(order, MACHINES, DURATIONS)
    assert (job_next < 3).any()
    assert EV.decode_reference(order, MACHINES, DURATIONS) == (None, -1)
    why = EV.deadlock_reason(order, MACHINES, mach_next, job_next)
    assert "machine 0 waits for job 2, which must first go to machine 1" in why
    assert "machine 1 waits for job 0, which must first go to machine 0" in why


def test_hand_checked_3x3_start_time_violations():
    late = START.copy()
    late[1, 1] = 4  # job 1's second operation before its first ends at 5
    assert EV.start_times_error(late, MACHINES, DURATIONS).startswith(
        "precedence: job 1 operation 1 (machine 2) starts at 4, before its operation 0 (machine 0) ends at 5"
    )
    clash = START.copy()
    clash[1, 0] = 2  # job 1 on M0 during job 0's [0, 3)
    assert EV.start_times_error(clash, MACHINES, DURATIONS) == (
        "overlap on machine 0: job 0 runs [0, 3) and job 1 starts at 2"
    )
    negative = START.copy()
    negative[2, 0] = -1
    assert "starts at -1, outside [0, 2**40]" in EV.start_times_error(negative, MACHINES, DURATIONS)


def test_taillard_check_vector_for_ta01():
    # taillard_seeds.json: "ta01 (15x15): first job's processing times begin 94 66 10 53,
    # its machine route (1-based) begins 7 13 5 8"
    machines, durations = taillard.jobshop("ta01")
    assert machines.shape == durations.shape == (15, 15)
    assert durations[0, :4].tolist() == [94, 66, 10, 53]
    assert (machines[0, :4] + 1).tolist() == [7, 13, 5, 8]
    assert (np.sort(machines, axis=1) == np.arange(15)).all()
    assert durations.min() >= 1 and durations.max() <= 99


# The lower bound in the header of each of Taillard's own files tai*.txt (E. Taillard, EJOR
# 64(2):278-285, 1993; copy in thomasWeise/jsspInstancesAndResults @ 29a50db, data-raw/
# instance-data/taillard/, via the shared reference jobshop/bounds.json), ta01..ta80. It is
# max(longest job, max over machines of load + least head + least tail), so it checks every
# duration and route of all 80 regenerated instances, beyond ta01's check vector.
TAILLARD_HEADER_LB = [
    1005, 953, 1036, 973, 940, 1134, 1103, 980, 1020, 940,
    1254, 1267, 1243, 1329, 1163, 1211, 1306, 1315, 1202, 1213,
    1217, 1314, 1248, 1284, 1256, 1245, 1403, 1387, 1352, 1277,
    1764, 1774, 1733, 1828, 1754, 1777, 1771, 1673, 1764, 1608,
    1850, 1761, 1710, 1820, 1785, 1940, 1751, 1770, 1758, 1678,
    2760, 2756, 2717, 2813, 2679, 2781, 2943, 2885, 2655, 2723,
    2868, 2848, 2755, 2697, 2725, 2845, 2812, 2764, 3071, 2995,
    5464, 5181, 5552, 5339, 5392, 5342, 5436, 5394, 5358, 5183,
]  # fmt: skip


def test_all_80_taillard_instances_give_the_lower_bounds_of_taillards_files():
    for i, published in enumerate(TAILLARD_HEADER_LB, start=1):
        machines, durations = taillard.jobshop(f"ta{i:02d}")
        head = np.cumsum(durations, axis=1) - durations  # time before each operation
        tail = durations.sum(axis=1, keepdims=True) - np.cumsum(durations, axis=1)
        bound = int(durations.sum(axis=1).max())
        for k in range(machines.shape[1]):
            on_k = machines == k
            bound = max(bound, int(durations[on_k].sum() + head[on_k].min() + tail[on_k].min()))
        assert bound == published, f"ta{i:02d}"


def test_every_instance_loads_with_the_published_sizes():
    seeds = taillard.seeds()["jobshop"]
    for name in EV.CLASSIC + EV.TAILLARD:
        machines, durations = EV.instance(name)
        assert machines.shape == durations.shape
        if name in seeds:
            assert machines.shape == (seeds[name]["jobs"], seeds[name]["machines"])
    assert EV.instance("ft10")[0].shape == (10, 10) and EV.instance("ft20")[0].shape == (20, 5)
    assert EV.instance("la40")[0].shape == (15, 15)
    assert set(EV.bounds()) == set(EV.CLASSIC + EV.TAILLARD)


def test_unknown_instance_lists_the_valid_names():
    p = load_problem("scheduling/jobshop", params={"instance": "ta99"})
    with pytest.raises(
        ValueError, match="unknown job-shop instance 'ta99'; valid names: ft06, ft10"
    ):
        p.child_inputs()


def _random_active(rng: np.random.Generator, machines, durations) -> np.ndarray:
    """A random active schedule (Giffler-Thompson with random choices), as machine orders."""
    n, m = machines.shape
    nxt, job_free, mach_free = [0] * n, [0] * n, [0] * m
    seq: list[list[int]] = [[] for _ in range(m)]
    for _ in range(n * m):
        finish, j0 = min(
            (max(job_free[j], mach_free[machines[j, nxt[j]]]) + durations[j, nxt[j]], j)
            for j in range(n)
            if nxt[j] < m
        )
        k = machines[j0, nxt[j0]]
        rivals = [
            j
            for j in range(n)
            if nxt[j] < m and machines[j, nxt[j]] == k and max(job_free[j], mach_free[k]) < finish
        ]
        j = rivals[rng.integers(len(rivals))]
        s = max(job_free[j], mach_free[k])
        job_free[j] = mach_free[k] = s + durations[j, nxt[j]]
        nxt[j] += 1
        seq[k].append(j)
    return np.array(seq)


def _climb(order, machines, durations):
    """Swap adjacent jobs on a machine while that shortens the makespan (skipping deadlocks)."""
    span = EV.decode(order, machines, durations)[1]
    improved = True
    while improved:
        improved = False
        for k in range(order.shape[0]):
            for i in range(order.shape[1] - 1):
                o = order.copy()
                o[k, i], o[k, i + 1] = o[k, i + 1], o[k, i]
                _, s, _, job_next = EV.decode(o, machines, durations)
                if (job_next == machines.shape[1]).all() and s < span:
                    order, span, improved = o, s, True
    return order, span


def optimal_ft06() -> np.ndarray:
    """Machine orders of an optimal ft06 schedule (makespan 55), found by a small search:
    random active schedules improved by adjacent swaps (seed 0 finds one in ~100 restarts)."""
    machines, durations = EV.instance("ft06")
    rng = np.random.default_rng(0)
    for _ in range(2000):
        order, span = _climb(_random_active(rng, machines, durations), machines, durations)
        if span == 55:
            return order
    raise AssertionError("no schedule of makespan 55 found for ft06")


@pytest.fixture(scope="module")
def ft06_optimal():
    return optimal_ft06()


def test_ft06_optimum_scores_55_by_order_and_by_start_times(ft06_optimal):
    ev = P.score({"order": ft06_optimal})
    assert ev.valid and ev.score == 55 and ev.fitness == -55
    assert "the proven optimum is 55" in ev.feedback
    machines, durations = EV.instance("ft06")
    start = EV.decode(ft06_optimal, machines, durations)[0]
    by_start = P.score({"start": start})
    assert by_start.valid and by_start.score == 55
    assert EV.verify({"start": start}, P.params).exact_value == "55"
    assert EV.verify({"order": ft06_optimal}, P.params).exact_value == "55"


def test_invalid_orders_are_rejected_with_the_reason(ft06_optimal):
    dup = ft06_optimal.copy()
    dup[2, 1] = dup[2, 0]
    ev = P.score({"order": dup})
    assert ev.status == "invalid"
    assert ev.error.startswith(f"machine 2: job {dup[2, 0]} appears 2 times and job ")
    assert not EV.verify({"order": dup}, P.params).valid
    out_of_range = ft06_optimal.copy()
    out_of_range[0, 0] = 6
    assert P.score({"order": out_of_range}).error == "machine 0: job index 6 is not in 0..5"
    assert "shape [machines, jobs] = [6, 6]" in P.score({"order": ft06_optimal[:, :5]}).error
    both = P.score({"order": ft06_optimal, "start": np.zeros((6, 6), np.int64)})
    assert "exactly one of 'order'" in both.error
    assert "got neither" in P.score({}).error
    # Reversing every machine's order of an optimal schedule deadlocks on ft06.
    rev = P.score({"order": ft06_optimal[:, ::-1].copy()})
    assert rev.status == "invalid" and "the machine orders deadlock" in rev.error
    assert rev.error == EV.score_numpy({"order": ft06_optimal[:, ::-1].copy()}, P.params).error


def test_invalid_start_times_are_rejected(ft06_optimal):
    machines, durations = EV.instance("ft06")
    start = EV.decode(ft06_optimal, machines, durations)[0]
    early = start.copy()
    early[0, 1] = start[0, 0]  # job 0's second operation with its first
    assert P.score({"start": early}).error.startswith("precedence: job 0 operation 1")
    assert "shape [jobs, machines] = [6, 6]" in P.score({"start": start[:5]}).error


def test_numba_decoder_matches_the_reference_on_random_orders():
    rng = np.random.default_rng(3)
    deadlocks = 0
    for name in ("ft06", "la01", "ft20", "ta01"):
        p = load_problem("scheduling/jobshop", params={"instance": name})
        machines, durations = EV.instance(name)
        m, n = machines.shape[1], machines.shape[0]
        for t in range(60):
            if t % 2:  # any permutation per machine: mostly deadlocks
                order = np.array([rng.permutation(n) for _ in range(m)])
            else:  # a topological order of random priorities: always feasible
                seq: list[list[int]] = [[] for _ in range(m)]
                nxt = [0] * n
                for j in rng.permutation(np.repeat(np.arange(n), m)):
                    seq[machines[j, nxt[j]]].append(int(j))
                    nxt[j] += 1
                order = np.array(seq)
            a = p.score({"order": order})
            b = EV.score_numpy({"order": order}, p.params)
            assert (a.valid, a.score, a.error) == (b.valid, b.score, b.error)
            deadlocks += not a.valid
            if a.valid:
                start = EV.decode(order, machines, durations)[0]
                assert p.score({"start": start}).score == a.score
    assert 0 < deadlocks < 240


def test_known_table_uses_the_instance_row_with_its_bounds_and_claims():
    t = known_table(load_problem("scheduling/jobshop", params={"instance": "ta34"}))
    assert t.best.number == 1829 and "Henning" in t.best.citation
    assert t.proven_bound.number == 1828
    assert [(c.number, c.status) for c in t.claimed] == [(1828, "uncertified")]
    t18 = known_table(load_problem("scheduling/jobshop", params={"instance": "ta18"}))
    assert (t18.best.number, t18.proven_bound.number) == (1396, 1377)
    assert [b.number for b in t18.bounds if b.bound_kind == "uncertified"] == [1396]


def test_known_yaml_has_cited_bounds_for_every_instance_and_keeps_claims_apart():
    rows = yaml.safe_load((P.path / "known.yaml").read_text())["values_by_instance"]
    assert set(rows) == set(EV.CLASSIC + EV.TAILLARD) and len(rows) == 123
    for name, row in rows.items():
        bound = row["proven_bound"]
        assert row["citation"] and row["date"] and bound["citation"] and bound["date"], name
        assert row["value"] >= bound["value"], name
        # A claim without a certificate never becomes the best known value or the bound.
        for claim in row.get("claimed", []):
            assert claim["status"] == "uncertified" and claim["value"] < row["value"], name
    # Proven optimal (upper = lower bound) exactly where the note says so: 101 of 123. The other
    # 22 are open, 10 of them "closed" only by solver runs without a certificate.
    closed = {n for n, r in rows.items() if r["value"] == r["proven_bound"]["value"]}
    assert closed == {n for n, r in rows.items() if r["note"] == "optimal"} and len(closed) == 101
    uncertified = [n for n, r in rows.items() if "no certificate" in r["note"]]
    assert len(uncertified) == 10 and "ta18" in uncertified


def test_verdict_matches_the_proven_optimum(ft06_optimal):
    outs = {"order": ft06_optimal}
    v = check(P, outs, P.score(outs))
    assert v.status == "matches_known" and v.proven_bound == 55
    assert v.message().startswith("matches the proven optimum 55 as of 2026-08 (")
    worse = {"order": _random_active(np.random.default_rng(1), *EV.instance("ft06"))}
    ev = P.score(worse)
    assert ev.valid and ev.score > 55
    assert check(P, worse, ev).status == "below_known"


def _with_bounds(tmp_path, best: int, bound: int):
    """The job shop with ft06's known row changed (as a data error would change it)."""
    folder = tmp_path / "jobshop"
    shutil.copytree(P.path, folder, ignore=shutil.ignore_patterns("__pycache__"))
    known = yaml.safe_load((folder / "known.yaml").read_text())
    row = known["values_by_instance"]["ft06"]
    row["value"], row["proven_bound"]["value"] = best, bound
    (folder / "known.yaml").write_text(yaml.safe_dump(known, allow_unicode=True))
    return load_problem(folder, params={"instance": "ft06"})


def test_below_a_proven_bound_is_contradicts_bound_logged_as_an_error(
    tmp_path, caplog, ft06_optimal
):
    p = _with_bounds(tmp_path, best=60, bound=58)
    outs = {"order": ft06_optimal}
    with caplog.at_level(logging.ERROR, logger="evolve.literature.check"):
        v = check(p, outs, p.score(outs))
    assert v.status == "contradicts_bound" and not v.reverified
    assert v.message().startswith("ERROR: 55 beats the proven lower bound 58 (")
    assert "never an improvement" in v.message()
    assert v.message().endswith(
        "(check the evaluator and the data of scheduling/jobshop (instance=ft06))"
    )
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("beats the proven lower bound 58" in e for e in errors)


def test_between_the_bounds_is_a_candidate_that_must_pass_the_gates(tmp_path, ft06_optimal):
    p = _with_bounds(tmp_path, best=57, bound=50)
    outs = {"order": ft06_optimal}
    v = check(p, outs, p.score(outs))
    # It beats the best known 57 and the exact verifier agrees, but no program was re-run.
    assert v.status == "matches_known" and v.unconfirmed_improvement
    assert v.verification["valid"] and v.verification["exact_value"] == "55"
    assert v.reason == "no program was given to re-run"


def test_between_the_bounds_with_a_program_that_reruns_identically_improves(tmp_path, ft06_optimal):
    # An open instance (best known 57, lower bound 50): a program whose schedule makes 55 is
    # re-run in a fresh sandbox, re-verified exactly, and only then a candidate improvement.
    p = _with_bounds(tmp_path, best=57, bound=50)
    code = (
        "import numpy as np\n\n"
        "def solve(machines, durations):\n"
        f"    return {{'order': np.array({ft06_optimal.tolist()})}}\n"
    )
    ev = evolve.evaluate(p, code)
    assert ev.valid and ev.score == 55, ev.error
    outs = {"order": ft06_optimal}
    v = check(p, outs, ev, code=code, rerun=True)
    assert v.status == "improves_known" and v.reverified, v.reason
    assert v.verification["exact_value"] == "55" and v.rerun["status"] == "ok"
    assert v.message().startswith("candidate improvement on the best known value as of 2026-08")
    assert "re-verified: 55 vs 57" in v.message()


def test_seed_program_is_valid_in_the_sandbox():
    for name in ("ft10", "la01"):
        p = load_problem("scheduling/jobshop", params={"instance": name})
        ev = evolve.evaluate(p, p.initial_code)
        assert ev.valid, ev.error
        lb = EV.bounds()[name][1]
        assert ev.score >= lb and ev.metrics["gap_to_best_known"] >= 0
        assert 0 < ev.features["flow_ratio"] <= 1


def test_cli_scores_start_times_json(tmp_path, ft06_optimal):
    machines, durations = EV.instance("ft06")
    start = EV.decode(ft06_optimal, machines, durations)[0]
    path = tmp_path / "ft06.json"
    path.write_text(json.dumps({"start": start.tolist()}))
    r = subprocess.run(
        [sys.executable, "-m", "evolve.cli", "score", "scheduling/jobshop", str(path),
         "--param", "instance=ft06", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[0])
    assert out["valid"] and out["score"] == 55
    assert out["verdict"]["status"] == "matches_known"
    assert "proven optimum" in out["verdict"]["message"]


def test_optional_outputs_in_the_spec():
    from evolve.evaluators.spec import ArraySpec, OutputError, OutputSpec

    assert P.outputs.arrays["order"].optional and P.outputs.arrays["start"].optional
    assert set(P.check_outputs({"order": ORDER})) == {"order"}
    spec = OutputSpec.from_dict({"a": {"dtype": "int"}, "b": {"dtype": "int", "optional": True}})
    assert set(spec.check({"a": [1]})) == {"a"}
    with pytest.raises(OutputError, match=r"missing output\(s\) \['a'\]"):
        spec.check({"b": [1]})
    with pytest.raises(ValueError, match="optional: must be true or false"):
        ArraySpec.from_dict("a", {"optional": "yes"})


def test_cli_prints_a_rejection_with_its_brackets(tmp_path, ft06_optimal):
    # The console must not read "[machines, jobs]" in an error as markup and drop it: the
    # message would no longer say which shape is wanted.
    path = tmp_path / "short.json"
    path.write_text(json.dumps({"order": ft06_optimal[:, :5].tolist()}))
    r = subprocess.run(
        [sys.executable, "-m", "evolve.cli", "score", "scheduling/jobshop", str(path),
         "--param", "instance=ft06"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "order must have shape [machines, jobs] = [6, 6], got (6, 5)" in r.stdout
