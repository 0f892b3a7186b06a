"""What a run has done so far: the live view and the final summary read it (no Ray here)."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field


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
    cancelled_calls: int = 0  # LLM requests cancelled in flight at a wall-time or cost limit
    island_best: dict[int, float | None] = field(default_factory=dict)
    island_evals: Counter = field(default_factory=Counter)
    migrations: int = 0
    resets: int = 0
    island_rebuilds: int = 0  # island actors that died (with their node) and were rebuilt
    verdicts: list[str] = field(default_factory=list)
    stop_reason: str = ""
    overshoot: str = ""  # by how much a wall-time or cost budget was exceeded, said plainly
    first_child_s: float | None = None  # seconds from start to the first child recorded
    sandbox_problems: list[str] = field(default_factory=list)  # isolation layers missing here
    notes: str = ""  # the latest scratchpad note
    # What the archive and the queues served (their calls, items), at the end: in all, and
    # by queue shard.
    archive_served: dict[str, int] = field(default_factory=dict)
    queue_served: list[dict[str, int]] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.evaluations / self.elapsed if self.elapsed > 0 else 0.0
