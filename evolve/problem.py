"""Problem plug-ins: finding, loading and validating a problem folder.

A problem is a folder with problem.yaml, initial.py, evaluator.py and known.yaml (see
docs/problems.md). It is found by built-in name (`erdos/min_overlap`), by path, or through the
`evolve.problems` entry-point group of an installed package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import yaml

from evolve.evaluators.evaluation import Evaluation
from evolve.evaluators.instances import Online, Stage
from evolve.evaluators.spec import ArraySpec, OutputError, OutputSpec
from evolve.paths import problems_dir

REQUIRED_FILES = ("problem.yaml", "initial.py", "evaluator.py")


class ProblemError(ValueError):
    """A problem folder that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run of a child program."""

    time_s: float = 30.0
    memory_mb: int = 2048
    score_time_s: float = 60.0  # the trusted evaluator's time to score one child's outputs


@dataclass
class Problem:
    """A loaded problem: its statement, output spec, trusted evaluator and seed program."""

    name: str
    path: Path
    title: str
    direction: str
    description: str
    entrypoint: str
    outputs: OutputSpec
    params: dict[str, Any]
    limits: Limits
    features: list[str]
    literature_id: str | None
    harness: Path | None
    tolerance: float
    config: dict[str, Any] = field(repr=False, default_factory=dict)
    instance_sets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    online: Online | None = None
    cascade: list[Stage] = field(default_factory=list)
    _instances: dict[str, list[tuple[str, dict[str, Any]]]] = field(
        default_factory=dict, repr=False
    )
    # The child's trusted inputs, once computed (or handed over with the problem, so that an
    # evaluator worker of a problem without instances never imports the evaluator itself).
    inputs_cache: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def heuristic(self) -> bool:
        """A heuristic problem: the child is run on the instances of its sets."""
        return bool(self.instance_sets)

    @property
    def selection_metric(self) -> str | None:
        """The metric that picks the run's best ('validation' when there is a validation set)."""
        return "validation" if "validation" in self.instance_sets else None

    # --- files -----------------------------------------------------------------------------
    @cached_property
    def initial_code(self) -> str:
        return (self.path / "initial.py").read_text()

    @cached_property
    def evaluator_module(self) -> ModuleType:
        """The trusted evaluator, imported from the problem folder (never a child's code)."""
        # Named by content, not location: numba's on-disk cache refers to the module by name,
        # so a problem folder copied elsewhere (with its __pycache__) must keep the same name.
        digest = hashlib.sha1((self.path / "evaluator.py").read_bytes()).hexdigest()[:12]
        mod_name = f"_evolve_problem_{digest}_evaluator"
        if mod_name in sys.modules:
            return sys.modules[mod_name]
        spec = importlib.util.spec_from_file_location(mod_name, self.path / "evaluator.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[mod_name]
            raise ProblemError(f"{self.path / 'evaluator.py'} failed to import: {exc}") from exc
        if not callable(getattr(module, "evaluate", None)):
            raise ProblemError(
                f"{self.path / 'evaluator.py'} must define evaluate(outputs, params) -> Evaluation"
            )
        return module

    def child_inputs(self) -> dict[str, Any]:
        """The trusted instance data a child gets besides the params (a job-shop instance's
        routes and durations): the evaluator's optional `inputs(params)` hook."""
        if self.inputs_cache is not None:
            return self.inputs_cache
        hook = getattr(self.evaluator_module, "inputs", None)
        if hook is None:
            self.inputs_cache = {}
            return self.inputs_cache
        data = hook(dict(self.params))
        if not isinstance(data, dict):
            raise ProblemError(
                f"{self.path / 'evaluator.py'}: inputs(params) returned {type(data).__name__}, not a dict"
            )
        self.inputs_cache = data
        return data

    def instances(self, set_name: str) -> list[tuple[str, dict[str, Any]]]:
        """(dataset, instance) pairs of one set, in declared order; loaded once per process by
        the trusted evaluator's `load_instances(source, params, folder)`."""
        if set_name in self._instances:
            return self._instances[set_name]
        datasets = self.instance_sets.get(set_name)
        if not datasets:
            return []
        load = getattr(self.evaluator_module, "load_instances", None)
        if not callable(load):
            raise ProblemError(
                f"{self.path / 'evaluator.py'} must define load_instances(source, params, folder), "
                "since problem.yaml declares instances"
            )
        out = []
        for dataset, source in datasets.items():
            try:
                got = load(dict(source), dict(self.params), self.path)
            except ProblemError:
                raise
            except Exception as exc:
                raise ProblemError(
                    f"{self.name}: loading instances.{set_name}.{dataset} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(got, list) or not got or not all(isinstance(i, dict) for i in got):
                raise ProblemError(
                    f"{self.name}: load_instances for instances.{set_name}.{dataset} must return a "
                    "non-empty list of dicts (one per instance)"
                )
            out.extend((dataset, inst) for inst in got)
        self._instances[set_name] = out
        return out

    # --- scoring ---------------------------------------------------------------------------
    def check_outputs(self, outputs: Any) -> dict[str, np.ndarray]:
        """Validate raw outputs against the spec (raises OutputError)."""
        return self.outputs.check(outputs)

    def score(self, outputs: Any, instance: dict[str, Any] | None = None) -> Evaluation:
        """Score a candidate's outputs with no code run: spec check, then the trusted evaluator
        (for a heuristic problem, on one `instance`)."""
        try:
            clean = self.check_outputs(outputs)
        except OutputError as exc:
            return Evaluation.failed("bad_output", str(exc))
        try:
            if instance is None:
                ev = self.evaluator_module.evaluate(clean, dict(self.params))
            else:
                ev = self.evaluator_module.evaluate(clean, dict(self.params), instance)
        except OutputError as exc:
            return Evaluation.failed("bad_output", str(exc))
        except Exception as exc:  # a bug in the evaluator: recorded, never scored
            return Evaluation.failed("error", f"evaluator raised {type(exc).__name__}: {exc}")
        if not isinstance(ev, Evaluation):
            return Evaluation.failed(
                "error", f"evaluator returned {type(ev).__name__}, not an Evaluation"
            )
        if ev.valid:
            # Orientation comes from problem.yaml, not from the evaluator.
            if ev.score is None or not math.isfinite(ev.score):
                return Evaluation.failed("error", f"evaluator gave a non-finite score {ev.score}")
            ev.fitness = ev.score if self.direction == "max" else -ev.score
        return ev

    def better(self, a: float, b: float) -> bool:
        """True if score `a` is strictly better than score `b` in this problem's direction."""
        return a > b if self.direction == "max" else a < b

    def to_dict(self) -> dict[str, Any]:
        """A picklable description, enough to reload the problem in another process."""
        return {"path": str(self.path), "params": dict(self.params)}


def _builtin_names(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(str(p.parent.relative_to(root)) for p in root.glob("*/*/problem.yaml"))


def _entry_point_dirs() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for ep in entry_points(group="evolve.problems"):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in must not break the others
            raise ProblemError(
                f"problem plug-in {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from exc
        if isinstance(obj, ModuleType):
            folder = Path(obj.__file__ or "").parent
        elif callable(obj):
            folder = Path(obj())
        else:
            folder = Path(obj)
        found[ep.name] = folder
    return found


def list_problems() -> list[tuple[str, Path]]:
    """Every problem that `load_problem` can find by name: built-ins, then plug-ins."""
    root = problems_dir()
    out = [(name, root / name) for name in _builtin_names(root)]
    out.extend(sorted(_entry_point_dirs().items()))
    return out


def resolve_problem_dir(name_or_path: str | Path) -> Path:
    """Find a problem folder by built-in name, entry point or path."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.is_dir() and (candidate / "problem.yaml").exists():
        return candidate.resolve()
    builtin = problems_dir() / text
    if (builtin / "problem.yaml").exists():
        return builtin.resolve()
    plugins = _entry_point_dirs()
    if text in plugins:
        return plugins[text].resolve()
    known = [n for n, _ in list_problems()]
    hint = f"; known problems: {', '.join(known)}" if known else ""
    if candidate.exists():
        raise ProblemError(f"{candidate} is not a problem folder (it has no problem.yaml){hint}")
    raise ProblemError(f"unknown problem {text!r}{hint} (or give a path to a problem folder)")


def load_problem(name_or_path: str | Path, params: dict[str, Any] | None = None) -> Problem:
    """Load and validate a problem; `params` override the defaults in problem.yaml."""
    folder = resolve_problem_dir(name_or_path)
    for f in REQUIRED_FILES:
        if not (folder / f).exists():
            raise ProblemError(f"problem folder {folder} is missing {f}")
    try:
        raw = yaml.safe_load((folder / "problem.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProblemError(
            f"{folder / 'problem.yaml'} is not valid YAML: {' '.join(str(exc).split())}"
        ) from None
    where = folder / "problem.yaml"
    from evolve.schemas import validate
    from evolve.schemas.problem import ProblemFile

    try:
        spec = validate(ProblemFile, raw, str(where))
    except ValueError as exc:
        raise ProblemError(str(exc)) from None
    defaults = dict(spec.params)
    given = dict(params or {})
    bad = set(given) - set(defaults)
    if bad:
        raise ProblemError(
            f"problem {spec.name!r} has no parameter(s) {sorted(bad)}; its parameters: {sorted(defaults) or 'none'}"
        )
    defaults.update(given)
    if spec.harness is not None and not (folder / spec.harness).exists():
        raise ProblemError(f"{where}: harness: file {spec.harness!r} does not exist")
    return Problem(
        name=spec.name,
        path=folder,
        title=spec.title or spec.name,
        direction=spec.direction.value,
        description=spec.description.strip(),
        entrypoint=spec.entrypoint,
        outputs=OutputSpec(
            {name: ArraySpec.from_schema(name, a) for name, a in spec.outputs.items()}
        ),
        params=defaults,
        limits=Limits(**spec.limits.model_dump()),
        features=list(spec.features),
        literature_id=spec.literature,
        harness=(folder / spec.harness) if spec.harness else None,
        tolerance=spec.tolerance,
        config=raw,
        instance_sets=spec.instance_sets(),
        online=spec.online_frame(),
        cascade=spec.stages(),
    )
