"""Isolated execution of untrusted child programs, with a data-only result channel."""

from evolve.sandbox.runner import SandboxRequest, SandboxResult, run

__all__ = ["SandboxRequest", "SandboxResult", "run"]
