"""The lottery-ticket view of a run: one model's neurons and mirror pairs, and ensembles against wide nets.

The same report as ``scaletui inspect``: a thread worker reads the weights and computes pairs and the
ensemble comparison; plotext keeps global state, so the scatter is drawn on the UI thread, by the plot
(tui/plot.py) for its own size, once per model shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState

from scaletui.grid import Fixed, curve_of
from scaletui.lottery import EnsembleComparison, TicketReport, inspect_run, run_ensemble_comparison
from scaletui.plots import ticket_plot
from scaletui.present import ONE_LAYER_ONLY
from scaletui.report import ensemble_table, pair_table, ticket_summary
from scaletui.store import Run, StoreError
from scaletui.tui.plot import Plot, ansi
from scaletui.tui.textual_patches import KeysFooter
from scaletui.tui.visible import in_view

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class TicketView:
    """What the worker read: the chosen model's report (or why there is none) and the run's comparison."""

    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    report: TicketReport | None
    note: str | None
    comparison: list[EnsembleComparison]
    key: tuple[int, str] = (0, "")  # (finished models, status) when read: a new one means read again


class TicketsRead(Message, bubble=False):
    """The worker read one model's tickets."""

    def __init__(self, view: TicketView) -> None:
        super().__init__()
        self.view = view


def run_key(run: Run) -> tuple[int, str]:
    """What decides whether a new read would show anything new: the finished models and the status."""
    return len(run.models()), run.status().status


def read_tickets(run_dir: Path, width: int | None, seed: int | None, cell: Fixed | None = None) -> TicketView:
    """Everything the screen shows for one model (of one data size and depth of a grid: ``cell``, the first
    by default); never raises for a run that cannot be read."""
    try:
        stored = Run(run_dir)
        key = run_key(stored)
        run = curve_of(stored, cell)
        models = run.models()
        widths = tuple(sorted(set(models.width.tolist())))
        if not widths:
            return TicketView((), (), None, "no finished models yet", [], key)
        width = width if width in widths else widths[-1]
        seeds = tuple(sorted(models.seed[models.width == width].tolist()))
        seed = seed if seed in seeds else seeds[0]
        comparison = run_ensemble_comparison(run)
        if max(run.config.depths) > 1:
            note = ONE_LAYER_ONLY
            return TicketView(widths, seeds, None, note, comparison, key)
        return TicketView(widths, seeds, inspect_run(run, width, seed), None, comparison, key)
    except (StoreError, ValueError) as exc:
        return TicketView((), (), None, str(exc), [])


class TicketsScreen(Screen[None]):
    """Browse a run's models by width and seed, with their mirror pairs."""

    BINDINGS = [
        Binding("right", "width(1)", "Wider"),
        Binding("left", "width(-1)", "Narrower"),
        Binding("down", "seed(1)", "Next seed"),
        Binding("up", "seed(-1)", "Prev seed"),
        Binding("escape", "back", "Back"),
        Binding("pagedown", "scroll_tables(1)", "Tables down", show=False),
        Binding("pageup", "scroll_tables(-1)", "Tables up", show=False),
    ]

    DEFAULT_CSS = """
    TicketsScreen #summary { height: auto; padding: 0 1; }
    TicketsScreen #scatter { height: 1fr; min-height: 9; }
    TicketsScreen #tables { height: auto; max-height: 40%; padding: 0 1; }
    """

    def __init__(self, run_dir: Path, cell: Fixed | None = None) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.cell = cell  # in a grid: the data size and depth whose models are shown
        self.view: TicketView | None = None
        self.model_width: int | None = None
        self.model_seed: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the run's weights…", id="summary")
        yield Plot(id="scatter")
        # Not focusable: a focused scroll view takes the arrows, which here change the model (and the footer,
        # reading the focused widget's keys first, hid them); page up/down scroll the tables instead.
        with VerticalScroll(id="tables", can_focus=False):
            yield Static(id="pairs")
        yield KeysFooter()

    def on_mount(self) -> None:
        where = f" · {self.cell.label(Run(self.run_dir).config)}" if self.cell is not None else ""
        self.sub_title = f"lottery tickets · {self.run_dir.name}{where}"
        self.load_tickets()
        self.set_interval(REFRESH_SECONDS, self.tick)

    def tick(self) -> None:
        """A live run finishes models while the screen is open: read again when it has (a cheap check first)."""
        if in_view(self) and self.view is not None:
            self.load_tickets(only_if_changed=True)

    @work(thread=True, exclusive=True, group="tickets", exit_on_error=False)
    def load_tickets(self, only_if_changed: bool = False) -> None:
        if only_if_changed and self.view is not None:
            try:
                if run_key(Run(self.run_dir)) == self.view.key:
                    return
            except StoreError:
                pass  # read_tickets says what is wrong
        self.post_message(TicketsRead(read_tickets(self.run_dir, self.model_width, self.model_seed, self.cell)))

    @on(TicketsRead)
    def display_tickets(self, message: TicketsRead) -> None:
        view = self.view = message.view
        report = view.report
        if report is not None:
            self.model_width, self.model_seed = report.width, report.seed
        summary = ticket_summary(report) if report is not None else Text(view.note or "", style="yellow")
        self.query_one("#summary", Static).update(summary)
        scatter = self.query_one("#scatter", Plot)
        if report is None:
            scatter.show(None, lambda width, height: Text())
        else:  # a finished model's weights never change: the model names the picture
            scatter.show((report.width, report.seed), ansi(lambda w, h: ticket_plot(report, w, h, color=True)))
        parts: list[object] = []
        if report is not None and report.pairs:
            parts.append(pair_table(report, limit=None))
        parts.append(Text("\nIs a wide net an ensemble of narrow ones? (median test MSE)", style="bold"))
        if view.comparison:
            parts.append(ensemble_table(view.comparison))
        else:
            parts.append(Text("no pair of widths w and k·w with enough finished seeds", style="dim"))
        self.query_one("#pairs", Static).update(Group(*parts))

    def _step(self, values: tuple[int, ...], current: int | None, delta: int) -> int | None:
        if not values or current not in values:
            return current
        return values[max(0, min(len(values) - 1, values.index(current) + delta))]

    def action_width(self, delta: int) -> None:
        if self.view is not None:
            self.model_width = self._step(self.view.widths, self.model_width, delta)
            self.load_tickets()

    def action_seed(self, delta: int) -> None:
        if self.view is not None:
            self.model_seed = self._step(self.view.seeds, self.model_seed, delta)
            self.load_tickets()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(f"reading tickets failed: {event.worker.error}", severity="error", markup=False)

    def action_scroll_tables(self, pages: int) -> None:
        tables = self.query_one("#tables", VerticalScroll)
        tables.scroll_to(y=tables.scroll_y + pages * max(tables.size.height - 1, 1), animate=False)

    def action_back(self) -> None:
        self.app.pop_screen()
