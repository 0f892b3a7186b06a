"""Property-based tests of every parser that takes input from outside the engine.

LLM responses into edits, a child's reply bytes into arrays, a child's outputs into a score,
problem.yaml, known.yaml, the catalogue and the run config: for any input each gives a result
or its own one-line error, never another exception (which would crash an island or a worker
and lose the record of that iteration). Hypothesis runs derandomized, so CI tries the same
cases every time; each test prints how many it tried.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from evolve.choices import Bandit, Selection
from evolve.config import ConfigError, check
from evolve.evaluators.spec import OutputError, OutputSpec
from evolve.literature.catalogue import CatalogueError, load_catalogue, validate_catalogue
from evolve.literature.known import KnownError, known_table, read_known_yaml
from evolve.paths import problems_dir
from evolve.problem import ProblemError, load_problem
from evolve.program import EditError, apply_response, code_hash, frozen_parts
from evolve.sandbox.runner import read_npz

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The file parsers read a file per case; 200 each keeps the whole module well under a minute.
FUZZ_FILES = settings(FUZZ, max_examples=200)
EDIT_KINDS = {"no_edit", "malformed", "search_not_found", "outside_block", "no_change"}


def report(capsys: pytest.CaptureFixture, what: str, tried: Counter) -> None:
    """The number of cases tried, shown whether or not pytest captures output."""
    detail = ", ".join(f"{n} {k}" for k, n in sorted(tried.items()) if k != "cases")
    with capsys.disabled():
        print(f"\n[fuzz] {what}: {tried['cases']} cases tried ({detail})")
    assert tried["cases"] >= 100, tried


def one_line(message: str) -> None:
    assert message and "\n" not in message, repr(message)


# --- any value a YAML or JSON file can hold ----------------------------------------------------
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["{0}", "{n}", "{x}", "{", "max", "min", "train", "parent"])  # near misses
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths_in(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a document (mapping keys and list indexes)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths_in(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths_in(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> tuple[Any, str]:
    """`doc` with one to three changes: a value replaced, a key dropped or a key added."""
    doc = copy.deepcopy(doc)
    kinds = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths_in(doc)))
        kind = draw(st.sampled_from(["replace", "drop", "add"]))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if not path:
            doc, kind = draw(values), "replace"
        elif kind == "replace":
            parent[path[-1]] = draw(values)
        elif kind == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        kinds.append(kind)
        if not isinstance(doc, (dict, list)):
            break
    return doc, "+".join(kinds)


# --- LLM responses into edits ------------------------------------------------------------------
PARENT = (problems_dir() / "erdos/min_overlap/initial.py").read_text()
TWO_BLOCKS = (
    "import math\n\n# EVOLVE-BLOCK-START\ndef f(x):\n    return x + 1\n# EVOLVE-BLOCK-END\n\n"
    "def g():\n    return 2\n\n# EVOLVE-BLOCK-START\nK = 3\n# EVOLVE-BLOCK-END\n"
)
FRAGMENTS = [
    "<<<<<<< SEARCH\n",
    "<<<<<<< SEARCH",
    "=======\n",
    "=======",
    ">>>>>>> REPLACE\n",
    ">>>>>>> REPLACE",
    "```python\n",
    "```py\n",
    "```\n",
    "# EVOLVE-BLOCK-START\n",
    "# EVOLVE-BLOCK-END\n",
    "\n",
    "    ",
    "\r\n",
    "def solve() -> dict:\n",
    '    return {"h": heights()}\n',
    "return x + 1",
    "K = 3\n",
    "K = 4\n",
]


@st.composite
def responses(draw: st.DrawFn, parent: str) -> str:
    lines = parent.splitlines(keepends=True)
    piece = st.sampled_from(FRAGMENTS) | st.sampled_from(lines) | st.text(max_size=15)
    return "".join(draw(st.lists(piece, max_size=14)))


@st.composite
def diff_responses(draw: st.DrawFn, parent: str) -> str:
    """One to three SEARCH/REPLACE blocks whose SEARCH is a run of the parent's lines (inside
    a block or not, trailing spaces sometimes changed), with prose around them."""
    lines = parent.splitlines()
    blocks = []
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(lines) - 1))
        search = lines[start : start + draw(st.integers(1, 4))]
        if draw(st.booleans()):
            search = [line + " " for line in search]
        replace = draw(st.lists(st.sampled_from(FRAGMENTS[12:]) | st.text(max_size=20), max_size=3))
        blocks.append(
            "<<<<<<< SEARCH\n"
            + "\n".join(search)
            + "\n=======\n"
            + "".join(replace)
            + "\n>>>>>>> REPLACE"
        )
    prose = st.text(max_size=30).filter(lambda t: "<<<<<<<" not in t and ">>>>>>>" not in t)
    return draw(prose) + "\n" + "\n\n".join(blocks) + "\n" + draw(prose)


@st.composite
def rewrite_responses(draw: st.DrawFn, parent: str) -> str:
    """A fenced code block: the parent (or its block bodies) with lines changed or dropped."""
    lines = parent.splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = draw(st.sampled_from(["", "    pass\n", "x = 1\n"]) | st.text(max_size=12))
    fence = draw(st.sampled_from(["```python\n", "```py\n", "```\n"]))
    return draw(st.text(max_size=20)) + fence + "".join(lines) + "```" + draw(st.text(max_size=20))


def test_any_llm_response_gives_a_child_or_an_edit_error(capsys):
    tried: Counter = Counter()

    @FUZZ
    @given(
        parent=st.sampled_from([PARENT, TWO_BLOCKS]),
        data=st.data(),
        kind=st.sampled_from(["text", "pieces", "diff", "rewrite"]),
    )
    def check_response(parent: str, data: st.DataObject, kind: str) -> None:
        shapes = {
            "text": st.text(max_size=200),
            "pieces": responses(parent),
            "diff": diff_responses(parent),
            "rewrite": rewrite_responses(parent),
        }
        response = data.draw(shapes[kind])
        tried["cases"] += 1
        try:
            child, mode = apply_response(parent, response)
        except EditError as exc:
            tried[exc.kind] += 1
            assert exc.kind in EDIT_KINDS
            one_line(str(exc))
            return
        tried[mode] += 1
        assert mode in ("diff", "rewrite") and child != parent
        assert frozen_parts(child) == frozen_parts(parent)  # nothing outside the blocks moved
        assert len(code_hash(child)) == 32  # the engine hashes every child next

    check_response()
    report(capsys, "LLM responses into edits", tried)
    assert tried["diff"] and tried["rewrite"], tried  # the generator reaches real children


# --- a child's reply bytes into arrays ---------------------------------------------------------
# The one error read_npz gives for bytes it cannot read; anything else would crash the sandbox.
READ_ERRORS = (ValueError,)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.int64, np.int32, np.uint8, np.bool_, np.float32]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
)


def npz_bytes(named: dict[str, np.ndarray], compressed: bool) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **named)
    return buf.getvalue()


@st.composite
def replies(draw: st.DrawFn) -> tuple[bytes, dict[str, np.ndarray] | None]:
    """A child's .npz reply: intact (with the arrays it holds), damaged, or any bytes."""
    kind = draw(st.sampled_from(["intact", "flipped", "cut", "bytes", "zip"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300)), None
    if kind == "zip":  # a zip archive whose members are anything at all
        buf = io.BytesIO()
        method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
        with zipfile.ZipFile(buf, "w", method) as zf:
            for name in draw(st.lists(st.text(min_size=1, max_size=8), max_size=3, unique=True)):
                zf.writestr(
                    name + draw(st.sampled_from([".npy", ""])), draw(st.binary(max_size=80))
                )
        return buf.getvalue(), None
    named = draw(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), arrays, max_size=3))
    data = npz_bytes(named, draw(st.booleans()))
    if kind == "intact":
        return data, named
    if kind == "cut":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))], None
    raw = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw) - 1))
        raw[at] = draw(st.integers(0, 255))
    return bytes(raw), None


