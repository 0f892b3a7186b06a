"""The Verification record: the strict re-check a result must pass before it can be called new.

Fast scorers work in floating point; a verifier recomputes the objective exactly (rational or
integer arithmetic) or with a certified positive slack, and says which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Verification:
    """Outcome of a problem's strict verifier (`verify(outputs, params)` in evaluator.py)."""

    valid: bool
    value: float | None = None  # the objective as a float (rounded from exact_value if exact)
    exact_value: str | None = None  # exact value as "p/q" or an integer, when computed exactly
    method: str = ""  # e.g. "exact rational arithmetic", "integer arithmetic", "slack 1e-12"
    reason: str = ""  # why it is invalid, or a note on how it was checked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
