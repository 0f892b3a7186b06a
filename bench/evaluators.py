"""Benchmark: each problem's numba scorer against its numpy reference on a realistic input.

Run: python bench/evaluators.py [--repeat N]. For every problem it prints the kernel alone and
the whole evaluate() (spec-checked outputs in, Evaluation out), numba against numpy, as the
median of N timed calls after one warm-up call. For the online problems (bin packing) it also
prints the cost of playing one instance through the online channel, per item. Compile cost is printed once per kernel: the
first call in this process (a load from numba's on-disk cache when warm) and a cold compile of
the same Python function with the cache off.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numba import njit

from evolve.evaluators.online import play_in_process
from evolve.problem import load_problem

ROOT = Path(__file__).resolve().parents[1] / "problems"


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def first_call_and_cold_compile(kernel, *args) -> tuple[float, float]:
    t0 = time.perf_counter()
    kernel(*args)
    first = time.perf_counter() - t0
    fresh = njit(cache=False)(kernel.py_func)
    t0 = time.perf_counter()
    fresh(*args)
    return first, time.perf_counter() - t0


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "


def construction(rel: str) -> dict:
    return json.loads((ROOT / rel).read_text())["data"]


def cases() -> list[tuple[str, str, dict, dict, str, tuple]]:
    """(label, problem, params, outputs, kernel name pair, kernel args)."""
    rng = np.random.default_rng(0)
    h95 = np.array(
        construction("erdos/min_overlap/constructions/alphaevolve2025_95step.json")["values"]
    )
    h600 = np.clip(np.convolve(rng.random(600), np.ones(25) / 25, "same") * 1.6 - 0.3, 0, 1)
    ruler = np.array(construction("erdos/golomb/constructions/optimal_n1_28.json")["rulers"]["28"])

    def chi(i: int) -> int:
        while i % 3 == 0:
            i //= 3
        return 1 if i % 3 == 1 else -1

    x1160 = np.array([chi(i) for i in range(1, 1161)], dtype=np.int64)
    x100k = np.array([chi(i) for i in range(1, 100_001)], dtype=np.int64)
    u1 = np.array(
        construction("erdos/sums_differences/constructions/alphaevolve2025_U1_2003.json")["U"]
    )
    c26 = np.array(
        construction("packing/circles/constructions/alphaevolve2025_n26.json")["circles"]
    )
    c32 = np.array(
        construction("packing/circles/constructions/alphaevolve2025_n32.json")["circles"]
    )
    jobshop = load_problem("scheduling/jobshop").evaluator_module
    machines, durations = jobshop.instance("ta71")  # 100 jobs x 20 machines
    seq: list[list[int]] = [[] for _ in range(machines.shape[1])]
    nxt = [0] * machines.shape[0]
    for j in rng.permutation(np.repeat(np.arange(machines.shape[0]), machines.shape[1])):
        seq[machines[j, nxt[j]]].append(int(j))  # operations in a random topological order
        nxt[j] += 1
    order = np.array(seq, dtype=np.int64)
    times = load_problem("scheduling/flowshop").evaluator_module.instance("ta111")  # 500 x 20
    perm = rng.permutation(times.shape[1]).astype(np.int64)
    mo = ("max_overlap", "max_overlap_numpy")
    return [
        (
            "min_overlap, 95 steps (AlphaEvolve)",
            "erdos/min_overlap",
            {},
            {"h": h95},
            mo,
            (h95 / h95.sum() * 47.5,),
        ),
        (
            "min_overlap, 600 steps",
            "erdos/min_overlap",
            {},
            {"h": h600},
            mo,
            (h600 / h600.sum() * 300,),
        ),
        (
            "golomb, n = 28 optimal ruler",
            "erdos/golomb",
            {"n": 28},
            {"marks": ruler},
            ("repeated_difference", "repeated_difference_numpy"),
            (np.sort(ruler),),
        ),
        (
            "discrepancy, N = 1160, C = 7",
            "erdos/discrepancy",
            {"C": 7},
            {"x": x1160},
            ("discrepancy_scan", "discrepancy_scan_numpy"),
            (x1160, 7),
        ),
        (
            "discrepancy, N = 100000, C = 11",
            "erdos/discrepancy",
            {"C": 11},
            {"x": x100k},
            ("discrepancy_scan", "discrepancy_scan_numpy"),
            (x100k, 11),
        ),
        (
            "sums_differences, AlphaEvolve U1 (2003 ints)",
            "erdos/sums_differences",
            {},
            {"U": u1},
            ("sum_difference_counts", "sum_difference_counts_numpy"),
            (np.sort(u1),),
        ),
        (
            "circles, n = 26 (AlphaEvolve)",
            "packing/circles",
            {"n": 26},
            {"centers": c26[:, :2].copy(), "radii": c26[:, 2].copy()},
            ("packing_scan", "packing_scan_numpy"),
            (c26[:, :2].copy(), c26[:, 2].copy()),
        ),
        (
            "circles, n = 32 (AlphaEvolve)",
            "packing/circles",
            {"n": 32},
            {"centers": c32[:, :2].copy(), "radii": c32[:, 2].copy()},
            ("packing_scan", "packing_scan_numpy"),
            (c32[:, :2].copy(), c32[:, 2].copy()),
        ),
        (
            "jobshop, ta71 (100 x 20), random order",
            "scheduling/jobshop",
            {"instance": "ta71"},
            {"order": order},
            ("decode", "decode_reference"),
            (order, machines, durations),
        ),
        (
            "flowshop, ta111 (500 x 20), random order",
            "scheduling/flowshop",
            {"instance": "ta111"},
            {"permutation": perm},
            ("makespan", "makespan_reference"),
            (perm, times),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="timed calls per measurement")
    args = parser.parse_args()
    compiled: set[str] = set()
    print(f"{'case':46s} {'part':9s} {'numba':>11s} {'numpy':>11s} {'numpy/numba':>12s}")
    for label, name, params, outputs, (k_nb, k_np), kargs in cases():
        problem = load_problem(name, params=params or None)
        ev = problem.evaluator_module
        clean = problem.check_outputs(outputs)
        if k_nb not in compiled:
            compiled.add(k_nb)
            first, cold = first_call_and_cold_compile(getattr(ev, k_nb), *kargs)
            print(
                f"  compile {name}.{k_nb}: first call {fmt(first).strip()}, cold compile {fmt(cold).strip()}"
            )
        a = problem.score(clean)
        b = ev.score_numpy(clean, dict(problem.params))
        assert a.valid == b.valid and abs(a.score - b.score) <= 1e-12, (label, a, b)
        t_k_nb = timed(lambda ev=ev, k=k_nb, a=kargs: getattr(ev, k)(*a), args.repeat)
        t_k_np = timed(lambda ev=ev, k=k_np, a=kargs: getattr(ev, k)(*a), args.repeat)
        p = dict(problem.params)
        t_e_nb = timed(lambda ev=ev, c=clean, p=p: ev.evaluate(c, p), args.repeat)
        t_e_np = timed(lambda ev=ev, c=clean, p=p: ev.score_numpy(c, p), args.repeat)
        t_v = timed(lambda ev=ev, c=clean, p=p: ev.verify(c, p), max(1, args.repeat // 7))
        print(f"{label:46s} {'kernel':9s} {fmt(t_k_nb)} {fmt(t_k_np)} {t_k_np / t_k_nb:11.1f}x")
        print(f"{'':46s} {'evaluate':9s} {fmt(t_e_nb)} {fmt(t_e_np)} {t_e_np / t_e_nb:11.1f}x")
        print(f"{'':46s} {'verify':9s} {fmt(t_v)}   (exact, score {a.score:.10g})")
    bench_binpacking(args.repeat)


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def bench_binpacking(repeat: int) -> None:
    """Online bin packing: the per-instance scorer (numba vs numpy) on best fit's packing of
    each test instance size, and the online play itself, which is what an evaluation costs."""
    folder = ROOT / "scheduling/binpacking_online"
    digest = hashlib.sha1((folder / "evaluator.py").read_bytes()).hexdigest()[:12]
    ev = _import(folder / "evaluator.py", f"_evolve_problem_{digest}_evaluator")
    harness = _import(folder / "harness.py", "_binpacking_harness")
    sources = {
        "or1 u120_00": {"file": "data/binpack1.txt", "reader": "orlib"},
        "or4 u1000_00": {"file": "data/binpack4.txt", "reader": "orlib"},
        "weibull5k test_0": {"file": "data/weibull5k/test_0.txt", "reader": "funsearch"},
    }
    program = {"priority": lambda item, bins: -(bins - item)}
    for label, source in sources.items():
        inst = ev.load_instances(source, {}, folder)[0]
        t0 = time.perf_counter()
        outputs = play_in_process(ev.online_session(inst, {}), harness.run, program)
        per_item = (time.perf_counter() - t0) / inst["sizes"].size
        kargs = (outputs["assignment"], inst["sizes"], float(inst["capacity"]))
        if label.startswith("or1"):
            first, cold = first_call_and_cold_compile(ev.packing_scan, *kargs)
            print(
                f"  compile binpacking_online.packing_scan: first call {fmt(first).strip()}, "
                f"cold compile {fmt(cold).strip()}"
            )
        a, b = ev.evaluate(outputs, {}, inst), ev.score_numpy(outputs, {}, inst)
        assert a.valid and b.valid and a.score == b.score, (label, a, b)
        t_k_nb = timed(lambda a=kargs: ev.packing_scan(*a), repeat)
        t_k_np = timed(lambda a=kargs: ev.packing_scan_numpy(*a), repeat)
        t_e_nb = timed(lambda o=outputs, i=inst: ev.evaluate(o, {}, i), repeat)
        t_e_np = timed(lambda o=outputs, i=inst: ev.score_numpy(o, {}, i), repeat)
        t_v = timed(lambda o=outputs, i=inst: ev.verify(o, {}, i), max(1, repeat // 7))
        name = f"binpacking, {label}, best fit"
        print(f"{name:46s} {'kernel':9s} {fmt(t_k_nb)} {fmt(t_k_np)} {t_k_np / t_k_nb:11.1f}x")
        print(f"{'':46s} {'evaluate':9s} {fmt(t_e_nb)} {fmt(t_e_np)} {t_e_np / t_e_nb:11.1f}x")
        print(f"{'':46s} {'verify':9s} {fmt(t_v)}   (exact, score {a.score:.10g})")
        print(f"{'':46s} {'play':9s} {fmt(per_item)} per item, in-process socket pair")


if __name__ == "__main__":
    main()
