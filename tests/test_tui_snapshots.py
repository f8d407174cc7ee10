"""Every screen as text at 80×24 and 160×48, with a sweep's results loaded, against a golden file.

The runs are synthetic (tests/synthetic_runs.py: seeded losses of a known law, stored through the real
store), so the pictures do not depend on torch. A snapshot is the painted screen without colour, the runs
directory's path replaced by ``<runs>``. After a deliberate change of the screens, rewrite them with
``SCALETUI_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_tui_snapshots.py`` and read the diff.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from scaletui.tui.app import ScaletuiApp
from scaletui.tui.compare import CompareScreen
from scaletui.tui.dialogs import FitDialog, HelpScreen
from scaletui.tui.explorer import ExplorerScreen
from scaletui.tui.runs import RunsScreen
from scaletui.tui.seeds import SeedsScreen
from scaletui.tui.tickets import TicketsScreen
from tests.conftest import until
from tests.synthetic_runs import grid_run, lottery_run
from tests.test_tui_newuser import screen_text

GOLDEN = Path(__file__).parent / "snapshots"
SIZES = [(80, 24), (160, 48)]


async def settled(pilot, app) -> str:
    """The screen once three looks half a second apart agree, workers done: the span crosses the runs
    screen's once-a-second refresh, so a picture caught mid-refresh is not taken for the settled one."""
    looks: list[str] = []
    for _ in range(120):
        await pilot.pause(0.5)
        looks = [*looks[-2:], screen_text(app)]
        if len(looks) == 3 and len(set(looks)) == 1 and not any(worker.is_running for worker in app.workers):
            return looks[-1]
    pytest.fail("the screen kept changing")


async def runs_screen(pilot, app) -> None:
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.rows) == 2)
    await until(pilot, lambda: all(row.alpha != "–" for row in app.screen.rows.values()))


async def explorer(pilot, app, key: str | None = None) -> None:
    await runs_screen(pilot, app)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ExplorerScreen) and app.screen.snapshot is not None)
    if key:
        await pilot.press(key)


def explorer_tab(key: str) -> Callable[..., Awaitable[None]]:
    async def show(pilot, app) -> None:
        await explorer(pilot, app, key)

    return show


async def tickets(pilot, app) -> None:
    await explorer(pilot, app, "f6")
    await until(pilot, lambda: isinstance(app.screen, TicketsScreen) and app.screen.view is not None)


async def seeds(pilot, app) -> None:
    await explorer(pilot, app, "f10")
    await until(pilot, lambda: isinstance(app.screen, SeedsScreen) and app.screen.analysis is not None)


async def compare(pilot, app) -> None:
    await runs_screen(pilot, app)
    await pilot.press("space", "space", "c")
    await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.query_one("#fits").row_count == 2)


async def help_screen(pilot, app) -> None:
    await explorer(pilot, app, "question_mark")
    await until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def fit_dialog(pilot, app) -> None:
    await explorer(pilot, app, "ctrl+g")
    await until(pilot, lambda: isinstance(app.screen, FitDialog))


async def new_experiment(pilot, app) -> None:
    await runs_screen(pilot, app)
    await pilot.press("n")
    await until(pilot, lambda: isinstance(app.screen, ExplorerScreen))


SCREENS: dict[str, Callable[..., Awaitable[None]]] = {
    "runs": runs_screen,
    "new-experiment": new_experiment,
    **{f"explorer-{key}": explorer_tab(key) for key in ("f1", "f2", "f3", "f4", "f5", "f7", "f8")},
    "tickets": tickets,
    "seeds": seeds,
    "compare": compare,
    "help": help_screen,
    "fit-options": fit_dialog,
}  # the quit dialog needs a live run, whose status moves with the clock: tests/test_tui_newuser.py has it


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs_dir = tmp_path_factory.mktemp("snapshots") / "runs"
    lottery_run(runs_dir, run_id="lottery", weights=True)
    lottery_run(runs_dir, run_id="shallow", alpha=1.5, weights=True)
    return runs_dir


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
@pytest.mark.parametrize("name", list(SCREENS))
async def test_screen_matches_its_snapshot(runs_root: Path, name: str, size: tuple[int, int]) -> None:
    app = ScaletuiApp(runs_root)
    async with app.run_test(size=size) as pilot:
        await SCREENS[name](pilot, app)
        text = without_path(await settled(pilot, app), str(runs_root))
    assert_matches_golden(text, f"{name}-{size[0]}x{size[1]}")


def without_path(text: str, path: str) -> str:
    """The text with the runs directory's path as ``<runs>``, also where the header cut it ("/tmp/pyt…")."""
    text = text.replace(path, "<runs>")
    for end in range(len(path) - 1, 0, -1):
        text = text.replace(path[:end] + "…", "<runs>…")
    return text


def assert_matches_golden(text: str, name: str) -> None:
    """The screen's text, trailing blanks dropped, equals tests/snapshots/NAME.txt (written when asked to)."""
    text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("SCALETUI_UPDATE_SNAPSHOTS") or not golden.exists():
        golden.write_text(text, encoding="utf-8")
        if not os.environ.get("SCALETUI_UPDATE_SNAPSHOTS"):
            pytest.fail(f"{golden.name} did not exist; written now: read it, and commit it if it is right")
    assert text == golden.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def grid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs_dir = tmp_path_factory.mktemp("grid-snapshots") / "runs"
    grid_run(runs_dir)
    return runs_dir


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
@pytest.mark.parametrize("keys", [(), ("ctrl+x", "ctrl+x")], ids=["by-n", "by-data"])
async def test_a_width_by_data_size_run_draws_one_curve_per_data_size(
    grid_root: Path, keys: tuple[str, ...], size: tuple[int, int]
) -> None:
    """The explorer on a grid: against N one line per data size (ctrl+x twice: against D, one per width),
    a legend naming each, and the α line saying which curve the table shows."""
    app = ScaletuiApp(grid_root, open_run=grid_root / "grid")
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen) and app.screen.snapshot is not None)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.2)
        axis = "data" if keys else "width"
        await until(pilot, lambda: app.screen.snapshot.analysis.options.axis == axis)
        text = (await settled(pilot, app)).replace(str(grid_root), "<runs>")
    labels = ["D=64", "D=256", "D=1024"] if not keys else ["width 2", "width 4", "width 8", "width 16"]
    assert all(label in text for label in labels), text
    assert f"{labels[0]} (1/{len(labels)}, ctrl+n)" in text
    assert_matches_golden(text, f"{'grid-by-data' if keys else 'grid-by-n'}-{size[0]}x{size[1]}")
