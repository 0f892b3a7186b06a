"""Trusted scoring: the Evaluation record, output-spec checks and shared numba kernels."""

from evolve.evaluators.evaluation import STATUSES, Evaluation

__all__ = ["Evaluation", "STATUSES"]
