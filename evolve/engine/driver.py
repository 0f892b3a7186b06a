"""The driver: `Evolution` runs one evolution on Ray.

It starts the actors, seeds (or, on resume, replays) the islands, and then stays off the
per-iteration path: each island runs its own iterations while it holds budget tokens, and the
driver exchanges tokens for results with every island in batches (`IslandActor.work`). The
driver migrates the best programs around the ring, resets stagnant islands, queues literature
checks of new bests, updates the live view, rebuilds an island actor that died with its node,
and stops on the budget (budget.py): exactly on evaluations and LLM calls, and on wall time
and cost by cancelling what is in flight and saying by how much the run went over.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import ray

from evolve.cluster import joined_address, problem_ref
from evolve.config import llm_models
from evolve.doctor import package_versions
from evolve.engine import budget as budgets
from evolve.engine.archive import ArchiveActor
from evolve.engine.budget import Budget, RunError
from evolve.engine.evaluators import EvaluatorActor
from evolve.engine.island_actor import IslandActor, step_seed
from evolve.engine.literature_actor import LiteratureActor
from evolve.engine.members import member_of, selection_fitness
from evolve.engine.progress import Progress
from evolve.engine.queue import EvaluationQueue
from evolve.engine.replay import history
from evolve.population.database import Database
from evolve.problem import load_problem
from evolve.program import code_hash, shard_of
from evolve.sandbox.runner import missing_layer

log = logging.getLogger(__name__)

__all__ = ["Evolution", "Progress", "RunError", "selection_fitness", "step_seed"]

# How long an island's `work` call waits for a result before it answers with none: an idle
# island costs the driver one call per this many seconds. (A wall-time limit is noticed by
# the driver's own loop, which never waits longer than 1 s.)
REPORT_WAIT_S = 2.0
# Iterations an island holds beyond what it runs at once, so it never waits for the driver.
SPARE_TOKENS = 4
# How often each island reports, at most (sooner when it runs out of tokens): the driver's
# calls then follow the number of islands, not the rate of evaluations. Above
# REPORTS_PER_S islands in all, each reports less often.
REPORT_INTERVAL_S = 1.0
REPORTS_PER_S = 8
# Past this share of a cost limit, islands report each result as it comes.
COST_NEAR = 0.8
# A resumed run whose last process was killed waits until its database has been still this
# long (never more than QUIET_MAX_S) before it writes.
QUIET_S = 2.0
QUIET_MAX_S = 120.0


class Evolution:
    """Drives one run: seeds or restores the islands, hands out budget tokens, stops on budget."""

    def __init__(
        self, cfg: dict[str, Any], run_dir: Path, view=None, started: float | None = None
    ) -> None:
        """`started`: when the command began (time.monotonic()), if before this; the start-up
        figures, the wall-time budget and the rate count from it."""
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        self.db_path = self.run_dir / "evolve.db"
        self.problem = load_problem(cfg["problem"]["name"], cfg["problem"].get("params") or {})
        # Built once here so that a bad instance parameter is a one-line error, not a failure
        # inside an evaluator actor.
        self.problem.child_inputs()
        self.problem_ref = problem_ref(self.problem)  # resolvable on every node
        self.view = view
        self.budget = Budget.from_config(cfg["budget"])
        self.progress = Progress(
            self.problem.name, self.budget.evaluations, int(cfg["search"]["islands"])
        )
        if started is not None:
            self.progress.started = started

    # --- setup -----------------------------------------------------------------------------
    def _start_actors(self) -> dict[str, Any]:
        """Start the archive, the evaluation queues (each with its evaluator workers), the
        literature checker and the islands; the sandbox features of the workers."""
        sb = self.cfg["sandbox"]
        # The archive writes the run folder, which is on the driver's machine: pin it there.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self._here = here
        shards = int((self.cfg.get("cluster") or {}).get("queues") or 1)
        n_workers = int(sb["workers"])
        if shards > n_workers:
            raise RunError(
                f"cluster.queues={shards} needs at least as many evaluator workers "
                f"(sandbox.workers={n_workers}): each queue has workers of its own"
            )
        per_queue = [n_workers // shards + (q < n_workers % shards) for q in range(shards)]
        args = [
            self.problem_ref,
            sb.get("timeout_s"),
            tuple(sb.get("preload") or ()),
            tuple(sb.get("on_demand") or ()),
            bool(sb.get("allow_unconfined_files")),
        ]
        options = {"num_cpus": sb["cpus_per_worker"], "scheduling_strategy": "SPREAD"}
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        self._check_worker_fits(float(sb["cpus_per_worker"]), nodes)
        # Workers start here, first of all the actors, and warm up while the queues start
        # (which adopt them), rather than after: on one machine the first (it takes one of the
        # worker processes Ray started with itself; its queue starts the others once the run
        # is seeded), on a cluster all (each on its own node's cores).
        cluster = len(nodes) > 1
        started = [
            [
                EvaluatorActor.options(**options).remote(*args)
                for _ in range(per_queue[q] if cluster else int(q == 0))
            ]
            for q in range(shards)
        ]
        self.archive = ArchiveActor.options(scheduling_strategy=here).remote(
            str(self.db_path), self.run_id
        )
        # The queues hold run state (what is in evaluation): on the driver's node, with the
        # archive, so that only the loss of this node can end the run.
        evaluated: list[list[str]] = [[] for _ in range(shards)]
        for h in self._evaluated:
            evaluated[shard_of(h, shards)].append(h)
        self.queues = [
            EvaluationQueue.options(scheduling_strategy=here).remote(
                self.archive,
                evaluated[q],
                q,
                shards,
                {
                    "n": per_queue[q],
                    "args": args,
                    "options": options,
                    "started": started[q],
                    "cluster": cluster,
                },
            )
            for q in range(shards)
        ]
        features_refs = [q.start_workers.remote() for q in self.queues]
        # Islands start (and import their LLM client) while the workers warm up.
        self.islands = [self._island(i) for i in range(int(self.cfg["search"]["islands"]))]
        self._epochs = Counter()  # island -> incarnations of its actor so far (rebuilds)
        self._lit_pending = None
        self._lit_next: int | None = None
        self._last_reset: dict[int, int] = {}
        # The checker holds run state: on the driver's node, which a run cannot lose anyway.
        # Started once the first child is scored (one process fewer competing at start-up);
        # never when checks are off.
        self.literature = None
        self._checks = bool((self.cfg.get("literature") or {}).get("enabled", True))
        try:
            return ray.get(features_refs)[0]
        except ray.exceptions.RayError as exc:
            # A sandbox that refuses to start (SandboxError) says why in one line: pass it on.
            why = re.search(r"SandboxError: ([^\n]+)", str(exc))
            raise RunError(
                f"the evaluator workers did not start: {why.group(1) if why else exc}"
            ) from None

    def _check_worker_fits(self, cpus: float, nodes: list[dict[str, Any]]) -> None:
        """An evaluator worker none of the live `nodes` can hold would wait for ever, silently:
        refuse it on a Ray this run started (nothing will add a node), say so on a joined
        cluster (its autoscaler may add one)."""
        largest = max((n["Resources"].get("CPU", 0.0) for n in nodes), default=0.0)
        if cpus <= largest:
            return
        why = f"sandbox.cpus_per_worker={cpus:g} but the largest Ray node has {largest:g} CPUs"
        if not joined_address(self.cfg.get("cluster") or {}):
            raise RunError(f"{why}: lower it, or give the local Ray more (cluster.num_cpus)")
        log.warning("%s: the workers wait until a node that large joins", why)
        if self.view is not None:
            self.view.console.print(f"warning: {why}", style="yellow", highlight=False)

    def _literature_actor(self, here: Any):
        return LiteratureActor.options(scheduling_strategy=here).remote(
            self.problem_ref,
            str(self.db_path),
            self.run_id,
            self.archive,
            {
                **(self.cfg.get("literature") or {}),
                "sandbox_timeout_s": (self.cfg.get("sandbox") or {}).get("timeout_s"),
            },
        )

    def _island(self, i: int, strategy: Any = "SPREAD", epoch: int = 0):
        isl = IslandActor.options(scheduling_strategy=strategy).remote(
            i, self.problem_ref, self.cfg, self.queues, epoch
        )
        # Island actors call the LLM. On a Ray started here they inherit this environment; on
        # a joined cluster they may not, so hand them the keys the config names. Through a
        # method call, not runtime_env: Ray writes runtime_env values into its own logs.
        keys = self._keys()
        if keys:
            isl.set_keys.remote(keys)
        return isl

    def _keys(self) -> dict[str, str]:
        llm = self.cfg["llm"]
        names = {m.get("api_key_env") for m in llm_models(llm)}
        names.add((self.cfg["search"].get("novelty") or {}).get("api_key_env"))
        names.add((self.cfg["search"].get("judge") or {}).get("api_key_env"))
        return {k: os.environ[k] for k in names if k and os.environ.get(k)}

    def _seed(self) -> None:
        """Evaluate the problem's seed program once and give it to every island."""
        code = self.problem.initial_code
        h = code_hash(code)
        queue = self.queues[shard_of(h, len(self.queues))]  # the one whose gate owns it
        out = ray.get(queue.evaluate_seed.remote(code, h))  # a fresh run: never a duplicate
        ev, pid = out["evaluation"], out["program_id"]
        self.progress.evaluations += 1
        self.progress.statuses[ev["status"]] += 1
        if not ev["valid"]:
            raise RunError(
                f"the seed program of {self.problem.name} is not valid ({ev['status']}: "
                f"{ev['error']}); fix {self.problem.path / 'initial.py'}"
            )
        self.progress.seed_score = ev["score"]
        self.progress.seed_metrics = dict(ev["metrics"])
        self.seed_member = member_of(pid, code, h, ev).to_dict()
        ray.get([isl.add.remote(self.seed_member) for isl in self.islands])
        self._note_result(
            {
                "valid": True,
                "fitness": ev["fitness"],
                "score": ev["score"],
                "selection": selection_fitness(self.problem, ev),
                "metrics": ev["metrics"],
                "program_id": pid,
                "island": None,
            }
        )

    def _restore(self, only: int | None = None) -> None:
        """Rebuild each island (or island `only`, whose actor died) by replaying its history
        from the database (replay.py)."""
        db = Database(self.db_path, readonly=True)
        try:
            h = history(db, self.run_id, self.problem, len(self.islands))
            if only is not None:  # one island rebuilt mid-run: the run's own counts stand
                ray.get(self.islands[only].restore.remote(h.events[only], h.steps[only]))
                return
            ray.get(
                [isl.restore.remote(h.events[i], h.steps[i]) for i, isl in enumerate(self.islands)]
            )
            notes = db.scratchpad(self.run_id)
            evaluations = db.evaluations(self.run_id)
            statuses = db.status_counts(self.run_id)
            totals = db.llm_totals(self.run_id)
        finally:
            db.close()
        self.seed_member = h.events[0][0][1]
        p = self.progress
        p.seed_score = h.seed["score"]
        p.seed_metrics = dict(h.seed["metrics"])
        if notes:
            p.notes = notes[-1]["note"]
            ray.get([isl.set_notes.remote(p.notes) for isl in self.islands])
        p.evaluations = evaluations
        p.statuses.update(statuses)
        p.cost_usd = totals["cost_usd"]
        p.llm_calls = totals["calls"]
        p.iterations = totals["calls"]
        best = h.best
        self._note_result(
            {
                "valid": True,
                "fitness": best["fitness"],
                "score": best["score"],
                "selection": selection_fitness(self.problem, best),
                "metrics": best["metrics"],
                "program_id": best["id"],
                "island": None,
            },
            check=False,
        )

    # --- results ---------------------------------------------------------------------------
    def _note_result(self, r: dict[str, Any], check: bool = True) -> None:
        p = self.progress
        isl = r.get("island")
        if isl is not None and r.get("valid"):
            cur = p.island_best.get(isl)
            if cur is None or self.problem.better(r["score"], cur):
                p.island_best[isl] = r["score"]
        chosen = r.get("selection", r.get("fitness"))
        if r.get("valid") and chosen is not None and chosen > p.best_fitness:
            p.best_fitness, p.best_score, p.best_program_id = (
                chosen,
                r["score"],
                r["program_id"],
            )
            p.best_metrics = dict(r.get("metrics") or {})
            if check:
                self._literature_check(r["program_id"])

    def _absorb(self, r: dict[str, Any]) -> None:
        p = self.progress
        if r.get("llm_call", True):
            if r.get("island") is not None:
                self._island_calls[r["island"]] += 1
                self._island_cost[r["island"]] += float(r.get("cost_usd") or 0.0)
            p.iterations += 1
            p.llm_calls += 1
        p.llm_errors += int(bool(r.get("llm_error")) and r["status"] != "cancelled")
        p.cancelled_calls += int(r["status"] == "cancelled" and r.get("llm_call", True))
        p.cost_usd += float(r.get("cost_usd") or 0.0)
        p.statuses[r["status"]] += 1
        if r.get("counted"):
            p.evaluations += 1
            p.island_evals[r["island"]] += 1
            if p.first_child_s is None:
                p.first_child_s = p.elapsed
                log.info("start-up: the first child scored after %.1f s", p.first_child_s)
            self._maybe_reset(r["island"], int(r.get("since_improvement") or 0))
        self._note_result(r)

    # --- literature ------------------------------------------------------------------------
    def _literature_check(self, program_id: int) -> None:
        """Queue a check of a new best. While one check runs, later new bests replace each other
        in the queue: the checker always gets to the newest best, never to a stale one."""
        if not self._checks:
            return
        if self.literature is None and self.progress.first_child_s is not None:
            self.literature = self._literature_actor(self._here)
        if self.literature is None or self._lit_pending is not None:
            self._lit_next = program_id  # checked when the checker is started, or free
        else:
            # A best queued before the checker started (the seed) is stale now: checked after
            # this one, its verdict would be the run's last word.
            self._lit_pending, self._lit_next = self.literature.check.remote(program_id), None

    def _poll_literature(self, wait: float = 0.0) -> None:
        if self._lit_pending is None:
            if self._lit_next is not None and self.progress.first_child_s is not None:
                queued, self._lit_next = self._lit_next, None
                self._literature_check(queued)
            return
        done, _ = ray.wait([self._lit_pending], timeout=wait)
        if not done:
            return
        try:
            verdict = ray.get(self._lit_pending)
            if verdict.get("message"):
                self.progress.verdicts.append(verdict["message"])
        except ray.exceptions.RayError as exc:
            log.error("literature check failed: %s", exc)
        self._lit_pending = None
        if self._lit_next is not None:
            self._lit_pending, self._lit_next = self.literature.check.remote(self._lit_next), None

    def _final_literature_wait(self) -> None:
        """The newest best is checked before the run ends, within `literature.final_wait_s`
        (and never past a wall-time budget); a check still running then is left to
        `evolve literature` and said so."""
        lit = self.cfg.get("literature") or {}
        limit = float(lit.get("final_wait_s", 300.0))
        if self.budget.wall_time_s is not None:
            limit = min(limit, max(0.0, self.budget.wall_time_s - self.progress.elapsed))
        deadline = time.monotonic() + limit
        if self._lit_pending is None and self._lit_next is not None:  # no child was scored
            if self.literature is None:
                self.literature = self._literature_actor(self._here)
            self._lit_pending, self._lit_next = self.literature.check.remote(self._lit_next), None
        while self._lit_pending is not None and time.monotonic() < deadline:
            self._poll_literature(wait=min(1.0, max(0.0, deadline - time.monotonic())))
        if self._lit_pending is not None or self._lit_next is not None:
            msg = (
                f"the literature check of the best (#{self.progress.best_program_id}) did not "
                f"finish within {limit:.0f} s (literature.final_wait_s, the wall-time budget): "
                "it stays unchecked, never called new"
            )
            log.warning(msg)
            self.progress.verdicts.append(msg)

    # --- the islands -----------------------------------------------------------------------
    def _record_grids(
        self, migrants: list[dict[str, Any] | None] | None = None, settle: bool = False
    ) -> None:
        """Write each island's state and MAP-Elites cells (at migrations and at the end); with
        `migrants`, island i first takes migrants[i] (None: nothing for it), and the
        migrations it accepts are recorded with the grids, in one call to the archive.
        `settle` (the run's end): each island first applies the results still waiting for a
        later step's turn (IslandActor.snapshot)."""
        n = len(self.islands)
        migrants = migrants or [None] * n
        snaps = ray.get(
            [isl.snapshot.remote(m, settle) for isl, m in zip(self.islands, migrants, strict=True)]
        )
        moves = [
            ((i - 1) % n, i, m["id"])
            for i, (m, snap) in enumerate(zip(migrants, snaps, strict=True))
            if m is not None and snap["accepted"]
        ]
        ray.get(self.archive.record_round.remote(moves, snaps))
        self.progress.migrations += len(moves)

    def _migrate(self) -> None:
        """Each island's best to the next around the ring."""
        n = len(self.islands)
        if n < 2:
            return
        bests = ray.get([isl.best.remote() for isl in self.islands])
        self._record_grids([bests[(i - 1) % n] for i in range(n)])

    def _maybe_reset(self, island: int, since_improvement: int) -> None:
        """Re-seed an island that has gone `search.stagnation_reset` evaluations without
        improving, with the seed program and the run's best so far."""
        n = int(self.cfg["search"].get("stagnation_reset") or 0)
        if n <= 0 or since_improvement < n:
            return
        last = self._last_reset.get(island)
        if last is not None and self.progress.evaluations - last < n:
            return
        bests = [b for b in ray.get([isl.best.remote() for isl in self.islands]) if b]
        members = [self.seed_member] + ([max(bests, key=lambda b: b["fitness"])] if bests else [])
        ray.get(self.islands[island].reset.remote(members))
        ray.get(self.archive.record_reset.remote(island, [m["id"] for m in members]))
        self._last_reset[island] = self.progress.evaluations
        self.progress.resets += 1
        log.info(
            "island %d reset after %d evaluations without improvement", island, since_improvement
        )

    def _rebuild_island(self, i: int) -> None:
        """Island `i`'s actor died (with its node): start a new one and replay the island's
        history from the database, as `resume=` does; the run goes on without it stopping.
        Its children that were in evaluation are still scored and recorded by the queues."""
        # An actor reported unavailable may yet answer: make sure it writes nothing more.
        ray.kill(self.islands[i], no_restart=True)
        p = self.progress
        # Asked of the archive once the dead island's last children are recorded (every
        # queue has settled it): those whose reports died with it still count, so the budget
        # holds exactly.
        self._epochs[i] += 1
        ray.get([q.settle.remote(i, self._epochs[i]) for q in self.queues])
        totals = ray.get(self.archive.island_totals.remote(i))
        base = self._island_base[i]
        counted = int(totals["counted"] - base["counted"] - p.island_evals[i])
        calls = int(totals["llm_calls"] - base["llm_calls"] - self._island_calls[i])
        cost = totals["cost_usd"] - base["cost_usd"] - self._island_cost[i]
        p.evaluations += counted
        p.island_evals[i] += counted
        p.iterations += calls
        p.llm_calls += calls
        p.cost_usd += cost
        self._island_calls[i] += calls
        self._island_cost[i] += cost
        # On the driver's node: Ray may not yet know the dead node is gone (an actor is
        # unavailable before its node is declared dead), and a run never outlives this node.
        self.islands[i] = self._island(i, self._here, self._epochs[i])
        self._restore(only=i)
        p.island_rebuilds += 1
        log.warning("island %d rebuilt from the database (%d children recovered)", i, counted)

    def _wait_for_quiet(self, db: Database) -> None:
        """The run was killed (its status is still `running`). On a shared cluster its actors
        outlive a killed driver for a moment (Ray stops them within seconds) and its archive
        may still record the children it was evaluating: wait until the database has been
        still for QUIET_S, so that two archives never write one run."""
        mark, still_since = db.write_mark(self.run_id), time.monotonic()
        deadline = still_since + QUIET_MAX_S
        while time.monotonic() - still_since < QUIET_S:
            if time.monotonic() > deadline:
                raise RunError(
                    f"run {self.run_id} is still being written by another process after "
                    f"{QUIET_MAX_S:.0f} s; stop it (or its Ray job) before resuming"
                )
            time.sleep(0.2)
            now = db.write_mark(self.run_id)
            if now != mark:
                log.info("resume: the killed run's processes are still writing; waiting")
                mark, still_since = now, time.monotonic()

    # --- the loop --------------------------------------------------------------------------
    def run(self) -> Progress:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resuming = False
        self._evaluated: list[str] = []  # the programs a resumed run evaluated before
        if self.db_path.exists():
            db = Database(self.db_path)
            try:
                resuming = db.db["runs"].count_where("id = ?", [self.run_id]) > 0
                if resuming and db.run(self.run_id)["status"] == "running":
                    self._wait_for_quiet(db)
                if resuming:
                    self._evaluated = db.evaluated_hashes(self.run_id)
            finally:
                db.close()
        features = self._start_actors()
        ready_s = self.progress.elapsed
        versions = {**package_versions(), "sandbox": features}
        ray.get(self.archive.start_run.remote(self.problem.name, int(cfg["seed"]), cfg, versions))
        # The isolation in force is part of the run's record, and a missing layer is said
        # once, here, in the console and run.log.
        self.progress.sandbox_problems = list(features.get("problems") or [])
        for problem in self.progress.sandbox_problems:
            log.warning(missing_layer(problem))
            if self.view is not None:
                self.view.console.print(missing_layer(problem), style="yellow", highlight=False)
        if resuming:
            self._restore()
            log.info("resumed run %s at %d evaluations", self.run_id, self.progress.evaluations)
        else:
            self._seed()
        ray.get([q.start_rest.remote() for q in self.queues])
        log.info(
            "start-up: evaluator workers ready after %.1f s, the islands seeded after %.1f s",
            ready_s,
            self.progress.elapsed,
        )
        # What each island had recorded before this process heard from it (see _rebuild_island).
        self._island_base = ray.get(
            [self.archive.island_totals.remote(i) for i in range(len(self.islands))]
        )
        self._island_calls: Counter = Counter()
        self._island_cost: Counter = Counter()
        status = "completed"
        try:
            self._loop()
            self._score_test_set()
            self._final_literature_wait()
        except RunError:
            status = "failed"
            raise
        except KeyboardInterrupt:
            status = "interrupted"
            self.progress.stop_reason = "interrupted by the user; resume with resume=" + str(
                self.run_dir
            )
        finally:
            self._finish(status)
        return self.progress

    def _loop(self) -> None:
        """Exchange tokens for results with every island until the budget is spent."""
        s, p = self.cfg["search"], self.progress
        per_island = int(s["in_flight_per_island"]) * (2 if s.get("pipeline", False) else 1)
        n = len(self.islands)
        report_s = max(REPORT_INTERVAL_S, n / REPORTS_PER_S)
        started = time.monotonic()
        finished = [0] * n  # iterations each island has reported (for its rate)
        interval = int(s["migration_interval"]) * n  # per island: a round once each has had them
        next_migration = p.evaluations + interval
        pad = s.get("scratchpad") or {}
        pad_every = int(pad.get("every", 0)) if pad.get("enabled") else 0
        next_note = (p.evaluations // pad_every + 1) * pad_every if pad_every else 0
        held = [0] * len(self.islands)  # tokens out per island: iterations that may yet count
        calls: dict[Any, int] = {}  # a `work` call in flight -> its island
        stopping = ""  # a hard stop (wall time, cost): nothing more is handed out

        def exchange(i: int) -> None:
            give = 0
            if not stopping:
                room, why = budgets.tokens_left(
                    self.budget, p.evaluations, p.llm_calls, p.iterations, sum(held)
                )
                # Enough to run at the island's own rate until its next report, twice over.
                rate = finished[i] / max(time.monotonic() - started, 1.0)
                spare = max(SPARE_TOKENS, per_island, math.ceil(2 * rate * report_s))
                give = budgets.grant(held[i], per_island + spare, room)
                if room == 0 and why:
                    p.stop_reason = p.stop_reason or why
            if held[i] + give > 0:
                held[i] += give
                # Near a cost limit the driver must hear of each call's price at once, so that
                # the limit stops the run within the calls already in flight.
                limit = self.budget.max_cost_usd
                near = limit is not None and p.cost_usd >= COST_NEAR * limit
                every = 0.0 if near else report_s
                calls[self.islands[i].work.remote(give, max(REPORT_WAIT_S, every), every)] = i

        for i in range(len(self.islands)):
            exchange(i)
        while calls:
            hard = "" if stopping else budgets.hard_stop(self.budget, p.elapsed, p.cost_usd)
            if hard:
                stopping = p.stop_reason = hard
                log.info("%s: cancelling the LLM requests in flight", hard)
                for isl in self.islands:
                    isl.cancel.remote()
            timeout = 1.0
            if self.budget.wall_time_s is not None and not stopping:
                timeout = min(timeout, max(0.01, self.budget.wall_time_s - p.elapsed))
            done, _ = ray.wait(list(calls), num_returns=1, timeout=timeout)
            for ref in done:
                i = calls.pop(ref)
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    log.warning(
                        "island %d's actor died (%s); rebuilding it from the database",
                        i,
                        type(exc).__name__,
                    )
                    held[i] = 0  # every iteration in flight there is recorded or lost
                    self._rebuild_island(i)
                    if stopping:
                        self.islands[i].cancel.remote()
                    exchange(i)
                    continue
                held[i] -= len(out["results"]) + out["returned"]
                if held[i] != out["holding"]:
                    log.error(
                        "island %d: the driver counts %d iterations out, the island %d; "
                        "going by the island's count",
                        i,
                        held[i],
                        out["holding"],
                    )
                    held[i] = out["holding"]
                finished[i] += len(out["results"])
                for r in out["results"]:
                    self._absorb(r)
                exchange(i)
            if pad_every and p.evaluations >= next_note and not stopping:
                self._write_scratchpad(pad_every)
                next_note = (p.evaluations // pad_every + 1) * pad_every
            if interval > 0 and p.evaluations >= next_migration:
                try:
                    if n > 1:
                        self._migrate()
                    else:
                        self._record_grids()
                except ray.exceptions.RayActorError:
                    # An island died since its last report; it is rebuilt when its work
                    # call fails, and the next migration includes it again.
                    log.warning("migration skipped: an island's actor died")
                next_migration = p.evaluations + interval
            self._poll_literature()
            if self.view is not None:
                self.view.update(p)
        p.overshoot = budgets.overshoot(self.budget, p.elapsed, p.cost_usd)
        if p.overshoot:
            log.warning("the run went over its budget: %s", p.overshoot)

    def _finish(self, status: str) -> None:
        try:
            # The islands' last results, which no later step of theirs will apply, first.
            self._record_grids(settle=True)
        except Exception:  # a dead island: the database already holds every counted child
            log.exception("could not record the final island state")
        try:
            replaced = sum(ray.get([q.replacements.remote() for q in self.queues]))
            if replaced:
                log.warning("%d evaluator workers died and were replaced", replaced)
            served: Counter = Counter()
            self.progress.queue_served = ray.get([q.served.remote() for q in self.queues])
            for part in self.progress.queue_served:
                served.update(part)
            served.update(ray.get(self.archive.served.remote()))
            self.progress.archive_served = dict(served)
            log.info(
                "queues: %d calls from islands (%d items), %d from workers; archive: %d "
                "write calls (%d items)",
                served.get("send", 0),
                served.get("sent_items", 0),
                served.get("take", 0),
                served.get("write", 0),
                served.get("written_items", 0),
            )
        except Exception:
            log.exception("could not ask the queues and the archive what they served")
        try:
            # Every queue's last writes are committed before the run's status says it ended.
            ray.get([q.finish.remote() for q in self.queues])
            ray.get(self.archive.finish.remote(status))
        except Exception:
            log.exception("could not record the run's final status")
        for a in [*self.islands, self.literature, *self.queues, self.archive]:
            if a is not None:
                ray.kill(a)

    def _write_scratchpad(self, every: int) -> None:
        """A new version of the run's note, from its last `every` children, to every island."""
        children = ray.get(self.archive.recent_children.remote(every))
        seed = step_seed(int(self.cfg["seed"]), 0, 10_000_000 + self.progress.evaluations)
        out = ray.get(self.islands[0].write_scratchpad.remote(children, seed))
        self.progress.cost_usd += float(out.get("cost_usd") or 0.0)
        ray.get(
            self.archive.record_scratchpad.remote(
                self.progress.evaluations, out["note"], out["llm_call_id"]
            )
        )
        ray.get([isl.set_notes.remote(out["note"]) for isl in self.islands])
        self.progress.notes = out["note"]

    def _score_test_set(self) -> None:
        """Score the run's best once on the held-out test set (never seen by the search) and
        record it: the generalisation gap is train vs validation vs test."""
        pid = self.progress.best_program_id
        if "test" not in self.problem.instance_sets or pid is None:
            return
        code = ray.get(self.archive.program_code.remote(pid))
        ev = ray.get(self.queues[0].evaluate_all_sets.remote(code))
        ray.get(self.archive.record_test_score.remote(pid, ev))
        if ev["valid"]:
            self.progress.best_metrics = ev["metrics"]
        else:
            log.error("the best program #%d failed on the test set: %s", pid, ev["error"])
            self.progress.best_metrics["test_error"] = ev["error"]
