"""What is known about one problem: its known.yaml and its catalogue entry, read as one table.

known.yaml (in the problem folder) is the curated record: best known value with citation, date
and status, claims (possibly disputed), history, and files of published constructions for
rediscovery matching. The catalogue entry named by problem.yaml's `literature` key (or the
known.yaml `id`) adds what known.yaml lacks, and wins only where it is strictly better and not
disputed, which is how `evolve literature update` reaches every problem. Problems whose
instances differ (a Golomb ruler with n marks) key their values by instance; see
docs/literature.md.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from evolve.literature.catalogue import ErdosStatus, catalogue_entry, erdos_status

if TYPE_CHECKING:
    from evolve.problem import Problem


class KnownError(ValueError):
    """A known.yaml that cannot be used; the message names the file and the fix."""


@dataclass
class KnownResult:
    """One value from the literature: a best known value, a claim, or a point in the history."""

    value: Any  # a number; for display only, a table or text when the source gives one
    citation: str
    kind: str  # best_known | claimed | history | bound
    date: str | None = None
    status: str = ""  # verified_recomputed | read_only | disputed | ...
    bound_kind: str | None = None
    recomputed: float | None = None  # the value recomputed exactly from the published data
    note: str = ""
    source: str = ""  # known.yaml or catalogue

    @property
    def number(self) -> float | None:
        return _num(self.value)

    @property
    def disputed(self) -> bool:
        return self.status == "disputed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Construction:
    """A published construction, as outputs of the problem, for rediscovery matching."""

    file: str
    name: str
    attribution: str
    value: float | None
    outputs: dict[str, np.ndarray] = field(repr=False)


@dataclass
class KnownTable:
    """Everything known about one problem instance."""

    id: str | None
    title: str
    direction: str | None
    as_of: str | None
    instance: str | None  # the instance key, e.g. "11" for an 11-mark Golomb ruler
    best: KnownResult | None
    claimed: list[KnownResult]
    history: list[KnownResult]
    bounds: list[KnownResult]
    constructions: list[Construction]
    erdos: ErdosStatus | None
    erdos_problem: int | None
    sources: list[str]
    problems: list[str] = field(default_factory=list)  # why a construction or value was skipped
    # A proven bound no valid result can beat (a lower bound for a min problem): the verdict
    # `contradicts_bound` for a result beyond it. When it equals the best value, that is optimal.
    proven_bound: KnownResult | None = None
    metric: str | None = None  # heuristic problems: which metric the values are for

    def results(self) -> list[KnownResult]:
        """Every known value, newest first (best known first among equals)."""
        rows = ([self.best] if self.best else []) + self.claimed + self.bounds + self.history
        order = {"best_known": 0, "claimed": 1, "bound": 2, "history": 3}
        # History is listed oldest first, so among equal dates a later row is newer.
        indexed = sorted(
            enumerate(rows), key=lambda p: (_date_key(p[1]), -order[p[1].kind], p[0]), reverse=True
        )
        return [r for _, r in indexed]


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _date_key(r: KnownResult) -> str:
    if r.date:
        return str(r.date)
    years = re.findall(r"\b(1[89]\d\d|20\d\d)\b", r.citation)
    return max(years) if years else ""


def _pick(value: Any, key: str | None) -> Any:
    """A value for one instance: tables (dicts) are indexed by the instance key."""
    if isinstance(value, dict):
        return value.get(key) if key is not None else None
    return value


def instance_key(template: str | None, problem: Problem | None) -> str | None:
    """The key of a problem's instance in a table of values: a template over its params
    (known.yaml's `catalogue_instance`, e.g. "square n={n}"), or its only parameter's value."""
    if problem is None:
        return None
    params = dict(problem.params)
    if template:
        try:
            return str(template).format(**params)
        except (KeyError, IndexError, ValueError) as exc:
            raise KnownError(
                f"{problem.path / 'known.yaml'}: instance template {template!r} does not fit params {params}: {exc}"
            ) from None
    if len(params) == 1:
        return str(next(iter(params.values())))
    return None


def instance_label(problem: Problem | None) -> str | None:
    if problem is None or not problem.params:
        return None
    return ", ".join(f"{k}={v}" for k, v in sorted(problem.params.items()))


def _lookup(table: Any, value: Any) -> Any:
    if not isinstance(table, dict):
        return None
    for k in (value, str(value)):
        if k in table:
            return table[k]
    try:
        return table.get(int(value))
    except (TypeError, ValueError):
        return None


def _instance_view(
    raw: dict[str, Any], problem: Problem | None
) -> tuple[dict[str, Any] | None, list[Any], bool]:
    """(best_known mapping, claims, whether the file's best_known is this instance's).

    known.yaml's best_known and claims are for the instance in its `params` (all instances if
    it has neither params nor a `values_by_<param>` row for this instance); other instances
    take their value from a `values_by_<param>` table, whose rows are a number or a mapping
    like best_known (missing fields come from best_known) with, optionally, the instance's own
    `claimed` list and `proven_bound`.
    """
    best, claimed = raw.get("best_known"), list(raw.get("claimed") or [])
    own = raw.get("params") or {}
    if problem is None or (
        own and all(str(problem.params.get(k)) == str(v) for k, v in own.items())
    ):
        return best, claimed, True
    defaults = {k: v for k, v in (best or {}).items() if k in ("citation", "status", "bound_kind")}
    for key, table in raw.items():
        if not key.startswith("values_by_") or key[len("values_by_") :] not in problem.params:
            continue
        row = _lookup(table, problem.params[key[len("values_by_") :]])
        if row is None:
            continue
        if not isinstance(row, dict):
            return {**defaults, "value": row}, [], False
        return {**defaults, **row}, list(row.get("claimed") or []), False
    if not own:
        return best, claimed, True
    return None, [], False


def _bound(d: Any, kind: str, source: str) -> KnownResult | None:
    """A bound row of an instance ({value, citation, date}) as a KnownResult of kind bound."""
    if not isinstance(d, dict) or _num(d.get("value")) is None:
        return None
    return KnownResult(
        value=d["value"],
        citation=str(d.get("citation") or ""),
        kind="bound",
        date=str(d["date"]) if d.get("date") else None,
        status=str(d.get("status") or kind),
        bound_kind=kind,
        note=str(d.get("note") or ""),
        source=source,
    )


def read_known_yaml(path: Path) -> dict[str, Any]:
    """Read and check a known.yaml (unknown keys are errors, so a typo is not silently dropped)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise KnownError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    from evolve.schemas import validate
    from evolve.schemas.known import KnownFile

    try:
        validate(KnownFile, raw, str(path))
    except ValueError as exc:
        raise KnownError(str(exc)) from None
    return raw


