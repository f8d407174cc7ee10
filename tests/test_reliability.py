"""Faults a long sweep meets: kill -9 at random moments, a full disk, damaged files, two runners at once."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from scaletui.analysis import FitOptions
from scaletui.cli import app
from scaletui.export import FORMATS, export_csv
from scaletui.runner import create_run, execute, request_stop, start_runner
from scaletui.store import Run, StoreError, list_runs
from tests.conftest import (
    assert_same_results,
    kill_after_a_checkpoint,
    report_reliability,
    run_cli,
    smoke_config,
    wait_for,
)

# Frequent evaluations keep the runner writing, so many kills land mid-write.
FAULT_CONFIG = (
    "training.steps=400", "training.eval_every=1", "model.widths=[2, 4, 8]", "seeds.count=3",
    "execution.checkpoint_seconds=0.05",
)  # fmt: skip
KILL_TRIALS = int(os.environ.get("SCALETUI_KILL_TRIALS", "30"))
cli = CliRunner()


def snapshot(run_dir):
    """What a reader sees right now: (models, curve points)."""
    try:
        run = Run(run_dir)
        return len(run.models()), len(run.curves().step)
    except StoreError:
        return 0, 0


def assert_every_reader_copes(runs_dir, run_dir) -> None:
    """ls, show, fit and every export open the run; nothing raises a traceback."""
    listed = {item.id: item for item in list_runs(runs_dir)}[run_dir.name]
    assert listed.error is None, listed.error
    for args in (["ls"], ["show", run_dir.name, "--no-plots"], ["fit", run_dir.name, "--resamples", "50"]):
        result = cli.invoke(app, [*args, "--runs-dir", str(runs_dir)])
        assert result.exit_code in (0, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    run = Run(run_dir)
    with open(os.devnull, "w") as sink:
        for what in FORMATS:
            export_csv([run], what, sink, FitOptions(resamples=20))


# The runner, with the store's atomic writes wrapped so that the n-th checkpoint write ends in a SIGKILL: with half
# of its temporary file written ("mid-file"), or once the file is in place but before its row ("before its row").
KILL_IN_CHECKPOINT_WRITE = """
import os, signal, sys
import scaletui.store as store
from scaletui.runner import main
run_dir, nth, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
write, seen = store.atomic_write_bytes, []
def atomic_write_bytes(path, data):
    if path.name.endswith(".checkpoint.npz"):
        seen.append(path)
        if len(seen) == nth and phase == "mid-file":
            path.with_name(f".{path.name}.{os.getpid()}.tmp").write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    write(path, data)
    if len(seen) == nth and phase == "before its row":
        os.kill(os.getpid(), signal.SIGKILL)
