"""The optional LLM advisory: ask a model whether a value or construction appears in prior work.

The answer is stored as a note with the model's name. It is advice, never evidence: it does not
change a verdict. One request, no retries (a failed advisory is recorded, not repeated).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from evolve.literature.known import KnownTable
    from evolve.problem import Problem

log = logging.getLogger(__name__)

SYSTEM = (
    "You check computational results in mathematics against the published literature. "
    "Answer in at most five sentences. Name only sources you are sure of; if you do not know, "
    "say so. Your answer is advice for a human reviewer and is never taken as proof."
)
MAX_VALUES_SHOWN = 40


@dataclass
class Advisory:
    """An LLM's note on prior work, or the error that stopped it."""

    model: str
    note: str = ""
    error: str = ""
    truncated: bool = False
    latency_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summary(outputs: dict[str, Any]) -> str:
    lines = []
    for name in sorted(outputs):
        a = np.asarray(outputs[name])
        flat = a.ravel()[:MAX_VALUES_SHOWN].tolist()
        more = f", ... ({a.size} values in all)" if a.size > MAX_VALUES_SHOWN else ""
        lines.append(f"{name} (shape {list(a.shape)}): {flat}{more}")
    return "\n".join(lines)


def build_prompt(
    problem: Problem, table: KnownTable, outputs: dict[str, Any], score: float | None
) -> str:
    best = table.best
    known = f"{best.value} ({best.citation}, as of {table.as_of})" if best else "none recorded"
    inst = f" (instance {table.instance})" if table.instance else ""
    return (
        f"Problem: {problem.title}{inst}\n"
        f"{problem.description[:1500]}\n\n"
        f"Objective direction: {problem.direction}. Our value: {score!r}. "
        f"Best known value in our catalogue: {known}.\n"
        f"Construction:\n{_summary(outputs)}\n\n"
        "Question: does this value, or this construction (up to the problem's symmetries), appear "
        "in prior work? If so, where? Is there a better published value than our catalogue's?"
    )


def ask(
    model: str,
    prompt: str,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    max_tokens: int = 400,
) -> Advisory:
    """One completion through litellm; never raises (errors go into the Advisory)."""
    t0 = time.monotonic()
    adv = Advisory(model=model)
    try:
        import litellm

        litellm.suppress_debug_info = True
        kwargs: dict[str, Any] = {}
        if api_base:
            kwargs["api_base"] = api_base
        if api_key:
            kwargs["api_key"] = api_key
        resp = litellm.completion(
            model=model,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            temperature=0,
            max_tokens=max_tokens,
            timeout=timeout,
            num_retries=0,
            max_retries=0,
            **kwargs,
        )
        choice = resp.choices[0]
        adv.note = str(choice.message.content or "").strip()
        adv.truncated = choice.finish_reason == "length"
        usage = getattr(resp, "usage", None)
        if usage is not None:
            adv.prompt_tokens = getattr(usage, "prompt_tokens", None)
            adv.completion_tokens = getattr(usage, "completion_tokens", None)
        if not adv.note:
            adv.error = "the model returned an empty answer"
    except Exception as exc:  # the advisory is optional: record the failure, never raise
        msg = " ".join(str(exc).split())[:300]
        adv.error = f"{type(exc).__name__}: {msg}"
        log.warning("literature advisory from %s failed: %s", model, adv.error)
    adv.latency_s = time.monotonic() - t0
    return adv