def _result(
    d: dict[str, Any], kind: str, key: str | None, source: str, whole: bool = False
) -> KnownResult | None:
    value = d.get("value") if whole else _pick(d.get("value"), key)
    if value is None:
        return None
    rec = d.get("exact_recomputed", d.get("recomputed"))
    return KnownResult(
        value=value,
        citation=str(d.get("citation") or d.get("who") or d.get("holder") or ""),
        kind=kind,
        date=str(d["date"]) if d.get("date") else None,
        status=str(d.get("status") or ""),
        bound_kind=d.get("bound_kind") or d.get("bound_type"),
        recomputed=_num(_pick(rec, key)),
        note=str(d.get("note") or ""),
        source=source,
    )


def _better(direction: str | None, a: float, b: float) -> bool:
    return a > b if direction == "max" else a < b


def strongest(r: KnownResult, direction: str | None) -> float | None:
    """The harder of a result's published and recomputed values to beat."""
    vals = [v for v in (r.number, r.recomputed) if v is not None]
    if not vals:
        return None
    return max(vals) if direction == "max" else min(vals)


def _circles_from_rows(data: Any) -> dict[str, Any] | None:
    """Published packings list circles as rows (x, y, r); the problem's outputs split them."""
    rows = data.get("circles") if isinstance(data, dict) else None
    a = np.asarray(rows, dtype=float) if rows is not None else None
    if a is None or a.ndim != 2 or a.shape[1] != 3:
        return None
    return {"centers": a[:, :2], "radii": a[:, 2]}


