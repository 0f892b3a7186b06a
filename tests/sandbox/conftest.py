"""Registers the red-team suite's fixtures (defined in sandbox_helpers, importable by name)."""

from sandbox_helpers import *  # noqa: F403  (fixtures must be in the conftest's namespace)
