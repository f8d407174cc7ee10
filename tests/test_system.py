"""The system pane's readings: the machine and a process tree from /proc, GPUs through NVML (faked here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from scaletui.report import system_text
from scaletui.system import SystemMonitor, process_tree

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads Linux's /proc")


def test_a_runner_and_its_children_are_measured_together() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in process_tree(os.getpid())
        monitor = SystemMonitor()
        first = monitor.sample(os.getpid())
        assert first.runner is not None and first.runner.cpu_percent is None  # a share needs two samples
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:
            pass  # busy: this process uses CPU between the samples
        second = monitor.sample(os.getpid())
        assert second.runner is not None and second.runner.pids >= 2 and second.runner.cpu_percent > 10
        assert second.runner.rss_bytes > 0 and second.mem_total and second.load is not None
        assert monitor.sample(None).runner is None
    finally:
        child.kill()
        child.wait()


def test_gpus_are_read_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    class NVMLError(Exception):
        pass

    fake = SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA H200",
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=3 * 2**30, total=140 * 2**30),
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=37),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sample = SystemMonitor().sample(None)
    assert "GPU 0 NVIDIA H200: 37%, 3.0 GiB of 140.0 GiB" in str(system_text(sample))


def test_without_nvml_a_driver_is_mentioned_only_where_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    sample = SystemMonitor().sample(None)
    has_driver = os.path.exists("/proc/driver/nvidia")
    assert ("nvidia-ml-py" in (sample.note or "")) == has_driver
