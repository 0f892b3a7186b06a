"""Fixtures for the literature tests: a tiny problem made in tmp_path, the LLM stub server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not hit the network
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/llm_stub.py

from lit_helpers import make_tiny_problem  # noqa: E402
from llm_stub import llm_stub  # noqa: E402,F401  (registers the fixture)


@pytest.fixture
def tiny(tmp_path: Path):
    from evolve.problem import load_problem

    return load_problem(make_tiny_problem(tmp_path / "tiny"))


@pytest.fixture
def catalogue_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the packaged catalogue, in use for the test."""
    from evolve.literature.catalogue import DATA_DIR

    path = tmp_path / "catalogue.json"
    path.write_text((DATA_DIR / "catalogue.json").read_text())
    monkeypatch.setenv("EVOLVE_CATALOGUE", str(path))
    return path
