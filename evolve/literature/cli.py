"""`evolve literature`: show what is known about a problem, or merge a newer catalogue.

evolve literature PROBLEM                      known values, newest first, with citations
evolve literature PROBLEM --json               the same as JSON
evolve literature update FILE [--dry-run] [--take-theirs] [--catalogue PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evolve.literature.catalogue import CatalogueError, catalogue_path, update_catalogue
from evolve.literature.known import KnownError, KnownTable


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evolve literature",
        description="Show known results for a problem (newest first, with citations), or "
        "`update FILE` to merge a newer catalogue.",
    )
    p.add_argument("target", help="a problem name or folder, a catalogue entry id, or 'update'")
    p.add_argument("file", nargs="?", help="with 'update': the catalogue JSON to merge")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--dry-run", action="store_true", help="with 'update': report, write nothing")
    p.add_argument(
        "--take-theirs",
        action="store_true",
        help="with 'update': resolve conflicts with the file's entries",
    )
    p.add_argument(
        "--catalogue",
        type=Path,
        help="with 'update': the catalogue to update (default: the one in use)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _show(table: KnownTable, console: Console, as_json: bool) -> None:
    from evolve.literature import table_to_dict

    if as_json:
        print(json.dumps(table_to_dict(table), indent=1, default=str))
        return
    console.print(f"[bold]{table.title}[/bold]  ({table.id or 'no catalogue id'})")
    bits = [f"direction: {table.direction or '?'}", f"as of {table.as_of or '?'}"]
    if table.instance:
        bits.append(f"instance {table.instance}")
    if table.erdos_problem is not None:
        status = table.erdos.status if table.erdos else "not in the index"
        prize = (
            f", prize {table.erdos.prize}"
            if table.erdos and table.erdos.prize not in ("", "no")
            else ""
        )
        bits.append(f"Erdős problem #{table.erdos_problem}: {status}{prize}")
    console.print("  " + " · ".join(bits))
    rows = table.results()
    if not rows:
        console.print("  nothing known is recorded")
    else:
        t = Table(show_header=True, header_style="bold", expand=False)
        for col in ("date", "kind", "value", "recomputed", "status", "citation"):
            t.add_column(col, overflow="fold")
        for r in rows:
            from evolve.literature.known import _date_key

            style = "bold green" if r.kind == "best_known" else ("yellow" if r.disputed else None)
            value = json.dumps(r.value) if isinstance(r.value, (dict, list)) else str(r.value)
            t.add_row(
                _date_key(r) or "-",
                r.kind,
                value[:60],
                "" if r.recomputed is None else f"{r.recomputed:.12g}",
                r.status or "-",
                r.citation + (f"  [dim]{r.note}[/dim]" if r.note else ""),
                style=style,
            )
        console.print(t)
    if table.constructions:
        console.print("  constructions for rediscovery matching:")
        for c in table.constructions:
            console.print(
                f"    {c.file}  {c.attribution}"
                + (f"  value {c.value:.12g}" if c.value is not None else "")
            )
    for p in table.problems:
        console.print(f"  [red]note:[/red] {p}")
    console.print("  [dim]sources: " + "; ".join(table.sources) + "[/dim]")


def literature_main(argv: list[str]) -> int:
    """Entry point for `evolve literature ...`; returns the exit code."""
    args = _parser().parse_args(argv)
    console = Console(soft_wrap=True)  # long lines (citations) are not cut mid-line
    err = Console(stderr=True, soft_wrap=True)
    try:
        if args.target == "update":
            if not args.file:
                err.print("evolve literature update: give the catalogue FILE to merge")
                return 2
            target = args.catalogue or catalogue_path()
            report = update_catalogue(
                Path(args.file), target=target, take_theirs=args.take_theirs, dry_run=args.dry_run
            )
            if args.json:
                print(json.dumps(report.to_dict(), indent=1))
            else:
                verb = "would merge" if args.dry_run else "merged"
                console.print(
                    f"{verb} {args.file} (as of {report.as_of_new or '?'}) into {target} (as of {report.as_of_old or '?'}): "
                    f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
                    f"{len(report.conflicts)} conflict(s)"
                )
                for eid in report.added:
                    console.print(f"  [green]added[/green]    {eid}")
                for eid in report.updated:
                    console.print(f"  [cyan]updated[/cyan]  {eid}")
                for eid, why in report.conflicts:
                    console.print(
                        f"  [red]conflict[/red] {eid}: {why} (kept the current entry; --take-theirs to override)"
                    )
            return 1 if report.conflicts else 0
        from evolve.literature import known_table_for

        _show(known_table_for(args.target), console, args.json)
        return 0
    except (CatalogueError, KnownError, ValueError, OSError) as exc:
        if args.debug:
            raise
        err.print(f"evolve literature: {exc}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(literature_main(sys.argv[1:]))
