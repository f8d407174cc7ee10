"""The tickets screen (F6 in the explorer): the same mirror pairs and ensemble table as `scaletui inspect`."""

from __future__ import annotations

import io
import threading

from rich.console import Console
from textual.widgets import Static

from scaletui.lottery import inspect_run
from scaletui.report import ticket_summary
from scaletui.runner import create_run, execute
from scaletui.store import Run
from scaletui.tui.plot import Plot
from scaletui.tui.tickets import TicketsScreen
from tests.conftest import smoke_config, until
from tests.test_tui_explorer import ExplorerApp


def plain(renderable) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def summary_text(app) -> str:
    return str(app.screen.query_one("#summary", Static).render())


async def test_f6_shows_the_models_mirror_pairs_and_arrows_move_between_models(tmp_path):
    cfg = smoke_config(
        "model.widths=[4, 8, 16]", "seeds.count=3", 'training.optimizer="lm"', 'training.dtype="float64"',
        "training.steps=60",
    )  # fmt: skip
    run_dir = create_run(tmp_path / "runs", cfg)
    assert execute(run_dir, threading.Event()) == "finished"
    run = Run(run_dir)
    app = ExplorerApp(tmp_path / "runs", run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, TicketsScreen) and "mirror pairs" in summary_text(app))
        assert str(ticket_summary(inspect_run(run, 16, 0))) in summary_text(app)  # widest width, first seed
        pairs = plain(app.screen.query_one("#pairs", Static).content)
        assert "Is a wide net an ensemble of narrow ones?" in pairs
        assert "k nets averaged" in pairs
        assert "hidden neurons" in app.screen.query_one("#scatter", Plot).text
        await pilot.press("left")
        await until(pilot, lambda: "width 8, seed 0:" in summary_text(app))
        await pilot.press("down", "down", "down")  # past the last seed it stays on the last
        await until(pilot, lambda: "width 8, seed 2:" in summary_text(app))
        assert str(ticket_summary(inspect_run(run, 8, 2))) in summary_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, TicketsScreen))


async def test_f6_without_a_run_says_what_to_do(tmp_path):
    app = ExplorerApp(tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        assert not isinstance(app.screen, TicketsScreen)
        assert any("no run yet" in str(n.message) for n in app._notifications)
