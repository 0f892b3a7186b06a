"""The schemas of the run config and of the files evolve reads, and the one-line errors they give.

Each error names the file, the key path and what is allowed; these tests pin the wording a
user sees for the common mistakes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
import yaml

from evolve.config import ConfigError, EvolveConfig, check, validate
from evolve.literature.catalogue import CatalogueError, load_catalogue, validate_catalogue
from evolve.literature.known import KnownError, known_table, read_known_yaml
from evolve.paths import problems_dir
from evolve.problem import ProblemError, load_problem
from evolve.sandbox.runner import read_npz


def _copy(tmp_path: Path, name: str, **changes) -> Path:
    folder = tmp_path / name.replace("/", "_")
    shutil.copytree(
        problems_dir() / name, folder, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    raw = yaml.safe_load((folder / "problem.yaml").read_text())
    for dotted, value in changes.items():
        node, *path, last = [raw, *dotted.split("__")]
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    (folder / "problem.yaml").write_text(yaml.safe_dump(raw))
    return folder


# --- problem.yaml ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("problem", "changes", "message"),
    [
        (
            "scheduling/binpacking_online",
            {"cascade": [{"name": "a", "instances": 1}, {"name": "b", "threshold": "abc"}]},
            "cascade[1].threshold: must be a number, got 'abc'",
        ),
        (
            "erdos/golomb",
            {"direction": "maximise"},
            "direction: must be 'max' or 'min', got 'maximise'",
        ),
        (
            "erdos/golomb",
            {"description": KeyError},
            "description: is required (the statement that goes into the prompt)",
        ),
        (
            "erdos/golomb",
            {"titel": "x"},
            "top level: unknown key 'titel'; allowed: name, title, direction,",
        ),
        (
            "erdos/golomb",
            {"outputs": {"marks": {"dtype": "complex"}}},
            "outputs.marks.dtype: must be 'float', 'int' or 'bool', got 'complex'",
        ),
        ("erdos/golomb", {"limits": {"time_s": -1}}, "limits.time_s: must be positive, got -1"),
        ("erdos/golomb", {"limits": {"memory_mb": 1.5}}, "limits.memory_mb: must be an integer"),
        (
            "scheduling/binpacking_online",
            {"instances__train__weibull__seeds": [1, "two"]},
            "instances.train.weibull.seeds[1]: must be an integer, got 'two'",
        ),
        (
            "scheduling/binpacking_online",
            {"online": "yes"},
            "online: must be true or {item_size: N, decision_size: M}, got 'yes'",
        ),
        (
            "scheduling/binpacking_online",
            {"cascade__0__relative_to": "grandparent"},
            "cascade[0].relative_to: must be 'parent' or 'island_best', got 'grandparent'",
        ),
    ],
)
def test_problem_yaml_errors_name_the_file_the_key_and_what_is_allowed(
    tmp_path, problem, changes, message
):
    folder = _copy(tmp_path, problem, **changes)
    with pytest.raises(ProblemError) as exc:
        load_problem(folder)
    text = str(exc.value)
    assert text.startswith(f"{folder / 'problem.yaml'}: {message}"), text
    assert "\n" not in text


def test_numbers_pyyaml_reads_as_text_are_numbers(tmp_path):
    folder = _copy(tmp_path, "erdos/golomb")
    text = (folder / "problem.yaml").read_text()
    (folder / "problem.yaml").write_text(text + "tolerance: 1e-6\n")  # PyYAML: the string '1e-6'
    assert load_problem(folder).tolerance == 1e-6


def test_a_problem_is_built_from_its_schema(tmp_path):
    p = load_problem("scheduling/binpacking_online")
    assert p.direction == "min" and type(p.direction) is str  # plain values past the schema
    assert [s.name for s in p.cascade] == ["quick", "full"]
    assert p.cascade[0].instances == 1 and p.cascade[0].margin == 0.05
    assert (p.online.item_size, p.online.decision_size) == (1, 1)
    assert set(p.instance_sets) == {"train", "validation", "test"}
    assert p.instance_sets["train"]["weibull"]["seeds"] == [0, 1, 2, 3]
    assert p.outputs.arrays["assignment"].dtype == "int"


# --- known.yaml and the catalogue --------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("direction: up\n", "direction: must be 'max' or 'min', got 'up'"),
        ("best_known: {value: 3}\n", "best_known.citation: is required"),
        ("best_known: {value: 3, citation: ''}\n", "best_known.citation: must not be empty"),
        ("histroy: []\n", "unknown key 'histroy'; allowed: id, erdos_problem"),
        ("constructions: [{file: a.json, name: [1]}]\n", "constructions[0].name: must be text"),
        ("erdos_problem: seven\n", "erdos_problem: must be an integer, got 'seven'"),
    ],
)
def test_known_yaml_errors(tmp_path, text, message):
    path = tmp_path / "known.yaml"
    path.write_text(text)
    with pytest.raises(KnownError) as exc:
        read_known_yaml(path)
    assert str(exc.value).startswith(f"{path}: {message}"), str(exc.value)


def test_known_yaml_allows_value_tables_by_instance(tmp_path):
    path = tmp_path / "known.yaml"
    path.write_text("values_by_n: {11: 72}\nas_of: 2026-08-01\n")
    assert read_known_yaml(path)["values_by_n"] == {11: 72}


def test_catalogue_errors_name_the_entry():
    with pytest.raises(
        CatalogueError, match=r"^cat\.json: entries\[0\]\.erdos_problem: must be an integer"
    ):
        validate_catalogue({"entries": [{"id": "a", "erdos_problem": "x"}]}, "cat.json")
    with pytest.raises(CatalogueError, match=r"^cat\.json: top level: must be a mapping"):
        validate_catalogue([], "cat.json")
    with pytest.raises(
        CatalogueError, match=r"entries\[0\]\.bounds\.lower: must be a mapping or text, got 3"
    ):
        validate_catalogue({"entries": [{"id": "a", "bounds": {"lower": 3}}]}, "cat.json")


def test_a_catalogue_bound_given_in_words_is_shown_not_a_crash():
    # Eight entries of the reference catalogue state a bound in words; known_table raised
    # TypeError on them (`evolve literature erdos_unit_distance_exponent` crashed).
    entry = next(
        e for e in load_catalogue()["entries"] if e["id"] == "erdos_unit_distance_exponent"
    )
    assert isinstance(entry["bounds"]["lower"], str)
    table = known_table(entry_id="erdos_unit_distance_exponent")
    assert entry["bounds"]["lower"] in [b.value for b in table.bounds]


@pytest.mark.parametrize("template", ["{0}", "{x}", "{"])
def test_a_construction_path_that_does_not_fit_the_params_is_a_known_error(tmp_path, template):
    folder = tmp_path / "golomb"
    shutil.copytree(
        problems_dir() / "erdos/golomb", folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    raw = yaml.safe_load((folder / "known.yaml").read_text())
    raw["constructions"] = [
        {"file": raw["constructions"][0]["file"], "outputs": {"marks": template}}
    ]
    (folder / "known.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(KnownError, match="construction outputs path .* does not fit params"):
        known_table(load_problem(folder))  # raised IndexError, KeyError or ValueError before


# --- a child's reply bytes ---------------------------------------------------------------------
def test_an_encrypted_npz_member_is_bad_output_not_a_crash():
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(3))
    data = bytearray(buf.getvalue())
    data[data.find(b"PK\x01\x02") + 8] |= 1  # the "encrypted" flag of the member
    with pytest.raises(ValueError, match="not a readable .npz"):
        read_npz(bytes(data), 1 << 20)
    assert list(read_npz(buf.getvalue(), 1 << 20)["a"]) == [0, 1, 2]
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        assert zf.infolist()[0].flag_bits & 1  # the damage is the one meant


# --- the run config ----------------------------------------------------------------------------
def _defaults() -> dict:
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.structured(EvolveConfig), enum_to_str=True)
    cfg["problem"]["name"] = "erdos/min_overlap"
    return cfg


def test_the_run_config_declares_its_choices_as_enums():
    from evolve.config import LLMConfig, SearchConfig

    for value in (SearchConfig().selection, SearchConfig().prompt_selection, LLMConfig().selection):
        assert isinstance(value, Enum)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "search.selection",
            "greedy",
            "search.selection: must be one of elitist, tournament, proportional, power_law, hill_climb, "
            "seed, got 'greedy'",
        ),
        ("search.islands", 0, "search.islands: must be at least 1, got 0"),
        ("search.islands", "two", "search.islands: must be an integer, got 'two'"),
        ("llm.diff_probability", 1.5, "llm.diff_probability: must be at most 1, got 1.5"),
        ("llm.selection", "best", "llm.selection: must be one of weighted, ucb, thompson"),
        ("search.judge.audit", -0.1, "search.judge.audit: must be at least 0, got -0.1"),
        ("search.novelty.threshold", 0, "search.novelty.threshold: must be greater than 0, got 0"),
        ("budget.evaluations", 0, "budget.evaluations: must be at least 1, got 0"),
        ("search.islandz", 3, "search.islandz: no such setting; check the spelling"),
    ],
)
def test_a_saved_or_composed_config_is_checked_by_the_schema(key, value, message):
    # validate() sees configs Hydra composed and configs a resumed run saved (not composed).
    cfg = _defaults()
    section, _, name = key.rpartition(".")
    node = cfg
    for part in section.split("."):
        node = node[part]
    node[name] = value
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    assert str(exc.value).startswith(message), str(exc.value)


def test_an_ensemble_model_is_checked_too():
    with pytest.raises(ConfigError, match=r"^llm\.ensemble\[1\]\.weight: must be at least 0"):
        check("llm", {"ensemble": [{"model": "a"}, {"model": "b", "weight": -1}]})


def test_a_bad_override_is_one_line_with_the_reason(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "evolve.cli", "run", "search.islands=abc", f"runs_dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == ["error: search.islands: must be an integer, got 'abc'"], r.stderr
