"""An island actor: runs its own iterations while it holds budget tokens.

One iteration: sample a parent and inspirations -> prompt -> LLM -> edits applied inside the
EVOLVE-BLOCK -> cheap rejects (no change, syntax, novelty, judge) -> the child goes to the
evaluation queue that owns its hash (queue.py), which evaluates it on a worker and has the
archive record it with its LLM call -> the island adds it to its grid. The driver is not in
this path: it hands out tokens (iterations the island may start) in batches and takes the
results in batches (`work`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from typing import Any

import ray

from evolve.cluster import load_problem_ref
from evolve.engine.members import member_of, selection_fitness
from evolve.engine.ordering import StepOrder
from evolve.population.island import Island, Member
from evolve.program import EditError, apply_response, code_hash, shard_of, unified_diff

log = logging.getLogger(__name__)

# How long an item for the queues waits for others to share its call. Children that become
# ready together (their parents' results came back in one batch) then cost a queue one
# call, not one each; against an LLM's seconds per answer the wait is nothing.
SEND_WINDOW_S = 0.01


def step_seed(seed: int, island: int, step: int) -> int:
    """A per-iteration seed that does not depend on scheduling order."""
    return (seed * 1_000_003 + island * 7_919 + step * 104_729) % (2**31 - 1)


class StepStreams:
    """One iteration's random numbers, a separate stream per decision.

    Each decision (parent, inspirations, prompt mode, model, the model's seed, the judge)
    draws from its own stream, seeded by the run's seed, the island, the step and the
    decision's name. How many numbers one decision draws therefore never shifts another's:
    two runs with the same seed whose selection differs (hill climbing against the default
    search, a feature on against off) still send step k's request with the same model seed,
    so on the same parent the same operator makes the same edit. Comparisons of search
    settings are paired (common random numbers), not two unrelated random streams.
    """

    def __init__(self, seed: int, island: int, step: int) -> None:
        def stream(decision: str) -> random.Random:
            # A str seed is hashed with SHA-512: stable across processes and Python runs.
            return random.Random(f"{seed}:{island}:{step}:{decision}")

        self.parent = stream("parent")
        self.inspirations = stream("inspirations")
        self.prompt = stream("prompt")  # diff or rewrite, or the prompt variant
        self.second_parent = stream("second_parent")  # crossover's other parent
        self.model = stream("model")
        self.call = stream("call")  # the seed sent with the request
        self.judge = stream("judge")
        self.audit = stream("audit")  # whether a rejected child is run anyway


@ray.remote(num_cpus=0)
class IslandActor:
    """One island: samples parents, asks the LLM, applies edits, sends children to be scored."""

    def __init__(
        self,
        island_id: int,
        problem_ref: dict[str, Any],
        cfg: dict[str, Any],
        queues: list,
        epoch: int = 0,
    ):
        """`epoch`: this actor's incarnation of the island (1 for the first rebuild, ...)."""
        from evolve.mutation.client import LLMClient

        self.id = island_id
        self.epoch = epoch
        self.problem = load_problem_ref(problem_ref)
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
            ties=str(s["ties"]),
        )
        self.client = LLMClient.from_config(cfg["llm"])
        if any(m.model.startswith("evolve-local/") for m in self.client.models):
            from evolve.mutation import local

            local.use_problem_moves(local.load_problem_moves(self.problem.path))
        self.queues = list(queues)  # the run's evaluation queue shards (queue.py)
        self.seed = int(cfg["seed"])
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
        # The loop: tokens are iterations the driver allows; slots bound the LLM requests in
        # flight; with search.pipeline twice as many iterations run as there are slots, so a
        # new request starts while the last child is checked and evaluated.
        slots = int(s["in_flight_per_island"])
        self.max_running = slots * (2 if s.get("pipeline", False) else 1)
        self._slots = asyncio.Semaphore(slots)
        # Results are applied to the island in step order, whatever order they arrive in
        # (ordering.py): a run is the same under any load.
        self.order = StepOrder(self.max_running)
        self.tokens = 0
        self.next_step = 0
        self.running: dict[asyncio.Task, str] = {}  # task -> its stage ("llm" or "child")
        self._steps: dict[asyncio.Task, int] = {}  # task -> its step number
        self.results: list[dict[str, Any]] = []
        self.returned = 0  # tokens handed back unused (cancel)
        self.stopped = False
        self._have_results = asyncio.Event()
        self._last_report = 0.0  # loop time of the last `work` answer
        self._deliveries: set[asyncio.Task] = set()
        # Items waiting for their call to a queue, in two lanes: a record is answered at
        # once, a child only once evaluated, and must not wait for one.
        self._outbox: dict[str, list[tuple[dict[str, Any], asyncio.Future]]] = {
            "record": [],
            "evaluate": [],
        }

    def pid(self) -> int:
        return os.getpid()

    # --- the loop ----------------------------------------------------------------------------
    async def work(self, grant: int, wait_s: float, interval_s: float = 0.0) -> dict[str, Any]:
        """Take `grant` more tokens and start what the slots allow; hand back the results of
        the iterations finished since the last call: once there are some and `interval_s` has
        passed since the last report (sooner when this island has run out of tokens), or with
        none after `wait_s`."""
        if self.stopped:  # a grant sent before the cancel may arrive after it
            self.returned += grant
        else:
            self.tokens += grant
        self._fill()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while self.running:
            due = self._last_report + interval_s
            if self.results and (self.tokens == 0 or loop.time() >= due):
                break
            until = min(deadline, due) if self.results else deadline
            if until <= loop.time():
                break
            # Woken by every result (it may be the one that empties the tokens).
            self._have_results.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._have_results.wait(), until - loop.time())
        self._last_report = loop.time()
        out, self.results = self.results, []
        returned, self.returned = self.returned, 0
        # What this island still holds, by its own count: the driver's ledger is checked
        # against it (a mismatch would be a lost result, logged loudly).
        holding = self.tokens + len(self.running)
        return {"results": out, "returned": returned, "holding": holding}

    def cancel(self) -> None:
        """A wall-time or cost budget is reached: start nothing more, hand the unused tokens
        back, and cancel the LLM requests in flight (each is recorded as cancelled, charged
        what it is estimated to cost). Children already in evaluation finish and count."""
        self.stopped = True  # for good: Ray may run an earlier `work` call after this one
        self.returned += self.tokens
        self.tokens = 0
        for task, stage in self.running.items():
            if stage == "llm":
                task.cancel()

    def _fill(self) -> None:
        while self.tokens > 0 and len(self.running) < self.max_running:
            self.tokens -= 1
            step = self.next_step
            self.next_step += 1
            task = asyncio.get_running_loop().create_task(self._iteration(step))
            self.running[task] = "llm"
            self._steps[task] = step
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self.running.pop(task, None)
        # Its turn is taken (a task cancelled before it began never ran its own `finally`).
        self.order.finished(self._steps.pop(task), None)
        if task.cancelled():  # cancelled before it began: no request was made
            result = {"island": self.id, "status": "cancelled", "counted": False, "llm_call": False}
        elif task.exception() is not None:
            exc = task.exception()
            # A bug on our side in one iteration: logged and shown, never fatal.
            log.error("island %d: iteration failed: %s: %s", self.id, type(exc).__name__, exc)
            result = {
                "island": self.id,
                "status": "error",
                "counted": False,
                "llm_call": True,
                "reason": f"{type(exc).__name__}: {exc}",
            }
        else:
            result = task.result()
        self.results.append(result)
        self._have_results.set()
        self._fill()

    # --- the queues -----------------------------------------------------------------------------
    def _enqueue(self, item: dict[str, Any]) -> asyncio.Future:
        """Put one item in the outbox for its queue (EvaluationQueue.send), to go with whatever
        else is ready within SEND_WINDOW_S; the future of its answer. Items leave in the
        order they were put in."""
        lane = self._outbox["evaluate" if item.get("evaluate") else "record"]
        fut = asyncio.get_running_loop().create_future()
        lane.append((item, fut))
        if len(lane) == 1:
            asyncio.get_running_loop().call_later(SEND_WINDOW_S, self._flush, lane)
        return fut

    async def _send(self, item: dict[str, Any] | asyncio.Future) -> dict[str, Any]:
        """Hand one item to its queue (or await one already in the outbox); its answer."""
        fut = item if isinstance(item, asyncio.Future) else self._enqueue(item)
        out = await fut
        if "error" in out:
            raise RuntimeError(f"the evaluation queue could not take it: {out['error']}")
        return out

    def _flush(self, lane: list[tuple[dict[str, Any], asyncio.Future]]) -> None:
        # A child goes to the queue that owns its hash (its duplicate gate); a record, to
        # this island's queue (any would do: it only passes it on to the archive).
        n = len(self.queues)
        parts: dict[int, list[tuple[dict[str, Any], asyncio.Future]]] = {}
        for item, fut in lane:
            q = shard_of(item["prog"]["code_hash"], n) if item.get("evaluate") else self.id % n
            parts.setdefault(q, []).append((item, fut))
        lane.clear()
        for q, batch in parts.items():
            task = asyncio.get_running_loop().create_task(self._deliver(q, batch))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, q: int, batch: list[tuple[dict[str, Any], asyncio.Future]]) -> None:
        try:
            queue = self.queues[q]
            outs = await queue.send.remote(self.id, [item for item, _ in batch], self.epoch)
        except Exception as exc:  # the queue is gone: every item of the batch fails
            outs = [{"error": f"{type(exc).__name__}: {exc}"}] * len(batch)
        for (_, fut), out in zip(batch, outs, strict=True):
            if not fut.done():
                fut.set_result(out)

    async def _record(self, call: dict[str, Any] | None, prog: dict[str, Any] | None) -> tuple:
        """Record an LLM call and/or a child that is not evaluated: (call id, program id)."""
        return tuple((await self._send({"call": call, "prog": prog}))["ids"])

    def _stage(self, stage: str) -> None:
        task = asyncio.current_task()
        if task in self.running:
            self.running[task] = stage

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
        await self._record(
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
            None,
        )
        return [float(x) for x in resp.data[0]["embedding"]]

    async def _judge(
        self, parent: Member, child: str, diff: str, rng: random.Random, summary: dict
    ):
        """Ask the judge about a child; its call is recorded and counted like any call."""
        from evolve.mutation import judge

        messages = judge.build_messages(self.problem, parent.code, parent.score, diff, child)
        spec = self.judge.models[0]
        seed = rng.getrandbits(31)
        call = await self.judge.acomplete(spec, messages, seed=seed)
        summary["cost_usd"] = (summary.get("cost_usd") or 0.0) + call.cost_usd
        prompt = "\n\n".join(m["content"] for m in messages)
        await self._record({**call.record(prompt), "seed": seed, "template": "judge"}, None)
        return judge.parse(call.text)

    async def _novelty_check(
        self, child: str, pool: list[Member], summary: dict
    ) -> tuple[str, list[float] | None]:
        """('', its embedding) if the child may be evaluated; else (why it is too close to a
        program of `pool`, the island's members when its parent was chosen, None)."""
        nov = self.cfg["search"].get("novelty") or {}
        if not nov.get("enabled"):
            return "", None
        from evolve.population.novelty import nearest

        vec = await self._embedding(child, nov, summary)
        for m in pool:
            if m.id not in self._embeddings:
                self._embeddings[m.id] = await self._embedding(m.code, nov, summary)
        near = nearest(vec, {m.id: self._embeddings[m.id] for m in pool})
        threshold = float(nov.get("threshold", 0.9995))
        if near is not None and near.similarity >= threshold:
            return (
                f"novelty: similarity {near.similarity:.5f} to program #{near.program_id} "
                f"on this island (threshold {threshold:g})"
            ), None
        return "", vec

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
        call_id, _ = await self._record(
            {**call.record(prompt), "seed": seed, "template": "scratchpad"}, None
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

    def restore(self, events: list[tuple[str, dict[str, Any] | None]], steps: int = 0) -> dict:
        """Replay this island's history from the database, in order: ("add", member) for its
        own valid children, ("migrant", member), ("eval", None) for every counted child;
        its next iteration is number `steps` (the LLM iterations it has recorded)."""
        self.next_step = steps
        self.order = StepOrder(self.max_running, first=steps)
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

    def snapshot(self, migrant: dict[str, Any] | None = None, settle: bool = False) -> dict:
        """Take `migrant` if given (unless this island holds it already), then what the
        database keeps of this island: its state and its MAP-Elites grid (cells, axes).
        `settle` (the run's end): first apply the results still waiting for a later step's
        turn (ordering.py) that no step will now take."""
        if settle:
            self.order.settle()
        accepted = migrant is not None and self.accept_migrant(migrant)
        return {
            "accepted": accepted,
            "state": self.island.state(),
            "elites": self.elites(),
            "axes": self.island.grid.axes(),
        }

    # --- one iteration -----------------------------------------------------------------------
    async def _iteration(self, step_no: int) -> dict[str, Any]:
        effect = None
        try:
            result, effect = await self._step(step_no)
            return result
        finally:  # whatever way it ended (a reject, an error, a cancel), its turn is taken
            self.order.finished(step_no, effect)

    async def _step(self, step_no: int) -> tuple[dict[str, Any], Any]:
        """One iteration: its result for the driver (reported as soon as it is scored), and
        its effect on the island (applied in its turn: ordering.py), None if it has none."""
        from evolve.mutation.prompts import ParentView, build_messages

        draws = StepStreams(self.seed, self.id, step_no)
        s = self.cfg["search"]
        # Everything this step reads of the island and of the bandits, it reads in its turn:
        # with the results of steps 0 .. step_no - max_running applied, whatever has come back.
        await self.order.until_select(step_no)
        # A request slot is held from choosing the parent to the LLM's answer.
        async with self._slots:
            parent = self.island.sample_parent(draws.parent)
            inspirations = self.island.sample_inspirations(
                draws.inspirations, parent, s["inspirations"]
            )
            pool = self.island.ranked()  # the island as this step saw it
            best = self.island.best
            variant = None
            if self.variant_selector is not None:
                variant = self.variant_selector.choose(draws.prompt)
                mode = self.variants[variant]
            else:
                mode = (
                    "diff"
                    if draws.prompt.random() < self.cfg["llm"]["diff_probability"]
                    else "rewrite"
                )
            second = None
            if mode == "crossover":
                others = [m for m in pool if m.id != parent.id]
                if others:
                    other = self.island.sample_parent(draws.second_parent)
                    other = other if other.id != parent.id else draws.second_parent.choice(others)
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
            spec = self.client.choose(draws.model)
            call_seed = draws.call.getrandbits(31)
            self.order.selected(step_no)
            call = await self.client.acomplete(spec, messages, seed=call_seed)
        self._stage("child")  # from here on the iteration runs to its end, even at a limit
        prompt_text = "\n\n".join(m["content"] for m in messages)
        record = {**call.record(prompt_text), "seed": call_seed, "template": mode}
        summary = {
            "island": self.id,
            "model": spec.model,
            "cost_usd": call.cost_usd,
            "llm_error": call.text is None,
            "llm_call": True,
        }
        if call.text is None:
            await self._record(record, None)
            status = "cancelled" if call.extra.get("cancelled") else "llm_error"
            return {**summary, "status": status, "counted": False, "reason": call.error}, None
        child, h, edit_error = None, "", None
        try:
            child, edit_mode = apply_response(parent.code, call.text)
            h = code_hash(child)
        except EditError as exc:
            edit_error = f"{exc.kind}: {exc}"
        base = {
            "island": self.id,
            "step": step_no,
            "generation": parent.generation + 1,
            "parent_id": parent.id,
            "inspiration_ids": [m.id for m in inspirations],
            "model": spec.model,
        }
        if edit_error is not None:
            prog = {
                **base,
                "code": "",
                "code_hash": "",
                "mode": mode,
                "status": "rejected",
                "reason": edit_error,
            }
            await self._record(record, prog)
            return {**summary, "status": "rejected", "counted": False, "reason": edit_error}, None
        base.update(code=child, code_hash=h, diff=unified_diff(parent.code, child), mode=edit_mode)

        async def reject(reason: str) -> tuple[dict[str, Any], None]:
            prog = {**base, "status": "rejected", "reason": reason}
            await self._record(record, prog)
            return {**summary, "status": "rejected", "counted": False, "reason": reason}, None

        if any(m.code_hash == h for m in pool):
            return await reject("duplicate of a program already evaluated in this run")
        too_close, vec = await self._novelty_check(child, pool, summary)
        if too_close:
            return await reject(too_close)
        extra: dict[str, float] = {}
        if self.judge is not None:
            judged = await self._judge(parent, child, base["diff"], draws.judge, summary)
            threshold = float(s["judge"]["threshold"])
            if judged.p_improve < threshold:
                audit = draws.audit.random() < float(s["judge"].get("audit") or 0.0)
                if not audit:
                    return await reject(
                        f"judge: {judged.reason} (predicted chance {judged.p_improve:.2f} < "
                        f"threshold {threshold:g})"
                    )
            # Recorded with the child, for the judge's calibration; an audited child (rejected,
            # run anyway to measure how often the judge turns away an improvement) says so.
            extra = {
                "judge_p_improve": judged.p_improve,
                "judge_rejected": float(judged.p_improve < threshold),
            }
        context = None
        if self.problem.cascade:  # thresholds of the cheap stages: the parent's, the best's
            context = {
                "parent": {"metrics": parent.metrics},
                "island_best": {"metrics": best.metrics if best else {}},
            }
        # The queues evaluate each distinct program once per run, whichever island sends it,
        # and record the child with its call in the same step. This island's children go in
        # step order: of two steps that make the same program, the earlier one's counts.
        await self.order.until_send(step_no)
        answer = self._enqueue(
            {"call": record, "prog": base, "evaluate": True, "context": context, "metrics": extra}
        )
        self.order.sent(step_no)
        out = await self._send(answer)
        if out.get("duplicate"):
            return {
                **summary,
                "status": "rejected",
                "counted": False,
                "reason": out["duplicate"],
            }, None
        ev, pid = out["evaluation"], out["program_id"]
        reward = 1.0 if ev["valid"] and ev["fitness"] > parent.fitness else 0.0

        def effect() -> None:
            """What this child does to the island and the bandits, in its turn."""
            self.island.evaluations += 1
            self.client.feedback(spec, reward)
            if variant is not None:
                self.variant_selector.feedback(variant, reward)
            if ev["valid"]:
                if vec is not None:
                    self._embeddings[pid] = vec
                self.island.add(
                    member_of(pid, child, h, ev, generation=parent.generation + 1, island=self.id)
                )

        result = {
            **summary,
            "status": ev["status"],
            "counted": True,
            "program_id": pid,
            "valid": ev["valid"],
            "score": ev["score"],
            "fitness": ev["fitness"] if ev["valid"] else None,
            "selection": selection_fitness(self.problem, ev),
            "metrics": ev["metrics"] if ev["valid"] else {},
            # As the island stands (its own results up to a few steps back): for resets.
            "since_improvement": self.island.evaluations - self.island.last_improvement,
        }
        return result, effect
