"""The seeds screen (F10 in the explorer): the same table and verdict as `scaletui seeds`, a strip per width,
a units key, and live updates while the run trains."""

from __future__ import annotations

import io
import re
import threading

import numpy as np
import pytest
from rich.console import Console
from textual.widgets import Static

from scaletui.report import seeds_lines
from scaletui.runner import create_run, execute
from scaletui.seeds import analyze_seeds
from scaletui.store import Run, RunWriter
from scaletui.tui.plot import Plot
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
        assert "seeds per width" in app.screen.query_one("#strips", Plot).text
        await pilot.press("u")
        await until(pilot, lambda: "seeds per width (loss)" in numbers(app))
        await pilot.press("u")
        await until(pilot, lambda: "same spread at every width by construction" in numbers(app))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SeedsScreen))


def _add_width(writer: RunWriter, width: int, seeds: int = 60) -> None:
    losses = 0.1 * width**-1.0 * np.exp(0.3 * np.random.default_rng(width).standard_normal(seeds))
    ids = list(range(seeds))
    writer.add_curve_points(writer.group(width), ids, 0, 2 * losses, 2 * losses)
    writer.add_curve_points(writer.group(width), ids, 100, losses, losses)
    outputs = np.tile(np.linspace(0, 4, 16) ** 2, (seeds, 1))
    writer.add_shard_result(
        writer.group(width), ids, 3 * width + 1, losses, losses, np.full(seeds, -1), 0.1, outputs, {}
    )


async def test_the_seeds_screen_follows_a_live_run(tmp_path):
    """A run written step by step through the real store: live with one width, then two, then finished."""
    cfg = smoke_config("seeds.count=60", "model.widths=[2, 4, 8]", "training.steps=100")
    writer = RunWriter.create(tmp_path / "runs", cfg, run_id="live-seeds")
    x = np.linspace(-2, 2, 16)
    writer.write_test_set(x[:, None], x**2)
    writer.mark_running("cpu")
    _add_width(writer, 2)
    writer.flush()
    app = ExplorerApp(tmp_path / "runs", writer.dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f10")
        await until(pilot, lambda: "live: 500 resamples" in numbers(app))
        assert "too few widths" in numbers(app)
        _add_width(writer, 4)
        writer.flush()
        await until(pilot, lambda: re.search(r"^\s*4\s+13\s+60\s", numbers(app), re.MULTILINE) is not None)
        _add_width(writer, 8)
        writer.mark_ended("finished")
        writer.close()
        await until(
            pilot,
            lambda: (
                "live:" not in numbers(app) and re.search(r"^\s*8\s+25\s+60\s", numbers(app), re.MULTILINE) is not None
            ),
        )
