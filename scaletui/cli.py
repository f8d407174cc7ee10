"""The command line: a thin face over the core. Every command reads or starts runs through the store."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from scaletui.config import DEVICES, Config, ConfigError, describe_target, load_config, parameter_count
from scaletui.presets import list_presets, resolve_preset
from scaletui.store import Run, StoreError, list_runs, open_run

app = typer.Typer(
    help="scaletui: run neural scaling-law sweeps (width × seed), watch the law form, fit and export it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)

RunsDir = Annotated[
    Path,
    typer.Option("--runs-dir", envvar="SCALETUI_RUNS_DIR", help="Directory holding run directories."),
]
DEFAULT_RUNS_DIR = Path("runs")


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Bad input ends in one line naming the field or file, never a traceback."""
    try:
        yield
    except (ConfigError, StoreError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _widths_label(widths: tuple[int, ...]) -> str:
    return f"{widths[0]}–{widths[-1]} ({len(widths)})" if len(widths) > 1 else str(widths[0])


STATUS_STYLE = {
    "running": "bold green",
    "finished": "cyan",
    "stopped": "yellow",
    "failed": "bold red",
    "dead": "bold red",
    "created": "dim",
    "damaged": "bold magenta",
}


class SweepProgress:
    """Rich progress bars fed from the store: overall and per width (step, median loss, ETA)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.steps = cfg.training.steps
        self.progress = Progress(
            TextColumn("{task.description}", justify="right"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            expand=True,
        )
        # Wide nets cost more per step; weight the overall bar by a rough per-width cost so its ETA is sane.
        self.cost = {
            w: cfg.seeds.count * (2000 + parameter_count(cfg.target.input_dim, w, cfg.model.hidden_layers))
            for w in cfg.model.widths
        }
        total = sum(self.cost.values())
        self.overall = self.progress.add_task("[bold]all widths", total=total, info="")
        self.tasks: dict[int, TaskID] = {
            w: self.progress.add_task(f"width {w}", total=self.steps, info="waiting")
            for w in cfg.model.widths
        }

    def update(self, run: Run) -> None:
        done: dict[int, float] = {}
        for row in run.progress():
            done[row["width"]] = done.get(row["width"], 0.0) + row["step"] * row["models"]
        latest = run.latest_test_losses()
        for w, task in self.tasks.items():
            step = done.get(w, 0.0) / self.cfg.seeds.count
            info = "waiting"
            if w in latest:
                losses = latest[w][1]
                finite = losses[np.isfinite(losses)]
                median = f"{np.median(finite):.2e}" if finite.size else "NaN"
                info = f"step {int(step):>{len(str(self.steps))}}/{self.steps}  median {median}"
            self.progress.update(task, completed=step, info=info)
        overall = sum(
            self.cost[w] * min(1.0, done.get(w, 0.0) / (self.cfg.seeds.count * self.steps)) for w in self.cost
        )
        self.progress.update(self.overall, completed=overall)


def _summary_table(run: Run) -> Table:
    models = run.models()
    cfg = run.config
    table = Table(title=f"{run.id}: final test loss per width", title_justify="left")
    for name in ("width", "params", "seeds", "median", "IQR", "diverged"):
        table.add_column(name, justify="right")
    for w in cfg.model.widths:
        mask = models.width == w
        losses = models.test_loss[mask & ~models.diverged]
        iqr = "–"
        median = "–"
        if losses.size:
            q1, med, q3 = np.quantile(losses, [0.25, 0.5, 0.75])
            median, iqr = f"{med:.3e}", f"{q1:.2e}–{q3:.2e}"
        diverged = int(models.diverged[mask].sum())
        table.add_row(
            str(w),
            str(parameter_count(cfg.target.input_dim, w, cfg.model.hidden_layers)),
            f"{int(mask.sum())}/{cfg.seeds.count}",
            median,
            iqr,
            f"[red]{diverged}[/]" if diverged else "0",
        )
    return table


def _watch(run_dir: Path, proc: subprocess.Popen[bytes]) -> int:
    """Follow a foreground runner through the store until it exits; Ctrl-C asks it to stop cleanly."""
    run = Run(run_dir)
    bars = SweepProgress(run.config)
    interrupted = False
    with bars.progress:
        while proc.poll() is None:
            try:
                bars.update(run)
                proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                continue
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    err.print("[yellow]stopping: saving what exists (Ctrl-C again to abandon)…[/]")
                    proc.send_signal(signal.SIGINT)
                else:
                    proc.kill()
        bars.update(run)
    return proc.returncode


@app.command()
def run(
    preset: Annotated[
        str | None,
        typer.Argument(help="A preset name (see `scaletui presets`) or a TOML file.", show_default=False),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="Override a config value, e.g. --set training.lr=3e-3 (repeatable)."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = None,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    detach: Annotated[
        bool, typer.Option(help="Run in the background, outliving this terminal; prints the run id.")
    ] = False,
    resume: Annotated[
        str | None, typer.Option(help="Finish an interrupted run (id, prefix, path or 'latest') instead.")
    ] = None,
) -> None:
    """Run a sweep: train every (width, seed) model of a preset and save it as a run directory."""
    from scaletui.engine import resolve_device
    from scaletui.runner import create_run, start_runner
    from scaletui.targets import build_target

    with friendly_errors():
        if resume is not None:
            if preset is not None or set_:
                fail("--resume takes no preset or --set: the run's own config.toml is used")
            found = open_run(runs_dir, resume)
            status = found.status().status
            if status in ("running", "created"):
                fail(f"run {found.id} is {status}; stop it before resuming")
            if status == "finished":
                out.print(f"run {found.id} is already finished; nothing to resume")
                return
            run_dir = found.dir
            cfg = found.config
        else:
            if preset is None:
                fail("give a preset name or a TOML file (see `scaletui presets`), or --resume RUN")
            overrides = list(set_ or [])
            if device is not None:
                if device not in DEVICES:
                    fail(f"--device: must be one of {', '.join(DEVICES)}; got {device!r}")
                overrides.append(f"device={device}")
            cfg = load_config(resolve_preset(preset), overrides)
            build_target(
                cfg.target
            )  # a formula that is not finite on its domain fails here, not in the runner
            resolve_device(cfg.device)
            run_dir = create_run(runs_dir, cfg)
        proc = start_runner(run_dir, detach=detach, resume=resume is not None)
        if detach:
            out.print(run_dir.name)
            err.print(f"running in the background (pid {proc.pid}); follow with `scaletui ls` or the TUI")
            return
        err.print(f"run [bold]{run_dir.name}[/] → {run_dir}", highlight=False)
        returncode = _watch(run_dir, proc)
        finished = Run(run_dir)
        status = finished.status()
        out.print(_summary_table(finished))
        duration = _format_duration(status.duration)
        if status.status == "finished":
            out.print(f"[cyan]finished[/] in {duration}: {run_dir}", highlight=False)
            return
        if status.status == "stopped":
            err.print(
                f"[yellow]stopped[/] after {duration}; resume with `scaletui run --resume {run_dir.name}`"
            )
            raise typer.Exit(130)
        reason = status.error or f"runner exited with code {returncode}; see {run_dir / 'runner.log'}"
        fail(f"run {run_dir.name} {status.status}: {reason}", code=1)


@app.command("ls")
def list_command(runs_dir: RunsDir = DEFAULT_RUNS_DIR) -> None:
    """List the runs in the runs directory, oldest first, with their status (dead = runner gone)."""
    runs = list_runs(runs_dir)
    if not runs:
        err.print(f"no runs in {runs_dir}")
        return
    table = Table(show_edge=False, pad_edge=False)
    for name in ("id", "name", "status", "target", "act", "widths", "seeds", "started", "duration"):
        table.add_column(name, no_wrap=name in ("id", "status", "started"), overflow="fold")
    for item in runs:
        if item.run is None or item.status is None:
            table.add_row(item.id, "", "[bold magenta]damaged[/]", item.error or "", "", "", "", "", "")
            continue
        cfg, st = item.run.config, item.status
        started = datetime.fromtimestamp(st.started).strftime("%Y-%m-%d %H:%M") if st.started else "–"
        table.add_row(
            item.id,
            cfg.name,
            f"[{STATUS_STYLE.get(st.status, '')}]{st.status}[/]",
            describe_target(cfg.target),
            cfg.model.activation,
            _widths_label(cfg.model.widths),
            str(cfg.seeds.count),
            started,
            _format_duration(st.duration),
        )
    out.print(table)


@app.command()
def presets() -> None:
    """List the presets: shipped ones and those in your presets directory."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("preset", no_wrap=True, style="bold")
    table.add_column("from", no_wrap=True)
    table.add_column("description")
    for info in list_presets():
        table.add_row(info.name, info.origin, info.description)
    out.print(table)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
