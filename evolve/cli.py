"""The `evolve` command: run / eval / score / problems / show / report / plot / export / literature.

`evolve run` is a Hydra app (overrides, `-m` sweeps, `--cfg job`); the other subcommands are
plain argparse and mirror the Python API (`load_problem`, `Problem.evaluate`, `Problem.score`).
Errors are one line; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

# When this command began (reset by each main() call: tests run many commands in one
# process); the start-up figures in run.log and the wall-time budget count from it.
_COMMAND_T0 = time.monotonic()

import numpy as np  # noqa: E402

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402

from evolve.paths import conf_dir  # noqa: E402

console = Console()
err_console = Console(stderr=True)
_STARTED = time.strftime("%Y%m%d-%H%M%S")


class UsageError(Exception):
    """Bad input from the user: shown as one line."""


# --- helpers -------------------------------------------------------------------------------
def _problem_slug(name: str) -> str:
    p = Path(str(name))
    if p.is_absolute() or str(name).startswith("."):
        return p.name
    return str(name).replace("/", "-")


def _load_outputs(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: np.array(data[k]) for k in data.files}
        except Exception as exc:
            raise UsageError(f"{path} is not a readable .npz of arrays: {exc}") from None
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(obj, dict):
        raise UsageError(
            f'{path} must hold a JSON object mapping each output name to a list, e.g. {{"h": [0.1, 0.9]}}'
        )
    return obj


def _print_evaluation(ev, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        d = ev.to_dict()
        if extra:
            d.update(extra)
        print(json.dumps(d, sort_keys=True))
        return
    if ev.valid:
        console.print(f"[green]valid[/green]  score [bold]{ev.score:.12g}[/bold]")
    else:
        console.print(f"[red]{ev.status}[/red]: {escape(ev.error)}")
    shown = {k: v for k, v in ev.metrics.items()}
    if shown:
        console.print("metrics: " + ", ".join(f"{k}={v:.6g}" for k, v in shown.items()))
    if extra and extra.get("verdict"):
        v = extra["verdict"]
        console.print(f"literature: {escape(str(v.get('message') or v.get('status')))}")


def _verdict(problem, outputs, ev) -> dict[str, Any] | None:
    try:
        from evolve import literature
    except ImportError:
        return None
    check = getattr(literature, "check", None)
    if check is None:
        return None
    return check(problem, outputs, ev).to_dict()


# --- subcommands ---------------------------------------------------------------------------
def cmd_problems(args: argparse.Namespace) -> int:
    from rich.table import Table

    from evolve.problem import list_problems, load_problem

    table = Table(title="problems")
    for col in ("name", "direction", "title", "path"):
        table.add_column(col)
    for name, path in list_problems():
        try:
            p = load_problem(path)
            table.add_row(name, p.direction, p.title, str(path))
        except Exception as exc:  # one broken plug-in must not hide the others
            table.add_row(name, "?", f"[red]cannot load: {exc}[/red]", str(path))
    console.print(table)
    return 0


def _params(pairs: list[str] | None) -> dict[str, Any]:
    """`--param n=32` options as a dict (values parsed as YAML scalars: 32 -> int)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {pair!r} must look like NAME=VALUE, e.g. --param n=32")
        out[key] = yaml.safe_load(value)
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    from evolve.evaluators.harness import evaluate_code
    from evolve.problem import load_problem

    problem = load_problem(args.problem, _params(args.param))
    path = Path(args.file)
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    ev = evaluate_code(problem, path.read_text(), timeout=args.timeout)
    _print_evaluation(ev, args.json)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from evolve.problem import load_problem

    problem = load_problem(args.problem, _params(args.param))
    outputs = _load_outputs(Path(args.outputs))
    if problem.heuristic:
        ev = problem.score(outputs, _instance(problem, args.instance))
        _print_evaluation(ev, args.json)
        return 0
    ev = problem.score(outputs)
    extra = {}
    if ev.valid:
        verdict = _verdict(problem, outputs, ev)
        if verdict is not None:
            extra["verdict"] = verdict
    _print_evaluation(ev, args.json, extra)
    return 0


