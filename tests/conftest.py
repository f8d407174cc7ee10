"""Shared fixtures: small configs and a helper that runs the real CLI as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scaletui.config import Config, load_config
from scaletui.presets import resolve_preset
from scaletui.store import Run, StoreError

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


def assert_same_results(expected_dir: Path, actual_dir: Path) -> None:
    """Every number a reader gets from the two runs is the same, bit for bit (wall times aside)."""
    expected, actual = Run(expected_dir), Run(actual_dir)
    want, got = expected.models(), actual.models()
    for name in ("width", "seed", "n_params", "train_loss", "test_loss", "diverged_step"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    want_curves, got_curves = expected.curves(), actual.curves()
    for name in ("width", "seed", "step", "train_loss", "test_loss"):
        np.testing.assert_array_equal(getattr(got_curves, name), getattr(want_curves, name), err_msg=name)
    for width in expected.config.model.widths:
        np.testing.assert_array_equal(actual.outputs(width)[1], expected.outputs(width)[1])
        for seed in range(expected.config.seeds.count):
            for name, value in expected.weights(width, seed).items():
                np.testing.assert_array_equal(
                    actual.weights(width, seed)[name], value, err_msg=f"{width}/{seed}/{name}"
                )


def checkpointed_unfinished(run_dir: Path, past: int = 0) -> list[dict]:
    """Checkpoints (beyond step ``past``) of shards that have not finished, as a reader sees them now."""
    try:
        run = Run(run_dir)
        finished = set(run.models().width.tolist())
        return [c for c in run.checkpoints() if c["step"] > past and c["width"] not in finished]
    except StoreError:
        return []


def kill_after_a_checkpoint(proc, run_dir: Path, past: int = 0, timeout: float = 120.0) -> dict:
    """SIGKILL the runner once the store shows a checkpoint (beyond step ``past``) of a shard still training;
    returns that checkpoint.

    The runner is paused (SIGSTOP) while the store is read again, so what is killed is what was seen.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the runner ended before a checkpoint could be caught"
        if checkpointed_unfinished(run_dir, past):
            proc.send_signal(signal.SIGSTOP)
            caught = checkpointed_unfinished(run_dir, past)
            if caught:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return caught[0]
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    proc.kill()
    pytest.fail("no checkpoint of an unfinished shard appeared in time")


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
