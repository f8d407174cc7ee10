"""The explorer on a sweep over width × data size: the curve picked with ctrl+n is the one the table, the α
line, the seeds screen and the tickets screen show."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaletui.tui.app import ScaletuiApp
from scaletui.tui.explorer import ExplorerScreen
from scaletui.tui.seeds import SeedsScreen
from scaletui.tui.tickets import TicketsScreen
from tests.conftest import until
from tests.synthetic_runs import grid_run


async def test_ctrl_n_picks_the_curve_the_table_and_the_cell_screens_show(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    run = grid_run(runs_dir)
    app = ScaletuiApp(runs_dir, open_run=run.dir)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen) and app.screen.snapshot is not None)
        explorer = app.screen
        assert [label for label, _ in explorer.snapshot.curves] == ["D=64", "D=256", "D=1024"]
        first = explorer.snapshot.analysis.widths[0].median
        await pilot.press("ctrl+n")
        await until(pilot, lambda: explorer.snapshot.selected == 1)
        models = run.models()
        at = models.test_loss[(models.width == 2) & (models.n_train == 256)]
        shown = explorer.snapshot.analysis.widths[0].median
        assert shown == float(np.median(at)) and shown != first  # the table's first row is D=256's width 2
        await pilot.press("f10")
        await until(pilot, lambda: isinstance(app.screen, SeedsScreen) and app.screen.analysis is not None)
        assert "D=256" in app.screen.sub_title
        assert [w.seeds for w in app.screen.analysis.widths] == [12, 12, 12, 12]  # one cell's seeds, not three
        await pilot.press("escape", "f6")
        await until(pilot, lambda: isinstance(app.screen, TicketsScreen) and app.screen.view is not None)
        assert "D=256" in app.screen.sub_title and app.screen.view.widths == (2, 4, 8, 16)


async def test_ctrl_n_is_not_offered_for_a_run_over_width_alone(tmp_path: Path) -> None:
    from tests.synthetic_runs import lottery_run

    run = lottery_run(tmp_path / "runs")
    app = ScaletuiApp(tmp_path / "runs", open_run=run.dir)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen) and app.screen.snapshot is not None)
        assert app.screen.check_action("next_curve", ()) is False
        assert len(app.screen.snapshot.curves) == 1 and app.screen.snapshot.curves[0][0] == ""


async def test_the_explorer_reads_a_run_one_snapshot_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """A run slower to analyse than the refresh interval (10⁵ models: seconds) is not read by several threads
    at once: a refresh asked for meanwhile waits for the read in flight, then reads once."""
    import threading
    import time

    from scaletui.tui.watch import RunWatcher

    run = grid_run(tmp_path / "runs")
    original, inside, most, calls = RunWatcher.snapshot, [0], [0], [0]
    lock = threading.Lock()

    def slow(self, *args, **kwargs):
        with lock:
            inside[0] += 1
            calls[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(1.0)  # longer than the explorer's refresh interval
        try:
            return original(self, *args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(RunWatcher, "snapshot", slow)
    app = ScaletuiApp(tmp_path / "runs", open_run=run.dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen) and app.screen.snapshot is not None)
        for _ in range(5):
            app.screen.refresh_snapshot()
        await until(pilot, lambda: calls[0] >= 3)
    assert most[0] == 1


async def test_events_that_arrive_while_the_log_is_hidden_are_written_when_it_is_shown(tmp_path: Path) -> None:
    """The event log writes lines only while shown (a write lays the screen out); none is lost meanwhile."""
    from rich.text import Text

    from scaletui.tui.panels import EventLog
    from tests.synthetic_runs import lottery_run

    run = lottery_run(tmp_path / "runs")
    app = ScaletuiApp(tmp_path / "runs", open_run=run.dir)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen) and app.screen.snapshot is not None)
        log = app.screen.query_one(EventLog)
        await pilot.press("f5")
        await pilot.press("f1")
        before = len(log.lines)
        for i in range(3):
            log.add(Text(f"arrived while hidden {i}"))
        assert len(log.lines) == before  # not written while another panel is shown
        await pilot.press("f5")
        await until(pilot, lambda: len(log.lines) == before + 3)
        assert "arrived while hidden 2" in log.lines[-1].text