def _instance(problem, ref: str | None) -> dict[str, Any]:
    """A heuristic problem's instance named SET/NAME (e.g. test/u200)."""
    sets = [s for s in ("train", "validation", "test") if problem.instance_sets.get(s)]
    names = [f"{s}/{inst.get('name')}" for s in sets for _, inst in problem.instances(s)]
    if ref is None:
        shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        raise UsageError(
            f"{problem.name} is a heuristic problem: say which instance with --instance ({shown})"
        )
    set_name, _, name = ref.partition("/")
    for _, inst in problem.instances(set_name) if set_name in sets else []:
        if str(inst.get("name")) == name:
            return inst
    raise UsageError(
        f"{problem.name} has no instance {ref!r}; its instances: {', '.join(names[:30])}"
    )


def cmd_show(args: argparse.Namespace) -> int:
    from evolve.report.show import show_run

    show_run(Path(args.run), console, top=args.top)
    return 0


def _is_one_run(path: Path) -> bool:
    return path.is_file() or (path / "evolve.db").exists()


def cmd_report_html(args: argparse.Namespace, root: Path) -> int:
    from evolve.report.html import write_run_report
    from evolve.report.site import write_site

    if args.watch is not None and args.watch <= 0:
        raise UsageError("--watch takes a positive number of seconds between rewrites")
    if not _is_one_run(root):
        if args.watch is not None:
            raise UsageError("--watch follows one run: give a run folder, not a folder of runs")
        out = Path(args.output) if args.output else root / "site"
        if out.exists() and not out.is_dir():
            raise UsageError(f"-o {out}: a site is a folder of pages; give a folder")
        done = write_site(root, out, args.problem)
        console.print(
            f"wrote {done['runs']} run pages and {done['problems']} problem pages; "
            f"open {out / 'index.html'}",
            highlight=False,
        )
        for bad in done["unreadable"]:
            err_console.print(f"skipped {bad}", highlight=False)
        return 0
    out = Path(args.output) if args.output else None
    # `-o reports/` names a folder even before it exists (Path drops the trailing slash)
    if out is not None and (out.is_dir() or args.output.endswith(("/", os.sep))):
        out = out / "report.html"
    while True:
        path, data = write_run_report(root, out, refresh_s=args.watch)
        running = data.run.get("status") == "running"
        console.print(
            f"wrote {path} ({data.evaluations} evaluations, run {data.run.get('status')})",
            highlight=False,
        )
        if args.watch is None or not running:
            return 0
        time.sleep(args.watch)


def cmd_report(args: argparse.Namespace) -> int:
    from rich.table import Table

    from evolve.report.leaderboard import TABLE_COLUMNS, leaderboard, render

    root = Path(args.runs)
    if not root.exists():
        raise UsageError(f"no such folder or file: {root}")
    if args.format == "html":
        return cmd_report_html(args, root)
    if args.watch is not None:
        raise UsageError("--watch rewrites an HTML report: add --format html")
    rows = leaderboard(root, args.problem)
    if not rows:
        raise UsageError(f"no run databases (evolve.db) under {root}")
    if args.format == "table" and not args.output:
        t = Table(title=f"leaderboard: {root}")
        for c in TABLE_COLUMNS:
            t.add_column(c)
        for r in rows:
            t.add_row(*("" if r[c] is None else str(r[c]) for c in TABLE_COLUMNS))
        console.print(t)
        return 0
    text = render(rows, "md" if args.format == "table" else args.format)
    if args.output:
        Path(args.output).write_text(text)
        console.print(f"wrote {len(rows)} rows to {args.output}")
    else:
        print(text, end="")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from evolve.report.leaderboard import find_runs

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UsageError(f"-o {out}: name a .png, .pdf or .svg file")
    from evolve.report.charts import paper_figure
    from evolve.report.run_data import RunData, seed_groups

    runs = []
    for arg in args.runs:
        root = Path(arg)
        if not root.exists():
            raise UsageError(f"no such folder or file: {root}")
        dbs = find_runs(root)
        if not dbs:
            raise UsageError(f"no run database (evolve.db) under {root}")
        runs += [RunData.load(db) for db in dbs]
    problems = sorted({r.problem for r in runs})
    if len(problems) > 1:
        raise UsageError(
            f"these runs are of {len(problems)} problems ({', '.join(problems)}); plot one at a time"
        )
    fig = paper_figure(seed_groups(runs))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=args.dpi, bbox_inches="tight")
    console.print(f"wrote {out} ({len(runs)} runs)", highlight=False)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from evolve.report.export import write_jsonl

    run = Path(args.run)
    if not run.exists():
        raise UsageError(f"no such folder or file: {run}")
    if args.output:
        # into a folder made if missing, as report and plot do; through a temporary file, so a
        # database that fails half-way leaves no partial export behind
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                n = write_jsonl(run, fh)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        console.print(f"wrote {n} programs to {out}", highlight=False)
    else:
        write_jsonl(run, sys.stdout)
    return 0


