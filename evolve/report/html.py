"""One run as a single self-contained HTML page: inline CSS and SVG charts, no script, no
outside request of any kind (the page's Content-Security-Policy forbids both).

Everything that came from an LLM or a child program (code, diffs, reasons, feedback, answers)
is untrusted text and goes through `esc` before it reaches the page; so does every other string
from the database, since a run folder may come from anyone. Collapsible parts are `<details>`,
which needs no JavaScript.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path
from typing import Any

from evolve.report import charts
from evolve.report.run_data import RunData, split_metrics

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

# Long diffs and answers are cut in the page (the database keeps them whole; `evolve export`
# writes them out); the best program never is.
MAX_DIFF_LINES = 300
MAX_ANSWER_LINES = 120
MAX_EXAMPLE_LINES = 120
MAX_FEEDBACK_LINES = 40
# Characters of diffs, feedback and LLM answers the lineage and the improvements may show
# between them. A run with hundreds of new bests (a local mutator finds one in ten children; an
# LLM writes tens of lines per answer) would otherwise outgrow the page's ~2 MB at 10,000
# evaluations: the steps nearest the best get theirs first, the rest say where to find them.
TEXT_BUDGET = 600_000

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg2:#f6f8fa; --good:#1a7f37; --bad:#cf222e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1180px; padding: 16px 24px 64px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px;
     padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 14px 0 6px; }
nav { font-size: 12px; margin: 6px 0 12px; } nav a { margin-right: 10px; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
.muted { color: var(--muted); } .good { color: var(--good); } .bad { color: var(--bad); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         background: var(--bg2); border: 1px solid var(--line); }
.badge.running { background: #fff8c5; } .badge.completed { background: #dafbe1; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 8px;
         margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .k { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.card .v { font-size: 17px; font-weight: 600; overflow-wrap: anywhere; }
.card .s { font-size: 12px; color: var(--muted); }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px 3px 0; text-align: left;
         vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: var(--bg2); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
      overflow-x: auto; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
      white-space: pre; margin: 6px 0; }
pre.wrap { white-space: pre-wrap; overflow-wrap: anywhere; }
details { margin: 4px 0; } summary { cursor: pointer; }
.verdict { border-left: 4px solid #8250df; padding: 4px 10px; background: #fbefff; margin: 8px 0; }
.note { font-size: 12px; color: var(--muted); }
p.left-out { margin: 4px 0 4px 16px; }
"""

SECTIONS = (
    ("progress", "Best so far"),
    ("islands", "Islands"),
    ("lineage", "Lineage of the best"),
    ("improvements", "Improvements"),
    ("grids", "MAP-Elites grids"),
    ("failures", "Failures"),
    ("llm", "LLM use"),
    ("literature", "Literature checks"),
    ("best-program", "Best program"),
    ("reproduce", "Versions and config"),
)


def esc(x: Any) -> str:
    """Any value as HTML text (quotes too, so it is safe in an attribute)."""
    return html.escape("" if x is None else str(x), quote=True)


def num(x: float | None, digits: int = 10) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def money(x: float | None) -> str:
    return "–" if x is None else f"${x:.4f}" if x < 100 else f"${x:,.2f}"


