"""scheduling/binpacking_online: instances, the online session, the scorer, FunSearch's table."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import re
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from evolve.evaluators.online import Channel, OnlineError, play_in_process
from evolve.paths import problems_dir
from evolve.problem import load_problem

FOLDER = problems_dir() / "scheduling/binpacking_online"
CONFIG = yaml.safe_load((FOLDER / "problem.yaml").read_text())


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's on-disk cache finds the module by this name
    spec.loader.exec_module(module)
    return module


# The evaluator under the name Problem.evaluator_module gives it (numba's cache relies on it).
_digest = hashlib.sha1((FOLDER / "evaluator.py").read_bytes()).hexdigest()[:12]
EV = _import(FOLDER / "evaluator.py", f"_evolve_problem_{_digest}_evaluator")
HARNESS = _import(FOLDER / "harness.py", "_binpacking_harness")
PEEKING = Path(__file__).parent / "peeking_binpacking.py"


def first_fit(item, bins):
    return np.zeros_like(bins)


def best_fit(item, bins):
    return -(bins - item)


def instance(sizes, capacity=10, name="hand"):
    return {"name": name, "sizes": np.array(sizes, dtype=np.float64), "capacity": capacity}


def play(inst, priority):
    return play_in_process(EV.online_session(inst, {}), HARNESS.run, {"priority": priority})


def dataset(set_name, name):
    return EV.load_instances(CONFIG["instances"][set_name][name], {}, FOLDER)


# --- the problem folder ---------------------------------------------------------------------
def test_problem_yaml_declares_train_validation_and_test():
    sets = CONFIG["instances"]
    assert set(sets) == {"train", "validation", "test"}
    assert set(sets["test"]) == {"or1", "or2", "or3", "or4", "weibull5k"}
    for name, source in sets["train"].items():
        held_out = sets["validation"][name]
        assert source["generator"] == held_out["generator"]
        assert not set(source["seeds"]) & set(held_out["seeds"]), name
    assert CONFIG["online"] == {"item_size": 1, "decision_size": 1}
    assert CONFIG["entrypoint"] == "priority" and CONFIG["direction"] == "min"
    # the prompt must not give away seeds or where the test data is
    assert "seed" not in CONFIG["description"] and "data/" not in CONFIG["description"]


def test_load_problem_accepts_the_instance_sets():
    problem = load_problem("scheduling/binpacking_online")
    assert problem.heuristic and problem.online is not None
    assert problem.entrypoint == "priority" and problem.harness is not None
    assert [s.name for s in problem.cascade] == ["quick", "full"]
    counts = {name: len(problem.instances(name)) for name in ("train", "validation", "test")}
    assert counts == {"train": 8, "validation": 10, "test": 85}


# --- instances ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "count", "n_items", "capacity"),
    [
        ("or1", 20, 120, 150),
        ("or2", 20, 250, 150),
        ("or3", 20, 500, 150),
        ("or4", 20, 1000, 150),
        ("weibull5k", 5, 5000, 100),
    ],
)
def test_readers_give_every_instance_of_a_file(name, count, n_items, capacity):
    insts = dataset("test", name)
    assert len(insts) == count
    assert all(i["sizes"].shape == (n_items,) and i["capacity"] == capacity for i in insts)
    assert len({i["name"] for i in insts}) == count


def test_orlib_reader_keeps_names_and_best_known():
    first = dataset("test", "or1")[0]
    # binpack1.txt starts: 20 / u120_00 / 150 120 48 / 42 / 69 ...
    assert first["name"] == "u120_00" and first["best_known"] == 48
    assert first["sizes"][:2].tolist() == [42.0, 69.0]
    assert [i["name"] for i in dataset("test", "weibull5k")] == [f"test_{k}" for k in range(5)]


def test_generators_are_deterministic_and_differ_across_seeds():
    for name in ("weibull", "or_like"):
        src = CONFIG["instances"]["train"][name]
        a = EV.load_instances(src, {}, FOLDER)
        b = EV.load_instances(src, {}, FOLDER)
        assert all(np.array_equal(x["sizes"], y["sizes"]) for x, y in zip(a, b, strict=True))
        assert len({x["sizes"].tobytes() for x in a}) == len(a)
        assert [x["name"] for x in a] == [f"{name}_{s}" for s in src["seeds"]]
    weibull = np.concatenate([x["sizes"] for x in dataset("train", "weibull")])
    assert weibull.min() >= 1 and weibull.max() <= 100
    assert 38 < weibull.mean() < 42  # 45 * Gamma(1 + 1/3) = 40.2
    uniform = np.concatenate([x["sizes"] for x in dataset("train", "or_like")])
    assert uniform.min() >= 20 and uniform.max() <= 100 and set(uniform) >= {20.0, 100.0}


def test_bad_instance_sources_say_what_to_fix(tmp_path):
    with pytest.raises(EV.InstanceError, match="needs generator"):
        EV.load_instances({"generator": "gamma", "seeds": [0]}, {}, FOLDER)
    with pytest.raises(EV.InstanceError, match="seeds must be"):
        EV.load_instances({"generator": "weibull", "seeds": []}, {}, FOLDER)
    with pytest.raises(EV.InstanceError, match="no file matches"):
        EV.load_instances({"file": "data/nothing_*.txt", "reader": "orlib"}, {}, FOLDER)
    (tmp_path / "short.txt").write_text("1\nu3_00\n10 3 2\n4\n5\n")
    with pytest.raises(EV.InstanceError, match="announces 3 items"):
        EV.load_instances({"file": "short.txt", "reader": "orlib"}, {}, tmp_path)
    (tmp_path / "big.txt").write_text("10 2\n4\n11\n")
    with pytest.raises(EV.InstanceError, match="item 1 has size 11.0; sizes are integers in"):
        EV.load_instances({"file": "big.txt", "reader": "funsearch"}, {}, tmp_path)


# --- the online session ---------------------------------------------------------------------
# Sizes 5, 7, 3, 5 in bins of 10 (L1 = ceil(20 / 10) = 2):
#   first fit: 5 -> b0 (5 left), 7 -> b1 (3 left), 3 -> b0 (2 left), 5 -> b2: 3 bins, 50% excess
#   best fit:  5 -> b0 (5 left), 7 -> b1 (3 left), 3 -> b1 (0 left), 5 -> b0: 2 bins, 0% excess
HAND = instance([5, 7, 3, 5])


def test_first_and_best_fit_by_hand():
    ff = play(HAND, first_fit)
    assert ff["assignment"].tolist() == [0, 1, 0, 2]
    ev = EV.evaluate(ff, {}, HAND)
    assert ev.valid and ev.score == 50.0
    assert (ev.metrics["bins"], ev.metrics["l1_bound"], ev.metrics["excess"]) == (3, 2, 1)
    bf = play(HAND, best_fit)
    assert bf["assignment"].tolist() == [0, 1, 1, 0]
    assert EV.evaluate(bf, {}, HAND).score == 0.0
    assert EV.verify(ff, {}, HAND).exact_value == "50" and EV.verify(bf, {}, HAND).valid


def test_session_header_reveals_only_capacity_and_count():
    session = EV.online_session(HAND, {})
    assert session.header() == {"capacity": 10, "n_items": 4}
    assert session.next_item() == [5.0]
    with pytest.raises(OnlineError, match="revealed twice"):
        session.next_item()


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        (4.0, "item 1: bin 4 is out of range \\(bins are 0..3\\)"),
        (-1.0, "item 1: bin -1 is out of range"),
        (1.5, "item 1: the bin index must be an integer, got 1.5"),
        (float("nan"), "item 1: the bin index must be an integer"),
        (0.0, "item 1 \\(size 7\\) does not fit in bin 0: 5 of 10 left"),
    ],
)
def test_session_refuses_bad_decisions_with_the_reason(decision, reason):
    session = EV.online_session(HAND, {})
    session.next_item()
    session.decide(np.array([0.0]))
    session.next_item()
    with pytest.raises(OnlineError, match=reason):
        session.decide(np.array([decision]))


def test_a_refused_decision_ends_the_run_through_the_channel():
    def stubborn(program, inputs, channel: Channel):
        while channel.recv() is not None:
            channel.send([0])  # always bin 0: the second item (7) does not fit beside the 5

    with pytest.raises(OnlineError, match="item 1 \\(size 7\\) does not fit in bin 0"):
        play_in_process(EV.online_session(HAND, {}), stubborn, {})


def test_the_channel_never_carries_more_than_the_current_item():
    # Drive the session by hand over a real socket pair: after the first frame the child's
    # socket holds nothing until it has answered.
    session = EV.online_session(HAND, {})
    ours, theirs = socket.socketpair()
    channel = Channel(theirs, 1, 1)
    from evolve.evaluators.online import item_frame

    ours.sendall(item_frame(session, session.next_item()))
    assert channel.recv().tolist() == [5.0]
    theirs.setblocking(False)
    with pytest.raises(BlockingIOError):
        theirs.recv(1)
    ours.close()
    theirs.close()


@pytest.mark.parametrize(
    ("priority", "reason"),
    [
        (lambda item, bins: np.zeros(bins.size + 1), "must return one number per bin"),
        (lambda item, bins: 0.0, "returned shape \\(\\)"),
        (lambda item, bins: bins * np.nan, "priority returned NaN"),
    ],
)
def test_bad_priorities_fail_with_a_clear_message(priority, reason):
    with pytest.raises(ValueError, match=reason):
        play(HAND, priority)


def test_infinite_priorities_are_allowed():
    # 1 / gap is +inf for an exact fit: a reasonable heuristic, not an error.
    def inverse_gap(item, bins):
        with np.errstate(divide="ignore"):
            return 1.0 / (bins - item)

    out = play(HAND, inverse_gap)
    assert out["assignment"].tolist() == [0, 1, 1, 0]


# --- the scorer -----------------------------------------------------------------------------
def test_scorer_rejections_name_the_item_or_bin():
    def ev(assignment, fn=EV.evaluate):
        return fn({"assignment": np.array(assignment, dtype=np.int64)}, {}, HAND)

    assert "item 2 was never placed" in ev([0, 1, -1, 2]).error
    assert "item 3 is in bin 9, out of range 0..3" in ev([0, 1, 2, 9]).error
    assert "bin 0 holds 12, over the capacity 10" in ev([0, 0, 1, 2]).error
    assert "assignment has shape (3,), expected (4,)" in ev([0, 1, 2]).error
    assert (
        "bin 0 holds 12 > 10" in EV.verify({"assignment": np.array([0, 0, 1, 2])}, {}, HAND).reason
    )
    assert ev([0, 1, 2, 3]).score == 100.0  # 4 bins for an L1 bound of 2


def test_numba_kernel_agrees_with_numpy_on_random_assignments():
    rng = np.random.default_rng(7)
    for trial in range(300):
        n = int(rng.integers(1, 60))
        capacity = int(rng.integers(5, 40))
        inst = instance(rng.integers(1, capacity + 1, n), capacity)
        span = int(rng.integers(1, n + 1))
        assignment = rng.integers(0, span, n)
        if trial % 5 == 0:
            assignment[rng.integers(n)] = rng.choice([-1, n, n + 7])
        outputs = {"assignment": assignment}
        a = EV.packing_scan(assignment, inst["sizes"], float(capacity))
        b = EV.packing_scan_numpy(assignment, inst["sizes"], float(capacity))
        assert tuple(a) == tuple(b)
        ea, eb = EV.evaluate(outputs, {}, inst), EV.score_numpy(outputs, {}, inst)
        assert (ea.valid, ea.score, ea.error, ea.metrics) == (
            eb.valid,
            eb.score,
            eb.error,
            eb.metrics,
        )
        ver = EV.verify(outputs, {}, inst)
        assert ver.valid == ea.valid
        if ea.valid:
            assert ver.value == pytest.approx(ea.score, rel=1e-15, abs=0)


def test_aggregate_is_funsearchs_ratio_of_means_not_a_mean_of_ratios():
    # A: 4 items of 5 in bins of 10, all apart -> 4 bins, L1 2 (100%)
    # B: 18 items of 5, paired -> 9 bins, L1 9 (0%)
    # mean of ratios: 50%; FunSearch: (mean bins 6.5 - mean L1 5.5) / 5.5 = 18.18%
    a, b = instance([5] * 4, name="A"), instance([5] * 18, name="B")
    ea = EV.evaluate({"assignment": np.arange(4)}, {}, a)
    eb = EV.evaluate({"assignment": np.arange(18) // 2}, {}, b)
    assert (ea.score, eb.score) == (100.0, 0.0)
    assert EV.aggregate([ea, eb], [a, b], {}) == pytest.approx(100 / 5.5, rel=1e-15)
    with pytest.raises(ValueError, match="instance A is not valid"):
        EV.aggregate([EV.evaluate({"assignment": np.zeros(4, int)}, {}, a), eb], [a, b], {})


# --- FunSearch's Table 1 (Romera-Paredes et al., Nature 625, 2024) --------------------------
# % excess bins over L1 for first fit and best fit; the notebook also prints the mean L1
# bound of OR3 (201.2) and Weibull 5k (1987.8), and best fit's mean bins (212.0 and 2067.0).
TABLE = {
    "or1": (6.42, 5.81, 49.05),
    "or2": (6.45, 6.06, 101.55),
    "or3": (5.74, 5.37, 201.2),
    "or4": (5.23, 4.94, 400.55),
    "weibull5k": (4.23, 3.98, 1987.8),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_first_and_best_fit_reproduce_funsearchs_table(name):
    insts = dataset("test", name)
    ff_pct, bf_pct, mean_l1 = TABLE[name]
    assert np.mean([EV.l1_bound(i["sizes"], i["capacity"]) for i in insts]) == pytest.approx(
        mean_l1
    )
    for priority, expected in ((first_fit, ff_pct), (best_fit, bf_pct)):
        evs = [EV.evaluate(play(i, priority), {}, i) for i in insts]
        assert all(e.valid for e in evs)
        assert round(EV.aggregate(evs, insts, {}), 2) == expected, priority.__name__
    if name == "or3":
        assert np.mean([e.metrics["bins"] for e in evs]) == 212.0
    if name == "weibull5k":
        assert np.mean([e.metrics["bins"] for e in evs]) == 2067.0


def test_seed_is_first_fit_with_knobs():
    ns: dict = {}
    exec(compile((FOLDER / "initial.py").read_text(), "initial.py", "exec"), ns)  # our own seed
    for inst in dataset("test", "or1")[:5] + dataset("train", "weibull")[:1]:
        assert np.array_equal(
            play(inst, ns["priority"])["assignment"], play(inst, first_fit)["assignment"]
        )
    code = (FOLDER / "initial.py").read_text()
    assert code.count("EVOLVE-BLOCK-START") == 1 and "small_gap_penalty = 0.0" in code


def test_the_local_mutator_finds_knobs_that_change_the_packing():
    from evolve.mutation.local import propose

    code = (FOLDER / "initial.py").read_text()
    inst = dataset("train", "weibull")[0]
    reference = play(inst, first_fit)["assignment"]
    changed = 0
    for seed in range(40):
        m = propose(code, random.Random(seed))
        lines = code.splitlines()
        lines[m.line_no - 1] = m.new_line
        ns: dict = {}
        exec(compile("\n".join(lines), "child.py", "exec"), ns)  # our seed, mutated by us
        try:
            with np.errstate(all="ignore"):
                out = play(inst, ns["priority"])
        except ValueError:
            continue  # e.g. an operator swap that divides 0 by 0: a crash with the reason
        assert EV.evaluate(out, {}, inst).valid
        changed += not np.array_equal(out["assignment"], reference)
    assert changed >= 3  # 4 of these 40 seeds: three small-gap thresholds, one sign swap


# --- a program that looks for the future ----------------------------------------------------
def test_the_peeking_program_really_peeks_when_it_shares_the_process():
    # In-process the session's own arrays are reachable, so the hostile fixture finds the
    # future and beats best fit. This is what the sandbox must prevent: run in the sandbox
    # (the engine side of issue #11), the same program must find nothing and score as best fit.
    peeking = _import(PEEKING, "_peeking_binpacking")
    insts = dataset("test", "or1")
    peeked = [EV.evaluate(play(i, peeking.priority), {}, i) for i in insts]
    assert peeking.FOUND["future"] is not None, "the fixture failed to find the session's items"
    assert np.array_equal(peeking.FOUND["future"], insts[-1]["sizes"])
    honest = [EV.evaluate(play(i, best_fit), {}, i) for i in insts]
    assert all(e.valid for e in peeked)
    assert EV.aggregate(peeked, insts, {}) < EV.aggregate(honest, insts, {}) - 2.0


DATA_FILES = sorted(str(f) for f in (FOLDER / "data").rglob("*.txt"))


def _peeking_with_data_files() -> str:
    """The hostile program told exactly where the repository keeps the held-out test data."""
    return PEEKING.read_text() + f"\nDATA_FILES[:0] = {DATA_FILES!r}\n"


def test_the_file_hunt_finds_the_future_where_the_files_are_readable():
    # The fixture's file search works where the files can be read (here, in the test's own
    # process): run in the sandbox, nothing but the file system stands in its way.
    peeking = _import(PEEKING, "_peeking_binpacking_files")
    peeking.DATA_FILES[:0] = DATA_FILES
    for set_name, name in (("test", "or3"), ("test", "weibull5k")):
        sizes = dataset(set_name, name)[-1]["sizes"]
        future, where = peeking._search_files(sizes.size, sizes[:4])
        assert future is not None and np.array_equal(future, sizes), name
        assert where.startswith("file ") and "binpacking_online/data" in where
    assert len(peeking.FILES_TRIED) >= 5


# --- in the real sandbox --------------------------------------------------------------------
def _train_metrics_in_process(priority):
    out = {}
    for name in CONFIG["instances"]["train"]:
        insts = dataset("train", name)
        evs = [EV.evaluate(play(i, priority), {}, i) for i in insts]
        out[f"train_{name}"] = EV.aggregate(evs, insts, {})
    return out


def test_the_seed_in_the_sandbox_scores_as_first_fit_in_process():
    from evolve.evaluators.harness import evaluate_code

    problem = load_problem("scheduling/binpacking_online")
    ev = evaluate_code(problem, problem.initial_code, sets=("train",))
    assert ev.valid, ev.error
    expected = _train_metrics_in_process(first_fit)
    for key, value in expected.items():
        assert ev.metrics[key] == value, key
    assert ev.score == pytest.approx(sum(expected.values()) / len(expected), rel=1e-15)


def test_the_peeking_program_finds_nothing_in_the_sandbox():
    # The same hostile program that beats best fit in-process (above) must, in the sandbox,
    # find no future item and fall back to best fit: exactly best fit's scores.
    from evolve.evaluators.harness import evaluate_code

    problem = load_problem("scheduling/binpacking_online")
    ev = evaluate_code(problem, PEEKING.read_text(), sets=("train",))
    assert ev.valid, ev.error
    for key, value in _train_metrics_in_process(best_fit).items():
        assert ev.metrics[key] == value, key


def test_the_peeking_program_gains_nothing_on_the_held_out_test_sets():
    # The test datasets live in files (OR-Library, FunSearch's Weibull 5k): told their exact
    # paths, the hostile program still scores exactly best fit's test scores.
    from evolve.evaluators.harness import evaluate_code

    problem = load_problem("scheduling/binpacking_online")
    ev = evaluate_code(problem, _peeking_with_data_files(), sets=("train", "test"))
    assert ev.valid, ev.error
    for name in CONFIG["instances"]["test"]:
        insts = dataset("test", name)
        honest = EV.aggregate([EV.evaluate(play(i, best_fit), {}, i) for i in insts], insts, {})
        assert ev.metrics[f"test_{name}"] == honest, name
    assert round(ev.metrics["test_weibull5k"], 2) == 3.98  # FunSearch's best fit, not better


def test_the_peeking_search_really_runs_in_the_sandbox_and_comes_back_empty():
    # Guard against the test above passing because the search never ran: a wrapper ends the
    # run right after the program's second search and reports what it found.
    from evolve.evaluators.harness import evaluate_code

    probe = """

_search_once = _search
_calls = []


def _search(n, seen, exclude):
    found, where = _search_once(n, seen, exclude)
    _calls.append(found is not None)
    if len(_calls) == 2:
        opened = [p for p, v in FILES_TRIED.items() if not isinstance(v, str)]
        raise RuntimeError(
            f"searched twice: future found = {any(_calls)}; "
            f"data files tried {len(FILES_TRIED)}, opened {opened}"
        )
    return found, where
"""
    problem = load_problem("scheduling/binpacking_online")
    ev = evaluate_code(problem, _peeking_with_data_files() + probe, sets=("train",))
    assert ev.status == "crash"
    assert "searched twice: future found = False" in ev.error
    # Every data file was tried, and none opened.
    tried = re.search(r"data files tried (\d+), opened (\[.*?\])", ev.error)
    assert tried and int(tried[1]) >= len(DATA_FILES) == 9 and tried[2] == "[]", ev.error
