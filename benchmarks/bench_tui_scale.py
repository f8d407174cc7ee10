"""Key latency in the explorer opened on a run of many models: while its worker analyses the run, and after.

Issue 13's "10⁵ models without the UI slowing", measured: a synthetic run written through the real store
(``bench_analysis_scale.write_run``), the real app headless at 80×24, tab keys pressed every 50 ms while the
first snapshot is computed off the UI thread, then 40 more once it is shown. A sample is the time from posting
a key until a frame shows it with nothing left to draw (``bench_tui_latency.Frames``).

    python benchmarks/bench_tui_scale.py [--models 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_analysis_scale import write_run
from bench_tui_latency import SCREEN_KEYS, Frames

from scaletui.tui.app import ScaletuiApp
from scaletui.tui.explorer import ExplorerScreen


async def measure(run_dir: Path, while_reading: bool) -> tuple[list[float], float]:
    """Key samples while the first snapshot is taken (or, ``while_reading=False``, 40 after it is shown)."""
    app = ScaletuiApp(run_dir.parent, run_dir)
    samples: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        frames = Frames(app)
        while not isinstance(app.screen, ExplorerScreen):
            await pilot.pause(0.05)
        screen = app.screen
        if not while_reading:
            while screen.snapshot is None:
                await pilot.pause(0.2)
        start = time.perf_counter()
        while (screen.snapshot is None) if while_reading else len(samples) < 40:
            key = SCREEN_KEYS[(len(samples) + 1) % (len(SCREEN_KEYS) - 1)]  # tabs, never the one shown
            samples.append(await frames.after_key(app, key))
            await asyncio.sleep(0.05)
        return samples, time.perf_counter() - start


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return f"n={len(ms)}  p50 {statistics.median(ms):.1f} ms  p95 {p95:.1f} ms  max {ms[-1]:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = write_run(Path(tmp) / "runs", args.models, 256, 5)
        reading, took = asyncio.run(measure(run_dir, True))
        print(f"{args.models} models, explorer at 80x24: the first snapshot took {took:.1f} s with keys pressed")
        print(f"  keys while it was taken: {summary(reading)}")
        after, _ = asyncio.run(measure(run_dir, False))
        print(f"  keys after it was shown: {summary(after)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
