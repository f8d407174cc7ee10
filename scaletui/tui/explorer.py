"""The explorer: a config form on the left, the run it started (or opened) live on the right.

The screen never trains and never blocks: starting a run launches a runner process through the same
code path as ``scaletui run``; a thread worker reads the run's store a few times a second and posts a
``SnapshotTaken`` message. The plot tabs share one :class:`~scaletui.tui.plot.Plot`, keyed by the tab and
the version of what it shows: a picture is drawn only when that was read or computed again, or the plot's
size is new to it.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import QueryType
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Header, Input, Select, Static
from textual.worker import Worker, WorkerState

from scaletui.analysis import DEFAULT_RESAMPLES, FitOptions
from scaletui.config import Config, ConfigError, load_config
from scaletui.grid import Fixed, axis_of
from scaletui.plots import Curve, curves_plot, curves_vs_n_plot, loss_plot, variance_plot
from scaletui.present import duration, group_label, resume_points_text, x_symbol
from scaletui.presets import list_presets, save_user_preset
from scaletui.report import (
    POINTS,
    alpha_numbers,
    checkpoints_line,
    options_text,
    system_text,
    variance_numbers,
    verdict_text,
)
from scaletui.store import Run, StoreError
from scaletui.system import SystemMonitor, SystemSample
from scaletui.tui.form import ConfigForm
from scaletui.tui.panels import EventLog, Line, LivePane, TabBar, WidthsTable, budget_picture, slopes_picture
from scaletui.tui.plot import Plot, ansi
from scaletui.tui.seeds import SeedsScreen
from scaletui.tui.textual_patches import KeysFooter
from scaletui.tui.tickets import TicketsScreen
from scaletui.tui.visible import in_view
from scaletui.tui.watch import RunSnapshot, RunWatcher

REFRESH_SECONDS = 0.4
RESUMABLE = ("stopped", "failed", "dead")  # what `run --resume` finishes
NO_RUN_YET = "no run yet: start one (ctrl+r) or open one from the runs screen"
SYSTEM_SECONDS = 1.0  # the system pane, while shown
NARROW = 110  # below this many columns the form and the live panels do not both fit: the panels get the room
RESUME_REDOES = "unfinished widths continue from their last checkpoint (step 0 for a width without one)"
PANEL_WIDGETS = {"table": "#widths", "events": "#log"}  # the widget each tab shows; the plot tabs share #plot


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
        Binding("ctrl+t", "stop", "Stop", priority=True),  # stop for a live run, resume for a stopped one: one
        Binding("ctrl+e", "resume", "Resume", priority=True),  # slot in the footer, never both
        Binding("ctrl+o", "presets", "Presets", priority=True),
        Binding("ctrl+g", "fit_options", "Fit", priority=True),
        Binding("ctrl+f", "toggle_form", "Form", priority=True),
        Binding("e", "export", "Export"),  # not while the form's editor has focus: there it types an e
        Binding("ctrl+x", "toggle_x", "x axis", priority=True),
        Binding("ctrl+n", "next_curve", "Next curve", priority=True),  # shown for a grid's curves only
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
        self.curve = 0  # which of a grid's curves along the x axis the table and the α line show (ctrl+n)
        self.reading = False  # a snapshot is being taken off the UI thread
        self.read_again = False  # and another was asked for meanwhile
        self.tab = "loss"
        self.snapshot: RunSnapshot | None = None
        self.form_saved: dict[str, str] = {}  # the form as a run or preset holds it: esc leaves it without asking
        self.system = SystemMonitor()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="form-pane"):
                with Horizontal(id="preset-bar"):
                    presets = [(p.name, str(p.path)) for p in list_presets()]
                    # No type-to-search: the open list would take `?` as a letter, where it opens the help.
                    yield Select(
                        presets, prompt="load preset… (ctrl+o)", id="preset", compact=True, type_to_search=False
                    )
                yield ConfigForm(id="form")
                with Horizontal(id="buttons"):
                    yield Button("Run ▶", id="run", variant="success")
                    yield Button("Stop ■", id="stop", variant="error")
            with LivePane(id="live"):
                yield Line("α: no run yet — fill the form and press Run (ctrl+r)", id="alpha")
                yield Line("", id="progress")
                yield Line("reading the machine…", id="system")
                yield TabBar(id="tab-bar")
                # The three plot tabs share one widget: moving between them repaints it, with no layout.
                yield Plot(id="plot")
                yield WidthsTable(id="widths")
                yield EventLog(id="log")
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
            self.show_form(False)  # an opened run needs the room; ctrl+f shows the form
        self.form_saved = dict(form.texts)
        self.query_one(TabBar).show(self.tab)
        self.set_interval(REFRESH_SECONDS, self.refresh_snapshot)  # the first one when the screen is shown
        self.set_interval(SYSTEM_SECONDS, self.refresh_system)

    # --- following a run ---------------------------------------------------------------------------

    def follow(self, run_dir: Path) -> None:
        self.watcher = RunWatcher(run_dir)
        self.snapshot = None
        self.query_one(EventLog).reset()
        self.refresh_snapshot()

    def on_screen_resume(self) -> None:
        self.refresh_snapshot()

    def refresh_snapshot(self) -> None:
        """Read the run again, one read at a time: a run of 10⁵ models takes longer to analyse than the refresh
        interval, and reads started on top of each other would share the cores, and the interpreter, with the
        UI (measured: keys' p95 59 ms and one of 0.5 s at 80×24 while they piled up). A read asked for while
        one runs is made once that one ends, with the options of that moment."""
        if self.watcher is None or not in_view(self):
            return
        if self.reading:
            self.read_again = True
            return
        self.reading, self.read_again = True, False
        self.take_snapshot(self.watcher, self.fit_options)

    @work(thread=True, exclusive=True, group="snapshot", exit_on_error=False)
    def take_snapshot(self, watcher: RunWatcher, options: FitOptions) -> None:
        self.post_message(SnapshotTaken(watcher.snapshot(options, self.curve)))

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "snapshot" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self.reading = False
            if self.read_again:
                self.refresh_snapshot()
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
        before = self.snapshot
        self.snapshot = snap
        if before is None or self.keys_of(before) != self.keys_of(snap):
            self.refresh_bindings()  # ctrl+n for a grid's curves, ctrl+t for a live run, ctrl+e for a stopped one
        # Touch only what changed: every update costs a repaint, and these arrive several times a second.
        sub_title = f"{snap.run_id} · {snap.status.status}"
        if self.sub_title != sub_title:
            self.sub_title = sub_title
        self.set_text("#alpha", self.alpha_text(snap))
        self.set_text("#progress", self.progress_text(snap))
        log = self.query_one(EventLog)
        for _, t, level, text in snap.events:
            style = {"warning": "yellow", "error": "bold red"}.get(level, "")
            log.add(Text.assemble((time.strftime("%H:%M:%S ", time.localtime(t)), "dim"), (text, style)))
        self.query_one(WidthsTable).show(snap.analysis, snap.analysis_version)
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
        """α and the V slope as ``scaletui fit`` prints them (one format function), then what qualifies them;
        for a grid, first which curve they are of."""
        analysis = snap.analysis
        axis = x_symbol(analysis.options.axis, analysis.x_axis)
        curve = ""
        if len(snap.curves) > 1:
            curve = f"{snap.curves[snap.selected][0]} ({snap.selected + 1}/{len(snap.curves)}, ctrl+n): "
        resamples = analysis.options.resamples
        live = f"   live: {resamples} resamples" if resamples != DEFAULT_RESAMPLES else ""
        fit = analysis.fit
        if fit is None:
            return Text.assemble(
                (f"{curve}α vs {axis}: ", "bold"),
                (analysis.fit_error or "waiting for widths", "yellow"),
                (live, "yellow"),
                (self.dimension_text(analysis), "dim"),
            )
        v = analysis.variance_slope
        chosen = options_text(analysis.options)
        return Text.assemble(
            (curve, "bold"),
            (alpha_numbers(fit), "bold cyan"),
            verdict_text(analysis),
            f"  ({fit.points} {POINTS[fit.axis]}, {analysis.aggregate}{', ' if chosen else ''}{chosen})\n",
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
        eta = ""  # the store's estimate (the CLI's bars show the same); "–" until this session has a rate
        if st.status == "running":
            eta = f" · ETA {'–' if snap.eta is None else duration(snap.eta)}"
        cfg = snap.config
        current = [g for g, s in snap.steps_done.items() if 0 < s < cfg.training.steps]
        where = group_label(*current[0], len(cfg.data_sizes), len(cfg.depths)) if current else ""
        width = f" · {where}: step {snap.steps_done[current[0]]}/{cfg.training.steps}" if current else ""
        excluded = sum(s.diverged for s in snap.analysis.widths), sum(s.unconverged for s in snap.analysis.widths)
        flags = f" · {excluded[0]} diverged, {excluded[1]} still falling" if any(excluded) else ""
        style = {"failed": "red", "dead": "red", "running": "green", "not responding": "yellow"}.get(st.status, "")
        error = f" · {st.error}" if st.error else ""
        saved = checkpoints_line(snap.checkpoints, snap.config.seeds.count)
        saved = f" · {saved}" if saved else ""
        return Text.assemble(
            (st.status, style), f" · {snap.fraction:.0%} done{width}{eta} · {duration(elapsed)}{flags}{saved}{error}"
        )

    def draw_plots(self) -> None:
        """Hand the plot what the tab shown draws; it draws only when it has no picture of it at its size."""
        snap = self.snapshot
        if snap is None or self.tab in PANEL_WIDGETS:
            return
        fit, curves = snap.analysis_version, snap.curves_version
        pictures = {
            "loss": (fit, ansi(lambda w, h: self.loss_picture(snap, w, h))),
            "variance": (fit, ansi(lambda w, h: variance_plot(snap.analysis, w, h))),
            "curves": (curves, ansi(lambda w, h: curves_plot(snap.budgets, w, h))),
            "budget": (curves, lambda w, h: budget_picture(snap.budget, w, h)),
            "slopes": (fit, lambda w, h: slopes_picture(snap.analysis)),
        }
        version, draw = pictures[self.tab]
        self.query_one("#plot", Plot).show((self.tab, version), draw)

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
            self.show_form(False)  # the live panels need the room; ctrl+f shows the form
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
            run = Run(run_dir)
            status = run.status().status
            points = resume_points_text(run.resume_points())  # read before the runner takes them up
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        if status not in RESUMABLE:
            self.notify(f"this run is {status}; only stopped, failed or dead runs resume", severity="warning")
            return
        start_runner(run_dir, detach=True, resume=True)
        self.app.post_message(RunLaunched(run_dir))
        self.notify(f"resuming {run_dir.name}: {points}")
        self.follow(run_dir)

    @staticmethod
    def loss_picture(snap: RunSnapshot, width: int, height: int) -> str:
        """The loss against the x axis: every seed, the aggregate and the fit of the one curve of a run over
        width alone; for a grid, one line per curve (per data size, width or depth) with its fit and a legend."""
        if len(snap.curves) <= 1:
            return loss_plot(snap.analysis, snap.models, width, height)
        lines = []
        for label, analysis in snap.curves:
            shown = [s for s in analysis.widths if s.used and s.value(analysis.aggregate) > 0]
            x = tuple(float(analysis.x_of(s)) for s in shown)
            lines.append(Curve(label, x, tuple(s.value(analysis.aggregate) for s in shown), analysis.fit))
        axis = x_symbol(snap.analysis.options.axis, snap.analysis.x_axis)
        title = f"{snap.analysis.aggregate} test loss vs {axis}, one line per curve (log-log)"
        return curves_vs_n_plot(lines, width, height, title, x_label=axis)

    def x_choices(self) -> list[str]:
        """The x axes the followed run offers: width and N always, data size and depth when it sweeps them."""
        cfg = self.snapshot.config if self.snapshot is not None else None
        extra = []
        if cfg is not None and len(cfg.data_sizes) > 1:
            extra.append("data")
        if cfg is not None and len(cfg.depths) > 1:
            extra.append("depth")
        return ["params", "width", *extra]

    def action_toggle_x(self) -> None:
        """The next x axis: N, width, then data size and depth where the run sweeps them."""
        choices = self.x_choices()
        current = self.fit_options.axis if self.fit_options.axis != "width" else self.fit_options.x_axis
        chosen = choices[(choices.index(current) + 1) % len(choices)] if current in choices else choices[0]
        axis, x_axis = axis_of(chosen)
        self.fit_options = replace(self.fit_options, axis=axis, x_axis=x_axis)
        self.curve = 0
        self.refresh_snapshot()

    def action_next_curve(self) -> None:
        """The next of a grid's curves in the table, the α line and the budget (the loss plot shows them all)."""
        if self.snapshot is None or len(self.snapshot.curves) <= 1:
            return
        self.curve = (self.snapshot.selected + 1) % len(self.snapshot.curves)
        self.refresh_snapshot()

    def selected_cell(self) -> Fixed | None:
        """In a grid: the data size and depth of the curve shown against width (the first when the x axis is
        data size or depth), for the screens that show one cell's widths (tickets, seeds)."""
        snap = self.snapshot
        if snap is None or not snap.config.is_grid:
            return None
        cells = snap.config.cells
        n_train, depth = cells[snap.selected] if self.fit_options.axis == "width" else cells[0]
        return Fixed(n_train=n_train, depth=depth)

    def on_key(self, event: events.Key) -> None:
        """e, F6 and F10 are left out of the footer until a run is followed (check_action), which also leaves
        them unanswered: say why rather than nothing."""
        typing = isinstance(self.focused, Input)
        if self.watcher is None and (event.key in ("f6", "f10") or (event.key == "e" and not typing)):
            self.notify(NO_RUN_YET, severity="warning")

    @staticmethod
    def keys_of(snap: RunSnapshot) -> tuple[bool, bool, bool]:
        """What decides which run keys are shown: another curve to pick, a runner to stop, a run to resume."""
        status = snap.status
        return len(snap.curves) > 1, status.is_live, status.status in RESUMABLE

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """ctrl+n, ctrl+t, ctrl+e and the keys about the followed run (e, F6, F10) are shown, and taken, only
        where they can act: a key that can only say "not now" would take the footer's room from one that can
        (at 80 columns ctrl+e never showed)."""
        if action in ("export", "tickets", "seeds"):  # of the followed run: none yet in a new experiment
            return self.watcher is not None
        keys = self.keys_of(self.snapshot) if self.snapshot is not None else (False, False, False)
        return dict(zip(("next_curve", "stop", "resume"), keys, strict=True)).get(action, True)

    def action_export(self) -> None:
        """Export the followed run with the fit options shown, to a CSV file of a chosen format."""
        from scaletui.tui.exporting import ask_and_export

        if self.watcher is None:
            self.notify(NO_RUN_YET, severity="warning")
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
                if options.axis != self.fit_options.axis:
                    self.curve = 0
                self.fit_options = options
                self.refresh_snapshot()

        self.app.push_screen(FitDialog(self.fit_options, tuple(self.x_choices())), chosen)

    def action_toggle_form(self) -> None:
        self.show_form(not self.query_one("#form-pane").display)

    def show_form(self, shown: bool) -> None:
        """Show the form, or hide it so that nothing typed edits it.

        A new experiment opens with the form at any width, its editor focused: it is what one fills in.
        Below NARROW columns an opened or launched run hides it; ctrl+f, always in the footer, brings it back
        (tab or a click to type in it). Showing it leaves focus where it is: a focused editor takes the
        printable keys, so the footer would drop `e` and be rebuilt, a tenth of a second at 160 columns.
        """
        pane = self.query_one("#form-pane")
        if not shown and self.focused is not None and pane in self.focused.ancestors:
            self.set_focus(None)  # first: the editor's blur restyles it in the frame that hides it
        pane.display = shown  # directly, not a CSS class: a class change re-matches every field's styles

    def focus_next(self, selector: str | type[QueryType] = "*") -> Widget | None:
        """Tab with nothing focused (the form just shown with ctrl+f) goes into the form's editor, where one
        types; Textual would focus the preset selector above it, whose ↓ opens the list and takes the keys
        meant for a field. shift+tab from the first field still reaches the selector."""
        pane = self.query_one("#form-pane")
        if self.focused is None and pane.display and selector == "*":
            editor = self.query_one(ConfigForm).editor
            self.set_focus(editor)
            return editor
        return super().focus_next(selector)

    def action_tab(self, tab: str) -> None:
        """Show a tab's panel; a plot drawn before at its size is repainted, not drawn again."""
        self.tab = tab
        panel = PANEL_WIDGETS.get(tab, "#plot")
        panels = self.query("#plot, #widths, #log")  # none yet while the screen is still being built
        # The panels take turns in one place: the one shown now has the size the next one will get, so that
        # the table's columns are chosen for it before the frame that shows it, not in a second one.
        size = next((widget.size for widget in panels if widget.display), None)
        for widget in panels:
            if widget.display != (f"#{widget.id}" == panel):
                widget.display = not widget.display
            if widget.display and size is not None and isinstance(widget, WidthsTable | EventLog):
                widget.fit(size)
        for bar in self.query(TabBar):
            bar.show(tab)
        self.draw_plots()

    def action_tickets(self) -> None:
        """The lottery-ticket view of the followed run: mirror pairs and ensembles against wide nets."""
        if self.watcher is None:
            self.notify(NO_RUN_YET, severity="warning")
            return
        self.app.push_screen(TicketsScreen(self.watcher.run_dir, self.selected_cell()))

    def action_seeds(self) -> None:
        """The seed distribution of the followed run: quantiles, best of k, tails and the verdict."""
        if self.watcher is None:
            self.notify(NO_RUN_YET, severity="warning")
            return
        self.app.push_screen(SeedsScreen(self.watcher.run_dir, self.selected_cell()))

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
        self.query_one("#form-pane").display = True
        select = self.query_one("#preset", Select)
        select.focus()
        select.action_show_overlay()

    @on(Select.Changed, "#preset")
    def preset_chosen(self, event: Select.Changed) -> None:
        """Load the chosen preset into the form, asking first if that would drop edits no run or preset holds
        (declined, the selector goes back to its prompt and the form keeps its edits)."""
        from scaletui.tui.dialogs import ConfirmDialog

        if not isinstance(event.value, str):  # back to the prompt (Select.NULL): new options, or cleared here
            return
        path = Path(event.value)
        form = self.query_one(ConfigForm)
        form.commit()
        if form.texts == self.form_saved:
            self.load_preset(path)
            return

        def load(replace: bool | None) -> None:
            if replace:
                self.load_preset(path)
            else:
                self.query_one("#preset", Select).clear()
                form.editor.focus()

        question = f"Loading preset {path.stem} replaces the form's edits, which no run or preset holds. Load it?"
        self.app.push_screen(ConfirmDialog(question, "Load"), load)

    def load_preset(self, path: Path) -> None:
        form = self.query_one(ConfigForm)
        try:
            form.load(load_config(path))
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
