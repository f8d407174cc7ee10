"""The runs screen: every run in the runs directory, live from disk; open, start, compare, export, rename, delete.

The directory is the source of truth, so the list is simply re-read about once a second: a thread worker
lists the runs, fits each one with the default options (only when its count of finished models changed) and
posts ``RunsListed`` with plain rows; the UI thread patches the table in place, keeping the cursor on the
same run. Renaming and deleting go through the store on the UI thread; workers only ever read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from scaletui.analysis import FitOptions, analyze_run
from scaletui.config import ConfigError, describe_config, describe_target, widths_label
from scaletui.present import STATUS_STYLE, count, dead_runner, started
from scaletui.report import alpha_cell
from scaletui.store import Run, RunListing, StoreError, delete_run, list_runs, rename_run
from scaletui.tui.compare import CompareScreen
from scaletui.tui.dialogs import ConfirmDialog, PromptDialog
from scaletui.tui.exporting import ask_and_export
from scaletui.tui.textual_patches import KeysFooter, MeasuredDataTable
from scaletui.tui.visible import in_view

REFRESH_SECONDS = 1.0
MARK = "✓"
NAME_WIDTH = 24
# (key, header), most telling first: the table shows, from the left, the columns that fit its width whole and
# never scrolls sideways (at 80 columns the long id, shown in the line under the table, is left out first).
COLUMNS = (
    ("mark", " "),
    ("name", "name"),
    ("status", "status"),
    ("progress", "done"),
    ("alpha", "α vs N"),
    ("widths", "widths"),
    ("seeds", "seeds"),
    ("target", "target"),
    ("act", "act"),
    ("started", "started"),
    ("id", "id"),
)


def label(row: RunRow) -> str:
    """A run as the user knows it: its name, with the id that tells apart runs of one name."""
    return f"{row.name} ({row.id})" if row.name else row.id


@dataclass(frozen=True)
class RunRow:
    """One run as the table shows it, in plain strings, so that it can be built off the UI thread."""

    id: str
    path: Path
    status: str
    detail: str  # the experiment in one line, or why the run failed or cannot be read
    name: str = ""
    target: str = ""
    activation: str = ""
    widths: str = ""
    seeds: str = ""
    alpha: str = "–"
    started: str = "–"
    progress: str = ""  # a live run's share of its work done, "42%"; blank once it is not live

    @property
    def damaged(self) -> bool:
        return self.status == "damaged"


class RunLister:
    """Reads the runs directory into rows. Fitting is the slow part, so α is kept per (run, finished models)."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.alphas: dict[tuple[str, int], str] = {}

    def rows(self) -> list[RunRow]:
        listings = list_runs(self.runs_dir)
        current = {(item.id, item.finished_models) for item in listings}
        self.alphas = {key: alpha for key, alpha in self.alphas.items() if key in current}
        return [self._row(item) for item in listings]

    def _row(self, item: RunListing) -> RunRow:
        if item.run is None or item.status is None:
            return RunRow(item.id, item.path, "damaged", item.error or "unreadable")
        cfg, st = item.run.config, item.status
        if st.error:
            detail = f"{st.status}: {st.error}"
        elif st.status == "dead":
            detail = f"dead: {dead_runner(item.id)}"
        else:
            detail = describe_config(cfg)
        return RunRow(
            id=item.id,
            path=item.path,
            status=st.status,
            detail=detail,
            name=cfg.name,
            target=describe_target(cfg.target),
            activation=cfg.model.activation,
            widths=widths_label(cfg.model.widths),
            seeds=str(cfg.seeds.count),
            alpha=self._alpha(item, item.run),
            started=started(st.started),
            progress=f"{item.run.progress_fraction()[0]:.0%}" if st.is_live else "",
        )

    def _alpha(self, item: RunListing, run: Run) -> str:
        key = (item.id, item.finished_models)
        if key not in self.alphas:
            try:
                analysis = analyze_run(run, with_outputs=False)  # the default options, as `scaletui fit` uses
            except StoreError:  # deleted or rewritten while we read it; the next pass tries again
                return "–"
            self.alphas[key] = alpha_cell(analysis)
        return self.alphas[key]