store.atomic_write_bytes = atomic_write_bytes
sys.exit(main([run_dir]))
"""
KILL_MOMENTS = ("at a random moment", "inside a width after a checkpoint", "during a checkpoint write")


def _kill_at_random(proc, run_dir, rng, trial: int) -> None:
    if trial % 2 == 0:  # anywhere from start-up (imports, first writes) on
        time.sleep(rng.uniform(0.0, 2.5))
    else:  # mid-training, while curves are being written
        wait_for(lambda d=run_dir: snapshot(d)[1] > 0, timeout=60, interval=0.01)
        time.sleep(rng.uniform(0.0, 0.6))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.timeout(900)  # 30 runner processes killed and 30 resumes: minutes on a loaded 2-core machine
def test_sigkill_at_random_moments_loses_nothing_committed_and_resume_matches(tmp_path):
    runs_dir = tmp_path / "runs"
    cfg = smoke_config(*FAULT_CONFIG)
    reference_dir = create_run(runs_dir, cfg)
    assert execute(reference_dir, threading.Event()) == "finished"

    rng = np.random.default_rng(2026)
    outcomes = {"dead": 0, "finished": 0}
    moments = dict.fromkeys(KILL_MOMENTS, 0)
    from_checkpoint = 0
    for trial in range(KILL_TRIALS):
        run_dir = create_run(runs_dir, cfg)
        moment = KILL_MOMENTS[trial % 3]
        before = snapshot(run_dir)
        if moment == "during a checkpoint write":
            phase = ("mid-file", "before its row")[trial // 3 % 2]
            script = [KILL_IN_CHECKPOINT_WRITE, str(run_dir), str(rng.integers(1, 3)), phase]
            proc = subprocess.Popen([sys.executable, "-c", *script], stdout=subprocess.DEVNULL)
            assert proc.wait(timeout=120) == -signal.SIGKILL, "the runner finished before its checkpoint write"
        else:
            proc = start_runner(run_dir)
            if moment == "inside a width after a checkpoint":
                time.sleep(rng.uniform(0.0, 0.3))  # then the first checkpoint of a shard still training from here
                kill_after_a_checkpoint(proc, run_dir)
            else:
                before = snapshot(run_dir)
                _kill_at_random(proc, run_dir, rng, trial // 3)
        after = snapshot(run_dir)
        assert after[0] >= before[0] and after[1] >= before[1], (trial, before, after)
        status = Run(run_dir).status().status
        assert status in outcomes, (trial, status)
        outcomes[status] += 1
        moments[moment] += 1
        assert_every_reader_copes(runs_dir, run_dir)
        if trial == KILL_TRIALS - 1:  # the last one through the real CLI
            result = run_cli("run", "--resume", run_dir.name, "--runs-dir", str(runs_dir))
            assert result.returncode == 0, result.stderr
        elif status != "finished":
            assert execute(run_dir, threading.Event(), resume=True) == "finished"
        from_checkpoint += any(": from step " in m for _, _, _, m in Run(run_dir).events())
        assert_same_results(reference_dir, run_dir)
    assert outcomes["dead"] >= KILL_TRIALS * 0.8
    assert from_checkpoint >= moments["inside a width after a checkpoint"]
    report_reliability(
        "SIGKILL of the runner: at random moments (start-up, training, mid-write), inside widths, "
        "during checkpoint writes",
        f"{KILL_TRIALS} kills ({', '.join(f'{n} {m}' for m, n in moments.items())}), all resumed",
        f"{outcomes['dead']} reported dead, {outcomes['finished']} had finished; every reader opened every run; "
        f"{from_checkpoint} resumed mid-width from a checkpoint; every resumed run equals an uninterrupted run "
        "bit for bit",
        "0 committed records; of a width's training, at most checkpoint_seconds",
    )


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))


def test_a_full_disk_fails_the_run_in_one_line_and_keeps_it_readable(tmp_path):
    runs_dir = tmp_path / "runs"
    run_dir = create_run(runs_dir, smoke_config(*FAULT_CONFIG))
    proc = subprocess.Popen(
        [sys.executable, "-m", "scaletui.runner", str(run_dir)],
        preexec_fn=_limit_file_size,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert proc.wait(timeout=120) == 1
    st = Run(run_dir).status()
    assert st.status == "failed"
    assert st.error.startswith("disk full") and "\n" not in st.error
    assert snapshot(run_dir)[1] > 0  # what was written before the failure is still there
    assert_every_reader_copes(runs_dir, run_dir)
    result = cli.invoke(app, ["ls", "--runs-dir", str(runs_dir)])
    assert "failed" in result.output
    report_reliability(
        "writes failing (file-size limit of 256 KiB on the runner)",
        "1 run",
        "marked failed with a one-line 'disk full' reason; readers open what was written",
        "0 committed records",
    )


def _damage(run_dir, kind: str) -> None:
    db, config, meta = run_dir / "run.sqlite", run_dir / "config.toml", run_dir / "meta.json"
    array = next(run_dir.glob("arrays/w*.npz"))
    match kind:
        case "sqlite-truncated":
            db.write_bytes(db.read_bytes()[:1000])
        case "sqlite-empty":
            db.write_bytes(b"")
        case "sqlite-garbage":
            db.write_bytes(os.urandom(8192))
        case "config-missing":
            config.unlink()
        case "config-garbage":
            config.write_bytes(b"\x00\xff[[[")
        case "config-invalid":
            config.write_text(config.read_text().replace("[training]", "[training]\nturbo = true"))
        case "meta-empty":
            meta.write_text("")
        case "meta-future-schema":
            meta.write_text('{"schema_version": 99}')
        case "array-truncated":
            array.write_bytes(array.read_bytes()[:100])
        case "array-missing":
            array.unlink()


DAMAGE = [
    "sqlite-truncated", "sqlite-empty", "sqlite-garbage", "config-missing", "config-garbage", "config-invalid",
    "meta-empty", "meta-future-schema", "array-truncated", "array-missing",
]  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("pristine") / "runs"
    run_dir = create_run(runs_dir, smoke_config("training.steps=40"))
    assert execute(run_dir, threading.Event()) == "finished"
    return run_dir


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_runs_are_named_not_crashed_on(tmp_path, finished_run, kind):
    import shutil

    runs_dir = tmp_path / "runs"
    healthy = create_run(runs_dir, smoke_config("training.steps=10", 'name="healthy"'))
    run_dir = runs_dir / finished_run.name
    shutil.copytree(finished_run, run_dir)
    _damage(run_dir, kind)
    listing = cli.invoke(app, ["ls", "--runs-dir", str(runs_dir)])
    assert listing.exit_code == 0 and healthy.name in listing.output
    if not kind.startswith("array"):
        assert "damaged" in listing.output
    for args in (["show", run_dir.name], ["export", run_dir.name, "--what", "per-width"], ["fit", run_dir.name]):
        result = cli.invoke(app, [*args, "--runs-dir", str(runs_dir)])
        assert result.exit_code == 2, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.output
    report_reliability(
        f"damaged run: {kind}",
        "ls, show, export, fit",
        "ls lists it" + (" as damaged" if not kind.startswith("array") else "") + " and goes on; "
        "show, export and fit exit 2 with one line naming the file",
        "0 (other runs unaffected)",
    )


def test_two_runners_share_a_runs_directory(tmp_path):
    runs_dir = tmp_path / "runs"
    dirs = [create_run(runs_dir, smoke_config(f'name="twin-{i}"', f"seeds.base={i}")) for i in range(2)]
    procs = [start_runner(d) for d in dirs]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    runs = [Run(d) for d in dirs]
    assert [r.status().status for r in runs] == ["finished", "finished"]
    assert all(len(r.models()) == 16 for r in runs)
    assert runs[0].models().test_loss.tolist() != runs[1].models().test_loss.tolist()
    report_reliability("two runners writing one runs directory at once", "2 runs", "both finish, complete", "0")


def test_a_live_run_cannot_be_deleted(tmp_path):
    runs_dir = tmp_path / "runs"
    # Stopped long before its end, however fast the engine.
    run_dir = create_run(runs_dir, smoke_config("training.steps=10000000", "model.widths=[64]"))
    proc = start_runner(run_dir)
    try:
        wait_for(lambda: Run(run_dir).status().status == "running", timeout=60)
        refused = cli.invoke(app, ["rm", run_dir.name, "--yes", "--runs-dir", str(runs_dir)])
        assert refused.exit_code == 2 and "stop it" in refused.output
        assert run_dir.is_dir()
        assert request_stop(Run(run_dir))
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
    done = cli.invoke(app, ["rm", run_dir.name, "--yes", "--runs-dir", str(runs_dir)])
    assert done.exit_code == 0 and not run_dir.exists()
    report_reliability(
        "deleting a live run", "1 run", "refused while running; deleted after a graceful stop", "0 (while live)"
    )


def test_a_sweep_too_big_for_memory_is_refused_up_front(tmp_path):
    result = run_cli(
        "run", "smoke", "--runs-dir", str(tmp_path / "runs"),
        "--set", "model.widths=[4, 200000]", "--set", "data.n_train=200000",
    )  # fmt: skip
    assert result.returncode == 2 and "width 200000 needs about" in result.stderr and "GiB" in result.stderr
    assert not (tmp_path / "runs").exists()
    report_reliability(
        "a sweep too big for memory (width 200000 on 200000 samples)",
        "1",
        "refused before anything starts, with the estimate in GiB (smaller overshoots are split into shards)",
        "–",
    )


def test_export_writes_only_where_asked(tmp_path, finished_run):
    runs_dir = finished_run.parent
    missing_dir = tmp_path / "no" / "such" / "dir" / "out.csv"
    result = cli.invoke(app, ["export", finished_run.name, "--runs-dir", str(runs_dir), "--out", str(missing_dir)])
    assert result.exit_code == 2 and "error:" in result.output
    assert not (tmp_path / "no").exists()
    report_reliability(
        "export to a missing directory; over an existing file (tests/test_reports.py)",
        "2",
        "one-line error, nothing written; replacing a file needs --force",
        "–",
    )
