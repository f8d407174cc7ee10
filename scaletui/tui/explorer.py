"""The explorer: a config form on the left, the run it started (or opened) live on the right.

The screen never trains and never blocks: starting a run launches a runner process through the same
code path as ``scaletui run``; a thread worker reads the run's store a few times a second and posts a
``SnapshotTaken`` message; plots are redrawn only when what they show has changed.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Header, RichLog, Select, Static
from textual.worker import Worker, WorkerState

from scaletui.analysis import DEFAULT_RESAMPLES, BudgetAnalysis, FitOptions, RunAnalysis
from scaletui.config import Config, ConfigError, load_config
from scaletui.plots import alpha_step_plot, budget_loss_plot, curves_plot, loss_plot, variance_plot
from scaletui.present import duration
from scaletui.presets import list_presets, save_user_preset
from scaletui.report import (
    alpha_numbers,
    budget_lines,
    checkpoints_line,
    local_lines,
    local_table,
    options_text,
    system_text,
    variance_numbers,
    verdict_text,
    width_cells,
)
from scaletui.store import Run, StoreError
from scaletui.system import SystemMonitor, SystemSample
from scaletui.tui.form import ConfigForm
from scaletui.tui.seeds import SeedsScreen
from scaletui.tui.textual_patches import KeysFooter, ResizedWithoutLayout, SteadyDataTable, SteadyRichLog
from scaletui.tui.tickets import TicketsScreen
from scaletui.tui.visible import in_view
from scaletui.tui.watch import RunSnapshot, RunWatcher

REFRESH_SECONDS = 0.4
SYSTEM_SECONDS = 1.0  # the system pane, while shown
CURVES_SECONDS = 2.0  # new loss-curve points alone redraw the plots at most this often
NARROW = 110  # below this many columns the form and the live panels do not both fit: the panels get the room
RESUME_REDOES = "unfinished widths continue from their last checkpoint (step 0 for a width without one)"
# tab -> (label, key); F6 opens the tickets screen.
TABS = {"loss": ("Loss", "F1"), "variance": ("Variance", "F2"), "curves": ("Curves", "F3"), "table": ("Table", "F4"),
        "events": ("Events", "F5"), "budget": ("Budget", "F7"), "slopes": ("Slopes", "F8")}  # fmt: skip
EXPLORER_COLUMNS = ("width", "N", "seeds", "median", "IQR", "V", "V main", "bias²", "outside", "main med", "div",
                    "falling")  # fmt: skip
PANEL_WIDGETS = {"table": "#widths", "events": "#log"}  # the widget each tab shows; the plot tabs share #plot


class TabBar(Static):
    """The panels and their keys on one line, the one shown highlighted; clicking a name shows that panel."""

    DEFAULT_CSS = "TabBar { height: auto; padding: 0 1; background: $boost; }"
    active = "loss"

    def show(self, active: str) -> None:
        """Highlight a tab; the names fill as many lines as the bar's width needs (never one cut at the edge)."""
        self.active = active
        room = self.content_region.width or 1000  # before the first layout: one line, laid out again on resize
        lines: list[list[str]] = [[]]
        used = 0
        for tab, (label, key) in TABS.items():
            name = f"[{'reverse bold' if tab == active else 'dim'}][@click=screen.tab('{tab}')] {label} {key} [/][/]"
            cells = len(label) + len(key) + 3
            if lines[-1] and used + cells > room:
                lines.append([])
                used = 0
            lines[-1].append(name)
            used += cells
        self.update("\n".join("".join(line) for line in lines), layout=len(lines) != self.size.height)

    def on_resize(self) -> None:
        self.show(self.active)


class Plot(ResizedWithoutLayout, Static):
    """A plotext picture sized to the widget; redrawn by the screen when its data or size changes."""

    DEFAULT_CSS = "Plot { height: 1fr; width: 1fr; }"
    drawn: tuple[object, ...] | None = None

    def on_resize(self) -> None:
        self.screen.post_message(PlotResized())


