"""Benchmark: does the search beat simple baselines? Same operator, same budget, many seeds.

    python bench/search.py [--seeds 5] [--first-seed 0] [--budget 150] [--problems a,b]
                           [--arms sample,hill,engine] [--arm 'NAME=OVERRIDE ...'] [--llm local]
                           [--jobs 2] [--json] [--keep DIR]

Arms, all with the same proposal operator (`llm=`, the offline local mutator by default) and
the same number of evaluations per run:
  sample   every child is an edit of the seed program (search.selection=seed, one island)
  hill     one parent, the best so far (search.selection=hill_climb, one island)
  engine   the default search (conf/search/default.yaml)
  ARM+x    the engine with a feature switched on, ARM-x with one switched off (FEATURES)
  NAME     given with --arm: the engine with these overrides (e.g. --arm
           'uniform_ties=search.ties=uniform'), on every problem, besides the arms chosen
For each problem and arm it prints the median and interquartile range of the best score at 25,
50 and 100% of the budget, and for the engine against each other arm the Vargha-Delaney A: the
probability that a random engine run ends better than a random run of the other arm (0.5: no
difference; ties count half), computed from the runs themselves. Runs of one seed are paired
across arms (step k's request carries the same seed in every arm: StepStreams in
evolve/engine/island_actor.py). Scores are in the problem's own direction. `--json` prints
one JSON object:
  {"problems": {PROBLEM: {"direction": d, "seeds": [...], "arms": {ARM: {"median": x,
   "iqr": [lo, hi], "at": {"25": {...}, "50": {...}}, "test": {...}, "runs": [...]}},
   "a_engine_vs": {ARM: a}}}}
("test": the final best on the problem's held-out test set, where it has one; each run's
"children": how its children fared against their parents, better/equal/worse/invalid, and
how many distinct parents and children of the seed it had, read from its database.)

All runs share one Ray. `--jobs` runs start in parallel (each in a runner process that joins
that Ray and pays its imports once): a run's start-up (its actors' processes and imports) and
the end of the previous one overlap the other's evaluations. Ray's CPUs stay those of the
machine, so evaluator workers (one CPU each) never outnumber the cores: a second run's workers
wait for the first run's to end, and a child's time limit means what it means in a lone run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import os
import queue
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

PROBLEMS = [
    "erdos/min_overlap",
    "erdos/golomb",
    "scheduling/jobshop",
    "scheduling/binpacking_online",
]
# Per problem: overrides that keep one run short (a small job-shop instance).
PROBLEM_OVERRIDES: dict[str, list[str]] = {"scheduling/jobshop": ["problem.params.instance=ft10"]}
ARMS: dict[str, list[str]] = {
    "sample": [
        "search.selection=seed",
        "search.islands=1",
        "search.inspirations=0",
        "search.stagnation_reset=0",
        "search.novelty.enabled=false",
    ],
    "hill": [
        "search.selection=hill_climb",
        "search.islands=1",
        "search.inspirations=0",
        "search.stagnation_reset=0",
        "search.novelty.enabled=false",
    ],
    "engine": [],
}
FEATURES: dict[str, list[str]] = {
    "engine-novelty": ["search.novelty.enabled=false"],
    "engine+judge": ["search.judge.enabled=true", "search.judge.audit=0.25"],
    "engine+scratchpad": ["search.scratchpad.enabled=true", "search.scratchpad.every=25"],
    "engine+variants": ["search.prompt_variants=[diff,rewrite,explain,crossover]"],
}
# Feature arms run on these problems by default (all arms run with --arms/--problems given).
FEATURE_PROBLEMS = ("erdos/min_overlap",)
# Per problem: a budget that keeps one run to about a minute here (default: --budget).
PROBLEM_BUDGET = {"scheduling/binpacking_online": 40}
CHECKPOINTS = (0.25, 0.5, 1.0)


def available_problems(names: list[str]) -> dict[str, str]:
    """name -> direction of each problem that loads here."""
    from evolve.problem import ProblemError, load_problem

    out = {}
    for name in names:
        try:
            out[name] = load_problem(name).direction
        except ProblemError:
            print(f"(skipping {name}: not available here)", file=sys.stderr)
    return out


def one_run(problem: str, arm: list[str], seed: int, budget: int, llm: str, root: str) -> dict:
    """Run the engine once (in this process, on the shared Ray) and read its best-so-far."""
    from evolve.cli import main

    runs = Path(tempfile.mkdtemp(prefix=f"{problem.replace('/', '-')}-s{seed}-", dir=root))
    args = [
        "run",
        f"runs_dir={runs}",
        "report.live=false",
        "literature.enabled=false",
        f"problem={problem}",
        f"llm={llm}",
        f"budget.evaluations={budget}",
        f"seed={seed}",
        *PROBLEM_OVERRIDES.get(problem, []),
        *arm,
    ]
    t0 = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    if rc != 0:
        raise RuntimeError(f"evolve {' '.join(args)} exited with {rc}")
    (db_path,) = runs.glob("*/*/evolve.db")
    return {
        "seed": seed,
        "seconds": time.monotonic() - t0,
        **best_so_far(db_path, budget),
        **filters(db_path),
        "children": children(db_path),
        "test": test_score(db_path),
    }


def test_score(db_path: Path) -> float | None:
    """The run's final best scored on the problem's held-out test set (None: no test set)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT json_extract(metrics, '$.test') FROM test_scores ORDER BY id DESC LIMIT 1"
        ).fetchone()
    except sqlite3.OperationalError:  # a database without the table: no test set scored
        row = None
    db.close()
    return None if row is None or row[0] is None else float(row[0])