# Readers of construction files whose data is not laid out as the problem's outputs, by
# problem name (a known.yaml construction can instead say `outputs: {name: key.path}`).
CONSTRUCTION_ADAPTERS = {"packing/circles": _circles_from_rows}


def _construction_outputs(
    problem: Problem, data: Any, mapping: dict[str, str] | None, key: str | None
) -> dict[str, Any] | None:
    """Read a construction's data as the problem's outputs (None if it has no such instance)."""
    names = list(problem.outputs.arrays)

    def lookup(path: str) -> Any:
        try:
            filled = str(path).format(**problem.params)
        except (KeyError, IndexError, ValueError) as exc:
            raise KnownError(
                f"{problem.path / 'known.yaml'}: construction outputs path {path!r} does not "
                f"fit params {dict(problem.params)}: {type(exc).__name__}: {exc}"
            ) from None
        node = data
        for part in filled.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    adapter = CONSTRUCTION_ADAPTERS.get(problem.name)
    if mapping:
        out = {n: lookup(p) for n, p in mapping.items()}
    elif adapter is not None and (adapted := adapter(data)) is not None:
        out = adapted
    elif isinstance(data, dict) and all(n in data for n in names):
        out = {n: data[n] for n in names}
    elif isinstance(data, dict) and len(names) == 1 and len(data) == 1:
        out = {names[0]: next(iter(data.values()))}
    elif isinstance(data, list) and len(names) == 1:
        out = {names[0]: data}
    else:
        return None
    # A table of constructions keyed by instance (e.g. one ruler per n): take this instance's.
    for n, v in list(out.items()):
        if isinstance(v, dict):
            out[n] = v.get(key) if key is not None else None
    if any(v is None for v in out.values()):
        return None
    return out


def load_constructions(
    problem: Problem, raw: dict[str, Any], key: str | None
) -> tuple[list[Construction], list[str]]:
    found: list[Construction] = []
    problems: list[str] = []
    for c in raw.get("constructions") or []:
        path = problem.path / c["file"]
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(f"construction {c['file']} unreadable: {exc}")
            continue
        data = doc.get("data", doc) if isinstance(doc, dict) else doc
        outs = _construction_outputs(problem, data, c.get("outputs"), key)
        if outs is None:
            continue  # not this instance, or not in this problem's output names
        try:
            outs = problem.check_outputs(outs)
        except ValueError as exc:
            problems.append(f"construction {c['file']} does not fit the outputs: {exc}")
            continue
        value = (
            _num(_pick(doc.get("recomputed_value", doc.get("published_value")), key))
            if isinstance(doc, dict)
            else None
        )
        if isinstance(doc, dict) and isinstance(doc.get("published_value"), list):
            value = None  # a list of values per instance: the evaluator recomputes it
        found.append(
            Construction(
                file=str(c["file"]),
                name=str(
                    c.get("name")
                    or (doc.get("id") if isinstance(doc, dict) else None)
                    or Path(c["file"]).stem
                ),
                attribution=str(
                    c.get("attribution")
                    or (doc.get("attribution", "") if isinstance(doc, dict) else "")
                ),
                value=value,
                outputs=outs,
            )
        )
    return found, problems


