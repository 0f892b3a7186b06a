"""`evolve report --format html`, `evolve plot` and `evolve export` on real runs (the local
mutator and the stub LLM, through `evolve run`) and on synthetic databases of a chosen size."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PAYLOAD
from page_parse import Page
from synth import make_run

from evolve.cli import main
from evolve.population.database import Database
from evolve.report.html import SECTIONS
from evolve.report.run_data import RunData

pytestmark = pytest.mark.slow


def _render(run: Path, *extra: str) -> tuple[Path, str]:
    assert main(["report", str(run), "--format", "html", *extra]) == 0
    out = run / "report.html"
    return out, out.read_text(encoding="utf-8")


def _check_self_contained(page: Page) -> None:
    assert "script" not in page.tags
    assert page.outside_links() == []
    csp = page.meta("Content-Security-Policy")
    assert csp and "default-src 'none'" in csp and "script-src" not in csp


def test_local_run_report_has_every_section_and_the_full_best(local_run):
    # a separate interpreter, to see that a report never imports Ray
    code = (
        "import sys; from evolve.cli import main; "
        f"rc = main(['report', {str(local_run)!r}, '--format', 'html']); "
        "sys.exit(rc or (3 if 'ray' in sys.modules else 0))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = (local_run / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert page.ids == {sid for sid, _ in SECTIONS}
    _check_self_contained(page)
    assert page.meta("refresh") is None  # the run is over
    db = Database(local_run / "evolve.db", readonly=True)
    run = db.run()
    (best,) = db.best(run["id"], 1)
    grids = len({e["island"] for e in db.elites(run["id"])})
    assert db.llm_totals(run["id"])["cost_usd"] == 0  # the local mutator is free
    db.close()
    # best so far against evaluations and wall time (no cost spent), islands, failures, grids
    assert text.count("<svg") == 2 + 1 + 1 + grids
    assert "no curve against dollars" in text
    assert best["code"] in page.pres  # whole, never truncated
    body = "".join(page.text)
    assert "start-up not counted" in body  # what the wall time measures
    # the evaluating node, cut short in the lineage table and whole on hover
    assert best["node"] and f'title="{best["node"]}">{best["node"][:12]}</span>' in text
    assert f"program #{best['id']}" in body
    assert "below_known" in body  # the literature verdict of the best


def test_grid_axes_are_recorded_and_labelled(local_run):
    db = sqlite3.connect(local_run / "evolve.db")
    rows = db.execute("SELECT island, axes FROM grids").fetchall()
    islands = db.execute("SELECT COUNT(DISTINCT island) FROM elites").fetchone()[0]
    db.close()
    assert len(rows) == islands >= 1
    for _, axes in rows:
        for axis in json.loads(axes):
            assert len(axis["edges"]) == axis["bins"] + 1
            assert axis["edges"] == sorted(axis["edges"])
    _, text = _render(local_run)
    names = {a["name"] for _, axes in rows for a in json.loads(axes)}
    grids = text[text.index('id="grids"') : text.index('id="failures"')]
    assert names and all(f">{n}<" in grids for n in names)  # axis labels


def test_untrusted_text_from_a_stub_llm_run_comes_out_escaped(stub_run):
    _, text = _render(stub_run)
    page = Page(text)
    _check_self_contained(page)
    assert PAYLOAD not in text  # never raw
    shown = [p for p in page.pres if PAYLOAD in p]  # ...but shown, as text
    assert any(p.startswith("--- parent") for p in shown)  # a diff
    assert any(p.startswith("Idea ") for p in shown)  # an LLM answer
    assert any("EVOLVE-BLOCK-START" in p for p in shown)  # a child's code
    body = "".join(page.text)
    assert "openai/stub" in body
    db = Database(stub_run / "evolve.db", readonly=True)
    cost = db.llm_totals(db.run()["id"])["cost_usd"]
    db.close()
    assert cost > 0 and f"${cost:.4f}" in body
    # the LLM table's row, against the figures computed here straight from the file
    con = sqlite3.connect(stub_run / "evolve.db")
    calls, tin, tout, errors = con.execute(
        "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), "
        "SUM(error IS NOT NULL AND error != '') FROM llm_calls"
    ).fetchone()
    latencies = [r[0] for r in con.execute("SELECT latency_s FROM llm_calls")]
    best, improvements = -float("inf"), 0
    for fitness, mode in con.execute(
        "SELECT fitness, mode FROM programs WHERE valid AND status != 'rejected' ORDER BY seq"
    ):
        if fitness > best:
            best, improvements = fitness, improvements + (mode != "seed")
    con.close()
    llm = text[text.index('id="llm"') : text.index('id="literature"')]
    row = (
        f"<td>openai/stub</td><td class=n>{calls}</td><td class=n>{tin:,}</td>"
        f"<td class=n>{tout:,}</td><td class=n>${cost:.4f}</td><td class=n>{errors}</td>"
        f"<td class=n>{statistics.median(latencies):.3g} s</td>"
    )
    assert row in llm
    assert f"<td class=n>{improvements}</td><td class=n>{improvements / cost:.4g}</td>" in llm
    assert improvements > 0 and calls > 0 and tin > 0


def test_min_and_max_leaderboards_and_seed_statistics(tmp_path):
    root = tmp_path / "sweep"
    finals = {}
    for seed, drift in ((0, 0.5), (1, 2.0), (2, 1.0)):
        make_run(root / f"max-{seed}", problem="synthetic/max", direction="max", n=60,
                 seed=seed, drift=drift)  # fmt: skip
    for seed, drift in ((0, 2.0), (1, 0.5)):
        make_run(root / f"min-{seed}", problem="synthetic/min", direction="min", n=60,
                 seed=seed, drift=drift)  # fmt: skip
    for db_file in root.rglob("evolve.db"):
        db = Database(db_file, readonly=True)
        run = db.run()
        finals[(run["problem"], run["seed"])] = db.best(run["id"], 1)[0]["score"]
        db.close()
    site = tmp_path / "site"
    assert main(["report", str(root), "--format", "html", "-o", str(site)]) == 0
    index = Page((site / "index.html").read_text())
    _check_self_contained(index)
    for problem, direction in (("synthetic/max", "max"), ("synthetic/min", "min")):
        text = (site / f"{problem.replace('/', '-')}.html").read_text()
        page = Page(text)
        _check_self_contained(page)
        board = text[text.index('id="leaderboard"') : text.index('id="seeds"')]
        # the run ids in the order the leaderboard lists them
        order = [int(s) for s in re.findall(r">synthetic-seed(\d+)</a>", board)]
        scores = [finals[(problem, s)] for s in order]
        assert scores == sorted(scores, reverse=direction == "max")
        assert len(order) == len([k for k in finals if k[0] == problem])
        seeds = text[text.index('id="seeds"') : text.index('id="curves"')]
        values = [v for (p, _), v in finals.items() if p == problem]
        assert f"<td class=n>{len(values)}</td>" in seeds
        assert f"{statistics.median(values):.10g}" in seeds
        assert f"{statistics.fmean(values):.10g}" in seeds
        links = [v for tag, a, v in page.links if tag == "a" and v.startswith("runs/")]
        assert len(links) == len(values) and all((site / v).exists() for v in links)
        # against evaluations and against cost (every synthetic call cost $0.002)
        assert text[text.index('id="curves"') :].count("<svg") == 2
        # the generalisation gap of each best: train, validation, test side by side
        assert "best's train" in board and "best's test_small" in board


# noise 0.01: ~650 new bests; 0.003: ~1,600 (one child in six, as a local mutator's run has)
@pytest.mark.parametrize("noise", [0.01, 0.003])
def test_ten_thousand_evaluations_fit_the_size_budget(tmp_path, noise):
    from evolve.report.html import esc

    # as an LLM run that climbs: hundreds of new bests, most children bred from the best, each
    # with a diff and an answer of 30 lines
    run = make_run(tmp_path / "big", n=10_000, drift=3.0, payload="big", noise=noise, climb=0.8,
                   text_lines=30)  # fmt: skip
    out, text = _render(run)
    assert "Generalisation of the best (picked by validation)" in text
    assert ">test_small<" in text and ">test_heldout<" in text  # its own and the held-out test
    size = out.stat().st_size
    print(f"report of 10,000 programs, noise {noise}: {size / 1e6:.2f} MB")
    assert size < 2_000_000
    db = Database(run / "evolve.db", readonly=True)
    rid = db.run()["id"]
    best, new_bests = -float("inf"), []
    for r in db.timeline(rid):
        if r["valid"] and r["fitness"] > best:
            best, new_bests = r["fitness"], [*new_bests, r["id"]]
    best_diff = db.programs_by_id(rid, [new_bests[-1]])[new_bests[-1]]["diff"]
    db.close()
    assert len(new_bests) > 300
    # every improvement step is listed, in order...
    improvements = text[text.index('id="improvements"') : text.index('id="grids"')]
    listed = re.findall(r'class="step(?: left-out)?"(?: id="[^"]*")?>(?:<summary>)?#(\d+) ',
                        improvements)  # fmt: skip
    assert [int(i) for i in listed] == new_bests
    # ...the budget was needed: the texts nearest the best are in, the oldest say where to look
    assert esc(best_diff) in text
    assert "texts left out" in improvements and "evolve export</code> writes them all" in text


def test_watch_rewrites_while_running_and_stops_at_the_end(tmp_path):
    run = make_run(tmp_path / "live", n=30)
    db = Database(run / "evolve.db")
    rid = db.run()["id"]
    db.start_run(rid, "synthetic/max", 0, {}, {})  # running again, as a resumed run
    db.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evolve.cli",
            "report",
            str(run),
            "--format",
            "html",
            "--watch",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = run / "report.html"
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert Page(out.read_text()).meta("refresh") == "1"
        db = Database(run / "evolve.db")
        db.finish_run(rid, "completed")
        db.close()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "run completed" in stdout
    page = Page(out.read_text())
    assert page.meta("refresh") is None


def test_export_writes_one_line_per_program(local_run, tmp_path):
    out = tmp_path / "new" / "folder" / "programs.jsonl"  # made, as report and plot do
    assert main(["export", str(local_run), "--format", "jsonl", "-o", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    db = sqlite3.connect(local_run / "evolve.db")
    rows = db.execute("SELECT id, parent_id, code, score FROM programs ORDER BY seq").fetchall()
    db.close()
    assert [(r["id"], r["parent_id"], r["code"], r["score"]) for r in lines] == rows
    keys = {"island", "generation", "model", "status", "metrics", "features", "diff", "mode"}
    assert all(keys <= r.keys() for r in lines)
    assert all(isinstance(r["metrics"], dict) for r in lines)


def test_plot_writes_a_figure_of_seeds_grouped(tmp_path):
    root = tmp_path / "runs"
    for seed in range(3):
        make_run(root / f"s{seed}", n=40, seed=seed)
    for ext, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")):
        fig = tmp_path / f"fig.{ext}"
        assert main(["plot", str(root), "-o", str(fig)]) == 0
        assert fig.read_bytes()[:8].startswith(magic)
    svg = (tmp_path / "fig.svg").read_text()
    assert "<script" not in svg
    # the three seeds drawn as one experiment: its median labelled with n, against evaluations
    # and against cost (every synthetic call cost $0.002)
    assert svg.count("synthetic/max · stub/model-a (n=3)") == 2
    assert "LLM cost ($)" in svg and "evaluations" in svg
    assert main(["plot", str(root), "-o", str(tmp_path / "fig.jpg")]) == 2


def test_bad_inputs_fail_in_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--format", "html"]) == 2
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 10)
    assert main(["report", str(junk), "--format", "html"]) == 2
    assert main(["export", str(tmp_path / "nope")]) == 2
    (tmp_path / "out").mkdir()
    assert main(["export", str(junk), "-o", str(tmp_path / "out" / "p.jsonl")]) == 2
    assert list((tmp_path / "out").iterdir()) == []  # no partial export left behind
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty), "--format", "html"]) == 2
    assert main(["report", str(empty), "--watch", "5"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert all(line.startswith("error:") for line in err.strip().splitlines())


def test_a_late_literature_check_is_marked_on_the_curve(tmp_path):
    from evolve.report.charts import best_so_far
    from evolve.report.run_data import RunData

    run = make_run(tmp_path / "late", n=120, best_known=5.0)
    early = RunData.load(run).new_bests[1]
    # a check that finishes long after its program was found (the engine's checks queue)
    db = Database(run / "evolve.db")
    verdict = {"problem": "synthetic/max", "status": "below_known", "score": early.score,
               "best_known": 5.0, "citation": "A. Author (2020)", "as_of": "2026-01"}  # fmt: skip
    db.record_literature_check(db.run()["id"], early.id, verdict)
    db.close()
    data = RunData.load(run)
    assert data.checks[-1]["evaluation"] == data.evaluations  # recorded at the end
    for clock in ("evaluation", "seconds", "dollars"):
        (marks,) = [ln for ln in best_so_far(data, clock).axes[0].lines
                    if ln.get_label() == "literature check"]  # fmt: skip
        on_curve = {(getattr(p, clock), p.score) for p in data.new_bests}
        drawn = set(zip(marks.get_xdata(), marks.get_ydata(), strict=True))
        assert (getattr(early, clock), early.score) in drawn
        assert drawn <= on_curve  # every check sits on the best-so-far curve


def test_site_of_a_free_run_says_why_it_has_no_cost_curve(local_run, tmp_path):
    site = tmp_path / "site"
    assert main(["report", str(local_run.parent), "--format", "html", "-o", str(site)]) == 0
    text = (site / "erdos-min_overlap.html").read_text()
    curves = text[text.index('id="curves"') :]
    assert curves.count("<svg") == 1 and "no curves against dollars" in curves


def test_feedback_reasons_and_citations_come_out_escaped_and_events_are_marked(tmp_path):
    from evolve.report.charts import best_so_far
    from evolve.report.run_data import RunData

    run = make_run(tmp_path / "planted", n=120, payload=PAYLOAD, best_known=2.5)
    db = Database(run / "evolve.db")
    rid = db.run()["id"]
    bad = {"status": "crash", "error": f"Traceback: {PAYLOAD}", "valid": False}
    db.record_program(rid, {"island": 0, "generation": 1, "parent_id": 1, "code": "x = 1",
                            "code_hash": "planted", "diff": "", "mode": "diff",
                            "model": "stub/model-a", "evaluation": bad})  # fmt: skip
    db.record_reset(rid, 1, [1, 2])
    db.close()
    _, text = _render(run)
    page = Page(text)
    _check_self_contained(page)
    assert PAYLOAD not in text
    body = "".join(page.text)
    assert f"Traceback: {PAYLOAD}" in body  # a child's failure reason, as text
    assert f"A. Author, {PAYLOAD} Journal (2020)" in body  # a citation
    assert any(p.startswith("bound ") and PAYLOAD in p for p in page.pres)  # feedback
    data = RunData.load(run)
    assert data.migrations and data.resets
    for clock in ("evaluation", "seconds", "dollars"):
        labels = {ln.get_label() for ln in best_so_far(data, clock).axes[0].lines}
        assert {"migration", "island reset", "literature check", "seed", "best known"} <= labels


def test_failures_that_differ_only_in_their_numbers_group_together(tmp_path):
    run = make_run(tmp_path / "reasons", n=30)
    db = Database(run / "evolve.db")
    rid = db.run()["id"]
    reasons = [
        "after rescaling to sum n/2, height 1.01583 at step 11 exceeds 1",
        "after rescaling to sum n/2, height 1.2e-3 at step 12 exceeds 1",
        "after rescaling to sum n/2, height 1.0096 at step 9 exceeds 1",
        "TypeError: return arrays must be of ArrayType (line 15)",
    ]
    for k, reason in enumerate(reasons):
        bad = {"status": "bad_output", "error": reason, "valid": False}
        db.record_program(rid, {"island": 0, "generation": 1, "parent_id": 1, "code": f"x = {k}",
                                "code_hash": f"r{k}", "diff": "", "mode": "diff",
                                "model": "stub/model-a", "evaluation": bad})  # fmt: skip
    db.close()
    _, text = _render(run)
    (kind,) = [f for f in RunData.load(run).failures if f["kind"] == "bad_output"]
    assert [(e["count"], e["reason"], e["numbers_vary"]) for e in kind["reasons"]] == [
        (3, reasons[0], True),
        (1, reasons[3], False),
    ]
    failures = text[text.index('id="failures"') : text.index('id="llm"')]
    assert "the others differ in their numbers" in failures


def test_a_run_report_into_a_folder_named_with_a_slash(tmp_path):
    run = make_run(tmp_path / "run", n=20)
    assert (
        main(["report", str(run / "evolve.db"), "--format", "html", "-o", f"{tmp_path}/new/"]) == 0
    )
    assert (tmp_path / "new").is_dir() and (tmp_path / "new" / "report.html").is_file()
    assert main(["report", str(run), "--format", "html", "-o", str(tmp_path / "new")]) == 0
    assert main(["report", str(run), "--format", "html", "-o", str(tmp_path / "page.html")]) == 0
    assert Page((tmp_path / "page.html").read_text()).ids == {sid for sid, _ in SECTIONS}
