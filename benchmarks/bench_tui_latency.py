"""Key-to-render latency of the real app while a sweep trains on both cores.

Starts a detached sweep (the lottery-silu preset, shortened) through the same launch path as the CLI,
opens the real ScaletuiApp on it, headless, following the run live, and sends keys that change what is on
screen. For tab and form keys a sample is the time from posting the key until the app has handled it and
finished the screen refresh that follows (``call_after_refresh``); for ctrl+x (fit against the other
axis) it is the time until the refitted α is on screen. Prints p50/p95/max of each.

    python benchmarks/bench_tui_latency.py [--presses 200] [--size 160x48]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from textual import events

from scaletui.config import load_config
from scaletui.presets import resolve_preset
from scaletui.runner import launch, request_stop
from scaletui.store import Run
from scaletui.tui.app import ScaletuiApp

SCREEN_KEYS = ["f1", "f2", "f3", "f4", "f5", "ctrl+f"]  # tabs and the form: the screen changes at once


async def key_to_render(app: ScaletuiApp, key: str) -> float:
    """Seconds from posting a key until the app has handled it and refreshed the screen."""
    rendered = asyncio.Event()
    start = time.perf_counter()
    app.post_message(events.Key(key, None))
    app.call_after_refresh(rendered.set)  # queued behind the key: runs once it is handled and drawn
    await rendered.wait()
    return time.perf_counter() - start


async def axis_to_alpha(app: ScaletuiApp) -> float:
    """Seconds from ctrl+x until the α panel shows the fit against the other axis (a refit off-thread)."""
    alpha = app.screen.query_one("#alpha")
    before = "α vs width" if "α vs width" in str(alpha.render()) else "α vs N"
    start = time.perf_counter()
    app.post_message(events.Key("ctrl+x", None))
    while before in str(alpha.render()):
        await asyncio.sleep(0.002)
    return time.perf_counter() - start


async def measure(
    run_dir: Path, runs_dir: Path, presses: int, size: tuple[int, int]
) -> tuple[list[float], list[float]]:
    app = ScaletuiApp(runs_dir, run_dir)
    screen: list[float] = []
    refits: list[float] = []
    async with app.run_test(size=size) as pilot:
        while "α vs" not in str(app.screen.query_one("#alpha").render()):
            await pilot.pause(0.1)  # the first snapshot of the live run
        for i in range(presses):
            screen.append(await key_to_render(app, SCREEN_KEYS[i % len(SCREEN_KEYS)]))
            if i % 10 == 9:
                refits.append(await axis_to_alpha(app))
            await asyncio.sleep(0.05)  # a person does not type at machine speed
    return screen, refits


def _summary(name: str, seconds: list[float]) -> tuple[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return f"  {name}: n={len(ms)}  p50 {statistics.median(ms):.1f} ms  p95 {p95:.1f} ms  max {ms[-1]:.1f} ms", p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--size", default="160x48", help="terminal columns x rows")
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
            columns, rows = (int(n) for n in args.size.split("x"))
            screen, refits = asyncio.run(measure(run_dir, runs_dir, args.presses, (columns, rows)))
            still_training = Run(run_dir).status().status == "running"
        finally:
            request_stop(Run(run_dir))
            proc.wait(timeout=60)
    print(f"key-to-render latency of the real app ({args.size}, headless) while a sweep trained on both cores:")
    line, p95 = _summary("tab and form keys", screen)
    print(line)
    print(_summary("ctrl+x until the refitted α is on screen", refits)[0])
    print(f"  sweep still training at the end: {still_training}")
    return 0 if p95 < 100 and still_training else 1


if __name__ == "__main__":
    raise SystemExit(main())
