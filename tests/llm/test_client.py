"""The client's one retry layer against a real HTTP server (the stub), through litellm."""

from __future__ import annotations

import asyncio

from llm_helpers import MESSAGES, SECRET, stub_client
from llm_stub import garbage, rate_limited, reply, server_error, slow, truncated


def _complete(client, seed: int = 1):
    return asyncio.run(client.acomplete(client.models[0], MESSAGES, seed=seed))


def test_normal_answer_is_recorded_with_tokens(llm_stub, secret_key):
    llm_stub.script(reply("an idea", prompt_tokens=40, completion_tokens=7))
    r = _complete(stub_client(llm_stub))
    assert (r.text, r.error, r.attempts) == ("an idea", "", 1)
    assert (r.prompt_tokens, r.completion_tokens) == (40, 7)
    row = r.record("the prompt")
    assert row["response"] == "an idea" and row["error"] is None and row["prompt"] == "the prompt"
    body = llm_stub.requests[0].body
    assert body["messages"] == MESSAGES and body["seed"] == 1  # the engine's seed is sent


def test_slow_answer_times_out_and_is_retried(llm_stub, secret_key):
    llm_stub.script(slow(1.5, "late"), reply("in time"))
    r = _complete(stub_client(llm_stub, timeout_s=0.5))
    assert (r.text, r.attempts) == ("in time", 2)


def test_timeouts_exhaust_the_retries_and_are_recorded(llm_stub, secret_key):
    llm_stub.script(slow(1.0), slow(1.0))
    r = _complete(stub_client(llm_stub, timeout_s=0.3, max_retries=1))
    assert r.text is None and r.attempts == 2
    assert "Timeout" in r.error
    assert r.record("p")["error"] == r.error


def test_429_waits_for_retry_after(llm_stub, secret_key):
    llm_stub.script(rate_limited(retry_after=1), reply("after the wait"))
    r = _complete(stub_client(llm_stub, backoff_s=0.01))
    assert (r.text, r.attempts) == ("after the wait", 2)
    first, second = llm_stub.requests
    # The backoff alone would wait ~0.01 s; only Retry-After explains a second's gap.
    assert second.time - first.time >= 0.9


def test_server_errors_are_retried_by_one_layer_only(llm_stub, secret_key):
    llm_stub.script(*[server_error(500)] * 10)
    r = _complete(stub_client(llm_stub, max_retries=2))
    assert r.text is None and r.attempts == 3
    assert "InternalServerError" in r.error
    # Exactly max_retries + 1 requests: no litellm or OpenAI-SDK retries stacked underneath.
    assert len(llm_stub.requests) == 3


def test_503_then_success(llm_stub, secret_key):
    llm_stub.script(server_error(503), server_error(502), reply("ok"))
    r = _complete(stub_client(llm_stub, max_retries=3))
    assert (r.text, r.attempts) == ("ok", 3)


def test_garbage_and_empty_answers_are_retried(llm_stub, secret_key):
    llm_stub.script(garbage(), reply(""), reply("finally"))
    r = _complete(stub_client(llm_stub, max_retries=3))
    assert (r.text, r.attempts) == ("finally", 3)


def test_garbage_forever_is_an_error_not_a_crash(llm_stub, secret_key):
    llm_stub.script(*[garbage()] * 5)
    r = _complete(stub_client(llm_stub, max_retries=1))
    assert r.text is None and r.attempts == 2 and r.error


def test_truncated_answer_is_kept_and_flagged(llm_stub, secret_key):
    llm_stub.script(truncated("<<<<<<< SEARCH\n    h = np.arr"))
    r = _complete(stub_client(llm_stub))
    assert r.text.startswith("<<<<<<< SEARCH") and r.attempts == 1
    assert r.error == "truncated: finish_reason=length"


def test_client_errors_are_not_retried(llm_stub, secret_key):
    llm_stub.script(server_error(400, "bad request (stub)"), reply("never asked"))
    r = _complete(stub_client(llm_stub, max_retries=3))
    assert r.text is None and r.attempts == 1 and len(llm_stub.requests) == 1
    assert "BadRequest" in r.error


def test_many_requests_in_flight_at_once(llm_stub, secret_key):
    """16 concurrent calls all reach the server before the first one is answered."""
    client = stub_client(llm_stub)
    _complete(client)  # warm litellm up (its first call loads a lot)
    llm_stub.default = slow(1.0, "done")

    async def many():
        return await asyncio.gather(
            *[client.acomplete(client.models[0], MESSAGES, seed=i) for i in range(16)]
        )

    results = asyncio.run(many())
    assert all(r.text == "done" for r in results)
    arrivals = sorted(r.time for r in llm_stub.requests[1:])
    assert len(arrivals) == 16 and arrivals[-1] - arrivals[0] < 1.0


def test_missing_key_is_reported(monkeypatch, llm_stub):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = stub_client(llm_stub)
    assert client.missing_keys() == ["OPENAI_API_KEY"]
    # An OpenAI-compatible local server needs no key: a placeholder is sent and it answers.
    r = _complete(client)
    assert r.text == "stub answer"
    assert SECRET not in str(llm_stub.requests[0].headers)
