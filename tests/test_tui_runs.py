"""The runs screen and its dialogs, driven through Textual's pilot over runs trained by the real engine."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from scaletui.analysis import FitOptions, PowerLawFit, analyze_run
from scaletui.export import export_csv
from scaletui.report import alpha_cell
from scaletui.runner import create_run, execute
from scaletui.store import Run, RunWriter
from scaletui.tui.compare import CompareScreen, compare_plot, read_fits
from scaletui.tui.dialogs import ChoiceDialog, ConfirmDialog, HelpScreen, PromptDialog
from scaletui.tui.plot import Plot
from scaletui.tui.runs import RunsScreen
from tests.conftest import run_cli, smoke_config, until
from tests.synthetic_runs import grid_run, lottery_run

# Small enough to train in a fraction of a second, long enough that every width converges and fits.
FAST = ("training.steps=100", "seeds.count=2", "training.eval_every=10")


class RunsApp(App[None]):
    """Just the runs screen, recording what it asks of the app and what it tells the user."""

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_screen = RunsScreen(runs_dir)
        self.chosen: list[Path] = []
        self.new_requests = 0
        self.notes: list[tuple[str, str]] = []

    def on_mount(self) -> None:
        self.push_screen(self.runs_screen)

    def on_runs_screen_run_chosen(self, message: RunsScreen.RunChosen) -> None:
        self.chosen.append(message.run_dir)

    def on_runs_screen_new_experiment_requested(self) -> None:
        self.new_requests += 1

    def notify(self, message: str, *, severity: Any = "information", **kwargs: Any) -> None:
        self.notes.append((message, severity))
        super().notify(message, severity=severity, **kwargs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two finished runs with different laws, trained once; each test works on copies."""
    root = tmp_path_factory.mktemp("trained")
    paths = []
    for name, lr in (("alpha-run", "0.01"), ("beta-run", "0.02")):
        run_dir = create_run(root, smoke_config(*FAST, f"name={name}", f"training.lr={lr}"))
        assert execute(run_dir, threading.Event()) == "finished"
        paths.append(run_dir)
    return paths


@pytest.fixture
def runs(trained: list[Path], tmp_path: Path) -> list[Path]:
    return [Path(shutil.copytree(p, tmp_path / "runs" / p.name)) for p in trained]


def table(app: RunsApp) -> dict[str, dict[str, str]]:
    """The runs table as plain text: run id -> column key -> cell."""
    widget = app.runs_screen.query_one("#runs", DataTable)
    columns = [str(c.key.value) for c in widget.ordered_columns]
    return {str(row.key.value): {c: str(widget.get_cell(row.key, c)) for c in columns} for row in widget.ordered_rows}


async def highlight(pilot: Pilot[None], app: RunsApp, run_dir: Path) -> None:
    """Move the cursor to a run's row with the arrow keys (a damaged run sorts by its mtime)."""
    steps = list(table(app)).index(run_dir.name) - app.runs_screen.query_one("#runs", DataTable).cursor_row
    await pilot.press(*(["down"] * steps or ["up"] * -steps))


def detail(app: RunsApp) -> str:
    return str(app.runs_screen.query_one("#detail").content)


def fit_of(run_dir: Path) -> PowerLawFit:
    """The fit every face shows for a run: the default options."""
    fit = analyze_run(Run(run_dir), with_outputs=False).fit
    assert fit is not None
    return fit


