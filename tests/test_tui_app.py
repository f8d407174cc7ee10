"""The whole app through the pilot: from the runs screen to a new sweep and back, and quitting with a run live."""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable, Static

from scaletui.store import Run, list_runs
from scaletui.tui.app import QuitDialog, ScaletuiApp
from scaletui.tui.explorer import ExplorerScreen
from scaletui.tui.form import ConfigForm
from scaletui.tui.runs import RunsScreen
from tests.conftest import checkpointed_unfinished, until


async def start_from_form(pilot, runs_dir, *settings: tuple[str, str]):
    await pilot.press("n")
    await until(pilot, lambda: isinstance(pilot.app.screen, ExplorerScreen) and pilot.app.screen.is_mounted)
    await pilot.pause()
    for path, value in settings:
        pilot.app.screen.query_one(ConfigForm).set_text(path, value)
    await pilot.press("ctrl+r")
    await until(pilot, lambda: runs_dir.is_dir() and len(list_runs(runs_dir)) == 1)
    return list_runs(runs_dir)[0].path


async def test_new_sweep_from_the_runs_screen_and_back(tmp_path):
    runs_dir = tmp_path / "runs"
    app = ScaletuiApp(runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        run_dir = await start_from_form(pilot, runs_dir, ("training.steps", "100"))
        await until(pilot, lambda: Run(run_dir).status().status == "finished")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1 and "finished" in str(table.get_row_at(0)))
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, timeout=10)


@pytest.mark.parametrize("choice", ["s", "l"])
async def test_quitting_with_a_live_run_asks_whether_to_stop_it(tmp_path, choice):
    runs_dir = tmp_path / "runs"
    app = ScaletuiApp(runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        run_dir = await start_from_form(pilot, runs_dir, ("training.steps", "200000"), ("model.widths", "[64]"))
        await until(pilot, lambda: Run(run_dir).status().status == "running")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitDialog))
        await pilot.press(choice)
        await until(pilot, lambda: not app.is_running, timeout=10)
    run = Run(run_dir)
    try:
        if choice == "s":
            deadline = time.monotonic() + 60
            while run.status().status == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert run.status().status == "stopped"
        else:  # left running: a new app finds it live
            assert run.status().status == "running"
            again = ScaletuiApp(runs_dir)
            async with again.run_test(size=(120, 40)) as pilot:
                table = None
                await until(pilot, lambda: isinstance(again.screen, RunsScreen))
                table = again.screen.query_one(DataTable)
                await until(pilot, lambda: table.row_count == 1 and "running" in str(table.get_row_at(0)))
    finally:
        from scaletui.runner import request_stop

        request_stop(run)


async def test_stop_then_resume_from_the_explorer_continues_from_the_checkpoint(tmp_path):
    runs_dir = tmp_path / "runs"
    app = ScaletuiApp(runs_dir)
    async with app.run_test(size=(160, 40)) as pilot:
        # Seconds of training on the fused kernel too (about 2 G unit activations), so a checkpoint is caught live.
        settings = (("training.steps", "30000"), ("training.eval_every", "1000"), ("seeds.count", "2"))
        settings += (("model.widths", "[128]"),)
        run_dir = await start_from_form(pilot, runs_dir, *settings, ("execution.checkpoint_seconds", "0.05"))
        await until(pilot, lambda: checkpointed_unfinished(run_dir))
        await pilot.press("ctrl+t")
        await until(pilot, lambda: Run(run_dir).status().status == "stopped")
        [saved] = Run(run_dir).checkpoints()
        progress = app.screen.query_one("#progress", Static)
        shown = f"checkpoints: width 128 at step {saved['step']:,}"
        await until(pilot, lambda: shown in str(progress.content))
        notes: list[str] = []
        notify = app.notify
        app.notify = lambda message, **kw: (notes.append(message), notify(message, **kw))[1]  # type: ignore[method-assign]
        await pilot.press("ctrl+e")
        await until(pilot, lambda: any(n.startswith("resuming") for n in notes))
        assert notes == [f"resuming {run_dir.name}: width 128 from step {saved['step']:,}"]
        await until(pilot, lambda: Run(run_dir).status().status == "finished", timeout=120)
        await until(pilot, lambda: "finished" in str(app.screen.sub_title))
    assert len(Run(run_dir).models()) == 2
    assert f"width 128: from step {saved['step']:,}" in [m for _, _, _, m in Run(run_dir).events()]
