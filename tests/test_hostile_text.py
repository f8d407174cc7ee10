"""User text is data: markup, terminal escapes and numbers of any size never crash, drive the terminal, or
reach a reader as anything but what was typed."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.widgets import DataTable
from typer.testing import CliRunner

from scaletui.cli import app
from scaletui.config import ConfigError, load_config
from scaletui.presets import resolve_preset
from scaletui.runner import create_run, execute
from scaletui.store import rename_run
from scaletui.tui.app import ScaletuiApp
from scaletui.tui.explorer import ExplorerScreen
from scaletui.tui.runs import RunsScreen
from tests.conftest import report_reliability, run_cli, smoke_config, until

cli = CliRunner()
MARKUP = [
    "[/]",
    "[bold red]X[/bold red]",
    "[link=file:///etc/passwd]x[/link]",
    "[[",
    "]]x[",
    "\\[/]",
    "[@click=quit]q[/]",
]
ESCAPES = ["\x1b]0;pwned\x07", "\x1b[2J", "a\rb", "\x9b31m", "bell\x07"]
# Printable text with the characters Rich and Textual give meaning to, and Unicode beyond.
hostile_names = st.text(
    alphabet=st.sampled_from(list("[]/\\@=:;'\"` ~#%&*()<>{}|abXZ09_-.é漢🙂")), min_size=1, max_size=40
).filter(lambda s: s.strip())


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    runs_dir = tmp_path_factory.mktemp("hostile") / "runs"
    run_dir = create_run(runs_dir, smoke_config("training.steps=20"))
    assert execute(run_dir, threading.Event()) == "finished"
    return run_dir


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.sampled_from(MARKUP), hostile_names))
def test_a_run_name_is_printed_as_typed_by_ls_and_show(tmp_path_factory, finished, name):
    runs_dir = tmp_path_factory.mktemp("names") / "runs"
    run_dir = Path(shutil.copytree(finished, runs_dir / finished.name))
    rename_run(run_dir, name)
    for args in (["ls"], ["show", run_dir.name, "--no-plots"]):
        result = cli.invoke(app, [*args, "--runs-dir", str(runs_dir)], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (args, result.output)
        if args == ["ls"]:
            assert name.strip()[:10] in result.output


@pytest.mark.parametrize("text", ESCAPES)
@pytest.mark.parametrize("field", ["name", "description", "target.expression"])
def test_control_characters_are_refused_naming_the_field(field, text):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.") + ".*control character"):
        load_config(resolve_preset("smoke"), ["target.kind=expression", f"{field}={_toml_string('x' + text)}"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(description=st.one_of(st.sampled_from(MARKUP + ESCAPES), st.text(max_size=60)))
def test_presets_lists_any_description_as_plain_text(tmp_path_factory, description):
    folder = tmp_path_factory.mktemp("presets")
    text = (resolve_preset("smoke").read_text()).replace(
        'description = "', "description = " + _toml_string(description) + '\nignored = "', 1
    )
    (folder / "mine.toml").write_text(text)
    result = cli.invoke(app, ["presets"], env={"SCALETUI_PRESETS_DIR": str(folder), "COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\x9b" not in result.output
    assert "mine" in result.output


def _toml_string(text: str) -> str:
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in text) + '"'


@pytest.mark.parametrize(
    "override",
    [
        "seeds.count=1" + "0" * 400,
        "training.lr=1" + "0" * 400,
        "seeds.count=" + "9" * 5001,
        "model.widths=" + "[" * 3000,
    ],
    ids=["400-digit count", "400-digit lr", "5001-digit count", "nested 3000 deep"],
)
def test_huge_numbers_and_deep_nesting_are_one_line_errors(override, tmp_path):
    result = cli.invoke(app, ["run", "smoke", "--set", override, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert override.split("=")[0] in result.output
    assert not (tmp_path / "runs").exists()


def test_a_huge_number_is_one_line_from_the_real_cli(tmp_path):
    result = run_cli("run", "smoke", "--set", "seeds.count=1" + "0" * 400, "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert "seeds.count" in result.stderr


def test_a_stored_config_with_a_huge_number_is_one_damaged_run(finished, tmp_path):
    runs_dir = tmp_path / "runs"
    healthy = Path(shutil.copytree(finished, runs_dir / finished.name))
    broken = Path(shutil.copytree(finished, runs_dir / "20000101-000000-huge-0000"))
    config = broken / "config.toml"
    config.write_text(config.read_text().replace("count = 4", "count = 1" + "0" * 5000))
    result = cli.invoke(app, ["ls", "--runs-dir", str(runs_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and healthy.name in result.output
    assert "damaged" in result.output and "config.toml" in result.output
    report_reliability(
        "hostile text: markup, escapes, 400- and 5001-digit numbers",
        "CLI ls/show/presets/run (hypothesis) and the TUI",
        "printed as typed or refused in one line naming the field",
        "0",
    )


async def test_the_runs_screen_and_explorer_show_hostile_names_as_typed(finished, tmp_path):
    runs_dir = tmp_path / "runs"
    names = {}
    for i, name in enumerate(MARKUP):
        run_dir = Path(shutil.copytree(finished, runs_dir / f"{finished.name}{i}"))
        rename_run(run_dir, name)
        names[run_dir.name] = name
    tui = ScaletuiApp(runs_dir)
    async with tui.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(tui.screen, RunsScreen))
        grid = tui.screen.query_one("#runs", DataTable)
        await until(pilot, lambda: grid.row_count == len(MARKUP))
        shown = {str(row.key.value): str(grid.get_cell(row.key, "name")) for row in grid.ordered_rows}
        for run_id, name in names.items():
            assert shown[run_id].rstrip("…") in name, (shown[run_id], name)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(tui.screen, ExplorerScreen))
        await until(pilot, lambda: tui.screen.watcher is not None)
        await pilot.pause(0.5)
        assert tui.is_running
