"""The configuration schema: every knob, its default and what it does.

Each group is a dataclass registered in Hydra's ConfigStore, so a misspelt key in a YAML file
or on the command line is an error, not a silent no-op. The YAML files in conf/ choose among
presets (llm=openai, search=..., problem=erdos/golomb); this file is the schema they fill.
"""

from __future__ import annotations

import re
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields, is_dataclass
from functools import lru_cache
from typing import Any

from omegaconf import MISSING

from evolve.choices import Bandit, Selection, Ties


def bounded(
    default: Any = NO_DEFAULT,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    """A field with a default and the range its value must lie in (checked by `validate`)."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le})


@dataclass
class ProblemConfig:
    name: str = MISSING  # built-in name (erdos/min_overlap), a folder path, or a plug-in name
    params: dict[str, Any] = field(default_factory=dict)  # instance parameters (e.g. n)


@dataclass
class ModelConfig:
    model: str = MISSING  # any litellm model string, e.g. openai/gpt-4.1-mini
    weight: float = bounded(1.0, ge=0.0)  # share of requests in a weighted ensemble
    api_base: str | None = None  # OpenAI-compatible server URL (vLLM, Ollama, LM Studio)
    api_key_env: str | None = None  # NAME of the environment variable holding the key
    input_cost_per_mtok: float | None = None  # $ per million prompt tokens (overrides litellm)
    output_cost_per_mtok: float | None = None  # $ per million completion tokens


@dataclass
class LLMConfig:
    name: str = "local"  # the preset's name, for the record
    # The model (any litellm model string) when no ensemble is given.
    model: str = "evolve-local/mutator"
    api_base: str | None = None  # OpenAI-compatible server URL (vLLM, Ollama, LM Studio)
    api_key_env: str | None = None  # NAME of the environment variable holding the key
    input_cost_per_mtok: float | None = None  # $ per million prompt tokens (overrides litellm)
    output_cost_per_mtok: float | None = None  # $ per million completion tokens
    # An ensemble: if non-empty, these models are used instead of `model`.
    ensemble: list[ModelConfig] = field(default_factory=list)
    # weighted | ucb | thompson (the bandits reward improvement over the parent)
    selection: Bandit = Bandit.weighted
    replay_file: str | None = None  # for llm=replay: a JSONL file of recorded prompts and responses
    temperature: float = 0.8
    max_tokens: int = bounded(4096, ge=1)
    timeout_s: float = bounded(120.0, gt=0.0)  # per request
    max_retries: int = bounded(3, ge=0)  # the only retry layer (litellm's own retries are off)
    backoff_s: float = bounded(
        1.0, ge=0.0
    )  # first retry delay; doubles per attempt (Retry-After wins when given)
    diff_probability: float = bounded(
        0.8, ge=0.0, le=1.0
    )  # share of prompts asking for SEARCH/REPLACE edits vs a rewrite


@dataclass
class NoveltyConfig:
    """The novelty filter (evolve/population/novelty.py): a child too similar to a program
    its island holds is rejected before it runs, recorded with the neighbour. On by default:
    docs/search.md (ninth round) measured it ahead of hill climbing where the plain engine
    was not; a rejected child costs a model call, never an evaluation."""

    enabled: bool = True
    # Cosine similarity to the nearest program at or above which a child is rejected. The
    # offline embedding reads constants to two significant digits, so 0.9995 rejects programs
    # that differ only by constants nudged below that; for an LLM embedding ~0.95 is usual.
    threshold: float = bounded(0.9995, gt=0.0, le=1.0)
    model: str | None = None  # a litellm embedding model; None: the offline token embedding
    api_base: str | None = None  # for `model` on a local or compatible server
    api_key_env: str | None = None  # the environment variable holding `model`'s API key


@dataclass
class JudgeConfig:
    """A second model that checks each child before it runs (evolve/mutation/judge.py)."""

    enabled: bool = False
    # Any litellm model; a cheap one (e.g. openai/gpt-4.1-nano) for real runs. The default is
    # the offline judge, which rejects only edits that cannot change what the program computes.
    model: str = "evolve-local/judge"
    threshold: float = bounded(
        0.1, ge=0.0, le=1.0
    )  # a child whose predicted chance of improving is below this is not run
    audit: float = bounded(
        0.0, ge=0.0, le=1.0
    )  # share of rejected children run anyway (not kept) to measure the judge
    api_base: str | None = None
    api_key_env: str | None = None


@dataclass
class ScratchpadConfig:
    """The meta-scratchpad (evolve/mutation/scratchpad.py): a note on what worked and what
    failed, rewritten every `every` evaluations and carried by later prompts."""

    enabled: bool = False
    every: int = bounded(50, ge=1)  # evaluations between versions of the note
    max_chars: int = bounded(1500, ge=0)  # of the note shown in a prompt


@dataclass
class SearchConfig:
    islands: int = bounded(2, ge=1)  # conf/search: follows the budget (evolve/population/budget.py)
    population_size: int = bounded(
        40, ge=1
    )  # programs kept per island (MAP-Elites elites always stay)
    grid_bins: int = bounded(6, ge=1)  # bins per feature dimension of each island's MAP-Elites grid
    # code_length and eval_time are available; eval_time makes a run depend on machine timing,
    # so it is off by default (runs reproduce from their seed).
    generic_features: list[str] = field(default_factory=lambda: ["code_length"])
    # elitist (the best, the first to reach it by default; grid elites when stagnant) | tournament |
    # proportional | power_law (the rank-th best with probability ~ rank^-alpha) | hill_climb
    # (always the best) | seed (always the seed program: the "sample" baseline of bench/search.py)
    selection: Selection = Selection.elitist
    # Elitist selection's parent among the programs tied with the best: first (the first to
    # reach it) | uniform (any of them); docs/search.md, eighth round, says why first
    ties: Ties = Ties.first
    tournament_size: int = bounded(3, ge=1)
    temperature: float = bounded(0.3, gt=0.0)  # for proportional selection
    power_law_alpha: float = bounded(3.0, ge=0.0)  # for power_law selection (docs/search.md: why 3)
    inspirations: int = bounded(2, ge=0)  # other programs shown in each prompt
    in_flight_per_island: int = bounded(
        2, ge=1
    )  # LLM requests in flight per island (the concurrency)
    # Start an island's next LLM request as soon as an answer arrives, while that child is
    # still being checked and evaluated: about 10% more requests per second, but each
    # parent is chosen with twice as many results not yet in (2 x in_flight_per_island
    # instead of in_flight_per_island), and on a slope that costs more than the speed buys
    # (docs/search.md, seventh round). Off: each request slot waits for its child's score.
    pipeline: bool = False
    # Evaluations each island makes between migrations around the ring (0: never): a round
    # every migration_interval x islands evaluations of the run, so each island evolves on
    # its own for as long whatever the island count (two islands: every 40 evaluations).
    migration_interval: int = bounded(20, ge=0)
    # Re-seed an island after this many evaluations without improvement (0: never).
    stagnation_reset: int = bounded(0, ge=0)
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    scratchpad: ScratchpadConfig = field(default_factory=ScratchpadConfig)
    # Prompt templates chosen per request by a bandit rewarded by improvement over the parent:
    # any of diff, rewrite, explain, crossover and a problem's own prompts/NAME.txt. Empty:
    # diff or rewrite by llm.diff_probability.
    prompt_variants: list[str] = field(default_factory=list)
    prompt_selection: Bandit = Bandit.thompson  # weighted | ucb | thompson


@dataclass
class SandboxConfig:
    workers: int = bounded(2, ge=1)  # evaluator processes (warm workers)
    cpus_per_worker: float = bounded(1.0, ge=0.0)  # Ray CPUs each evaluator reserves
    timeout_s: float | None = bounded(
        None, gt=0.0
    )  # wall-time limit per child (None: the problem's own)
    # Modules the warm workers import once, so children start with them loaded.
    preload: list[str] = field(default_factory=lambda: ["numpy", "numba"])
    # Preloaded modules that make every fork dearer (numba: ~1.5x, bench/sandbox.py): each
    # worker keeps a second warm server without them for children whose code never names them.
    on_demand: list[str] = field(default_factory=lambda: ["numba"])
    # Run children with your own file rights where there is no Landlock and no root (they could
    # rewrite the evaluator and the run database); off: the run refuses to start there.
    allow_unconfined_files: bool = False


@dataclass
class ClusterConfig:
    address: str | None = None  # None: start Ray locally; "auto" or ray://host:port: join
    num_cpus: int | None = bounded(None, ge=1)  # CPUs for a local Ray (None: all)
    log_to_driver: bool = False  # show actor logs in the console
    # Evaluation queue shards (duplicate gate, jobs, group commit), each a process on the
    # driver's node with its share of sandbox.workers: raise it when one queue's core is the
    # limit (docs/cluster.md: the ceiling per queue).
    queues: int = bounded(1, ge=1)
    # A Ray started for this run leaves out the head processes a run never uses (Ray's API
    # server, the autoscaler's monitor, the log monitor unless log_to_driver): seconds of
    # start-up on a small machine. false: start Ray in full, as `ray.init` would (for Ray's
    # own tools against this run's Ray, e.g. `ray status`). Joining a cluster is unaffected.
    lean_start: bool = True


@dataclass
class BudgetConfig:
    evaluations: int = bounded(2000, ge=1)  # children run in the sandbox (the seed counts)
    wall_time_s: float | None = bounded(None, gt=0.0)
    max_cost_usd: float | None = bounded(None, ge=0.0)
    max_llm_calls: int | None = bounded(None, ge=0)
    max_iterations: int | None = bounded(
        None, ge=1
    )  # LLM round-trips incl. rejected edits (None: 5x evaluations)


@dataclass
class LiteratureConfig:
    enabled: bool = True  # check each new best against the known results
    llm: str | None = (
        None  # optional litellm model for an advisory prior-work note (never changes a verdict)
    )
    llm_api_base: str | None = None  # server URL for that model, if not the provider's default
    llm_api_key_env: str | None = None  # NAME of the environment variable holding its key
    llm_timeout_s: float = bounded(60.0, gt=0.0)
    # How long the end of a run waits for the check of its final best (never past a
    # wall-time budget); a check not done by then leaves the best unchecked, and says so.
    final_wait_s: float = bounded(300.0, ge=0.0)


@dataclass
class ReportConfig:
    live: bool = True  # the live console view
    refresh_per_second: float = bounded(4.0, gt=0.0)


@dataclass
class EvolveConfig:
    problem: ProblemConfig = field(default_factory=ProblemConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    literature: LiteratureConfig = field(default_factory=LiteratureConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    seed: int = 0
    runs_dir: str = "runs"  # where run folders are made
    resume: str | None = None  # path to a run folder to continue


def register() -> None:
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="evolve_schema", node=EvolveConfig)


def llm_models(llm: dict[str, Any]) -> list[dict[str, Any]]:
    """The models a run calls: the ensemble if one is given, else the single `llm.model`."""
    return list(llm.get("ensemble") or []) or [llm]


class ConfigError(ValueError):
    """A run config that does not fit the schema; the message names the key and what is allowed."""


_NO_SUCH_KEY = "no such setting; check the spelling (`evolve run --cfg job` lists every key)"
_OMEGACONF_WORDING = (
    (re.compile(r"Invalid value (.*), expected one of \[(.*)\]"), r"must be one of \2, got \1"),
    (
        re.compile(r"Value (.*) of type '\w+' could not be converted to Integer"),
        r"must be an integer, got \1",
    ),
    (
        re.compile(r"Value (.*) of type '\w+' could not be converted to Float"),
        r"must be a number, got \1",
    ),
    (
        re.compile(r"Value (.*) of type '\w+' could not be converted to Boolean"),
        r"must be true or false, got \1",
    ),
    (
        re.compile(r"Value (.*) of type '\w+' could not be converted to (\w+)"),
        r"must be of type \2, got \1",
    ),
    (re.compile(r"Key '(.*)' not in '\w+'"), _NO_SUCH_KEY),
    (re.compile(r"Key '(.*)' is not in struct"), _NO_SUCH_KEY),
)


def one_line(exc: Exception, section: str = "") -> str:
    """An OmegaConf schema error as `key: what is allowed, got what` on one line (the key
    under `section` when the values checked were one group's)."""
    msg = str(getattr(exc, "msg", "") or exc).splitlines()[0].strip()
    for pattern, words in _OMEGACONF_WORDING:
        if pattern.fullmatch(msg):
            msg = pattern.sub(words, msg)
            break
    key = ".".join(k for k in (section, getattr(exc, "full_key", "") or "") if k)
    return f"{key}: {msg}" if key else msg


def _schema_of(section: str) -> type:
    node: Any = EvolveConfig
    for part in section.split(".") if section else []:
        node = {f.name: f for f in fields(node)}[part].default_factory  # type: ignore[misc]
    return node


@lru_cache(maxsize=16)
def _structured(schema: type) -> Any:
    # Building the typed config takes ~0.1 s; merging copies it, so one serves every check.
    from omegaconf import OmegaConf

    return OmegaConf.structured(schema)


def check(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` checked against the schema of `section` ("" for the whole config, "llm" for one
    group): types, Enums, unknown keys (via OmegaConf) and ranges. Returns it with defaults
    filled in and Enums as their plain values; raises ConfigError naming the key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = _schema_of(section)
    if not isinstance(values, dict):
        raise ConfigError(f"{section or 'the config'}: must be a mapping, got {values!r:.60}")
    try:
        merged = OmegaConf.merge(_structured(schema), values)
        plain = OmegaConf.to_container(merged, resolve=True, enum_to_str=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(one_line(exc, section)) from None
    _check_ranges(schema, plain, section)
    return plain  # type: ignore[return-value]


def _check_ranges(schema: type, values: dict[str, Any], prefix: str) -> None:
    for f in fields(schema):
        key, value = f"{prefix}.{f.name}" if prefix else f.name, values.get(f.name)
        if isinstance(value, dict) and is_dataclass(f.default_factory):
            _check_ranges(f.default_factory, value, key)  # type: ignore[arg-type]
        elif isinstance(value, list) and f.name == "ensemble":
            for i, item in enumerate(value):
                _check_ranges(ModelConfig, item, f"{key}[{i}]")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            ge, gt, le = (f.metadata.get(k) for k in ("ge", "gt", "le"))
            if ge is not None and value < ge:
                raise ConfigError(f"{key}: must be at least {ge:g}, got {value!r}")
            if gt is not None and not value > gt:
                raise ConfigError(f"{key}: must be greater than {gt:g}, got {value!r}")
            if le is not None and value > le:
                raise ConfigError(f"{key}: must be at most {le:g}, got {value!r}")


def validate(cfg: dict[str, Any]) -> None:
    """Check a whole run config (composed by Hydra, or a resumed run's saved one) against the
    schema, then what one key alone cannot say; raise ConfigError naming the key and the fix."""
    cfg = check("", cfg)
    from evolve.mutation.client import check_config

    check_config(cfg["llm"])
    variants = list(cfg["search"]["prompt_variants"])
    if variants:
        from evolve.mutation.prompts import template_names
        from evolve.problem import load_problem

        names = template_names(load_problem(cfg["problem"]["name"]).path)
        unknown = [v for v in variants if v not in names]
        if unknown:
            raise ConfigError(
                f"search.prompt_variants: no template {', '.join(map(repr, unknown))}; the "
                f"templates are {', '.join(names)} (a problem adds its own in prompts/NAME.txt)"
            )
