"""The Verdict record: how one result compares with what is known, and the line that says so.

The wording is fixed: an improvement is only ever a "candidate improvement on the best known
value as of DATE (CITATION), re-verified" (never a record or a discovery), a match names
what it matched (and says "the proven optimum" when the best known value meets a proven bound),
and a result beyond a proven bound is `contradicts_bound`: an error somewhere, never a result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Every status a verdict can have.
STATUSES = (
    "improves_known",  # beats the best known by more than the tolerance, and re-verified
    "matches_known",  # within the tolerance of the best known value
    "rediscovers_known",  # equal to a published construction up to the problem's symmetries
    "below_known",  # worse than the best known value (or rejected by the exact verifier)
    "unreferenced",  # nothing known to compare with
    "contradicts_bound",  # beats a proven bound: an evaluator, instance or data error
)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.12g}"
    return str(x)


@dataclass
class Verdict:
    """The literature check's conclusion about one result."""

    status: str
    problem: str
    score: float | None = None  # the candidate's value (from the trusted evaluation)
    instance: str | None = None  # e.g. "11" for an 11-mark Golomb ruler
    direction: str | None = None
    best_known: float | None = None  # the best known value as published
    reference_value: float | None = None  # the value compared with: the published or the
    # exactly recomputed best known value, whichever is harder to beat
    best_known_status: str = ""  # verified_recomputed, read_only, ...
    bound_kind: str | None = None
    citation: str = ""
    as_of: str | None = None
    matched: dict[str, Any] | None = None  # {"kind": "value" | "construction", ...}
    reverified: bool = False
    unconfirmed_improvement: bool = False  # beat the known value but failed re-verification
    verification: dict[str, Any] | None = None  # the exact verifier's Verification, as a dict
    rerun: dict[str, Any] | None = None  # what the fresh sandbox re-run gave
    compared_against: list[dict[str, Any]] = field(default_factory=list)
    proven_bound: float | None = None  # the proven bound no valid result can beat, if known
    proven_bound_citation: str = ""
    erdos_problem: int | None = None
    erdos_status: str | None = None
    canonical: str = ""  # which canonical form was used for rediscovery matching
    advisory: dict[str, Any] | None = None  # optional LLM note: {model, note, error, ...}
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}; expected one of {STATUSES}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; the `verdict` object of `evolve score --json`."""
        d = asdict(self)
        for k in ("score", "best_known", "reference_value", "proven_bound"):
            if isinstance(d[k], float) and not math.isfinite(d[k]):
                d[k] = None
        d["message"] = self.message()
        return d

    def _source(self) -> str:
        return f"as of {self.as_of or 'an unknown date'} ({self.citation or 'no citation'})"

    def _disputed_note(self) -> str:
        notes = []
        for c in self.compared_against:
            if c.get("against") == "claimed" and c.get("status") == "disputed":
                verb = {"improves": "also beats", "matches": "matches", "below": "does not beat"}[
                    c["outcome"]
                ]
                notes.append(f"{verb} the disputed claim {_fmt(c['value'])} ({c['citation']})")
        return ("; " + "; ".join(notes)) if notes else ""

    @property
    def proven_optimum(self) -> bool:
        """The best known value meets a proven bound: it is optimal."""
        return (
            self.proven_bound is not None
            and self.reference_value is not None
            and self.proven_bound == self.reference_value
        )

    def _bound_word(self) -> str:
        return "lower bound" if self.direction != "max" else "upper bound"

    def message(self) -> str:
        """One human line."""
        s = self.status
        erdos = (
            f" [Erdős problem {self.erdos_problem}: {self.erdos_status}]"
            if self.erdos_problem is not None and self.erdos_status
            else ""
        )
        if s == "improves_known":
            line = (
                f"candidate improvement on the best known value as of {self.as_of or 'an unknown date'} "
                f"({self.citation or 'no citation'}), re-verified: {_fmt(self.score)} vs {_fmt(self.reference_value)}"
            )
            if self.verification and self.verification.get("method"):
                line += f" ({self.verification['method']})"
            return line + self._disputed_note() + erdos
        if s == "rediscovers_known":
            m = self.matched or {}
            who = f", {m['attribution']}" if m.get("attribution") else ""
            return (
                f"rediscovers the known construction {m.get('name', '?')} ({m.get('file', '?')}{who}) "
                f"up to the problem's symmetries; value {_fmt(self.score)}" + erdos
            )
        if s == "contradicts_bound":
            return (
                f"ERROR: {_fmt(self.score)} beats the proven {self._bound_word()} "
                f"{_fmt(self.proven_bound)} ({self.proven_bound_citation or 'no citation'}), which no "
                "valid result can: an evaluator, instance or data error, never an improvement"
                + (f" ({self.reason})" if self.reason else "")
            )
        if s == "matches_known":
            if self.unconfirmed_improvement:
                return (
                    f"beats the best known value {_fmt(self.reference_value)} {self._source()} numerically "
                    f"({_fmt(self.score)}) but is NOT re-verified ({self.reason}); counted only as matching it"
                    + erdos
                )
            what = (
                f"the proven optimum {_fmt(self.reference_value)} {self._source()}, its "
                f"{self._bound_word()} from {self.proven_bound_citation or 'no citation'}"
                if self.proven_optimum
                else f"the best known value {_fmt(self.reference_value)} {self._source()}"
            )
            return (
                f"matches {what} within tolerance: "
                f"{_fmt(self.score)}" + self._disputed_note() + erdos
            )
        if s == "below_known":
            extra = f" ({self.reason})" if self.reason else ""
            return (
                f"below the best known value {_fmt(self.reference_value)} {self._source()}: "
                f"{_fmt(self.score)}{extra}" + erdos
            )
        return f"no known result to compare with: {self.reason or 'no entry'}" + erdos
