"""The evaluation queue: the run's duplicate gate, the jobs the evaluator workers pull, and
the group commit of what comes back, one shard per queue actor.

Islands send children with their LLM calls, what they have ready at once in one call
(`send`); a child goes to the queue that owns its code hash (`shard_of`), so each shard's
duplicate gate is exact for the programs it owns: each distinct program is evaluated once per
run, whichever island sends it. The shard queues the child for its own evaluator workers,
which pull work (evaluators.py), and once the trusted result is back hands the child and its
call to the archive (archive.py, the run database's one writer) with whatever else is ready,
in one call and one transaction. A child is marked as evaluated only in the same step that
puts it in the queue, and the queue outlives the island that sent it: if the island dies with
its node, its children in evaluation are still scored and recorded.

Why a process apart from the archive: the queue's work (Ray calls from islands and workers,
leases, the gate) grows with the evaluation rate and splits by code hash over as many shards
as `cluster.queues` asks for, while the archive's is one SQLite writer that cannot split. The
archive sees one call per batch of results, not one per island send and worker request.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
from typing import Any

import ray

from evolve.engine.evaluators import EvaluatorActor
from evolve.evaluators.evaluation import Evaluation
from evolve.program import shard_of

log = logging.getLogger(__name__)

# Workers an evaluation may be lost with (their node died) before it is recorded as lost.
LOST_WORKER_RETRIES = 3
# The most jobs a worker takes at once (when the queue is long), and the most expected work
# (seconds, by the recent jobs' times) a take may hold: short jobs travel in batches, long
# ones one at a time, so no worker sits on work another could start.
MAX_JOBS_PER_TAKE = 8
TAKE_WORK_S = 0.25
# How long a write waits for others to share its call to the archive (and its transaction).
WRITE_WINDOW_S = 0.005
DUPLICATE = "duplicate of a program already evaluated in this run"
LATE = "lost: its island's actor died before the child reached the archive"


@ray.remote(num_cpus=0)
class EvaluationQueue:
    """One shard of the run's evaluation queue: its duplicate gate, its evaluator workers."""

    def __init__(
        self,
        archive,
        evaluated: list[str] | None = None,
        shard: int = 0,
        shards: int = 1,
        workers: dict[str, Any] | None = None,
    ) -> None:
        self.archive = archive
        self.shard, self.shards = shard, shards
        # Every program of this shard sent for evaluation in this run (on resume: `evaluated`,
        # what the run evaluated before, read by the driver).
        self.evaluated: set[str] = set(evaluated or ())
        # How to start evaluator workers: {"n", "args", "options", "cluster" (several nodes),
        # "started" (those the driver already started)}.
        self.spawn = workers
        self.queue: collections.deque[dict[str, Any]] = collections.deque()
        self.idle: collections.deque[asyncio.Future] = collections.deque()  # workers waiting
        self.results: dict[int, asyncio.Future] = {}  # job id -> its result, when it comes
        self.leases: dict[str, dict[int, dict[str, Any]]] = {}  # worker -> jobs it holds
        self.lost: collections.Counter = collections.Counter()  # job id -> workers lost with it
        self.workers: dict[str, Any] = {}
        self.dead: set[str] = set()
        self.replaced = 0
        self._unstarted = 0  # workers start_rest is to start
        self.closed = False
        self._ids = itertools.count(1)
        self._keys = itertools.count()
        self._tasks: set[asyncio.Task] = set()
        self.writes: list[tuple[dict | None, dict | None, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self.in_evaluation: collections.Counter = collections.Counter()  # island -> children
        # What it has served: calls by kind, items sent, writes to the archive (bench/scale.py).
        self.calls: collections.Counter = collections.Counter()
        self.job_s = TAKE_WORK_S  # a moving average of the jobs' times on their workers
        self._settled = asyncio.Event()
        self.epochs: dict[int, int] = {}  # island -> its actor's current incarnation

    def pid(self) -> int:
        return os.getpid()

    # --- evaluator workers -----------------------------------------------------------------
    async def start_workers(self) -> dict[str, Any]:
        """Start the evaluator workers; the sandbox features of the first one up (which
        isolation layers are in force). A sandbox that cannot start raises here."""
        assert self.spawn is not None
        n = int(self.spawn["n"])
        # Workers the driver started (while this actor was starting): adopted, not started.
        started = [self._start_worker(w) for w in self.spawn.pop("started", None) or []]
        started = started or [self._start_worker()]
        if self.spawn.get("cluster"):
            # A cluster: workers land on other nodes, whose cores nothing else is using.
            started += [self._start_worker() for _ in range(n - len(started))]
            ready = [asyncio.ensure_future(w.sandbox_features.remote()) for w in started]
            return await next(asyncio.as_completed(ready))
        # One machine: one worker first, the others once the run is seeded (start_rest). At
        # start-up every process competes for the same cores, and the seed needs one worker,
        # soon.
        self._unstarted = n - len(started)
        return await started[0].sandbox_features.remote()

    def start_rest(self) -> None:
        """Start the workers start_workers left for later (one machine: once the seed is
        scored or the islands restored)."""
        for _ in range(self._unstarted):
            self._start_worker()
        self._unstarted = 0

    def _start_worker(self, worker=None):
        """Start a worker (or adopt `worker`, already started) and watch its pull loop."""
        key = f"w{next(self._keys)}"
        if worker is None:
            worker = EvaluatorActor.options(**self.spawn["options"]).remote(*self.spawn["args"])
        self.workers[key] = worker
        self._spawn_task(self._watch(key, worker))
        return worker

    def _spawn_task(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, key: str, worker) -> None:
        """Run a worker's pull loop; when it dies (its node was lost), put back what it held
        and start another in its place (Ray places it where resources allow)."""
        me = ray.get_runtime_context().current_actor
        try:
            await worker.work.remote(me, key)
            return  # the run is over
        except ray.exceptions.RayError as exc:
            if self.closed:
                return
            log.warning("evaluator worker %s lost (%s); replacing it", key, type(exc).__name__)
        self.dead.add(key)
        self.workers.pop(key, None)
        ray.kill(worker)  # one only unavailable for now must not hold its CPUs
        for job in self.leases.pop(key, {}).values():
            self.lost[job["id"]] += 1
            if self.lost[job["id"]] >= LOST_WORKER_RETRIES:
                ev = Evaluation.failed(
                    "lost", f"evaluator workers died {LOST_WORKER_RETRIES} times while running it"
                ).to_dict()
                self._resolve(job["id"], ev)
            else:
                self._enqueue(job, front=True)
        if not self.closed and self.spawn is not None:
            self.replaced += 1
            await asyncio.sleep(0.5)  # a node that is going down takes a moment to be seen
            self._start_worker()

    async def take(self, key: str, done: list[tuple[int, dict[str, Any]]]) -> list | None:
        """A worker's request for work, carrying the results of its last jobs. None: stop."""
        self.calls["take"] += 1
        held = self.leases.setdefault(key, {})
        for job_id, ev in done:
            held.pop(job_id, None)
            # The job's time on its worker, for the size of later takes (never recorded).
            self.job_s += 0.2 * (float(ev.pop("job_s", self.job_s)) - self.job_s)
            self._resolve(job_id, ev)
        if self.closed or key in self.dead:
            return None
        if self.queue:
            # A long queue (every worker busy): a share of it per request, so the queue
            # handles one request per few children, not one each. A short queue, or long
            # jobs: one at a time.
            share = len(self.queue) // max(1, len(self.workers))
            most = min(MAX_JOBS_PER_TAKE, int(TAKE_WORK_S / max(self.job_s, 1e-6)))
            jobs = [self.queue.popleft() for _ in range(max(1, min(share, most)))]
        else:
            waiter = asyncio.get_running_loop().create_future()
            self.idle.append(waiter)
            job = await waiter
            if job is None:
                return None
            jobs = [job]
        if key in self.dead:  # died while it waited: the jobs go to another
            for job in reversed(jobs):
                self._enqueue(job, front=True)
            return None
        for job in jobs:
            held[job["id"]] = job
        return jobs

    def _enqueue(self, job: dict[str, Any], front: bool = False) -> None:
        while self.idle:
            waiter = self.idle.popleft()
            if not waiter.done():
                waiter.set_result(job)
                return
        if front:
            self.queue.appendleft(job)
        else:
            self.queue.append(job)

    def _resolve(self, job_id: int, ev: dict[str, Any]) -> None:
        fut = self.results.pop(job_id, None)
        if fut is not None and not fut.done():
            fut.set_result(ev)

    async def _evaluate(self, job: dict[str, Any]) -> dict[str, Any]:
        job = {**job, "id": next(self._ids)}
        fut = asyncio.get_running_loop().create_future()
        self.results[job["id"]] = fut
        self._enqueue(job)
        return await fut

    def served(self) -> dict[str, int]:
        """What it has served so far: `send` and `take` calls, items sent, writes."""
        return dict(self.calls)

    def gate(self) -> list[str]:
        """The code hashes this queue has let through to evaluation (its duplicate gate)."""
        return sorted(self.evaluated)

    def replacements(self) -> int:
        """How many dead workers were replaced."""
        return self.replaced

    async def worker_pids(self) -> list[int]:
        return list(await asyncio.gather(*[w.pid.remote() for w in self.workers.values()]))

    # --- evaluations ---------------------------------------------------------------------
    async def send(
        self, island: int, items: list[dict[str, Any]], epoch: int = 0
    ) -> list[dict[str, Any]]:
        """An island's batch, one call for what it had ready at once: each item either an LLM
        call and/or a child to record as it is ({"call", "prog"}: a rejected edit, a failed
        call; answered {"ids": (call id, program id)}), or a child to evaluate and record with
        its call ({"call", "prog", "evaluate": True, "context", "metrics"}; answered as
        `submit`). Answered once every item is; an item that failed is {"error": why}.

        `epoch` is the island actor's incarnation: a batch from one that died and was
        replaced (`settle`), arriving late, is recorded (its LLM calls cost what they cost)
        but none of its children is evaluated or counted: the budget was settled without them.
        """
        self.calls["send"] += 1
        self.calls["sent_items"] += len(items)
        if epoch < self.epochs.get(island, 0):
            log.warning(
                "island %d: %d items from its dead actor arrived after it was replaced; "
                "recorded, not counted",
                island,
                len(items),
            )
            items = [
                {
                    "call": it.get("call"),
                    "prog": {**it["prog"], "status": "rejected", "reason": LATE},
                }
                if it.get("evaluate")
                else it
                for it in items
            ]
        evaluating = sum(1 for it in items if it.get("evaluate"))
        # Counted now, before any item starts: `settle` must see them from this step on.
        self.in_evaluation[island] += evaluating

        async def one(item: dict[str, Any]) -> dict[str, Any]:
            if not item.get("evaluate"):
                return {"ids": await self.record(island, item.get("call"), item.get("prog"))}
            try:
                return await self.submit(
                    island, item["call"], item["prog"], item.get("context"), item.get("metrics")
                )
            finally:
                self.in_evaluation[island] -= 1
                self._settled.set()

        outs = await asyncio.gather(*(one(it) for it in items), return_exceptions=True)
        return [
            {"error": f"{type(o).__name__}: {o}"} if isinstance(o, BaseException) else o
            for o in outs
        ]

    async def submit(
        self,
        island: int,
        call: dict[str, Any],
        prog: dict[str, Any],
        context: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """Evaluate a child and record it with the LLM call that made it: {"evaluation",
        "program_id"}; a program already evaluated in this run is recorded as a rejected
        duplicate instead ({"duplicate": reason, "program_id"}). `metrics` are added to the
        child's (the judge's prediction)."""
        h = prog["code_hash"]
        if shard_of(h, self.shards) != self.shard:
            raise ValueError(f"program {h[:12]} belongs to queue {shard_of(h, self.shards)}")
        if h in self.evaluated:
            _, pid = await self._write(
                {"island": island, **call}, {**prog, "status": "rejected", "reason": DUPLICATE}
            )
            return {"duplicate": DUPLICATE, "program_id": pid}
        self.evaluated.add(h)
        try:
            ev = await self._evaluate({"kind": "search", "code": prog["code"], "context": context})
            if metrics:
                ev["metrics"] = {**ev["metrics"], **metrics}
            _, pid = await self._write({"island": island, **call}, {**prog, "evaluation": ev})
        except BaseException:
            self.evaluated.discard(h)  # nothing was recorded: it may come again
            raise
        return {"evaluation": ev, "program_id": pid}

    async def evaluate_seed(self, code: str, h: str) -> dict[str, Any]:
        """Evaluate the problem's seed program and record it (on the queue that owns it)."""
        self.evaluated.add(h)
        ev = await self._evaluate({"kind": "search", "code": code})
        prog = {"island": None, "code": code, "code_hash": h, "mode": "seed", "evaluation": ev}
        _, pid = await self._write(None, prog)
        return {"evaluation": ev, "program_id": pid}

    async def evaluate_all_sets(self, code: str) -> dict[str, Any]:
        """Score `code` on every instance set, test included (never a search decision)."""
        return await self._evaluate({"kind": "all_sets", "code": code})

    async def settle(self, island: int, epoch: int) -> None:
        """`island`'s actor died and its next incarnation is `epoch`: returns once none of
        its children is in evaluation here any more (they are still scored and recorded) and
        their writes are committed. A batch the dead actor sent that arrives from now on is
        not counted (`send`)."""
        self.epochs[island] = max(epoch, self.epochs.get(island, 0))
        while self.in_evaluation[island] > 0:
            self._settled.clear()
            await self._settled.wait()
        await self._drained()

    async def _drained(self) -> None:
        """Once every write queued so far is committed."""
        while self.writes or (self._flusher is not None and not self._flusher.done()):
            await asyncio.sleep(WRITE_WINDOW_S)

    # --- writes, through the archive --------------------------------------------------------
    async def record(
        self, island: int | None, call: dict[str, Any] | None, prog: dict[str, Any] | None
    ) -> tuple[int | None, int | None]:
        """An LLM call and/or a child that was not evaluated (a rejected edit, a failed call)."""
        if call is not None:
            call = {"island": island, **call}
        return await self._write(call, prog)

    async def _write(self, call: dict | None, prog: dict | None) -> tuple[int | None, int | None]:
        fut = asyncio.get_running_loop().create_future()
        self.writes.append((call, prog, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        """Hand what is ready to the archive, one call (one transaction) per batch, one call
        at a time: what arrives while a batch is being committed joins the next."""
        while self.writes:
            await asyncio.sleep(WRITE_WINDOW_S)  # let the writes arriving meanwhile join
            batch, self.writes = self.writes, []
            self.calls["writes"] += 1
            try:
                ids = await self.archive.write.remote([(c, p) for c, p, _ in batch])
            except Exception as exc:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (*_, fut), r in zip(batch, ids, strict=True):
                if not fut.done():
                    fut.set_result(tuple(r))

    async def finish(self) -> None:
        """Commit every pending write and stop the workers."""
        await self._drained()
        self.closed = True
        while self.idle:
            waiter = self.idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
