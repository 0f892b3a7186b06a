"""Registers the multi-node fixtures (defined in cluster_helpers, importable by name)."""

from cluster_helpers import two_nodes  # noqa: F401  (the fixture must be in the conftest's namespace)