def test_any_reply_bytes_give_arrays_or_an_unreadable_outputs_error(capsys):
    tried: Counter = Counter()

    @FUZZ
    @given(reply=replies(), max_bytes=st.sampled_from([64, 4096, 1 << 20]))
    def check_reply(reply: tuple[bytes, dict | None], max_bytes: int) -> None:
        data, sent = reply
        tried["cases"] += 1
        try:
            got = read_npz(data, max_bytes)
        except READ_ERRORS as exc:
            tried["refused"] += 1
            one_line(str(exc))
            return
        tried["read"] += 1
        assert all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in got.values())
        if sent is not None:  # an intact reply reads back exactly what was sent
            assert sorted(got) == sorted(sent)
            for name, arr in sent.items():
                # Bit for bit (NaN included): the very numbers the child sent.
                assert got[name].dtype == arr.dtype and got[name].shape == arr.shape
                assert got[name].tobytes() == arr.tobytes()

    check_reply()
    report(capsys, "child reply bytes into arrays", tried)
    assert tried["read"] and tried["refused"], tried


# --- a child's outputs into a score ------------------------------------------------------------
outputs_values = values | arrays | st.lists(st.floats(-2.0, 2.0), max_size=60)


def test_any_outputs_give_an_evaluation_never_an_exception(capsys):
    problem = load_problem("erdos/min_overlap")
    spec = OutputSpec.from_dict(
        {"h": {"shape": [None]}, "p": {"dtype": "int", "shape": [2, None], "optional": True}}
    )
    tried: Counter = Counter()

    @FUZZ
    @given(
        outputs=values
        | st.dictionaries(st.sampled_from(["h", "p", "x"]), outputs_values, max_size=3)
        | st.fixed_dictionaries({"h": st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40)})
    )
    def check_outputs(outputs: Any) -> None:
        tried["cases"] += 1
        try:
            clean = spec.check(outputs)
            assert all(a.flags.c_contiguous for a in clean.values())
        except OutputError as exc:
            one_line(str(exc))
        ev = problem.score(outputs)  # the trusted evaluator behind the spec
        tried[ev.status] += 1
        assert ev.status in ("ok", "invalid", "bad_output"), (ev.status, ev.error)
        if ev.valid:
            assert np.isfinite(ev.score) and ev.fitness == -ev.score
        else:
            one_line(ev.error)

    check_outputs()
    report(capsys, "child outputs into a score", tried)
    assert tried["ok"] and tried["bad_output"], tried