def cmd_new_problem(args: argparse.Namespace) -> int:
    from evolve.scaffold import new_problem

    folder = new_problem(args.name, Path(args.dir))
    console.print(f"created the problem plug-in {args.name!r} in {folder.parent}")
    console.print(f"  edit {folder}/problem.yaml, initial.py, evaluator.py, known.yaml")
    console.print(f"  check it:  evolve check-problem {folder}")
    console.print(f"  evolve it: evolve run problem=custom problem.name={folder}")
    console.print(f"  publish:   pip install {folder.parent}  (entry point evolve.problems)")
    return 0


def cmd_check_problem(args: argparse.Namespace) -> int:
    from evolve.scaffold import check_problem

    checks = check_problem(args.path)
    for c in checks:
        mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {c.name}: {c.detail}", highlight=False)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        err_console.print(f"[red]error:[/red] {len(failed)} check(s) failed: {', '.join(failed)}")
        return 1
    console.print("all checks passed")
    return 0


def cmd_replay_export(args: argparse.Namespace) -> int:
    from evolve.mutation.replay import export_replay

    src = Path(args.run)
    db = src if src.suffix == ".db" else src / "evolve.db"
    if not db.exists():
        raise UsageError(f"no run database at {db}; give a run folder made by `evolve run`")
    n = export_replay(db, Path(args.output), run_id=args.run_id)
    console.print(f"wrote {n} recorded LLM calls to {args.output}")
    console.print(f"replay them: evolve run llm=replay llm.replay_file={args.output}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from evolve import doctor

    r = doctor.report()
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        console.print(doctor.render(r), highlight=False)
    return 0 if r["sandbox"]["works"] else 1


def cmd_literature(argv: list[str]) -> int:
    try:
        from evolve.literature import literature_main
    except ImportError as exc:
        raise UsageError(f"the literature module is unavailable: {exc}") from None
    return int(literature_main(argv) or 0)


# --- evolve run (Hydra) --------------------------------------------------------------------
def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("problem_slug"):
        OmegaConf.register_new_resolver("problem_slug", _problem_slug)
    if not OmegaConf.has_resolver("islands_for_budget"):
        from evolve.population.budget import islands_for_budget

        OmegaConf.register_new_resolver("islands_for_budget", islands_for_budget)


# At import: a sweep job on hydra-ray-launcher resolves its run folder (which names the problem
# through this resolver) in a Ray worker, where importing this module is all that runs first.
_register_resolvers()


def _setup_run_logging(run_dir: Path) -> logging.Handler:
    """Send this run's log to its run.log; the caller removes the handler when the run ends
    (a process that runs many commands, as the tests and bench/search.py's runners do, would
    otherwise write every later run's log into each earlier run's run.log)."""
    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("LiteLLM", "litellm", "httpx", "ray"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


# Keys whose default changed after runs were saved without them, with what those runs did:
# such a run resumes searching as it searched (a new run takes the new default).
SAVED_WITHOUT = {"search.ties": "uniform", "search.novelty.enabled": False}
_ABSENT = object()


def _resume_config(
    cfg_dict: dict[str, Any], resume: str, task_overrides: list[str]
) -> dict[str, Any]:
    """The saved config of the run being resumed, with this command's overrides applied."""
    from omegaconf import OmegaConf

    run_dir = Path(resume)
    saved = run_dir / "config.yaml"
    if not saved.exists():
        raise UsageError(
            f"resume={resume}: no config.yaml there; give the folder of an earlier run"
        )
    base = OmegaConf.load(saved)
    for key, value in SAVED_WITHOUT.items():
        if OmegaConf.select(base, key, default=_ABSENT) is _ABSENT:
            OmegaConf.update(base, key, value, force_add=True)
    OmegaConf.set_struct(base, True)
    dotlist = [o for o in task_overrides if not o.startswith("resume=")]
    try:
        base.merge_with_dotlist(dotlist)
    except Exception as exc:
        raise UsageError(f"resume: cannot apply overrides {dotlist}: {exc}") from None
    out = OmegaConf.to_container(base, resolve=True, enum_to_str=True)
    out["resume"] = str(run_dir)
    return out


def _run_job(cfg) -> None:
    from evolve.engine import RunError
    from evolve.population.database import DatabaseError
    from evolve.problem import ProblemError

    try:
        _run_job_inner(cfg)
    except (UsageError, ProblemError, DatabaseError, RunError, ValueError) as exc:
        if os.environ.get("EVOLVE_DEBUG"):
            raise
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _run_job_inner(cfg) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from evolve import config as config_mod
    from evolve.cluster import init_ray
    from evolve.engine import Evolution
    from evolve.report.live import LiveView, summary

    hc = HydraConfig.get()
    cfg_dict = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    if cfg_dict.get("resume"):
        cfg_dict = _resume_config(cfg_dict, cfg_dict["resume"], list(hc.overrides.task))
        run_dir = Path(cfg_dict["resume"])
    else:
        run_dir = Path(hc.runtime.output_dir)
    config_mod.validate(cfg_dict)
    llm = cfg_dict["llm"]
    for m in config_mod.llm_models(llm):
        name = m.get("api_key_env")
        if not name or os.environ.get(name):
            continue
        if m.get("api_base"):  # a local server (vLLM, llama.cpp) usually needs no key
            err_console.print(
                f"note: ${name} is not set; {m.get('model')} at {m['api_base']} gets a placeholder key"
            )
            continue
        raise UsageError(
            f"llm={llm.get('name')} reads the API key of {m.get('model')} from ${name}, which is not "
            f"set: export {name}=... (or run offline with llm=local)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    from omegaconf import OmegaConf as OC

    OC.save(OC.create(cfg_dict), run_dir / "config.yaml")
    run_log = _setup_run_logging(run_dir)
    log = logging.getLogger("evolve.cli")
    log.info("start-up: the config ready after %.1f s", time.monotonic() - _COMMAND_T0)
    # The problem (its evaluator imported, its inputs built: a bad parameter fails here) needs
    # no Ray: it loads while ray.init mostly waits for Ray's processes to come up.
    started_ray = False
    try:
        with ThreadPoolExecutor(1) as pool:
            building = pool.submit(Evolution, cfg_dict, run_dir, None, _COMMAND_T0)
            started_ray = init_ray(cfg_dict["cluster"])
            log.info("start-up: Ray up after %.1f s", time.monotonic() - _COMMAND_T0)
        evo = building.result()
        with LiveView(
            console, cfg_dict["report"]["refresh_per_second"], cfg_dict["report"]["live"]
        ) as view:
            evo.view = view
            progress = evo.run()
            view.update(progress)
        best_file = None
        from evolve.population.database import Database

        # Read-write, and the last connection: closing it folds the write-ahead log back into
        # the file, so the run folder holds evolve.db alone (no -wal, -shm beside it).
        db = Database(run_dir / "evolve.db")
        best = db.best_by(evo.run_id, evo.problem.selection_metric, evo.problem.direction)
        if best:
            best_file = run_dir / "best_program.py"
            best_file.write_text(best[0]["code"])
        db.close()
        console.print(summary(progress, run_dir, best_file, evo.problem.direction))
    finally:
        if started_ray:
            import ray

            ray.shutdown()
        logging.getLogger().removeHandler(run_log)
        run_log.close()


def _hydra_errors():
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return (HydraException, OmegaConfBaseException)


def _precheck_overrides(overrides: list[str]) -> dict:
    """Compose the config once so a misspelt key fails in one line before anything starts;
    returns it as plain data (swept values left out)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    plain = [o for o in overrides if not o.startswith("-") and "," not in o.split("=", 1)[-1]]
    plain = [o for o in plain if not o.startswith(("hydra.", "hydra/"))]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None, job_name="evolve"):
        cfg = compose(config_name="config", overrides=plain)
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def _sweeps_on_ray(argv: list[str]) -> bool:
    """A multirun whose jobs hydra-ray-launcher sends to Ray as tasks."""
    return any(a in ("-m", "--multirun") for a in argv) and "hydra/launcher=ray" in argv


def _ray_sweep_overrides(argv: list[str], runs_dir: str) -> list[str]:
    """Keep a Ray sweep's run folders on this machine: each job's task pinned to this node
    (its islands and evaluator workers still spread over the cluster), and the runs folder
    made absolute, since a Ray worker's working directory is not the user's."""
    import ray

    extra = [f"runs_dir={Path(runs_dir).expanduser().resolve()}"]
    if not any(a.lstrip("+").startswith("hydra.launcher.ray.remote.resources") for a in argv):
        ip = ray.util.get_node_ip_address()
        extra.append(f"++hydra.launcher.ray.remote.resources={{node\\:{ip}:0.001}}")
    return extra


def cmd_run(argv: list[str], debug: bool) -> int:
    import hydra

    from evolve import config as config_mod

    config_mod.register()
    _register_resolvers()
    composed = None
    if not any(
        a in ("--help", "-h", "--hydra-help", "--info", "-i") or a.startswith("--cfg") or a == "-c"
        for a in argv
    ):
        try:
            composed = _precheck_overrides(argv)
        except _hydra_errors() as exc:
            raise UsageError(_one_line_hydra_error(exc)) from None
    # The job function from the module by its import name, never from `__main__` (under
    # `python -m evolve.cli`): Ray sends a sweep job's function by reference, which a worker
    # can import, whereas `__main__`'s would be pickled with this process's console.
    from evolve.cli import _run_job as job

    main = hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)(job)
    sys.argv = ["evolve run", *argv]
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"
        os.environ["EVOLVE_DEBUG"] = "1"
    started_ray = False
    if composed is not None and _sweeps_on_ray(argv):
        # hydra-ray-launcher would call ray.init with an object-store size, which Ray refuses
        # when joining a running cluster: start or join Ray here with the run's own cluster
        # settings, and the launcher finds it running and sends each job to it.
        from evolve.cluster import init_ray

        started_ray = init_ray(composed["cluster"])
        sys.argv += _ray_sweep_overrides(argv, composed["runs_dir"])
    try:
        main()
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return 0


def _one_line_hydra_error(exc: Exception) -> str:
    from omegaconf.errors import OmegaConfBaseException

    from evolve.config import one_line

    cause = exc.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        # Hydra's own text ("Error merging override x=y") drops the reason; the schema's has it.
        return one_line(cause)
    text = " ".join(str(exc).split())
    text = text.replace("To append to your config use", "(to add a new key use")
    if "(to add a new key use" in text:
        head, _, tail = text.partition("(to add a new key use")
        key = tail.split()[0] if tail.split() else ""
        return f"{head.strip()} — no such setting; check the spelling (`evolve run --cfg job` lists every key){'' if not key else ''}"
    missing = re.search(r"Could not find 'problem/([^']+)'", text)
    if missing:
        # Hydra lists only the top level of a nested group ("custom"): name the problems.
        return _unknown_problem(missing.group(1))
    if "Could not find" in text or "Could not load" in text:
        return text + " (`evolve run --help` lists the available options of each group)"
    return text


def _unknown_problem(name: str) -> str:
    import difflib

    from evolve.problem import list_problems

    known = [n for n, _ in list_problems()]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return (
        f"unknown problem {name!r}{hint}; the problems are {', '.join(known)} "
        "(or problem=custom problem.name=/path/to/a/problem_folder)"
    )


# --- entry point ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evolve",
        description="Evolve programs with LLMs; every score is computed by trusted code.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser(
        "run",
        help="run an evolution (Hydra overrides follow; --help for the config)",
        add_help=False,
    )
    p = sub.add_parser("eval", help="run a program file in the sandbox and score it")
    p.add_argument("problem")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the Evaluation as one JSON object")
    p.add_argument("--timeout", type=float, default=None, help="wall-time limit in seconds")
    p.add_argument(
        "--param", action="append", metavar="NAME=VALUE", help="problem parameter, e.g. n=32"
    )
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser(
        "score", help="score a construction (.json or .npz of named arrays), no code run"
    )
    p.add_argument("problem")
    p.add_argument("outputs")
    p.add_argument("--json", action="store_true", help="print the Evaluation (and verdict) as JSON")
    p.add_argument(
        "--param", action="append", metavar="NAME=VALUE", help="problem parameter, e.g. n=32"
    )
    p.add_argument(
        "--instance",
        metavar="SET/NAME",
        help="heuristic problems: the instance the outputs are for, e.g. test/u200",
    )
    p.set_defaults(func=cmd_score)
    p = sub.add_parser("problems", help="list the problems")
    p.set_defaults(func=cmd_problems)
    p = sub.add_parser("show", help="a run's best programs, island bests and the best's lineage")
    p.add_argument("run", help="run folder (or its evolve.db)")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_show)
    p = sub.add_parser(
        "replay-export", help="write a run's LLM calls to a JSONL file for llm=replay"
    )
    p.add_argument("run", help="run folder (or its evolve.db)")
    p.add_argument("output", help="the .jsonl file to write")
    p.add_argument("--run-id", default=None)
    p.set_defaults(func=cmd_replay_export)
    p = sub.add_parser("new-problem", help="create a problem plug-in from the template")
    p.add_argument("name", help="the problem's name, e.g. my_points")
    p.add_argument("--dir", default=".", help="where to create it (default: here)")
    p.set_defaults(func=cmd_new_problem)
    p = sub.add_parser(
        "check-problem", help="check a problem plug-in: loads, seed runs, verify agrees"
    )
    p.add_argument("path", help="a problem folder, built-in name or plug-in name")
    p.set_defaults(func=cmd_check_problem)
    p = sub.add_parser(
        "report",
        help="leaderboard of the runs under a folder (table, md, csv, json), or an HTML report",
    )
    p.add_argument(
        "runs", nargs="?", default="runs", help="a folder of runs, a run folder or an evolve.db"
    )
    p.add_argument(
        "--format",
        choices=("table", "md", "csv", "json", "html"),
        default="table",
        help="html: one run's self-contained report (default RUN/report.html), or for a folder "
        "of runs a site of pages (default FOLDER/site/)",
    )
    p.add_argument("--problem", default=None, help="only runs of this problem")
    p.add_argument("--output", "-o", default=None, help="write to this file instead of the console")
    p.add_argument(
        "--watch",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --format html: rewrite the report every SECONDS while the run is going",
    )
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("plot", help="the best-so-far figure of runs (seeds grouped), for a paper")
    p.add_argument("runs", nargs="+", help="run folders, evolve.db files or folders of runs")
    p.add_argument("--output", "-o", required=True, help="the figure: .png, .pdf or .svg")
    p.add_argument("--dpi", type=int, default=200, help="resolution of a .png")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("export", help="every program of a run, one JSON line each")
    p.add_argument("run", help="run folder (or its evolve.db)")
    p.add_argument("--format", choices=("jsonl",), default="jsonl")
    p.add_argument("--output", "-o", default=None, help="write to this file (default: stdout)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser(
        "doctor", help="what this machine gives a run: sandbox layers (and fixes), keys, versions"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_doctor)
    sub.add_parser(
        "literature",
        help="known results: `evolve literature PROBLEM`, `evolve literature update FILE`",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    global _COMMAND_T0
    if argv is not None:  # called in-process (tests, scripts): the command begins now
        _COMMAND_T0 = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    from evolve.population.database import DatabaseError
    from evolve.problem import ProblemError

    try:
        if argv and argv[0] == "run":
            return cmd_run(argv[1:], debug)
        if argv and argv[0] == "literature":
            return cmd_literature(argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if not argv else 2
        return args.func(args)
    except (
        UsageError,
        ProblemError,
        DatabaseError,
        ValueError,
        FileNotFoundError,
    ) as exc:  # ScaffoldError too
        if debug:
            raise
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0


if __name__ == "__main__":
    sys.exit(main())