def duration(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def clip(text: str | None, max_lines: int) -> tuple[str, int]:
    """The first `max_lines` lines of a text and how many were left out."""
    lines = (text or "").splitlines()
    if len(lines) <= max_lines:
        return text or "", 0
    return "\n".join(lines[:max_lines]), len(lines) - max_lines


def pre(text: str | None, max_lines: int | None = None, cls: str = "") -> str:
    left_out = 0
    if max_lines is not None:
        text, left_out = clip(text, max_lines)
    note = (
        f'<p class="note">{left_out} more lines left out here; '
        "<code>evolve export</code> writes them all.</p>"
        if left_out
        else ""
    )
    attr = f' class="{cls}"' if cls else ""
    return f"<pre{attr}>{esc(text)}</pre>{note}"


def table(head: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """A table of already-escaped cells."""
    numeric = numeric or set()
    th = "".join(f"<th{' class=n' if k in numeric else ''}>{h}</th>" for k, h in enumerate(head))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if k in numeric else ''}>{c}</td>" for k, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def figure(svg_markup: str, caption: str = "") -> str:
    cap = f"<figcaption class=note>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart">{svg_markup}{cap}</figure>'


def page(title: str, body: str, refresh_s: float | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{max(1, int(refresh_s))}">' if refresh_s else ""
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


# --- the run page --------------------------------------------------------------------------
def _change(data: RunData, score: float | None, before: float | None) -> str:
    if score is None or before is None:
        return ""
    d = score - before
    good = data.better(score, before)
    return f'<span class="{"good" if good else "bad" if d else "muted"}">{d:+.4g}</span>'


def _header(data: RunData, back: str | None) -> str:
    run = data.run
    best = data.best
    seed_score = data.seed.score if data.seed else None
    direction = "higher is better" if data.direction == "max" else "lower is better"
    status = str(run.get("status") or "")
    parts = []
    if back:
        parts.append(f'<p class=note><a href="{esc(back)}">← all runs</a></p>')
    parts.append(
        f"<h1>{esc(data.problem)}</h1><p>run <b>{esc(data.run_id)}</b> · "
        f'<span class="badge {esc(status)}">{esc(status)}</span> · seed {esc(run.get("seed"))} · '
        f"{esc(direction)} · <span class=muted>{esc(data.path)}</span></p>"
    )
    bp = data.best_point
    cards = [
        (
            "best score",
            num(best["score"]) if best else "no valid program",
            f"program #{best['id']}, {_change(data, best['score'], seed_score)} vs the seed's "
            f"{num(seed_score)}"
            if best
            else "",
        ),
        (
            "best found at",
            f"evaluation {bp.evaluation}" if bp else "–",
            f"after {duration(bp.seconds)} and {money(bp.dollars)}" if bp else "",
        ),
        ("evaluations", str(data.evaluations), f"{data.rejected} edits rejected before running"),
        (
            "wall time",
            duration(data.wall_s),
            # the clock starts at the run's first record: the start-up of Ray and the workers,
            # which the terminal's summary counts, is not in it (nor in any curve here)
            (f"{data.evaluations / data.wall_s:.1f} eval/s; " if data.wall_s else "")
            + "from the run's first record, start-up not counted",
        ),
        (
            "LLM cost",
            money(data.cost),
            f"{int(data.llm_totals.get('calls') or 0)} calls, "
            f"{int(data.llm_totals.get('errors') or 0)} errors",
        ),
        (
            "best known",
            num(data.best_known),
            "from the literature check"
            + (
                ""
                if data.best_known_comparable or data.best_known is None
                else ", on a test set (another scale than the score)"
            ),  # fmt: skip
        ),
    ]
    parts.append(
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class=k>{esc(k)}</div><div class=v>{v}</div>'
            f"<div class=s>{s}</div></div>"
            for k, v, s in cards
        )
        + "</div>"
    )
    v = data.best_verdict
    if v:
        parts.append(
            f'<div class="verdict"><b>literature verdict</b> ({esc(v.get("status"))}): '
            f"{esc(v.get('message') or '')}<br><span class=note>citation: {esc(v.get('citation'))}"
            f"; as of {esc(v.get('as_of'))}; re-verified: "
            f"{'yes' if v.get('reverified') else 'no'}</span></div>"
        )
    elif best:
        parts.append('<p class="note">the best program has no literature check recorded.</p>')
    c = data.cascade
    if c.get("instances_full"):
        parts.append(
            f'<p class="note">cascade: {int(c["stopped"])} of {int(c["children"])} children '
            f"stopped early; {c['instances_run']:.0f} instance runs instead of "
            f"{c['instances_full']:.0f} ({100 * c['saved'] / c['instances_full']:.1f}% saved)</p>"
        )
    if best:
        splits = data.best_splits()
        if splits:
            parts.append(
                "<h3>Generalisation of the best"
                + (" (picked by validation)" if data.picked_by == "validation" else "")
                + "</h3>"
                + table(
                    [esc(k) for k in splits],
                    [[num(x, 6) for x in splits.values()]],
                    set(range(len(splits))),
                )
            )
    parts.append(
        "<nav>" + "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t in SECTIONS) + "</nav>"
    )
    return "\n".join(parts)


def _island(row: dict[str, Any]) -> str:
    return "–" if row.get("island") is None else esc(row["island"])


def _node(node: str | None) -> str:
    """A Ray node id cut to 12 hex digits (enough to tell a cluster's nodes apart), the whole id
    on hover."""
    if not node:
        return ""
    return f'<span title="{esc(node)}">{esc(node[:12])}</span>'


def _step_rows(data: RunData, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    with_node = any(r.get("node") for r in rows)
    splits = sorted({k for r in rows for k in split_metrics(r.get("metrics") or {})})
    head = ["#", "program", "island", "model", "mode", "score", "change", "status"]
    head += [esc(k) for k in splits] + (["node"] if with_node else [])
    body, before = [], None
    for k, r in enumerate(rows):
        sm = split_metrics(r.get("metrics") or {})
        body.append(
            [
                str(k),
                f"#{r['id']}",
                _island(r),
                esc(r.get("model") or ""),
                esc(r.get("mode")),
                num(r.get("score")),
                _change(data, r.get("score"), before),
                esc(r.get("status")),
            ]
            + [num(sm.get(s), 6) for s in splits]
            + ([_node(r.get("node"))] if with_node else [])
        )
        if r.get("score") is not None:
            before = r["score"]
    return head, body


def _texts_size(data: RunData, r: dict[str, Any]) -> int:
    """The characters a step's diff, feedback and LLM answer take in the page."""
    answer = data.responses.get(r.get("llm_call_id") or -1)
    return sum(
        len(esc(clip(text, cap)[0]))
        for text, cap in (
            (r.get("diff"), MAX_DIFF_LINES),
            (r.get("feedback"), MAX_FEEDBACK_LINES),
            (answer, MAX_ANSWER_LINES),
        )
    )


def texts_shown(data: RunData, budget: int = TEXT_BUDGET) -> set[int]:
    """The programs whose diff, feedback and answer the page shows: the lineage from the best
    back to the seed, then the other new bests from the latest back, while `budget` lasts."""
    on_lineage = {r["id"] for r in data.lineage}
    order = [*reversed(data.lineage)]
    order += [r for r in reversed(data.improvements) if r["id"] not in on_lineage]
    shown: set[int] = set()
    for r in order:
        size = _texts_size(data, r)
        if size > budget:
            break  # the older steps go without, rather than a scattered few
        budget -= size
        shown.add(r["id"])
    return shown


LEFT_OUT_NOTE = (
    '<p class="note">The diffs, feedback and answers of the steps marked "texts left out" are '
    "not in this page, to keep it within its size budget (the steps nearest the best have "
    "theirs); <code>evolve export</code> writes them all.</p>"
)


def _step_details(
    data: RunData,
    r: dict[str, Any],
    summary: str,
    shown: set[int],
    anchor: str = "",
    in_lineage: int | None = None,
) -> str:
    attrs = f' id="{anchor}"' if anchor else ""
    if in_lineage is not None:
        # the same program's texts are in the lineage: a link, not a second copy
        inner = (
            f'<p>its diff, feedback and answer: <a href="#step-{esc(r["id"])}">step '
            f"{in_lineage} of the lineage</a>.</p>"
        )
        return f'<details class="step"{attrs}><summary>{summary}</summary>{inner}</details>'
    if r["id"] not in shown:
        # one line, not a <details> that opens on nothing: a run may have a thousand of these
        return f'<p class="step left-out"{attrs}>{summary} · <span class=note>texts left out</span></p>'
    answer = data.responses.get(r.get("llm_call_id") or -1)
    inner = [f"<h3>diff against its parent #{esc(r.get('parent_id'))}</h3>"]
    inner.append(pre(r.get("diff") or "(no diff recorded)", MAX_DIFF_LINES))
    if r.get("feedback"):
        inner.append("<h3>evaluator feedback</h3>" + pre(r["feedback"], MAX_FEEDBACK_LINES, "wrap"))
    if answer:
        inner.append(
            "<details><summary>the LLM's answer</summary>"
            + pre(answer, MAX_ANSWER_LINES, "wrap")
            + "</details>"
        )
    return f'<details class="step"{attrs}><summary>{summary}</summary>{"".join(inner)}</details>'


def _lineage(data: RunData, shown: set[int]) -> str:
    if not data.lineage:
        return "<p>No valid program yet.</p>"
    head, body = _step_rows(data, data.lineage)
    out = [
        f"<p>{len(data.lineage)} programs from the seed to the best; each step's diff is against "
        "its parent.</p>",
        table(head, body, {5, 6}),
    ]
    if any(r["id"] not in shown for r in data.lineage):
        out.append(LEFT_OUT_NOTE)
    before = None
    for k, r in enumerate(data.lineage):
        out.append(
            _step_details(
                data,
                r,
                f"step {k}: #{r['id']} · island {_island(r)} · "
                f"{esc(r.get('model') or r.get('mode'))} · {num(r.get('score'))} "
                f"{_change(data, r.get('score'), before)}",
                shown,
                anchor=f"step-{r['id']}",
            )
        )
        if r.get("score") is not None:
            before = r["score"]
    return "\n".join(out)


def _improvements(data: RunData, shown: set[int]) -> str:
    if not data.improvements:
        return "<p>No improvement over the seed yet.</p>"
    at = {p.id: p for p in data.new_bests}
    step_of = {r["id"]: k for k, r in enumerate(data.lineage)}
    out = [
        f"<p>{len(data.improvements)} new bests over the run (the seed first), each with the model "
        "that made it.</p>"
    ]
    if any(r["id"] not in shown and r["id"] not in step_of for r in data.improvements):
        out.append(LEFT_OUT_NOTE)
    before = None
    for r in data.improvements:
        p = at.get(r["id"])
        when = f"evaluation {p.evaluation}, {duration(p.seconds)}, {money(p.dollars)}" if p else ""
        out.append(
            _step_details(
                data,
                r,
                f"#{r['id']} · {num(r.get('score'))} {_change(data, r.get('score'), before)} · "
                f"{esc(r.get('model') or r.get('mode'))} · island {_island(r)} · "
                f"<span class=muted>{esc(when)}</span>",
                shown,
                in_lineage=step_of.get(r["id"]),
            )
        )
        before = r.get("score")
    return "\n".join(out)


def _grids(data: RunData) -> str:
    if not data.grids:
        return (
            "<p>No MAP-Elites grid recorded (grids are written at migrations and at the end).</p>"
        )
    out = []
    if not any(g.get("axes") for g in data.grids):
        out.append(
            '<p class="note">this run predates recorded grid axes: bins are numbered, not '
            "labelled with their edges.</p>"
        )
    figs = [figure(charts.svg(charts.grid_map(g, data.direction))) for g in data.grids]
    out.append('<div class="charts">' + "".join(figs) + "</div>")
    return "\n".join(out)


def _failures(data: RunData) -> str:
    counts = sorted(data.status_counts.items(), key=lambda kv: -kv[1])
    out = [
        "<p>Outcomes: "
        + ", ".join(
            f'<span class="{"good" if s == "ok" else "bad"}">{esc(s)}</span> {n}' for s, n in counts
        )
        + "</p>",
        figure(charts.svg(charts.failures_over_time(data))),
    ]
    for f in data.failures:
        out.append(f"<h3>{esc(f['kind'])}: {f['count']}</h3>")
        rows = []
        for e in f["reasons"]:
            ex = data.examples.get(e["example"])
            code = (
                f"<details><summary>program #{e['example']}</summary>"
                + pre(ex.get("code"), MAX_EXAMPLE_LINES)
                + (f"<p>diff</p>{pre(ex.get('diff'), 60)}" if ex and ex.get("diff") else "")
                + "</details>"
                if ex
                else f"#{e['example']}"
            )
            vary = (
                ' <span class="note">(the example\'s; the others differ in their numbers)</span>'
                if e.get("numbers_vary")
                else ""
            )
            rows.append([str(e["count"]), f"<code>{esc(e['reason'])}</code>{vary}", code])
        out.append(table(["count", "reason", "example"], rows, {0}))
    return "\n".join(out)


def _llm(data: RunData) -> str:
    if not data.llm:
        return "<p>No LLM call recorded.</p>"
    rows = [
        [
            esc(m["model"]),
            str(m["calls"]),
            f"{m['prompt_tokens']:,}",
            f"{m['completion_tokens']:,}",
            money(m["cost_usd"]),
            str(m["errors"]),
            num(m["latency_p50"], 3) + " s",
            num(m["latency_p95"], 3) + " s",
            str(m["improvements"]),
            num(m["improvements_per_dollar"], 4),
        ]
        for m in data.llm
    ]
    head = ["model", "calls", "tokens in", "tokens out", "cost", "errors", "latency p50",
            "latency p95", "improvements", "improvements per $"]  # fmt: skip
    return table(head, rows, set(range(1, 10)))


def _literature(data: RunData) -> str:
    if not data.checks:
        return "<p>No literature check recorded (literature.enabled=false, or no new best).</p>"
    rows = [
        [
            str(c["id"]),
            f"#{esc(c.get('program_id'))}",
            str(c.get("evaluation", "")),
            esc(c.get("status")),
            num(c.get("score")),
            num(c.get("best_known")),
            esc(c.get("as_of")),
            "yes" if c.get("reverified") else "no",
            f"{esc(c.get('message'))}<br><span class=note>{esc(c.get('citation'))}</span>",
        ]
        for c in data.checks
    ]
    head = ["check", "program", "at evaluation", "verdict", "score", "best known", "as of",
            "re-verified", "message and citation"]  # fmt: skip
    return table(head, rows, {2, 4, 5})


def _reproduce(data: RunData) -> str:
    from evolve.sandbox.runner import describe_layers

    versions = dict(data.run.get("versions") or {})
    sandbox = versions.pop("sandbox", None)
    rows = [[esc(k), esc(v)] for k, v in sorted(versions.items())]
    out = [
        "<h3>Reproduce</h3>",
        pre(data.reproduce_command(), cls="wrap"),
        '<p class="note">with the same versions; <code>config.yaml</code> beside the database '
        "holds the resolved config below.</p>",
        "<h3>Versions</h3>",
        table(["package", "version"], rows),
        "<h3>Sandbox layers</h3>",
        f"<p>{esc(describe_layers(sandbox)) if isinstance(sandbox, dict) else 'not recorded'}</p>",
        "<details><summary>the resolved config</summary>" + pre(data.config_text) + "</details>",
    ]
    return "\n".join(out)


def run_page(data: RunData, refresh_s: float | None = None, back: str | None = None) -> str:
    """The whole report of one run as an HTML document."""
    best = data.best
    shown = texts_shown(data)
    sections = {
        "progress": '<div class="charts">'
        + "".join(
            figure(charts.svg(charts.best_so_far(data, clock)), f"against {label}")
            for clock, label in charts.CLOCKS.items()
            if clock != "dollars" or data.cost > 0
        )
        + "</div>"
        + (
            ""
            if data.cost > 0
            else '<p class="note">No LLM cost recorded (a local or free model), so no curve '
            "against dollars.</p>"
        ),
        "islands": figure(
            charts.svg(charts.island_scores(data)),
            "every scored child (thinned to "
            f"{charts.MAX_DOTS_PER_ISLAND} dots per island; every new best kept); crosses: failures",
        ),
        "lineage": _lineage(data, shown),
        "improvements": _improvements(data, shown),
        "grids": _grids(data),
        "failures": _failures(data),
        "llm": _llm(data),
        "literature": _literature(data),
        "best-program": (
            f"<p>program #{best['id']}, score {num(best['score'])}, island {esc(best['island'])}, "
            f"generation {esc(best['generation'])}; the full code:</p>" + pre(best["code"])
            if best
            else "<p>No valid program yet.</p>"
        ),
        "reproduce": _reproduce(data),
    }
    running = str(data.run.get("status")) == "running"
    body = [_header(data, back)]
    for sid, title in SECTIONS:
        body.append(f'<section id="{sid}"><h2>{esc(title)}</h2>\n{sections[sid]}\n</section>')
    body.append(
        f'<p class="note">written {esc(time.strftime("%Y-%m-%d %H:%M:%S"))} by evolve from '
        f"{esc(data.path / 'evolve.db')}"
        + (
            f"; this page reloads every {int(refresh_s)} s while the run is going"
            if refresh_s and running
            else ""
        )  # fmt: skip
        + ".</p>"
    )
    return page(f"{data.problem} · {data.run_id}", "\n".join(body), refresh_s if running else None)


def write_atomic(path: Path, text: str) -> None:
    """Write then rename, so a browser reloading the page never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_run_report(
    run: Path, out: Path | None = None, refresh_s: float | None = None
) -> tuple[Path, RunData]:
    """Render one run's report to `out` (default: RUN/report.html)."""
    data = RunData.load(run)
    out = out or data.path / "report.html"
    write_atomic(out, run_page(data, refresh_s))
    return out, data
