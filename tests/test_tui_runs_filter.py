"""The runs screen at 80×24 as a new user meets it: marks and the filter, the title, the columns, the help.

Each test drives the real app over runs written through the real store (tests/synthetic_runs.py) and reads
what is painted, as in tests/test_tui_newuser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from scaletui.store import rename_run
from scaletui.tui.app import ScaletuiApp
from scaletui.tui.dialogs import HelpScreen
from scaletui.tui.runs import RunsScreen
from tests.conftest import until
from tests.synthetic_runs import lottery_run
from tests.test_tui_newuser import screen_text

NAMES = ("alpha", "beta", "gamma-with-longer-name")


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """Three finished runs named as a user names them, listed in this order (their ids sort so)."""
    runs_dir = tmp_path / "runs"
    for i, name in enumerate(NAMES):
        run = lottery_run(runs_dir, run_id=f"20261203-10090{i}-{name}-{i:04x}", alpha=1.0 + i, stuck={})
        rename_run(run.dir, name)
    return runs_dir


async def runs_shown(pilot, app: ScaletuiApp, n: int = 3) -> RunsScreen:
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.rows) == n)
    await until(pilot, lambda: all(row.alpha != "–" for row in app.screen.rows.values()))
    await pilot.pause()
    return app.screen


def title(app: ScaletuiApp) -> str:
    return screen_text(app).splitlines()[0]


def footer(app: ScaletuiApp) -> str:
    return screen_text(app).splitlines()[-1]


async def test_the_help_lists_each_key_once(runs_dir: Path) -> None:
    app = ScaletuiApp(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_shown(pilot, app)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen.query(Static))
        keys = str(app.screen.query(Static)[1].content).splitlines()
        assert not [line for line in keys if re.match(r"\s*(\S+) / \1\s", line)], keys  # "^q / ^q Quit"
        for description in ("Quit", "Help", "Save SVG"):
            assert len([line for line in keys if line.split("  ")[-1].strip() == description]) <= 2, description
        assert len([line for line in keys if line.strip().startswith("^q")]) == 1
        assert len([line for line in keys if line.strip().startswith("?")]) == 1


async def test_typing_a_filter_the_footer_shows_keep_clear_and_help_and_question_mark_opens_it(
    runs_dir: Path,
) -> None:
    app = ScaletuiApp(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        await pilot.press("slash", "b", "e")
        await until(pilot, lambda: len(screen.rows) == 1)
        await until(pilot, lambda: all(key in footer(app) for key in ("⏎ Keep filter", "esc Clear filter", "? Help")))
        assert "/ Filter" not in footer(app)  # `/` is typed here
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        field = screen.query_one("#filter", Input)
        assert field.value == "be" and app.focused is field  # not "be?"
        await pilot.press("escape")  # clears
        await until(pilot, lambda: len(screen.rows) == 3 and not field.display)
        await pilot.press("slash", *"gam", "enter")  # keeps, back in the table
        await until(pilot, lambda: len(screen.rows) == 1 and app.focused is not field)
        await pilot.press("escape")  # a kept filter is cleared from the table too
        await until(pilot, lambda: len(screen.rows) == 3 and not field.display)
