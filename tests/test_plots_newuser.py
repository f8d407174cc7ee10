"""Issue #14's plot defects: lines told apart by colour alone, a legend crossed by data, the variance slope
named on the wrong axis, a y label below the axis, too few ticks to read an axis."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from scaletui.analysis import FitOptions, WidthBudget, analyze_run
from scaletui.lottery import inspect_model
from scaletui.plots import (
    Curve,
    compare_plot,
    curves_plot,
    linear_ticks,
    log_ticks,
    loss_plot,
    ticket_plot,
    variance_plot,
)
from tests.synthetic_runs import lottery_run


def plain(picture: str) -> str:
    """The picture as piped output shows it: no colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", picture)


def legend_marker(picture: str, label: str) -> str:
    line = next(line for line in picture.splitlines() if f" {label}" in line)
    return line.split(label)[0].rstrip()[-1]


def test_the_lines_of_the_loss_plot_differ_without_colour(tmp_path: Path) -> None:
    run = lottery_run(tmp_path / "runs")
    analysis = analyze_run(run, FitOptions(resamples=50))
    picture = plain(loss_plot(analysis, run.models(), 100, 30, color=False))
    markers = [legend_marker(picture, label) for label in ("seeds", "median", f"fit α={analysis.fit.alpha:.2f}")]
    assert len(set(markers)) == 3, markers


def test_the_variance_legend_names_the_axis_and_no_line_crosses_it(tmp_path: Path) -> None:
    run = lottery_run(tmp_path / "runs")
    for axis, name in (("params", "N"), ("width", "width")):
        analysis = analyze_run(run, FitOptions(resamples=50, x_axis=axis))
        picture = plain(variance_plot(analysis, 78, 16, color=False))
        assert f"V ∝ {name}^-" in picture and "x^" not in picture
        legend = [line for line in picture.splitlines()[1:] if re.search(r"(V \(across|bias²|V ∝)", line)]
        assert len(legend) == 3
        for line in legend:
            after = re.split(r"V \(across seeds\)|bias²|V ∝ \S+", line)[1]
            assert after.strip(" │") == "", line  # nothing drawn beside the legend's entries


def test_a_single_width_still_has_x_ticks_and_a_short_range_two_y_ticks(tmp_path: Path) -> None:
    run = lottery_run(tmp_path / "runs", widths=(8,))
    analysis = analyze_run(run, FitOptions(resamples=0))
    picture = plain(loss_plot(analysis, run.models(), 80, 20, color=False))
    lines = picture.splitlines()
    under = lines[next(i for i, line in enumerate(lines) if "└" in line) + 1]
    assert re.search(r"\d", under), picture
    assert len(log_ticks(-1.02, -1.0)[0]) >= 2 and len(log_ticks(-1.3, -1.1)[0]) >= 2


def test_the_compare_plot_at_80_by_24_reads_on_its_y_axis(tmp_path: Path) -> None:
    runs = [lottery_run(tmp_path / "runs", run_id=f"r{alpha}", alpha=alpha) for alpha in (1.9, 2.0)]
    series = []
    for run in runs:
        analysis = analyze_run(run, FitOptions(resamples=0))
        widths = [s for s in analysis.widths if s.used]
        series.append(Curve(run.id, tuple(s.n_params for s in widths), tuple(s.median for s in widths), analysis.fit))
    picture = plain(compare_plot(series, 78, 10, color=False))
    assert len([line for line in picture.splitlines() if "┤" in line]) >= 2
    assert legend_marker(picture, series[0].label) != legend_marker(picture, series[1].label)


def test_the_tickets_plot_names_its_axes_in_the_title_not_below_it() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    weights = {"W0": rng.standard_normal((1, 8)), "b0": rng.standard_normal((1, 8)), "W1": rng.standard_normal((8, 1)),
               "b1": np.zeros((1, 1))}  # fmt: skip
    report = inspect_model(weights, "relu", np.linspace(-2, 2, 32)[:, None], width=8, seed=0)
    picture = plain(ticket_plot(report, 78, 16, color=False))
    lines = [line for line in picture.splitlines() if line.strip()]
    assert "bias b" in lines[0] and lines[-1].split() == ["w"]  # the x label's line holds no "b" at its start


def test_linear_ticks_are_round_and_labelled_like_the_log_axes() -> None:
    ticks, labels = linear_ticks(20_000, 3_000_000)
    assert labels == ["1M", "2M", "3M"] and ticks == [1e6, 2e6, 3e6]  # as the budget panel's step axis reads
    ticks, labels = linear_ticks(0.26, 2.64, large_numbers=False)
    assert labels == ["0.5", "1", "1.5", "2", "2.5"]
    assert "-0" not in linear_ticks(-0.04, 1.2, large_numbers=False)[1]


def test_the_curves_plot_labels_its_steps_compactly() -> None:
    steps = np.array([20_000, 765_000, 1_510_000, 2_255_000, 3_000_000])
    curve = np.geomspace(1, 1e-3, steps.size)
    budgets = [WidthBudget(4, 13, steps, curve[None, :], curve, None, float("nan"))]
    picture = curves_plot(budgets, 80, 20, color=False)
    assert "1M" in picture and "765000" not in picture