# --- problem.yaml ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def problem_copy(tmp_path_factory) -> Path:
    """A copy of a heuristic problem (instances, online, cascade: every part of the schema)."""
    folder = tmp_path_factory.mktemp("fuzz") / "binpacking_online"
    shutil.copytree(
        problems_dir() / "scheduling/binpacking_online",
        folder,
        ignore=shutil.ignore_patterns("data", "__pycache__"),
    )
    return folder


def test_any_problem_yaml_gives_a_problem_or_a_one_line_error(capsys, problem_copy):
    original = yaml.safe_load((problem_copy / "problem.yaml").read_text())
    original["description"] = "Pack every item in as few bins as possible."  # parses faster
    tried: Counter = Counter()

    @FUZZ_FILES
    @given(doc=mutated(original), text=st.none() | st.text(max_size=80))
    def check_file(doc: tuple[Any, str], text: str | None) -> None:
        tried["cases"] += 1
        (problem_copy / "problem.yaml").write_text(
            text if text is not None else yaml.safe_dump(doc[0], allow_unicode=True)
        )
        try:
            problem = load_problem(problem_copy)
        except ProblemError as exc:
            tried["refused"] += 1
            message = str(exc)
            one_line(message)
            assert message.startswith(str(problem_copy / "problem.yaml")), message
            return
        tried["loaded"] += 1
        assert problem.direction in ("max", "min") and problem.outputs.arrays
        assert all(s in ("train", "validation", "test") for s in problem.instance_sets)

    check_file()
    report(capsys, "problem.yaml", tried)
    assert tried["loaded"] and tried["refused"], tried