def runner(address: str, bench_pid: int) -> int:
    """A runner process (`--runner ADDRESS`): joins the bench's Ray, then runs each job read
    from stdin (one JSON object of one_run's arguments a line) and answers on stdout with one
    JSON line, {"result": ...} or {"error": "..."}."""
    import ctypes
    import signal

    # A bench killed or crashed must not leave its runners behind, retrying a Ray that is
    # gone (ray.init retries in C++ and holds the interpreter: no Python thread could watch).
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != bench_pid:  # the bench died before the line above
        return 1
    import ray

    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed (Ray, the engine) must not break the answers
    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    for line in sys.stdin:
        try:
            answer = {"result": one_run(**json.loads(line))}
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the bench
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    ray.shutdown()
    return 0


class Runners:
    """`jobs` runner processes on the bench's Ray, each taking one run at a time."""

    def __init__(self, jobs: int, address: str) -> None:
        self.idle: queue.Queue[subprocess.Popen] = queue.Queue()
        self.procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--runner", address, "--bench-pid", str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(jobs)
        ]
        for p in self.procs:
            self.idle.put(p)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)

    def _run(self, job: dict) -> dict:
        proc = self.idle.get()
        try:
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        finally:
            self.idle.put(proc)
        if not line:
            raise RuntimeError(f"a runner process died (exit {proc.poll()}) during {job}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"run {job} failed: {answer['error']}")
        return answer["result"]

    def submit(self, job: dict) -> concurrent.futures.Future:
        return self.pool.submit(self._run, job)

    def close(self) -> None:
        self.pool.shutdown()
        for p in self.procs:
            p.stdin.close()
        for p in self.procs:
            p.wait()


def filters(db_path: Path) -> dict:
    """The run's model calls, what the novelty filter and the judge turned away, and how the
    judge's audited rejections (run anyway) fared against their parents."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    calls = db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
    novelty = db.execute(
        "SELECT COUNT(*) FROM programs WHERE status = 'rejected' AND reason LIKE 'novelty:%'"
    ).fetchone()[0]
    judged = db.execute(
        "SELECT COUNT(*) FROM programs WHERE status = 'rejected' AND reason LIKE 'judge:%'"
    ).fetchone()[0]
    audits = db.execute(
        "SELECT c.fitness > p.fitness FROM programs c JOIN programs p ON p.id = c.parent_id "
        "WHERE json_extract(c.metrics, '$.judge_rejected') = 1"
    ).fetchall()
    db.close()
    return {
        "llm_calls": calls,
        "rejected_novelty": novelty,
        "rejected_judge": judged,
        "judge_audits": len(audits),
        "judge_audits_improved": sum(1 for (a,) in audits if a),
    }


def children(db_path: Path) -> dict:
    """How the run's counted children fared against their parents, and whom it bred from:
    what tells a climb on a slope (many better) from a walk on a plateau (most equal)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT c.valid, c.fitness > p.fitness, c.fitness = p.fitness, c.parent_id, "
        "p.parent_id IS NULL FROM programs c JOIN programs p ON p.id = c.parent_id "
        "WHERE c.status != 'rejected' AND c.mode != 'migrant'"
    ).fetchall()
    db.close()
    valid = [r for r in rows if r[0]]
    return {
        "better": sum(1 for r in valid if r[1]),
        "equal": sum(1 for r in valid if r[2]),
        "worse": sum(1 for r in valid if not r[1] and not r[2]),
        "invalid": len(rows) - len(valid),
        "parents": len({r[3] for r in rows}),  # distinct programs bred from
        "of_seed": sum(1 for r in rows if r[4]),  # children of the seed program
    }


