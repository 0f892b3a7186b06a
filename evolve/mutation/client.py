"""The one LLM client: litellm for every provider, one retry layer, costs and timings recorded.

Retries live here and only here: litellm's own retries are switched off (num_retries=0), so
one failure is at most `max_retries + 1` requests, never a product of nested retry layers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import litellm

from evolve.mutation import local

log = logging.getLogger(__name__)
litellm.suppress_debug_info = True
logging.getLogger("LiteLLM").setLevel(logging.ERROR)

_RETRYABLE = (
    litellm.exceptions.RateLimitError,
    litellm.exceptions.Timeout,
    litellm.exceptions.APIConnectionError,
    litellm.exceptions.InternalServerError,
    litellm.exceptions.ServiceUnavailableError,
)


@dataclass
class ModelSpec:
    """One model of the ensemble."""

    model: str
    weight: float = 1.0
    api_base: str | None = None
    api_key_env: str | None = None  # the NAME of the variable holding the key, never the key
    input_cost_per_mtok: float | None = None  # dollars per million tokens, overrides litellm's map
    output_cost_per_mtok: float | None = None


@dataclass
class CallResult:
    """A completed (or failed) LLM call, ready for the llm_calls table."""

    model: str
    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 1
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt": prompt,
            "response": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "attempts": self.attempts,
            "error": self.error or None,
        }


def _cost(spec: ModelSpec, response: Any, pt: int, ct: int) -> float:
    if spec.input_cost_per_mtok is not None or spec.output_cost_per_mtok is not None:
        return (
            pt * (spec.input_cost_per_mtok or 0.0) + ct * (spec.output_cost_per_mtok or 0.0)
        ) / 1e6
    if spec.model.startswith(local.PROVIDER + "/"):
        return 0.0
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # a model missing from the offline price map costs what config says: 0
        return 0.0


def _retry_after(exc: Exception) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class LLMClient:
    """Completes chat messages with a model from the ensemble."""

    def __init__(
        self,
        models: list[ModelSpec],
        temperature: float = 0.8,
        max_tokens: int = 4096,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        if not models:
            raise ValueError("llm: at least one model is needed")
        self.models = models
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        local.register()

    @classmethod
    def from_config(cls, llm: dict[str, Any]) -> LLMClient:
        """Build the client from the `llm` config group (see evolve/config.py)."""
        keys = ("model", "api_base", "api_key_env", "input_cost_per_mtok", "output_cost_per_mtok")
        if llm.get("ensemble"):
            models = [
                ModelSpec(**{k: m.get(k) for k in (*keys, "weight") if k in m})
                for m in llm["ensemble"]
            ]
        else:
            models = [ModelSpec(**{k: llm.get(k) for k in keys})]
        return cls(
            models,
            temperature=llm["temperature"],
            max_tokens=llm["max_tokens"],
            timeout_s=llm["timeout_s"],
            max_retries=llm["max_retries"],
            backoff_s=llm.get("backoff_s", 1.0),
        )

    def feedback(self, spec: ModelSpec, reward: float) -> None:
        """Reward for the model that made a child (1.0: improved on its parent). Weighted
        selection ignores it; bandit selection learns from it."""

    def choose(self, rng: random.Random) -> ModelSpec:
        return rng.choices(self.models, weights=[m.weight for m in self.models])[0]

    def _kwargs(self, spec: ModelSpec, seed: int) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": spec.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout_s,
            "num_retries": 0,
            "seed": seed,
        }
        if spec.api_base:
            kw["api_base"] = spec.api_base
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if key:
                kw["api_key"] = key
        return kw

    async def acomplete(
        self, spec: ModelSpec, messages: list[dict[str, str]], seed: int
    ) -> CallResult:
        kw = self._kwargs(spec, seed)
        t0 = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            try:
                response = await litellm.acompletion(messages=messages, **kw)
                text = response.choices[0].message.content
                usage = getattr(response, "usage", None)
                pt = int(getattr(usage, "prompt_tokens", 0) or 0)
                ct = int(getattr(usage, "completion_tokens", 0) or 0)
                return CallResult(
                    model=spec.model,
                    text=text if isinstance(text, str) else None,
                    prompt_tokens=pt,
                    completion_tokens=ct,
                    cost_usd=_cost(spec, response, pt, ct),
                    latency_s=time.perf_counter() - t0,
                    attempts=attempts,
                    error="" if isinstance(text, str) and text else "empty response",
                )
            except _RETRYABLE as exc:
                if attempts > self.max_retries:
                    return self._failed(spec, exc, t0, attempts)
                wait = _retry_after(exc)
                if wait is None:
                    wait = self.backoff_s * 2 ** (attempts - 1) * (0.5 + random.random())
                await asyncio.sleep(min(wait, 60.0))
            except Exception as exc:  # not retryable: bad request, auth, malformed answer
                return self._failed(spec, exc, t0, attempts)

    @staticmethod
    def _failed(spec: ModelSpec, exc: Exception, t0: float, attempts: int) -> CallResult:
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return CallResult(
            model=spec.model,
            text=None,
            latency_s=time.perf_counter() - t0,
            attempts=attempts,
            error=msg,
        )