def budget_picture(budget: BudgetAnalysis, width: int, height: int) -> RenderableType:
    """The budget panel: the settled lines above the loss of each width against step and α(step) with its
    CI band, side by side (stacked when the panel is too narrow for two plots)."""
    lines = budget_lines(budget)
    used = sum(math.ceil(max(1, len(line.plain)) / width) for line in lines)
    room = height - used
    if not budget.widths or room < 6:
        return Group(*lines)
    if width >= 60:
        half = (width - 1) // 2
        grid = Table.grid(padding=(0, 1))
        grid.add_row(Text.from_ansi(budget_loss_plot(budget, half, room)),
                     Text.from_ansi(alpha_step_plot(budget, width - 1 - half, room)))  # fmt: skip
        return Group(*lines, grid)
    top = room // 2
    return Group(*lines, Text.from_ansi(budget_loss_plot(budget, width, top)),
                 Text.from_ansi(alpha_step_plot(budget, width, room - top)))  # fmt: skip


def slopes_picture(analysis: RunAnalysis) -> RenderableType:
    """The local-slopes panel: pair and window slopes with their CIs, the verdict and the broken law."""
    if analysis.local is None:
        return Text("local slopes: need 2+ widths with a usable loss", style="yellow")
    return Group(local_table(analysis.local, analysis.x_axis), *local_lines(analysis.local))


class PlotResized(Message):
    """A plot's size changed, so the pictures must be redrawn to fit."""


class SystemSampled(Message):
    """A worker read the machine's load, the runner's processes and the GPUs."""

    def __init__(self, sample: SystemSample) -> None:
        super().__init__()
        self.sample = sample