def best_so_far(db_path: Path, budget: int) -> dict:
    """The best score after 25, 50 and 100% of the counted evaluations, in the problem's own
    direction, read from the run database (the seed counts as evaluation 1). Children are
    taken in step order (the order the island made them), not the order they reached the
    database, which the machine's load decides."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT valid, score, fitness FROM programs WHERE status != 'rejected' "
        "AND mode != 'migrant' ORDER BY step IS NOT NULL, step, seq"
    ).fetchall()
    db.close()
    best_fit, best_score, at = None, None, {}
    marks = {max(1, round(c * budget)): c for c in CHECKPOINTS}
    for n, (valid, score, fitness) in enumerate(rows, start=1):
        if valid and (best_fit is None or fitness > best_fit):
            best_fit, best_score = fitness, score
        if n in marks:
            at[str(int(marks[n] * 100))] = best_score
    for c in CHECKPOINTS:  # a run that stopped short keeps its last best
        at.setdefault(str(int(c * 100)), best_score)
    return {"best": at, "evaluations": len(rows)}


def vargha_delaney(a: list[float], b: list[float], direction: str) -> float:
    """P(a random run of `a` ends better than one of `b`) + 0.5 P(tie)."""
    if not a or not b:
        return float("nan")
    wins = 0.0
    for x in a:
        for y in b:
            if x == y:
                wins += 0.5
            elif (x > y) == (direction == "max"):
                wins += 1.0
    return wins / (len(a) * len(b))


def _is_override(text: str) -> bool:
    """KEY=VALUE, +KEY=VALUE (add) or ~KEY (delete), as Hydra takes them."""
    key, eq, _ = text.partition("=")
    return text.startswith("~") or bool(eq and key.lstrip("+"))


def parse_arm(text: str, taken: dict[str, list[str]]) -> tuple[str, list[str]]:
    """`NAME=OVERRIDE [OVERRIDE ...]` (from --arm) -> (NAME, [OVERRIDE, ...]).

    Raises ValueError naming what to fix: no name, a name already taken, an override that is
    not KEY=VALUE."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    overrides = rest.split()
    if not sep or not name or not name.replace("_", "").replace("+", "").isalnum():
        raise ValueError(
            f"--arm {text!r}: give NAME=OVERRIDE ..., NAME of letters, digits, _ and + "
            "(e.g. --arm 'uniform_ties=search.ties=uniform')"
        )
    if name in taken:
        raise ValueError(f"--arm {text!r}: the arm {name!r} exists already; choose another name")
    if not overrides or not all(map(_is_override, overrides)):
        raise ValueError(
            f"--arm {text!r}: after {name}= give one or more Hydra overrides KEY=VALUE, "
            "separated by spaces"
        )
    return name, overrides


