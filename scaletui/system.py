"""What the machine is doing while a sweep trains: CPU load and memory, a runner's processes, the GPUs.

Read from Linux's /proc, which needs no dependency (psutil would add one for a few numbers). GPUs are read
through NVML (the optional ``nvidia-ml-py``), which asks the driver: it never initialises CUDA in the
calling process, so the UI process stays free of a CUDA context. Nothing here imports Textual.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessUse:
    """A process and its descendants together (a runner and the workers it starts)."""

    pids: int
    cpu_percent: float | None  # of one core, summed over the processes; None on the first sample
    rss_bytes: int


@dataclass(frozen=True)
class GpuUse:
    index: int
    name: str
    util_percent: int
    used_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class SystemSample:
    cpus: int
    load: tuple[float, float, float] | None
    mem_total: int | None
    mem_available: int | None
    runner: ProcessUse | None
    gpus: list[GpuUse] = field(default_factory=list)
    note: str | None = None  # why something is missing


def _meminfo() -> tuple[int | None, int | None]:
    try:
        lines = (PROC / "meminfo").read_text().splitlines()
    except OSError:
        return None, None
    values = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in lines if line.endswith("kB")}
    return values.get("MemTotal"), values.get("MemAvailable")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process, or None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def _rss(pid: int) -> int:
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (those it is the parent of, recursively)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


class SystemMonitor:
    """Samples the machine; a process's CPU share is measured between two samples, so keep one monitor."""

    def __init__(self) -> None:
        self._cpu: dict[int, tuple[float, float]] = {}  # pid -> (CPU seconds, when read)
        self._nvml: object | None = None
        self._nvml_note: str | None = None

    def sample(self, runner_pid: int | None) -> SystemSample:
        if not PROC.is_dir():
            return SystemSample(os.cpu_count() or 1, None, None, None, None, note="system figures need Linux's /proc")
        total, available = _meminfo()
        gpus, note = self._gpus()
        return SystemSample(
            os.cpu_count() or 1, os.getloadavg(), total, available, self._process(runner_pid), gpus, note
        )

    def _process(self, pid: int | None) -> ProcessUse | None:
        if pid is None or _stat(pid) is None:
            return None
        now = time.monotonic()
        pids = process_tree(pid)
        percent, rss, seen = 0.0, 0, {}
        measured = False
        for p in pids:
            stat = _stat(p)
            if stat is None:
                continue
            seen[p] = (stat[1], now)
            rss += _rss(p)
            if p in self._cpu:
                before, then = self._cpu[p]
                if now > then:
                    percent += 100 * (stat[1] - before) / (now - then)
                    measured = True
        self._cpu = seen
        return ProcessUse(len(seen), percent if measured else None, rss)

    def _gpus(self) -> tuple[list[GpuUse], str | None]:
        if self._nvml is None and self._nvml_note is None:
            try:
                import pynvml  # nvidia-ml-py: the driver's management library, not CUDA
            except ImportError:
                has_driver = (PROC / "driver" / "nvidia").exists()
                self._nvml_note = "GPU: install nvidia-ml-py to see it" if has_driver else ""
            else:
                try:
                    pynvml.nvmlInit()
                    self._nvml = pynvml
                except pynvml.NVMLError as exc:
                    self._nvml_note = f"GPU: {exc}"
        if self._nvml is None:
            return [], self._nvml_note or None
        nvml = self._nvml
        gpus = []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):  # type: ignore[attr-defined]
                handle = nvml.nvmlDeviceGetHandleByIndex(index)  # type: ignore[attr-defined]
                name = nvml.nvmlDeviceGetName(handle)  # type: ignore[attr-defined]
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)  # type: ignore[attr-defined]
                util = nvml.nvmlDeviceGetUtilizationRates(handle).gpu  # type: ignore[attr-defined]
                name = name.decode() if isinstance(name, bytes) else str(name)
                gpus.append(GpuUse(index, name, int(util), int(memory.used), int(memory.total)))
        except Exception as exc:  # NVMLError and its many subclasses; a GPU that vanished mid-read
            return gpus, f"GPU: {exc}"
        return gpus, None
