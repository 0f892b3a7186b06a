"""The reusable LLM stub server behaves as documented (plain HTTP, then through litellm)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import litellm
import pytest
from llm_stub import StubLLM, rate_limited, reply


def _post(url, body):
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    return urllib.request.urlopen(req, timeout=5)


def test_script_then_default_and_both_paths():
    with StubLLM(default=reply("default")) as stub:
        stub.script(reply("first"))
        base = f"http://127.0.0.1:{stub.port}"
        a = json.load(_post(base + "/v1/chat/completions", {"model": "stub", "messages": []}))
        b = json.load(_post(base + "/chat/completions", {"model": "stub", "messages": []}))
        assert a["choices"][0]["message"]["content"] == "first"
        assert b["choices"][0]["message"]["content"] == "default"
        assert [r.path for r in stub.requests] == ["/v1/chat/completions", "/chat/completions"]


def test_rate_limit_sends_retry_after():
    with StubLLM() as stub:
        stub.script(rate_limited(retry_after=7))
        with pytest.raises(urllib.error.HTTPError) as info:
            _post(stub.api_base + "/chat/completions", {"messages": []})
        assert info.value.code == 429 and info.value.headers["Retry-After"] == "7"


def test_streaming_through_litellm(llm_stub):
    llm_stub.script(reply("one two three"))
    chunks = litellm.completion(
        messages=[{"role": "user", "content": "count"}], stream=True, **llm_stub.litellm_kwargs()
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three"
    assert llm_stub.requests[0].body["stream"] is True


def test_stopped_server_refuses_connections():
    stub = StubLLM().start()
    url = stub.api_base + "/chat/completions"
    stub.stop()
    with pytest.raises(urllib.error.URLError):
        _post(url, {"messages": []})
