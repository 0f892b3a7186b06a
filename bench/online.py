"""Benchmark: what feeding an online problem's items one at a time costs.

    python bench/online.py [--instances 70] [--items 500] [--repeat 3]

An online child must never hold the items still to come, so the trusted evaluator process
sends each item over a socket and waits for the decision (evolve/evaluators/online.py). This
prints, for K instances of N items packed by best fit (70 x 500 = 35,000 items, about the
OR-Library test sets' total): the harness run in-process on a plain list (the floor: the
priority function's own cost), the same through the sandbox (one sandboxed child per
instance) with the evaluator and the child pinned to one CPU (the default), and unpinned;
and the cost per item of the channel (sandboxed minus in-process, per item, which includes
each instance's sandbox start). Ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from evolve.evaluators.harness import encode_inputs  # noqa: E402
from evolve.problem import load_problem  # noqa: E402
from evolve.sandbox import Sandbox, SandboxRequest  # noqa: E402

TOY = Path(__file__).resolve().parents[1] / "tests" / "heuristics" / "toy_packing"
BEST_FIT = "def priority(item, bins):\n    return -(bins - item)\n"


class _ListChannel:
    """The harness's channel over a plain list, in-process (the bench's floor only)."""

    def __init__(self, sizes: np.ndarray) -> None:
        self.items = iter(sizes.tolist())
        self.decisions: list[float] = []

    def recv(self) -> np.ndarray | None:
        x = next(self.items, None)
        return None if x is None else np.array([x])

    def send(self, decision) -> None:
        self.decisions.append(float(np.asarray(decision).ravel()[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=70)
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    problem = load_problem(TOY)
    mod = problem.evaluator_module
    rng = np.random.default_rng(0)
    instances = [
        {"name": f"i{k}", "sizes": rng.integers(5, 70, args.items).astype(float)}
        for k in range(args.instances)
    ]
    total = args.instances * args.items
    harness_ns: dict = {}
    exec(compile(problem.harness.read_text(), "harness.py", "exec"), harness_ns)  # trusted
    program: dict = {}
    exec(compile(BEST_FIT, "program.py", "exec"), program)  # trusted bench code

    def in_process() -> float:
        t = time.perf_counter()
        for instance in instances:
            session = mod.online_session(instance, {})
            harness_ns["run"](program, session.header(), _ListChannel(instance["sizes"]))
        return time.perf_counter() - t

    times = {"in-process (plain list)": [in_process() for _ in range(args.repeat)]}
    with Sandbox() as sb:
        for label, pin in (("sandbox, pinned to one CPU", True), ("sandbox, unpinned", False)):
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                for instance in instances:
                    session = mod.online_session(instance, {})
                    req = SandboxRequest(
                        BEST_FIT,
                        entrypoint="priority",
                        harness=problem.harness.read_text(),
                        inputs=encode_inputs(session.header()),
                        time_s=120,
                    )
                    res = sb.run(req, session, pin=pin)
                    assert res.status == "ok" and not res.online_error, (
                        res.error,
                        res.online_error,
                    )
                    assert len(session.outputs()["assignment"]) == args.items
                runs.append(time.perf_counter() - t)
            times[label] = runs
    base = statistics.median(times["in-process (plain list)"])
    print(
        f"{args.instances} instances x {args.items} items = {total} items, best fit, "
        f"median of {args.repeat} (CPUs: {os.cpu_count()}, load {os.getloadavg()[0]:.1f})"
    )
    for label, runs in times.items():
        med = statistics.median(runs)
        per_item = (med - base) / total * 1e6
        extra = "" if med == base else f"  channel +{per_item:.1f} us/item"
        print(f"  {label:28s} {med:7.3f} s  x{med / base:4.2f}{extra}")


if __name__ == "__main__":
    main()
