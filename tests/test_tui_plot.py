"""The one plot-drawing path (tui/plot.py) and the explorer's panels drawn in one layout per key.

Timing goals live in benchmarks/bench_tui_latency.py; what is pinned here is what makes a key slow whatever
the machine: a picture drawn again although its data and size did not change, and a key that needs a second
layout of the screen (each is a frame of its own, up to 1/60 s apart).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.pilot import Pilot
from textual.screen import Screen

from scaletui.tui.form import ConfigForm
from scaletui.tui.panels import EventLog
from scaletui.tui.plot import Plot
from tests.conftest import until
from tests.synthetic_runs import lottery_run
from tests.test_tui_explorer import ExplorerApp, alpha_text


def pending(screen: Screen) -> bool:
    """Whether anything on the screen still waits to be laid out or repainted (as the benchmark asks)."""
    if screen._layout_required or screen._repaint_required or screen._dirty_widgets:
        return True
    if not screen._message_queue.empty():
        return True
    return any(w._layout_required or w._repaint_required for w in screen.walk_children())


class Counts:
    """Counts the layouts of the app's screen and the frames the app draws, for one key at a time."""

    def __init__(self, app: ExplorerApp) -> None:
        self.app, self.screen = app, app.screen
        self.layouts = self.frames = 0
        refresh_layout, display = self.screen._refresh_layout, app._display

        def counted_layout(*args, **kwargs) -> None:
            self.layouts += 1
            refresh_layout(*args, **kwargs)

        def counted_frame(shown: Screen, update: object) -> None:
            self.frames += update is not None  # a refresh that found nothing to draw is no frame
            display(shown, update)

        self.screen._refresh_layout = counted_layout  # type: ignore[method-assign]
        app._display = counted_frame  # type: ignore[method-assign]

    async def after(self, pilot: Pilot, key: str) -> tuple[int, int]:
        """The layouts and frames from pressing ``key`` until nothing is left to draw."""
        self.layouts = self.frames = 0
        await pilot.press(key)
        await until(pilot, lambda: not pending(self.screen))
        await pilot.pause(0.05)  # a frame asked for by what the first one drew comes within 1/60 s
        return self.layouts, self.frames


async def test_tabs_and_the_form_shown_and_hidden_draw_each_picture_once(tmp_path: Path) -> None:
    run = lottery_run(tmp_path / "runs")
    app = ExplorerApp(tmp_path / "runs", run.dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "α vs N = " in alpha_text(app))
        plot = app.screen.query_one(Plot)
        pictures: dict[tuple[object, tuple[int, int]], str] = {}
        for _ in range(3):
            for key in ("f2", "f1", "ctrl+f"):  # two tabs at two sizes: four pictures
                await pilot.press(key)
                await until(pilot, lambda: not pending(app.screen))
                shown = (plot.key, tuple(plot.content_size))
                assert pictures.setdefault(shown, plot.text) == plot.text
        assert len(pictures) == 4 and plot.draws == 4  # each drawn once, however often it is shown


async def test_each_tab_key_is_one_layout_and_one_frame_with_the_form_shown_or_hidden(tmp_path: Path) -> None:
    """Showing a panel lays the screen out once and draws it once, whether the form was shown or hidden since
    it was last seen: the new sizes are drawn in that layout (the tab bar's lines, the table's columns, the
    plot's picture, the event log's lines and its scrollbar) and no widget asks for a second layout or a
    frame of its own because its size changed. Not pinned: ctrl+f, which also moves focus into the form or
    out of it, and Textual lays the editor's restyling out once or twice more."""
    run = lottery_run(tmp_path / "runs")
    app = ExplorerApp(tmp_path / "runs", run.dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "α vs N = " in alpha_text(app))
        screen = app.screen
        screen.watcher = None  # no more snapshots: only the keys lay the screen out
        await until(pilot, lambda: not any(worker.is_running for worker in app.workers))
        log = screen.query_one(EventLog)
        for i in range(60):  # more lines than the log's height: it has a scrollbar to place
            log.add(Text(f"event {i}: a line long enough to wrap differently with the form shown or hidden"))
        await until(pilot, lambda: not pending(screen))  # the last snapshot's own layout is not a key's
        await pilot.pause()
        count = Counts(app)
        pane = screen.query_one("#form-pane")
        keys = ["f4", "f1", "form", "f4", "f2", "form", "f5", "form", "f1", "f5", "form", "f4", "f5"] * 2
        for key in [*keys, "f3", "f7", "f8", "f4", "f5", "f1"]:
            if key == "form":  # shown or hidden as ctrl+f does, without the focus it moves (not counted)
                pane.display = not pane.display
                await until(pilot, lambda: not pending(screen))
                continue
            assert await count.after(pilot, key) in ((0, 1), (1, 1)), key  # a plot tab after a plot tab: a repaint
        assert log.vertical_scrollbar.display  # the log's scrollbar was there to be placed


async def test_moving_through_the_form_is_one_layout_and_one_frame_a_field(tmp_path: Path) -> None:
    """↓ and ↑ through every field of a loaded run's form: each move puts the field's text in the editor (one
    layout at most, for the editor's new length) and draws once, whether the text is longer than the editor
    or not."""
    run = lottery_run(tmp_path / "runs")
    app = ExplorerApp(tmp_path / "runs", run.dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "α vs N = " in alpha_text(app))
        screen = app.screen
        screen.watcher = None
        await until(pilot, lambda: not any(worker.is_running for worker in app.workers))
        form = screen.query_one(ConfigForm)
        if not form.parent.display:
            await pilot.press("ctrl+f")
        form.editor.focus()
        await until(pilot, lambda: not pending(screen))
        await pilot.pause()
        count = Counts(app)
        paths = list(form.declared)
        longer = 0  # fields whose text is longer than the editor: the case that took a second layout
        for key, order in (("down", paths[1:]), ("up", paths[-2::-1])):
            for path in order:
                layouts, frames = await count.after(pilot, key)
                assert form.current == path
                assert layouts <= 1 and frames == 1, (key, path, layouts, frames)
                longer += len(form.texts[path]) >= form.editor.content_region.width
        assert longer > 0
