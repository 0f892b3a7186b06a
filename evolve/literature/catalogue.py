"""The shared catalogue of known results and the Erdős problems index, and merging updates.

The catalogue (data/catalogue.json, copied from the project's reference data with every
citation) holds one entry per problem family: statement, direction, best known value with its
citation and status, history, and the files of published constructions. Each problem folder's
known.yaml is the curated view of one entry; the catalogue covers everything else and is what
`evolve literature update FILE` brings up to date.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
DIRECTIONS = ("min", "max")


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; the message names the entry and the fix."""


def catalogue_path() -> Path:
    """The catalogue in use (override with EVOLVE_CATALOGUE, e.g. a user-writable copy)."""
    return Path(os.environ.get("EVOLVE_CATALOGUE", DATA_DIR / "catalogue.json"))


def erdos_index_path() -> Path:
    return Path(os.environ.get("EVOLVE_ERDOS_INDEX", DATA_DIR / "erdos_index.json"))


@lru_cache(maxsize=8)
def _load_json(path: str, mtime: float) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _read(path: Path) -> dict[str, Any]:
    try:
        return copy.deepcopy(_load_json(str(path), path.stat().st_mtime))
    except FileNotFoundError:
        raise CatalogueError(f"catalogue file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{path} is not valid JSON: {exc}") from None


def load_catalogue(path: Path | None = None) -> dict[str, Any]:
    """The whole catalogue, validated: {as_of, source, entries: [...]}."""
    path = path or catalogue_path()
    data = _read(path)
    validate_catalogue(data, str(path))
    return data


def catalogue_entry(entry_id: str | None, path: Path | None = None) -> dict[str, Any] | None:
    """One catalogue entry by id, with the catalogue's as_of filled in when it has none."""
    if not entry_id:
        return None
    cat = load_catalogue(path)
    for entry in cat["entries"]:
        if entry.get("id") == entry_id:
            entry.setdefault("as_of", cat.get("as_of"))
            return entry
    return None


@dataclass(frozen=True)
class ErdosStatus:
    """A problem's number and status in the Erdős problems database (erdosproblems.com)."""

    number: int
    status: str  # open, proved, disproved, solved, ... as in the index
    prize: str = ""
    as_of: str = ""
    source: str = ""


def erdos_status(number: int | None) -> ErdosStatus | None:
    """Look up an Erdős problem's status in the bundled index snapshot."""
    if number is None:
        return None
    path = erdos_index_path()
    index = _read(path)
    row = index.get("problems", {}).get(str(int(number)))
    if row is None:
        return None
    status, prize = (
        (row + ["", ""])[:2] if isinstance(row, list) else (row.get("status"), row.get("prize", ""))
    )
    return ErdosStatus(
        int(number),
        str(status),
        str(prize or ""),
        str(index.get("as_of", "")),
        str(index.get("source", "")),
    )


# --- validation -----------------------------------------------------------------------------
def infer_as_of(data: dict[str, Any]) -> str | None:
    """A catalogue's as-of date: its `as_of`, else the newest date among its source snapshots."""
    if data.get("as_of"):
        return str(data["as_of"])
    dates = re.findall(
        r"\b(20\d\d-\d\d(?:-\d\d)?)\b", json.dumps(data.get("sources_snapshots", {}))
    )
    return max(dates)[:7] if dates else None


def validate_catalogue(data: Any, where: str = "catalogue") -> None:
    """Raise CatalogueError naming the first problem found (the schema is
    evolve/schemas/catalogue.py; the shape is documented in docs/literature.md)."""
    from evolve.schemas import validate
    from evolve.schemas.catalogue import Catalogue

    try:
        validate(Catalogue, data, where)
    except ValueError as exc:
        raise CatalogueError(str(exc)) from None


# --- merging --------------------------------------------------------------------------------
@dataclass
class MergeReport:
    """What an update did: entries added and updated, and conflicts left as they were."""

    as_of_old: str | None
    as_of_new: str | None
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (entry id, why)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of_old": self.as_of_old,
            "as_of_new": self.as_of_new,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "conflicts": [{"id": i, "reason": r} for i, r in self.conflicts],
        }


