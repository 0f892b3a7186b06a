"""The literature check of a run's new bests, off the driver's loop (evolve/literature)."""

from __future__ import annotations

import logging
import os
from typing import Any

import ray

from evolve.cluster import load_problem_ref

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0)
class LiteratureActor:
    """Checks new bests against the known results and records each verdict."""

    def __init__(
        self, problem_ref: dict[str, Any], db_path: str, run_id: str, archive, lit: dict[str, Any]
    ) -> None:
        self.problem = load_problem_ref(problem_ref)
        self.db_path = db_path
        self.run_id = run_id
        self.archive = archive
        self.lit = lit

    def pid(self) -> int:
        return os.getpid()

    def check(self, program_id: int) -> dict[str, Any]:
        lit = self.lit
        try:
            from evolve import literature

            options: dict[str, Any] = {"timeout": lit.get("llm_timeout_s", 60.0)}
            if lit.get("llm_api_base"):
                options["api_base"] = lit["llm_api_base"]
            if lit.get("llm_api_key_env") and os.environ.get(lit["llm_api_key_env"]):
                options["api_key"] = os.environ[lit["llm_api_key_env"]]
            verdict = literature.check_program(
                self.problem,
                self.db_path,
                self.run_id,
                program_id,
                llm=lit.get("llm"),
                llm_options=options if lit.get("llm") else None,
                timeout_s=lit.get("sandbox_timeout_s"),  # the run's, as its children had
            )
        except Exception as exc:  # the check must never stop a run; record why it failed
            log.exception("literature check failed")
            verdict = {
                "status": "error",
                "problem": self.problem.name,
                "message": f"literature check failed: {type(exc).__name__}: {exc}",
            }
        ray.get(self.archive.record_literature_check.remote(program_id, verdict))
        return verdict
