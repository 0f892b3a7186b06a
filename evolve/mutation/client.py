"""The one LLM client: litellm for every provider, one retry layer, costs and timings recorded.

Retries live here and only here: litellm's own retries are switched off (num_retries=0), so
one failure is at most `max_retries + 1` requests, never a product of nested retry layers.
Time-outs, 429s (honouring Retry-After), 5xx, connection errors, unparseable bodies and empty
answers are retried with exponential backoff; anything else (bad request, authentication) is
recorded at once. A failed call is a `CallResult` with `text=None` and an `error`; it never
raises into the engine.

Costs: tokens from each response's `usage`; dollars from the per-model price in config when
given, otherwise from litellm's offline price map (LITELLM_LOCAL_MODEL_COST_MAP=True), and 0
for a model the map does not know (logged once). Keys: config names the environment variable,
the value is read per request and every recorded text is passed through `secrets.redact`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evolve.mutation import local
from evolve.mutation.ensemble import make_selector
from evolve.mutation.secrets import redact

log = logging.getLogger(__name__)

_litellm_module: Any = None
_RETRYABLE: tuple = ()


def _litellm() -> Any:
    """litellm, imported (seconds of start-up) and configured on first use: a process that
    only uses the built-in local mutator never pays for it."""
    global _litellm_module, _RETRYABLE
    if _litellm_module is None:
        import litellm

        litellm.suppress_debug_info = True
        # evolve records every call itself (llm_calls); litellm's own logging machinery
        # roughly doubles its CPU per call (bench/llm_throughput.py) and is not needed.
        litellm.logging = False
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)
        _RETRYABLE = (
            litellm.exceptions.RateLimitError,
            litellm.exceptions.Timeout,
            litellm.exceptions.APIConnectionError,
            litellm.exceptions.InternalServerError,
            litellm.exceptions.ServiceUnavailableError,
            litellm.exceptions.BadGatewayError,
            litellm.exceptions.APIResponseValidationError,
        )
        _litellm_module = litellm
        local.register()  # for anyone calling litellm with the local model strings
    return _litellm_module


# Local servers (vLLM, llama.cpp, LM Studio) accept any key, but the OpenAI client needs one.
PLACEHOLDER_KEY = "no-key-needed"


class _Malformed(Exception):
    """An answer with no usable text (empty, or no choices): retried like a server error."""


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
        """The llm_calls row (without run_id and island), with any secret redacted."""
        return {
            "model": self.model,
            "prompt": redact(prompt, patterns=False),
            "response": redact(self.text, patterns=False),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "attempts": self.attempts,
            "error": redact(self.error) or None,
        }


_unpriced: set[str] = set()


def _register_price(model: str, input_per_mtok: float, output_per_mtok: float) -> None:
    """Tell litellm a model's price. litellm prices every response internally; for a model
    missing from its map that search costs milliseconds of CPU per call, every call."""
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    try:
        _litellm().register_model(
            {
                model: {
                    "input_cost_per_token": input_per_mtok / 1e6,
                    "output_cost_per_token": output_per_mtok / 1e6,
                    "litellm_provider": provider,
                    "mode": "chat",
                }
            }
        )
    except Exception:  # a registration litellm refuses only costs speed, never correctness
        log.debug("could not register a price for %s", model, exc_info=True)


def cost_usd(spec: ModelSpec, response: Any, pt: int, ct: int) -> float:
    """Dollars for one response: the config's price if given, else litellm's offline map."""
    if spec.input_cost_per_mtok is not None or spec.output_cost_per_mtok is not None:
        return (
            pt * (spec.input_cost_per_mtok or 0.0) + ct * (spec.output_cost_per_mtok or 0.0)
        ) / 1e6
    if spec.model.split("/", 1)[0] in (local.PROVIDER, "evolve-replay"):
        return 0.0
    # litellm has already priced the response for its own logging: reuse that (it costs
    # milliseconds of CPU per call to compute again).
    hidden = getattr(response, "_hidden_params", None) or {}
    if hidden.get("response_cost"):
        return float(hidden["response_cost"])
    if spec.model in _unpriced:  # known to be missing from the map: do not search it again
        return 0.0
    try:
        # Price by the configured model string: a server may answer with another name.
        return float(
            _litellm().completion_cost(completion_response=response, model=spec.model) or 0.0
        )
    except Exception:
        try:
            return float(_litellm().completion_cost(completion_response=response) or 0.0)
        except Exception:  # not in the offline price map: free unless config says otherwise
            if spec.model not in _unpriced:
                _unpriced.add(spec.model)
                _register_price(spec.model, 0.0, 0.0)
                log.warning(
                    "no price for %s in litellm's offline map; its calls are recorded at $0 "
                    "(set input_cost_per_mtok/output_cost_per_mtok to count them)",
                    spec.model,
                )
            return 0.0


def _retry_after(exc: Exception) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def check_config(llm: dict[str, Any]) -> None:
    """Raise ValueError naming the key and the fix for an `llm` config that cannot work.

    Cheap and offline (no request is made): call it before a run starts. Types, choices and
    ranges come from the schema (evolve/config.py); here is only what one key cannot say."""
    from evolve.config import check

    llm = check("llm", llm)
    models = [m["model"] for m in llm["ensemble"]] or [llm["model"]]
    if not all(models):
        raise ValueError(
            "llm.model is empty; give a litellm model string (and every model of an "
            "llm.ensemble its model: ...)"
        )
    weights = [m["weight"] for m in llm["ensemble"]]
    if weights and max(weights) <= 0:
        raise ValueError(f"llm.ensemble weights must be >= 0 with one > 0, got {weights}")
    if any(str(m).startswith("evolve-replay/") for m in models):
        path = llm["replay_file"]
        if not path or path == "???":
            raise ValueError(
                "llm=replay needs a recording: add llm.replay_file=PATH (a JSONL file, e.g. "
                "one written by export_replay from a past run's evolve.db)"
            )
        if not Path(path).is_file():
            raise ValueError(f"llm.replay_file={path!r} does not exist")


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
        selection: str = "weighted",
        max_wait_s: float = 60.0,
    ) -> None:
        if not models:
            raise ValueError("llm: at least one model is needed")
        self.models = models
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s  # cap on one Retry-After or backoff wait
        self.selector = make_selector(selection, [m.weight for m in models])
        self._warned: set[str] = set()

    @classmethod
    def from_config(cls, llm: dict[str, Any]) -> LLMClient:
        """Build the client from the `llm` config group (see evolve/config.py)."""
        check_config(llm)
        keys = ("model", "api_base", "api_key_env", "input_cost_per_mtok", "output_cost_per_mtok")
        if llm.get("replay_file"):
            from evolve.mutation import replay

            replay.register(llm["replay_file"])
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
            selection=llm.get("selection") or "weighted",
        )

    def feedback(self, spec: ModelSpec, reward: float) -> None:
        """Reward for the model that made a child (1.0: improved on its parent). Weighted
        selection ignores it; bandit selection learns from it."""
        self.selector.feedback(self._arm(spec), reward)

    def choose(self, rng: random.Random) -> ModelSpec:
        """The model for the next request (deterministic given `rng` and past feedback)."""
        return self.models[self.selector.choose(rng)]

    def selection_state(self) -> dict[str, dict[str, float]]:
        """Per model: selections, reward and mean reward so far (for logs and reports)."""
        return {m.model: st for m, st in zip(self.models, self.selector.state(), strict=True)}

    def missing_keys(self) -> list[str]:
        """Environment variables named by the config but not set (check before a run)."""
        return sorted(
            {
                m.api_key_env
                for m in self.models
                if m.api_key_env and not os.environ.get(m.api_key_env)
            }
        )

    def _arm(self, spec: ModelSpec) -> int:
        for i, m in enumerate(self.models):
            if m is spec:
                return i
        return self.models.index(spec)

    def _kwargs(self, spec: ModelSpec, seed: int) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": spec.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout_s,
            "num_retries": 0,
            "max_retries": 0,  # the OpenAI SDK's own retries, also off
            "seed": seed,
            # Providers that do not take `seed` (Anthropic) would otherwise reject the request.
            "drop_params": True,
        }
        if spec.api_base:
            kw["api_base"] = spec.api_base
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if key:
                kw["api_key"] = key
            else:
                if spec.api_key_env not in self._warned:
                    self._warned.add(spec.api_key_env)
                    log.warning("%s is not set (needed by %s)", spec.api_key_env, spec.model)
                if spec.api_base:
                    kw["api_key"] = PLACEHOLDER_KEY
        return kw

    async def acomplete(
        self, spec: ModelSpec, messages: list[dict[str, str]], seed: int
    ) -> CallResult:
        """One completion with retries; never raises (a failure is `text=None` plus `error`).

        Tokens and dollars of every attempt that got an answer are summed, so a retried
        empty answer still costs what the provider charged."""
        if spec.model.startswith(local.PROVIDER + "/"):
            # The built-in local mutator, called directly: no litellm in the loop (it would
            # cost more CPU than the mutation itself), the same answer as through litellm.
            t0 = time.perf_counter()
            text, pt, ct = local.answer(spec.model, messages, seed)
            return CallResult(spec.model, text, pt, ct, 0.0, time.perf_counter() - t0)
        litellm = _litellm()
        kw = self._kwargs(spec, seed)
        t0 = time.perf_counter()
        attempts = 0
        pt = ct = 0
        cost = 0.0
        while True:
            attempts += 1
            try:
                response = await litellm.acompletion(messages=messages, **kw)
                usage = getattr(response, "usage", None)
                pt += int(getattr(usage, "prompt_tokens", 0) or 0)
                ct += int(getattr(usage, "completion_tokens", 0) or 0)
                cost += cost_usd(
                    spec,
                    response,
                    int(getattr(usage, "prompt_tokens", 0) or 0),
                    int(getattr(usage, "completion_tokens", 0) or 0),
                )
                choices = getattr(response, "choices", None) or []
                text = choices[0].message.content if choices else None
                if not isinstance(text, str) or not text.strip():
                    raise _Malformed("the answer has no text (empty content or no choices)")
                finish = getattr(choices[0], "finish_reason", None)
                return CallResult(
                    model=spec.model,
                    text=text,
                    prompt_tokens=pt,
                    completion_tokens=ct,
                    cost_usd=cost,
                    latency_s=time.perf_counter() - t0,
                    attempts=attempts,
                    # Kept, not retried: the same request would be cut at the same length.
                    error=f"truncated: finish_reason={finish}" if finish == "length" else "",
                    extra={"finish_reason": finish},
                )
            except (*_RETRYABLE, _Malformed) as exc:
                if isinstance(exc, litellm.exceptions.Timeout):
                    # The provider had the prompt and may have worked on it until the time-out:
                    # charge the prompt's estimated price (an error answer, 429 or 5xx, is not
                    # billed; an answer that came is charged what it says it cost).
                    est_pt, est_cost = self.prompt_estimate(spec, messages)
                    pt += est_pt
                    cost += est_cost
                if attempts > self.max_retries:
                    return self._failed(spec, exc, t0, attempts, pt, ct, cost)
                wait = _retry_after(exc)
                if wait is None:
                    wait = self.backoff_s * 2 ** (attempts - 1) * (0.5 + random.random())
                log.info(
                    "%s: attempt %d failed (%s); retrying in %.1fs",
                    spec.model,
                    attempts,
                    type(exc).__name__,
                    wait,
                )
                await asyncio.sleep(min(wait, self.max_wait_s))
            except Exception as exc:  # not retryable: bad request, auth, unknown model
                return self._failed(spec, exc, t0, attempts, pt, ct, cost)
            except asyncio.CancelledError:
                # The run reached a wall-time or cost limit with this request in flight. The
                # provider has the prompt and may bill it: charge the prompt's estimated
                # price, and say it is an estimate. The cancellation ends here: the caller
                # records this like any failed call.
                est_pt, est_cost = self.prompt_estimate(spec, messages)
                return CallResult(
                    model=spec.model,
                    text=None,
                    prompt_tokens=pt + est_pt,
                    completion_tokens=ct,
                    cost_usd=cost + est_cost,
                    latency_s=time.perf_counter() - t0,
                    attempts=attempts,
                    error="cancelled: the run reached its budget with this request in flight "
                    f"(charged the prompt's estimated price, ${est_cost:.6f})",
                    extra={"cancelled": True},
                )

    def prompt_estimate(self, spec: ModelSpec, messages: list[dict[str, str]]) -> tuple[int, float]:
        """(tokens, dollars) the prompt alone is estimated to cost with `spec`'s model."""
        if spec.model.startswith(("evolve-local/", "evolve-replay/")):
            return 0, 0.0
        try:
            tokens = int(_litellm().token_counter(model=spec.model, messages=messages))
        except Exception:  # an unknown tokenizer: about four characters a token
            tokens = sum(len(m.get("content") or "") for m in messages) // 4
        if spec.input_cost_per_mtok is not None:
            return tokens, tokens * spec.input_cost_per_mtok / 1e6
        try:
            dollars, _ = _litellm().cost_per_token(
                model=spec.model, prompt_tokens=tokens, completion_tokens=0
            )
        except Exception:  # a model litellm cannot price: counted as 0, as its answers are
            dollars = 0.0
        return tokens, float(dollars or 0.0)

    def _failed(
        self,
        spec: ModelSpec,
        exc: Exception,
        t0: float,
        attempts: int,
        pt: int = 0,
        ct: int = 0,
        cost: float = 0.0,
    ) -> CallResult:
        names = [m.api_key_env for m in self.models if m.api_key_env]
        msg = redact(" ".join(f"{type(exc).__name__}: {exc}".split()), names) or ""
        return CallResult(
            model=spec.model,
            text=None,
            prompt_tokens=pt,
            completion_tokens=ct,
            cost_usd=cost,
            latency_s=time.perf_counter() - t0,
            attempts=attempts,
            error=msg[:500],
        )
