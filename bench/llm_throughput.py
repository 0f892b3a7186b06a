"""LLM throughput: evaluations per second through the engine, against a stub LLM server.

The stub (tests/llm_stub.py, in its own process so it does not share our GIL) answers every
request after a fixed delay (200 ms); the ideal rate at concurrency c is c / delay. Prints:

1. the client alone: completions per second through `LLMClient.acomplete` at concurrency
   1, 4, 8 and 64, and its CPU per call (litellm's, mostly);
2. the engine's own CPU per iteration (prompt build, parse and apply the answer, hash, diff,
   record);
3. real engine runs (`evolve run`, erdos/min_overlap on 24 steps: its scoring takes 0.1 ms,
   so each evaluation is the sandbox plus a trivial evaluator) at concurrency 1, 4, 8 and 64,
   concurrency being islands x requests in flight per island with one island per core at
   most, and the machine's CPU use, which says where the 2 cores saturate.

Rates are steady-state: measured over the part of each run after its first 20% of
completions, since every concurrent start begins with all requests in step (they answer at
the same moment and queue for the CPU) and takes a few cycles to spread out.

    python bench/llm_throughput.py                  # everything (about 3 minutes)
    python bench/llm_throughput.py --no-engine      # the client only

Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

KEY = "sk-bench-0000000000000000"


def _edit(k: int) -> str:
    a, b = 0.30 + (k % 40) * 0.01, 0.70 - (k // 40 % 40) * 0.01
    return (
        f"Idea {k}.\n\n<<<<<<< SEARCH\n    h = np.array([\n=======\n"
        f"    h = np.array([\n        {a:.2f}, {b:.2f},\n>>>>>>> REPLACE\n"
    )


def _serve(delay: float, answers: int, q) -> None:
    from llm_stub import StubLLM, slow

    stub = StubLLM(default=slow(delay, _edit(0))).start()
    stub.script(*[slow(delay, _edit(k)) for k in range(1, answers)])
    q.put(stub.port)
    while True:
        time.sleep(3600)


def start_stub(delay: float, answers: int = 1) -> tuple[mp.Process, str]:
    q = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=_serve, args=(delay, answers, q), daemon=True)
    proc.start()
    return proc, f"http://127.0.0.1:{q.get(timeout=60)}/v1"


def steady_rate(times: list[float]) -> float:
    """Completions per second after the first 20% of them (the start-up transient)."""
    times = sorted(times)
    skip = len(times) // 5
    window = times[skip:]
    if len(window) < 2 or window[-1] <= window[0]:
        return float("nan")
    return (len(window) - 1) / (window[-1] - window[0])


async def _client_rate(client, concurrency: int, n: int) -> tuple[float, float]:
    spec = client.models[0]
    msgs = [{"role": "user", "content": "improve it"}]
    sem = asyncio.Semaphore(concurrency)
    done: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            r = await client.acomplete(spec, msgs, seed=i)
            if r.text is None:
                raise RuntimeError(r.error)
            done.append(time.perf_counter())

    cpu0 = time.process_time()
    await asyncio.gather(*[one(i) for i in range(n)])
    return steady_rate(done), (time.process_time() - cpu0) / n


def bench_client(delay: float, levels: list[int]) -> None:
    from evolve.mutation.client import LLMClient, ModelSpec

    proc, api_base = start_stub(delay)
    try:
        os.environ["OPENAI_API_KEY"] = KEY
        spec = ModelSpec("openai/stub", api_base=api_base, api_key_env="OPENAI_API_KEY")
        client = LLMClient([spec], timeout_s=30.0, max_retries=0)
        asyncio.run(_client_rate(client, 1, 2))  # warm-up: litellm loads lazily
        print(f"LLMClient.acomplete in one process, stub delay {delay * 1000:.0f} ms")
        print(f"{'concurrency':>11} {'calls/s':>9} {'ideal':>7} {'% ideal':>8} {'CPU ms/call':>12}")
        for c in levels:
            n = max(40, 25 * c)
            rate, cpu = asyncio.run(_client_rate(client, c, n))
            ideal = c / delay
            print(
                f"{c:>11} {rate:>9.1f} {ideal:>7.1f} {100 * rate / ideal:>7.0f}% {cpu * 1e3:>12.2f}"
            )
    finally:
        proc.kill()


def bench_engine_cpu(n: int = 300) -> None:
    """The engine's own work per iteration, without the LLM wait or the evaluation."""
    import evolve
    from evolve.mutation.client import CallResult
    from evolve.mutation.prompts import ParentView, build_messages
    from evolve.program import apply_response, code_hash, unified_diff

    problem = evolve.load_problem("erdos/min_overlap")
    parent = ParentView(problem.initial_code, 0.5, {"bound": 0.5}, "ok " * 100)
    insp = [ParentView(problem.initial_code, 0.49), ParentView(problem.initial_code, 0.48)]
    parts = {"prompt": 0.0, "parse+apply": 0.0, "hash+diff": 0.0, "record": 0.0}
    for k in range(n):
        t0 = time.process_time()
        msgs = build_messages(problem, parent, insp, "diff")
        t1 = time.process_time()
        child, _ = apply_response(problem.initial_code, _edit(k))
        t2 = time.process_time()
        code_hash(child), unified_diff(problem.initial_code, child)
        t3 = time.process_time()
        CallResult("m", _edit(k)).record("\n\n".join(m["content"] for m in msgs))
        t4 = time.process_time()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[key] += dt
    total = sum(parts.values())
    print(f"\nengine CPU per iteration (mean of {n}): {total / n * 1e3:.2f} ms")
    for key, v in parts.items():
        print(f"  {key:<12} {v / n * 1e3:.3f} ms")


