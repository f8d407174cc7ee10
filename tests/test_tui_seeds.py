"""The seeds screen (F10 in the explorer): the same table and verdict as `scaletui seeds`, a strip per width,
a units key, and live updates while the run trains."""

from __future__ import annotations

import io
import re
import threading

import pytest
from rich.console import Console
from textual.widgets import Static

from scaletui.report import seeds_lines
from scaletui.runner import create_run, execute
from scaletui.seeds import analyze_seeds
from scaletui.store import Run
from scaletui.tui.seeds import SeedsScreen
from tests.conftest import smoke_config, until
from tests.test_tui_explorer import ExplorerApp


def plain(renderable, width: int = 200) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def numbers(app) -> str:
    """The screen's table and lines as text; empty until the seeds screen is up."""
    if not isinstance(app.screen, SeedsScreen):
        return ""
    return plain(app.screen.query_one("#table", Static).content)


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("tui-seeds") / "runs"
    run_dir = create_run(runs_dir, smoke_config("seeds.count=50", "training.steps=60"))
    assert execute(run_dir, threading.Event()) == "finished"
    return runs_dir, run_dir


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_f10_shows_the_cli_verdict_and_a_strip_per_width(seeded_run, size):
    runs_dir, run_dir = seeded_run
    verdict = [str(line) for line in seeds_lines(analyze_seeds(Run(run_dir)))]
    app = ExplorerApp(runs_dir, run_dir)
    async with app.run_test(size=size) as pilot:
        await pilot.press("f10")
        await until(pilot, lambda: isinstance(app.screen, SeedsScreen) and "median loss" in numbers(app))
        text = numbers(app)
        for line in verdict:  # the CLI's lines, word for word
            assert line in text.replace("\n", " ") or line in text
        assert "seeds per width (log10 loss)" in text
        assert "seeds per width" in str(app.screen.query_one("#strips", Static).render())
        await pilot.press("u")
        await until(pilot, lambda: "seeds per width (loss)" in numbers(app))
        await pilot.press("u")
        await until(pilot, lambda: "same spread at every width by construction" in numbers(app))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SeedsScreen))


async def test_the_seeds_screen_follows_a_live_run(tmp_path):
    runs_dir = tmp_path / "runs"
    run_dir = create_run(runs_dir, smoke_config("model.widths=[2, 4, 8, 16, 32, 64]", "training.steps=400"))
    stop = threading.Event()
    trainer = threading.Thread(target=execute, args=(run_dir, stop))
    app = ExplorerApp(runs_dir, run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        trainer.start()
        await pilot.press("f10")
        try:
            await until(pilot, lambda: "live: 500 resamples" in numbers(app), timeout=120)
            await until(pilot, lambda: Run(run_dir).status().status == "finished", timeout=120)
            widest = re.compile(r"^\s*64\s+193\s+4\s", re.MULTILINE)  # width 64, N = 193, all 4 seeds
            await until(pilot, lambda: "live:" not in numbers(app) and widest.search(numbers(app)), timeout=60)
        finally:
            stop.set()
            trainer.join()
