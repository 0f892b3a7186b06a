"""A static site over a folder of runs (a Hydra sweep, say): an index, one page per problem, one
page per run, all self-contained HTML with relative links, so the folder can be copied anywhere.

A problem's page ranks its runs best first in the problem's direction, groups the runs that
differ only by seed (n, best, median, mean and spread of their final bests: seeds are compared as
a distribution, not by the luckiest one) and overlays every run's best-so-far curve with each
group's median and min-max band.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from evolve.population.database import DatabaseError
from evolve.report import charts
from evolve.report.html import (
    duration,
    esc,
    figure,
    money,
    num,
    page,
    run_page,
    table,
    write_atomic,
)
from evolve.report.leaderboard import find_runs
from evolve.report.run_data import RunData, seed_groups


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _final(r: RunData) -> float | None:
    return r.best["score"] if r.best else None


def _rank(runs: list[RunData]) -> list[RunData]:
    """Best first in the problem's direction; runs with no valid program last."""
    direction = runs[0].direction if runs else "max"

    def key(r: RunData):
        s = _final(r)
        if s is None:
            return (1, 0.0)
        return (0, -s if direction == "max" else s)

    return sorted(runs, key=key)


def _spread(values: list[float]) -> str:
    return num(statistics.stdev(values), 4) if len(values) > 1 else "–"


def problem_page(problem: str, runs: list[RunData], links: dict[str, str]) -> str:
    ranked = _rank(runs)
    direction = ranked[0].direction
    # heuristic problems: the best's train / validation / test metrics side by side
    splits = sorted(
        {k for r in ranked for k in r.best_splits()},
        key=lambda k: (k != "train", k != "validation", k),
    )
    rows = []
    for k, r in enumerate(ranked, 1):
        bp = r.best_point
        v = r.best_verdict
        sm = r.best_splits()
        rows.append(
            [
                str(k),
                f'<a href="{esc(links[str(r.path)])}">{esc(r.run_id)}</a>',
                esc(r.run.get("seed")),
                num(_final(r)),
                f"evaluation {bp.evaluation}" if bp else "–",
                money(bp.dollars) if bp else "–",
                str(r.evaluations),
                money(r.cost),
                duration(r.wall_s),
                esc(v.get("status") if v else ""),
                esc(r.run.get("status")),
            ]
            + [num(sm.get(s), 6) for s in splits]
        )
    head = ["rank", "run", "seed", "best", "found at", "cost to best", "evaluations", "cost",
            "wall time", "verdict", "status"]  # fmt: skip
    head += [f"best's {esc(s)}" for s in splits]
    board = table(head, rows, {0, 3, 5, 6, 7, *range(11, len(head))})
    groups = seed_groups(ranked)
    grows = []
    for label, members in groups:
        finals = [s for s in (_final(r) for r in members) if s is not None]
        best = (max if direction == "max" else min)(finals) if finals else None
        grows.append(
            [
                esc(label),
                str(len(members)),
                esc(", ".join(str(r.run.get("seed")) for r in members)),
                num(best),
                num(statistics.median(finals)) if finals else "–",
                num(statistics.fmean(finals)) if finals else "–",
                _spread(finals),
                f"{num(min(finals))} – {num(max(finals))}" if finals else "–",
            ]
        )
    gtable = table(
        ["experiment", "n", "seeds", "best", "median", "mean", "std dev", "range"],
        grows,
        {1, 3, 4, 5, 6},
    )
    figs = [figure(charts.svg(charts.overlay(groups, "evaluation")), "against evaluations")]
    if any(r.cost > 0 for r in runs):
        figs.append(figure(charts.svg(charts.overlay(groups, "dollars")), "against LLM cost"))
    else:
        figs.append(
            '<p class="note">No LLM cost recorded (local or free models), so no curves against '
            "dollars.</p>"
        )
    verdict = next((r.best_verdict for r in ranked if r.best_verdict), None)
    known = (
        f'<p class="note">best known: {esc(verdict.get("best_known"))} as of '
        f"{esc(verdict.get('as_of'))} ({esc(verdict.get('citation'))})</p>"
        if verdict and verdict.get("best_known") is not None
        else ""
    )
    body = (
        '<p class=note><a href="index.html">← all problems</a></p>'
        f"<h1>{esc(problem)}</h1><p>{len(runs)} runs; "
        f"{'higher' if direction == 'max' else 'lower'} is better.</p>{known}"
        f'<section id="leaderboard"><h2>Leaderboard</h2>{board}</section>'
        f'<section id="seeds"><h2>Seeds</h2><p>Runs whose config differs only by seed form one '
        f"experiment; the statistics are over the final best of each seed.</p>{gtable}</section>"
        f'<section id="curves"><h2>Best so far</h2><p>thin lines: each run; thick: the '
        f"experiment's median; band: min to max over seeds.</p>"
        f'<div class="charts">{"".join(figs)}</div></section>'
    )
    return page(f"{problem} · leaderboard", body)


def index_page(by_problem: dict[str, list[RunData]], pages: dict[str, str], bad: list[str]) -> str:
    rows = []
    for problem, runs in sorted(by_problem.items()):
        top = _rank(runs)[0]
        rows.append(
            [
                f'<a href="{esc(pages[problem])}">{esc(problem)}</a>',
                str(len(runs)),
                num(_final(top)),
                esc(top.run_id),
                esc(top.best_verdict.get("status") if top.best_verdict else ""),
                money(sum(r.cost for r in runs)),
            ]
        )
    body = (
        "<h1>evolve runs</h1>"
        + table(["problem", "runs", "best", "best run", "verdict", "total cost"], rows, {1, 2, 5})
        + (
            "<h2>Unreadable</h2><ul>" + "".join(f"<li>{esc(b)}</li>" for b in bad) + "</ul>"
            if bad
            else ""
        )
    )
    return page("evolve runs", body)


def write_site(root: Path, out: Path, problem: str | None = None) -> dict[str, Any]:
    """Render the site for every run under `root` (of `problem` if given) into the folder
    `out`."""
    runs: list[RunData] = []
    bad: list[str] = []
    for db in find_runs(root):
        try:
            runs.append(RunData.load(db))
        except DatabaseError as exc:
            bad.append(f"{db}: {exc}")
    if problem:
        runs = [r for r in runs if r.problem == problem]
    if not runs:
        raise DatabaseError(f"no readable run database (evolve.db) under {root}")
    out.mkdir(parents=True, exist_ok=True)
    by_problem: dict[str, list[RunData]] = {}
    for r in runs:
        by_problem.setdefault(r.problem, []).append(r)
    links: dict[str, str] = {}
    used: set[str] = set()
    for r in runs:
        name = slug(f"{r.problem}-{r.run_id}")
        while name in used:  # two sweep folders may hold runs with one id
            name += "-x"
        used.add(name)
        links[str(r.path)] = f"runs/{name}.html"
        write_atomic(out / links[str(r.path)], run_page(r, back="../index.html"))
    pages = {p: f"{slug(p)}.html" for p in by_problem}
    for problem, prs in by_problem.items():
        write_atomic(out / pages[problem], problem_page(problem, prs, links))
    write_atomic(out / "index.html", index_page(by_problem, pages, bad))
    return {"runs": len(runs), "problems": len(by_problem), "unreadable": bad}
