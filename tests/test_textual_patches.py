"""Each override of Textual's internals still takes effect on the installed Textual, beside a control that
shows what Textual does without it. When Textual changes underneath, one of these fails, naming the patch."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, RichLog, Static
from textual.widgets._footer import FooterKey

from scaletui.tui.plot import Plot
from scaletui.tui.textual_patches import KeysFooter, SteadyRichLog


class TwoFields(Screen[None]):
    BINDINGS = [Binding("ctrl+y", "noop", "Same keys")]

    def compose(self) -> ComposeResult:
        yield Input(id="one")
        yield Input(id="two")
        yield KeysFooter()


class OtherKeys(Screen[None]):
    BINDINGS = [Binding("ctrl+z", "noop", "Other keys")]

    def compose(self) -> ComposeResult:
        yield Static("other")
        yield KeysFooter()


class FooterApp(App[None]):
    def on_mount(self) -> None:
        self.push_screen(TwoFields())


async def test_keys_footer_rebuilds_only_when_its_keys_change() -> None:
    app = FooterApp()
    async with app.run_test(size=(80, 12)) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(KeysFooter)
        rebuilds: list[str] = []
        original = footer.recompose

        async def counting_recompose() -> None:
            rebuilds.append("x")
            await original()

        footer.recompose = counting_recompose  # type: ignore[method-assign]
        app.screen.query_one("#two", Input).focus()
        await pilot.pause()
        await pilot.pause()
        assert rebuilds == []  # same keys: the patch skipped Textual's rebuild
        assert "Same keys" in str(footer.shown)
        app.push_screen(OtherKeys())
        await pilot.pause()
        await pilot.pause()
        shown = [key.description for key in app.screen.query_one(KeysFooter).query(FooterKey)]
        assert "Other keys" in shown  # and the footer on screen still follows real changes


class LogsApp(App[None]):
    def compose(self) -> ComposeResult:
        with Horizontal():
            yield SteadyRichLog(id="steady")
            yield RichLog(id="plain")


async def test_steady_scrollbars_skip_the_repaint_after_a_layout_that_changed_nothing() -> None:
    app = LogsApp()
    async with app.run_test(size=(80, 12)) as pilot:
        for log in app.query(RichLog):
            log.write("\n".join(f"line {i}" for i in range(200)))
        await pilot.pause()
        await pilot.pause()
        updates = {"steady": 0, "plain": 0}
        for name in updates:
            log = app.query_one(f"#{name}", RichLog)
            original = log._scroll_update

            def counting(virtual_size, name=name, original=original) -> None:
                updates[name] += 1
                original(virtual_size)

            log._scroll_update = counting  # type: ignore[method-assign]
        for _ in range(3):
            app.screen.refresh(layout=True)
            await pilot.pause()
        assert updates["plain"] > 0  # the control: Textual repaints scrollbars after any layout
        assert updates["steady"] == 0  # the patch: not when nothing about them changed


class PlotsApp(App[None]):
    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Plot(id="plot")
            yield Static(id="plain", classes="fill")

    CSS = ".fill { height: 1fr; width: 1fr; }"


def count_layouts(widgets: dict) -> dict[str, int]:
    """How many layouts each widget asks for from now on (its refresh calls with layout=True), by name."""
    layouts = dict.fromkeys(widgets, 0)
    for name, widget in widgets.items():
        original = widget.refresh

        def counting(*args, name=name, original=original, **kwargs):
            if kwargs.get("layout"):
                layouts[name] += 1
            return original(*args, **kwargs)

        widget.refresh = counting
    return layouts


async def test_a_plot_resized_asks_for_no_second_layout() -> None:
    app = PlotsApp()
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        layouts = count_layouts({name: app.query_one(f"#{name}") for name in ("plot", "plain")})
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        await pilot.pause()
        assert layouts["plain"] > 0  # the control: a new virtual size asks for a layout of its own
        assert layouts["plot"] == 0  # the patch: the plot's new size does not


async def test_a_steady_views_scrollbar_resized_asks_for_no_second_layout() -> None:
    app = LogsApp()
    async with app.run_test(size=(80, 12)) as pilot:
        for log in app.query(RichLog):
            log.write("\n".join(f"line {i}" for i in range(200)))
        await pilot.pause()
        layouts = count_layouts(
            {name: app.query_one(f"#{name}", RichLog).vertical_scrollbar for name in ("plain", "steady")}
        )
        await pilot.resize_terminal(80, 20)
        await pilot.pause()
        await pilot.pause()
        assert layouts["plain"] > 0  # the control: a resized scrollbar asks for a layout of its own
        assert layouts["steady"] == 0  # the patch: it is resized in its view's layout


async def test_a_steady_views_scrollbar_is_drawn_in_the_frame_of_its_layout() -> None:
    """Lines added to a log change its scrollbar's thumb; the layout that follows draws it in its own frame,
    where Textual asks the scrollbar for a repaint of its own, a second frame."""
    app = LogsApp()
    async with app.run_test(size=(80, 12)) as pilot:
        logs = {name: app.query_one(f"#{name}", RichLog) for name in ("plain", "steady")}
        for log in logs.values():
            log.write("\n".join(f"line {i}" for i in range(50)))
        await pilot.pause()
        await pilot.pause()
        screen = app.screen
        drawn: list[list] = []  # the regions each frame drew
        asks_again: list[dict[str, bool]] = []  # whether a scrollbar wants a frame of its own after a layout
        compositor, render_update, refresh_layout = (
            screen._compositor,
            screen._compositor.render_update,
            screen._refresh_layout,
        )

        def recording_render(*args, **kwargs):
            drawn.append(list(compositor._dirty_regions))
            return render_update(*args, **kwargs)

        def recording_layout(*args, **kwargs) -> None:
            refresh_layout(*args, **kwargs)
            asks_again.append({name: log.vertical_scrollbar._repaint_required for name, log in logs.items()})

        compositor.render_update = recording_render  # type: ignore[method-assign]
        screen._refresh_layout = recording_layout  # type: ignore[method-assign]
        thumbs = {name: log.vertical_scrollbar.window_virtual_size for name, log in logs.items()}
        for log in logs.values():
            log.write("\n".join(f"more {i}" for i in range(150)), scroll_end=False)
        await pilot.pause()
        await pilot.pause()
        assert all(log.vertical_scrollbar.window_virtual_size > thumbs[name] for name, log in logs.items())
        assert asks_again and asks_again[0]["plain"]  # the control: Textual's scrollbar wants another frame
        assert not any(asked["steady"] for asked in asks_again)  # the patch: not this one ...
        bar = logs["steady"].vertical_scrollbar.region
        cells = [(x, y) for x in range(bar.x, bar.right) for y in range(bar.y, bar.bottom)]
        # ... and drawn in the layout's own frame (the log is redrawn whole there, its scrollbar with it)
        assert drawn and all(any(r.contains(x, y) for r in drawn[0]) for x, y in cells)


async def test_a_steady_log_told_its_width_writes_before_it_is_first_shown() -> None:
    app = LogsApp()
    async with app.run_test(size=(80, 12)) as pilot:
        await pilot.pause()
        logs: dict[str, RichLog] = {"plain": RichLog(wrap=True), "steady": SteadyRichLog(wrap=True)}
        for log in logs.values():  # new logs, never shown: their size is not known yet
            log.display = False
            await app.screen.mount(log)
        logs["steady"].write_before_shown()
        for log in logs.values():
            log.write("a line written at a width it was told", width=20)
        assert logs["plain"].lines == []  # the control: Textual keeps it until the log's first Resize
        assert len(logs["steady"].lines) == 2  # the patch: written now, wrapped at 20 columns
