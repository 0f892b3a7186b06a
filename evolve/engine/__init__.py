"""The island model on Ray, one module per part.

- driver.py: `Evolution`, the run's loop on the driver: hands out budget tokens in batches,
  takes results in batches, migrates, resets, checks the literature, stops on a budget.
- island_actor.py: an island runs its own iterations (parent -> prompt -> LLM -> edit -> child)
  while it holds tokens.
- queue.py: the evaluation queue (one or more shards by code hash): the duplicate gate, the
  jobs evaluator workers pull, results handed to the archive in batches.
- archive.py: the one writer of the run database; each batch one transaction.
- evaluators.py: the evaluator workers (a warm sandbox each).
- literature_actor.py: checks new bests against the known results off the driver's loop.
- budget.py, replay.py, members.py: plain functions (no Ray) for the budget decision, the
  replay of an island's history from the database, and what makes a member and a best.
- progress.py: what the live view shows (imports nothing of the rest, nor Ray).

Names are imported lazily: `from evolve.engine.progress import Progress` (the live view) must
not start importing Ray and the actors.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Evolution": "evolve.engine.driver",
    "RunError": "evolve.engine.budget",
    "Progress": "evolve.engine.progress",
    "selection_fitness": "evolve.engine.members",
    "step_seed": "evolve.engine.island_actor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evolve.engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
