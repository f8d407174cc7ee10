"""`--address auto` on a machine with no Ray cluster: the run starts a private instance and says so.

Its own module, so that it runs after test_ray.py's instance is shut down: `auto` joins any Ray instance
it can find running on this machine.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from scaletui.store import Run
from tests.conftest import run_cli

pytest.importorskip("ray", reason="the Ray executor's tests need ray: pip install -e '.[ray]'")


def ray_running_here() -> bool:
    """Whether any process on this machine is a Ray instance's control store (what `auto` looks for)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"gcs_server" in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def test_address_auto_without_a_cluster_starts_a_private_instance(runs_dir):
    if ray_running_here():
        pytest.skip("a Ray instance is running on this machine: auto would join it")
    # Ray finds "this machine's cluster" through a file in its temp directory: an empty one means no cluster.
    # (Kept short: Ray's socket paths live under it and must fit in 107 bytes.)
    lonely = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    try:
        env = {"RAY_TMPDIR": str(lonely), "RAY_USAGE_STATS_ENABLED": "0"}
        result = run_cli("run", "smoke", "--executor", "ray", "--runs-dir", str(runs_dir), env=env, timeout=300)
    finally:
        shutil.rmtree(lonely, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    run = Run(next(runs_dir.iterdir()))
    started = next(m for _, _, _, m in run.events() if m.startswith("started"))
    assert "private Ray instance" in started and "no running cluster" in started
    assert run.status().status == "finished"
