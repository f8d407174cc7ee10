"""The explorer screen driven by Textual's pilot: the form, launching, live panels, opening runs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from textual.app import App
from textual.geometry import Region
from textual.widgets import DataTable, Input, Static

from scaletui.analysis import DEFAULT_RESAMPLES, FitOptions, PowerLawFit, analyze_budget, analyze_run
from scaletui.config import load_config
from scaletui.report import alpha_numbers, budget_lines, local_lines, variance_numbers
from scaletui.runner import create_run, execute
from scaletui.store import Run, RunWriter, list_runs
from scaletui.tui.explorer import ExplorerScreen
from scaletui.tui.form import ConfigForm, FieldList, field_paths
from scaletui.tui.watch import LIVE_RESAMPLES
from tests.conftest import run_cli, smoke_config, until
from tests.synthetic_runs import lottery_run


class ExplorerApp(App[None]):
    def __init__(self, runs_dir: Path, run_dir: Path | None = None) -> None:
        super().__init__()
        self.runs_dir, self.run_dir = runs_dir, run_dir

    def on_mount(self) -> None:
        self.push_screen(ExplorerScreen(self.runs_dir, run_dir=self.run_dir))


def alpha_text(app) -> str:
    return str(app.screen.query_one("#alpha", Static).render())


def expected_alpha(run_dir: Path, x_axis: str = "params") -> str:
    """What the α line of a run that is no longer live must show: the default analysis, in the one format."""
    return alpha_numbers(analyze_run(Run(run_dir), FitOptions(x_axis=x_axis)).fit)


async def set_input(pilot, path: str, value: str) -> None:
    pilot.app.screen.query_one(ConfigForm).set_text(path, value)
    await pilot.pause()


def form_lines(app) -> list[str]:
    """The form's field list as the user sees it, line by line."""
    fields = app.screen.query_one(FieldList)
    return [fields.render_line(y).text for y in range(fields.size.height)]


