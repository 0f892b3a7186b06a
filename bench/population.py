"""Benchmark: the per-iteration cost of sampling and recording, against the size of the run.

Run: python bench/population.py [--sizes 100,10000,100000] [--iterations 600] [--rounds 3]

For each size it fills a real run database (evolve.population.database.Database, in a temporary
folder; one bulk transaction) with that many programs, about one in ten of them rejected, and
feeds the valid ones to an Island with the default search settings. Then it times iterations of
what the engine does per child, minus the LLM and the evaluation: sample a parent and
inspirations, build the child (code, normalised-code hash, Member), Database.record_program,
Island.add. Sizes take turns in rounds, so load from other processes falls on all of them alike.
It prints the median and p90 per-iteration cost, split into island and database time, and the
ratio of the largest size to the smallest (target: within 2x).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from evolve.population.database import Database
from evolve.population.island import Island, Member
from evolve.program import code_hash

RUN = "bench"
COLUMNS = [
    "run_id",
    "seq",
    "island",
    "generation",
    "parent_id",
    "inspiration_ids",
    "code",
    "code_hash",
    "diff",
    "mode",
    "model",
    "status",
    "reason",
    "valid",
    "score",
    "fitness",
    "metrics",
    "features",
    "feedback",
    "artifacts",
    "created_at",
]
TEMPLATE = '''"""A candidate for the benchmark: about the size of a real evolved program."""

import numpy as np


# EVOLVE-BLOCK-START
def heights() -> np.ndarray:
    h = np.array([{values}])
    for _ in range({loops}):
        h = np.clip(h + 0.01 * np.sin(np.arange(h.size)), 0.0, 1.0)
    return h
# EVOLVE-BLOCK-END


def solve() -> dict:
    return {{"h": heights()}}
'''


def program_code(rng: random.Random) -> str:
    values = ", ".join(f"{rng.random():.4f}" for _ in range(rng.randint(12, 40)))
    return TEMPLATE.format(values=values, loops=rng.randint(1, 50))


def program_codes(rng: random.Random, size: int) -> list[str]:
    """`size` distinct programs, cheaply: 256 random bodies, each with its own last line."""
    bodies = [program_code(rng) for _ in range(256)]
    return [f"{rng.choice(bodies)}\nSALT = {seq}\n" for seq in range(1, size + 1)]


def features(code: str, rng: random.Random) -> dict[str, float]:
    return {"n": float(rng.randint(4, 400)), "code_length": float(len(code))}


@dataclass
class Setup:
    size: int
    db: Database
    island: Island
    rng: random.Random
    fill_s: float
    feed_s: float
    total_ns: list[int]
    island_ns: list[int]
    child_ns: list[int]
    db_ns: list[int]


def fill(folder: Path, size: int, seed: int) -> Setup:
    """A run database with `size` programs (one transaction) and an island fed from them."""
    rng = random.Random(seed)
    db = Database(folder / f"run-{size}.db")
    db.start_run(RUN, "bench/none", seed, {}, {})
    t0 = time.perf_counter()
    rows, valid = [], []
    now = time.time()
    for seq, code in enumerate(program_codes(rng, size), start=1):
        ok = rng.random() > 0.1
        fit = rng.gauss(0.0, 1.0) if ok else None
        feats = features(code, rng)
        rows.append(
            (
                RUN,
                seq,
                0,
                seq // 10,
                max(1, seq - rng.randint(1, 50)) if seq > 1 else None,
                "[]",
                code,
                hashlib.sha256(code.encode()).hexdigest()[:32],  # plain hash: a fast fill
                "",
                "diff",
                "local",
                "ok" if ok else "rejected",
                "" if ok else "duplicate",
                int(ok),
                fit,
                fit,
                json.dumps({"eval_wall_s": 0.01}),
                json.dumps(feats),
                "",
                "{}",
                now,
            )
        )
        if ok:
            valid.append((seq, code, rows[-1][7], fit, feats))
    conn = db.db.conn
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO programs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        rows,
    )
    conn.execute("UPDATE runs SET evaluations = ? WHERE id = ?", [len(valid), RUN])
    conn.execute("COMMIT")
    fill_s = time.perf_counter() - t0
    # the default search settings (evolve/config.py): 40 per island, 6 bins, two features
    island = Island(0, ["n", "code_length"], capacity=40, bins=6, selection="tournament")
    t0 = time.perf_counter()
    for pid, code, h, fit, feats in valid:  # ids equal seq: the table was empty
        island.evaluations += 1
        island.add(Member(pid, code, h, fit, fit, {}, feats, "", 0, 0))
    feed_s = time.perf_counter() - t0
    return Setup(size, db, island, rng, fill_s, feed_s, [], [], [], [])


def iterate(s: Setup, n: int) -> None:
    """n engine iterations without the LLM and the evaluation; per-iteration times appended."""
    for _ in range(n):
        t0 = time.perf_counter_ns()
        parent = s.island.sample_parent(s.rng)
        inspirations = s.island.sample_inspirations(s.rng, parent, 2)
        t1 = time.perf_counter_ns()
        base = parent.code.split("\nSALT = ")[0]  # one changed line per child: sizes stay put
        child = f"{base}\nSALT = {s.rng.random()!r}\n"
        h = code_hash(child)
        fit = parent.fitness + s.rng.gauss(0.0, 0.3)
        m = Member(0, child, h, fit, fit, {"eval_wall_s": 0.01}, features(child, s.rng))
        t2 = time.perf_counter_ns()
        m.id = s.db.record_program(
            RUN,
            {
                "island": 0,
                "generation": parent.generation + 1,
                "parent_id": parent.id,
                "inspiration_ids": [i.id for i in inspirations],
                "code": child,
                "code_hash": h,
                "diff": "",
                "mode": "diff",
                "model": "local",
                "evaluation": {
                    "valid": True,
                    "status": "ok",
                    "score": fit,
                    "fitness": fit,
                    "metrics": m.metrics,
                    "features": m.features,
                    "feedback": "",
                },
            },
        )
        t3 = time.perf_counter_ns()
        s.island.evaluations += 1
        s.island.add(m)
        t4 = time.perf_counter_ns()
        s.total_ns.append(t4 - t0)
        s.island_ns.append((t1 - t0) + (t4 - t3))
        s.child_ns.append(t2 - t1)
        s.db_ns.append(t3 - t2)


def p90(xs: list[int]) -> float:
    return statistics.quantiles(xs, n=10)[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,10000,100000", help="comma-separated program counts")
    ap.add_argument("--iterations", type=int, default=600, help="timed iterations per size")
    ap.add_argument("--rounds", type=int, default=3, help="sizes take turns this many times")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="evolve-bench-") as tmp:
        setups = []
        for size in sizes:
            s = fill(Path(tmp), size, args.seed)
            iterate(s, 20)  # warm-up: caches, first statements prepared
            for xs in (s.total_ns, s.island_ns, s.child_ns, s.db_ns):
                xs.clear()
            print(
                f"filled {size:>7} programs in {s.fill_s:6.2f} s; island fed in {s.feed_s:6.2f} s"
                f" ({len(s.island)} members, {len(s.island.grid)} cells)"
            )
            setups.append(s)
        per_round = max(1, args.iterations // args.rounds)
        for _ in range(args.rounds):
            for s in setups:
                iterate(s, per_round)
        print()
        print(f"per-iteration cost, {per_round * args.rounds} iterations per size (microseconds)")
        print("(island: sample parent, inspirations and add; child: code, normalised hash, Member;")
        print(" database: record_program; the last three columns are medians)")
        print(
            f"{'programs':>9} {'median':>8} {'p90':>8} {'island':>8} {'child':>8} {'database':>9}"
        )
        for s in setups:
            print(
                f"{s.size:>9} {statistics.median(s.total_ns) / 1e3:8.1f} {p90(s.total_ns) / 1e3:8.1f}"
                f" {statistics.median(s.island_ns) / 1e3:8.1f}"
                f" {statistics.median(s.child_ns) / 1e3:8.1f}"
                f" {statistics.median(s.db_ns) / 1e3:9.1f}"
            )
        small, large = setups[0], setups[-1]
        ratio = statistics.median(large.total_ns) / statistics.median(small.total_ns)
        ratio_p90 = p90(large.total_ns) / p90(small.total_ns)
        ratio_island = statistics.median(large.island_ns) / statistics.median(small.island_ns)
        ratio_db = statistics.median(large.db_ns) / statistics.median(small.db_ns)
        verdict = "within" if ratio <= 2.0 else "OVER"
        print()
        print(
            f"ratio {large.size}/{small.size}: median {ratio:.2f}x, p90 {ratio_p90:.2f}x"
            f" (island {ratio_island:.2f}x, database {ratio_db:.2f}x): {verdict} the 2x target"
        )
        for s in setups:
            s.db.close()


if __name__ == "__main__":
    main()
