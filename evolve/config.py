"""The configuration schema: every knob, its default and what it does.

Each group is a dataclass registered in Hydra's ConfigStore, so a misspelt key in a YAML file
or on the command line is an error, not a silent no-op. The YAML files in conf/ choose among
presets (llm=openai, search=..., problem=erdos/golomb); this file is the schema they fill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ProblemConfig:
    name: str = MISSING  # built-in name (erdos/min_overlap), a folder path, or a plug-in name
    params: dict[str, Any] = field(default_factory=dict)  # instance parameters (e.g. n)


@dataclass
class ModelConfig:
    model: str = MISSING  # any litellm model string, e.g. openai/gpt-4.1-mini
    weight: float = 1.0  # share of requests in a weighted ensemble
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
    selection: str = (
        "weighted"  # weighted | ucb | thompson (bandits reward improvement over the parent)
    )
    replay_file: str | None = None  # for llm=replay: a JSONL file of recorded prompts and responses
    temperature: float = 0.8
    max_tokens: int = 4096
    timeout_s: float = 120.0  # per request
    max_retries: int = 3  # the only retry layer (litellm's own retries are off)
    backoff_s: float = 1.0  # first retry delay; doubles per attempt (Retry-After wins when given)
    diff_probability: float = 0.8  # share of prompts asking for SEARCH/REPLACE edits vs a rewrite


@dataclass
class NoveltyConfig:
    """The novelty filter (evolve/population/novelty.py): a child too similar to a program
    its island holds is rejected before it runs, recorded with the neighbour."""

    enabled: bool = False
    # Cosine similarity to the nearest program at or above which a child is rejected. The
    # offline embedding reads constants to two significant digits, so 0.9995 rejects programs
    # that differ only by constants nudged below that; for an LLM embedding ~0.95 is usual.
    threshold: float = 0.9995
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
    threshold: float = 0.1  # a child whose predicted chance of improving is below this is not run
    audit: float = 0.0  # share of rejected children run anyway (not kept) to measure the judge
    api_base: str | None = None
    api_key_env: str | None = None


@dataclass
class ScratchpadConfig:
    """The meta-scratchpad (evolve/mutation/scratchpad.py): a note on what worked and what
    failed, rewritten every `every` evaluations and carried by later prompts."""

    enabled: bool = False
    every: int = 50  # evaluations between versions of the note
    max_chars: int = 1500  # of the note shown in a prompt


@dataclass
class SearchConfig:
    islands: int = 2  # conf/search: follows the budget (evolve/population/budget.py)
    population_size: int = 40  # programs kept per island (MAP-Elites elites always stay)
    grid_bins: int = 6  # bins per feature dimension of each island's MAP-Elites grid
    # code_length and eval_time are available; eval_time makes a run depend on machine timing,
    # so it is off by default (runs reproduce from their seed).
    generic_features: list[str] = field(default_factory=lambda: ["code_length"])
    # elitist (the best, drifting over ties; grid elites when stagnant) | tournament |
    # proportional | power_law (the rank-th best with probability ~ rank^-alpha) | hill_climb
    # (always the best) | seed (always the seed program: the "sample" baseline of bench/search.py)
    selection: str = "elitist"
    tournament_size: int = 3
    temperature: float = 0.3  # for proportional selection
    power_law_alpha: float = 3.0  # for power_law selection (docs/search.md: why 3)
    inspirations: int = 2  # other programs shown in each prompt
    in_flight_per_island: int = 2  # LLM requests in flight per island (the concurrency)
    # Start an island's next LLM request as soon as an answer arrives, while that child is
    # still being checked and evaluated (up to in_flight_per_island children in evaluation).
    # Off: each request slot waits for its child's score, which with one island and one
    # request in flight makes a run reproducible from its seed.
    pipeline: bool = True
    migration_interval: int = 40  # evaluations between migrations around the ring (0: never)
    stagnation_reset: int = (
        0  # re-seed an island after this many evaluations without improvement (0: never)
    )
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    scratchpad: ScratchpadConfig = field(default_factory=ScratchpadConfig)
    # Prompt templates chosen per request by a bandit rewarded by improvement over the parent:
    # any of diff, rewrite, explain, crossover and a problem's own prompts/NAME.txt. Empty:
    # diff or rewrite by llm.diff_probability.
    prompt_variants: list[str] = field(default_factory=list)
    prompt_selection: str = "thompson"  # weighted | ucb | thompson


@dataclass
class SandboxConfig:
    workers: int = 2  # evaluator processes (warm workers)
    cpus_per_worker: float = 1.0  # Ray CPUs each evaluator reserves
    timeout_s: float | None = None  # wall-time limit per child (None: the problem's own)
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
    num_cpus: int | None = None  # CPUs for a local Ray (None: all)
    log_to_driver: bool = False  # show actor logs in the console


@dataclass
class BudgetConfig:
    evaluations: int = 2000  # children run in the sandbox (the seed counts)
    wall_time_s: float | None = None
    max_cost_usd: float | None = None
    max_llm_calls: int | None = None
    max_iterations: int | None = None  # LLM round-trips incl. rejected edits (None: 5x evaluations)


@dataclass
class LiteratureConfig:
    enabled: bool = True  # check each new best against the known results
    llm: str | None = (
        None  # optional litellm model for an advisory prior-work note (never changes a verdict)
    )
    llm_api_base: str | None = None  # server URL for that model, if not the provider's default
    llm_api_key_env: str | None = None  # NAME of the environment variable holding its key
    llm_timeout_s: float = 60.0


@dataclass
class ReportConfig:
    live: bool = True  # the live console view
    refresh_per_second: float = 4.0


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
    cs = ConfigStore.instance()
    cs.store(name="evolve_schema", node=EvolveConfig)


def llm_models(llm: dict[str, Any]) -> list[dict[str, Any]]:
    """The models a run calls: the ensemble if one is given, else the single `llm.model`."""
    return list(llm.get("ensemble") or []) or [llm]


def validate(cfg: dict[str, Any]) -> None:
    """Checks Hydra's types cannot express; raise ValueError naming the key and the fix."""
    from evolve.population.island import SELECTIONS

    s = cfg["search"]
    if s["islands"] < 1:
        raise ValueError("search.islands must be at least 1")
    if s["selection"] not in SELECTIONS:
        raise ValueError(
            f"search.selection={s['selection']!r} is unknown; choose one of {', '.join(SELECTIONS)}"
        )
    if s["in_flight_per_island"] < 1:
        raise ValueError("search.in_flight_per_island must be at least 1")
    if cfg["budget"]["evaluations"] < 1:
        raise ValueError("budget.evaluations must be at least 1")
    if cfg["sandbox"]["workers"] < 1:
        raise ValueError("sandbox.workers must be at least 1")
    if not cfg["llm"]["model"] and not cfg["llm"]["ensemble"]:
        raise ValueError("llm.model is empty; give a litellm model string or an llm.ensemble")
    from evolve.mutation.client import check_config

    check_config(cfg["llm"])
    if not 0.0 <= cfg["llm"]["diff_probability"] <= 1.0:
        raise ValueError("llm.diff_probability must be between 0 and 1")
    from evolve.mutation.ensemble import SELECTIONS as BANDITS

    if s.get("prompt_selection", "thompson") not in BANDITS:
        raise ValueError(
            f"search.prompt_selection={s['prompt_selection']!r} is unknown; choose one of "
            f"{', '.join(BANDITS)}"
        )
    variants = list(s.get("prompt_variants") or [])
    if variants:
        from evolve.mutation.prompts import template_names
        from evolve.problem import load_problem

        names = template_names(load_problem(cfg["problem"]["name"]).path)
        unknown = [v for v in variants if v not in names]
        if unknown:
            raise ValueError(
                f"search.prompt_variants: no template {', '.join(map(repr, unknown))}; the "
                f"templates are {', '.join(names)} (a problem adds its own in prompts/NAME.txt)"
            )
    if (s.get("scratchpad") or {}).get("enabled") and int(s["scratchpad"]["every"]) < 1:
        raise ValueError("search.scratchpad.every must be at least 1 evaluation")
    judge = s.get("judge") or {}
    for key in ("threshold", "audit"):
        if not 0.0 <= float(judge.get(key, 0.0)) <= 1.0:
            raise ValueError(f"search.judge.{key} must be between 0 and 1")
    nov = s.get("novelty") or {}
    if not 0.0 < float(nov.get("threshold", 0.9995)) <= 1.0:
        raise ValueError("search.novelty.threshold must be in (0, 1]: a cosine similarity")
