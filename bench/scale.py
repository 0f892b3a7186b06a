"""Benchmark: what the engine itself costs per evaluation, by process role, and its start-up.

Run: python bench/scale.py [--islands 1,8,32] [--evaluations 400] [--workers 2] [--json]

Each setting runs the real engine (Evolution on one local Ray) with a zero-latency mutator
(the built-in local provider, no network) on a trivial problem (the `evolve new-problem`
template: spread 10 points in a square), with the literature check and the live view off.
A sampler thread reads /proc every 0.1 s and charges each process's CPU to its role:

- driver: this process (the run's loop; it also holds Ray's driver-side threads);
- archive: the ArchiveActor (the run database's one writer: a transaction per batch);
- queues: the EvaluationQueues (duplicate gate, jobs, leases, islands' and workers' calls;
  one per `cluster.queues` shard, so their work splits where the archive's cannot);
- islands: the IslandActors (prompts, the local mutator, edits, grids);
- evaluators: the EvaluatorActors (harness, trusted scoring) and their fork servers;
- child: the sandboxed children themselves (CPU of the processes a fork server reaped);
- ray: Ray's own processes (raylet, GCS, idle workers), reported apart.

CPU is counted over a steady window (from the 10th% of the budget to the end), so actor
start-up is not charged to every evaluation; start-up is measured on its own: `evolve run` as a
new user types it (the default problem, `llm=local`), from the command's start to the first
evolved child recorded in its database. `central` = driver + archive, the parts one run has
one of; `engine` = everything but the sandboxed child and Ray's own processes. `arch/ev` is
the calls the archive served per evaluation (batches of results), `queue/ev` the calls the
queues served (islands' batches of children, workers' requests for work) and `per send` the
children in an island's batch: what the batching achieves at each setting. The LLM client
library's CPU per call (litellm against a local stub server, in this process) is measured
apart: in a run it is spent in the island processes, spread over the cluster's nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
TICKS = os.sysconf("SC_CLK_TCK")
ROLES = ("driver", "archive", "queues", "islands", "evaluators", "child", "ray")


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, own CPU s, reaped children's CPU s) of a process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / TICKS
    kids = (int(fields[13]) + int(fields[14])) / TICKS
    return ppid, own, kids


def _title(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


class Sampler(threading.Thread):
    """Samples every process's CPU, and the run's evaluation count, 10 times a second."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.me = os.getpid()
        self.evaluations = 0  # set by the view
        self.samples: list[tuple[float, int, dict[int, tuple[str, float, float]]]] = []
        self.stop = threading.Event()
        self.roles: dict[int, str] = {}

    def role(self, pid: int, ppid: int, title: str) -> str | None:
        """A process's role, or None if it is not a descendant of this one (another run's or
        user's Ray on the same machine is not this run's cost)."""
        if pid == self.me:
            return "driver"
        if ppid not in self.roles:
            return None
        for name, role in (
            ("ArchiveActor", "archive"),
            ("EvaluationQueue", "queues"),
            ("IslandActor", "islands"),
            ("EvaluatorActor", "evaluators"),
        ):
            if f"ray::{name}" in title:
                return role
        if self.roles[ppid] == "evaluators":
            return "sandbox"  # a fork server or the scoring process
        if self.roles[ppid] in ("sandbox", "sandboxed"):
            # A child of a fork server: counted once, through its parent's reaped-children
            # CPU, when it exits (counting it alive too would count it twice).
            return "sandboxed"
        return "ray"  # Ray's own processes (raylet, GCS, agents, idle workers) under this one

    def run(self) -> None:
        others: set[int] = set()  # processes that are none of ours (not read again)
        while not self.stop.is_set():
            stats = {}
            for name in os.listdir("/proc"):
                if name.isdigit() and int(name) not in others:
                    st = _stat(int(name))
                    if st is not None:
                        stats[int(name)] = st
            # Parents before children (pids wrap around, so pid order is not enough).
            pending = sorted(stats)
            while pending:
                later = []
                for pid in pending:
                    ppid = stats[pid][0]
                    if pid != self.me and ppid not in self.roles:
                        later.append(pid)
                        continue
                    role = self.roles.get(pid)
                    if role is None or role == "ray":  # an idle worker may become an actor
                        role = self.role(pid, ppid, _title(pid))
                        if role is not None:
                            self.roles[pid] = role
                if len(later) == len(pending):  # the rest descend from none of ours
                    others.update(p for p in later if stats[p][0] not in stats or p < 2)
                    break
                pending = later
            snap: dict[int, tuple[str, float, float]] = {
                pid: (self.roles[pid], own, kids)
                for pid, (_, own, kids) in stats.items()
                if pid in self.roles
            }
            # This thread runs in the driver's process: its own CPU is not the driver's.
            snap[-1] = ("sampler", time.thread_time(), 0.0)
            self.samples.append((time.monotonic(), self.evaluations, snap))
            time.sleep(0.1)


