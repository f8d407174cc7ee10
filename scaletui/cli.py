"""The command line: a thin face over the core. Every command reads or starts runs through the store."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import typer
import typer.core
from rich.cells import cell_len
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from scaletui.analysis import (
    AGGREGATES,
    BOOTSTRAP_SEED,
    DEFAULT_RESAMPLES,
    X_AXES,
    FitOptions,
    analyze_budget,
    analyze_run,
    selection_warning,
)
from scaletui.config import (
    DEVICES,
    EXECUTORS,
    Config,
    ConfigError,
    Group,
    describe_config,
    describe_target,
    load_config,
    reference_toml,
    widths_label,
)
from scaletui.export import FORMATS, export_csv, export_to_file
from scaletui.grid import axis_of, slices
from scaletui.joint import JOINT_RESAMPLES, analyze_joint
from scaletui.lottery import DEFAULT_TOLERANCE, inspect_run, run_ensemble_comparison
from scaletui.present import AXIS_NAMES, ONE_LAYER_ONLY, STATUS_STYLE, dead_runner, duration, group_label, started
from scaletui.presets import list_presets, resolve_preset
from scaletui.report import (
    basins_line,
    budget_lines,
    budget_table,
    checkpoints_line,
    ensemble_table,
    exclusions_line,
    fit_line,
    joint_json,
    joint_lines,
    local_lines,
    local_table,
    pair_table,
    seeds_lines,
    seeds_table,
    selection_lines,
    theory_line,
    ticket_summary,
    variance_line,
    width_table,
)
from scaletui.seeds import UNITS as SEED_UNITS
from scaletui.seeds import analyze_seeds, seeds_record
from scaletui.store import (
    ACTIVE_STATUSES,
    Run,
    StoreError,
    delete_run,
    list_runs,
    open_run,
    removable_run,
    runner_lock_held,
)

app = typer.Typer(
    help=(
        "scaletui: run neural scaling-law sweeps (width × seed), watch the law form, fit and export it. "
        "With no command, opens the terminal app on the runs directory."
    ),
    invoke_without_command=True,
    add_completion=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)


def _flags_take_no_value() -> None:
    """Typer 0.29's help shows a flag's type (``--json <bool>``), which reads as if it took a value, so users
    wrote ``--json true`` and "true" was taken for a run. A flag's type is not shown. Written against Typer
    0.29; tests/test_cli_newuser.py fails if a flag shows a type again."""
    show_type = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else show_type(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()

RunsDir = Annotated[
    Path,
    typer.Option("--runs-dir", envvar="SCALETUI_RUNS_DIR", help="Directory holding run directories."),
]
DEFAULT_RUNS_DIR = Path("runs")


def _run_tui(runs_dir: Path, open_run: Path | None = None) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("the terminal app needs an interactive terminal; see `scaletui --help` for the headless commands")
    from scaletui.tui.app import ScaletuiApp  # lazy: Textual takes a noticeable part of a second to import

    ScaletuiApp(runs_dir, open_run).run()


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # text, not markup
    raise typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Bad input ends in one line naming the field or file, never a traceback."""
    try:
        yield
    except (ConfigError, StoreError) as exc:
        fail(str(exc))
    except BrokenPipeError:
        raise  # `scaletui export … | head`: click ends quietly when the reader leaves
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


