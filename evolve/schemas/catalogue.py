"""The schema of the known-results catalogue (evolve/literature/data/catalogue.json).

The catalogue is the project's reference data, copied with every citation; its entries carry
many descriptive keys (statement, confidence, alphaevolve...), which are kept as they are. What
the literature check relies on is fixed here: each entry has a unique string id, a best known
value says where it is from, history is a list, bounds are records (or texts) by side, and an Erdős
problem number is an integer. `direction` stays text: the reference data has entries that are
neither max nor min ("n/a"), which no problem folder may link to (known.py refuses a direction
that disagrees with problem.yaml).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from evolve.schemas import Integer, Open, Text


class CatalogueBest(Open):
    """An entry's best known value (other keys: status, bound_type, holder, note...)."""

    value: Any = None
    citation: Text | None = None


class Entry(Open):
    """One problem family of the catalogue."""

    id: Annotated[Text, Field(min_length=1)] = Field(description="a unique string id")
    direction: Text | None = None
    best_known: CatalogueBest | None = None
    history: list[Any] = Field(default_factory=list)
    # Side (lower, upper...) -> a value record, or a text where the source states it in words.
    bounds: dict[Text, dict[Text, Any] | Text] | None = None
    erdos_problem: Integer | None = None
    source: Any = None

    @model_validator(mode="after")
    def _cited(self) -> Entry:
        best = self.best_known
        if best is not None and best.value is not None and not best.citation and not self.source:
            raise ValueError(f"entry {self.id!r}: best_known.value {best.value!r} has no citation")
        return self


class Catalogue(Open):
    """The whole file: {as_of, source, entries: [...]} and the snapshots it was made from."""

    entries: list[Entry] = Field(description="the list of entries")

    @field_validator("entries")
    @classmethod
    def _unique_ids(cls, entries: list[Entry]) -> list[Entry]:
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"entry {entry.id!r} appears twice; ids must be unique")
            seen.add(entry.id)
        return entries
