"""The Evaluation record: what trusted code concluded about one candidate's outputs."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Every status an evaluation can end with. "ok" is the only valid one.
STATUSES = (
    "ok",  # valid outputs, scored
    "invalid",  # outputs have the right shape but break a constraint of the problem
    "bad_output",  # outputs missing, wrong names, dtypes, shapes, non-finite, too large
    "timeout",  # killed at the wall-time or CPU-time limit
    "score_timeout",  # its outputs took the trusted evaluator past limits.score_time_s
    "memory",  # exceeded the memory limit
    "crash",  # raised, exited, or was killed by a signal
    "syntax_error",  # the code does not compile
    "stopped",  # a heuristic problem's cascade stopped it after a cheap stage (not good enough)
    "rejected",  # never run: edit outside the EVOLVE-BLOCK, no change, duplicate, ...
    "error",  # the evaluator itself failed (a bug on our side, recorded, never scored)
)


@dataclass
class Evaluation:
    """Trusted verdict on one candidate.

    `score` is the objective in the problem's own direction (lower is better for a `min`
    problem); `fitness` is oriented so that higher is always better and is `-inf` when invalid.
    """

    valid: bool
    status: str
    score: float | None = None
    fitness: float = -math.inf
    metrics: dict[str, float] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    feedback: str = ""
    artifacts: dict[str, str] = field(default_factory=dict)
    error: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"unknown evaluation status {self.status!r}; expected one of {STATUSES}"
            )

    @classmethod
    def ok(
        cls,
        score: float,
        direction: str,
        metrics: dict[str, float] | None = None,
        features: dict[str, float] | None = None,
        feedback: str = "",
        artifacts: dict[str, str] | None = None,
    ) -> Evaluation:
        """A valid evaluation; fitness follows from the score and the problem's direction."""
        score = float(score)
        if not math.isfinite(score):
            return cls.failed("bad_output", f"score is not finite ({score})")
        fitness = score if direction == "max" else -score
        return cls(
            valid=True,
            status="ok",
            score=score,
            fitness=fitness,
            metrics=dict(metrics or {}),
            features=dict(features or {}),
            feedback=feedback,
            artifacts=dict(artifacts or {}),
        )

    @classmethod
    def failed(cls, status: str, error: str, feedback: str = "", **extra: Any) -> Evaluation:
        """An evaluation that scores nothing; `error` is the one-line reason."""
        if status == "ok":
            raise ValueError("a failed evaluation cannot have status 'ok'")
        error = " ".join(str(error).split())[:500]
        return cls(valid=False, status=status, error=error, feedback=feedback or error, **extra)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not math.isfinite(d["fitness"]):
            d["fitness"] = None
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
