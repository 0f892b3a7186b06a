"""Dollars from the per-model price in config, or from litellm's offline price map."""

from __future__ import annotations

import asyncio

import litellm
import pytest
from llm_helpers import MESSAGES, stub_client
from llm_stub import reply, server_error, slow


def _complete(client):
    return asyncio.run(client.acomplete(client.models[0], MESSAGES, seed=3))


def test_price_from_config(llm_stub, secret_key):
    llm_stub.script(reply("x", prompt_tokens=2000, completion_tokens=500))
    c = stub_client(llm_stub, input_cost_per_mtok=3.0, output_cost_per_mtok=15.0)
    r = _complete(c)
    assert r.cost_usd == pytest.approx((2000 * 3.0 + 500 * 15.0) / 1e6)


def test_price_from_litellm_offline_map(llm_stub, secret_key):
    llm_stub.script(reply("x", prompt_tokens=1000, completion_tokens=400))
    r = _complete(stub_client(llm_stub, model="openai/gpt-4o-mini"))
    price = litellm.model_cost["gpt-4o-mini"]
    want = 1000 * price["input_cost_per_token"] + 400 * price["output_cost_per_token"]
    assert want > 0 and r.cost_usd == pytest.approx(want)


def test_unknown_model_costs_nothing(llm_stub, secret_key):
    llm_stub.script(reply("x", prompt_tokens=1000, completion_tokens=400))
    r = _complete(stub_client(llm_stub, model="openai/some-private-model"))
    assert r.cost_usd == 0.0 and r.prompt_tokens == 1000


def test_retried_answers_are_paid_for(llm_stub, secret_key):
    llm_stub.script(
        reply("", prompt_tokens=100, completion_tokens=0), server_error(500), reply("ok")
    )
    c = stub_client(llm_stub, max_retries=3, input_cost_per_mtok=1.0, output_cost_per_mtok=1.0)
    r = _complete(c)
    assert r.text == "ok" and r.attempts == 3
    assert r.prompt_tokens == 100 + 11  # the empty answer's tokens, then the good one's
    assert r.cost_usd == pytest.approx((r.prompt_tokens + r.completion_tokens) / 1e6)


def test_timed_out_requests_are_charged_their_prompt(llm_stub, secret_key):
    """A request that timed out may have been worked on (and billed) by the provider: each
    timed-out attempt is charged its prompt's estimated price; an error answer is not."""
    llm_stub.script(slow(5.0, "late"), server_error(500), reply("ok", prompt_tokens=7))
    c = stub_client(
        llm_stub, max_retries=3, timeout_s=0.5, input_cost_per_mtok=1000.0, output_cost_per_mtok=0.0
    )
    r = _complete(c)
    assert r.text == "ok" and r.attempts == 3
    estimate, _ = c.prompt_estimate(c.models[0], MESSAGES)
    assert estimate > 0 and r.prompt_tokens == estimate + 7
    assert r.cost_usd == pytest.approx((estimate + 7) * 1000.0 / 1e6)
