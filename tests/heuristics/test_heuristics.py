"""Heuristic problems on real components: instance sets, cascades and the online channel.

The fixture problem (tests/heuristics/toy_packing) is a small online bin packing: a child's
priority() decides each item as it arrives; items come from the trusted evaluator process one
frame at a time, through the real sandbox.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

import evolve
from evolve.evaluators.harness import evaluate_code
from evolve.problem import ProblemError, load_problem

TOY = Path(__file__).parent / "toy_packing"
FIRST_FIT = "import numpy as np\n\ndef priority(item, bins):\n    return np.zeros(len(bins))\n"
BEST_FIT = "def priority(item, bins):\n    return -(bins - item)\n"
WORST_FIT = "def priority(item, bins):\n    return bins - item\n"


@pytest.fixture(scope="module")
def toy():
    return load_problem(TOY)


def _copy_with(tmp_path: Path, **changes) -> Path:
    folder = tmp_path / "toy"
    shutil.copytree(TOY, folder)
    raw = yaml.safe_load((folder / "problem.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    (folder / "problem.yaml").write_text(yaml.safe_dump(raw))
    return folder


# --- problem.yaml ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"instances": {"validation": {"a": {"generator": "uniform", "seeds": [1]}}}}, "train set"),
        (
            {"instances": {"train": {"a": {"generator": "u", "seeds": [1]}}, "holdout": {}}},
            "instances: unknown key .holdout.",
        ),
        ({"instances": {"train": {"a": {"generator": "u"}}}}, "seeds must be a non-empty list"),
        (
            {"instances": {"train": {"a": {"generator": "u", "seeds": [1], "file": "x"}}}},
            "exactly one of",
        ),
        (
            {"instances": {"train": {"a-b": {"generator": "u", "seeds": [1]}}}},
            "must be an identifier",
        ),
        (
            {"cascade": [{"name": "a", "instances": 3}, {"name": "b", "instances": 2}]},
            "more instances each",
        ),
        ({"cascade": [{"name": "a", "instances": 1, "relative_to": "grandparent"}]}, "relative_to"),
        ({"online": {"item_size": 0}}, "online.item_size"),
        ({"instances": None}, "need instance sets"),
    ],
)
def test_bad_instance_declarations_are_one_line_errors(tmp_path, changes, message):
    folder = _copy_with(tmp_path, **changes)
    with pytest.raises(ProblemError, match=message):
        load_problem(folder)


def test_instances_come_from_the_trusted_loader_in_declared_order(toy):
    train = toy.instances("train")
    assert [(ds, inst["name"]) for ds, inst in train] == [("small", f"u{s}") for s in range(4)]
    test = toy.instances("test")
    assert [ds for ds, _ in test] == ["large", "fixed"]
    assert list(test[1][1]["sizes"]) == [60, 50, 40, 30, 20, 10]


# --- scoring on every set ------------------------------------------------------------------
def _by_hand_first_fit(sizes, capacity=100.0):
    bins: list[float] = []
    for s in sizes:
        for i, free in enumerate(bins):
            if free >= s:
                bins[i] -= s
                break
        else:
            bins.append(capacity - s)
    return len(bins)


def test_every_set_and_dataset_is_a_metric_and_train_is_the_score(toy):
    ev = evaluate_code(evolve.load_problem(TOY), FIRST_FIT)
    assert ev.valid, ev.error
    by_hand = [_by_hand_first_fit(i["sizes"]) / len(i["sizes"]) for _, i in toy.instances("train")]
    assert ev.score == pytest.approx(sum(by_hand) / 4) == ev.metrics["train"]
    assert ev.metrics["test_fixed"] == pytest.approx(
        3 / 6
    )  # 60+40 | 50+30+20 | 10... by hand: 3 bins
    assert ev.metrics["test"] == pytest.approx(
        (ev.metrics["test_large"] + ev.metrics["test_fixed"]) / 2
    )
    assert {"train_small", "validation_small", "validation", "test_large"} <= set(ev.metrics)
    # The search's own evaluations never touch the test set.
    train_only = evaluate_code(toy, FIRST_FIT, sets=("train", "validation"))
    assert not any(k.startswith("test") for k in train_only.metrics)
    assert train_only.score == ev.score


def test_held_out_scores_never_reach_the_prompt(toy):
    from evolve.mutation.prompts import ParentView, build_messages

    ev = evaluate_code(toy, FIRST_FIT)
    messages = build_messages(
        toy, ParentView(FIRST_FIT, ev.score, ev.metrics, ev.feedback), [], "diff"
    )
    text = "\n".join(m["content"] for m in messages)
    assert "validation" not in text and "test_" not in text
    assert f"{ev.metrics['validation']:.6g}" not in ev.feedback


def test_trusted_inputs_are_numeric_and_size_capped():
    import numpy as np

    from evolve.evaluators.harness import InputError, encode_inputs

    out = encode_inputs({"durations": np.arange(6).reshape(2, 3), "n": np.int64(3)})
    assert out["durations"] == {"__ndarray__": "<i8", "shape": [2, 3], "data": [0, 1, 2, 3, 4, 5]}
    assert out["n"] == 3
    with pytest.raises(InputError, match=r"over 1000 bytes \(at 'big'\): give it a smaller"):
        encode_inputs({"small": np.zeros(10), "big": np.zeros(200)}, limit=1000)
    with pytest.raises(InputError, match="only numeric arrays go to a child"):
        encode_inputs({"names": np.array(["a", "b"])})
    with pytest.raises(InputError, match="give numbers, strings or arrays"):
        encode_inputs({"f": len})


# --- the cascade ---------------------------------------------------------------------------
def test_cascade_stops_a_child_worse_than_its_parent_after_the_cheap_stage(toy):
    parent = evaluate_code(toy, BEST_FIT, sets=("train",), use_cascade=True)
    assert parent.valid and "stage_quick" in parent.metrics
    child = evaluate_code(
        toy,
        WORST_FIT,
        sets=("train",),
        use_cascade=True,
        context={"parent": {"metrics": parent.metrics}},
    )
    assert child.status == "stopped" and not child.valid
    assert child.metrics["instances_run"] == 1 and child.metrics["cascade_saved"] == 3
    assert child.metrics["stage_quick"] > parent.metrics["stage_quick"]
    assert "stopped by the cascade after stage 'quick'" in child.error
    # The same child against a worse parent goes through every stage.
    # (Its stage scores are there to compare with: a missing one would let any child through.)
    worse = evaluate_code(toy, WORST_FIT, sets=("train",), use_cascade=True)
    assert worse.metrics["stage_quick"] == child.metrics["stage_quick"]
    passed = evaluate_code(
        toy,
        WORST_FIT,
        sets=("train",),
        use_cascade=True,
        context={"parent": {"metrics": worse.metrics}},
    )
    assert passed.valid and passed.metrics["instances_run"] == 4
    assert passed.score == worse.score


def test_cascade_relative_to_the_island_best_ignores_the_parent(tmp_path, toy):
    folder = _copy_with(
        tmp_path,
        cascade=[{"name": "quick", "instances": 1, "relative_to": "island_best"}, {"name": "full"}],
    )
    problem = load_problem(folder)
    # Run through the cascade with nothing to compare with, so their stage scores are recorded.
    best = evaluate_code(problem, BEST_FIT, sets=("train",), use_cascade=True)
    worst = evaluate_code(problem, WORST_FIT, sets=("train",), use_cascade=True)
    assert best.metrics["stage_quick"] < worst.metrics["stage_quick"]
    # Held to the island's best (best fit), worst fit stops, however weak its parent.
    context = {"parent": {"metrics": worst.metrics}, "island_best": {"metrics": best.metrics}}
    child = evaluate_code(problem, WORST_FIT, sets=("train",), use_cascade=True, context=context)
    assert child.status == "stopped" and child.metrics["cascade_stage"] == 1
    assert "against its island best's" in child.error
    # Held to a weaker island best, it goes through every stage.
    context["island_best"] = {"metrics": worst.metrics}
    passed = evaluate_code(problem, WORST_FIT, sets=("train",), use_cascade=True, context=context)
    assert passed.valid and passed.metrics["instances_run"] == 4


def test_cascade_with_a_fixed_threshold(tmp_path, toy):
    best = evaluate_code(toy, BEST_FIT, sets=("train",), use_cascade=True)
    worst = evaluate_code(toy, WORST_FIT, sets=("train",), use_cascade=True)
    cut = (best.metrics["stage_quick"] + worst.metrics["stage_quick"]) / 2
    folder = _copy_with(
        tmp_path, cascade=[{"name": "quick", "instances": 1, "threshold": cut}, {"name": "full"}]
    )
    problem = load_problem(folder)
    stopped = evaluate_code(problem, WORST_FIT, sets=("train",), use_cascade=True)
    assert stopped.status == "stopped" and f"against the threshold {cut:.6g}" in stopped.error
    assert stopped.metrics["cascade_saved"] == 3
    passed = evaluate_code(problem, BEST_FIT, sets=("train",), use_cascade=True)
    assert passed.valid and passed.score == best.score


def test_a_failure_on_one_instance_fails_the_child_and_says_where(toy):
    code = "def priority(item, bins):\n    if item > 60:\n        raise ValueError('big item')\n    return -bins\n"
    ev = evaluate_code(toy, code, sets=("train",))
    assert (
        ev.status == "crash"
        and "on train instance u0 (small)" in ev.error
        and "big item" in ev.error
    )


# --- the online channel ---------------------------------------------------------------------
def test_a_refused_decision_is_invalid_with_the_reason(toy):
    # The program reaches the harness's channel through its caller's frame and sends a bin
    # index of its own before the harness answers: the trusted session refuses it.
    code = (
        "import sys\n"
        "def priority(item, bins):\n"
        "    sys._getframe(1).f_locals['channel'].send([10**9])\n"
        "    return -bins\n"
    )
    ev = evaluate_code(toy, code, sets=("train",))
    assert ev.status == "invalid"
    assert "item 0: bin 1000000000.0 is not a bin index" in ev.error


def test_a_child_that_stops_answering_is_invalid(toy):
    code = "import os\ndef priority(item, bins):\n    os._exit(0)\n"
    ev = evaluate_code(toy, code, sets=("train",))
    assert not ev.valid and ev.status in ("crash", "invalid")


PEEKING = """
import gc, sys, glob, os
import numpy as np

