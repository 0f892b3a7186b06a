"""Parent selection and inspirations: each strategy's statistics, and determinism."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from island_helpers import member

from evolve.population.island import Island

N = 10  # members, fitness 9 (rank 0) down to 0 (rank 9)
DRAWS = 20_000


def island(selection: str, **kw) -> Island:
    isl = Island(0, ["f"], capacity=N, bins=2, selection=selection, **kw)
    for i in range(N):
        isl.add(member(i, float(i), f=float(i % 2)))
    return isl


def rank_freqs(isl: Island, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    counts = Counter(isl.sample_parent(rng).id for _ in range(DRAWS))
    return [counts[N - 1 - r] / DRAWS for r in range(N)]  # by rank: best first


def test_hill_climb_always_takes_the_best() -> None:
    assert set(rank_freqs(island("hill_climb"))) == {1.0, 0.0}
    assert rank_freqs(island("hill_climb"))[0] == 1.0


def test_elitist_with_uniform_ties_takes_the_best_and_draws_uniformly_among_its_ties() -> None:
    isl = island("elitist", ties="uniform")
    assert set(rank_freqs(isl)) == {1.0, 0.0} and rank_freqs(isl)[0] == 1.0
    # two children as good as the best (and one as good as the second) arrive
    isl.add(member(50, float(N - 1)))
    isl.add(member(51, float(N - 2)))
    isl.add(member(52, float(N - 1)))
    assert isl.best.id == N - 1  # the best is still the first to reach that fitness...
    rng = random.Random(0)
    seen = Counter(isl.sample_parent(rng).id for _ in range(DRAWS))
    # ...and every program tied with it is a parent as often: neither the oldest only (hill
    # climbing re-edits one program) nor the newest only (drift walks away from the others)
    assert set(seen) == {N - 1, 50, 52}
    for tie in (N - 1, 50, 52):
        assert abs(seen[tie] / DRAWS - 1 / 3) < 0.015
    isl.add(member(53, float(N)))  # strictly better: the only parent again
    assert {isl.sample_parent(rng).id for _ in range(100)} == {53}


def test_elitist_by_default_breeds_from_the_first_to_reach_the_best() -> None:
    isl = island("elitist", explore=0.0)  # ties="first", the default here and in the config
    # ids in the reverse of arrival: the rank goes by when a member joined, not by id
    isl.add(member(60, float(N - 1)))
    isl.add(member(55, float(N - 1)))
    rng = random.Random(0)
    assert {isl.sample_parent(rng).id for _ in range(200)} == {N - 1}
    isl.add(member(40, float(N)))
    isl.add(member(30, float(N)))
    assert {isl.sample_parent(rng).id for _ in range(200)} == {40}
    with pytest.raises(ValueError, match="unknown tie rule 'newest'"):
        Island(0, ["f"], selection="elitist", ties="newest")


def test_elitist_explores_grid_elites_only_when_stagnant() -> None:
    isl = Island(0, ["f"], capacity=30, bins=5, selection="elitist", patience=10, explore=0.3)
    for i in range(30):
        isl.add(member(i, float(i), f=float(i % 5)))  # 5 cells, elites 25..29; best 29
    elites = {e.id for e in isl.grid.elites()}
    rng = random.Random(3)

    def parents() -> Counter[int]:
        return Counter(isl.sample_parent(rng).id for _ in range(DRAWS))

    assert parents() == Counter({29: DRAWS})  # improving (the clock is at 0): exploit only
    isl.evaluations = 9
    assert parents() == Counter({29: DRAWS})  # one short of the patience
    isl.evaluations = 10
    seen = parents()
    assert set(seen) == elites  # stagnant: every elite gets offspring, nothing else
    # the best with 1 - explore, plus its share of the uniform draw among 5 elites
    assert abs(seen[29] / DRAWS - (0.7 + 0.3 / 5)) < 0.015
    for e in elites - {29}:
        assert abs(seen[e] / DRAWS - 0.3 / 5) < 0.01
    isl.add(member(100, 100.0, f=0.0))  # a new best restarts the clock: exploit only again
    assert parents() == Counter({100: DRAWS})


def test_elitist_without_exploration_never_leaves_the_best() -> None:
    isl = Island(0, ["f"], capacity=30, bins=5, selection="elitist", explore=0.0)
    for i in range(30):
        isl.add(member(i, float(i), f=float(i % 5)))
    isl.evaluations = 1000
    rng = random.Random(0)
    assert {isl.sample_parent(rng).id for _ in range(500)} == {29}


def test_seed_selection_always_takes_the_first_program_even_once_trimmed() -> None:
    isl = Island(0, ["f"], capacity=2, bins=1, selection="seed")
    isl.add(member(0, -5.0, f=0.0))  # the seed, worst of all
    for i in range(1, 6):
        isl.add(member(i, float(i), f=0.0))
    assert 0 not in isl.members  # trimmed from the population...
    rng = random.Random(0)
    assert {isl.sample_parent(rng).id for _ in range(50)} == {0}  # ...still every parent


@pytest.mark.parametrize("size", [1, 3, 5])
def test_tournament_matches_its_distribution(size: int) -> None:
    freqs = rank_freqs(island("tournament", tournament_size=size))
    # the best of `size` distinct ranks drawn uniformly is rank r with C(N-1-r, size-1)/C(N, size)
    expected = [math.comb(N - 1 - r, size - 1) / math.comb(N, size) for r in range(N)]
    for f, e in zip(freqs, expected, strict=True):
        assert abs(f - e) < 0.015
    if size > 1:
        assert freqs[0] > freqs[N // 2] > freqs[-1]


def test_proportional_temperature_sharpens_or_flattens() -> None:
    cold = rank_freqs(island("proportional", temperature=0.1))
    warm = rank_freqs(island("proportional", temperature=1.0))
    hot = rank_freqs(island("proportional", temperature=100.0))
    assert cold[0] > warm[0] > hot[0]
    assert cold[0] > 0.6 and max(abs(f - 1 / N) for f in hot) < 0.015
    # warm: weights exp((x - 1) / t) on fitness normalised to [0, 1]
    w = [math.exp(((N - 1 - r) / (N - 1) - 1.0) / 1.0) for r in range(N)]
    for f, e in zip(warm, w, strict=True):
        assert abs(f - e / sum(w)) < 0.015


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_power_law_by_rank(alpha: float) -> None:
    freqs = rank_freqs(island("power_law", power_law_alpha=alpha))
    w = [(r + 1) ** -alpha for r in range(N)]
    for f, e in zip(freqs, w, strict=True):
        assert abs(f - e / sum(w)) < 0.015


def test_weights_follow_membership_changes() -> None:
    isl = island("proportional", temperature=0.05)
    rng = random.Random(1)
    assert isl.sample_parent(rng).id == N - 1
    isl.add(member(100, 50.0))
    assert Counter(isl.sample_parent(rng).id for _ in range(200))[100] > 190


def test_inspirations_mix_top_and_diverse() -> None:
    isl = Island(0, ["f"], capacity=30, bins=5, exploit_ratio=0.5)
    for i in range(30):
        isl.add(member(i, float(i), f=float(i % 5)))  # fittest are 29, 28, ...; 5 cells
    parent = isl.best
    elites = {e.id for e in isl.grid.elites()}
    assert elites == {25, 26, 27, 28, 29}
    rng = random.Random(0)
    seen_diverse: Counter[int] = Counter()
    for _ in range(300):
        insp = isl.sample_inspirations(rng, parent, 4)
        ids = [m.id for m in insp]
        assert len(ids) == 4 == len(set(ids)) and parent.id not in ids
        assert ids[:2] == [28, 27]  # the top, parent excluded
        assert set(ids[2:]) <= elites - {28, 27, 29}  # diverse elites from other cells
        seen_diverse.update(ids[2:])
    assert set(seen_diverse) == {25, 26}


def test_inspirations_top_up_when_the_grid_is_small() -> None:
    isl = Island(0, [], capacity=10, exploit_ratio=0.0)  # one cell: no diverse elites
    for i in range(6):
        isl.add(member(i, float(i)))
    rng = random.Random(0)
    parent = isl.members[0]
    insp = isl.sample_inspirations(rng, parent, 3)
    assert len({m.id for m in insp}) == 3 and parent not in insp
    assert isl.sample_inspirations(rng, parent, 0) == []
    everyone = isl.sample_inspirations(rng, parent, 50)
    assert sorted(m.id for m in everyone) == [1, 2, 3, 4, 5]


def test_same_seed_same_choices() -> None:
    def run(seed: int) -> list[tuple[int, tuple[int, ...]]]:
        rng = random.Random(seed)
        isl = Island(0, ["a"], capacity=15, bins=4, selection="tournament")
        out = []
        for i in range(300):
            if len(isl):
                p = isl.sample_parent(rng)
                out.append((p.id, tuple(m.id for m in isl.sample_inspirations(rng, p, 3))))
            isl.add(member(i, rng.gauss(0, 1), a=rng.uniform(0, i + 1)))
        return out

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_step_streams_are_independent_per_decision_and_stable() -> None:
    from evolve.engine.island_actor import StepStreams

    quiet, busy = StepStreams(7, 0, 3), StepStreams(7, 0, 3)
    for _ in range(50):  # one run's selection draws far more than the other's
        busy.parent.random()
    assert quiet.call.getrandbits(31) == busy.call.getrandbits(31)
    assert quiet.model.random() == busy.model.random()
    # Seeded by name through SHA-512: the same numbers in every process and Python run.
    again = StepStreams(7, 0, 3)
    assert again.parent.random() == StepStreams(7, 0, 3).parent.random()
    assert StepStreams(7, 0, 3).call.random() != StepStreams(7, 0, 4).call.random()
    assert StepStreams(7, 0, 3).call.random() != StepStreams(7, 1, 3).call.random()
    assert StepStreams(7, 0, 3).call.random() != StepStreams(8, 0, 3).call.random()
