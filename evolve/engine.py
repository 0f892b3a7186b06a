"""The island model on Ray: island actors, the archive actor and the evaluator pool.

One iteration: an island samples a parent and inspirations -> prompt -> litellm -> edits
applied inside the EVOLVE-BLOCK -> cheap rejects (no change, syntax, duplicate) -> the child
runs in the sandbox on the evaluator pool -> trusted scoring -> the archive writes it to
SQLite -> the island updates its grid. The driver keeps several iterations in flight per
island, migrates the best programs around the ring, enforces the budget and shows progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from evolve.cluster import load_problem_ref, node_id, problem_ref
from evolve.config import llm_models
from evolve.doctor import package_versions
from evolve.evaluators.evaluation import Evaluation
from evolve.population.database import Database
from evolve.population.island import Island, Member
from evolve.problem import Problem, load_problem
from evolve.program import EditError, apply_response, code_hash, unified_diff
from evolve.sandbox.runner import missing_layer

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A run that cannot start or continue; the message says what to fix."""


def step_seed(seed: int, island: int, step: int) -> int:
    """A per-iteration seed that does not depend on scheduling order."""
    return (seed * 1_000_003 + island * 7_919 + step * 104_729) % (2**31 - 1)


def _load(ref: dict[str, Any]) -> Problem:
    return load_problem_ref(ref)


# --- actors --------------------------------------------------------------------------------
@ray.remote(num_cpus=0)
class ArchiveActor:
    """The one writer of the run database."""

    def __init__(self, db_path: str, run_id: str) -> None:
        self.db = Database(db_path)
        self.run_id = run_id

    def evaluated_hashes(self) -> list[str]:
        """Code hashes of every program this run has evaluated (for the pool, on resume)."""
        rows = self.db.db.execute(
            "SELECT DISTINCT code_hash FROM programs "
            "WHERE run_id = ? AND code_hash != '' AND status != 'rejected'",
            [self.run_id],
        ).fetchall()
        return [r[0] for r in rows]

    def start_run(self, problem: str, seed: int, config: dict, versions: dict) -> None:
        self.db.start_run(self.run_id, problem, seed, config, versions)

    def record_llm_call(self, island: int, call: dict[str, Any]) -> int:
        return self.db.record_llm_call(self.run_id, {"island": island, **call})

    def record_program(self, prog: dict[str, Any]) -> int:
        return self.db.record_program(self.run_id, prog)

    def record_iteration(
        self, island: int, call: dict[str, Any], prog: dict[str, Any]
    ) -> tuple[int, int]:
        """An iteration's LLM call and the child it produced, in one round trip."""
        call_id = self.db.record_llm_call(self.run_id, {"island": island, **call})
        return call_id, self.db.record_program(self.run_id, {**prog, "llm_call_id": call_id})

    def record_migration(self, src: int, dst: int, program_id: int) -> None:
        self.db.record_migration(self.run_id, src, dst, program_id)

    def record_reset(self, island: int, program_ids: list[int]) -> None:
        self.db.record_reset(self.run_id, island, program_ids)

    def record_elites(
        self, island: int, cells: list[dict[str, Any]], axes: list[dict[str, Any]] | None = None
    ) -> None:
        self.db.record_elites(self.run_id, island, cells, axes)

    def record_islands(self, states: list[dict[str, Any]]) -> None:
        for s in states:
            self.db.record_island(self.run_id, s)

    def record_literature_check(self, program_id: int | None, verdict: dict[str, Any]) -> int:
        return self.db.record_literature_check(self.run_id, program_id, verdict)

    def evaluations(self) -> int:
        return self.db.evaluations(self.run_id)

    def island_totals(self, island: int) -> dict[str, float]:
        """What one island has recorded: counted children, LLM calls, their cost."""
        return self.db.island_totals(self.run_id, island)

    def recent_children(self, n: int) -> list[dict[str, Any]]:
        return self.db.recent_children(self.run_id, n)

    def record_scratchpad(self, at_evaluation: int, note: str, llm_call_id: int | None) -> None:
        self.db.record_scratchpad(self.run_id, at_evaluation, note, llm_call_id)

    def program_code(self, program_id: int) -> str:
        return self.db.program_code(self.run_id, program_id)

    def record_test_score(self, program_id: int, evaluation: dict[str, Any]) -> None:
        self.db.record_test_score(self.run_id, program_id, evaluation)

    def finish(self, status: str) -> None:
        self.db.finish_run(self.run_id, status)