def summary(values: list[float]) -> dict:
    qs = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return {"median": statistics.median(values), "iqr": [qs[0], qs[2]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--seeds",
        type=int,
        default=5,
        help="seeds per arm (five cannot tell ft10's 1129 from 1131: see docs/search.md)",
    )
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds are FIRST_SEED, FIRST_SEED + 1, ...: more seeds in a second invocation",
    )
    ap.add_argument("--budget", type=int, default=150)
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument(
        "--arms",
        help="default: the baselines and the engine everywhere, the "
        f"features on {', '.join(FEATURE_PROBLEMS)}",
    )
    ap.add_argument(
        "--arm",
        action="append",
        default=[],
        metavar="NAME=OVERRIDE ...",
        help="one more arm: the engine with these Hydra overrides, run on every problem "
        "besides the arms chosen (repeatable; e.g. --arm 'uniform_ties=search.ties=uniform')",
    )
    ap.add_argument("--llm", default="local")
    ap.add_argument(
        "--budget-fixed",
        action="store_true",
        help="use --budget on every problem (default: a smaller one where evaluations are slow)",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="runs started in parallel, each in a runner process on the shared Ray (1: every "
        "run in this process, one after another)",
    )
    ap.add_argument("--runner", metavar="ADDRESS", help=argparse.SUPPRESS)
    ap.add_argument("--bench-pid", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", help="keep the run folders here (default: a temporary folder)")
    args = ap.parse_args()
    if args.runner:
        return runner(args.runner, args.bench_pid)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.seeds < 1:
        ap.error(f"--seeds must be at least 1, got {args.seeds}")
    arms = {**ARMS, **FEATURES}
    chosen = [a for a in (args.arms or ",".join(arms)).split(",") if a]
    unknown = [a for a in chosen if a not in arms]
    if unknown:
        ap.error(f"unknown arm(s) {unknown}; the arms are {', '.join(arms)}")
    own: list[str] = []  # arms given with --arm, run on every problem
    for text in args.arm:
        try:
            name, overrides = parse_arm(text, arms)
        except ValueError as e:
            ap.error(str(e))
        arms[name] = overrides
        own.append(name)
    chosen += own
    import ray

    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    root = Path(args.keep or tempfile.mkdtemp(prefix="evolve-bench-search-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    out: dict = {
        "problems": {},
        "budget": args.budget,
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "llm": args.llm,
        "jobs": args.jobs,
    }
    runners = Runners(args.jobs, ray.get_runtime_context().gcs_address) if args.jobs > 1 else None

    def submit(job: dict) -> concurrent.futures.Future:
        if runners is not None:
            return runners.submit(job)
        done: concurrent.futures.Future = concurrent.futures.Future()
        done.set_result(one_run(**job))  # in this process, one after another
        return done

    try:  # a failure while planning (a problem that does not load) closes the runners too
        # Every run is handed out first, so runners never wait for a table to be printed.
        plan: dict[str, dict] = {}
        for problem, direction in available_problems(args.problems.split(",")).items():
            budget = args.budget if args.budget_fixed else PROBLEM_BUDGET.get(problem, args.budget)
            seeds = list(range(args.first_seed, args.first_seed + args.seeds))
            plan[problem] = {"direction": direction, "budget": budget, "seeds": seeds, "arms": {}}
            for arm in chosen:
                if arm in FEATURES and not args.arms and problem not in FEATURE_PROBLEMS:
                    continue
                plan[problem]["arms"][arm] = [
                    submit(
                        {
                            "problem": problem,
                            "arm": arms[arm],
                            "seed": seed,
                            "budget": budget,
                            "llm": args.llm,
                            "root": str(root),
                        }
                    )
                    for seed in seeds
                ]
        for problem, p in plan.items():
            per_arm: dict = {}
            for arm, futures in p["arms"].items():
                runs = [f.result() for f in futures]
                finals = [r["best"]["100"] for r in runs]
                tests = [r["test"] for r in runs if r.get("test") is not None]
                per_arm[arm] = {
                    "budget": p["budget"],
                    **summary(finals),
                    "at": {c: summary([r["best"][c] for r in runs]) for c in ("25", "50")},
                    **({"test": summary(tests)} if tests else {}),
                    "runs": runs,
                }
            entry = {"direction": p["direction"], "seeds": p["seeds"], "arms": per_arm}
            if "engine" in per_arm:
                eng = [r["best"]["100"] for r in per_arm["engine"]["runs"]]
                entry["a_engine_vs"] = {
                    arm: vargha_delaney(eng, [r["best"]["100"] for r in v["runs"]], p["direction"])
                    for arm, v in per_arm.items()
                    if arm != "engine"
                }
            out["problems"][problem] = entry
            if not args.json:
                print_table(problem, entry)
                sys.stdout.flush()  # a table as soon as its problem is done
    finally:
        if runners is not None:
            runners.close()
    out["seconds"] = time.monotonic() - t0
    ray.shutdown()
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"\n{args.seeds} seeds x {args.budget} evaluations per run, llm={args.llm}, "
            f"{args.jobs} at a time; {out['seconds']:.0f} s in all; run folders in {root}"
        )
    return 0


def print_table(problem: str, entry: dict) -> None:
    word = "lower" if entry["direction"] == "min" else "higher"
    print(f"\n{problem} (best score, {word} is better; median [IQR] over seeds)")
    print(f"  {'arm':16s} {'25%':>24s} {'50%':>24s} {'100%':>24s}   A(engine vs)")
    for arm, v in entry["arms"].items():
        cells = [v["at"]["25"], v["at"]["50"], v]
        text = [f"{c['median']:.6g} [{c['iqr'][0]:.4g}, {c['iqr'][1]:.4g}]" for c in cells]
        a = entry.get("a_engine_vs", {}).get(arm)
        print(
            f"  {arm:16s} {text[0]:>24s} {text[1]:>24s} {text[2]:>24s}   "
            + ("" if a is None else f"{a:.2f}")
        )
    print("  children against their parent, all seeds (better / equal / worse / invalid):")
    for arm, v in entry["arms"].items():
        kids = [r["children"] for r in v["runs"]]
        n = sum(sum(k[w] for w in ("better", "equal", "worse", "invalid")) for k in kids) or 1
        shares = " / ".join(
            f"{100 * sum(k[w] for k in kids) / n:.0f}%"
            for w in ("better", "equal", "worse", "invalid")
        )
        print(f"    {arm:16s} {shares}")
    print("  model calls per run (median); children turned away before running (all seeds):")
    for arm, v in entry["arms"].items():
        runs = v["runs"]
        calls = statistics.median(r["llm_calls"] for r in runs)
        novelty = sum(r["rejected_novelty"] for r in runs)
        judged = sum(r["rejected_judge"] for r in runs)
        print(f"    {arm:16s} {calls:5.0f} calls; novelty filter {novelty}, judge {judged}")
    tests = {arm: v["test"] for arm, v in entry["arms"].items() if "test" in v}
    if tests:
        print(
            "  the final best on the held-out test set: "
            + ", ".join(f"{arm} {t['median']:.6g}" for arm, t in tests.items())
        )


if __name__ == "__main__":
    sys.exit(main())
