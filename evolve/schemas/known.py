"""The schema of known.yaml: what a problem folder says is known about it.

docs/literature.md describes the keys; evolve/literature/known.py reads the values. Values
themselves stay free (a number, a table by instance, a text), since sources give them so; what
is fixed is which keys exist, that every best known value has a citation, that lists are
lists of records, and that a direction is max or min.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from evolve.choices import Direction
from evolve.schemas import Closed, Integer, Open, Text

Record = dict[Text, Any]  # a claim or a history row: value, citation, date, status, note...
Date = Text | datetime.date | Integer  # YAML reads 2026-08-01 as a date and 2026 as a number


class BestKnown(Open):
    """The best known value, with where it is from (other keys: date, status, bound_kind...)."""

    value: Any = Field(description="the value, or a table of values by instance")
    citation: Annotated[Text, Field(min_length=1)] = Field(
        description="every known value must say where it is from"
    )


class ConstructionRef(Closed):
    """A file of a published construction, for rediscovery matching."""

    file: Text = Field(description="a JSON file in the problem folder")
    name: Text | None = None
    attribution: Text | None = None
    outputs: dict[Text, Text] | None = None  # output name -> key path in the file


class KnownFile(Open):
    """known.yaml. Besides these keys only `values_by_<param>` tables are allowed."""

    id: Text | None = None  # the catalogue entry it mirrors
    erdos_problem: Integer | None = None
    as_of: Date | None = None
    direction: Direction | None = None  # if given, must agree with problem.yaml
    title: Text | None = None
    note: Text | None = None
    metric: Text | None = None  # heuristic problems: the metric the values are for
    params: dict[Text, Any] | None = None  # the instance best_known and claimed are for
    catalogue_instance: Text | None = None  # e.g. "square n={n}"
    best_known: BestKnown | None = None
    claimed: list[Record] | None = None
    history: list[Record] | None = None
    constructions: list[ConstructionRef] | None = None

    @model_validator(mode="after")
    def _only_value_tables(self) -> KnownFile:
        unknown = [k for k in self.model_extra or {} if not k.startswith("values_by_")]
        if unknown:
            allowed = ", ".join([*type(self).model_fields, "values_by_<param>"])
            raise ValueError(f"unknown key {unknown[0]!r}; allowed: {allowed}")
        return self