def known_table(problem: Problem | None = None, *, entry_id: str | None = None) -> KnownTable:
    """The known results for a loaded problem (its instance), or for a catalogue entry by id."""
    raw: dict[str, Any] = {}
    sources: list[str] = []
    if problem is not None and (problem.path / "known.yaml").exists():
        raw = read_known_yaml(problem.path / "known.yaml")
        sources.append(str(problem.path / "known.yaml"))
    cat_id = entry_id or (problem.literature_id if problem else None) or raw.get("id")
    entry = catalogue_entry(cat_id) or {}
    if entry:
        sources.append(f"catalogue entry {cat_id} (as of {entry.get('as_of')})")
    whole = problem is None  # no instance: show tables whole
    cat_key = instance_key(raw.get("catalogue_instance"), problem)
    direction = (
        raw.get("direction") or entry.get("direction") or (problem.direction if problem else None)
    )
    # A direction that disagrees with problem.yaml would invert every verdict: refuse it.
    if problem is not None:
        for where, given in (
            (sources[0] if raw else "known.yaml", raw.get("direction")),
            (f"catalogue entry {cat_id}", entry.get("direction")),
        ):
            if given and given != problem.direction:
                raise KnownError(
                    f"{where} says direction {given!r} but {problem.path / 'problem.yaml'} says "
                    f"{problem.direction!r}; make them agree"
                )

    best_raw, claimed_raw, _ = _instance_view(raw, problem)
    best = _result(best_raw, "best_known", None, "known.yaml", whole) if best_raw else None
    as_of = str(raw["as_of"]) if raw.get("as_of") else None
    claimed = [r for d in claimed_raw if (r := _result(d, "claimed", None, "known.yaml", whole))]
    history = [
        r
        for d in raw.get("history") or []
        if (r := _result(d, "history", None, "known.yaml", True))
    ]
    bounds: list[KnownResult] = []
    proven = _bound((best_raw or {}).get("proven_bound"), "proven", "known.yaml")
    uncertified = _bound((best_raw or {}).get("uncertified_bound"), "uncertified", "known.yaml")
    bounds.extend(b for b in (proven, uncertified) if b is not None)

    if entry:
        cbest = _result(entry.get("best_known") or {}, "best_known", cat_key, "catalogue", whole)
        if cbest and cbest.date is None and entry.get("date"):
            cbest.date = str(entry["date"])
        if cbest is not None and cbest.number is not None:
            if cbest.disputed:
                claimed.append(KnownResult(**{**cbest.to_dict(), "kind": "claimed"}))
            elif best is None or best.number is None:
                best, as_of = cbest, str(entry.get("as_of") or as_of or "")
            else:
                cb, kb = strongest(cbest, direction), strongest(best, direction)
                if cb is not None and kb is not None and _better(direction, cb, kb):
                    best, as_of = cbest, str(entry.get("as_of") or as_of or "")
        for side, given in (entry.get("bounds") or {}).items():
            # A bound the source states in words ("1.014 (Sawin 2026; ...)") is shown as such.
            b = given if isinstance(given, dict) else {"value": given}
            r = _result(
                {**b, "bound_type": b.get("bound_type", f"{side} bound")},
                "bound",
                cat_key,
                "catalogue",
                whole,
            )
            if r is None:
                continue
            if r.disputed:
                if not any(
                    c.number is not None
                    and r.number is not None
                    and math.isclose(c.number, r.number)
                    for c in claimed
                ):
                    claimed.append(KnownResult(**{**r.to_dict(), "kind": "claimed"}))
            elif not raw:
                bounds.append(r)
        if not raw:
            history = [
                x
                for d in entry.get("history") or []
                if (x := _result(d, "history", cat_key, "catalogue", True))
            ]
    if best is not None and as_of is None:
        as_of = str(entry.get("as_of") or "") or None

    erdos_num = raw.get("erdos_problem", entry.get("erdos_problem"))
    key = instance_key(raw.get("catalogue_instance"), problem)
    constructions, problems = (
        load_constructions(problem, raw, key) if problem is not None else ([], [])
    )
    title = str(
        raw.get("title") or entry.get("title") or (problem.title if problem else cat_id or "")
    )
    return KnownTable(
        id=cat_id,
        title=title,
        direction=direction,
        as_of=as_of,
        instance=instance_label(problem),
        best=best,
        claimed=claimed,
        history=history,
        bounds=bounds,
        constructions=constructions,
        erdos=erdos_status(erdos_num),
        erdos_problem=erdos_num,
        sources=sources,
        problems=problems,
        proven_bound=proven,
        metric=str(raw["metric"]) if raw.get("metric") else None,
    )
