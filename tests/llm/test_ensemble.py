"""Ensemble selection: by weight, UCB1 and Thompson sampling, deterministic given the rng."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from evolve.mutation.client import LLMClient, ModelSpec, check_config
from evolve.mutation.ensemble import UCB1, Thompson, Weighted, make_selector


def _simulate(selector, p_success, steps=600, seed=0):
    """Bernoulli rewards with the given success rate per arm; returns the choices."""
    rng, env = random.Random(seed), random.Random(seed + 1)
    picks = []
    for _ in range(steps):
        arm = selector.choose(rng)
        selector.feedback(arm, 1.0 if env.random() < p_success[arm] else 0.0)
        picks.append(arm)
    return picks


def test_weighted_follows_the_weights_and_ignores_rewards():
    picks = Counter(_simulate(Weighted([3.0, 1.0]), [0.0, 1.0], steps=4000))
    assert picks[0] / 4000 == pytest.approx(0.75, abs=0.03)


@pytest.mark.parametrize("kind", [UCB1, Thompson])
def test_bandits_find_the_model_that_improves_most(kind):
    picks = _simulate(kind([1.0, 1.0, 1.0]), [0.05, 0.4, 0.1])
    late = Counter(picks[300:])
    assert late[1] > 0.6 * 300  # most late requests go to the best model
    assert all(Counter(picks)[a] >= 3 for a in range(3))  # every model was tried


@pytest.mark.parametrize("name", ["weighted", "ucb", "thompson"])
def test_selection_is_deterministic_given_the_rng(name):
    a = _simulate(make_selector(name, [1.0, 2.0]), [0.3, 0.2], steps=200, seed=5)
    b = _simulate(make_selector(name, [1.0, 2.0]), [0.3, 0.2], steps=200, seed=5)
    assert a == b


def test_ucb_tries_every_model_first_even_with_requests_in_flight():
    sel = UCB1([1.0, 1.0, 1.0, 1.0])
    rng = random.Random(0)
    assert sorted(sel.choose(rng) for _ in range(4)) == [0, 1, 2, 3]  # no reward yet


def test_a_model_whose_calls_never_earn_a_reward_loses_its_share():
    """No feedback (LLM error, no valid edit) counts as a failure: selections are the
    denominator."""
    sel = Thompson([1.0, 1.0])
    rng = random.Random(1)
    for _ in range(300):
        arm = sel.choose(rng)
        if arm == 1:
            sel.feedback(arm, 0.5)  # arm 0 never gets feedback at all
    assert sel.pulls[1] > 2 * sel.pulls[0]


def test_zero_weight_disables_a_model_in_every_policy():
    for name in ("weighted", "ucb", "thompson"):
        picks = _simulate(make_selector(name, [0.0, 1.0]), [1.0, 0.0], steps=50)
        assert set(picks) == {1}, name


def test_client_choose_and_feedback_drive_the_bandit():
    models = [ModelSpec("evolve-local/mutator"), ModelSpec("evolve-local/other")]
    client = LLMClient(models, selection="ucb")
    rng = random.Random(0)
    for _ in range(100):
        spec = client.choose(rng)
        client.feedback(spec, 1.0 if spec is models[1] else 0.0)
    state = client.selection_state()
    assert state["evolve-local/other"]["pulls"] > state["evolve-local/mutator"]["pulls"]


def test_from_config_builds_an_ensemble():
    cfg = {
        "model": "",
        "ensemble": [
            {"model": "openai/a", "weight": 0.7, "api_key_env": "OPENAI_API_KEY"},
            {"model": "anthropic/b", "weight": 0.3, "input_cost_per_mtok": 1.0},
        ],
        "selection": "thompson",
        "temperature": 0.5,
        "max_tokens": 100,
        "timeout_s": 10.0,
        "max_retries": 1,
    }
    client = LLMClient.from_config(cfg)
    assert [m.model for m in client.models] == ["openai/a", "anthropic/b"]
    assert isinstance(client.selector, Thompson)
    assert client.models[1].input_cost_per_mtok == 1.0


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"selection": "greedy"}, "llm.selection"),
        ({"ensemble": [{"model": "a", "weight": 0.0}]}, "weights"),
        ({"model": "evolve-replay/strict"}, "llm.replay_file"),
        ({"model": "evolve-replay/strict", "replay_file": "/nope.jsonl"}, "does not exist"),
    ],
)
def test_bad_llm_config_is_a_clear_error(bad, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        check_config({"model": "openai/x", **bad})
