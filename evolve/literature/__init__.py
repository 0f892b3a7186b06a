"""The literature check: known results with citations, and the verdict on a result.

    from evolve.literature import check, known_results
    verdict = check(problem, outputs, evaluation, code=code, rerun=True)
    print(verdict.message())       # one line; verdict.to_dict() for JSON and the database

See docs/literature.md for the known.yaml and catalogue formats and the verdict rules.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evolve.literature.catalogue import (
    CatalogueError,
    MergeReport,
    catalogue_entry,
    erdos_status,
    load_catalogue,
    merge_catalogue,
    update_catalogue,
)
from evolve.literature.check import check, check_program
from evolve.literature.cli import literature_main
from evolve.literature.known import KnownError, KnownResult, KnownTable, known_table
from evolve.literature.verdict import STATUSES, Verdict

if TYPE_CHECKING:
    from evolve.problem import Problem

__all__ = [
    "STATUSES",
    "CatalogueError",
    "KnownError",
    "KnownResult",
    "KnownTable",
    "MergeReport",
    "Verdict",
    "catalogue_entry",
    "check",
    "check_program",
    "erdos_status",
    "known_results",
    "known_table",
    "known_table_for",
    "literature_main",
    "load_catalogue",
    "merge_catalogue",
    "table_to_dict",
    "update_catalogue",
]


def known_table_for(problem_or_name: Problem | str | Path) -> KnownTable:
    """The known table for a Problem, a problem name or folder, or a catalogue entry id."""
    from evolve.problem import Problem, ProblemError, load_problem

    if isinstance(problem_or_name, Problem):
        return known_table(problem_or_name)
    try:
        return known_table(load_problem(problem_or_name))
    except ProblemError as exc:
        if catalogue_entry(str(problem_or_name)) is not None:
            return known_table(None, entry_id=str(problem_or_name))
        raise ProblemError(f"{exc}; it is not a catalogue entry id either") from None


def known_results(problem_or_name: Problem | str | Path) -> list[KnownResult]:
    """Every known value for a problem (or catalogue entry id), newest first, with citations."""
    return known_table_for(problem_or_name).results()


def table_to_dict(table: KnownTable) -> dict[str, Any]:
    """A KnownTable as JSON-able data (constructions without their arrays)."""
    return {
        "id": table.id,
        "title": table.title,
        "direction": table.direction,
        "as_of": table.as_of,
        "instance": table.instance,
        "erdos_problem": table.erdos_problem,
        "erdos": asdict(table.erdos) if table.erdos else None,
        "best_known": table.best.to_dict() if table.best else None,
        "results": [r.to_dict() for r in table.results()],
        "constructions": [
            {"file": c.file, "name": c.name, "attribution": c.attribution, "value": c.value}
            for c in table.constructions
        ],
        "sources": table.sources,
        "problems": table.problems,
    }
