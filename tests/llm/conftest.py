"""Registers the LLM-layer fixtures (defined in llm_helpers, importable by name)."""

from llm_helpers import *  # noqa: F403  (fixtures must be in the conftest's namespace)
from llm_helpers import llm_stub  # noqa: F401  (re-exported fixture from tests/llm_stub.py)
