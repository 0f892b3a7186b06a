"""API keys never reach the llm_calls rows, even when a provider echoes them back."""

from __future__ import annotations

import asyncio
import json

from llm_helpers import MESSAGES, SECRET, stub_client
from llm_stub import reply, server_error

from evolve.mutation.secrets import REDACTED, redact


def _complete(client):
    return asyncio.run(client.acomplete(client.models[0], MESSAGES, seed=3))


def test_key_is_sent_but_never_recorded(llm_stub, secret_key):
    llm_stub.script(reply("fine"))
    r = _complete(stub_client(llm_stub))
    assert llm_stub.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was used
    assert SECRET not in json.dumps(r.record("prompt")) and SECRET not in repr(r)


def test_error_echoing_the_key_and_headers_is_redacted(llm_stub, secret_key):
    echo = f"Incorrect API key provided: {SECRET}. Headers: {{'Authorization': 'Bearer {SECRET}'}}"
    llm_stub.script(server_error(401, echo))
    r = _complete(stub_client(llm_stub))
    assert r.text is None and r.error
    row = json.dumps(r.record(f"a prompt quoting {SECRET}"))
    assert SECRET not in row and SECRET[:16] not in row
    assert REDACTED in r.error


def test_error_echoing_an_unknown_key_shape_is_redacted(llm_stub, secret_key):
    other = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX0123"  # not in this environment
    llm_stub.script(server_error(401, f"key {other} revoked; Authorization: Bearer {other}"))
    r = _complete(stub_client(llm_stub))
    assert other not in json.dumps(r.record("p"))


def test_redact_leaves_code_alone():
    code = "api = 1\nx = 'sk-short'\nbearer = 3\n"
    assert redact(code, patterns=False) == code
    assert redact(None) is None