class View:
    """The engine's live-view hook, used here only to read the evaluation count."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.console = None

    def update(self, progress) -> None:
        self.sampler.evaluations = progress.evaluations


def cpu_by_role(sampler: Sampler, warm: int) -> tuple[dict[str, float], int, float]:
    """CPU seconds per role between the first sample at `warm` evaluations and the last
    sample of the run; the evaluations and seconds of that window."""
    samples = [s for s in sampler.samples if s[1] > 0]
    start = next(s for s in samples if s[1] >= warm)
    end = samples[-1]
    first: dict[int, tuple[str, float, float]] = dict(start[2])
    last: dict[int, tuple[str, float, float]] = {}
    for t, _, snap in sampler.samples:
        if t < start[0]:
            continue
        for pid, v in snap.items():
            last[pid] = v
            first.setdefault(pid, (v[0], 0.0, 0.0))  # a process born in the window
    out: dict[str, float] = defaultdict(float)
    for pid, (role, own, kids) in last.items():
        _, own0, kids0 = first[pid]
        role = sampler.roles.get(pid, role)
        if role == "sandboxed":
            continue
        if role == "sampler":
            out["driver"] -= own - own0
        elif role == "sandbox":
            out["evaluators"] += own - own0
            out["child"] += kids - kids0
        else:
            out[role] += own - own0
    return dict(out), end[1] - start[1], end[0] - start[0]


def run_setting(
    islands: int,
    evaluations: int,
    workers: int,
    problem_dir: Path,
    runs: Path,
    overrides: list[str] = (),
) -> dict:
    from evolve.engine import Evolution

    cfg = _config(
        [
            "problem=custom",
            f"problem.name={problem_dir}",
            "llm=local",
            f"budget.evaluations={evaluations}",
            f"search.islands={islands}",
            f"sandbox.workers={workers}",
            "literature.enabled=false",
            "report.live=false",
            *overrides,
        ]
    )
    sampler = Sampler()
    sampler.start()
    t0 = time.monotonic()
    runs.mkdir(parents=True, exist_ok=True)
    # A folder of its own: the same island count may be measured more than once.
    folder = Path(tempfile.mkdtemp(prefix=f"islands-{islands}-", dir=runs))
    progress = Evolution(cfg, folder, view=View(sampler)).run()
    wall = time.monotonic() - t0
    sampler.stop.set()
    sampler.join()
    cpu, evals, seconds = cpu_by_role(sampler, max(10, evaluations // 10))
    served = progress.archive_served
    per = {r: 1000.0 * cpu.get(r, 0.0) / max(evals, 1) for r in ROLES}
    central = per["driver"] + per["archive"]
    engine = central + per["queues"] + per["islands"] + per["evaluators"]
    return {
        "islands": islands,
        "evaluations": progress.evaluations,
        # LLM iterations per counted evaluation: rejected edits (no change, duplicates) cost
        # an island and an archive call each but are not evaluated.
        "iterations_per_evaluation": progress.iterations / max(progress.evaluations - 1, 1),
        "window_evaluations": evals,
        "evals_per_s": evals / seconds if seconds > 0 else 0.0,
        "wall_s": wall,
        "cpu_ms_per_eval": per,
        "central_cpu_ms_per_eval": central,
        "engine_cpu_ms_per_eval": engine,
        # Calls the archive served per evaluation (the queues' batches of results), calls the
        # queues served (islands' sends, workers' takes) and the children per send: how well
        # the batching works at this setting.
        "archive_calls_per_eval": served.get("write", 0) / max(progress.evaluations, 1),
        "queue_calls_per_eval": (served.get("send", 0) + served.get("take", 0))
        / max(progress.evaluations, 1),
        "items_per_send": served.get("sent_items", 0) / max(served.get("send", 0), 1),
    }


def _config(overrides: list[str]) -> dict:
    """The run config as `evolve run` composes it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from evolve import config as config_mod
    from evolve.cli import _register_resolvers
    from evolve.paths import conf_dir

    config_mod.register()
    _register_resolvers()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def litellm_cpu_per_call(n: int = 200) -> float:
    """CPU milliseconds litellm spends in this process per completion against a local stub
    server (in another process, so its own CPU is not counted)."""
    server = subprocess.Popen(
        [sys.executable, "-c", STUB],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline())
        import litellm

        async def calls() -> None:
            for i in range(n):
                await litellm.acompletion(
                    model="openai/stub",
                    api_base=f"http://127.0.0.1:{port}/v1",
                    api_key="x",
                    messages=[{"role": "user", "content": f"edit {i}"}],
                    max_retries=0,
                )

        asyncio.run(calls_warm(litellm, port))
        t = time.process_time()
        asyncio.run(calls())
        return 1000.0 * (time.process_time() - t) / n
    finally:
        server.kill()


