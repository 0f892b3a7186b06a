"""Benchmark: what the sandbox costs per evaluation, and how many evaluations per second it gives.

    python bench/sandbox.py [--n 200] [--problem erdos/min_overlap]

Prints, in one run: the isolation layers in force, the median time per evaluation of a trivial
child through the full sandbox (fork server, namespaces, Landlock, rlimits, trusted scoring)
against the same function called in-process and scored the same way, the overhead, and the
evaluations per second with 2 workers (two Sandbox instances used concurrently, as two Ray
evaluator actors would).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import evolve  # noqa: E402
from evolve.evaluators.harness import sandbox_request, score_sandbox_result  # noqa: E402
from evolve.sandbox import Sandbox  # noqa: E402

TRIVIAL = "import numpy as np\n\ndef solve():\n    return {'h': np.full(24, 0.5)}\n"
# The same child, naming numba: served by the warm server that has numba imported.
TRIVIAL_NUMBA = "import numba  # noqa\n" + TRIVIAL


def in_process(problem: evolve.Problem, code: str) -> evolve.Evaluation:
    namespace: dict = {}
    exec(compile(code, "program.py", "exec"), namespace)  # trusted bench code only
    return problem.score(namespace[problem.entrypoint]())


def through_sandbox(sb: Sandbox, problem: evolve.Problem, code: str) -> evolve.Evaluation:
    return score_sandbox_result(problem, sb.run(sandbox_request(problem, code, timeout=10)))


def timed(fn, n: int, pause: float = 0.0) -> list[float]:
    times = []
    for _ in range(n):
        if pause:
            time.sleep(pause)  # not timed: lets the server fork its next spare child
        t0 = time.perf_counter()
        ev = fn()
        times.append(time.perf_counter() - t0)
        assert ev.status == "ok", ev
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="evaluations per measurement")
    parser.add_argument("--problem", default="erdos/min_overlap")
    args = parser.parse_args()
    problem = evolve.load_problem(args.problem)
    in_process(problem, TRIVIAL)  # compile the evaluator's kernels once

    base = statistics.median(timed(lambda: in_process(problem, TRIVIAL), args.n))
    print(f"in-process:            median {base * 1e3:8.3f} ms per evaluation")
    setups = (
        ("default: preload numpy + numba, a child not using numba", {}, TRIVIAL),
        ("default: preload numpy + numba, a child importing numba", {}, TRIVIAL_NUMBA),
        ("one server with numba for every child (on_demand=())", {"on_demand": ()}, TRIVIAL),
    )
    for title, kwargs, code in setups:
        print(f"\n--- {title} ---")
        measure(problem, kwargs, code, base, args.n)
    layer_costs(args.n)
    load = os.getloadavg()[0]
    print(
        f"\nload average during the run: {load:.2f} (other work on the machine inflates the times)"
    )


def measure(problem, kwargs: dict, code: str, base: float, n: int) -> None:
    with Sandbox(**kwargs) as sb, Sandbox(**kwargs) as sb2:
        on = [k for k, v in sb.features.items() if v and k != "problems"]
        print(f"isolation layers: {', '.join(on)}")
        if sb.features.get("problems"):
            print(f"unavailable: {'; '.join(sb.features['problems'])}")
        timed(lambda: through_sandbox(sb, problem, code), 10)  # warm-up
        # Back to back, every call also waits for the fork of the next child; when calls are
        # spaced out (as between LLM responses) the child is already forked and isolated.
        for label, pause in (("back to back", 0.0), ("spare ready", 0.02)):
            boxed = statistics.median(timed(lambda: through_sandbox(sb, problem, code), n, pause))
            print(
                f"sandboxed, {label + ':':13} median {boxed * 1e3:8.3f} ms per evaluation, "
                f"overhead {(boxed - base) * 1e3:.3f} ms"
            )

        counts = [0, 0]
        stop = time.perf_counter() + max(2.0, n * 0.01)

        def worker(i: int, box: Sandbox) -> None:
            while time.perf_counter() < stop:
                assert through_sandbox(box, problem, code).status == "ok"
                counts[i] += 1

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i, b)) for i, b in enumerate((sb, sb2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = sum(counts) / (time.perf_counter() - t0)
        print(f"2 workers:             {rate:8.1f} evaluations/s ({os.cpu_count()} cores)")


def _in_fork(fn, n: int) -> float:
    """Median seconds `fn` takes in a freshly forked process (as each sandbox child runs it)."""
    times = []
    for _ in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            t0 = time.perf_counter()
            fn()
            os.write(w, repr(time.perf_counter() - t0).encode())
            os._exit(0)
        os.close(w)
        times.append(float(os.read(r, 64)))
        os.close(r)
        os.waitpid(pid, 0)
    return statistics.median(times)


def layer_costs(n: int) -> None:
    """What two layers cost each child on top of the rest: the seccomp filter, and Landlock
    with the read rules that hide installed packages (one rule per visible folder)."""
    from evolve.paths import PACKAGE_DIR, problems_dir
    from evolve.sandbox import _isolation, _seccomp

    print("\n--- per-child cost of two layers (in a forked process, as in a child) ---")
    t0 = time.perf_counter()
    program = _seccomp.build()
    built = time.perf_counter() - t0
    loaded = _in_fork(lambda: _seccomp.load(program), n)
    print(
        f"seccomp filter: {len(program) // 8} BPF instructions, written once per server in "
        f"{built * 1e3:.2f} ms; loading it: median {loaded * 1e6:.0f} us per child"
    )
    abi = _isolation.landlock_abi()
    if not abi:
        print("Landlock: not available here")
        return
    import sys

    import numba  # noqa: F401 - so its packages count among the exposed ones

    exposed = _isolation.package_paths(list(sys.modules.values()))
    reads = _isolation.read_paths_for_interpreter(exposed, [str(PACKAGE_DIR), str(problems_dir())])
    rules = _isolation.read_rules(reads)  # as the server prepares them, once
    with_rules = _in_fork(lambda: _isolation.landlock_restrict(rules, ["/tmp"], abi), n)
    roots = _isolation.interpreter_roots()  # the installation as a whole, packages included
    coarse = _in_fork(lambda: _isolation.landlock_restrict(roots, ["/tmp"], abi), n)
    print(
        f"Landlock with {len(rules)} read rules (installed packages hidden): median "
        f"{with_rules * 1e6:.0f} us per child; with {len(roots)} (the whole installation "
        f"readable): {coarse * 1e6:.0f} us"
    )


if __name__ == "__main__":
    main()