def _numeric(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _compare_values(direction: str, old: Any, new: Any) -> list[str]:
    """Reasons the new best value would be a regression (empty if none), per instance for tables."""
    if direction not in DIRECTIONS:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in old:
            if key in new:
                out += [f"[{key}] {r}" for r in _compare_values(direction, old[key], new[key])]
            else:
                out.append(f"[{key}] is missing from the new catalogue")
        return out
    a, b = _numeric(old), _numeric(new)
    if a is None or b is None:
        return (
            []
            if old == new or old is None
            else ([] if b is not None else [f"value {old!r} -> {new!r}"])
        )
    worse = b > a if direction == "min" else b < a
    return [f"best known would get worse: {a!r} -> {b!r}"] if worse else []


def _merge_history(old: list[Any], new: list[Any]) -> list[Any]:
    out = list(old)
    keys = {json.dumps(h, sort_keys=True) for h in old}
    for h in new:
        if json.dumps(h, sort_keys=True) not in keys:
            out.append(h)
    return out


def merge_catalogue(
    current: dict[str, Any], update: dict[str, Any], *, take_theirs: bool = False
) -> tuple[dict[str, Any], MergeReport]:
    """Merge a newer catalogue into the current one.

    New entries are added. A changed entry is updated when nothing in it conflicts; a conflict
    (a different direction, a best value that gets worse, a status downgrade of the same value,
    an older catalogue) is reported and the current entry kept, unless take_theirs.
    """
    validate_catalogue(current, "current catalogue")
    validate_catalogue(update, "update")
    old_as_of, new_as_of = infer_as_of(current), infer_as_of(update)
    report = MergeReport(old_as_of, new_as_of)
    merged = copy.deepcopy(current)
    by_id = {e["id"]: i for i, e in enumerate(merged["entries"])}
    older = bool(old_as_of and new_as_of and new_as_of < old_as_of)
    for entry in update["entries"]:
        eid = entry["id"]
        fresh = copy.deepcopy(entry)
        fresh.setdefault("as_of", new_as_of)
        if eid not in by_id:
            merged["entries"].append(fresh)
            by_id[eid] = len(merged["entries"]) - 1
            report.added.append(eid)
            continue
        old = merged["entries"][by_id[eid]]
        same = {k: v for k, v in old.items() if k != "as_of"} == {
            k: v for k, v in entry.items() if k != "as_of"
        }
        if same:
            report.unchanged.append(eid)
            continue
        reasons: list[str] = []
        if older:
            reasons.append(
                f"the update is as of {new_as_of}, older than the catalogue's {old_as_of}"
            )
        if old.get("direction") != entry.get("direction"):
            reasons.append(f"direction {old.get('direction')!r} -> {entry.get('direction')!r}")
        direction = str(old.get("direction"))
        obk, nbk = old.get("best_known") or {}, entry.get("best_known") or {}
        reasons += _compare_values(direction, obk.get("value"), nbk.get("value"))
        if (
            obk.get("value") == nbk.get("value")
            and str(obk.get("status", "")).startswith("verified")
            and not str(nbk.get("status", "")).startswith("verified")
            and nbk.get("status") is not None
        ):
            reasons.append(
                f"status {obk.get('status')!r} -> {nbk.get('status')!r} for the same value"
            )
        if reasons and not take_theirs:
            report.conflicts.append((eid, "; ".join(reasons)))
            continue
        fresh["history"] = _merge_history(old.get("history", []), entry.get("history", []))
        merged["entries"][by_id[eid]] = fresh
        report.updated.append(eid)
    if new_as_of and (not old_as_of or new_as_of > old_as_of) and (report.added or report.updated):
        merged["as_of"] = new_as_of
    merged["n_entries"] = len(merged["entries"])
    snaps = dict(merged.get("sources_snapshots") or {})
    snaps.update(update.get("sources_snapshots") or {})
    if snaps:
        merged["sources_snapshots"] = snaps
    return merged, report


def update_catalogue(
    update_file: Path,
    *,
    target: Path | None = None,
    take_theirs: bool = False,
    dry_run: bool = False,
) -> MergeReport:
    """Merge `update_file` into the catalogue at `target` (default: the one in use) and save it."""
    target = target or catalogue_path()
    try:
        update = json.loads(Path(update_file).read_text())
    except FileNotFoundError:
        raise CatalogueError(f"update file {update_file} does not exist") from None
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{update_file} is not valid JSON: {exc}") from None
    current = _read(target)
    merged, report = merge_catalogue(current, update, take_theirs=take_theirs)
    if not dry_run and (report.added or report.updated):
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(merged, indent=1, ensure_ascii=False) + "\n")
        os.replace(tmp, target)
    return report
