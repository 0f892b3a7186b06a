"""The `evolve` command as a user runs it: real subprocesses, one-line errors, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CONSTRUCTIONS = REPO / "problems" / "erdos" / "min_overlap" / "constructions"


def evolve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evolve.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:")
    return " ".join(r.stderr.split())


def test_problems_lists_builtins():
    r = evolve("problems")
    assert r.returncode == 0
    for name in ("erdos/min_overlap", "erdos/golomb", "packing/circles"):
        assert name in r.stdout


def test_eval_json(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("import numpy as np\n\ndef solve():\n    return {'h': np.full(8, 0.25)}\n")
    r = evolve("eval", "erdos/min_overlap", str(prog), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["status"] == "ok" and d["valid"] is True
    assert d["score"] == pytest.approx(0.5) and d["error"] == ""
    assert "n" in d["metrics"]


def test_eval_timeout_flag(tmp_path):
    prog = tmp_path / "loop.py"
    prog.write_text("def solve():\n    while True:\n        pass\n")
    r = evolve("eval", "erdos/min_overlap", str(prog), "--json", "--timeout", "1")
    d = json.loads(r.stdout)
    assert d["status"] == "timeout" and d["valid"] is False and d["score"] is None


def test_score_json_construction_and_verdict(tmp_path):
    d = json.loads((CONSTRUCTIONS / "haugland2016_51step.json").read_text())
    path = tmp_path / "haugland_h.json"
    path.write_text(json.dumps({"h": d["data"]["values"]}))
    r = evolve("score", "erdos/min_overlap", str(path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["valid"] and out["score"] == pytest.approx(0.38092685343308696, abs=1e-9)
    v = out["verdict"]
    assert v["status"] in ("below_known", "rediscovers_known")
    assert v["citation"] and v["as_of"]


def test_score_npz(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, h=np.full(6, 0.5))
    r = evolve("score", "erdos/min_overlap", str(path), "--json")
    assert json.loads(r.stdout.splitlines()[0])["score"] == pytest.approx(0.5)


def test_unknown_problem_one_line():
    msg = one_line_error(evolve("score", "erdos/nope", "x.json"))
    assert "unknown problem 'erdos/nope'" in msg and "erdos/min_overlap" in msg


def test_missing_file_one_line():
    assert "no such file" in one_line_error(evolve("eval", "erdos/min_overlap", "/nonexistent.py"))


def test_malformed_construction_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"h": [0.5, 0.5')
    assert "not valid JSON" in one_line_error(evolve("score", "erdos/min_overlap", str(bad)))
    arr = tmp_path / "list.json"
    arr.write_text("[0.5, 0.5]")
    assert "JSON object" in one_line_error(evolve("score", "erdos/min_overlap", str(arr)))


def test_wrong_output_name_is_reported_not_crashed(tmp_path):
    f = tmp_path / "w.json"
    f.write_text('{"heights": [0.5]}')
    r = evolve("score", "erdos/min_overlap", str(f), "--json")
    d = json.loads(r.stdout)
    assert d["status"] == "bad_output" and "missing output" in d["error"]


def test_bad_param_one_line(tmp_path):
    f = tmp_path / "g.json"
    f.write_text('{"marks": [0, 1, 3]}')
    assert "no parameter" in one_line_error(
        evolve("score", "erdos/golomb", str(f), "--param", "m=3")
    )
    r = evolve("score", "erdos/golomb", str(f), "--param", "n=3", "--json")
    assert json.loads(r.stdout)["score"] == 3


def test_show_and_report_on_missing_run(tmp_path):
    assert "no run database" in one_line_error(evolve("show", str(tmp_path)))
    assert "no run databases" in one_line_error(evolve("report", str(tmp_path)))


def test_corrupt_database_one_line(tmp_path):
    (tmp_path / "evolve.db").write_bytes(b"this is not sqlite" * 100)
    assert "not a usable evolve database" in one_line_error(evolve("show", str(tmp_path)))


def test_doctor_reports_the_sandbox_layers_and_key_names_never_values(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-doctor-must-not-print-this")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    r = evolve("doctor", "--json")
    assert r.returncode == 0, r.stderr
    assert "sk-doctor-must-not-print-this" not in r.stdout + r.stderr
    report = json.loads(r.stdout)
    sb = report["sandbox"]
    assert sb["works"] and set(sb["features"]) >= {"pid_namespace", "landlock", "problems"}
    assert "seccomp" in sb["features"]
    keys = {(k["preset"], k["variable"]): k["set"] for k in report["llm_keys"]}
    assert keys[("openai", "OPENAI_API_KEY")] is True
    assert keys[("anthropic", "ANTHROPIC_API_KEY")] is False
    # Every layer that is off comes with how to turn it on.
    off = {
        k for k, v in sb["features"].items() if not v and k not in ("problems", "user_namespace")
    }
    as_user = set() if report["root"] else {"private_uid"}  # only root can have one
    assert off <= {m["layer"] for m in sb["missing"]} | as_user
    text = evolve("doctor")
    assert text.returncode == 0 and "sandbox: works" in text.stdout
    if sb["features"]["seccomp"]:
        assert "seccomp filter" in text.stdout
    assert "sk-doctor" not in text.stdout


def test_a_run_saved_before_a_default_changed_resumes_as_it_searched(tmp_path):
    """A saved config without search.ties or search.novelty (keys whose defaults changed
    later) resumes with what that run did; a saved value, or an override, is kept."""
    import yaml

    from evolve.cli import _resume_config
    from evolve.config import check

    cfg = check("", {"problem": {"name": "erdos/min_overlap"}})
    old = tmp_path / "old"
    old.mkdir()
    del cfg["search"]["ties"], cfg["search"]["novelty"]
    (old / "config.yaml").write_text(yaml.safe_dump(cfg))
    resumed = _resume_config({}, str(old), ["budget.evaluations=300"])
    assert resumed["search"]["ties"] == "uniform"
    assert resumed["search"]["novelty"] == {"enabled": False}
    assert resumed["budget"]["evaluations"] == 300 and resumed["resume"] == str(old)
    check("", {k: v for k, v in resumed.items() if k != "resume"})  # a valid config still

    new = tmp_path / "new"
    new.mkdir()
    cfg = check("", {"problem": {"name": "erdos/min_overlap"}})
    (new / "config.yaml").write_text(yaml.safe_dump(cfg))
    resumed = _resume_config({}, str(new), ["search.ties=uniform"])
    assert resumed["search"]["ties"] == "uniform"  # the override
    assert resumed["search"]["novelty"]["enabled"] is True  # as saved
    assert _resume_config({}, str(new), [])["search"]["ties"] == "first"
