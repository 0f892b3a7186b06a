"""Isolated execution of untrusted child programs, with a data-only result channel."""

from evolve.sandbox.runner import (
    Sandbox,
    SandboxError,
    SandboxRequest,
    SandboxResult,
    default_sandbox,
    run,
)

__all__ = ["Sandbox", "SandboxError", "SandboxRequest", "SandboxResult", "default_sandbox", "run"]
