"""Shared fixtures: small configs and a helper that runs the real CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaletui.config import Config, load_config
from scaletui.presets import resolve_preset

REPO = Path(__file__).resolve().parent.parent


def smoke_config(*overrides: str) -> Config:
    return load_config(resolve_preset("smoke"), list(overrides))


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a fresh interpreter, as a user would run it."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    env.pop("SCALETUI_RUNS_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "scaletui", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05):
    """Poll a condition until it holds (returning its value) or fail the test at the deadline."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


# Rows for the reliability table that the fault and fuzz suites print at the end of the run
# (docs/RELIABILITY.md quotes it).
RELIABILITY_ROWS: dict[str, tuple[str, str, str, str]] = {}


def report_reliability(what: str, trials: str, outcome: str, lost: str) -> None:
    """Record a row once a test has shown it (a test that reports from many examples records it once)."""
    RELIABILITY_ROWS[what] = (what, trials, outcome, lost)


def pytest_terminal_summary(terminalreporter) -> None:
    if not RELIABILITY_ROWS:
        return
    terminalreporter.section("reliability")
    terminalreporter.write_line("| fault or input | trials | outcome | lost or unreadable |")
    terminalreporter.write_line("| --- | --- | --- | --- |")
    for row in RELIABILITY_ROWS.values():
        terminalreporter.write_line("| " + " | ".join(row) + " |")


async def until(pilot, condition, timeout: float = 90.0) -> None:
    """Let a Textual app run until the condition holds; fail the test at the deadline."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await pilot.pause(0.05)
