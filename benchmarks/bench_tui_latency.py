"""Key-to-render latency of the real app while a sweep trains on both cores.

Starts a detached sweep (the lottery-silu preset, shortened) through the same launch path as the CLI,
opens the real ScaletuiApp on it, headless, following the run live, and sends keys that change what is on
screen. A sample is the time from posting a key until the first frame, after the key's action has run,
that leaves nothing on the screen waiting to be laid out or repainted (headless, a frame is the update the
compositor would write to a terminal); for ctrl+x (fit against the other axis) the frame must also show
the refitted α. Then, with the form shown and its editor focused, moves through the form's fields with
↑/↓ and tab/shift+tab (the frame must show the new field current). Prints p50/p95/max of each.

Waiting for that frame matters: a callback queued with ``call_after_refresh`` right behind the key can run
before the key's own refresh (the screen goes idle before the widgets report what the key changed), which
times almost nothing.

    python benchmarks/bench_tui_latency.py [--presses 200] [--size 160x48]

(--presses is the number of tab and form keys, and again of moves through the form.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textual import events
from textual.screen import Screen

from scaletui.config import load_config
from scaletui.presets import resolve_preset
from scaletui.runner import launch, request_stop
from scaletui.store import Run
from scaletui.tui.app import ScaletuiApp
from scaletui.tui.form import ConfigForm

SCREEN_KEYS = ["f1", "f2", "f3", "f4", "f5", "f7", "f8", "ctrl+f"]  # tabs and the form: the screen changes at once
FORM_MOVES = {"down": 1, "up": -1, "tab": 1, "shift+tab": -1}  # keys that move through the form's fields


def _pending(screen: Screen) -> bool:
    """Whether anything on the screen still waits to be laid out or repainted."""
    if screen._layout_required or screen._repaint_required or screen._dirty_widgets:
        return True
    if not screen._message_queue.empty():  # e.g. a widget's request to be repainted, not yet read
        return True
    return any(w._layout_required or w._repaint_required for w in screen.walk_children())


class Frames:
    """Times the frames the app puts on screen, and which of them come after a key's action has run."""

    def __init__(self, app: ScaletuiApp) -> None:
        self.acted = False
        self.last_frame = 0.0
        self.waiting: tuple[Callable[[], bool], asyncio.Future[float]] | None = None
        display, run_action = app._display, app.run_action

        def settled(screen: Screen, shown_at: float) -> None:
            """Resolve the sample with this frame once nothing is left to draw, unless a later frame came."""
            if self.waiting is None or not self.acted or shown_at < self.last_frame:
                return
            shows, future = self.waiting
            if future.done() or not shows():
                return
            if _pending(screen):  # look again shortly: what is waiting may draw nothing new
                asyncio.get_running_loop().call_later(0.001, settled, screen, shown_at)
            else:
                future.set_result(shown_at)

        def displayed(screen: Screen, renderable: object) -> None:
            display(screen, renderable)
            if renderable is None:  # a refresh that found nothing to draw is no frame
                return
            self.last_frame = time.perf_counter()
            # Judged once the refresh that drew this frame has finished and cleared its own marks.
            asyncio.get_running_loop().call_soon(settled, screen, self.last_frame)

        async def run_and_note(*args: object, **kwargs: object) -> bool:
            handled = await run_action(*args, **kwargs)
            self.acted = True
            return handled

        app._display = displayed  # type: ignore[method-assign]
        app.run_action = run_and_note  # type: ignore[method-assign]

    async def after_key(self, app: ScaletuiApp, key: str, shows: Callable[[], bool] = lambda: True) -> float:
        """Seconds from posting a key until a frame shows what it did (``shows``) with nothing left to draw."""
        future = asyncio.get_running_loop().create_future()
        self.waiting, self.acted = (shows, future), False
        start = time.perf_counter()
        app.post_message(events.Key(key, None))
        end = await asyncio.wait_for(future, timeout=30)
        self.waiting = None
        return end - start


