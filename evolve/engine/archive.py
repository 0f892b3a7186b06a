"""The archive: the one writer of the run database.

Everything a run records goes through this one process, so SQLite sees one writer. The
evaluation queues (queue.py) hand it the children and LLM calls of islands in batches, one call
and one transaction per batch (`write`); the driver its migrations, grids, resets, notes and
final status; the literature checker its verdicts. A child is counted once its transaction
commits, never before: the run's counter and the child's row go in together.
"""

from __future__ import annotations

import collections
import logging
import os
from typing import Any

import ray

from evolve.population.database import Database

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0)
class ArchiveActor:
    """The run database's one writer."""

    def __init__(self, db_path: str, run_id: str) -> None:
        self.db = Database(db_path)
        self.run_id = run_id
        # What it has served: write calls (one transaction each) and their items (bench/scale.py).
        self.calls: collections.Counter = collections.Counter()

    def pid(self) -> int:
        return os.getpid()

    def served(self) -> dict[str, int]:
        """What it has served so far: `write` calls and the items they carried."""
        return dict(self.calls)

    # --- writes ----------------------------------------------------------------------------
    def write(
        self, items: list[tuple[dict[str, Any] | None, dict[str, Any] | None]]
    ) -> list[tuple[int | None, int | None]]:
        """A batch of iterations, each an LLM call and/or the child it made, in one
        transaction (Database.record_iterations): (call id, program id) per item."""
        self.calls["write"] += 1
        self.calls["written_items"] += len(items)
        return self.db.record_iterations(self.run_id, items)

    def start_run(self, problem: str, seed: int, config: dict, versions: dict) -> None:
        self.db.start_run(self.run_id, problem, seed, config, versions)

    def record_reset(self, island: int, program_ids: list[int]) -> None:
        self.db.record_reset(self.run_id, island, program_ids)

    def record_round(
        self, migrations: list[tuple[int, int, int]], snapshots: list[dict[str, Any]]
    ) -> None:
        """A migration round's accepted migrations (source, destination, program id) and
        every island's snapshot after it (IslandActor.snapshot), in one transaction."""
        self.db.record_round(self.run_id, migrations, snapshots)

    def record_literature_check(self, program_id: int | None, verdict: dict[str, Any]) -> int:
        return self.db.record_literature_check(self.run_id, program_id, verdict)

    def evaluations(self) -> int:
        return self.db.evaluations(self.run_id)

    def island_totals(self, island: int) -> dict[str, float]:
        """What one island has recorded: counted children, LLM calls, their cost."""
        return self.db.island_totals(self.run_id, island)

    def recent_children(self, n: int) -> list[dict[str, Any]]:
        return self.db.recent_children(self.run_id, n)

    def record_scratchpad(self, at_evaluation: int, note: str, llm_call_id: int | None) -> None:
        self.db.record_scratchpad(self.run_id, at_evaluation, note, llm_call_id)

    def program_code(self, program_id: int) -> str:
        return self.db.program_code(self.run_id, program_id)

    def record_test_score(self, program_id: int, evaluation: dict[str, Any]) -> None:
        self.db.record_test_score(self.run_id, program_id, evaluation)

    def finish(self, status: str) -> None:
        """Record the run's final status (the queues have committed what they held)."""
        self.db.finish_run(self.run_id, status)
        self.db.close()