FOUND = []


def _hunt(item, bins):
    n = len(bins)
    # 1. Every object the collector tracks: a float array of n sizes, or a list of them.
    for obj in gc.get_objects():
        if isinstance(obj, np.ndarray) and obj.shape == (n,) and obj is not bins and np.all(obj < 100) and np.all(obj >= 5):
            return obj
        if isinstance(obj, (list, tuple)) and len(obj) == n and all(isinstance(v, float) and 5 <= v < 70 for v in obj[:50]):
            return obj
    # 2. Every frame up the stack and every module's globals.
    f = sys._getframe()
    while f is not None:
        for v in list(f.f_locals.values()) + list(f.f_globals.values()):
            if isinstance(v, dict) and ("sizes" in v or "items" in v):
                return v
        f = f.f_back
    # 3. The problem's data files, wherever they are.
    for pattern in ("/work/**/toy_packing/data/*.txt", "/tmp/**/toy_packing/data/*.txt", "/**/fixed.txt"):
        try:
            for path in glob.glob(pattern, recursive=True)[:3]:
                return open(path).read()
        except OSError:
            pass
    return None


def priority(item, bins):
    if not FOUND:
        FOUND.append(_hunt(item, bins))
    if FOUND[0] is not None:
        return -(bins - item)  # knows the future: packs differently (best fit)
    return np.zeros(len(bins))  # the honest fallback: first fit
