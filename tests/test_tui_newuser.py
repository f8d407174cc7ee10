"""Issue #14, the TUI as a new user meets it: each defect found at 80×24 and 160×48, pinned by a pilot test.

The assertions read what is painted (the compositor's picture of the screen, as a screenshot would show it),
not a widget's data: several of these defects were data that was right while the screen showed stale lines.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.widgets import Select

from scaletui.presets import list_presets
from scaletui.tui.form import ConfigForm
from tests.conftest import until
from tests.test_tui_explorer import ExplorerApp, set_input, words


def screen_text(app) -> str:
    """The screen as plain text, exactly what is painted (stale lines included)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def preset_path(name: str) -> Path:
    return next(p.path for p in list_presets() if p.name == name)


def field_line(app, label: str) -> str:
    """The painted line of a form field, by its label."""
    return next(line for line in screen_text(app).splitlines() if line.strip().startswith(f"{label} "))


async def test_loading_a_preset_repaints_every_field_of_the_form(tmp_path: Path) -> None:
    app = ExplorerApp(tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert "silu" in field_line(app, "activation") and "builtin" in field_line(app, "kind")
        app.screen.query_one("#preset", Select).value = str(preset_path("teacher-d2"))
        await until(pilot, lambda: app.screen.query_one(ConfigForm).texts["name"] == "teacher-d2")
        await pilot.pause()
        assert "teacher" in field_line(app, "kind") and "relu" in field_line(app, "activation")
        assert "Sharma" in field_line(app, "description")


async def test_a_cleared_field_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    app = ExplorerApp(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        await set_input(pilot, "training.lr", "")
        await set_input(pilot, "model.init", "")  # a choice field can be emptied with backspace
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert set(form.errors) == {"training.lr", "model.init"}  # both at once, not one per try
        assert form.current in form.errors and "got ''" in screen_text(app)
    assert not runs_dir.exists()


async def test_a_long_error_is_shown_whole_under_its_field_and_in_the_help(tmp_path: Path) -> None:
    app = ExplorerApp(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        await set_input(pilot, "target.kind", "expression")
        await set_input(pilot, "target.expression", "__import__(x)")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert form.current == "target.expression"
        painted = words(screen_text(app).replace("│", " "))
        problem = form.errors["target.expression"]
        assert problem.endswith("min, max)")
        field_list = words(" ".join(line.split("│")[0] for line in screen_text(app).splitlines()))
        assert words(problem) in field_list.replace("✗ ", "")
        assert "silu, min, max)" in painted