@ray.remote(num_cpus=1)
class EvaluatorActor:
    """A warm worker: the problem's evaluator imported (numba kernels cached), a sandbox ready."""

    def __init__(
        self,
        problem_ref: dict[str, Any],
        timeout_s: float | None,
        preload: tuple[str, ...] = ("numpy", "numba"),
        on_demand: tuple[str, ...] = ("numba",),
        allow_unconfined_files: bool = False,
    ) -> None:
        import evolve.sandbox as sandbox

        self.problem = _load(problem_ref)
        _ = self.problem.evaluator_module  # import (and compile) the trusted evaluator once
        self.timeout_s = timeout_s
        self.sandbox = sandbox.Sandbox(
            preload=tuple(preload),
            on_demand=tuple(on_demand),
            allow_unconfined_files=allow_unconfined_files,
        )
        self.node = node_id()

    def sandbox_features(self) -> dict[str, Any]:
        """Which isolation layers are in force where this worker runs."""
        return self.sandbox.features

    def evaluate(self, code: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Score a child as the search sees it: train (cascade first) and validation."""
        from evolve.evaluators.harness import evaluate_code

        ev = evaluate_code(
            self.problem,
            code,
            self.timeout_s,
            sandbox=self.sandbox,
            sets=("train", "validation"),
            context=context,
            use_cascade=True,
        )
        return {**ev.to_dict(), "node": self.node}  # the program row names where it ran

    def evaluate_all_sets(self, code: str) -> dict[str, Any]:
        """Score a program on every set, test included, with no cascade (the run's final best)."""
        from evolve.evaluators.harness import evaluate_code

        return evaluate_code(self.problem, code, self.timeout_s, sandbox=self.sandbox).to_dict()


# Workers an evaluation may be lost with (their node died) before it is recorded as lost.
LOST_WORKER_RETRIES = 3


@ray.remote(num_cpus=0)
class EvaluatorPool:
    """Hands each evaluation to the next free worker (fair, no per-island pinning); a worker
    that died (with its node) is replaced, and its evaluation goes to another worker."""

    def __init__(
        self, workers: list, evaluated: list[str] | None = None, spawn: dict | None = None
    ) -> None:
        self.workers = workers
        self.free: asyncio.Queue | None = None
        # How to start a replacement worker: {"args": [...], "options": {...}} (None: never).
        self.spawn = spawn
        self.replaced = 0
        self._starting: set[asyncio.Task] = set()
        # Hashes of every program sent for evaluation in this run (and, on resume, before):
        # the one gate that keeps a program from being evaluated twice, across all islands,
        # including two copies in flight at the same moment.
        self.evaluated: set[str] = set(evaluated or ())

    async def evaluate(
        self, code: str, h: str | None = None, context: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Score `code` on the next free worker; None if a program with hash `h` was already
        sent for evaluation in this run. `context`: the parent's and island best's metrics,
        for a cascade's thresholds."""
        if h is not None:
            if h in self.evaluated:
                return None
            self.evaluated.add(h)
        return await self._on_a_worker(lambda w: w.evaluate.remote(code, context))

    async def evaluate_all_sets(self, code: str) -> dict[str, Any]:
        """Score `code` on every instance set, test included (never a search decision)."""
        return await self._on_a_worker(lambda w: w.evaluate_all_sets.remote(code))

    async def _on_a_worker(self, call) -> dict[str, Any]:
        """`call(worker)` on the next free worker; on another if that one dies meanwhile."""
        if self.free is None:
            self.free = asyncio.Queue()
            for w in self.workers:
                self.free.put_nowait(w)
        for _ in range(LOST_WORKER_RETRIES):
            worker = await self.free.get()
            try:
                ev = await call(worker)
            except ray.exceptions.RayActorError as exc:
                # The worker died (its node was lost): it never goes back to the free queue.
                log.warning("evaluator worker lost (%s); replacing it", type(exc).__name__)
                ray.kill(worker)  # one only unavailable for now must not hold its CPUs
                self._replace()
                continue
            except BaseException:
                self.free.put_nowait(worker)
                raise
            self.free.put_nowait(worker)
            return ev
        return Evaluation.failed(
            "lost", f"evaluator workers died {LOST_WORKER_RETRIES} times while running it"
        ).to_dict()

    def replacements(self) -> int:
        """How many dead workers this pool has replaced."""
        return self.replaced

    def _replace(self) -> None:
        """Start a worker in a dead one's place; it joins the free queue once it is up (Ray
        places it where resources allow; until then the pool carries on with the others)."""
        if self.spawn is None:
            return
        self.replaced += 1
        new = EvaluatorActor.options(**self.spawn["options"]).remote(*self.spawn["args"])
        task = asyncio.get_running_loop().create_task(self._join_when_ready(new))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _join_when_ready(self, worker) -> None:
        try:
            await worker.sandbox_features.remote()
        except ray.exceptions.RayActorError:
            await asyncio.sleep(1.0)  # its node died too: try again, without spinning
            self._replace()
            return
        assert self.free is not None
        self.free.put_nowait(worker)


@ray.remote(num_cpus=0)
class LiteratureActor:
    """Checks new bests against the known results off the driver's loop, and records verdicts."""

    def __init__(
        self, problem_ref: dict[str, Any], db_path: str, run_id: str, archive, lit: dict[str, Any]
    ) -> None:
        self.problem = _load(problem_ref)
        self.db_path = db_path
        self.run_id = run_id
        self.archive = archive
        self.lit = lit

    def check(self, program_id: int) -> dict[str, Any]:
        lit = self.lit
        try:
            from evolve import literature

            options: dict[str, Any] = {"timeout": lit.get("llm_timeout_s", 60.0)}
            if lit.get("llm_api_base"):
                options["api_base"] = lit["llm_api_base"]
            if lit.get("llm_api_key_env") and os.environ.get(lit["llm_api_key_env"]):
                options["api_key"] = os.environ[lit["llm_api_key_env"]]
            verdict = literature.check_program(
                self.problem,
                self.db_path,
                self.run_id,
                program_id,
                llm=lit.get("llm"),
                llm_options=options if lit.get("llm") else None,
                timeout_s=lit.get("sandbox_timeout_s"),  # the run's, as its children had
            )
        except Exception as exc:  # the check must never stop a run; record why it failed
            log.exception("literature check failed")
            verdict = {
                "status": "error",
                "problem": self.problem.name,
                "message": f"literature check failed: {type(exc).__name__}: {exc}",
            }
        ray.get(self.archive.record_literature_check.remote(program_id, verdict))
        return verdict


@ray.remote(num_cpus=0)
class IslandActor:
    """One island: samples parents, asks the LLM, applies edits, sends children to be scored."""

    def __init__(
        self, island_id: int, problem_ref: dict[str, Any], cfg: dict[str, Any], pool, archive
    ) -> None:
        # litellm takes seconds to import: only island processes, which call it, pay for it.
        from evolve.mutation.client import LLMClient

        self.id = island_id
        self.problem = _load(problem_ref)
        self.cfg = cfg
        s = cfg["search"]
        self.island = Island(
            island_id,
            feature_dims=list(self.problem.features) + list(s.get("generic_features", [])),
            capacity=s["population_size"],
            bins=s["grid_bins"],
            selection=s["selection"],
            tournament_size=s["tournament_size"],
            temperature=s["temperature"],
            power_law_alpha=s["power_law_alpha"],
        )
        self.client = LLMClient.from_config(cfg["llm"])
        if any(m.model.startswith("evolve-local/") for m in self.client.models):
            from evolve.mutation import local

            local.use_problem_moves(local.load_problem_moves(self.problem.path))
        self.pool = pool
        self.archive = archive
        self.seed = int(cfg["seed"])
        self._llm_slots: asyncio.Semaphore | None = None  # made in the actor's event loop
        from evolve.mutation.ensemble import make_selector

        self.variants = list(s.get("prompt_variants") or [])
        self.variant_selector = (
            make_selector(s.get("prompt_selection", "thompson"), [1.0] * len(self.variants))
            if self.variants
            else None
        )
        judge = s.get("judge") or {}
        self.judge = None
        if judge.get("enabled"):
            from evolve.mutation.client import ModelSpec

            self.judge = LLMClient(
                [
                    ModelSpec(
                        judge["model"],
                        api_base=judge.get("api_base"),
                        api_key_env=judge.get("api_key_env"),
                    )
                ],
                temperature=0.0,
                max_tokens=400,
                timeout_s=cfg["llm"]["timeout_s"],
                max_retries=cfg["llm"]["max_retries"],
                backoff_s=cfg["llm"].get("backoff_s", 1.0),
            )
        self.notes = ""  # the run's scratchpad note (search.scratchpad)
        self._embeddings: dict[int, list[float]] = {}  # program id -> embedding (novelty)
        self._pending_embeddings: dict[str, list[float]] = {}  # child hash -> embedding

    async def _embedding(self, code: str, nov: dict[str, Any], summary: dict) -> list[float]:
        from evolve.population.novelty import embed_offline

        model = nov.get("model")
        if not model:
            return embed_offline(code)
        import litellm

        kwargs: dict[str, Any] = {"timeout": 60}
        if nov.get("api_base"):
            kwargs["api_base"] = nov["api_base"]
        if nov.get("api_key_env") and os.environ.get(nov["api_key_env"]):
            kwargs["api_key"] = os.environ[nov["api_key_env"]]
        t0 = time.monotonic()
        try:
            resp = await litellm.aembedding(model=model, input=[code], **kwargs)
        except Exception as exc:  # the filter must never stop a run: fall back, say why
            log.warning("novelty: embedding with %s failed (%s); using the offline one", model, exc)
            return embed_offline(code)
        cost = 0.0
        # An unpriced embedding model costs what litellm cannot price (nothing is counted).
        with contextlib.suppress(Exception):
            cost = float(litellm.completion_cost(completion_response=resp) or 0.0)
        summary["cost_usd"] = (summary.get("cost_usd") or 0.0) + cost
        usage = getattr(resp, "usage", None)
        await self.archive.record_llm_call.remote(
            self.id,
            {
                "model": model,
                "prompt": "[embedding of a program for the novelty filter]",
                "response": "",
                "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                "completion_tokens": 0,
                "cost_usd": cost,
                "latency_s": time.monotonic() - t0,
                "attempts": 1,
                "error": "",
            },
        )
        return [float(x) for x in resp.data[0]["embedding"]]

    async def _judge(self, parent: Member, child: str, diff: str, rng, summary: dict):
        """Ask the judge about a child; its call is recorded and counted like any call."""
        from evolve.mutation import judge

        messages = judge.build_messages(self.problem, parent.code, parent.score, diff, child)
        spec = self.judge.models[0]
        seed = rng.getrandbits(31)
        call = await self.judge.acomplete(spec, messages, seed=seed)
        summary["cost_usd"] = (summary.get("cost_usd") or 0.0) + call.cost_usd
        prompt = "\n\n".join(m["content"] for m in messages)
        await self.archive.record_llm_call.remote(
            self.id, {**call.record(prompt), "seed": seed, "template": "judge"}
        )
        return judge.parse(call.text)

    async def _novelty_check(self, child: str, h: str, summary: dict) -> str:
        """'' if the child may be evaluated; else why it is too close to a program here."""
        nov = self.cfg["search"].get("novelty") or {}
        if not nov.get("enabled") or self.island.has(h):
            return ""
        from evolve.population.novelty import nearest

        vec = await self._embedding(child, nov, summary)
        for m in self.island.ranked():
            if m.id not in self._embeddings:
                self._embeddings[m.id] = await self._embedding(m.code, nov, summary)
        near = nearest(vec, {m.id: self._embeddings[m.id] for m in self.island.ranked()})
        threshold = float(nov.get("threshold", 0.9995))
        if near is not None and near.similarity >= threshold:
            return (
                f"novelty: similarity {near.similarity:.5f} to program #{near.program_id} "
                f"on this island (threshold {threshold:g})"
            )
        self._pending_embeddings[h] = vec
        return ""

    def add(self, member: dict[str, Any]) -> bool:
        """Add a program (the seed, a migrant, or one restored on resume); False if already here."""
        m = Member(**member)
        if self.island.has(m.code_hash):
            return False
        self.island.add(m)
        return True

    def set_notes(self, note: str) -> None:
        """The run's scratchpad note, carried by this island's prompts from now on."""
        limit = int((self.cfg["search"].get("scratchpad") or {}).get("max_chars", 1500))
        self.notes = note[:limit]

    async def write_scratchpad(self, children: list[dict[str, Any]], seed: int) -> dict[str, Any]:
        """Digest the run's recent children into a note, through this island's LLM client
        (the local provider answers with the digest itself). The call is recorded."""
        from evolve.mutation import scratchpad

        messages = scratchpad.build_messages(self.problem, children)
        spec = self.client.models[0]
        call = await self.client.acomplete(spec, messages, seed=seed)
        prompt = "\n\n".join(m["content"] for m in messages)
        call_id = await self.archive.record_llm_call.remote(
            self.id, {**call.record(prompt), "seed": seed, "template": "scratchpad"}
        )
        note = (call.text or "").strip() or scratchpad.digest(children, self.problem.direction)
        return {"note": note, "llm_call_id": call_id, "cost_usd": call.cost_usd}

    def set_keys(self, keys: dict[str, str]) -> None:
        """API keys for this process's LLM calls, where its environment lacks them."""
        for name, value in keys.items():
            os.environ.setdefault(name, value)

    def accept_migrant(self, member: dict[str, Any]) -> bool:
        """Take a migrant unless this island already holds it (then False, nothing recorded)."""
        return self.island.accept_migrant(Member(**member))

    def reset(self, members: list[dict[str, Any]]) -> None:
        """Re-seed a stagnant island (with the seed program and the run's best so far)."""
        self.island.reset([Member(**m) for m in members])

    def restore(self, events: list[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
        """Replay this island's history from the database, in order: ("add", member) for its
        own valid children, ("migrant", member), ("eval", None) for every counted child."""
        for kind, m in events:
            if kind == "eval":
                self.island.evaluations += 1
            elif kind == "add":
                self.island.add(Member(**m))
            elif kind == "reset":
                self.island.reset([Member(**x) for x in m["members"]])
            else:
                self.island.accept_migrant(Member(**m))
        return self.island.state()

    def best(self) -> dict[str, Any] | None:
        return self.island.best.to_dict() if self.island.best else None

    def elites(self) -> list[dict[str, Any]]:
        """The MAP-Elites grid: one row per occupied cell."""
        return [
            {"cell": ",".join(map(str, cell)), "program_id": m.id, "fitness": m.fitness}
            for cell, m in self.island.grid.cells.items()
        ]

    def grid_axes(self) -> list[dict[str, Any]]:
        return self.island.grid.axes()

    def state(self) -> dict[str, Any]:
        return self.island.state()

    async def step(self, step_no: int) -> dict[str, Any]:
        from evolve.mutation.prompts import ParentView, build_messages

        if self._llm_slots is None:
            self._llm_slots = asyncio.Semaphore(int(self.cfg["search"]["in_flight_per_island"]))
        rng = random.Random(step_seed(self.seed, self.id, step_no))
        s = self.cfg["search"]
        # A request slot is held from choosing the parent to the LLM's answer; with
        # search.pipeline the driver keeps more iterations pending than slots, so the next
        # request starts while this child is checked and evaluated.
        async with self._llm_slots:
            parent = self.island.sample_parent(rng)
            inspirations = self.island.sample_inspirations(rng, parent, s["inspirations"])
            variant = None
            if self.variant_selector is not None:
                variant = self.variant_selector.choose(rng)
                mode = self.variants[variant]
            else:
                mode = "diff" if rng.random() < self.cfg["llm"]["diff_probability"] else "rewrite"
            second = None
            if mode == "crossover":
                others = [m for m in self.island.ranked() if m.id != parent.id]
                if others:
                    other = self.island.sample_parent(rng)
                    other = other if other.id != parent.id else rng.choice(others)
                    second = ParentView(other.code, other.score, other.metrics)
                else:
                    mode = "diff"  # one program on the island: nothing to cross with
            messages = build_messages(
                self.problem,
                ParentView(parent.code, parent.score, parent.metrics, parent.feedback),
                [ParentView(m.code, m.score, m.metrics) for m in inspirations],
                mode,
                second=second,
                notes=self.notes,
            )
            spec = self.client.choose(rng)
            call_seed = rng.getrandbits(31)
            call = await self.client.acomplete(spec, messages, seed=call_seed)
        prompt_text = "\n\n".join(m["content"] for m in messages)
        record = {**call.record(prompt_text), "seed": call_seed, "template": mode}
        summary = {
            "island": self.id,
            "model": spec.model,
            "cost_usd": call.cost_usd,
            "llm_error": call.text is None,
        }
        if call.text is None:
            await self.archive.record_llm_call.remote(self.id, record)
            return {**summary, "status": "llm_error", "counted": False, "reason": call.error}
        child, h, edit_error = None, "", None
        try:
            child, edit_mode = apply_response(parent.code, call.text)
            h = code_hash(child)
        except EditError as exc:
            edit_error = f"{exc.kind}: {exc}"
        base = {
            "island": self.id,
            "generation": parent.generation + 1,
            "parent_id": parent.id,
            "inspiration_ids": [m.id for m in inspirations],
            "model": spec.model,
        }
        if edit_error is not None:
            await self.archive.record_iteration.remote(
                self.id,
                record,
                {
                    **base,
                    "code": "",
                    "code_hash": "",
                    "mode": mode,
                    "status": "rejected",
                    "reason": edit_error,
                },
            )
            return {**summary, "status": "rejected", "counted": False, "reason": edit_error}
        base.update(code=child, code_hash=h, diff=unified_diff(parent.code, child), mode=edit_mode)
        context = None
        if self.problem.cascade:  # thresholds of the cheap stages: the parent's, the best's
            best = self.island.best
            context = {
                "parent": {"metrics": parent.metrics},
                "island_best": {"metrics": best.metrics if best else {}},
            }
        too_close = await self._novelty_check(child, h, summary)
        if too_close:
            await self.archive.record_iteration.remote(
                self.id, record, {**base, "status": "rejected", "reason": too_close}
            )
            return {**summary, "status": "rejected", "counted": False, "reason": too_close}
        judged = None
        if self.judge is not None and not self.island.has(h):
            judged = await self._judge(parent, child, base["diff"], rng, summary)
            if judged.p_improve < float(s["judge"]["threshold"]):
                audit = rng.random() < float(s["judge"].get("audit") or 0.0)
                if not audit:
                    reason = (
                        f"judge: {judged.reason} (predicted chance {judged.p_improve:.2f} < "
                        f"threshold {float(s['judge']['threshold']):g})"
                    )
                    await self.archive.record_iteration.remote(
                        self.id, record, {**base, "status": "rejected", "reason": reason}
                    )
                    return {**summary, "status": "rejected", "counted": False, "reason": reason}
        # The pool evaluates each distinct program once per run, whichever island sends it.
        ev = None if self.island.has(h) else await self.pool.evaluate.remote(child, h, context)
        rejected_by_judge = judged is not None and judged.p_improve < float(s["judge"]["threshold"])
        if ev is not None and judged is not None:
            # Recorded with the child, for the judge's calibration; an audited child (rejected,
            # run anyway to measure how often the judge turns away an improvement) says so, and
            # is kept like any child: it was run, so its result is not thrown away.
            ev["metrics"]["judge_p_improve"] = judged.p_improve
            ev["metrics"]["judge_rejected"] = float(rejected_by_judge)
        if ev is None:
            reason = "duplicate of a program already evaluated in this run"
            await self.archive.record_iteration.remote(
                self.id, record, {**base, "status": "rejected", "reason": reason}
            )
            return {**summary, "status": "rejected", "counted": False, "reason": reason}
        _, pid = await self.archive.record_iteration.remote(
            self.id, record, {**base, "evaluation": ev}
        )
        self.island.evaluations += 1
        improved = False
        reward = 1.0 if ev["valid"] and ev["fitness"] > parent.fitness else 0.0
        self.client.feedback(spec, reward)
        if variant is not None:
            self.variant_selector.feedback(variant, reward)
        if ev["valid"] and h in self._pending_embeddings:
            self._embeddings[pid] = self._pending_embeddings.pop(h)
        self._pending_embeddings.pop(h, None)
        if ev["valid"]:
            improved = self.island.add(
                Member(
                    id=pid,
                    code=child,
                    code_hash=h,
                    score=ev["score"],
                    fitness=ev["fitness"],
                    metrics=ev["metrics"],
                    features=_features(ev, child),
                    feedback=ev["feedback"],
                    generation=parent.generation + 1,
                    island=self.id,
                )
            )
        return {
            **summary,
            "status": ev["status"],
            "counted": True,
            "program_id": pid,
            "valid": ev["valid"],
            "score": ev["score"],
            "fitness": ev["fitness"] if ev["valid"] else None,
            "selection": selection_fitness(self.problem, ev),
            "metrics": ev["metrics"] if ev["valid"] else {},
            "island_best": improved,
            "reason": ev["error"],
            "since_improvement": self.island.evaluations - self.island.last_improvement,
        }


def selection_fitness(problem: Problem, ev: dict[str, Any]) -> float | None:
    """What picks the run's best, higher is better: the validation score where the problem
    has a validation set (guarding against programs that fit the train set only), else the
    fitness."""
    if not ev.get("valid"):
        return None
    metric = problem.selection_metric
    if metric is None:
        return ev["fitness"]
    value = (ev.get("metrics") or {}).get(metric)
    if value is None:
        return None
    return float(value) if problem.direction == "max" else -float(value)


def _features(ev: dict[str, Any], code: str) -> dict[str, float]:
    """The problem's features plus generic ones (code length, evaluation time)."""
    f = dict(ev.get("features") or {})
    f.setdefault("code_length", float(len(code)))
    f.setdefault("eval_time", float((ev.get("metrics") or {}).get("eval_wall_s", 0.0)))
    return f


# --- the driver ----------------------------------------------------------------------------
@dataclass
class Progress:
    """What the live view and the final summary show."""

    problem: str
    budget: int
    islands: int
    started: float = field(default_factory=time.monotonic)
    evaluations: int = 0
    iterations: int = 0
    statuses: Counter = field(default_factory=Counter)
    best_score: float | None = None
    best_fitness: float = -math.inf
    best_program_id: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)  # train/validation/test...
    seed_score: float | None = None
    seed_metrics: dict[str, float] = field(default_factory=dict)
    cost_usd: float = 0.0
    llm_calls: int = 0
    llm_errors: int = 0
    island_best: dict[int, float | None] = field(default_factory=dict)
    island_evals: Counter = field(default_factory=Counter)
    migrations: int = 0
    resets: int = 0
    island_rebuilds: int = 0  # island actors that died (with their node) and were rebuilt
    verdicts: list[str] = field(default_factory=list)
    stop_reason: str = ""
    sandbox_problems: list[str] = field(default_factory=list)  # isolation layers missing here
    notes: str = ""  # the latest scratchpad note

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.evaluations / self.elapsed if self.elapsed > 0 else 0.0


class Evolution:
    """Drives one run: seeds or restores the islands, keeps work in flight, stops on budget."""

    def __init__(self, cfg: dict[str, Any], run_dir: Path, view=None) -> None:
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
        b = cfg["budget"]
        self.progress = Progress(
            self.problem.name, int(b["evaluations"]), int(cfg["search"]["islands"])
        )

    # --- setup -----------------------------------------------------------------------------
    def _start_actors(self) -> None:
        sb = self.cfg["sandbox"]
        # The archive writes the run folder, which is on the driver's machine: pin it there.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self._here = here
        self.archive = ArchiveActor.options(scheduling_strategy=here).remote(
            str(self.db_path), self.run_id
        )
        worker_args = [
            self.problem_ref,
            sb.get("timeout_s"),
            tuple(sb.get("preload") or ()),
            tuple(sb.get("on_demand") or ()),
            bool(sb.get("allow_unconfined_files")),
        ]
        worker_options = {"num_cpus": sb["cpus_per_worker"], "scheduling_strategy": "SPREAD"}
        self.workers = workers = [
            EvaluatorActor.options(**worker_options).remote(*worker_args)
            for _ in range(int(sb["workers"]))
        ]
        # The pool and the literature checker hold run state: on the driver's node, which a
        # run cannot lose anyway; islands and workers may die with theirs and are replaced.
        self.pool = EvaluatorPool.options(scheduling_strategy=here).remote(
            workers,
            ray.get(self.archive.evaluated_hashes.remote()),
            {"args": worker_args, "options": worker_options},
        )
        self._lit_pending = None
        self._lit_next: int | None = None
        self._last_reset: dict[int, int] = {}
        self.literature = LiteratureActor.options(scheduling_strategy=here).remote(
            self.problem_ref,
            str(self.db_path),
            self.run_id,
            self.archive,
            {
                **(self.cfg.get("literature") or {}),
                "sandbox_timeout_s": (self.cfg.get("sandbox") or {}).get("timeout_s"),
            },
        )
        self.islands = [
            IslandActor.options(scheduling_strategy="SPREAD").remote(
                i, self.problem_ref, self.cfg, self.pool, self.archive
            )
            for i in range(int(self.cfg["search"]["islands"]))
        ]
        # Island actors call the LLM. On a Ray started here they inherit this environment; on
        # a joined cluster they may not, so hand them the keys the config names. Through a
        # method call, not runtime_env: Ray writes runtime_env values into its own logs.
        llm = self.cfg["llm"]
        names = {m.get("api_key_env") for m in llm_models(llm)}
        names.add((self.cfg["search"].get("novelty") or {}).get("api_key_env"))
        keys = {k: os.environ[k] for k in names if k and os.environ.get(k)}
        self._keys = keys
        if keys:
            ray.get([isl.set_keys.remote(keys) for isl in self.islands])

    def _seed(self) -> None:
        """Evaluate the problem's seed program once and give it to every island."""
        code = self.problem.initial_code
        h = code_hash(code)
        ev = ray.get(self.pool.evaluate.remote(code, h))  # a fresh run: never a duplicate
        pid = ray.get(
            self.archive.record_program.remote(
                {
                    "island": None,
                    "code": code,
                    "code_hash": h,
                    "mode": "seed",
                    "model": "",
                    "evaluation": ev,
                }
            )
        )
        self.progress.evaluations += 1
        self.progress.statuses[ev["status"]] += 1
        if not ev["valid"]:
            raise RunError(
                f"the seed program of {self.problem.name} is not valid ({ev['status']}: {ev['error']}); "
                f"fix {self.problem.path / 'initial.py'}"
            )
        self.progress.seed_score = ev["score"]
        self.progress.seed_metrics = dict(ev["metrics"])
        member = Member(
            pid,
            code,
            h,
            ev["score"],
            ev["fitness"],
            ev["metrics"],
            _features(ev, code),
            ev["feedback"],
        )
        self.seed_member = member.to_dict()
        ray.get([isl.add.remote(member.to_dict()) for isl in self.islands])
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

    def _restore(self, db: Database, only: int | None = None) -> None:
        """Rebuild each island (or island `only`, whose actor died) by replaying its history
        from the database in recorded order: its own valid children, the migrants it
        accepted, and its evaluation count."""
        rows = db.programs(self.run_id, "status != 'rejected'", order="seq")
        progs = [p for p in rows if p["valid"]]
        by_id = {p["id"]: p for p in progs}
        seeds = [p for p in progs if p["mode"] == "seed"]
        if not seeds:
            raise RunError(f"{self.db_path} has no valid seed program to resume from")

        def member(p: dict[str, Any], island: int) -> dict[str, Any]:
            feats = _features({"features": p["features"], "metrics": p["metrics"]}, p["code"])
            return Member(
                p["id"],
                p["code"],
                p["code_hash"],
                p["score"],
                p["fitness"],
                p["metrics"],
                feats,
                p["feedback"],
                p["generation"],
                island,
            ).to_dict()

        n = len(self.islands)
        timeline: list[tuple[float, int, str, dict | None]] = []
        for p in rows:
            isl = p["island"]
            if isl is None or not 0 <= isl < n:
                continue
            timeline.append((p["created_at"], isl, "eval", None))
            if p["valid"]:
                timeline.append((p["created_at"], isl, "add", p))
        for to_island, pid, at in db.db.execute(
            "SELECT to_island, program_id, created_at FROM migrations WHERE run_id = ? ORDER BY id",
            [self.run_id],
        ).fetchall():
            if 0 <= to_island < n and pid in by_id:
                timeline.append((at, to_island, "migrant", by_id[pid]))
        for island, ids, at in db.db.execute(
            "SELECT island, program_ids, created_at FROM resets WHERE run_id = ? ORDER BY id",
            [self.run_id],
        ).fetchall():
            members = [by_id[i] for i in json.loads(ids) if i in by_id]
            if 0 <= island < n and members:
                timeline.append((at, island, "reset", {"members": members}))
        timeline.sort(key=lambda t: t[0])
        events: dict[int, list] = {i: [("add", member(seeds[0], i))] for i in range(n)}
        for _, isl, kind, p in timeline:
            if kind == "reset":
                events[isl].append((kind, {"members": [member(x, isl) for x in p["members"]]}))
            else:
                events[isl].append((kind, None if p is None else member(p, isl)))
        if only is not None:  # one island rebuilt mid-run: the run's own counts stand
            ray.get(self.islands[only].restore.remote(events[only]))
            return
        ray.get([isl.restore.remote(events[i]) for i, isl in enumerate(self.islands)])
        self.seed_member = member(seeds[0], 0)

        def chosen(p: dict[str, Any]) -> float:
            sel = selection_fitness(self.problem, p)
            return -math.inf if sel is None else sel

        progs.sort(key=lambda p: (-chosen(p), p["seq"]))
        best = progs[0]
        self.progress.seed_score = seeds[0]["score"]
        self.progress.seed_metrics = dict(seeds[0]["metrics"])
        notes = db.scratchpad(self.run_id)
        if notes:
            self.progress.notes = notes[-1]["note"]
            ray.get([isl.set_notes.remote(self.progress.notes) for isl in self.islands])
        self.progress.evaluations = db.evaluations(self.run_id)
        self.progress.statuses.update(db.status_counts(self.run_id))
        totals = db.llm_totals(self.run_id)
        self.progress.cost_usd = totals["cost_usd"]
        self.progress.llm_calls = totals["calls"]
        self.progress.iterations = totals["calls"]
        self._note_result(
            {
                "valid": True,
                "fitness": best["fitness"],
                "score": best["score"],
                "selection": chosen(best),
                "metrics": best["metrics"],
                "program_id": best["id"],
                "island": None,
            },
            check=False,
        )

    # --- the loop --------------------------------------------------------------------------
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

    def _literature_check(self, program_id: int) -> None:
        """Queue a check of a new best. While one check runs, later new bests replace each other
        in the queue: the checker always gets to the newest best, never to a stale one."""
        if not (self.cfg.get("literature") or {}).get("enabled", True):
            return
        if self._lit_pending is None:
            self._lit_pending = self.literature.check.remote(program_id)
        else:
            self._lit_next = program_id

    def _poll_literature(self, wait: float = 0.0) -> None:
        if self._lit_pending is None:
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

    def _budget_left(self, in_flight: int) -> bool:
        b, p = self.cfg["budget"], self.progress
        if p.evaluations + in_flight >= int(b["evaluations"]):
            p.stop_reason = p.stop_reason or f"evaluation budget of {b['evaluations']} reached"
            return False
        if b.get("wall_time_s") and p.elapsed >= float(b["wall_time_s"]):
            p.stop_reason = f"wall-time budget of {b['wall_time_s']} s reached"
            return False
        if b.get("max_cost_usd") is not None and p.cost_usd >= float(b["max_cost_usd"]):
            p.stop_reason = f"cost budget of ${b['max_cost_usd']} reached"
            return False
        if b.get("max_llm_calls") and p.llm_calls + in_flight >= int(b["max_llm_calls"]):
            p.stop_reason = f"LLM-call budget of {b['max_llm_calls']} reached"
            return False
        if p.iterations + in_flight >= self._max_iterations:
            p.stop_reason = (
                f"iteration cap of {self._max_iterations} reached (too many rejected edits)"
            )
            return False
        return True

    def _record_grids(self) -> None:
        """Write each island's state and MAP-Elites cells (at migrations and at the end)."""
        states = ray.get([isl.state.remote() for isl in self.islands])
        grids = ray.get([isl.elites.remote() for isl in self.islands])
        ray.get(self.archive.record_islands.remote(states))
        axes = ray.get([isl.grid_axes.remote() for isl in self.islands])
        ray.get(
            [self.archive.record_elites.remote(i, cells, axes[i]) for i, cells in enumerate(grids)]
        )

    def _migrate(self) -> None:
        n = len(self.islands)
        if n < 2:
            return
        bests = ray.get([isl.best.remote() for isl in self.islands])
        for i, b in enumerate(bests):
            if b is None:
                continue
            dst = (i + 1) % n
            if ray.get(self.islands[dst].accept_migrant.remote(b)):
                ray.get(self.archive.record_migration.remote(i, dst, b["id"]))
                self.progress.migrations += 1

    def run(self) -> Progress:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resuming = (
            self.db_path.exists()
            and Database(self.db_path).db["runs"].count_where("id = ?", [self.run_id]) > 0
        )
        self._start_actors()
        # The isolation in force is part of the run's record, and a missing layer is said
        # once, here, in the console and run.log.
        try:
            features = ray.get(self.workers[0].sandbox_features.remote())
        except ray.exceptions.RayActorError as exc:
            # A sandbox that refuses to start (SandboxError) says why in one line: pass it on.
            why = re.search(r"SandboxError: ([^\n]+)", str(exc))
            raise RunError(
                f"the evaluator workers did not start: {why.group(1) if why else exc}"
            ) from None
        versions = {**package_versions(), "sandbox": features}
        ray.get(self.archive.start_run.remote(self.problem.name, int(cfg["seed"]), cfg, versions))
        self.progress.sandbox_problems = list(features.get("problems") or [])
        for problem in self.progress.sandbox_problems:
            log.warning(missing_layer(problem))
            if self.view is not None:
                self.view.console.print(missing_layer(problem), style="yellow", highlight=False)
        if resuming:
            self._restore(Database(self.db_path, readonly=True))
            log.info("resumed run %s at %d evaluations", self.run_id, self.progress.evaluations)
        else:
            self._seed()
        # What each island had recorded before this process heard from it (see _rebuild_island).
        self._island_base = ray.get(
            [self.archive.island_totals.remote(i) for i in range(len(self.islands))]
        )
        self._island_calls: Counter = Counter()
        self._island_cost: Counter = Counter()
        b = cfg["budget"]
        self._max_iterations = int(b.get("max_iterations") or 5 * int(b["evaluations"]) + 50)
        per_island = int(cfg["search"]["in_flight_per_island"])
        if cfg["search"].get("pipeline", True):
            # Iterations past the request slots wait in the island for a slot, so a new
            # request starts the moment an answer arrives (see IslandActor.step).
            per_island *= 2
        interval = int(cfg["search"]["migration_interval"])
        next_migration = self.progress.evaluations + interval
        pad = cfg["search"].get("scratchpad") or {}
        pad_every = int(pad.get("every", 0)) if pad.get("enabled") else 0
        next_note = (self.progress.evaluations // pad_every + 1) * pad_every if pad_every else 0
        step_no = self.progress.iterations
        pending: dict[Any, int] = {}
        status = "completed"
        try:
            while True:
                for i, isl in enumerate(self.islands):
                    while sum(
                        1 for v in pending.values() if v == i
                    ) < per_island and self._budget_left(len(pending)):
                        pending[isl.step.remote(step_no)] = i
                        step_no += 1
                if not pending:
                    break
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in done:
                    island = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayActorError as exc:
                        log.warning(
                            "island %d's actor died (%s); rebuilding it from the database",
                            island,
                            type(exc).__name__,
                        )
                        self._rebuild_island(island, pending)
                        continue
                    except ray.exceptions.RayTaskError as exc:
                        # A bug on our side in one iteration: logged and shown, never fatal.
                        log.error("island %d: iteration failed: %s", island, exc)
                        result = {"island": island, "status": "error", "counted": False}
                    self._absorb(result)
                if pad_every and self.progress.evaluations >= next_note:
                    self._write_scratchpad(pad_every)
                    next_note = self.progress.evaluations + pad_every
                if interval > 0 and self.progress.evaluations >= next_migration:
                    try:
                        self._migrate()
                        self._record_grids()
                    except ray.exceptions.RayActorError:
                        # An island died since its last report; it is rebuilt when its
                        # iterations fail, and the next migration includes it again.
                        log.warning("migration skipped: an island's actor died")
                    next_migration = self.progress.evaluations + interval
                self._poll_literature()
                if self.view is not None:
                    self.view.update(self.progress)
            self._score_test_set()
            # The newest best is always checked before the run ends.
            deadline = time.monotonic() + 300
            while self._lit_pending is not None and time.monotonic() < deadline:
                self._poll_literature(wait=1.0)
        except RunError:
            status = "failed"
            raise
        except KeyboardInterrupt:
            status = "interrupted"
            self.progress.stop_reason = "interrupted by the user; resume with resume=" + str(
                self.run_dir
            )
        finally:
            try:
                self._record_grids()
            except Exception:  # a dead island: the database already holds every counted child
                log.exception("could not record the final island state")
            try:
                replaced = ray.get(self.pool.replacements.remote())
                if replaced:
                    log.warning("%d evaluator workers died and were replaced", replaced)
            except Exception:
                log.exception("could not ask the evaluator pool for its replacements")
            try:
                ray.get(self.archive.finish.remote(status))
            except Exception:
                log.exception("could not record the run's final status")
            for a in [*self.islands, self.pool, *self.workers, self.literature, self.archive]:
                ray.kill(a)
        return self.progress

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
        ev = ray.get(self.pool.evaluate_all_sets.remote(code))
        ray.get(self.archive.record_test_score.remote(pid, ev))
        if ev["valid"]:
            self.progress.best_metrics = ev["metrics"]
        else:
            log.error("the best program #%d failed on the test set: %s", pid, ev["error"])
            self.progress.best_metrics["test_error"] = ev["error"]

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

    def _rebuild_island(self, i: int, pending: dict[Any, int]) -> None:
        """Island `i`'s actor died (with its node): start a new one and replay the island's
        history from the database, as `resume=` does; the run goes on without it stopping."""
        for ref in [r for r, k in pending.items() if k == i]:
            del pending[ref]  # every iteration in flight there died with it
        # An actor reported unavailable may yet answer: make sure it writes nothing more.
        ray.kill(self.islands[i], no_restart=True)
        p = self.progress
        # Asked of the archive after the dead island's last writes: children it recorded whose
        # replies died with it still count, so the budget holds exactly.
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
        self.islands[i] = IslandActor.options(scheduling_strategy=self._here).remote(
            i, self.problem_ref, self.cfg, self.pool, self.archive
        )
        if self._keys:
            ray.get(self.islands[i].set_keys.remote(self._keys))
        self._restore(Database(self.db_path, readonly=True), only=i)
        p.island_rebuilds += 1
        log.warning("island %d rebuilt from the database (%d children recovered)", i, counted)

    def _absorb(self, r: dict[str, Any]) -> None:
        p = self.progress
        if r.get("island") is not None:
            self._island_calls[r["island"]] += 1
            self._island_cost[r["island"]] += float(r.get("cost_usd") or 0.0)
        p.iterations += 1
        p.llm_calls += 1
        p.llm_errors += int(r.get("llm_error", False))
        p.cost_usd += float(r.get("cost_usd") or 0.0)
        p.statuses[r["status"]] += 1
        if r.get("counted"):
            p.evaluations += 1
            p.island_evals[r["island"]] += 1
            self._maybe_reset(r["island"], int(r.get("since_improvement") or 0))
        self._note_result(r)
