"""The budget decision, as plain functions: when a run stops, and how many iterations an
island may start. No Ray here; the driver calls these with its counts.

Tokens: the driver hands each island a number of iterations it may start (tokens), in
batches, and the island hands results back in batches. Every token out is an iteration that
may yet count, so the evaluation budget holds exactly: evaluations + tokens out <= budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class RunError(RuntimeError):
    """A run that cannot start or continue; the message says what to fix."""


@dataclass(frozen=True)
class Budget:
    evaluations: int
    wall_time_s: float | None = None
    max_cost_usd: float | None = None
    max_llm_calls: int | None = None
    max_iterations: int | None = None  # a cap on LLM iterations, rejected edits included

    def __post_init__(self) -> None:
        if self.max_iterations is None:  # room for rejected edits: 5 x evaluations + 50
            object.__setattr__(self, "max_iterations", 5 * self.evaluations + 50)

    @classmethod
    def from_config(cls, b: dict[str, Any]) -> Budget:
        evaluations = int(b["evaluations"])
        return cls(
            evaluations=evaluations,
            wall_time_s=float(b["wall_time_s"]) if b.get("wall_time_s") else None,
            max_cost_usd=float(b["max_cost_usd"]) if b.get("max_cost_usd") is not None else None,
            max_llm_calls=int(b["max_llm_calls"]) if b.get("max_llm_calls") else None,
            max_iterations=int(b["max_iterations"]) if b.get("max_iterations") else None,
        )


def hard_stop(budget: Budget, elapsed_s: float, cost_usd: float) -> str:
    """Why the run must stop now and cancel what is in flight ('' if it need not): the
    wall-time and cost budgets, which work in flight would only overshoot further."""
    if budget.wall_time_s is not None and elapsed_s >= budget.wall_time_s:
        return f"wall-time budget of {budget.wall_time_s:g} s reached"
    if budget.max_cost_usd is not None and cost_usd >= budget.max_cost_usd:
        return f"cost budget of ${budget.max_cost_usd:g} reached"
    return ""


def tokens_left(
    budget: Budget, evaluations: int, llm_calls: int, iterations: int, out: int
) -> tuple[int, str]:
    """How many more iterations may start, with `out` tokens already out (each may still
    count); when none, why (the budget that is used up)."""
    room = budget.evaluations - evaluations - out
    why = f"evaluation budget of {budget.evaluations} reached"
    if budget.max_llm_calls is not None:
        calls = budget.max_llm_calls - llm_calls - out
        if calls < room:
            room, why = calls, f"LLM-call budget of {budget.max_llm_calls} reached"
    cap = budget.max_iterations - iterations - out
    if cap < room:
        room = cap
        why = f"iteration cap of {budget.max_iterations} reached (too many rejected edits)"
    return max(room, 0), ("" if room > 0 else why)


def grant(holding: int, want: int, room: int) -> int:
    """Tokens to hand an island that holds `holding` and should hold `want`, with `room`
    left in the run's budget."""
    return max(0, min(want - holding, room))


def overshoot(budget: Budget, elapsed_s: float, cost_usd: float) -> str:
    """By how much the run went past its wall-time or cost budget ('' if it did not)."""
    parts = []
    if budget.wall_time_s is not None and elapsed_s > budget.wall_time_s:
        parts.append(f"{elapsed_s - budget.wall_time_s:.1f} s past the wall-time budget")
    if budget.max_cost_usd is not None and cost_usd > budget.max_cost_usd:
        parts.append(f"${cost_usd - budget.max_cost_usd:.4f} past the cost budget")
    return "; ".join(parts)