async def test_lists_runs_with_names_statuses_and_alpha(runs: list[Path]) -> None:
    app = RunsApp(runs[0].parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        rows = table(app)
        assert [rows[p.name]["name"] for p in runs] == ["alpha-run", "beta-run"]
        assert {rows[p.name]["status"] for p in runs} == {"finished"}
        for p in runs:
            analysis = analyze_run(Run(p), with_outputs=False)
            assert rows[p.name]["alpha"] == alpha_cell(analysis) and alpha_cell(analysis).startswith(
                f"{analysis.fit.alpha:.3f}"
            )
        assert "square" in detail(app) and "2 seeds" in detail(app)
        await pilot.press("n")
        await until(pilot, lambda: app.new_requests == 1)


async def test_runs_appearing_and_vanishing_on_disk_show_up_live(runs: list[Path]) -> None:
    runs_dir = runs[0].parent
    app = RunsApp(runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        await pilot.press("down")
        late = create_run(runs_dir, smoke_config("name=late-run"))
        await until(pilot, lambda: late.name in table(app))
        assert table(app)[late.name]["name"] == "late-run"
        assert table(app)[late.name]["status"] == "created"
        assert table(app)[late.name]["alpha"] == "–"
        assert app.runs_screen.query_one("#runs", DataTable).cursor_row == 1  # still on beta-run
        shutil.rmtree(runs[0])
        await until(pilot, lambda: runs[0].name not in table(app))
        await pilot.press("enter")
        await until(pilot, lambda: app.chosen == [runs[1]])  # the cursor followed its run up a row


async def test_enter_opens_the_highlighted_run(runs: list[Path]) -> None:
    app = RunsApp(runs[0].parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.chosen)
        assert app.chosen == [runs[1]]


def expected_csv(run_dir: Path, what: str) -> str:
    buffer = io.StringIO()
    export_csv([Run(run_dir)], what, buffer, FitOptions())
    return buffer.getvalue()


async def test_export_writes_the_csv_and_asks_before_replacing(runs: list[Path]) -> None:
    runs_dir = runs[0].parent
    target = runs_dir.parent / f"{runs[0].name}-per-width.csv"
    app = RunsApp(runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        assert app.screen.query_one(Input).value == str(target)
        await pilot.press("tab", "enter")  # past the format, which has focus first, to the path
        await until(pilot, lambda: any(note.startswith("wrote 4 rows") for note, _ in app.notes))
        text = target.read_text()
        records = list(csv.reader(io.StringIO(text)))
        assert records[0][:3] == ["run", "width", "n_params"]
        assert len(records) == 1 + 4  # one header row, one row per width
        assert text == expected_csv(runs[0], "per-width")

        # Another format: the suggested path follows the choice; the existing file is not involved.
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        app.screen.query_one(Select).value = "curves"
        curves = runs_dir.parent / f"{runs[0].name}-curves.csv"
        await until(pilot, lambda: app.screen.query_one(Input).value == str(curves))
        await pilot.press("tab", "enter")
        await until(pilot, curves.exists)
        assert curves.read_text() == expected_csv(runs[0], "curves")

        # An existing file is replaced only after a yes.
        target.write_text("keep me\n")
        for answer, content in (("escape", "keep me\n"), ("y", expected_csv(runs[0], "per-width"))):
            app.notes.clear()
            await pilot.press("e")
            await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
            await pilot.press("tab", "enter")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press(answer)
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))
            if answer == "y":
                await until(pilot, lambda: app.notes)
            await pilot.pause()
            assert target.read_text() == content


async def test_delete_asks_first_and_refuses_a_live_run(runs: list[Path]) -> None:
    app = RunsApp(runs[0].parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert runs[0].is_dir() and runs[0].name in table(app)

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")  # Cancel has focus: an enter out of habit deletes nothing
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert runs[0].is_dir()
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: runs[0].name not in table(app))
        assert not runs[0].exists()

        writer = RunWriter(runs[1])  # pretend a runner in this process is training it
        writer.mark_running("cpu")
        writer.close()
        await until(pilot, lambda: table(app)[runs[1].name]["status"] == "running")
        await pilot.press("d")  # refused at once, not after a question whose yes is then refused
        await until(pilot, lambda: any(severity == "error" and "running" in note for note, severity in app.notes))
        assert not isinstance(app.screen, ConfirmDialog)
        assert runs[1].is_dir() and runs[1].name in table(app)


async def test_delete_acts_on_the_marked_runs_and_names_them(runs: list[Path]) -> None:
    app = RunsApp(runs[0].parent)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        await pilot.press("space", "space", "up")  # both marked, the cursor back on the first
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        question = str(app.screen.query_one("#heading", Static).content)
        assert "2 runs" in question and "alpha-run" in question and "beta-run" in question
        await pilot.press("y")
        await until(pilot, lambda: not table(app))
        assert not runs[0].exists() and not runs[1].exists()


async def test_rename_changes_the_name_on_screen_and_on_disk(runs: list[Path]) -> None:
    app = RunsApp(runs[0].parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, PromptDialog))
        field = app.screen.query_one(Input)
        assert field.value == "alpha-run"
        field.value = ""
        await pilot.press(*"renamed-run", "enter")
        await until(pilot, lambda: table(app)[runs[0].name]["name"] == "renamed-run")
        assert Run(runs[0]).config.name == "renamed-run"

        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, PromptDialog))
        app.screen.query_one(Input).value = "   "
        await pilot.press("enter")
        await until(pilot, lambda: any(severity == "error" for _, severity in app.notes))
        assert Run(runs[0]).config.name == "renamed-run"


