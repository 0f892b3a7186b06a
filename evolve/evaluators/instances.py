"""Instance sets and cascades of heuristic problems, as problem.yaml declares them.

A heuristic problem's child is a function run on many instances. problem.yaml names the sets
(`train`, what the search optimises; `validation`, which picks the run's best; `test`, never
seen by the search) and, in each, datasets with their source::

    instances:
      train:
        weibull: {generator: weibull, seeds: [0, 1, 2], args: {n_items: 500}}
      test:
        or1: {file: data/binpack1.txt, reader: orlib}
    cascade:
      - {name: quick, instances: 1, relative_to: parent, margin: 0.05}
      - {name: full}

The instances themselves come from the problem's trusted evaluator
(`load_instances(source, params, folder)`), in the evaluator's process only: a child never
sees a seed, a file name or an instance it is not being run on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SETS = ("train", "validation", "test")
_SOURCE_KEYS = {"generator", "seeds", "args", "file", "reader"}
_STAGE_KEYS = {"name", "instances", "relative_to", "margin", "threshold"}
_RELATIVE = ("parent", "island_best")


class InstanceSpecError(ValueError):
    """An `instances`, `online` or `cascade` entry of problem.yaml that cannot be used."""


@dataclass(frozen=True)
class Stage:
    """One cascade stage: the first `instances` train instances (None: all of them).

    A child goes on to the next stage only if its score so far is no worse than the reference
    (`relative_to` its parent's score at this stage, or the island best's) by more than
    `margin` (relative), or, with `threshold`, no worse than that absolute score.
    """

    name: str
    instances: int | None = None
    relative_to: str = "parent"
    margin: float = 0.0
    threshold: float | None = None


@dataclass(frozen=True)
class Online:
    """An online problem's frame sizes (floats per item, floats per decision)."""

    item_size: int = 1
    decision_size: int = 1


def parse_instances(raw: Any, where: str) -> dict[str, dict[str, dict[str, Any]]]:
    """problem.yaml's `instances`: set -> dataset -> source, checked."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InstanceSpecError(
            f"{where}: instances must map set names ({', '.join(SETS)}) to datasets"
        )
    unknown = set(raw) - set(SETS)
    if unknown:
        raise InstanceSpecError(
            f"{where}: unknown instance set(s) {sorted(unknown)}; the sets are {', '.join(SETS)}"
        )
    if "train" not in raw:
        raise InstanceSpecError(
            f"{where}: instances must have a train set (what the search optimises)"
        )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for set_name, datasets in raw.items():
        if not isinstance(datasets, dict) or not datasets:
            raise InstanceSpecError(
                f"{where}: instances.{set_name} must map dataset names to sources, e.g. "
                "{weibull: {generator: weibull, seeds: [0, 1]}}"
            )
        out[set_name] = {}
        for name, source in datasets.items():
            if not str(name).isidentifier():
                raise InstanceSpecError(
                    f"{where}: dataset name {name!r} in instances.{set_name} must be an identifier "
                    "(it becomes a metric name)"
                )
            out[set_name][str(name)] = _source(source, f"{where}: instances.{set_name}.{name}")
    return out


def _source(source: Any, where: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise InstanceSpecError(f"{where} must be a mapping with generator/seeds or file/reader")
    unknown = set(source) - _SOURCE_KEYS
    if unknown:
        raise InstanceSpecError(
            f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_SOURCE_KEYS)}"
        )
    if ("generator" in source) == ("file" in source):
        raise InstanceSpecError(f"{where} must name exactly one of generator (with seeds) or file")
    if "generator" in source:
        seeds = source.get("seeds")
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise InstanceSpecError(f"{where}: seeds must be a non-empty list of integers")
    if "args" in source and not isinstance(source["args"], dict):
        raise InstanceSpecError(f"{where}: args must be a mapping")
    return dict(source)


def parse_online(raw: Any, where: str) -> Online | None:
    """problem.yaml's `online`: the frame sizes, or None for an offline problem."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return Online()
    if not isinstance(raw, dict) or set(raw) - {"item_size", "decision_size"}:
        raise InstanceSpecError(
            f"{where}: online must be true or {{item_size: N, decision_size: M}}"
        )
    sizes = {k: raw.get(k, 1) for k in ("item_size", "decision_size")}
    for key, value in sizes.items():
        if not isinstance(value, int) or not 1 <= value <= 4096:
            raise InstanceSpecError(f"{where}: online.{key} must be an integer from 1 to 4096")
    return Online(**sizes)


def parse_cascade(raw: Any, where: str) -> list[Stage]:
    """problem.yaml's `cascade`: the stages, cheapest first; the last one runs every train
    instance."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        raise InstanceSpecError(
            f"{where}: cascade must be a list of stages, e.g. [{{name: quick, instances: 1}}, {{name: full}}]"
        )
    stages = []
    for i, d in enumerate(raw):
        if not isinstance(d, dict) or set(d) - _STAGE_KEYS:
            raise InstanceSpecError(
                f"{where}: cascade stage {i + 1} must be a mapping with keys from {sorted(_STAGE_KEYS)}"
            )
        n = d.get("instances")
        if n is not None and (not isinstance(n, int) or n < 1):
            raise InstanceSpecError(
                f"{where}: cascade stage {i + 1}: instances must be a positive integer"
            )
        rel = d.get("relative_to", "parent")
        if rel not in _RELATIVE:
            raise InstanceSpecError(
                f"{where}: cascade stage {i + 1}: relative_to must be one of {', '.join(_RELATIVE)}, not {rel!r}"
            )
        try:
            margin = float(d.get("margin", 0.0))
            threshold = None if d.get("threshold") is None else float(d["threshold"])
        except (TypeError, ValueError):
            raise InstanceSpecError(
                f"{where}: cascade stage {i + 1}: margin and threshold are numbers"
            ) from None
        if margin < 0:
            raise InstanceSpecError(f"{where}: cascade stage {i + 1}: margin must be >= 0")
        stages.append(Stage(str(d.get("name", f"stage{i + 1}")), n, rel, margin, threshold))
    if stages[-1].instances is not None:
        stages.append(Stage("full"))
    sizes = [s.instances for s in stages[:-1]]
    if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise InstanceSpecError(
            f"{where}: cascade stages must run more instances each, got {sizes}"
        )
    if len({s.name for s in stages}) != len(stages):
        raise InstanceSpecError(f"{where}: cascade stage names must differ")
    return stages
