"""`evolve new-problem` and `evolve check-problem`: start a problem plug-in, and check one.

A new plug-in is a small installable project (like a Datasette plug-in from its cookiecutter):

    NAME/                      the project: pyproject.toml (entry point), README.md
      MODULE/                  the problem folder, also a Python package
        problem.yaml  initial.py  evaluator.py  harness.py  known.yaml  __init__.py

It works as it is (a real problem: spreading points in a square), passes `check-problem`, and
runs with `evolve run problem=custom problem.name=NAME/MODULE`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).with_name("template")
_FILES = ("problem.yaml", "initial.py", "evaluator.py", "harness.py", "known.yaml")


class ScaffoldError(ValueError):
    """A plug-in that cannot be created where asked."""


def new_problem(name: str, dest: Path) -> Path:
    """Create a plug-in project for problem `name` under `dest`; returns the problem folder."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug or not re.match(r"[a-z]", slug):
        raise ScaffoldError(f"problem name {name!r} must start with a letter, e.g. my_points")
    project = dest / slug
    if project.exists():
        raise ScaffoldError(f"{project} already exists; choose another name or folder")
    module = slug
    folder = project / module
    folder.mkdir(parents=True)
    values = {
        "name": name,
        "slug": slug,
        "module": module,
        # No colon: the title goes into problem.yaml unquoted.
        "title": name.replace("_", " ").replace("/", " / ").capitalize(),
        "today": time.strftime("%Y-%m-%d"),
    }
    for f in _FILES:
        (folder / f).write_text(Template((TEMPLATE / f).read_text()).safe_substitute(values))
    (folder / "__init__.py").write_text(f'"""The {name} problem plug-in for evolve."""\n')
    for f in ("README.md", "pyproject.toml"):
        (project / f).write_text(Template((TEMPLATE / f).read_text()).safe_substitute(values))
    return folder


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _check_moves(p) -> list[Check]:
    """The plug-in's own local moves (mutations.py), if it has them: they load and give a
    program that compiles."""
    import random

    from evolve.mutation.local import load_problem_moves

    if not (p.path / "mutations.py").exists():
        return []
    try:
        propose = load_problem_moves(p.path)
        moves = [propose(p.initial_code, random.Random(k)) for k in range(5)]
        made = [m for m in moves if m is not None]
        for _, code in made:
            compile(code, "child.py", "exec")
        return [Check("mutations.py", bool(made), f"{len(made)} of 5 proposals made a program")]
    except Exception as exc:
        return [Check("mutations.py", False, f"{type(exc).__name__}: {exc}")]


def check_problem(path: str | Path) -> list[Check]:
    """Everything a plug-in needs to work, each checked for real (the seed runs in the sandbox)."""
    from evolve.problem import load_problem
    from evolve.program import EditError, find_blocks

    checks: list[Check] = []
    try:
        p = load_problem(path)
    except Exception as exc:
        return [Check("loads", False, str(exc))]
    checks.append(
        Check("loads", True, f"{p.name}: {p.direction}, outputs {sorted(p.outputs.arrays)}")
    )
    try:
        blocks = find_blocks(p.initial_code)
        checks.append(
            Check(
                "evolve block",
                bool(blocks),
                f"{len(blocks)} EVOLVE-BLOCK(s) in initial.py"
                if blocks
                else "initial.py has no # EVOLVE-BLOCK-START / END region",
            )
        )
    except EditError as exc:
        checks.append(Check("evolve block", False, str(exc)))
    try:
        _ = p.evaluator_module
        checks.append(Check("evaluator", True, "evaluate() found"))
    except Exception as exc:
        checks.append(Check("evaluator", False, str(exc)))
        return checks
    if p.heuristic:
        try:
            counts = {s: len(p.instances(s)) for s in p.instance_sets}
            checks.append(
                Check("instances", True, ", ".join(f"{s}: {n}" for s, n in counts.items()))
            )
        except Exception as exc:
            checks.append(Check("instances", False, str(exc)))
            return checks
    from evolve.evaluators.harness import evaluate_code

    ev = evaluate_code(p, p.initial_code)
    sets = ", ".join(
        f"{k} {ev.metrics[k]:.6g}" for k in ("train", "validation", "test") if k in ev.metrics
    )
    checks.append(
        Check(
            "seed runs",
            ev.valid,
            f"seed scores {ev.score:.10g} in {ev.metrics.get('eval_wall_s', 0):.2f} s"
            + (f" ({sets})" if sets else "")
            if ev.valid
            else f"seed is {ev.status}: {ev.error}",
        )
    )
    checks += _check_moves(p)
    verify = getattr(p.evaluator_module, "verify", None)
    if p.heuristic:
        checks.append(
            Check(
                "verify",
                True,
                "a heuristic problem: every instance is re-scored by trusted code, every online "
                "decision checked; an improvement needs two identical fresh evaluations",
            )
        )
    elif verify is None:
        checks.append(
            Check(
                "verify",
                False,
                "evaluator.py has no verify(outputs, params): results can never be confirmed as improvements",
            )
        )
    elif ev.valid:
        from evolve.evaluators.harness import sandbox_request
        from evolve.sandbox import run

        res = run(sandbox_request(p, p.initial_code))
        try:
            v = verify(p.check_outputs(res.outputs), dict(p.params))
            agree = (
                v.valid
                and v.value is not None
                and abs(v.value - ev.score) <= max(1e-9, p.tolerance * abs(ev.score))
            )
            checks.append(
                Check(
                    "verify",
                    agree,
                    f"{v.method}: {v.value!r}" if agree else f"verify disagrees with evaluate: {v}",
                )
            )
        except Exception as exc:
            checks.append(Check("verify", False, f"verify raised {type(exc).__name__}: {exc}"))
    if (p.path / "known.yaml").exists():
        try:
            from evolve.literature import known_results

            rows = known_results(p)
            checks.append(Check("known.yaml", True, f"{len(rows)} known result(s)"))
        except Exception as exc:
            checks.append(Check("known.yaml", False, str(exc)))
    else:
        checks.append(
            Check("known.yaml", False, "no known.yaml: every result will be 'unreferenced'")
        )
    return checks
