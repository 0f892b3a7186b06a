"""Helpers and fixtures for the LLM-layer tests: the stub OpenAI-compatible server, clients pointed at it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not hit the network
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/llm_stub.py

from llm_stub import StubLLM, llm_stub  # noqa: E402,F401  (registers the fixture)

from evolve.mutation.client import LLMClient, ModelSpec  # noqa: E402

SECRET = "sk-test-SECRET-0123456789abcdef"  # a key that must never be written anywhere
# Set before the session's Ray starts (fixtures run after collection), so that island actors
# in Ray workers inherit it as they would from `evolve run`; never a real key in tests.
os.environ["OPENAI_API_KEY"] = SECRET


@pytest.fixture
def secret_key(monkeypatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return SECRET


def stub_client(stub: StubLLM, model: str = "openai/stub", **kw) -> LLMClient:
    """A client for one model served by the stub, with fast retries."""
    prices = {k: kw.pop(k) for k in ("input_cost_per_mtok", "output_cost_per_mtok") if k in kw}
    spec = ModelSpec(model, api_base=stub.api_base, api_key_env="OPENAI_API_KEY", **prices)
    opts = {"timeout_s": 5.0, "max_retries": 2, "backoff_s": 0.01, "max_tokens": 256}
    opts.update(kw)
    return LLMClient([spec], **opts)


MESSAGES = [
    {"role": "system", "content": "You improve programs."},
    {"role": "user", "content": "Make it better."},
]
