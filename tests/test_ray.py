"""The Ray executor against a real local Ray instance that this module starts (2 CPUs, no dashboard, no
usage reporting: nothing leaves the machine). Every Ray run goes through a real runner process, which
joins the instance as its own driver, exactly as it would join a cluster of GPU nodes."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from scaletui.config import config_to_dict
from scaletui.runner import create_run, execute, runner_environment, start_runner
from scaletui.store import Run
from tests.conftest import REPO, assert_same_results, report_reliability, run_cli, smoke_config, wait_for
from tests.ray_faults import RAISED

ray = pytest.importorskip("ray", reason="the Ray executor's tests need ray: pip install -e '.[ray]'")


@dataclass(frozen=True)
class Cluster:
    address: str
    faults: Path  # the fault files tests/ray_faults.py reads


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    faults = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as env:
        # Set before ray.init: the instance's workers inherit this process's environment.
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        handler = signal.getsignal(signal.SIGTERM)
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False
        )
        signal.signal(signal.SIGTERM, handler)  # ray.init takes SIGTERM over; pytest keeps its own
        try:
            yield Cluster(ray.get_runtime_context().gcs_address, faults)
        finally:
            ray.shutdown()


def on_ray(cluster: Cluster, *overrides: str) -> list[str]:
    return ["execution.executor=ray", f"execution.address={cluster.address}", *overrides]


def start_faulty_runner(run_dir: Path, cluster: Cluster) -> subprocess.Popen[bytes]:
    """The runner, as start_runner starts it, with the fault hook of tests/ray_faults.py in its Ray workers."""
    with open(run_dir / "runner.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.ray_faults", str(run_dir), str(cluster.faults)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=runner_environment(os.environ),
        )


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    """The smoke sweep run by the local executor, in this process: what every Ray run must equal."""
    run_dir = create_run(tmp_path_factory.mktemp("local"), smoke_config())
    assert execute(run_dir, threading.Event()) == "finished"
    return run_dir


# What may differ between two runs of one config: identities, clocks, pids, the host and how many threads a
# shard had (the executor's business), and the execution section itself.
RUN_IDENTITY = ("run_id", "created", "created_iso")
ENVIRONMENT_PLACE = ("host", "torch_threads")
WIDTHS = (2, 4, 8, 16)


def run_contents(run_dir: Path, widths: tuple[int, ...]) -> dict[str, object]:
    """Everything a reader can get from a run directory about these widths, less what may differ (see above)."""
    run = Run(run_dir)
    config = config_to_dict(run.config)
    config.pop("execution")
    meta = {k: v for k, v in json.loads((run_dir / "meta.json").read_text()).items() if k not in RUN_IDENTITY}
    meta["environment"] = {k: v for k, v in meta["environment"].items() if k not in ENVIRONMENT_PLACE}
    st = run.status()
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        tables = sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        wanted = ",".join(str(w) for w in widths)
        models = db.execute(
            "SELECT width, seed, n_params, train_loss, test_loss, diverged_step, arrays FROM models "
            f"WHERE width IN ({wanted}) ORDER BY width, seed"
        ).fetchall()
        curves = db.execute(f"SELECT * FROM curves WHERE width IN ({wanted}) ORDER BY width, seed, step").fetchall()
        progress = db.execute(
            f"SELECT width, first_seed, models, step, steps FROM progress WHERE width IN ({wanted}) ORDER BY width"
        ).fetchall()
        events = db.execute("SELECT level, message FROM events").fetchall()
    summaries = sorted(
        (level, message) for level, message in events if any(message.startswith(f"width {w} ") for w in widths)
    )
    arrays = {}
    for path in sorted((run_dir / "arrays").iterdir()):
        if path.name == "test_set.npz" or int(path.name[1:7]) in widths:
            with np.load(path) as data:
                arrays[path.name] = {k: data[k] for k in data.files}
    return {
        "config": config,
        "meta": meta,
        "status": (st.status, st.device, st.error),
        "tables": tables,
        "models": models,
        "curves": curves,
        "progress": progress,
        "summaries": summaries,
        "last event": events[-1],
        "arrays": arrays,
    }


def assert_same_run(expected: Path, actual: Path, widths: tuple[int, ...] = WIDTHS) -> None:
    """The two runs hold the same results for these widths; when that is all widths, the same run."""
    want, got = run_contents(expected, widths), run_contents(actual, widths)
    if widths != WIDTHS:
        for whole_run in ("status", "last event"):
            del want[whole_run], got[whole_run]
    want_arrays, got_arrays = want.pop("arrays"), got.pop("arrays")
    assert got == want
    assert list(got_arrays) == list(want_arrays)
    for name, arrays in want_arrays.items():
        assert list(got_arrays[name]) == list(arrays), name
        for key, value in arrays.items():
            np.testing.assert_array_equal(got_arrays[name][key], value, err_msg=f"{name}:{key}")


def placements(run_dir: Path) -> list[str]:
    return [message for _, _, _, message in Run(run_dir).events() if " training on " in message]


def test_a_ray_run_equals_a_local_run_of_the_same_config(cluster, local_run, runs_dir):
    result = run_cli("run", "smoke", "--executor", "ray", "--address", cluster.address, "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    assert "width 16" in result.stderr and "step 300/300" in result.stderr  # the live progress, fed from the store
    assert "finished in" in result.stdout
    [ray_run] = list(runs_dir.iterdir())
    # Per-model seeding: the same config gives the same numbers, bit for bit, whichever executor trains it.
    assert_same_run(local_run, ray_run)
    assert Run(ray_run).config.execution.executor == "ray"
    host = socket.gethostname()
    assert sorted(placements(ray_run)) == sorted(f"width {w}, seeds 0–3 training on {host} (cpu)" for w in WIDTHS)


def test_results_do_not_depend_on_how_seeds_are_split_into_shards(cluster, local_run, runs_dir):
    run_dir = create_run(runs_dir, smoke_config(*on_ray(cluster, "execution.seeds_per_shard=3")))
    assert start_runner(run_dir).wait(timeout=180) == 0
    local, split = Run(local_run), Run(run_dir)
    assert len(placements(run_dir)) == 8  # each width as seeds 0–2 and seed 3
    np.testing.assert_allclose(split.models().test_loss, local.models().test_loss, rtol=1e-6)
    np.testing.assert_allclose(split.curves().test_loss, local.curves().test_loss, rtol=1e-6)
    for w in (2, 16):
        # float32 outputs of size ~4: a few ulps (2.4e-7 each there) of difference where a Ray worker's one
        # thread sums a product in another order than this process's two (a near-zero output keeps them).
        np.testing.assert_allclose(split.outputs(w)[1], local.outputs(w)[1], rtol=1e-6, atol=1e-6)


def test_a_worker_killed_mid_shard_is_retried_and_the_run_is_unchanged(cluster, local_run, runs_dir):
    fault = cluster.faults / "w8-s0.once"
    fault.touch()
    run_dir = create_run(runs_dir, smoke_config(*on_ray(cluster)))
    assert start_faulty_runner(run_dir, cluster).wait(timeout=180) == 0
    assert not fault.exists()  # the worker training width 8 did kill itself, halfway through
    assert_same_run(local_run, run_dir)
    report_reliability(
        "a Ray worker killed (SIGKILL) halfway through its shard",
        "1 run",
        "the runner submitted the shard again; the run finished, bit for bit equal to a local run of the config",
        "0",
    )


def test_a_retried_shard_continues_from_the_latest_checkpoint_its_dead_worker_sent(cluster, runs_dir):
    training = ("model.widths=[8]", "training.steps=2000", "training.eval_every=100")
    reference = create_run(runs_dir, smoke_config(*training))
    assert execute(reference, threading.Event()) == "finished"
    fault = cluster.faults / "w8-s0.once"
    fault.touch()
    run_dir = create_run(runs_dir, smoke_config(*training, *on_ray(cluster, "execution.checkpoint_seconds=0.01")))
    assert start_faulty_runner(run_dir, cluster).wait(timeout=180) == 0
    assert not fault.exists()  # the worker did kill itself, at step 1000 or just after
    messages = [message for _, _, _, message in Run(run_dir).events()]
    [retried] = [m for m in messages if "its worker died" in m]
    step = int(retried.rsplit("starts from step ", 1)[1].replace(",", ""))
    assert retried.startswith("width 8, seeds 0–3: its worker died (") and "attempt 2 of 4" in retried
    assert 0 < step <= 1000 and f"width 8: from step {step:,}" in messages
    assert_same_results(reference, run_dir)
    report_reliability(
        "a Ray worker killed (SIGKILL) halfway through its shard, checkpoints every 0.01 s",
        "1 run",
        f"the runner gave the retry the last checkpoint the dead worker had sent (step {step:,} of 2,000); "
        "the run equals a local run bit for bit",
        "the steps after that checkpoint",
    )


def test_a_shard_that_keeps_failing_fails_the_run_naming_it_and_keeps_the_rest(cluster, local_run, runs_dir):
    fault = cluster.faults / "w4-s0.always"
    fault.touch()
    try:
        run_dir = create_run(runs_dir, smoke_config(*on_ray(cluster, "execution.max_retries=1")))
        assert start_faulty_runner(run_dir, cluster).wait(timeout=180) == 1
    finally:
        fault.unlink()
    st = Run(run_dir).status()
    assert st.status == "failed"
    assert st.error.startswith("width 4, seeds 0–3 failed: its worker died on all 2 attempts"), st.error
    assert sorted(set(Run(run_dir).models().width.tolist())) == [2, 8, 16]
    assert_same_run(local_run, run_dir, widths=(2, 8, 16))

    resumed = run_cli("run", "--resume", run_dir.name, "--runs-dir", str(runs_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert len(Run(run_dir).models()) == 16
    report_reliability(
        "a Ray shard whose worker dies on every attempt (max_retries = 1)",
        "1 run, resumed",
        "run failed naming the shard (width, seeds, attempts); the other shards kept; resume trained only it",
        "the failed shard's progress (retrained on resume)",
    )


def test_an_error_in_a_shards_training_fails_the_run_reported_as_itself(cluster, runs_dir):
    fault = cluster.faults / "w16-s0.raise"
    fault.touch()
    try:
        run_dir = create_run(runs_dir, smoke_config(*on_ray(cluster)))
        assert start_faulty_runner(run_dir, cluster).wait(timeout=180) == 1
    finally:
        fault.unlink()
    st = Run(run_dir).status()
    assert st.status == "failed"
    assert st.error == (f"width 16, seeds 0–3 failed: RuntimeError: {RAISED}; the shards that finished are kept")
    assert sorted(set(Run(run_dir).models().width.tolist())) == [2, 4, 8]


def test_sigterm_stops_a_ray_run_gracefully_and_frees_the_cluster(cluster, runs_dir):
    slow = ("training.steps=20000", "training.eval_every=1000", "model.widths=[2,4,8,16,32,64]")
    run_dir = create_run(runs_dir, smoke_config(*on_ray(cluster, *slow)))
    proc = start_runner(run_dir)
    wait_for(lambda: len(Run(run_dir).curves().step) > 0, timeout=120)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert Run(run_dir).status().status == "stopped"
    wait_for(lambda: ray.available_resources().get("CPU") == 2, timeout=30)  # its tasks were cancelled


def test_a_cluster_without_gpus_refuses_a_gpu_shard_at_once(cluster, runs_dir):
    args = ["--executor", "ray", "--address", cluster.address, "--gpus-per-shard", "1", "--runs-dir", str(runs_dir)]
    result = run_cli("run", "smoke", *args)
    assert result.returncode == 1
    assert "execution.gpus_per_shard: a shard asks for 1 GPUs but no node of the Ray cluster has more than 0" in (
        result.stderr
    )


def test_an_unreachable_address_is_one_line_naming_the_field(runs_dir):
    with socket.socket() as probe:  # a port on this machine that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("run", "smoke", "--executor", "ray", "--address", f"127.0.0.1:{port}", "--runs-dir", str(runs_dir))
    assert result.returncode == 2 and result.stderr.count("error:") == 1
    assert "execution.address" in result.stderr and not runs_dir.exists()