class FilterInput(Input):
    """The filter's text field: enter keeps the filter, esc clears it, and `?` opens the help rather than being
    typed, as in the form's editor (:class:`scaletui.tui.form.FieldEditor`); the footer shows all three."""

    BINDINGS = [
        Binding("enter", "submit", "Keep filter"),
        Binding("escape", "screen.clear_filter", "Clear filter"),
    ]

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character != "?" and super().check_consume_key(key, character)

    def _on_key(self, event: events.Key) -> None:
        if event.character == "?":  # Input's own handler, called after this one, would type it
            event.prevent_default()


class RunsListed(Message, bubble=False):
    """The worker read the runs directory; ``problem`` says why it could not, if it could not."""

    def __init__(self, rows: list[RunRow], problem: str | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.problem = problem


class RunsScreen(Screen[None]):
    """All runs in the runs directory, refreshed from disk; the home screen of the app."""

    BINDINGS = [
        # A priority binding, or the table would take enter for its own "select" and the footer hide it.
        Binding("enter", "open", "Open", priority=True),
        Binding("n", "new", "New"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export"),
        Binding("d", "delete", "Delete"),
        Binding("r", "rename", "Rename"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("S", "sort_reverse", "Reverse sort", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    DEFAULT_CSS = """
    RunsScreen #runs {
        height: 1fr;
    }
    RunsScreen HeaderClockSpace {
        display: none;  /* no clock here: the title takes the room */
    }
    RunsScreen #filter {
        display: none;
        border: none;
        height: 1;
        padding: 0 1;
    }
    RunsScreen #filter.-shown {
        display: block;
    }
    RunsScreen #detail {
        height: auto;
        max-height: 3;
        padding: 0 1;
        border-top: solid $primary;
        color: $text-muted;
    }
    """

    class RunChosen(Message):
        """The user asked to open a run (the app shows it in the explorer)."""

        def __init__(self, run_dir: Path) -> None:
            super().__init__()
            self.run_dir = run_dir

    class NewExperimentRequested(Message):
        """The user asked to set up a new experiment."""

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.lister = RunLister(runs_dir)
        self.rows: dict[str, RunRow] = {}  # the runs shown: those the filter keeps
        self.all_rows: dict[str, RunRow] = {}  # every run read, those the filter hides too
        self.marked: set[str] = set()  # marks outlive the filter: c, e and d act on hidden marked runs too
        self.problem: str | None = None
        self.refresher: Worker[None] | None = None
        self.listed: list[RunRow] = []  # every run read, before filtering and sorting
        self.listed_order: dict[str, int] = {}
        self.sort_key = "started"  # a column key; the oldest first, as `scaletui ls` lists them
        self.sort_reverse = False
        self.filter_text = ""
        self.heads: tuple[tuple[str, str], ...] = ()  # (key, header) of the columns shown, the sorted one's arrowed

    def compose(self) -> ComposeResult:
        yield Header()
        yield MeasuredDataTable(cursor_type="row", id="runs")  # its columns: the ones that fit (_fitted_heads)
        yield FilterInput(
            placeholder="filter: type to keep the runs whose row holds it; enter keeps, esc clears", id="filter"
        )
        yield Static(id="detail")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self.tick)

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def tick(self) -> None:
        """Re-read only while visible, and never pile reads up behind a slow one."""
        if in_view(self) and (self.refresher is None or self.refresher.is_finished):
            self.refresh_runs()

    def refresh_runs(self) -> None:
        """Read the directory now, replacing a read in flight (which may predate a rename or delete)."""
        self.refresher = self._read_runs()

    @work(thread=True, exclusive=True, group="runs-refresh", exit_on_error=False)
    def _read_runs(self) -> None:
        try:
            rows, problem = self.lister.rows(), None
        except OSError as exc:
            rows, problem = [], f"cannot read {self.runs_dir}: {exc.strerror or exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(RunsListed(rows, problem))

    @on(RunsListed)
    def show_runs(self, message: RunsListed) -> None:
        self.listed = message.rows
        self.problem = message.problem
        self._show_rows()

    def _show_rows(self) -> None:
        """The runs read, filtered and sorted as asked, into the table (marks on runs gone from disk are dropped;
        on runs the filter hides, they stay)."""
        self.listed_order = {row.id: i for i, row in enumerate(self.listed)}
        self.all_rows = {row.id: row for row in self.listed}
        rows = [row for row in self.listed if self._matches(row)]
        rows.sort(key=self._sort_value, reverse=self.sort_reverse)
        self.rows = {row.id: row for row in rows}
        self.marked.intersection_update(self.all_rows)
        self._patch_table(rows)
        self._show_detail()
        self._show_title()

    def _show_title(self) -> None:
        """What is shown of how many runs, the marks, the order, the directory: the part that matters first, so
        that at 80 columns the header cuts the directory, never the counts or the filter."""
        wanted = self.filter_text.strip()
        parts = [
            f"{len(self.rows)} of {len(self.listed)} match {wanted!r}" if wanted else count(len(self.listed), "run")
        ]
        if self.marked:
            parts.append(self.marks_line(short=True))
        parts += [f"sorted by {dict(COLUMNS)[self.sort_key]} {'▼' if self.sort_reverse else '▲'}", str(self.runs_dir)]
        sub_title = " · ".join(parts)
        if self.sub_title != sub_title:
            self.sub_title = sub_title

    def hidden_marks(self) -> set[str]:
        """The marked runs the filter hides."""
        return self.marked - self.rows.keys()

    def marks_line(self, short: bool = False) -> str:
        """How many runs c, e and d act on, and how many are out of view: "3 marked (1 hidden by the filter)";
        short, for the title, beside the filter: "3 marked (1 hidden)"."""
        hidden = len(self.hidden_marks())
        where = "" if short else " by the filter"
        return f"{len(self.marked)} marked" + (f" ({hidden} hidden{where})" if hidden else "")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While the filter is typed in, enter keeps the filter rather than opening a run, and `/` is typed.
        if action in ("open", "filter") and isinstance(self.focused, Input):
            return False
        return action != "clear_filter" or self.query_one("#filter", Input).has_class("-shown")

    def _matches(self, row: RunRow) -> bool:
        wanted = self.filter_text.strip().lower()
        return not wanted or any(wanted in str(cell).lower() for cell in self._cells(row)[1:])

    def _sort_value(self, row: RunRow) -> tuple[object, ...]:
        """The value a column sorts by: numbers as numbers (α, done, seeds), the start time as a time."""
        if self.sort_key == "started":  # as `scaletui ls` lists them: oldest first, a run not started yet by its id
            return (self.listed_order[row.id],)
        text = str(self._cells(row)[[key for key, _ in COLUMNS].index(self.sort_key)])
        number = text.rstrip("%").split(" ")[0]
        try:
            return (0, float(number), row.id)
        except ValueError:
            return (1, text.lower(), row.id)  # no number: after the numbers, alphabetically

    def on_resize(self) -> None:
        self._show_rows()  # another width fits other columns

    def action_sort(self) -> None:
        """Sort by the next column shown (left to right), ascending: never by one the width leaves out."""
        keys = [key for key, _ in COLUMNS if key != "mark"]
        shown = {key for key, _ in self.heads}
        after = keys[keys.index(self.sort_key) + 1 :] + keys[: keys.index(self.sort_key) + 1]
        self.sort_key = next((key for key in after if key in shown), after[0])
        self.sort_reverse = False
        self._show_rows()

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._show_rows()

    @on(DataTable.HeaderSelected)
    def header_clicked(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's name sorts by it; a second click reverses the order."""
        key = str(event.column_key.value)
        if key == "mark":
            return
        self.sort_reverse = not self.sort_reverse if key == self.sort_key else False
        self.sort_key = key
        self._show_rows()

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("-shown")
        field.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._show_rows()

    @on(Input.Submitted, "#filter")
    def filter_kept(self) -> None:
        field = self.query_one("#filter", Input)
        if not field.value:
            field.remove_class("-shown")
        self.query_one("#runs", DataTable).focus()

    def action_clear_filter(self) -> None:
        """Esc, in the filter or in the table under a kept one, clears it and gives the keys back to the table."""
        field = self.query_one("#filter", Input)
        field.value = ""
        field.remove_class("-shown")
        self.query_one("#runs", DataTable).focus()

    def _cells(self, row: RunRow) -> tuple[str | Text, ...]:
        return (
            MARK if row.id in self.marked else "",
            Text(row.name if len(row.name) <= NAME_WIDTH else row.name[: NAME_WIDTH - 1] + "…"),  # data, not markup
            Text(row.status, style=STATUS_STYLE.get(row.status, "")),
            Text(row.progress, justify="right"),
            Text(row.alpha, justify="right"),
            row.widths,
            Text(row.seeds, justify="right"),
            Text(row.target),
            row.activation,
            row.started,
            Text(row.id),
        )

    def _patch_table(self, rows: list[RunRow]) -> None:
        """Change only what changed; rebuild only when runs appeared out of order. The cursor follows its run."""
        table = self.query_one("#runs", DataTable)
        old_index = table.cursor_row
        cursor_id = self._highlighted_id()
        wanted = [row.id for row in rows]
        heads = self._fitted_heads(rows)
        if heads != self.heads:  # another width, or another column sorted by: the columns anew, then every row
            self.heads = heads
            table.clear(columns=True)
            for key, head in heads:
                table.add_column(head, key=key)
        shown = [key for key, _ in heads]
        index = [key for key, _ in COLUMNS]
        for gone in set(self._table_order()) - self.rows.keys():
            table.remove_row(gone)
        kept = [run_id for run_id in self._table_order() if run_id in self.rows]
        if kept != wanted[: len(kept)]:
            table.clear()
            kept = []
        for row in rows:
            cells = self._cells(row)
            if row.id not in kept:
                table.add_row(*(cells[index.index(column)] for column in shown), key=row.id)
                continue
            for column in shown:
                value = cells[index.index(column)]
                if table.get_cell(row.id, column) != value:
                    table.update_cell(row.id, column, value, update_width=True)
        if wanted:
            target = wanted.index(cursor_id) if cursor_id in self.rows else min(max(old_index, 0), len(wanted) - 1)
            if target != table.cursor_row:
                table.move_cursor(row=target)

    def _fitted_heads(self, rows: list[RunRow]) -> tuple[tuple[str, str], ...]:
        """The columns, from the left, that fit the table's width whole (the mark and the name always), each
        with its header, the sorted one's with ▲ or ▼: the header shows what `s` did."""
        table = self.query_one("#runs", DataTable)
        room = table.size.width or self.app.size.width  # before the first layout, the screen's width
        if table.size.height and len(rows) >= table.size.height:  # a row per line below the header
            room -= table.styles.scrollbar_size_vertical
        cells = [self._cells(row) for row in rows]
        heads: list[tuple[str, str]] = []
        for i, (key, label) in enumerate(COLUMNS):
            head = f"{label} {'▼' if self.sort_reverse else '▲'}" if key == self.sort_key else label
            width = max([cell_len(head), *(cell_len(str(row[i])) for row in cells)]) + 2 * table.cell_padding
            if len(heads) >= 2 and width > room:
                break
            heads.append((key, head))
            room -= width
        return tuple(heads)

    def _table_order(self) -> list[str]:
        return [str(row.key.value) for row in self.query_one("#runs", DataTable).ordered_rows]

    def _highlighted_id(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        order = self._table_order()
        return order[table.cursor_row] if 0 <= table.cursor_row < len(order) else None

    def _highlighted(self) -> RunRow | None:
        run_id = self._highlighted_id()
        return self.rows.get(run_id) if run_id is not None else None

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        row = self._highlighted()
        detail = self.query_one("#detail", Static)
        if self.problem:
            detail.update(Text(self.problem, style="bold red"))
        elif row is None and self.listed:
            wanted = self.filter_text.strip()
            detail.update(Text(f"No run matches {wanted!r} (esc clears the filter)."))
        elif row is None:
            detail.update(Text(f"No runs in {self.runs_dir} yet: press n to set up an experiment."))
        elif row.damaged:
            detail.update(Text.assemble((row.id, "bold"), f" is damaged: {row.detail}", style="magenta"))
        else:
            style = "red" if row.status in ("failed", "dead") else ""
            detail.update(Text.assemble((row.id, "bold"), "  ", (row.detail, style)))

    def _openable(self) -> RunRow | None:
        """The highlighted run, unless it is damaged (which only delete can act on)."""
        row = self._highlighted()
        if row is not None and row.damaged:
            self.notify(f"{row.id} is damaged: {row.detail}", severity="error", markup=False)
            return None
        return row

    def _readable(self, ids: set[str]) -> list[RunRow]:
        """The runs with these ids in list order, leaving damaged ones out (and saying so)."""
        chosen = [row for row in self.all_rows.values() if row.id in ids]  # in list order, hidden ones too
        damaged = [row.id for row in chosen if row.damaged]
        if damaged:
            self.notify(f"leaving out damaged runs: {', '.join(damaged)}", severity="warning", markup=False)
        return [row for row in chosen if not row.damaged]

    @on(DataTable.RowSelected)
    def action_open(self) -> None:
        row = self._openable()
        if row is not None:
            self.post_message(self.RunChosen(row.path))

    def action_new(self) -> None:
        self.post_message(self.NewExperimentRequested())

    def action_mark(self) -> None:
        run_id = self._highlighted_id()
        if run_id is None:
            return
        self.marked ^= {run_id}
        table = self.query_one("#runs", DataTable)
        table.update_cell(run_id, "mark", MARK if run_id in self.marked else "")
        self._show_title()
        table.action_cursor_down()

    def action_compare(self) -> None:
        """Compare the marked runs; with fewer than two marked, the highlighted run joins them."""
        run_id = self._highlighted_id()
        ids = set(self.marked) if len(self.marked) >= 2 or run_id is None else self.marked | {run_id}
        rows = self._readable(ids)
        if rows:
            if ids & self.hidden_marks():
                self.notify(f"comparing {self.marks_line()}", markup=False)
            self.app.push_screen(CompareScreen([row.path for row in rows]))

    def action_export(self) -> None:
        """Export the marked runs, or the highlighted one, to one CSV file of a chosen format."""
        run_id = self._highlighted_id()
        rows = self._readable(set(self.marked) or ({run_id} if run_id else set()))
        if not rows:
            return
        stem = rows[0].id if len(rows) == 1 else f"{len(rows)}-runs"
        label = f"run {rows[0].name or rows[0].id}" if len(rows) == 1 else count(len(rows), "run")
        hidden = len(self.hidden_marks() & {row.id for row in rows})
        label += f" ({hidden} hidden by the filter)" if hidden else ""
        ask_and_export(self, [row.path for row in rows], label, stem, FitOptions())

    def action_rename(self) -> None:
        row = self._openable()
        if row is None:
            return

        def rename(name: str | None) -> None:
            if name is None or name == row.name:
                return
            try:
                rename_run(row.path, name)
            except (StoreError, ConfigError, OSError) as exc:
                self.notify(f"cannot rename {row.id}: {exc}", severity="error", markup=False)
                return
            self.refresh_runs()

        self.app.push_screen(PromptDialog(f"New name for run {row.id}:", row.name, "Rename"), rename)

    def action_delete(self) -> None:
        """Delete the marked runs, or the highlighted one, as compare and export choose them.

        A live run is refused before anything is asked: a question whose yes is then refused wastes the answer.
        """
        run_id = self._highlighted_id()
        ids = set(self.marked) or ({run_id} if run_id else set())
        rows = [row for row in self.all_rows.values() if row.id in ids]
        if not rows:
            return
        hidden = len(self.hidden_marks() & ids)
        live = [row for row in rows if row.status in ("running", "not responding")]  # the store refuses the rest
        if live:
            names = ", ".join(label(row) for row in live)
            self.notify(f"cannot delete {names}: still running; stop it first", severity="error", markup=False)
            return

        def delete(confirmed: bool | None) -> None:
            if not confirmed:
                return
            for row in rows:
                try:
                    delete_run(row.path)
                except (StoreError, OSError) as exc:
                    self.notify(str(exc), severity="error", markup=False)
                    continue
                self.marked.discard(row.id)
                self.notify(f"deleted {label(row)}", markup=False)
            self.refresh_runs()

        if len(rows) == 1:
            question = f"Delete run {label(rows[0])}? This removes its directory."
        else:
            names = ", ".join(label(row) for row in rows)
            question = f"Delete {count(len(rows), 'run')}: {names}? This removes their directories."
        if hidden:
            question += f" {hidden} of them {'is' if hidden == 1 else 'are'} marked but hidden by the filter."
        self.app.push_screen(ConfirmDialog(question, "Delete"), delete)

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(f"{event.worker.group} failed: {event.worker.error}", severity="error", markup=False)