# --- known.yaml and the catalogue --------------------------------------------------------------
def test_any_known_yaml_gives_a_table_or_a_one_line_error(capsys, tmp_path):
    folder = tmp_path / "golomb"
    shutil.copytree(
        problems_dir() / "erdos/golomb", folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    problem = load_problem(folder)
    original = yaml.safe_load((folder / "known.yaml").read_text())
    tried: Counter = Counter()

    @FUZZ_FILES
    @given(doc=mutated(original))
    def check_file(doc: tuple[Any, str]) -> None:
        tried["cases"] += 1
        (folder / "known.yaml").write_text(yaml.safe_dump(doc[0], allow_unicode=True))
        try:
            read_known_yaml(folder / "known.yaml")
            table = known_table(problem)  # what the literature check builds from it
        except KnownError as exc:
            tried["refused"] += 1
            one_line(str(exc))
            return
        tried["read"] += 1
        assert table.best is None or table.best.kind == "best_known"

    check_file()
    report(capsys, "known.yaml", tried)
    assert tried["read"] and tried["refused"], tried


def test_any_catalogue_gives_entries_or_a_one_line_error(capsys):
    catalogue = load_catalogue()
    small = {**catalogue, "entries": catalogue["entries"][:3]}
    tried: Counter = Counter()

    @FUZZ
    @given(doc=mutated(small))
    def check_file(doc: tuple[Any, str]) -> None:
        tried["cases"] += 1
        data = json.loads(json.dumps(doc[0], default=str))  # as a file would hold it
        try:
            validate_catalogue(data, "catalogue.json")
        except CatalogueError as exc:
            tried["refused"] += 1
            one_line(str(exc))
            assert str(exc).startswith("catalogue.json: ")
            return
        tried["valid"] += 1
        assert len({e["id"] for e in data["entries"]}) == len(data["entries"])

    check_file()
    report(capsys, "catalogue", tried)
    assert tried["valid"] and tried["refused"], tried


# --- the run config ----------------------------------------------------------------------------
SECTIONS = ["llm", "search", "sandbox", "cluster", "budget", "literature", "report"]


def test_any_run_config_gives_a_config_or_a_config_error(capsys):
    from omegaconf import OmegaConf

    from evolve.config import EvolveConfig

    defaults = OmegaConf.to_container(OmegaConf.structured(EvolveConfig), enum_to_str=True)
    defaults["llm"]["ensemble"] = [{"model": "openai/a", "weight": 0.5}]
    tried: Counter = Counter()

    # One group at a time, as `check_config` and an override see them: merging the whole
    # config into its schema takes OmegaConf ~50 ms, a group a fifth of that.
    @FUZZ
    @given(section=st.sampled_from(SECTIONS), data=st.data())
    def check_group(section: str, data: st.DataObject) -> None:
        values, _ = data.draw(mutated(defaults[section]))
        tried["cases"] += 1
        try:
            got = check(section, values)
        except ConfigError as exc:
            tried["refused"] += 1
            one_line(str(exc))
            assert str(exc).startswith(section), str(exc)
            return
        tried["valid"] += 1
        assert set(got) == set(defaults[section])  # no key dropped, none invented
        if section == "search":
            assert got["islands"] >= 1 and got["selection"] in Selection.values()
        if section == "llm":
            assert 0 <= got["diff_probability"] <= 1 and got["selection"] in Bandit.values()

    check_group()
    report(capsys, "run config groups", tried)
    assert tried["valid"] and tried["refused"], tried
