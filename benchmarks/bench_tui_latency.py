"""Key-to-render latency of the real app while a sweep trains on both cores.

Starts a detached sweep (the lottery-silu preset, shortened) through the same launch path as the CLI,
opens the real ScaletuiApp on it, headless, following the run live, and presses keys that change what is
on screen (switching tabs, toggling the x axis). Each sample is the time from sending the key until the
app is idle again, i.e. the key was handled and the screen re-rendered. Prints p50/p95/max.

    python benchmarks/bench_tui_latency.py [--presses 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from scaletui.config import load_config
from scaletui.presets import resolve_preset
from scaletui.runner import launch, request_stop
from scaletui.store import Run
from scaletui.tui.app import ScaletuiApp

KEYS = ["f1", "f2", "f3", "f4", "f5", "ctrl+x"]


async def measure(run_dir: Path, runs_dir: Path, presses: int) -> list[float]:
    app = ScaletuiApp(runs_dir, run_dir)
    samples: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(3.0)  # let the first snapshot arrive
        for i in range(presses):
            start = time.perf_counter()
            await pilot.press(KEYS[i % len(KEYS)])
            await pilot.pause()
            samples.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)  # a person does not type at machine speed
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200)
    args = parser.parse_args()
    cfg = load_config(
        resolve_preset("lottery-silu"),
        ["training.steps=200000", "model.widths=[16, 64, 256]", "seeds.count=16", "device=cpu"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        run_dir, proc = launch(cfg, runs_dir, detach=True)
        try:
            while Run(run_dir).status().status != "running":
                time.sleep(0.1)
            samples = asyncio.run(measure(run_dir, runs_dir, args.presses))
            still_training = Run(run_dir).status().status == "running"
        finally:
            request_stop(Run(run_dir))
            proc.wait(timeout=60)
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(f"key-to-render latency over {len(ms)} presses while a sweep trained on both cores:")
    print(f"  p50 {statistics.median(ms):.1f} ms   p95 {p95:.1f} ms   max {ms[-1]:.1f} ms")
    print(f"  sweep still training at the end: {still_training}")
    return 0 if p95 < 100 and still_training else 1


if __name__ == "__main__":
    raise SystemExit(main())