async def test_compare_shows_both_fits(runs: list[Path]) -> None:
    app = RunsApp(runs[0].parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        await pilot.press("space", "space")
        assert [row["mark"] for row in table(app).values()] == ["✓", "✓"]
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#fits", DataTable).row_count == 2)
        picture = screen.query_one(Plot).text
        for name, path in zip(("alpha-run", "beta-run"), runs, strict=True):
            fit = fit_of(path)
            assert f"{name}: α={fit.alpha:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]" in picture
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: screen.query_one(Plot).text != picture)
        assert "alpha-run: α=" in screen.query_one(Plot).text
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_a_damaged_run_is_listed_and_the_screen_keeps_working(runs: list[Path]) -> None:
    (runs[0] / "meta.json").write_text("{ not json")
    app = RunsApp(runs[0].parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        assert table(app)[runs[0].name]["status"] == "damaged"
        await highlight(pilot, app, runs[0])
        assert "meta.json" in detail(app)
        await pilot.press("enter")
        await until(pilot, lambda: any("damaged" in note for note, _ in app.notes))
        assert app.chosen == []

        (runs[1] / "meta.json").write_text("")  # damaged while on screen
        await until(pilot, lambda: table(app)[runs[1].name]["status"] == "damaged")
        await highlight(pilot, app, runs[0])
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: runs[0].name not in table(app))
        assert not runs[0].exists()


async def test_help_lists_the_keys_of_the_screen_beneath(runs: list[Path]) -> None:
    app = RunsApp(runs[0].parent)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(table(app)) == 2)
        app.push_screen(HelpScreen())
        await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen.query(Static))
        shown = " ".join(str(s.content) for s in app.screen.query(Static))
        for description in ("Open", "New", "Mark", "Compare", "Export", "Rename", "Delete"):
            assert description in shown
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


def test_compare_plot_is_the_same_however_often_it_is_redrawn(trained: list[Path]) -> None:
    """plotext keeps global state between draws; a redraw must not inherit anything from the last one."""
    fits = [fit for p in trained for fit in read_fits(p)]
    first = compare_plot(fits, 100, 30)
    for size in ((60, 15), (100, 30), (80, 20)) * 10:
        compare_plot(fits[:1], *size)
    assert compare_plot(fits, 100, 30) == first
    assert "alpha-run: α=" in first and "beta-run: α=" in first


def test_runs_with_different_grids_compare_curve_by_curve(tmp_path: Path) -> None:
    """A run over width alone beside a width × data-size run: one legend entry and table row per curve
    against N, each with the α that `scaletui fit` prints for it."""
    runs_dir = tmp_path / "runs"
    plain, grid = lottery_run(runs_dir, run_id="plain"), grid_run(runs_dir, run_id="grid")
    fits = read_fits(plain.dir) + read_fits(grid.dir)
    assert [f.curve for f in fits] == ["", "D=64", "D=256", "D=1024"]
    picture = compare_plot(fits, 120, 30)
    for entry in ("plain: α=", "grid · D=64: α=", "grid · D=1024: α="):  # same names: the ids tell them apart
        assert entry in picture, picture
    cli = json.loads(run_cli("fit", "grid", "--runs-dir", str(runs_dir), "--json").stdout)
    assert [f.fit.alpha for f in fits[1:]] == [c["fit"]["alpha"] for c in cli]
