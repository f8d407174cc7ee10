"""Who may touch a run: `rm` removes only recognised runs, and one runner at a time writes a run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from scaletui import store
from scaletui.cli import app
from scaletui.runner import LOCKED_EXIT_CODE, create_run, execute, start_runner
from scaletui.store import Run, StoreError, is_run_dir, list_runs
from tests.conftest import report_reliability, run_cli, smoke_config, wait_for

cli = CliRunner()
# Trains for minutes unless stopped: long enough for a test to stop, probe and continue it.
ENDLESS = ("training.steps=100000000", "training.eval_every=50", "model.widths=[2, 4]", "seeds.count=2")


@pytest.fixture
def victim(tmp_path):
    """A project directory that happens to hold a config.toml: a classic rm target."""
    folder = tmp_path / "victim"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "code.py").write_text("keep = True\n")
    (folder / "config.toml").write_text("x = 1\n")
    (folder / "meta.json").write_text('{"name": "not a run"}')
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("ownership") / "runs"
    run_dir = create_run(runs_dir, smoke_config("training.steps=10"))
    assert execute(run_dir, threading.Event()) == "finished"
    return run_dir


def rm(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return run_cli("rm", *args, "--yes", cwd=cwd)


def test_rm_refuses_a_directory_that_is_not_a_run(victim, tmp_path):
    for ref in (str(victim), "victim"):
        result = rm(ref, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.count("error:") == 1 and "not a scaletui run" in result.stderr
    result = rm(".", "--runs-dir", str(tmp_path / "runs"), cwd=victim)
    assert result.returncode == 2 and "not a scaletui run" in result.stderr
    assert (victim / "src" / "code.py").read_text() == "keep = True\n"
    assert not is_run_dir(victim)
    report_reliability("rm on a directory that is not a run (name, path, '.')", "3", "refused in one line", "0")


def test_rm_refuses_the_runs_directory_and_the_working_directory(finished, tmp_path):
    runs_dir = tmp_path / "runs"
    copy = runs_dir / finished.name
    shutil.copytree(finished, copy)
    for ref in (str(runs_dir), str(tmp_path)):
        result = rm(ref, "--runs-dir", str(runs_dir), cwd=tmp_path)
        assert result.returncode == 2, result.stdout
    result = rm(".", "--runs-dir", str(runs_dir), cwd=copy)
    assert result.returncode == 2 and "current directory" in result.stderr
    assert copy.is_dir() and is_run_dir(copy)
    report_reliability("rm of the runs directory, its parent, or '.' inside a run", "3", "refused in one line", "0")


def test_rm_removes_a_run_outside_the_runs_directory_only_by_explicit_path(finished, tmp_path):
    elsewhere = tmp_path / "elsewhere" / finished.name
    shutil.copytree(finished, elsewhere)
    by_id = rm(finished.name, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert by_id.returncode == 2 and elsewhere.is_dir()
    by_path = rm(str(elsewhere), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert by_path.returncode == 0, by_path.stderr
    assert not elsewhere.exists()


@pytest.mark.parametrize("damage", ["meta", "sqlite", "both"])
def test_a_damaged_run_is_removable_only_while_recognisable(finished, tmp_path, damage):
    runs_dir = tmp_path / "runs"
    run_dir = runs_dir / finished.name
    shutil.copytree(finished, run_dir)
    if damage in ("meta", "both"):
        (run_dir / "meta.json").write_text("garbage")
    if damage in ("sqlite", "both"):
        (run_dir / "run.sqlite").write_bytes(os.urandom(4096))
    listed = {item.id: item for item in list_runs(runs_dir)}
    result = rm(run_dir.name, "--runs-dir", str(runs_dir), cwd=tmp_path)
    if damage == "both":  # nothing left that says it is a run: it is not listed and not removed
        assert run_dir.name not in listed and result.returncode == 2 and run_dir.is_dir()
    else:
        assert listed[run_dir.name].error is not None
        assert result.returncode == 0, result.stderr
        assert not run_dir.exists()


def _sweeping(run_dir) -> bool:
    try:
        return len(Run(run_dir).curves().step) > 0
    except StoreError:
        return False


def _events(run_dir) -> list[str]:
    return [message for _, _, _, message in Run(run_dir).events()]


def test_a_stopped_but_alive_runner_is_not_responding_and_keeps_the_run(runs_dir, monkeypatch):
    monkeypatch.setattr(store, "STALE_AFTER_SECONDS", 3.0)  # the reader's threshold; the runner beats every 2 s
    run_dir = create_run(runs_dir, smoke_config(*ENDLESS))
    first = start_runner(run_dir)
    try:
        wait_for(lambda: _sweeping(run_dir), timeout=120)
        first.send_signal(signal.SIGSTOP)
        wait_for(lambda: Run(run_dir).status().status == "not responding", timeout=30)
        events_before = _events(run_dir)
        resumed = cli.invoke(app, ["run", "--resume", run_dir.name, "--runs-dir", str(runs_dir)])
        assert resumed.exit_code == 2 and "alive" in resumed.output
        removed = cli.invoke(app, ["rm", run_dir.name, "--runs-dir", str(runs_dir), "--yes"])
        assert removed.exit_code == 2 and run_dir.is_dir()
        # A runner started behind the checks' back refuses by itself, having written nothing.
        second = start_runner(run_dir, resume=True)
        assert second.wait(timeout=60) == LOCKED_EXIT_CODE
        assert _events(run_dir) == events_before
        assert Run(run_dir).status().pid == first.pid
    finally:
        first.send_signal(signal.SIGCONT)
        first.terminate()
        first.wait(timeout=60)
    assert Run(run_dir).status().status == "stopped"
    report_reliability(
        "runner stopped with SIGSTOP, then resume and rm",
        "1",
        "reads 'not responding'; resume, rm and a second runner refused",
        "0 (one writer)",
    )


def test_two_resumes_at_once_give_one_writer(runs_dir):
    run_dir = create_run(runs_dir, smoke_config(*ENDLESS))
    first = start_runner(run_dir)
    wait_for(lambda: _sweeping(run_dir), timeout=120)
    first.terminate()
    assert first.wait(timeout=60) == 130
    code = f"from scaletui.runner import main; import sys; sys.exit(main([{str(run_dir)!r}, '--resume']))"
    racers = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    try:
        wait_for(lambda: any(p.poll() is not None for p in racers), timeout=60)
        loser = next(p for p in racers if p.poll() is not None)
        winner = next(p for p in racers if p is not loser)
        assert loser.returncode == LOCKED_EXIT_CODE
        assert winner.poll() is None and Run(run_dir).status().pid == winner.pid
    finally:
        for proc in racers:
            proc.terminate()
            proc.wait(timeout=60)
    resumed = [m for m in _events(run_dir) if m.startswith("resumed")]
    assert len(resumed) == 1, resumed
    report_reliability("two resumes started together", "1", "one runs, the other exits having written nothing", "0")