async def test_fill_the_form_run_smoke_and_see_the_stores_numbers(tmp_path):
    runs_dir = tmp_path / "runs"
    app = ExplorerApp(runs_dir)
    async with app.run_test(size=(140, 45)) as pilot:
        await set_input(pilot, "name", "from-the-form")
        await set_input(pilot, "training.steps", "150")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: runs_dir.is_dir() and any(runs_dir.iterdir()))
        [listing] = list_runs(runs_dir)
        assert listing.run.config.name == "from-the-form" and listing.run.config.training.steps == 150
        await until(pilot, lambda: Run(listing.path).status().status == "finished")
        await until(pilot, lambda: "α vs N = " in alpha_text(app) and "finished" in str(app.screen.sub_title))
        await until(pilot, lambda: expected_alpha(listing.path) in alpha_text(app))
        table = app.screen.query_one("#widths", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        stats = analyze_run(Run(listing.path), FitOptions(resamples=0)).widths
        assert [r[0] for r in rows] == ["2", "4", "8", "16"]
        assert [r[2] for r in rows] == [f"{s.used}/{s.seeds}" for s in stats]
        assert [r[3] for r in rows] == [f"{s.median:.2e}" if s.used else "–" for s in stats]


async def test_a_bad_form_value_is_shown_on_its_field_and_starts_nothing(tmp_path):
    runs_dir = tmp_path / "runs"
    app = ExplorerApp(runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        form = app.screen.query_one(ConfigForm)
        await set_input(pilot, "training.lr", "-1")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert form.current == "training.lr" and "must be above 0" in form.errors["training.lr"]
        lines = form_lines(app)
        lr = next(i for i, line in enumerate(lines) if line.startswith(" lr "))
        assert "-1" in lines[lr] and "must be above 0" in lines[lr + 1]  # the error right under its field
        await set_input(pilot, "training.lr", "0.01")
        await set_input(pilot, "model.widths", "[4, 0]")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert list(form.errors) == ["model.widths"]
    assert not runs_dir.exists()


async def test_open_a_saved_run_and_switch_the_axis(tmp_path):
    runs_dir = tmp_path / "runs"
    run_dir = create_run(runs_dir, smoke_config("training.steps=60"))
    assert execute(run_dir, threading.Event()) == "finished"
    app = ExplorerApp(runs_dir, run_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: expected_alpha(run_dir) in alpha_text(app))
        form = app.screen.query_one(ConfigForm)
        assert form.validated() == Run(run_dir).config  # the form shows the run's own config
        await pilot.press("ctrl+x")
        await until(pilot, lambda: "α vs width = " in alpha_text(app))
        assert expected_alpha(run_dir, "width") in alpha_text(app)
        bar = str(app.screen.query_one("#tab-bar", Static).render())
        await pilot.click("#tab-bar", offset=(bar.index("Table") + 1, 0))  # the panel names are links too
        assert app.screen.query_one("#widths").display and not app.screen.query_one("#plot").display


async def test_the_live_view_follows_a_run_started_by_the_cli(tmp_path):
    runs_dir = tmp_path / "runs"
    result = run_cli("run", "smoke", "--detach", "--runs-dir", str(runs_dir), "--set", "training.steps=400")
    assert result.returncode == 0, result.stderr
    run_dir = runs_dir / result.stdout.strip()
    app = ExplorerApp(runs_dir, run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        seen = set()
        await until(pilot, lambda: seen.add(str(app.screen.sub_title)) or "finished" in str(app.screen.sub_title))
        assert any("running" in s for s in seen) or Run(run_dir).status().duration < 2
        await until(pilot, lambda: expected_alpha(run_dir) in alpha_text(app))
        await pilot.press("f5")  # the event log tab
        events = app.screen.query_one("#log")
        await until(pilot, lambda: any("width 16 finished" in line.text for line in events.lines), timeout=10)


async def test_save_the_form_as_a_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALETUI_PRESETS_DIR", str(tmp_path / "presets"))
    app = ExplorerApp(tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await set_input(pilot, "training.steps", "123")
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog_input = app.screen.query_one(Input)
        dialog_input.value = "my sweep"
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "presets" / "my-sweep.toml").exists(), timeout=10)
    saved = load_config(tmp_path / "presets" / "my-sweep.toml")
    assert saved.training.steps == 123 and saved.name == "my-sweep"


async def test_the_form_is_filled_from_the_keyboard_on_a_small_terminal(tmp_path):
    app = ExplorerApp(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        editor = app.screen.query_one("#field-editor", Input)
        assert app.focused is editor and form.current == "name" and editor.value == "smoke"
        await pilot.click("#field-list", offset=(3, 3))  # the device line, under the heading and name, description
        assert form.current == "device" and editor.value == "auto"
        await pilot.press("right")  # a field with choices steps through them
        assert form.texts["device"] == "cpu" and editor.value == "cpu"
        await pilot.press("up", "up", *["backspace"] * len("smoke"), *"keys")
        assert form.current == "name" and form.texts["name"] == "keys"
        await pilot.press("enter", "tab", "tab")  # enter and tab move on: description, device, target.kind
        assert form.current == "target.kind"
        paths = [path for path, _ in field_paths()]
        downs = paths.index("data.fresh") - paths.index("target.kind")
        await pilot.press(*["down"] * downs, "left")  # to data.fresh, a switch: ←/→ flip it
        assert form.current == "data.fresh" and form.texts["data.fresh"] == "true"
        await pilot.press("ctrl+u")  # delete to the start: an empty field is an error, not a hidden default
        assert form.validated() is None and list(form.errors) == ["data.fresh"]
        await pilot.press("right", "right")  # from empty: true, then false
        cfg = form.validated()
        assert cfg is not None and (cfg.name, cfg.device, cfg.data.fresh) == ("keys", "cpu", False)
        assert "fresh" in "".join(form_lines(app))  # the list scrolled to keep the current field in view


async def test_a_teacher_runs_alpha_line_shows_the_measured_dimension(tmp_path):
    cfg = smoke_config(
        'target.kind="teacher"', "target.input_dim=20", "target.intrinsic_dim=2", "target.domain=[-0.5, 0.5]",
        "data.n_test=1000", "model.widths=[4, 8]", "training.steps=20",
    )  # fmt: skip
    run_dir = create_run(tmp_path / "runs", cfg)
    assert execute(run_dir, threading.Event()) == "finished"
    expected = analyze_run(Run(run_dir), FitOptions(resamples=0)).intrinsic.dimension
    app = ExplorerApp(tmp_path / "runs", run_dir)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: "TwoNN d = " in alpha_text(app))
        assert f"TwoNN d = {expected:.2f} → 4/d = {4 / expected:.2f}" in alpha_text(app)
        assert abs(expected - 2) < 0.3


@pytest.fixture(scope="module")
def finished_smoke(tmp_path_factory) -> tuple[Path, Path]:
    """One finished smoke run (runs directory, run directory), trained once for the tests that only read it."""
    runs_dir = tmp_path_factory.mktemp("explorer") / "runs"
    run_dir = create_run(runs_dir, smoke_config())
    assert execute(run_dir, threading.Event()) == "finished"
    return runs_dir, run_dir


async def test_a_finished_runs_alpha_line_shows_what_fit_json_prints(finished_smoke):
    runs_dir, run_dir = finished_smoke
    result = run_cli("fit", run_dir.name, "--runs-dir", str(runs_dir), "--json")
    assert result.returncode == 0, result.stderr
    [printed] = json.loads(result.stdout)

    def fit_of(numbers: dict) -> PowerLawFit:
        return PowerLawFit(numbers["alpha"], numbers["k"], numbers["l_inf"], numbers["r2"], numbers["ci_low"],
                           numbers["ci_high"], x_axis=printed["x_axis"])  # fmt: skip

    alpha, variance = alpha_numbers(fit_of(printed["fit"])), variance_numbers(fit_of(printed["variance_slope"]))
    app = ExplorerApp(runs_dir, run_dir)
    async with app.run_test(size=(200, 40)) as pilot:
        await until(pilot, lambda: "α vs N = " in alpha_text(app))
        line = alpha_text(app).replace("\n", " ")
        assert alpha in line and variance in line
        assert "live:" not in line  # a finished run is shown with the full bootstrap


def words(text: str) -> str:
    """Runs of spaces and line breaks collapsed: wrapping at another width moves the breaks, not the words."""
    return " ".join(text.split())


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_budget_and_local_slope_panels_show_the_clis_numbers(finished_smoke, size):
    runs_dir, run_dir = finished_smoke
    budget = analyze_budget(Run(run_dir))
    local = analyze_run(Run(run_dir), with_outputs=False).local
    app = ExplorerApp(runs_dir, run_dir)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: "α vs N = " in alpha_text(app))
        plot = app.screen.query_one("#plot")

        def shown() -> str:
            lines = plot.render_lines(Region(0, 0, *plot.size))
            return words(" ".join("".join(segment.text for segment in line) for line in lines))

        await pilot.press("f7")
        for line in budget_lines(budget):
            await until(pilot, lambda line=line: words(line.plain) in shown(), timeout=20)
        assert "α vs N at each step, 95% CI" in shown() and "median test loss vs step (log-log)" in shown()
        await pilot.press("f8")
        await until(pilot, lambda: "window" in shown(), timeout=20)
        for slope in local.pairs + local.windows:
            assert f"{slope.alpha:.3f} │ [{slope.ci_low:.3f}, {slope.ci_high:.3f}]" in shown()
        assert words(local_lines(local)[0].plain) in shown()
        bar = str(app.screen.query_one("#tab-bar", Static).render())
        assert "Budget F7" in bar and "Slopes F8" in bar


async def test_a_live_run_is_marked_with_its_resamples_and_shows_the_fit_once_finished(tmp_path):
    runs_dir = tmp_path / "runs"
    run = lottery_run(runs_dir, finished=False)
    app = ExplorerApp(runs_dir, run.dir)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: f"live: {LIVE_RESAMPLES} resamples" in alpha_text(app))
        assert alpha_numbers(analyze_run(run, FitOptions(resamples=LIVE_RESAMPLES)).fit) in alpha_text(app)
        writer = RunWriter(run.dir)
        writer.mark_ended("finished")
        writer.close()
        await until(pilot, lambda: "live:" not in alpha_text(app))
        assert expected_alpha(run.dir) in alpha_text(app)
        assert app.screen.snapshot.budget.options.resamples == DEFAULT_RESAMPLES