async def calls_warm(litellm, port: int) -> None:
    await litellm.acompletion(
        model="openai/stub",
        api_base=f"http://127.0.0.1:{port}/v1",
        api_key="x",
        messages=[{"role": "user", "content": "warm"}],
    )


STUB = r"""
import json, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "stub",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def startup_s(runs: Path, timeout: float = 120.0) -> float:
    """Seconds from `evolve run` (a new process, its own Ray) to the first evolved child
    recorded in its database."""
    runs.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("evolve")
    cmd = [
        str(exe) if exe.exists() else "evolve",
        "run",
        "llm=local",
        f"runs_dir={runs}",
        "budget.evaluations=30",
        "report.live=false",
    ]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - t0 < timeout:
            for db in runs.glob("*/*/evolve.db"):
                try:
                    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
                    n = con.execute(
                        "SELECT COUNT(*) FROM programs WHERE mode != 'seed' "
                        "AND status != 'rejected'"
                    ).fetchone()[0]
                    con.close()
                except sqlite3.Error:
                    n = 0
                if n:
                    return time.monotonic() - t0
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("evolve run recorded no child")
    finally:
        proc.wait(timeout=timeout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--islands", default="1,8,32", help="island counts to run")
    ap.add_argument("--evaluations", type=int, default=400, help="evaluations per setting")
    ap.add_argument("--workers", type=int, default=2, help="evaluator workers")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every setting (repeatable), e.g. search.migration_interval=0",
    )
    ap.add_argument(
        "--skip-startup", action="store_true", help="do not measure start-up (startup_s: null)"
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    stdout = None
    if args.json:
        # Ray's own notices (the raylet's) reach this process's stdout: send them to stderr,
        # so stdout holds the one JSON object alone.
        sys.stdout.flush()
        stdout = os.dup(1)
        os.dup2(2, 1)
    import ray

    from evolve.scaffold import new_problem

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = None if args.skip_startup else startup_s(tmp / "startup")
        problem_dir = new_problem("scale_points", tmp / "problem")
        ray.init(
            address="local", include_dashboard=False, logging_level="ERROR", log_to_driver=False
        )
        settings = [
            run_setting(int(k), args.evaluations, args.workers, problem_dir, tmp / "runs", args.set)
            for k in args.islands.split(",")
        ]
        ray.shutdown()
    llm_ms = litellm_cpu_per_call()
    eight = next((s for s in settings if s["islands"] == 8), settings[-1])
    out = {
        "central_cpu_ms_per_eval": eight["central_cpu_ms_per_eval"],
        "engine_cpu_ms_per_eval": eight["engine_cpu_ms_per_eval"],
        "queue_cpu_ms_per_eval": eight["cpu_ms_per_eval"]["queues"],
        "evals_per_s": eight["evals_per_s"],
        "startup_s": start,
        "litellm_cpu_ms_per_call": llm_ms,
        "settings": settings,
    }
    if args.json:
        sys.stdout.flush()
        os.dup2(stdout, 1)
        print(json.dumps(out))
        return
    if start is not None:
        print(f"start-up (evolve run to the first child recorded): {start:.1f} s")
    print(f"litellm CPU per call (spent in island processes): {llm_ms:.1f} ms")
    head = f"{'islands':>7} {'eval/s':>7} {'iter/ev':>7} " + " ".join(f"{r:>10}" for r in ROLES)
    print("CPU ms per evaluation, by process role (steady window):")
    print(head + f" {'central':>8} {'engine':>8} {'arch/ev':>8} {'queue/ev':>8} {'per send':>8}")
    for s in settings:
        per = s["cpu_ms_per_eval"]
        print(
            f"{s['islands']:>7} {s['evals_per_s']:>7.1f} {s['iterations_per_evaluation']:>7.2f} "
            + " ".join(f"{per[r]:>10.2f}" for r in ROLES)
            + f" {s['central_cpu_ms_per_eval']:>8.2f} {s['engine_cpu_ms_per_eval']:>8.2f}"
            + f" {s['archive_calls_per_eval']:>8.2f} {s['queue_calls_per_eval']:>8.2f}"
            + f" {s['items_per_send']:>8.1f}"
        )
    c, q = eight["central_cpu_ms_per_eval"], eight["cpu_ms_per_eval"]["queues"]
    if c > 0 and q > 0:
        print(
            f"ceilings implied at 8 islands: the central parts (driver + archive, one of each "
            f"per run, one core) about {1000.0 / c:.0f} evaluations/s; each evaluation queue "
            f"shard (one core each; cluster.queues adds shards) about {1000.0 / q:.0f}"
        )


if __name__ == "__main__":
    main()
