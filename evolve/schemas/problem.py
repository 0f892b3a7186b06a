"""The schema of problem.yaml: every key a problem folder may declare, its type and default.

docs/problems.md describes each key for plug-in authors; this module is what checks them.
The cascade comes out as the engine's `Stage` list and the online frame as `Online`, so what
the schema accepts is exactly what the engine runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from evolve.choices import Direction, Dtype, InstanceSet, Reference
from evolve.evaluators.instances import Online, Stage
from evolve.evaluators.spec import DEFAULT_MAX_ELEMENTS
from evolve.schemas import Closed, Flag, Integer, Number, Text


def _identifier(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"{name!r} must be an identifier (it becomes a metric name)")
    return name


Identifier = Annotated[str, AfterValidator(_identifier)]
Size = Annotated[Integer, Field(ge=0)]


class ArraySchema(Closed):
    """One named output: the kind of numbers, each axis' size (null: any) and size bounds."""

    dtype: Dtype = Dtype.float
    shape: list[Size | None] = Field(default_factory=lambda: [None])
    max_elements: Annotated[Integer, Field(ge=1)] = DEFAULT_MAX_ELEMENTS
    min_elements: Size = 1
    optional: Flag = False  # the program may leave this output out

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        return {} if data is None else data  # `h:` with nothing under it: every default


Outputs = Annotated[dict[Text, ArraySchema], Field(min_length=1)]


class LimitsSchema(Closed):
    """Resource limits for one child (time_s, memory_mb) and for scoring it (score_time_s)."""

    time_s: Annotated[Number, Field(gt=0)] = 30.0
    memory_mb: Annotated[Integer, Field(gt=0)] = 2048
    score_time_s: Annotated[Number, Field(gt=0)] = 60.0


class SourceSchema(Closed):
    """Where a dataset's instances come from: a generator with seeds, or a file and reader."""

    generator: Text | None = None
    seeds: Annotated[list[Integer], Field(min_length=1)] | None = None
    args: dict[Text, Any] | None = None
    file: Text | None = None
    reader: Text | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SourceSchema:
        if (self.generator is None) == (self.file is None):
            raise ValueError("must name exactly one of generator (with seeds) or file")
        if self.generator is not None and self.seeds is None:
            raise ValueError("seeds must be a non-empty list of integers (a generator needs them)")
        return self


Datasets = Annotated[dict[Identifier, SourceSchema], Field(min_length=1)]


class StageSchema(Closed):
    """One cascade stage; see evolve/evaluators/instances.py's `Stage` for what it means."""

    name: Text | None = None
    instances: Annotated[Integer, Field(ge=1)] | None = None
    relative_to: Reference = Reference.parent
    margin: Annotated[Number, Field(ge=0)] = 0.0
    threshold: Number | None = None


class OnlineSchema(Closed):
    """An online problem's frame sizes: floats per item and per decision."""

    item_size: Annotated[Integer, Field(ge=1, le=4096)] = 1
    decision_size: Annotated[Integer, Field(ge=1, le=4096)] = 1


class ProblemFile(Closed):
    """problem.yaml."""

    name: Text = Field(description="the problem's name, e.g. erdos/min_overlap")
    title: Text | None = None
    direction: Direction = Field(description="max or min")
    description: Text = Field(description="the statement that goes into the prompt")
    entrypoint: Identifier = "solve"  # the function the child program defines
    outputs: Outputs = Field(description="name -> {dtype, shape, max_elements}")
    params: dict[Text, Any] = Field(default_factory=dict)  # passed to the evaluator (and harness)
    limits: LimitsSchema = Field(default_factory=LimitsSchema)
    features: list[Text] = Field(default_factory=list)  # metric names: MAP-Elites dimensions
    # Heuristic problems: instance sets (train, validation, test) -> dataset -> source.
    instances: dict[InstanceSet, Datasets] | None = None
    # Online problems: true or {item_size, decision_size}; items reach the child one at a time.
    online: OnlineSchema | None = None
    cascade: Annotated[list[StageSchema], Field(min_length=1)] | None = None  # cheapest first
    literature: Text | None = None  # the id of the problem's entry in the known-results catalogue
    harness: Text | None = None  # file name of the sandbox-side harness (heuristic problems)
    tolerance: Annotated[Number, Field(ge=0)] = 1e-9  # relative, for matching a known value

    @field_validator("params", "limits", "features", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        # `params:` with nothing under it means no params, as in today's problem files.
        return ([] if info.field_name == "features" else {}) if value is None else value

    @field_validator("online", mode="before")
    @classmethod
    def _online_flag(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"must be true or {{item_size: N, decision_size: M}}, got {value!r}")
        return value

    @field_validator("instances")
    @classmethod
    def _train_first(cls, sets: dict[InstanceSet, Any] | None) -> dict[InstanceSet, Any] | None:
        if sets is not None and InstanceSet.train not in sets:
            raise ValueError("must have a train set (what the search optimises)")
        return sets

    @field_validator("cascade")
    @classmethod
    def _growing_stages(cls, stages: list[StageSchema] | None) -> list[StageSchema] | None:
        if stages is None:
            return None
        sizes = [s.instances for s in stages]
        if None in sizes[:-1]:
            raise ValueError("only the last stage may leave out instances (it runs them all)")
        if any(
            b <= a
            for a, b in zip(sizes, sizes[1:], strict=False)
            if a is not None and b is not None
        ):
            raise ValueError(f"stages must run more instances each, got {sizes}")
        names = [s.name or f"stage{i + 1}" for i, s in enumerate(stages)]
        if sizes[-1] is not None:
            names.append("full")
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must differ, got {names}")
        return stages

    @model_validator(mode="after")
    def _heuristic_parts(self) -> ProblemFile:
        if (self.online or self.cascade) and not self.instances:
            raise ValueError("online and cascade need instance sets (an instances: key)")
        if self.instances and self.harness is None:
            raise ValueError("a problem with instances needs a harness (harness: harness.py)")
        return self

    # --- what the engine runs ----------------------------------------------------------------
    def instance_sets(self) -> dict[str, dict[str, dict[str, Any]]]:
        """set -> dataset -> source, as the evaluator's `load_instances` takes it."""
        return {
            s.value: {name: src.model_dump(exclude_none=True) for name, src in datasets.items()}
            for s, datasets in (self.instances or {}).items()
        }

    def stages(self) -> list[Stage]:
        """The cascade, cheapest first; the last stage runs every train instance."""
        out = [
            Stage(
                s.name or f"stage{i + 1}", s.instances, s.relative_to.value, s.margin, s.threshold
            )
            for i, s in enumerate(self.cascade or [])
        ]
        if out and out[-1].instances is not None:
            out.append(Stage("full"))
        return out

    def online_frame(self) -> Online | None:
        return None if self.online is None else Online(**self.online.model_dump())
