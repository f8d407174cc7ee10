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
from scaletui.tui.dialogs import ChoiceDialog, ConfirmDialog, HelpScreen
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


def marks(app: ScaletuiApp) -> dict[str, str]:
    """The painted mark of each run by name: the table's rows as the screen shows them."""
    lines = screen_text(app).splitlines()
    table = lines[2 : next(i for i, line in enumerate(lines) if line.startswith("─"))]  # above the detail
    rows = [line for line in table if any(name in line for name in NAMES)]
    return {next(name for name in NAMES if name in line): line[:4].strip() for line in rows}


async def test_marks_outlive_the_filter_and_delete_says_which_are_hidden(runs_dir: Path) -> None:
    app = ScaletuiApp(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        await pilot.press("space", "space", "space")
        await until(pilot, lambda: marks(app) == dict.fromkeys(NAMES, "✓"))
        await pilot.press("slash", "b", "e", "enter")
        await until(pilot, lambda: list(marks(app)) == ["beta"])
        assert "3 marked (2 hidden)" in str(screen.sub_title)
        await pilot.press("d")  # d acts on every marked run, and says which the filter hides
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        question = str(app.screen.query_one("#heading", Static).content)
        assert "3 runs" in question and all(name in question for name in NAMES), question
        assert "2 of them are marked but hidden by the filter" in question
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("slash", "escape")
        await until(pilot, lambda: marks(app) == dict.fromkeys(NAMES, "✓"))
        assert "hidden" not in str(screen.sub_title) and "3 marked" in str(screen.sub_title)
        await pilot.press("slash", *"gam", "enter")
        await until(pilot, lambda: list(marks(app)) == ["gamma-with-longer-name"])
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        assert "3 runs (2 hidden by the filter)" in str(app.screen.query_one("#heading", Static).content)


async def test_the_title_keeps_the_counts_and_the_filter_whole_at_80_columns(runs_dir: Path) -> None:
    app = ScaletuiApp(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        await until(pilot, lambda: "3 runs · sorted by started ▲" in title(app))
        await pilot.press("space", "space", "space", "slash", *"beta")
        await until(pilot, lambda: "1 of 3 match 'beta' · 3 marked (2 hidden)" in title(app))
        await pilot.press("backspace", "backspace", "backspace", "backspace", *"xyz")
        await until(pilot, lambda: not screen.rows and "0 of 3 match 'xyz' · 3 marked (3 hidden)" in title(app))
        # There are runs: the filter hides them all, and the line under the table says so, not "No runs yet".
        await until(pilot, lambda: "No run matches 'xyz' (esc clears the filter)." in screen_text(app))
        assert "No runs in" not in screen_text(app)


def painted_table(app: ScaletuiApp) -> list[str]:
    """The painted lines of the runs table, its header first, down to the line above the run's detail."""
    lines = screen_text(app).splitlines()
    return lines[1 : next(i for i, line in enumerate(lines) if line.startswith("─"))]


async def test_at_80_columns_the_table_shows_whole_columns_name_first_and_s_sorts_by_those_shown(
    runs_dir: Path,
) -> None:
    app = ScaletuiApp(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        table = screen.query_one("#runs")
        await until(pilot, lambda: [str(c.key.value) for c in table.ordered_columns][:2] == ["mark", "name"])
        shown = [str(c.key.value) for c in table.ordered_columns]
        assert "id" not in shown  # it is in the line under the table
        # No sideways scrolling, so no scrollbar under the rows: its thumb's end was a stray '▊' at 80×24.
        assert not table.show_horizontal_scrollbar
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert not any(glyph in line for line in painted_table(app) for glyph in "▏▎▍▌▋▊▉")
        header = painted_table(app)[0]
        assert re.search(r"\s+".join(re.escape(str(c.label)) for c in table.ordered_columns[1:]), header)
        sorted_by = []
        for _ in range(len(shown)):
            await pilot.press("s")
            await until(pilot, lambda: f"{dict(screen.heads)[screen.sort_key]}" in painted_table(app)[0])
            sorted_by.append(screen.sort_key)
            assert f"sorted by {screen.heads[shown.index(screen.sort_key)][1]}" in title(app)
        assert set(sorted_by) == set(shown) - {"mark"}  # every column shown, none that is not
        assert "name ▲" in painted_table(app)[0] or screen.sort_key != "name"
        await pilot.resize_terminal(160, 48)
        await until(pilot, lambda: "id" in [str(c.key.value) for c in table.ordered_columns])