"""


def test_a_program_hunting_for_future_items_scores_what_an_honest_policy_scores(toy):
    honest = evaluate_code(toy, FIRST_FIT)
    peeking = evaluate_code(toy, PEEKING)
    assert honest.valid and peeking.valid, peeking.error
    # Had it found anything it would pack by best fit, which scores differently here.
    assert evaluate_code(toy, BEST_FIT).metrics["train"] != honest.metrics["train"]
    for key in ("train", "validation", "test_large", "test_fixed"):
        assert peeking.metrics[key] == honest.metrics[key], key


# --- the engine ----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_run_picks_its_best_by_validation_and_scores_it_once_on_test(
    ray_session, tmp_path, capsys
):
    from evolve.cli import main

    runs = tmp_path / "runs"
    rc = main(
        [
            "run",
            f"runs_dir={runs}",
            "report.live=false",
            "problem=custom",
            f"problem.name={TOY}",
            "budget.evaluations=24",
            "search.islands=1",
            "literature.enabled=false",
        ]
    )
    assert rc == 0
    (run_dir,) = [p for p in (runs / "toy_packing").iterdir() if p.is_dir()]
    db = sqlite3.connect(run_dir / "evolve.db")
    rows = db.execute(
        "SELECT id, json_extract(metrics, '$.validation'), json_extract(metrics, '$.test') "
        "FROM programs WHERE valid = 1"
    ).fetchall()
    assert rows and all(v is not None and t is None for _, v, t in rows)  # search never saw test
    best_validation = min(v for _, v, _ in rows)
    (pid, status, test) = db.execute(
        "SELECT program_id, status, json_extract(metrics, '$.test') FROM test_scores"
    ).fetchone()
    assert status == "ok" and test is not None
    chosen = [v for i, v, _ in rows if i == pid]
    assert chosen == [best_validation]
    assert (run_dir / "best_program.py").read_text() == db.execute(
        "SELECT code FROM programs WHERE id = ?", [pid]
    ).fetchone()[0]
    # Children the cascade stopped are recorded with the stage where they stopped.
    stopped = db.execute(
        "SELECT json_extract(metrics, '$.cascade_stage'), json_extract(metrics, '$.stage_quick'),"
        " json_extract(metrics, '$.cascade_saved'), reason FROM programs WHERE status = 'stopped'"
    ).fetchall()
    assert stopped, "no child was stopped by the cascade in 24 evaluations"
    assert all(
        s == 1 and q is not None and saved == 3 and "stage 'quick'" in e
        for s, q, saved, e in stopped
    )
    # `evolve show`: train, validation and test side by side, and what the cascade saved.
    capsys.readouterr()
    assert main(["show", str(run_dir)]) == 0
    shown = capsys.readouterr().out  # 80 columns, as a terminal's default
    assert "(by validation)" in shown
    header = next(line for line in shown.splitlines() if "┃" in line and "train" in line)
    assert header.index("train") < header.index("validation") < header.index("test")
    assert f"held-out test of program {pid}: train " in shown
    runs_full = db.execute(
        "SELECT COUNT(*), SUM(json_extract(metrics, '$.instances_run')) FROM programs "
        "WHERE json_extract(metrics, '$.instances_full') IS NOT NULL"
    ).fetchone()
    assert (
        f"cascade: {len(stopped)} of {runs_full[0]} children stopped early; "
        f"{runs_full[1]:.0f} instance runs instead of {4 * runs_full[0]}"
    ) in " ".join(shown.split())


# --- the literature check ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("known", "status"),
    [(0.5, "matches_known"), (0.4, "below_known"), (0.6, "improves_known")],
)
def test_the_literature_check_scores_the_named_metric_afresh(tmp_path, known, status):
    from evolve.literature.check import check_heuristic

    folder = _copy_with(tmp_path)
    (folder / "known.yaml").write_text(
        yaml.safe_dump(
            {
                "metric": "test_fixed",
                "direction": "min",
                "as_of": "2026-12",
                "best_known": {"value": known, "citation": "a test fixture", "date": "2026"},
            }
        )
    )
    verdict, metrics = check_heuristic(load_problem(folder), FIRST_FIT)
    assert metrics["test_fixed"] == pytest.approx(0.5)  # first fit: 3 bins for 6 items
    assert verdict.status == status and verdict.score == pytest.approx(0.5)
    assert verdict.reason.startswith("on test_fixed")
    if status == "improves_known":
        assert verdict.reverified and "two fresh evaluations" in verdict.reason


def test_a_known_metric_the_problem_does_not_report_is_a_clear_error(tmp_path):
    from evolve.literature.check import check_heuristic

    folder = _copy_with(tmp_path)
    (folder / "known.yaml").write_text(
        yaml.safe_dump({"metric": "test_nope", "best_known": {"value": 1, "citation": "x"}})
    )
    with pytest.raises(ValueError, match="test_nope"):
        check_heuristic(load_problem(folder), FIRST_FIT)


# --- the command line ----------------------------------------------------------------------
def _evolve(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "evolve.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_eval_json_reports_every_set_and_dataset(tmp_path):
    prog = tmp_path / "best_fit.py"
    prog.write_text(BEST_FIT)
    r = _evolve("eval", str(TOY), str(prog), "--json")
    assert r.returncode == 0, r.stderr
    metrics = __import__("json").loads(r.stdout)["metrics"]
    for key in (
        "train",
        "train_small",
        "validation",
        "validation_small",
        "test",
        "test_large",
        "test_fixed",
    ):
        assert key in metrics, key


def test_score_takes_the_instance_a_heuristic_output_is_for(tmp_path):
    out = tmp_path / "a.json"
    out.write_text('{"assignment": [0, 1, 0, 1, 1, 2]}')  # 60+40 | 50+30+20 | 10
    r = _evolve("score", str(TOY), str(out), "--instance", "test/fixed", "--json")
    assert r.returncode == 0, r.stderr
    assert __import__("json").loads(r.stdout)["score"] == pytest.approx(0.5)
    r = _evolve("score", str(TOY), str(out))
    assert r.returncode == 2 and "--instance" in r.stderr and "test/fixed" in r.stderr
    r = _evolve("score", str(TOY), str(out), "--instance", "test/nope")
    assert r.returncode == 2 and "no instance 'test/nope'" in r.stderr


# --- a plug-in's own local moves ------------------------------------------------------------
def test_the_local_mutator_uses_a_problems_own_moves(toy):
    from evolve.mutation import local
    from evolve.mutation.prompts import ParentView, build_messages
    from evolve.program import apply_response

    prompt = "\n".join(
        m["content"]
        for m in build_messages(toy, ParentView(toy.initial_code, 0.4, {}, ""), [], "diff")
    )
    local.use_problem_moves(local.load_problem_moves(TOY))
    try:
        answers = [local.mutate_prompt(prompt, seed) for seed in range(20)]
    finally:
        local.use_problem_moves(None)
    own = [a for a in answers if "replace the rule by" in a]
    assert 3 <= len(own) <= 17  # about half, the rest the generic moves
    child, mode = apply_response(toy.initial_code, own[0])
    assert mode == "rewrite" and "def priority(item, bins):" in child
    assert evaluate_code(toy, child, sets=("train",)).valid


def test_check_problem_checks_the_moves_too(tmp_path):
    from evolve.scaffold import check_problem

    checks = {c.name: c for c in check_problem(TOY)}
    assert checks["mutations.py"].ok and checks["instances"].ok and checks["seed runs"].ok
    folder = _copy_with(tmp_path)
    (folder / "mutations.py").write_text("def propose(code, rng):\n    return ('x', 'def (')\n")
    checks = {c.name: c for c in check_problem(folder)}
    assert not checks["mutations.py"].ok and "SyntaxError" in checks["mutations.py"].detail
