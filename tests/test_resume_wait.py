"""Resuming a killed run waits until the killed run's processes have stopped writing."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from evolve.engine import driver
from evolve.engine.budget import RunError
from evolve.population.database import Database

CALL = {"island": 0, "model": "m", "prompt": "p", "response": "r", "cost_usd": 0.0}


def _writer(path, stop: threading.Event, every: float) -> threading.Thread:
    """Another process's archive, still recording calls (its own connection)."""

    def run() -> None:
        other = Database(path)
        while not stop.is_set():
            other.record_iterations("r", [(CALL, None)])
            time.sleep(every)
        other.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_resume_waits_until_the_database_is_still(tmp_path, monkeypatch):
    monkeypatch.setattr(driver, "QUIET_S", 0.5)
    path = tmp_path / "evolve.db"
    db = Database(path)
    db.start_run("r", "p", 0, {}, {})
    stop = threading.Event()
    writer = _writer(path, stop, 0.1)
    threading.Timer(1.5, stop.set).start()
    driver.Evolution._wait_for_quiet(SimpleNamespace(run_id="r"), db)
    assert stop.is_set()  # not before the writer stopped
    writer.join()
    last = db.write_mark("r")
    time.sleep(0.3)
    assert db.write_mark("r") == last  # and nothing was written after it returned


def test_resume_refuses_a_run_that_never_goes_quiet(tmp_path, monkeypatch):
    monkeypatch.setattr(driver, "QUIET_S", 0.5)
    monkeypatch.setattr(driver, "QUIET_MAX_S", 1.0)
    path = tmp_path / "evolve.db"
    db = Database(path)
    db.start_run("r", "p", 0, {}, {})
    stop = threading.Event()
    writer = _writer(path, stop, 0.05)
    try:
        with pytest.raises(RunError, match="still being written by another process"):
            driver.Evolution._wait_for_quiet(SimpleNamespace(run_id="r"), db)
    finally:
        stop.set()
        writer.join()