class SweepProgress:
    """Rich progress bars fed from the store: overall (with the store's ETA, the explorer's) and per width
    (step, median loss).

    The ETA is :meth:`Run.remaining_seconds`, not rich's own: rich extrapolates each bar's recent speed,
    which prices the wide widths still to come at the narrow ones' rate and counts a resume's head start as
    speed."""

    def __init__(self, cfg: Config) -> None:
        self.steps = cfg.training.steps
        self.progress = Progress(
            TextColumn("{task.description}", justify="right"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=err,
            expand=True,
        )
        self.overall = self.progress.add_task("[bold]all widths", total=1.0, info="", eta="ETA –")
        sizes, depths = len(cfg.data_sizes), len(cfg.depths)
        self.tasks: dict[Group, TaskID] = {
            Group(w, n, d): self.progress.add_task(
                group_label(w, n, d, sizes, depths), total=self.steps, info="waiting", eta=""
            )
            for n, d in cfg.cells
            for w in cfg.model.widths
        }

    def update(self, run: Run) -> None:
        fraction, steps = run.progress_fraction()
        latest = run.latest_test_losses()
        for group, task in self.tasks.items():
            info = "waiting"
            if group in latest:
                finite = latest[group][1][np.isfinite(latest[group][1])]
                median = f"{np.median(finite):.2e}" if finite.size else "NaN"
                info = f"step {steps[group]:>{len(str(self.steps))}}/{self.steps}  median {median}"
            self.progress.update(task, completed=steps[group], info=info)
        status = run.status()
        left = run.remaining_seconds(status)
        eta = "" if status.status != "running" else f"ETA {'–' if left is None else duration(left)}"
        self.progress.update(self.overall, completed=fraction, eta=eta)


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


@app.callback()
def main_callback(ctx: typer.Context, runs_dir: RunsDir = DEFAULT_RUNS_DIR) -> None:
    """Open the terminal app when no command is given."""
    source = ctx.get_parameter_source("runs_dir")
    if source is not None and source.name == "COMMANDLINE":  # by name: Typer may bundle its own Click
        # `scaletui --runs-dir D ls` means D for the subcommand too. Click parses a subcommand's options after
        # this callback returns, and reads the environment before any default: setting the variable here gives
        # D to every subcommand while an explicit `ls --runs-dir E` still wins.
        os.environ["SCALETUI_RUNS_DIR"] = str(runs_dir)
    if ctx.invoked_subcommand is None:
        _run_tui(runs_dir)


@app.command("open")
def open_command(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, path, or 'latest'.")],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
) -> None:
    """Open the terminal app straight into one run (live if it is still running)."""
    with friendly_errors():
        found = open_run(runs_dir, run_ref)
    _run_tui(runs_dir, found.dir)


@app.command()
def run(
    preset: Annotated[
        str | None,
        typer.Argument(help="A preset name (see `scaletui presets`) or a TOML file.", show_default=False),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="Override a config value, e.g. --set training.lr=3e-3 (repeatable); `scaletui config` lists the keys.",
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = None,
    executor: Annotated[
        str | None, typer.Option(help="local (this machine) or ray (one Ray task per shard); see the README.")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster: auto (the one this machine belongs to), HOST:PORT, or local.")
    ] = None,
    gpus_per_shard: Annotated[
        float | None, typer.Option(help="GPUs each Ray shard reserves and trains on (0: CPU only).")
    ] = None,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    detach: Annotated[
        bool, typer.Option(help="Run in the background, outliving this terminal; prints the run id.")
    ] = False,
    resume: Annotated[
        str | None, typer.Option(help="Finish an interrupted run (id, prefix, path or 'latest') instead.")
    ] = None,
) -> None:
    """Run a sweep: train every (width, seed) model of a preset and save it as a run directory."""
    from scaletui.runner import LOCKED_EXIT_CODE, launch, start_runner  # lazy: it imports torch

    with friendly_errors():
        if resume is not None:
            if preset is not None or set_ or any(o is not None for o in (device, executor, address, gpus_per_shard)):
                fail("--resume takes no preset, --set or config options: the run's own config.toml is used")
            found = open_run(runs_dir, resume)
            status = found.status().status
            if status in ACTIVE_STATUSES or runner_lock_held(found.dir):
                fail(f"run {found.id} is {status} and its runner is alive; stop it before resuming")
            if status == "finished":
                out.print(f"run {found.id} is already finished; nothing to resume", markup=False)
                return
            run_dir = found.dir
            proc = start_runner(run_dir, detach=detach, resume=True)
        else:
            if preset is None:
                fail("give a preset name or a TOML file (see `scaletui presets`), or --resume RUN")
            overrides = list(set_ or [])
            if device is not None:
                if device not in DEVICES:
                    fail(f"--device: must be one of {', '.join(DEVICES)}; got {device!r}")
                overrides.append(f"device={device}")
            if executor is not None:
                if executor not in EXECUTORS:
                    fail(f"--executor: must be one of {', '.join(EXECUTORS)}; got {executor!r}")
                overrides.append(f"execution.executor={executor}")
            if address is not None:
                overrides.append(f"execution.address={address}")
            if gpus_per_shard is not None:
                overrides.append(f"execution.gpus_per_shard={gpus_per_shard!r}")
            run_dir, proc = launch(load_config(resolve_preset(preset), overrides), runs_dir, detach=detach)
        if detach:
            out.print(run_dir.name)
            err.print(f"running in the background (pid {proc.pid}); follow with `scaletui ls` or the TUI")
            return
        err.print(Text.assemble("run ", (run_dir.name, "bold"), f" → {run_dir}"), highlight=False)
        returncode = _watch(run_dir, proc)
        finished = Run(run_dir)
        status = finished.status()
        cfg = finished.config  # along width, unless the sweep holds one width and varies data size or depth
        axis = "width"
        if len(cfg.model.widths) == 1 and cfg.is_grid:
            axis = "data" if len(cfg.data_sizes) > 1 else "depth"
        options = _fit_options(axis if axis != "width" else "params", "median")
        for curve in slices(finished, axis):  # one table, or one per data size and depth of a grid
            analysis = analyze_run(curve, options)
            per = AXIS_NAMES[axis]
            title = f"{finished.id}: final test loss per {per}" + (f" at {curve.label}" if curve.label else "")
            out.print(width_table(analysis, compact=out.width < 120, title=title))
            out.print(fit_line(analysis))
        took = duration(status.duration)
        if status.status == "finished":
            out.print(Text.assemble(("finished", "cyan"), f" in {took}: {run_dir}"), highlight=False)
            return
        if status.status == "stopped":
            err.print(
                Text.assemble(
                    ("stopped", "yellow"), f" after {took}; resume with `scaletui run --resume {run_dir.name}`"
                )
            )
            raise typer.Exit(130)
        if returncode == LOCKED_EXIT_CODE:
            fail(f"run {run_dir.name} already has a live runner; this one started nothing")
        reason = status.error or f"runner exited with code {returncode}; see {run_dir / 'runner.log'}"
        fail(f"run {run_dir.name} {status.status}: {reason}", code=1)


@app.command("ls")
def list_command(runs_dir: RunsDir = DEFAULT_RUNS_DIR) -> None:
    """List the runs in the runs directory, oldest first, with their status (dead = runner gone).

    started: when the run first started (a resume keeps it); duration: the time it trained, summed over its
    runner sessions (the time it waited stopped is not counted).
    """
    runs = list_runs(runs_dir)
    if not runs:
        err.print(f"no runs in {runs_dir}", markup=False)
        return
    columns = ["id", "name", "status", "target", "widths", "seeds", "started", "act", "duration"]
    damaged: list[str] = []
    rows: list[dict[str, Text | str]] = []
    for item in runs:
        if item.run is None or item.status is None:
            rows.append({"id": Text(item.id), "status": Text("damaged", style="bold magenta")})
            damaged.append(f"{item.id}: {item.error}")
            continue
        cfg, st = item.run.config, item.status
        rows.append(
            {
                "id": Text(item.id),  # user text is data, never markup
                "status": Text(st.status, style=STATUS_STYLE.get(st.status, "")),
                "name": Text(cfg.name),
                "target": Text(describe_target(cfg.target)),
                "act": cfg.model.activation,
                "widths": widths_label(cfg.model.widths),
                "seeds": str(cfg.seeds.count),
                "started": started(st.started),
                "duration": duration(st.duration),
            }
        )
    columns, rows = _fit_listing(columns, rows, out.width)
    # The short columns are never cut (a table of no_wrap columns is shrunk evenly, which cut the start
    # time); the free-text ones share what is left, folding onto a second line rather than losing their end.
    widths = {c: max(len(c), *(cell_len(str(row.get(c, ""))) for row in rows)) for c in columns}  # wide glyphs: 2
    free = [c for c in columns if c in ("name", "target")]  # the id never folds: _fit_listing made it fit
    room = out.width - sum(widths[c] for c in columns if c not in free) - 2 * (len(columns) - 1)
    for i, name in enumerate(free):
        widths[name] = min(widths[name], max(8, room - 8 * (len(free) - 1 - i)))  # never wider than its text
        room -= widths[name]
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, no_wrap=name not in free, overflow="fold", width=widths[name])
    for row in rows:
        table.add_row(*(row.get(c, "") for c in columns))
    out.print(table)
    for line in damaged:
        out.print(Text.assemble(("damaged", "magenta"), f" {line}"), highlight=False, soft_wrap=True)


# `ls` on a narrow terminal: the columns kept, most useful first; the rest go from the end of this list.
LS_KEPT_FIRST = ("id", "name", "status", "started", "widths", "seeds", "target", "duration", "act")
LS_NAME_ROOM = 24  # a longer name folds onto a second line rather than costing the columns after it


def short_ids(ids: list[str]) -> dict[str, str]:
    """Each id cut after its first ``-``-separated parts (two at least: the date and time) that begin no other
    id: a unique prefix, which every command takes as RUN."""
    short = {}
    for run_id in ids:
        parts = run_id.split("-")
        for n in range(min(2, len(parts)), len(parts) + 1):
            prefix = "-".join(parts[:n])
            if not any(other != run_id and other.startswith(prefix) for other in ids):
                break
        short[run_id] = prefix
    return short


def _fit_listing(
    columns: list[str], rows: list[dict[str, Text | str]], width: int
) -> tuple[list[str], list[dict[str, Text | str]]]:
    """The columns of `ls` that fit ``width`` (id, name, status and start always), in ``columns``' order, and the
    rows, their ids shortened to a unique prefix when the whole ids leave no room for the name."""

    def cells(column: str) -> int:
        cell = max(len(column), *(cell_len(str(row.get(column, ""))) for row in rows))
        return min(cell, LS_NAME_ROOM) if column == "name" else cell

    def used(kept: list[str]) -> int:
        return sum(cells(c) for c in kept) + 2 * (len(kept) - 1)

    kept = list(LS_KEPT_FIRST[:4])
    if used(kept) > width:
        short = short_ids([str(row["id"]) for row in rows])
        rows = [{**row, "id": Text(short[str(row["id"])])} for row in rows]
    for column in LS_KEPT_FIRST[4:]:
        if used([*kept, column]) > width:
            break
        kept.append(column)
    return [c for c in columns if c in kept], rows


@app.command("rm")
def remove(
    run_refs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Runs to delete (id, prefix or path).")],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete runs. A run that is still running is refused: stop it first."""
    with friendly_errors():
        if any(ref == "latest" for ref in run_refs):
            fail("name the run to delete; 'latest' is too easy to get wrong here")
        targets = [removable_run(runs_dir, ref) for ref in run_refs]
        if not yes:
            if not sys.stdin.isatty():
                fail("refusing to delete without confirmation; pass --yes")
            names = ", ".join(t.name for t in targets)
            if not typer.confirm(f"delete {names}?", default=False):
                raise typer.Exit(1)
        for target in targets:
            delete_run(target)
            out.print(f"deleted {target.name}", highlight=False, markup=False)


@app.command()
def presets() -> None:
    """List the presets: shipped ones and those in your presets directory."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("preset", no_wrap=True, style="bold")
    table.add_column("from", no_wrap=True)
    table.add_column("description")
    for info in list_presets():
        table.add_row(Text(info.name), info.origin, Text(info.description))
    out.print(table)


XAxis = Annotated[
    str,
    typer.Option(
        "--x",
        help="The x axis: width, params (parameter count N), data (training-set size D; one curve per width and "
        "depth) or depth (one curve per width and data size).",
    ),
]
Aggregate = Annotated[str, typer.Option("--aggregate", help="Per-width aggregate: median, mean or geomean.")]
MinWidth = Annotated[int | None, typer.Option("--min-width", help="Fit only widths at or above this.")]
MaxWidth = Annotated[int | None, typer.Option("--max-width", help="Fit only widths at or below this.")]
Offset = Annotated[bool, typer.Option("--offset", help="Fit L = L∞ + k·x^-α instead of L = k·x^-α.")]
Robust = Annotated[bool, typer.Option("--robust", help="Huber loss (δ = 1e-3) on log residuals.")]
Resamples = Annotated[int, typer.Option("--resamples", min=0, help="Bootstrap resamples for the 95% CI.")]
Seed = Annotated[int, typer.Option("--seed", help="Bootstrap random seed.")]
Unconverged = Annotated[
    bool,
    typer.Option(
        "--exclude-unconverged",
        help="Drop models whose loss was still falling at the end (kept by default: dropping selects by outcome).",
    ),
]


FIT_FLAGS = ("min_width", "max_width", "offset", "robust", "resamples", "seed", "exclude_unconverged")


def _fit_flags(given: dict[str, object]) -> dict[str, object]:
    """The fit flags a command declares (the Annotated options above), taken from its arguments by name, so
    that fit, export and plot hand them on in one line rather than nine."""
    return {name: given[name] for name in FIT_FLAGS if name in given}


def _fit_options(
    x: str,
    aggregate: str,
    *,
    min_width: int | None = None,
    max_width: int | None = None,
    offset: bool = False,
    robust: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    exclude_unconverged: bool = False,
) -> FitOptions:
    """The analysis options from a command's flags, refusing a choice outside its set in one line naming
    the flag (FitOptions itself would raise a ValueError without the flag's name)."""
    if x not in (*X_AXES, "data", "depth"):
        fail(f"--x: must be one of width, params, data, depth; got {x!r}")
    axis, x_axis = axis_of(x)
    if aggregate not in AGGREGATES:
        fail(f"--aggregate: must be one of {', '.join(AGGREGATES)}; got {aggregate!r}")
    if min_width is not None and max_width is not None and min_width > max_width:
        fail(f"--min-width {min_width} is above --max-width {max_width}")
    return FitOptions(
        x_axis=x_axis,
        axis=axis,
        aggregate=aggregate,
        min_width=min_width,
        max_width=max_width,
        offset=offset,
        robust=robust,
        resamples=resamples,
        seed=seed,
        exclude_unconverged=exclude_unconverged,
    )


def _header(run: Run) -> list[object]:
    st = run.status()
    lines: list[object] = [
        Text.assemble(
            (run.id, "bold"),
            "  ",
            (st.status, STATUS_STYLE.get(st.status, "")),
            f"  device {st.device or '–'}  duration {duration(st.duration)}",
        ),
        Text(describe_config(run.config), style="dim"),
    ]
    saved = checkpoints_line(run.checkpoints(), run.config.seeds.count)
    if saved is not None:
        lines.append(Text(saved, style="dim"))
    if st.error:
        lines.append(Text(f"error: {st.error}", style="red"))
    if st.status == "dead":
        lines.append(Text(dead_runner(run.id), style="red"))
    return lines


@app.command()
def show(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, path, or 'latest'.")],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    x: XAxis = "params",
    aggregate: Aggregate = "median",
    exclude_unconverged: Unconverged = False,
    plots: Annotated[bool, typer.Option(help="Draw the log-log plots.")] = True,
) -> None:
    """Summarise a run (finished or still running): per-width table, fitted α ± CI, variance, plots."""

    with friendly_errors():
        found = open_run(runs_dir, run_ref)
        options = _fit_options(x, aggregate, exclude_unconverged=exclude_unconverged)
        for line in _header(found):
            out.print(line)
        for curve in slices(found, options.axis):  # one curve, unless the run sweeps data size or depth
            if curve.label:
                out.print()
                out.rule(curve.label, align="left", style="dim")
            _show_curve(curve, options, plots)


def _show_curve(found, options: FitOptions, plots: bool) -> None:
    """``show``'s tables, fits, budget and plots of one curve of a run."""
    from scaletui.plots import alpha_step_plot, loss_plot, variance_plot  # lazy: plotext, for plots only

    analysis = analyze_run(found, options)
    other = None
    if options.axis == "width":
        other_axis = "width" if options.x_axis == "params" else "params"
        other = analyze_run(found, dataclasses.replace(options, x_axis=other_axis), with_outputs=False)
    out.print()
    out.print(width_table(analysis, compact=out.width < 110))
    out.print()
    out.print(fit_line(analysis))
    if other is not None:
        out.print(fit_line(other))
    out.print(variance_line(analysis.variance_slope))
    out.print(theory_line(analysis))
    for line in (exclusions_line(analysis), basins_line(analysis), *selection_lines(analysis)):
        if line is not None:
            out.print(line)
    out.print()
    _print_local(analysis)
    budget = analyze_budget(found, options)
    for line in budget_lines(budget):
        out.print(line)
    if not plots:
        return
    side_by_side = out.width >= 160
    plot_width = out.width // 2 - 1 if side_by_side else out.width
    plot_height = max(12, min(40, (out.height or 24) // (1 if side_by_side else 2)))
    color = out.is_terminal and not out.no_color
    models = found.models()
    pictures = [
        Text.from_ansi(loss_plot(analysis, models, plot_width, plot_height, color)),
        Text.from_ansi(variance_plot(analysis, plot_width, plot_height, color)),
    ]
    out.print(Columns(pictures) if side_by_side else pictures[0])
    if not side_by_side:
        out.print(pictures[1])
    if budget.steps.size:
        out.print(Text.from_ansi(alpha_step_plot(budget, min(out.width, 100), 12, color)))


@app.command()
def fit(
    run_refs: Annotated[
        list[str], typer.Argument(metavar="RUN...", help="One or more runs (id, prefix, path, latest).")
    ],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    x: XAxis = "params",
    aggregate: Aggregate = "median",
    min_width: MinWidth = None,
    max_width: MaxWidth = None,
    offset: Offset = False,
    robust: Robust = False,
    resamples: Resamples = DEFAULT_RESAMPLES,
    seed: Seed = BOOTSTRAP_SEED,
    exclude_unconverged: Unconverged = False,
    local: Annotated[
        bool, typer.Option("--local", help="Also the local slopes: between neighbouring widths and over three.")
    ] = False,
    budget: Annotated[
        bool, typer.Option("--budget", help="Also α at every evaluated step, α(step), and whether it settled.")
    ] = False,
    joint: Annotated[
        bool,
        typer.Option(
            "--joint",
            help="Fit L = E + A·N^-α + B·D^-β over the widths × data sizes of a run that sweeps data.n_train "
            f"(Huber on log residuals; bootstrap over seeds, {JOINT_RESAMPLES} resamples unless --resamples).",
        ),
    ] = False,
    depth: Annotated[
        int | None, typer.Option("--depth", help="With --joint: the depth to fit, in a run that sweeps depth.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list, one object per run (and per curve of a grid).")
    ] = False,
) -> None:
    """Fit the scaling law L ≈ k·x^-α (+ L∞) of one or more runs, with a seed-bootstrap 95% CI for α.

    A run that sweeps data size or depth gives one fit per curve: along width at each data size and depth
    (--x width or params), along data size at each width and depth (--x data), or along depth (--x depth).
    """
    with friendly_errors():
        options = _fit_options(x, aggregate, **_fit_flags(locals()))
        if budget and offset:
            fail("--offset: α(step) is fitted as a plain power law at each step; drop --offset or --budget")
        if joint:
            _fit_joint(run_refs, runs_dir, options, resamples, depth, as_json)
            return
        results = []
        for ref in run_refs:
            found = open_run(runs_dir, ref)
            curves = slices(found, options.axis)
            printed_id = False
            for curve in curves:
                analysis = analyze_run(curve, options)
                by_step = analyze_budget(curve, options) if budget else None
                if as_json:
                    fixed = {"axis": curve.axis, **dataclasses.asdict(curve.fixed)}
                    where = {"curve": fixed} if len(curves) > 1 else {}
                    results.append(_fit_json(curve, analysis, options, local) | where | _budget_json(by_step))
                    continue
                if not printed_id:
                    out.print(Text(found.id, style="bold"))
                    printed_id = True
                if curve.label:
                    out.print(Text(curve.label, style="dim"))
                _print_fit(analysis, local, by_step)
        if as_json:
            print(json.dumps(results, indent=2))


def _print_fit(analysis, local: bool, by_step) -> None:
    """``fit``'s lines for one curve."""
    out.print(fit_line(analysis))
    out.print(variance_line(analysis.variance_slope))
    for line in selection_lines(analysis):
        out.print(line)
    if local:
        _print_local(analysis)
    if by_step is not None:
        table, note = budget_table(by_step, out.width)
        out.print(table)
        for line in ([Text(note, style="dim")] if note else []) + budget_lines(by_step):
            out.print(line)


def _fit_joint(
    run_refs: list[str], runs_dir: Path, options: FitOptions, resamples: int, depth: int | None, as_json: bool
) -> None:
    """``fit --joint``: L = E + A·N^-α + B·D^-β per run, with the seed bootstrap's 95% intervals."""
    if options.offset or options.robust or options.axis != "width":
        fail("--joint: fits its own law (Huber on log residuals, with E): drop --offset, --robust and --x data|depth")
    if resamples == DEFAULT_RESAMPLES:  # the flag left at its default: the joint fit's own count
        options = dataclasses.replace(options, resamples=JOINT_RESAMPLES)
    results = []
    for ref in run_refs:
        found = open_run(runs_dir, ref)
        try:
            fitted = analyze_joint(found, options, depth)
        except ValueError as exc:
            fail(f"{found.id}: {exc}")
        if as_json:
            results.append({"run": found.id, **joint_json(fitted)})
            continue
        out.print(Text(found.id, style="bold"))
        for line in joint_lines(fitted):
            out.print(line)
    if as_json:
        print(json.dumps(results, indent=2))


def _width_json(s, basins) -> dict[str, object]:
    """A width's models (finished, used in the fit, diverged, flagged still falling, dropped by the exclusion)
    and its basins."""
    return {
        "width": s.width,
        "n_params": s.n_params,
        "seeds": s.seeds,
        "used": s.used,
        "diverged": s.diverged,
        "still_falling": s.unconverged,
        "dropped": s.dropped,
        "outside_main_basin": basins.outside,
        "fraction_outside": basins.fraction_outside,
        "main_basin_median": basins.main_median,
        "output_variance": basins.variance_all,
        "output_variance_main_basin": basins.variance_main,
    }


def _print_local(analysis) -> None:
    if analysis.local is None:
        out.print(Text("local slopes: need 2+ widths with a usable loss", style="yellow"))
        return
    out.print(local_table(analysis.local, analysis.x_axis, analysis.options.axis))
    for line in local_lines(analysis.local):
        out.print(line)


def _budget_json(budget) -> dict[str, object]:
    if budget is None:
        return {}
    widths = [
        {
            "width": b.width,
            "n_params": b.n_params,
            "models": b.losses.shape[0],
            "steps": b.steps.tolist(),
            "aggregate_loss": b.aggregate.tolist(),
            "settled": b.settled,
            "half_step": b.half_step,
            "change": b.change,
        }
        for b in budget.widths
    ]
    return {
        "budget": _clean(
            {
                "steps": budget.steps.tolist(),
                "alpha": budget.alpha.tolist(),
                "ci_low": budget.ci_low.tolist(),
                "ci_high": budget.ci_high.tolist(),
                "fitted_widths": budget.fitted,
                "error": budget.error,
                "alpha_settled": budget.alpha_settled,
                "half_step": budget.half_step,
                "alpha_move": budget.alpha_move,
                "ci_half_width": budget.ci_half_width,
                "widths": widths,
            }
        )
    }


def _clean(value):
    """JSON without NaN: undefined numbers become null, at any depth."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _local_json(local) -> dict[str, object] | None:
    if local is None:
        return None
    broken = dataclasses.asdict(local.broken) | {"preferred": local.broken.preferred} if local.broken else None
    return {
        "pairs": [dataclasses.asdict(p) for p in local.pairs],
        "windows": [dataclasses.asdict(w) for w in local.windows],
        "one_power_law": local.one_law,
        "verdict": local.verdict(),
        "broken": broken,
    }


def _fit_json(run: Run, analysis, options: FitOptions, local: bool = False) -> dict[str, object]:
    def fit_dict(f):
        if f is None:
            return None
        return {
            "alpha": f.alpha,
            "ci_low": f.ci_low,
            "ci_high": f.ci_high,
            "k": f.k,
            "l_inf": f.l_inf,
            "r2": f.r2,
            "points": f.points,
            "resamples": f.resamples,
        }

    used = [s for s in analysis.widths if s.used and options.in_range(s.width)]
    loss = fit_dict(analysis.fit)
    variance = fit_dict(analysis.variance_slope)
    return {
        "run": run.id,
        "x_axis": options.x_axis,
        "aggregate": options.aggregate,
        "offset": options.offset,
        "robust": options.robust,
        "min_width": options.min_width,
        "max_width": options.max_width,
        "bootstrap_seed": options.seed,
        "exclude_unconverged": options.exclude_unconverged,
        "fit": _clean(loss),
        "fit_error": analysis.fit_error,
        "variance_slope": _clean(variance),
        "widths": [s.width for s in used],
        "x": [s.width if options.x_axis == "width" else s.n_params for s in used],
        "aggregate_loss": [s.value(options.aggregate) for s in used],
        "diverged": sum(s.diverged for s in analysis.widths),
        "unconverged": sum(s.unconverged for s in analysis.widths),
        "per_width": [_clean(_width_json(s, b)) for s, b in zip(analysis.widths, analysis.basins, strict=True)],
        "selection_warning": selection_warning(analysis.widths),
        "local_verdict": analysis.local.verdict() if analysis.local else None,
        **({"local": _clean(_local_json(analysis.local))} if local else {}),
    }


@app.command(name="config")
def config_reference() -> None:
    """Every config key with its default and one line of documentation: what a preset or --set can say."""
    print(reference_toml(), end="")


@app.command()
def seeds(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, path, or 'latest'.")],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    units: Annotated[
        str, typer.Option("--units", help=f"Units of the spread and the tails: {', '.join(SEED_UNITS)} (log10 loss).")
    ] = "log",
    x: XAxis = "params",
    min_width: MinWidth = None,
    max_width: MaxWidth = None,
    seed: Seed = BOOTSTRAP_SEED,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """The seed distribution per width: quantiles, best of k seeds, basins, Hill tail indices, and whether
    the spread shrinks with scale or stays long-tailed ("mediocristan or extremistan"), with its CIs."""
    with friendly_errors():
        if units not in SEED_UNITS:
            fail(f"--units: must be one of {', '.join(SEED_UNITS)}; got {units!r}")
        options = _fit_options(x, "median", min_width=min_width, max_width=max_width, seed=seed)
        found = open_run(runs_dir, run_ref)
        curves = slices(found, options.axis)
        records = []
        for curve in curves:
            analysis = analyze_seeds(curve, options, units)
            if as_json:
                fixed = {"axis": curve.axis, **dataclasses.asdict(curve.fixed)}
                records.append(_clean(seeds_record(found.id, analysis)) | ({"curve": fixed} if len(curves) > 1 else {}))
                continue
            if curve is curves[0]:
                out.print(Text(found.id, style="bold"))
            if curve.label:
                out.print(Text(curve.label, style="dim"))
            out.print(seeds_table(analysis, compact=out.width < 110))
            out.print()
            for line in seeds_lines(analysis):
                out.print(line)
        if as_json:  # one object, as before, for a run that sweeps width alone; a list for a grid
            print(json.dumps(records[0] if len(records) == 1 else records, indent=2))


@app.command()
def export(
    run_refs: Annotated[
        list[str], typer.Argument(metavar="RUN...", help="One or more runs (id, prefix, path, latest).")
    ],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    what: Annotated[str, typer.Option("--what", help=f"Which table: {', '.join(FORMATS)}.")] = "per-width",
    out_path: Annotated[Path | None, typer.Option("--out", help="Write to this file (default: stdout).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    x: XAxis = "params",
    aggregate: Aggregate = "median",
    min_width: MinWidth = None,
    max_width: MaxWidth = None,
    offset: Offset = False,
    robust: Robust = False,
    resamples: Resamples = DEFAULT_RESAMPLES,
    seed: Seed = BOOTSTRAP_SEED,
    exclude_unconverged: Unconverged = False,
) -> None:
    """Export runs as CSV: per-seed results, per-width summaries, loss curves, fits, α(step) or the seed
    distribution per width (one header row)."""
    with friendly_errors():
        if what not in FORMATS:
            fail(f"--what: must be one of {', '.join(FORMATS)}; got {what!r}")
        options = _fit_options(x, aggregate, **_fit_flags(locals()))
        if what == "budget" and offset:
            fail("--offset: α(step) is fitted as a plain power law at each step; drop --offset")
        runs = [open_run(runs_dir, ref) for ref in run_refs]
        if exclude_unconverged and what in ("per-width", "fit"):
            for run in runs:  # stderr: stdout may be the CSV itself
                for line in selection_lines(analyze_run(run, options, with_outputs=False)):
                    err.print(Text(f"{run.id}: ").append_text(line))
        if out_path is None:
            export_csv(runs, what, sys.stdout, options)
            return
        try:
            count = export_to_file(runs, what, out_path, options, force=force)
        except FileExistsError as exc:
            fail(str(exc))
        err.print(f"wrote {count} rows to {out_path}", markup=False)


@app.command("plot")
def plot_command(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, path, name or 'latest'.")],
    out_path: Annotated[Path, typer.Option("--out", help="The picture: a .png, .svg or .pdf file.")],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    x: XAxis = "params",
    aggregate: Aggregate = "median",
    min_width: MinWidth = None,
    max_width: MaxWidth = None,
    offset: Offset = False,
    robust: Robust = False,
    exclude_unconverged: Unconverged = False,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Save a run's loss and variance plots as a picture (needs matplotlib: pip install 'scaletui[plot]')."""
    from scaletui.figures import FiguresUnavailable, save_figure

    with friendly_errors():
        if out_path.exists() and not force:
            fail(f"{out_path} exists; pass --force to replace it")
        found = open_run(runs_dir, run_ref)
        options = _fit_options(x, aggregate, **_fit_flags(locals()))
        try:
            save_figure(analyze_run(found, options), found.models(), f"{found.config.name} · {found.id}", out_path)
        except (FiguresUnavailable, ValueError) as exc:
            fail(str(exc))
    out.print(f"wrote {out_path}", highlight=False)


@app.command()
def inspect(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, path, or 'latest'.")],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    width: Annotated[int | None, typer.Option(help="Width of the model to inspect (default: the widest).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed index of the model (default: the first finished).")] = None,
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="Relative distance below which (w, b) and (−w, b) count as a pair.")
    ] = DEFAULT_TOLERANCE,
    all_pairs: Annotated[bool, typer.Option("--all", help="List every pair, not the twelve largest.")] = False,
    plots: Annotated[bool, typer.Option(help="Draw the neuron scatter.")] = True,
) -> None:
    """Lottery tickets: a model's mirror pairs of neurons, and k averaged nets of width w against one of k·w."""
    from scaletui.plots import ticket_plot  # lazy: plotext, for plots only

    with friendly_errors():
        found = open_run(runs_dir, run_ref)
        comparison = run_ensemble_comparison(found)
        report = None
        if max(found.config.depths) > 1:
            out.print(Text(ONE_LAYER_ONLY, style="yellow"))
        else:
            try:
                report = inspect_run(found, width, seed, tolerance)
            except ValueError as exc:
                fail(f"{found.id}: {exc}")
        if report is not None:
            out.print(ticket_summary(report))
            if plots:
                color = out.is_terminal and not out.no_color
                height = max(12, min(30, (out.height or 24) - 4))
                out.print(Text.from_ansi(ticket_plot(report, min(out.width, 120), height, color)))
            if report.pairs:
                out.print(pair_table(report, None if all_pairs else 12))
        out.print()
        if comparison:
            out.print(Text("Is a wide net an ensemble of narrow ones? (median test MSE)", style="bold"))
            out.print(ensemble_table(comparison))
        else:
            out.print(Text("no pair of widths w and k·w with enough finished seeds to compare ensembles", style="dim"))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
