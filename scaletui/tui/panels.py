"""The explorer's live panels: the tab bar, the lines above it, the per-width table and the event log.

Each is made to show a new size in the frame that first shows it, with no second layout after it: on a
terminal where every frame is a wait of up to 1/60 s, a key that needs two layouts is twice as slow. Two
ways: the tab bar and the text lines are measured by the layout itself (``get_content_height``), and the
table and the log, which take turns in one place with the plot, are fitted (``fit``) to the size of the
panel shown now before they are shown in its place.
"""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import Vertical
from textual.content import Content
from textual.geometry import Size
from textual.widgets import Static

from scaletui.analysis import BudgetAnalysis, RunAnalysis
from scaletui.plots import alpha_step_plot, budget_loss_plot
from scaletui.report import budget_lines, local_lines, local_table, width_cells
from scaletui.tui.textual_patches import ResizedWithoutLayout, SteadyDataTable, SteadyRichLog

# tab -> (label, key); F6 opens the tickets screen.
TABS = {"loss": ("Loss", "F1"), "variance": ("Variance", "F2"), "curves": ("Curves", "F3"), "table": ("Table", "F4"),
        "events": ("Events", "F5"), "budget": ("Budget", "F7"), "slopes": ("Slopes", "F8")}  # fmt: skip
EXPLORER_COLUMNS = ("width", "N", "seeds", "{aggregate}", "IQR", "V", "V main", "bias²", "outside", "main med",
                    "div", "falling")  # fmt: skip
# Where the table is narrower than all of them, the columns kept whole, most wanted first (`show` prints all).
KEPT_FIRST = ("width", "N", "{aggregate}", "seeds", "falling", "IQR", "div", "V", "bias²", "outside", "V main",
              "main med")  # fmt: skip


class TabBar(ResizedWithoutLayout, Static):
    """The panels and their keys, the one shown highlighted; clicking a name shows that panel.

    The names fill as many lines as the bar's width needs, never one cut at the edge. The lines are worked
    out for the width the layout gives (``get_content_height``), so a new width is drawn right in the same
    frame, with no resize handler and no second layout after it.
    """

    DEFAULT_CSS = "TabBar { height: auto; padding: 0 1; background: $boost; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.active = "loss"
        self._bars: dict[tuple[str, int], Content] = {}  # parsing markup costs a millisecond: once per width

    def show(self, active: str) -> None:
        """Highlight a tab (a repaint: the lines do not depend on which one)."""
        if active != self.active:
            self.active = active
            self.refresh()

    def bar(self, width: int) -> Content:
        """The names in lines of at most ``width`` cells."""
        bar = self._bars.get((self.active, width))
        if bar is None:
            lines: list[list[str]] = [[]]
            used = 0
            for tab, (label, key) in TABS.items():
                style = "reverse bold" if tab == self.active else "dim"
                cells = len(label) + len(key) + 3
                if lines[-1] and used + cells > width:
                    lines.append([])
                    used = 0
                lines[-1].append(f"[{style}][@click=screen.tab('{tab}')] {label} {key} [/][/]")
                used += cells
            bar = self._bars[self.active, width] = Content.from_markup("\n".join("".join(line) for line in lines))
        return bar

    def render(self) -> Content:
        return self.bar(self.content_size.width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.bar(width).plain.splitlines())


class Line(ResizedWithoutLayout, Static):
    """A line of text above the panels (α, progress, the system pane): its height is worked out by the layout
    that gives it a new width, so that new width needs no second layout."""


class LivePane(ResizedWithoutLayout, Vertical):
    """The live panels' column: showing or hiding the form resizes it in one layout, not two."""


class WidthsTable(SteadyDataTable):
    """The per-width table (F4) with the columns that fit its width whole, kept in :data:`KEPT_FIRST`'s order."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.analysis: RunAnalysis | None = None
        self.version = 0  # of the analysis shown
        self.filled: tuple[int, tuple[str, ...]] | None = None  # (version, columns) the rows are of

    def show(self, analysis: RunAnalysis, version: int) -> None:
        self.analysis, self.version = analysis, version
        self.fit(self.size)

    def on_resize(self) -> None:
        self.fit(self.size)

    def fit(self, size: Size) -> None:
        """Fill the rows again if the analysis is new or another set of columns fits ``size`` (the table's
        own, or the one it is about to be shown at; before its first layout, every column fits)."""
        if self.analysis is None:
            return
        rows = width_cells(self.analysis)
        named = {c: c.format(aggregate=self.analysis.aggregate) for c in EXPLORER_COLUMNS}
        cells = {c: max([len(named[c]), *(len(row[named[c]]) for row in rows)]) + 2 * self.cell_padding for c in named}
        scrollbar = self.styles.scrollbar_size_vertical if len(rows) >= size.height else 0
        room = size.width - scrollbar if size.width else sum(cells.values())
        kept: list[str] = []
        for column in KEPT_FIRST:
            if kept and sum(cells[c] for c in kept) + cells[column] > room:
                break
            kept.append(column)
        columns = tuple(named[c] for c in EXPLORER_COLUMNS if c in kept)
        if (self.version, columns) == self.filled:
            return
        self.filled = (self.version, columns)
        self.clear(columns=True)
        self.add_columns(*columns)
        self.add_rows([row[c] for c in columns] for row in rows)


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


class EventLog(SteadyRichLog):
    """The run's events (F5), wrapped to the width the log is shown at, never scrolled sideways.

    A RichLog wraps a line once, when it is written: shown later at another width (the form shown or
    hidden in between) its lines would be cut, with a sideways scrollbar and a layout of its own. This one
    keeps the texts and writes them again for a new width; room for the vertical scrollbar is always kept,
    so that its coming does not change the wrapping.
    """

    DEFAULT_CSS = "EventLog { overflow-x: hidden; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=True)
        self.texts: list[Text] = []
        self.wrapped_for = 0  # the width the lines are written at; 0: none yet
        self.unwritten = 0  # the last texts, added while the log was hidden, not yet written

    def add(self, text: Text) -> None:
        """Keep a line; write it now only if the log is shown. A write grows the log's virtual size, which lays
        the screen out again: events arriving every second while another panel is shown made every key that
        followed cost a second layout (measured: 40–47 ms a key at 160×48 instead of 9–16)."""
        self.texts.append(text)
        if self.wrapped_for and self.display:
            self.write(text, width=self.wrapped_for)
        else:
            self.unwritten += 1

    def reset(self) -> None:
        """Forget every line (another run is followed)."""
        self.texts.clear()
        self.unwritten = 0
        self.clear()

    def on_resize(self) -> None:
        self.fit(self.size)

    def fit(self, size: Size) -> None:
        """Write the lines again if ``size`` (the log's, or the one it is about to be shown at) wraps them
        at another width."""
        width = max(1, size.width - self.styles.scrollbar_size_vertical)
        if not size.width:
            return
        if width == self.wrapped_for:  # the lines kept while hidden, written in the layout that shows them
            if self.unwritten:
                for text in self.texts[-self.unwritten :]:
                    self.write(text, width=width, scroll_end=False)
                self.unwritten = 0
                self.scroll_end(animate=False, immediate=True, x_axis=False)
            return
        self.wrapped_for = width
        self.unwritten = 0
        self.write_before_shown()  # the width is known: written in the layout that shows the log, not after
        self.clear()
        for text in self.texts:
            self.write(text, width=width, scroll_end=False)
        self.scroll_end(animate=False, immediate=True, x_axis=False)