async def axis_to_alpha(frames: Frames, app: ScaletuiApp) -> float:
    """Seconds from ctrl+x until the α panel shows the fit against the other axis (a refit off-thread)."""
    alpha = app.screen.query_one("#alpha")
    before = "α vs width" if "α vs width" in str(alpha.render()) else "α vs N"
    return await frames.after_key(app, "ctrl+x", lambda: before not in str(alpha.render()))


async def through_the_form(frames: Frames, app: ScaletuiApp, presses: int) -> list[float]:
    """Seconds from a key that moves through the form's fields (its editor focused) until the frame shows
    the next field current: down the whole form and up again, ↓ and tab taking turns, then ↑ and shift+tab."""
    form = app.screen.query_one(ConfigForm)
    if not form.parent.display:  # type: ignore[union-attr]
        await frames.after_key(app, "ctrl+f")
    form.editor.focus()
    await asyncio.sleep(0.2)
    paths = list(form.declared)
    samples: list[float] = []
    direction = 1
    while len(samples) < presses:
        index = paths.index(form.current)
        if not 0 <= index + direction < len(paths):  # at an end: turn
            direction = -direction
            continue
        key = ("down", "tab") if direction > 0 else ("up", "shift+tab")
        key = key[len(samples) % 2]
        expected = paths[index + FORM_MOVES[key]]
        samples.append(await frames.after_key(app, key, lambda expected=expected: form.current == expected))
        by_key.setdefault(key, []).append(samples[-1])
        await asyncio.sleep(0.05)
    return samples


async def measure(
    run_dir: Path, runs_dir: Path, presses: int, size: tuple[int, int]
) -> tuple[list[float], list[float], list[float]]:
    app = ScaletuiApp(runs_dir, run_dir)
    screen: list[float] = []
    refits: list[float] = []
    by_key.clear()
    async with app.run_test(size=size) as pilot:
        frames = Frames(app)
        while "α vs" not in str(app.screen.query_one("#alpha").render()):
            await pilot.pause(0.1)  # the first snapshot of the live run
        await frames.after_key(app, SCREEN_KEYS[-2])  # not timed: from here on every key changes the screen
        for i in range(presses):
            key = SCREEN_KEYS[i % len(SCREEN_KEYS)]
            screen.append(await frames.after_key(app, key))
            by_key.setdefault(key, []).append(screen[-1])
            if i % 10 == 9:
                refits.append(await axis_to_alpha(frames, app))
            await asyncio.sleep(0.05)  # a person does not type at machine speed
        moves = await through_the_form(frames, app, presses)
    return screen, refits, moves


by_key: dict[str, list[float]] = {}  # each key's samples, for the breakdown printed after the summary


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
            screen, refits, moves = asyncio.run(measure(run_dir, runs_dir, args.presses, (columns, rows)))
            still_training = Run(run_dir).status().status == "running"
        finally:
            request_stop(Run(run_dir))
            proc.wait(timeout=60)
    print(f"key-to-render latency of the real app ({args.size}, headless) while a sweep trained on both cores:")
    line, p95 = _summary("tab and form keys", screen)
    print(line)
    print(_summary("ctrl+x until the refitted α is on screen", refits)[0])
    form_line, form_p95 = _summary("through the form (↑/↓, tab/shift+tab)", moves)
    print(form_line)
    print("  each key's median and three slowest presses (ms):")
    for key, values in sorted(by_key.items(), key=lambda kv: -max(kv[1])):
        ms = sorted(v * 1000 for v in values)
        print(f"    {key:7} {statistics.median(ms):5.1f}  |  {'  '.join(f'{v:.0f}' for v in ms[-3:])}")
    print(f"  sweep still training at the end: {still_training}")
    return 0 if max(p95, form_p95) < 100 and still_training else 1


if __name__ == "__main__":
    raise SystemExit(main())