class CpuMeter:
    """Samples the machine's busy CPU time (/proc/stat) so a window's CPU use can be read back."""

    def __init__(self, period: float = 0.25) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (wall, busy s, total s)
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _read() -> tuple[float, float]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        tick = os.sysconf("SC_CLK_TCK")
        return (sum(fields) - idle) / tick, sum(fields) / tick

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), *self._read()))
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def busy(self, t0: float, t1: float) -> float:
        """Fraction of all cores busy between wall times t0 and t1."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return float("nan")
        (_, b0, a0), (_, b1, a1) = inside[0], inside[-1]
        return (b1 - b0) / (a1 - a0) if a1 > a0 else float("nan")


def bench_engine(delay: float, levels: list[int], evaluations: int, pipeline: bool = True) -> None:
    from evolve.cli import main

    proc, api_base = start_stub(delay, answers=4000)
    os.environ["OPENAI_API_KEY"] = KEY
    cores = os.cpu_count() or 1
    print(
        f"\nengine runs (erdos/min_overlap, 2 sandbox workers, stub delay {delay * 1000:.0f} ms, "
        f"search.pipeline={str(pipeline).lower()})"
    )
    print(
        f"{'concurrency':>11} {'islands':>7} {'evals/s':>8} {'ideal':>7} {'% ideal':>8} "
        f"{'CPU busy':>9}"
    )
    saturated: list[float] = []  # rates of runs with every core busy
    try:
        for c in levels:
            islands = min(c, cores)
            n = min(max(evaluations, 50 * c), 800)  # several seconds of steady state
            meter = CpuMeter()
            with tempfile.TemporaryDirectory() as tmp:
                rc = main(
                    [
                        "run",
                        f"runs_dir={tmp}",
                        "report.live=false",
                        f"budget.evaluations={n}",
                        f"search.islands={islands}",
                        f"search.in_flight_per_island={c // islands}",
                        "search.migration_interval=0",
                        f"search.pipeline={str(pipeline).lower()}",
                        "literature.enabled=false",
                        "llm=openai",
                        "llm.model=openai/stub",
                        f"llm.api_base={api_base}",
                        "llm.diff_probability=1.0",
                    ]
                )
                meter.stop()
                (db_path,) = Path(tmp).rglob("evolve.db")
                db = sqlite3.connect(db_path)
                ts = [
                    r[0]
                    for r in db.execute(
                        "SELECT created_at FROM programs WHERE mode != 'seed' ORDER BY created_at"
                    )
                ]
                db.close()
            rate = steady_rate(ts)
            busy = meter.busy(ts[len(ts) // 5], ts[-1]) if ts else float("nan")
            ideal = c / delay
            print(
                f"{c:>11} {islands:>7} {rate:>8.1f} {ideal:>7.1f} {100 * rate / ideal:>7.0f}% "
                f"{100 * busy:>8.0f}%  (rc={rc})"
            )
            if busy >= 0.95:
                saturated.append(rate)
    finally:
        proc.kill()
    if saturated:
        ceiling = max(saturated)
        print(
            f"CPU ceiling: {ceiling:.1f} evaluations/s with every core busy, so the cores "
            f"saturate from concurrency {ceiling * delay:.1f} on (ceiling x delay)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.2, help="stub answer delay in seconds")
    ap.add_argument("--levels", default="1,4,8,64", help="concurrency levels")
    ap.add_argument("--no-engine", action="store_true", help="skip the engine runs")
    ap.add_argument("--evaluations", type=int, default=60, help="least per engine run")
    ap.add_argument(
        "--no-pipeline", action="store_true", help="engine runs with search.pipeline=false"
    )
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    bench_client(args.delay, levels)
    bench_engine_cpu()
    if not args.no_engine:
        bench_engine(args.delay, levels, args.evaluations, pipeline=not args.no_pipeline)


if __name__ == "__main__":
    main()
