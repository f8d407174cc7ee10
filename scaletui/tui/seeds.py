"""The seed distribution of a run: "mediocristan or extremistan", the same analysis as ``scaletui seeds``.

A thread worker reads the run and analyses it (the bootstrap of hundreds of seeds takes a moment); the
strip plot is drawn on the UI thread because plotext keeps global state, by the plot (tui/plot.py) for its
own size, once per analysis read. While the run is live the screen
reads it again every few seconds, so new widths appear as they finish.
"""

from __future__ import annotations

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

from scaletui.analysis import FitOptions
from scaletui.grid import Fixed, curve_of
from scaletui.plots import seeds_plot
from scaletui.report import seeds_lines, seeds_table
from scaletui.seeds import UNITS, SeedsAnalysis, analyze_seeds
from scaletui.store import Run, StoreError
from scaletui.tui.plot import Plot, ansi
from scaletui.tui.textual_patches import KeysFooter

LIVE_REFRESH_SECONDS = 3.0
LIVE_RESAMPLES = 500  # as the explorer's live α: a cheaper bootstrap while models keep arriving


class SeedsRead(Message, bubble=False):
    """The worker analysed the run's seeds (or says why it could not)."""

    def __init__(self, analysis: SeedsAnalysis | None, live: bool, error: str | None) -> None:
        super().__init__()
        self.analysis = analysis
        self.live = live
        self.error = error


def read_seeds(run_dir: Path, units: str, cell: Fixed | None = None) -> SeedsRead:
    """The analysis the screen shows (of one data size and depth of a grid: ``cell``, the first by default);
    never raises for a run that cannot be read."""
    try:
        run = Run(run_dir)
        live = run.status().is_live
        options = FitOptions(resamples=LIVE_RESAMPLES) if live else FitOptions()
        analysis = analyze_seeds(curve_of(run, cell), options, units)
    except (StoreError, ValueError) as exc:
        return SeedsRead(None, False, str(exc))
    if not analysis.widths:
        return SeedsRead(None, live, "no finished models yet")
    return SeedsRead(analysis, live, None)


class SeedsScreen(Screen[None]):
    """Per width: every seed's loss, the quantile bands, best of k, the tails, and the verdict."""

    BINDINGS = [
        Binding("u", "units", "Units"),
        Binding("escape", "back", "Back"),
    ]

    DEFAULT_CSS = """
    SeedsScreen #strips { height: 1fr; min-height: 11; }
    SeedsScreen #numbers { height: auto; max-height: 45%; padding: 0 1; }
    """

    def __init__(self, run_dir: Path, cell: Fixed | None = None) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.cell = cell  # in a grid: the data size and depth whose widths are shown
        self.units = UNITS[0]
        self.analysis: SeedsAnalysis | None = None
        self.reads = 0  # analyses shown: each is new data for the strips

    def compose(self) -> ComposeResult:
        yield Header()
        yield Plot(id="strips")
        with VerticalScroll(id="numbers"):
            yield Static("reading the run's seeds…", id="table")
        yield KeysFooter()

    def on_mount(self) -> None:
        where = f" · {self.cell.label(Run(self.run_dir).config)}" if self.cell is not None else ""
        self.sub_title = f"seeds · {self.run_dir.name}{where}"
        self.load_seeds()

    @work(thread=True, exclusive=True, group="seeds", exit_on_error=False)
    def load_seeds(self) -> None:
        self.post_message(read_seeds(self.run_dir, self.units, self.cell))

    @on(SeedsRead)
    def display_seeds(self, message: SeedsRead) -> None:
        if message.live:  # one read at a time: the next is asked for when this one is shown
            self.set_timer(LIVE_REFRESH_SECONDS, self.load_seeds)
        if message.analysis is None:
            self.query_one("#table", Static).update(Text(message.error or "", style="yellow"))
            return
        analysis = self.analysis = message.analysis
        self.reads += 1
        live = [Text("live: 500 resamples until the run ends", style="dim")] if message.live else []
        compact = self.size.width < 110
        self.query_one("#table", Static).update(
            Group(seeds_table(message.analysis, compact), Text(), *seeds_lines(message.analysis), *live)
        )
        strips = self.query_one("#strips", Plot)
        strips.show(self.reads, ansi(lambda width, height: seeds_plot(analysis, width, height, color=True)))

    def action_units(self) -> None:
        """log10 loss → loss → rank within the width → log10 loss."""
        self.units = UNITS[(UNITS.index(self.units) + 1) % len(UNITS)]
        self.notify(f"units: {self.units}")
        self.load_seeds()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(f"reading seeds failed: {event.worker.error}", severity="error", markup=False)

    def action_back(self) -> None:
        self.app.pop_screen()