class SnapshotTaken(Message):
    """A worker read the followed run."""

    def __init__(self, snapshot: RunSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class ExplorerScreen(Screen):
    """Configure and launch a sweep, or follow and inspect an existing run."""

    # The screen's commands win over the form's editor, which would take ctrl+e (end) and ctrl+x (cut).
    BINDINGS = [
        # Most needed first: on a narrow terminal the footer drops keys from the end (all stay in ? and ^p).
        Binding("ctrl+r", "start", "Run", priority=True),
        Binding("ctrl+t", "stop", "Stop", priority=True),
        Binding("ctrl+o", "presets", "Presets", priority=True),
        Binding("ctrl+g", "fit_options", "Fit", priority=True),
        Binding("ctrl+f", "toggle_form", "Form", priority=True),
        Binding("e", "export", "Export"),  # not while the form's editor has focus: there it types an e
        Binding("ctrl+e", "resume", "Resume", priority=True),
        Binding("ctrl+x", "toggle_x", "Width/N", priority=True),
        Binding("ctrl+s", "save_preset", "Save preset", priority=True),
        Binding("escape", "back", "Runs"),
        Binding("f1", "tab('loss')", "Loss", show=False),
        Binding("f2", "tab('variance')", "Variance", show=False),
        Binding("f3", "tab('curves')", "Curves", show=False),
        Binding("f4", "tab('table')", "Table", show=False),
        Binding("f5", "tab('events')", "Events", show=False),
        Binding("f6", "tickets", "Tickets"),
        Binding("f7", "tab('budget')", "Budget", show=False),
        Binding("f8", "tab('slopes')", "Slopes", show=False),
        Binding("f9", "toggle_system", "System", show=False),
        Binding("f10", "seeds", "Seeds"),
    ]

    DEFAULT_CSS = """
    ExplorerScreen #form-pane { width: 38; border-right: solid $primary-darken-2; }
    ExplorerScreen #preset-bar { height: auto; padding: 0 1; }
    ExplorerScreen #buttons { height: auto; padding: 0 1; }
    ExplorerScreen #buttons Button { margin-right: 1; min-width: 10; }
    ExplorerScreen #alpha { height: auto; min-height: 2; padding: 0 1; text-style: bold; }
    ExplorerScreen #progress { height: auto; padding: 0 1; color: $text-muted; }
    ExplorerScreen #system { height: auto; padding: 0 1; color: $text-muted; display: none; }
    ExplorerScreen #live { width: 1fr; }
    ExplorerScreen #widths, ExplorerScreen #log { height: 1fr; display: none; }
    """

    def __init__(self, runs_dir: Path, run_dir: Path | None = None, config: Config | None = None) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.initial = config
        self.watcher = RunWatcher(run_dir) if run_dir else None
        # A new experiment starts in the form; an opened run is for watching, where typing should edit nothing.
        self.AUTO_FOCUS = "#field-editor" if run_dir is None else ""
        self.fit_options = FitOptions()  # `scaletui fit`'s defaults until the fit controls (ctrl+g) change them
        self.tab = "loss"
        self.snapshot: RunSnapshot | None = None
        self.form_saved: dict[str, str] = {}  # the form as a run or preset holds it: esc leaves it without asking
        self.system = SystemMonitor()
        self.reset_drawn()

    def reset_drawn(self) -> None:
        """Forget what was drawn, so the next snapshot draws everything."""
        self.drawn_key: tuple[object, ...] | None = None
        self.drawn_models: tuple[object, ...] | None = None
        self.table_key: tuple[object, ...] | None = None
        self.drawn_at = 0.0
        # (tab, width, height) -> (what it shows, the picture): showing the form and back, or coming back to a
        # tab, repaints a picture drawn before instead of drawing it again.
        self.pictures: dict[tuple[str, int, int], tuple[object, RenderableType]] = {}
        for plot in self.query(Plot):  # none yet while the screen is being built
            plot.drawn = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="form-pane"):
                with Horizontal(id="preset-bar"):
                    presets = [(p.name, str(p.path)) for p in list_presets()]
                    yield Select(presets, prompt="load preset… (ctrl+o)", id="preset", compact=True)
                yield ConfigForm(id="form")
                with Horizontal(id="buttons"):
                    yield Button("Run ▶", id="run", variant="success")
                    yield Button("Stop ■", id="stop", variant="error")
            with Vertical(id="live"):
                yield Static("α: no run yet — fill the form and press Run (ctrl+r)", id="alpha")
                yield Static("", id="progress")
                yield Static("reading the machine…", id="system")
                yield TabBar(id="tab-bar")
                # The three plot tabs share one widget: moving between them repaints it, with no layout.
                yield Plot(id="plot")
                yield SteadyDataTable(id="widths", cursor_type="row", zebra_stripes=True)
                yield SteadyRichLog(id="log", wrap=True, markup=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        form = self.query_one(ConfigForm)
        if self.initial is not None:
            form.load(self.initial)
        elif self.watcher is not None:
            try:
                form.load(Run(self.watcher.run_dir).config)
            except StoreError as exc:
                self.notify(str(exc), severity="error")
        else:
            form.load(load_config(next(p.path for p in list_presets() if p.name == "smoke")))
        if self.watcher is not None:
            self.query_one("#alpha", Static).update("reading the run…", layout=False)
        if self.watcher is not None and self.app.size.width < NARROW:
            self.query_one("#form-pane").display = False  # an opened run needs the room; ctrl+f shows it
        self.form_saved = dict(form.texts)
        self.query_one(TabBar).show(self.tab)
        table = self.query_one("#widths", DataTable)
        table.add_columns(*EXPLORER_COLUMNS)
        self.set_interval(REFRESH_SECONDS, self.refresh_snapshot)  # the first one when the screen is shown
        self.set_interval(SYSTEM_SECONDS, self.refresh_system)

    # --- following a run ---------------------------------------------------------------------------

    def follow(self, run_dir: Path) -> None:
        self.watcher = RunWatcher(run_dir)
        self.snapshot = None
        self.reset_drawn()
        self.query_one("#log", RichLog).clear()
        self.refresh_snapshot()

    def on_screen_resume(self) -> None:
        self.refresh_snapshot()

    def refresh_snapshot(self) -> None:
        if self.watcher is not None and in_view(self):
            self.take_snapshot(self.watcher, self.fit_options)

    @work(thread=True, exclusive=True, group="snapshot", exit_on_error=False)
    def take_snapshot(self, watcher: RunWatcher, options: FitOptions) -> None:
        self.post_message(SnapshotTaken(watcher.snapshot(options)))

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "snapshot":
            error = event.worker.error
            message = str(error) if isinstance(error, StoreError | ConfigError) else f"{type(error).__name__}: {error}"
            alpha = self.query_one("#alpha", Static)
            alpha.update(Text(f"cannot read the run: {message}", style="bold red"), layout=False)

    @on(SnapshotTaken)
    def show_snapshot(self, message: SnapshotTaken) -> None:
        snap = message.snapshot
        if self.watcher is None or snap.run_dir != self.watcher.run_dir:
            return  # a late answer about a run we no longer follow
        self.snapshot = snap
        # Touch only what changed: every update costs a repaint, and these arrive several times a second.
        sub_title = f"{snap.run_id} · {snap.status.status}"
        if self.sub_title != sub_title:
            self.sub_title = sub_title
        self.set_text("#alpha", self.alpha_text(snap))
        self.set_text("#progress", self.progress_text(snap))
        log = self.query_one("#log", RichLog)
        for _, t, level, text in snap.events:
            style = {"warning": "yellow", "error": "bold red"}.get(level, "")
            log.write(Text.assemble((time.strftime("%H:%M:%S ", time.localtime(t)), "dim"), (text, style)))
        models_key = (len(snap.models), snap.status.status, snap.analysis.options)
        if models_key != self.table_key:
            self.table_key = models_key
            self.fill_table(snap)
        now = time.monotonic()
        key = (*snap.key, snap.analysis.options)
        # New finished models redraw at once; mere new curve points at most every CURVES_SECONDS.
        if key != self.drawn_key and (models_key != self.drawn_models or now - self.drawn_at >= CURVES_SECONDS):
            self.drawn_key, self.drawn_models, self.drawn_at = key, models_key, now
            self.draw_plots()

    def set_text(self, selector: str, text: Text) -> None:
        """Show a text whole: it is laid out again only when it needs another number of lines (a repaint else)."""
        widget = self.query_one(selector, Static)
        if widget.content != text:
            width = widget.content_region.width
            lines = len(text.wrap(self.app.console, width)) if width else widget.size.height
            minimum = int(widget.styles.min_height.value) if widget.styles.min_height is not None else 1
            widget.update(text, layout=max(lines, minimum) != widget.size.height)

    def alpha_text(self, snap: RunSnapshot) -> Text:
        """α and the V slope as ``scaletui fit`` prints them (one format function), then what qualifies them."""
        analysis = snap.analysis
        axis = "N" if analysis.x_axis == "params" else "width"
        resamples = analysis.options.resamples
        live = f"   live: {resamples} resamples" if resamples != DEFAULT_RESAMPLES else ""
        fit = analysis.fit
        if fit is None:
            return Text.assemble(
                (f"α vs {axis}: ", "bold"),
                (analysis.fit_error or "waiting for widths", "yellow"),
                (live, "yellow"),
                (self.dimension_text(analysis), "dim"),
            )
        v = analysis.variance_slope
        chosen = options_text(analysis.options)
        return Text.assemble(
            (alpha_numbers(fit), "bold cyan"),
            verdict_text(analysis),
            f"  ({fit.points} widths, {analysis.aggregate}{', ' if chosen else ''}{chosen})\n",
            (variance_numbers(v) if v is not None else "V slope: needs 2+ widths with 2+ finite seeds", "green"),
            (live, "yellow"),
            (self.dimension_text(analysis), "dim"),
        )

    @staticmethod
    def dimension_text(analysis) -> str:
        """The data's measured dimension beside the 4/d reference, for inputs of 2+ dimensions."""
        if analysis.intrinsic is None:
            return ""
        d = analysis.intrinsic.dimension
        return f"   TwoNN d = {d:.2f} → 4/d = {4 / d:.2f}"

    def progress_text(self, snap: RunSnapshot) -> Text:
        st = snap.status
        elapsed = st.duration or 0.0
        eta = ""
        if st.status == "running" and 0 < snap.fraction < 1:
            eta = f" · ETA {duration(elapsed * (1 - snap.fraction) / snap.fraction)}"
        current = [w for w, s in snap.steps_done.items() if 0 < s < snap.config.training.steps]
        width = (
            f" · width {current[0]}: step {snap.steps_done[current[0]]}/{snap.config.training.steps}" if current else ""
        )
        excluded = sum(s.diverged for s in snap.analysis.widths), sum(s.unconverged for s in snap.analysis.widths)
        flags = f" · {excluded[0]} diverged, {excluded[1]} still falling" if any(excluded) else ""
        style = {"failed": "red", "dead": "red", "running": "green", "not responding": "yellow"}.get(st.status, "")
        error = f" · {st.error}" if st.error else ""
        saved = checkpoints_line(snap.checkpoints, snap.config.seeds.count)
        saved = f" · {saved}" if saved else ""
        return Text.assemble(
            (st.status, style), f" · {snap.fraction:.0%} done{width}{eta} · {duration(elapsed)}{flags}{saved}{error}"
        )

    def fill_table(self, snap: RunSnapshot) -> None:
        table = self.query_one("#widths", DataTable)
        table.clear()
        for cells in width_cells(snap.analysis):
            table.add_row(*(cells[c] for c in EXPLORER_COLUMNS))

    @on(PlotResized)
    def draw_plots(self) -> None:
        """Draw the plot of the tab shown only; the others are drawn when their tab is opened."""
        snap = self.snapshot
        if snap is None:
            return
        # The analysis is redone exactly when these change; α(step) is a new object only when it was refitted.
        fit = (len(snap.models), snap.analysis.options)
        pictures: dict[str, tuple[object, Callable[[int, int], RenderableType]]] = {
            "loss": (fit, lambda w, h: Text.from_ansi(loss_plot(snap.analysis, snap.models, w, h))),
            "variance": (fit, lambda w, h: Text.from_ansi(variance_plot(snap.analysis, w, h))),
            "curves": (self.drawn_key, lambda w, h: Text.from_ansi(curves_plot(snap.budgets, w, h))),
            "budget": (snap.budget_version, lambda w, h: budget_picture(snap.budget, w, h)),
            "slopes": (fit, lambda w, h: slopes_picture(snap.analysis)),
        }
        if self.tab not in pictures:
            return
        shows, draw = pictures[self.tab]
        plot = self.query_one("#plot", Plot)
        w, h = plot.size
        if w < 20 or h < 6:
            return
        cached = self.pictures.get((self.tab, w, h))
        if cached is None or cached[0] != shows:
            cached = self.pictures[self.tab, w, h] = (shows, draw(w, h))
        if plot.drawn != (self.tab, w, h, shows):
            plot.drawn = (self.tab, w, h, shows)
            plot.update(cached[1], layout=False)  # the picture fits the plot's own size

    # --- the system pane ---------------------------------------------------------------------------

    def action_toggle_system(self) -> None:
        """Show or hide the machine's load and memory, the runner's processes and the GPUs (read every second)."""
        pane = self.query_one("#system", Static)
        pane.display = not pane.display
        self.refresh_system()

    def refresh_system(self) -> None:
        if self.query_one("#system").display and in_view(self):
            status = self.snapshot.status if self.snapshot is not None else None
            here = status is not None and status.is_live and status.host == socket.gethostname()
            self.sample_system(status.pid if here and status is not None else None)

    @work(thread=True, exclusive=True, group="system", exit_on_error=False)
    def sample_system(self, runner_pid: int | None) -> None:
        self.post_message(SystemSampled(self.system.sample(runner_pid)))

    @on(SystemSampled)
    def show_system(self, message: SystemSampled) -> None:
        self.set_text("#system", system_text(message.sample))

    # --- actions -------------------------------------------------------------------------------------

    @on(Button.Pressed, "#run")
    def action_start(self) -> None:
        cfg = self.query_one(ConfigForm).validated()
        if cfg is not None:
            self.launch(cfg)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def launch(self, cfg: Config) -> None:
        """The same code path as ``scaletui run --detach``; the runner outlives this app if asked to."""
        from scaletui.runner import launch

        try:
            run_dir, _ = launch(cfg, self.runs_dir, detach=True)
        except ConfigError as exc:
            self.app.call_from_thread(self.query_one(ConfigForm).show_error, exc.where, exc.problem)
            return
        self.app.call_from_thread(self.launched, run_dir)

    def launched(self, run_dir: Path) -> None:
        self.app.post_message(RunLaunched(run_dir))
        self.notify(f"started {run_dir.name}")
        self.form_saved = dict(self.query_one(ConfigForm).texts)  # the run holds the form now
        if self.app.size.width < NARROW:
            self.query_one("#form-pane").display = False  # the live panels need the room; ctrl+f shows the form
        self.follow(run_dir)

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        from scaletui.runner import request_stop

        if self.watcher is None:
            self.notify("no run to stop", severity="warning")
            return
        try:
            stopped = request_stop(Run(self.watcher.run_dir))
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        if stopped:
            self.notify(f"stopping at the next step; ctrl+e resumes: {RESUME_REDOES}")
        else:
            self.notify("this run is not running")

    def action_resume(self) -> None:
        """Finish the followed run if it was stopped, failed or its runner died (``run --resume``)."""
        from scaletui.runner import start_runner

        if self.watcher is None:
            self.notify("no run to resume", severity="warning")
            return
        run_dir = self.watcher.run_dir
        try:
            status = Run(run_dir).status().status
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        if status not in ("stopped", "failed", "dead"):
            self.notify(f"this run is {status}; only stopped, failed or dead runs resume", severity="warning")
            return
        start_runner(run_dir, detach=True, resume=True)
        self.app.post_message(RunLaunched(run_dir))
        self.notify(f"resuming {run_dir.name}: {RESUME_REDOES}")
        self.follow(run_dir)

    def action_toggle_x(self) -> None:
        x_axis = "width" if self.fit_options.x_axis == "params" else "params"
        self.fit_options = replace(self.fit_options, x_axis=x_axis)
        self.refresh_snapshot()

    def action_export(self) -> None:
        """Export the followed run with the fit options shown, to a CSV file of a chosen format."""
        from scaletui.tui.exporting import ask_and_export

        if self.watcher is None:
            self.notify("no run yet: start one (ctrl+r) or open one from the runs screen", severity="warning")
            return
        run_dir = self.watcher.run_dir
        name = self.snapshot.config.name if self.snapshot is not None else run_dir.name
        options = replace(self.fit_options, resamples=DEFAULT_RESAMPLES)  # a file gets the full bootstrap
        ask_and_export(self, [run_dir], f"run {name}", run_dir.name, options)

    def action_fit_options(self) -> None:
        """The fit controls: what `scaletui fit` takes as options; the α line, the plots and `e` follow them."""
        from scaletui.tui.dialogs import FitDialog

        def chosen(options: FitOptions | None) -> None:
            if options is not None and options != self.fit_options:
                self.fit_options = options
                self.refresh_snapshot()

        self.app.push_screen(FitDialog(self.fit_options), chosen)

    def action_toggle_form(self) -> None:
        # Setting display directly, not a CSS class: a class change re-matches the stylesheet on every field.
        for pane in self.query("#form-pane"):
            pane.display = not pane.display

    def action_tab(self, tab: str) -> None:
        """Show a tab's panel. A plot drawn before at its size is shown at once and brought up to date after."""
        self.tab = tab
        panel = PANEL_WIDGETS.get(tab, "#plot")
        panels = self.query("#plot, #widths, #log")  # none yet while the screen is still being built
        # The panels take turns in one place: the one shown now has the size the next one will get.
        size = next((widget.size for widget in panels if widget.display), None)
        for widget in panels:
            if widget.display != (f"#{widget.id}" == panel):
                widget.display = not widget.display
        for bar in self.query(TabBar):
            bar.show(tab)
        cached = self.pictures.get((tab, *size)) if size is not None else None
        if cached is None:
            self.draw_plots()
            return
        plot = self.query_one("#plot", Plot)
        plot.drawn = (tab, *size, cached[0])
        plot.update(cached[1], layout=False)
        self.call_after_refresh(self.draw_plots)

    def action_tickets(self) -> None:
        """The lottery-ticket view of the followed run: mirror pairs and ensembles against wide nets."""
        if self.watcher is None:
            self.notify("no run yet: start one (ctrl+r) or open one from the runs screen", severity="warning")
            return
        self.app.push_screen(TicketsScreen(self.watcher.run_dir))

    def action_seeds(self) -> None:
        """The seed distribution of the followed run: quantiles, best of k, tails and the verdict."""
        if self.watcher is None:
            self.notify("no run yet: start one (ctrl+r) or open one from the runs screen", severity="warning")
            return
        self.app.push_screen(SeedsScreen(self.watcher.run_dir))

    def action_back(self) -> None:
        """Back to the runs; a form edited since it was loaded, started or saved is not dropped without asking."""
        from scaletui.tui.dialogs import ConfirmDialog

        form = self.query_one(ConfigForm)
        form.commit()
        if form.texts == self.form_saved:
            self.app.pop_screen()
            return

        def leave(discard: bool | None) -> None:
            if discard:
                self.app.pop_screen()

        self.app.push_screen(
            ConfirmDialog("The form has edits no run or preset holds. Discard them?", "Discard"), leave
        )

    def action_presets(self) -> None:
        """Open the preset list from the keyboard (the form is shown first if it was hidden)."""
        pane = self.query_one("#form-pane")
        pane.display = True
        select = self.query_one("#preset", Select)
        select.focus()
        select.action_show_overlay()

    @on(Select.Changed, "#preset")
    def preset_chosen(self, event: Select.Changed) -> None:
        if event.value is Select.BLANK:
            return
        form = self.query_one(ConfigForm)
        try:
            form.load(load_config(Path(str(event.value))))
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return
        self.form_saved = dict(form.texts)
        form.editor.focus()

    def action_save_preset(self) -> None:
        from scaletui.tui.dialogs import PromptDialog

        cfg = self.query_one(ConfigForm).validated()
        if cfg is None:
            return

        def save(name: str | None) -> None:
            if name:
                self.save_preset(cfg, name)

        self.app.push_screen(PromptDialog("Save the form as preset named:", cfg.name), save)

    def save_preset(self, cfg: Config, name: str) -> None:
        try:
            path = save_user_preset(cfg, name)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        except OSError as exc:
            self.notify(f"cannot save preset: {exc}", severity="error")
            return
        self.notify(f"saved preset {path.stem} in {path.parent}")
        self.form_saved = dict(self.query_one(ConfigForm).texts)
        self.query_one("#preset", Select).set_options([(p.name, str(p.path)) for p in list_presets()])


class RunLaunched(Message):
    """The explorer started a runner process (the app remembers it for the quit question)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir
