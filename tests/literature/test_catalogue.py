"""The catalogue: known results newest first, the Erdős index, `evolve literature` and updates."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from evolve.literature import (
    CatalogueError,
    check,
    erdos_status,
    known_results,
    literature_main,
    load_catalogue,
    merge_catalogue,
)
from evolve.problem import load_problem


def test_packaged_catalogue_and_index_keep_their_sources():
    cat = load_catalogue()
    assert cat["as_of"] == "2026-08" and len(cat["entries"]) == 43
    assert "teorth/optimizationproblems" in cat["sources_snapshots"]
    e36 = erdos_status(36)
    assert (
        e36.status == "open" and "teorth/erdosproblems" in e36.source and e36.as_of == "2026-08-08"
    )
    assert erdos_status(30).prize == "$1000"
    assert erdos_status(99999) is None


def test_known_results_newest_first_with_citations():
    rows = known_results("erdos/min_overlap")
    assert [r.kind for r in rows[:2]] == ["claimed", "best_known"]  # 2026-04 (disputed), 2026-03
    assert rows[0].status == "disputed" and "SimpleTES" in rows[0].citation
    assert rows[-1].value == 0.5 and "Erdős 1955" in rows[-1].citation
    assert all(r.citation for r in rows)


def test_known_results_for_a_catalogue_only_entry():
    rows = known_results("sidon_autocorrelation_C1a")
    assert rows[0].kind == "best_known" and rows[0].value == pytest.approx(1.50286286)


def test_literature_command_prints_what_is_known(capsys):
    assert literature_main(["erdos/min_overlap"]) == 0
    out = capsys.readouterr().out
    assert "Erdős problem #36: open" in out
    assert out.index("0.380868") < out.index("0.380871") < out.index("0.380924")  # newest first
    assert "Haugland" in out and "haugland2016_51step.json" in out


def test_literature_command_json(capsys):
    assert literature_main(["erdos/golomb", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["best_known"]["value"] == 85 and data["erdos"]["number"] == 30
    assert data["constructions"][0]["file"] == "constructions/optimal_n1_28.json"


def test_literature_command_unknown_problem_is_one_line(capsys):
    assert literature_main(["no/such_problem"]) == 1
    err = capsys.readouterr().err
    assert "unknown problem 'no/such_problem'" in err and "Traceback" not in err


# --- updates ----------------------------------------------------------------------------------
def _entry(cat, eid):
    return next(e for e in cat["entries"] if e["id"] == eid)


def _newer(cat):
    new = copy.deepcopy(cat)
    new.pop("as_of")
    new["sources_snapshots"]["example/newer-table"] = "abc123 (2026-10-01)"
    new["entries"].append(
        {
            "id": "new_problem",
            "erdos_problem": 1,
            "title": "A new entry",
            "direction": "max",
            "best_known": {"value": 3.0, "citation": "Someone (2026)", "status": "read_only"},
        }
    )
    better = _entry(new, "sidon_autocorrelation_C1a")
    better["best_known"]["value"] = 1.5028
    better["best_known"]["citation"] = "Newer et al. (2026)"
    worse = _entry(new, "erdos_minimum_overlap")
    worse["best_known"]["value"] = 0.3809
    flipped = _entry(new, "second_autocorrelation_C2")
    flipped["direction"] = "min"
    return new


def test_merge_adds_updates_and_reports_conflicts():
    cat = load_catalogue()
    merged, report = merge_catalogue(cat, _newer(cat))
    assert report.as_of_new == "2026-10" and merged["as_of"] == "2026-10"
    assert report.added == ["new_problem"]
    assert report.updated == ["sidon_autocorrelation_C1a"]
    conflicts = dict(report.conflicts)
    assert "best known would get worse: 0.380871 -> 0.3809" in conflicts["erdos_minimum_overlap"]
    assert "direction 'max' -> 'min'" in conflicts["second_autocorrelation_C2"]
    assert _entry(merged, "erdos_minimum_overlap")["best_known"]["value"] == 0.380871  # kept
    assert _entry(merged, "sidon_autocorrelation_C1a")["best_known"]["value"] == 1.5028
    assert _entry(merged, "sidon_autocorrelation_C1a")["as_of"] == "2026-10"
    assert len(report.unchanged) == 40


def test_merge_take_theirs_and_older_update():
    cat = load_catalogue()
    merged, report = merge_catalogue(cat, _newer(cat), take_theirs=True)
    assert (
        not report.conflicts
        and _entry(merged, "erdos_minimum_overlap")["best_known"]["value"] == 0.3809
    )
    old = _newer(cat)
    old["as_of"] = "2025-01"
    _, report = merge_catalogue(cat, old)
    assert any("older than the catalogue's 2026-08" in why for _, why in report.conflicts)


def test_invalid_update_is_refused(tmp_path):
    with pytest.raises(CatalogueError, match="appears twice"):
        merge_catalogue(load_catalogue(), {"entries": [{"id": "a"}, {"id": "a"}]})
    with pytest.raises(CatalogueError, match="has no citation"):
        merge_catalogue(load_catalogue(), {"entries": [{"id": "a", "best_known": {"value": 1}}]})


def test_update_command_writes_the_catalogue_and_verdicts_follow(tmp_path, catalogue_copy, capsys):
    cat = load_catalogue()
    new = _newer(cat)
    # A newer, better value for the minimum overlap, verified: the check must now use it.
    mo = _entry(new, "erdos_minimum_overlap")
    mo["best_known"] = {
        **mo["best_known"],
        "value": 0.38086,
        "exact_recomputed": 0.38086,
        "citation": "Better et al. (2026)",
        "date": "2026-09",
    }
    update = tmp_path / "newer.json"
    update.write_text(json.dumps(new))
    rc = literature_main(["update", str(update)])
    out = capsys.readouterr().out
    assert rc == 1  # there are conflicts (the flipped direction)
    assert "conflict second_autocorrelation_C2: direction" in out
    assert "added    new_problem" in out
    saved = json.loads(catalogue_copy.read_text())
    assert (
        saved["as_of"] == "2026-10"
        and _entry(saved, "erdos_minimum_overlap")["best_known"]["value"] == 0.38086
    )

    p = load_problem("erdos/min_overlap")
    outs = {"h": np.full(10, 0.5)}
    v = check(p, outs, p.score(outs))
    assert (
        v.citation == "Better et al. (2026)"
        and v.as_of == "2026-10"
        and v.reference_value == 0.38086
    )


def test_update_dry_run_writes_nothing(tmp_path, catalogue_copy, capsys):
    before = catalogue_copy.read_text()
    update = tmp_path / "newer.json"
    update.write_text(json.dumps(_newer(load_catalogue())))
    literature_main(["update", str(update), "--dry-run"])
    assert "would merge" in capsys.readouterr().out
    assert catalogue_copy.read_text() == before


def test_update_with_a_broken_file_is_one_line(tmp_path, catalogue_copy, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert literature_main(["update", str(bad)]) == 1
    assert "is not valid JSON" in capsys.readouterr().err
