"""The default island count follows the evaluation budget, in the function and in the config."""

from __future__ import annotations

import pytest

from evolve.population.budget import islands_for_budget


def _config(*overrides: str) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from evolve import config as config_mod
    from evolve.cli import _register_resolvers
    from evolve.paths import conf_dir

    config_mod.register()
    _register_resolvers()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize(
    ("evaluations", "islands"), [(1, 1), (150, 1), (1999, 1), (2000, 2), (2999, 2), (10**6, 2)]
)
def test_one_island_per_thousand_evaluations_at_most_two(evaluations: int, islands: int) -> None:
    assert islands_for_budget(evaluations) == islands


def test_the_share_and_the_ceiling_are_parameters() -> None:
    assert islands_for_budget(10_000, per_island=500, most=8) == 8
    assert islands_for_budget(2_500, per_island=500, most=8) == 5
    assert islands_for_budget(0) == 1  # a bad budget is the config validation's to name
    with pytest.raises(ValueError, match="per_island and most must be positive integers"):
        islands_for_budget(100, per_island=0)


def test_the_default_config_resolves_islands_from_the_budget() -> None:
    assert _config("budget.evaluations=150")["search"]["islands"] == 1
    assert _config()["search"]["islands"] == 2  # the default budget of 2,000
    # an explicit island count wins over the rule
    assert _config("budget.evaluations=150", "search.islands=3")["search"]["islands"] == 3
    assert _config()["search"]["selection"] == "elitist"
    assert _config()["search"]["ties"] == "first"  # docs/search.md, eighth round
