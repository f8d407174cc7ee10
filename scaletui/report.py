"""Rich renderables for the CLI's and the TUI's summaries: per-width table, fitted-law lines, ticket tables."""

from __future__ import annotations

import math

import numpy as np
from rich.table import Table
from rich.text import Text

from scaletui.analysis import (
    BASIN_GAP,
    BROKEN_BIC_MARGIN,
    CONVERGENCE_THRESHOLD,
    CONVERGENCE_WINDOW,
    SETTLED_CHANGE,
    BudgetAnalysis,
    FitOptions,
    LocalSlopes,
    PowerLawFit,
    RunAnalysis,
    selection_warning,
)
from scaletui.config import shard_label
from scaletui.joint import JointFit
from scaletui.lottery import EnsembleComparison, TicketReport
from scaletui.present import AXIS_SYMBOLS, ci, count, fmt, gib, x_symbol
from scaletui.seeds import BEST_OF, QUANTILES, TAIL_RULE, UNIT_LABELS, SeedsAnalysis, TailIndex
from scaletui.system import SystemSample


def checkpoints_line(checkpoints: list[dict], seed_count: int) -> str | None:
    """Where the unfinished shards' latest checkpoints stand (what a resume continues from), or None."""
    if not checkpoints:
        return None
    shards = [
        f"{shard_label(c['width'], range(c['first_seed'], c['first_seed'] + c['models']), seed_count)} "
        f"at step {c['step']:,}"
        for c in checkpoints
    ]
    return "checkpoints: " + " · ".join(shards)


WIDE_COLUMNS = ("width", "N", "seeds", "{aggregate}", "IQR", "V", "V main", "bias²", "outside", "main med", "div",
                "falling", "skew", "max/med")  # fmt: skip
NARROW_COLUMNS = ("width", "N", "seeds", "{aggregate}", "V", "V main", "outside", "div", "falling")


def width_columns(analysis: RunAnalysis, compact: bool) -> list[str]:
    """The per-width table's columns; the narrow set keeps every key column whole at 80 columns."""
    return [c.format(aggregate=analysis.aggregate) for c in (NARROW_COLUMNS if compact else WIDE_COLUMNS)]


def width_cells(analysis: RunAnalysis) -> list[dict[str, str]]:
    """Per width, every column's text: the one source of the CLI's table and the explorer's.

    seeds = models used / finished; V and V main = output variance over all finite seeds and over the main
    basin's; outside = models outside the main basin / finite models; falling = flagged still falling.
    """
    variance = {v.width: v for v in analysis.variance}
    spread = {s.width: s for s in analysis.spread}
    basins = {b.width: b for b in analysis.basins}
    rows = []
    for st in analysis.widths:
        v, sp, b = variance.get(st.width), spread[st.width], basins.get(st.width)
        rows.append(
            {
                "width": str(st.width),
                "N": str(st.n_params),
                "seeds": f"{st.used}/{st.seeds}",
                analysis.aggregate: fmt(st.value(analysis.aggregate)),
                "IQR": f"{fmt(st.q25, 2)}–{fmt(st.q75, 2)}",
                "V": fmt(v.variance, 2) if v else "–",
                "V main": fmt(b.variance_main, 2) if b else "–",
                "bias²": fmt(v.bias2, 2) if v else "–",
                "outside": f"{b.outside}/{b.models}" if b and b.models else "–",
                "main med": fmt(b.main_median, 2) if b else "–",
                "div": str(st.diverged),
                "falling": str(st.unconverged),
                "skew": "–" if not math.isfinite(sp.skewness) else f"{sp.skewness:+.2f}",
                "max/med": "–" if not math.isfinite(sp.max_over_median) else f"{sp.max_over_median:.3g}",
            }
        )
    return rows


def width_table(analysis: RunAnalysis, compact: bool, title: str | None = None) -> Table:
    """Per width: the aggregate and spread of final test loss, V, basins, bias², flags, tail shape."""
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    columns = width_columns(analysis, compact)
    first = AXIS_SYMBOLS[analysis.options.axis]  # what the rows run along
    for name in columns:
        table.add_column(first if name == "width" else name, justify="right", no_wrap=True)
    warn = {"div": "red", "falling": "yellow", "outside": "yellow"}
    for cells in width_cells(analysis):
        table.add_row(
            *(
                Text(cells[c], style=warn[c]) if c in warn and cells[c][0] not in "0–" else Text(cells[c])
                for c in columns
            )
        )
    return table


def basins_line(analysis: RunAnalysis) -> Text | None:
    """The failure fraction against width: models outside the main basin, per width, in one row."""
    basins = [b for b in analysis.basins if b.models]
    if not basins:
        return None
    cells = " · ".join(f"{b.width}: {b.outside}/{b.models}" for b in basins)
    return Text.assemble(("outside the main basin", "bold"), f" (log10 loss gap > {BASIN_GAP:g}) by width: {cells}")


POINTS = {"width": "widths", "data": "data sizes", "depth": "depths"}  # what a curve's points are


def _axis(fit: PowerLawFit) -> str:
    return x_symbol(fit.axis, fit.x_axis)


def alpha_numbers(fit: PowerLawFit) -> str:
    """'α vs N = 1.931  95% CI [1.231, 2.588]  R² 0.8502': the one format of a loss fit on every face."""
    return f"α vs {_axis(fit)} = {fit.alpha:.3f}  {ci(fit.ci_low, fit.ci_high)}  R² {fit.r2:.4f}"


def variance_numbers(fit: PowerLawFit) -> str:
    """'V ∝ N^-2.468  95% CI [1.631, 3.969]  R² 0.9608': the one format of the V slope on every face."""
    return f"V ∝ {_axis(fit)}^{-fit.alpha:.3f}  {ci(fit.ci_low, fit.ci_high)}  R² {fit.r2:.4f}"


def fit_line(analysis: RunAnalysis) -> Text:
    """'α vs N = 1.02  95% CI [0.95, 1.10]  R² 0.998 …' and, beside it, 'not one power law: …' when the
    local slopes disagree beyond their CIs; or why there is no fit yet."""
    fit = analysis.fit
    if fit is None:
        return Text.assemble(("α: ", "bold"), (analysis.fit_error or "no fit", "yellow"))
    extras = []
    if fit.offset:
        extras.append(f"L∞ = {fit.l_inf:.3g}")
    if fit.robust:
        extras.append("Huber")
    return Text.assemble(
        (alpha_numbers(fit), "bold cyan"),
        verdict_text(analysis),
        (
            f"  ({analysis.aggregate} of seeds, {fit.points} {POINTS[fit.axis]}, {fit.resamples} resamples"
            f"{', ' if extras else ''}{', '.join(extras)})",
            "dim",
        ),
    )


def options_text(options: FitOptions) -> str:
    """The fit options that differ from `scaletui fit`'s defaults, as its flags name them ('' for none)."""
    parts = []
    if options.min_width is not None or options.max_width is not None:
        parts.append(f"widths {options.min_width or '…'}–{options.max_width or '…'}")
    if options.offset:
        parts.append("offset")
    if options.robust:
        parts.append("robust")
    if options.exclude_unconverged:
        parts.append("still-falling excluded")
    return ", ".join(parts)


def alpha_cell(analysis: RunAnalysis) -> str:
    """α in a table cell: '1.931', '1.931 (not one law)' when the local slopes disagree, or '–'."""
    if analysis.fit is None:
        return "–"
    broken = analysis.local is not None and analysis.local.one_law is False
    return f"{analysis.fit.alpha:.3f}{' (not one law)' if broken else ''}"


def verdict_text(analysis: RunAnalysis) -> Text:
    """'  not one power law: local slopes 0.4–4.6' (next to α, never instead of it), or nothing."""
    verdict = analysis.local.verdict() if analysis.local is not None else None
    return Text(f"  {verdict}", style="bold yellow") if verdict else Text()


def local_table(local: LocalSlopes, x_axis: str, along: str = "width") -> Table:
    """Slopes between neighbouring widths (pairs) and over three (windows), each with its 95% CI."""
    axis = x_symbol(along, x_axis)
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for name in (POINTS[along], "over", f"α vs {axis}", "95% CI"):
        table.add_column(name, justify="right", no_wrap=True)
    for kind, slopes in (("pair", local.pairs), ("window", local.windows)):
        for slope in slopes:
            ci = f"[{slope.ci_low:.3f}, {slope.ci_high:.3f}]" if math.isfinite(slope.ci_low) else "–"
            table.add_row("–".join(map(str, slope.widths)), kind, f"{slope.alpha:.3f}", ci)
    return table


def local_lines(local: LocalSlopes) -> list[Text]:
    """The verdict of the local-slope rule, and the broken power law against one slope where there is one."""
    verdict = local.verdict()
    if verdict:
        lines = [Text(f"{verdict} (two pair slopes with 95% CIs that do not overlap)", style="bold yellow")]
    elif local.one_law:
        lines = [Text("consistent with one power law: the pair slopes' 95% CIs all overlap", style="green")]
    else:
        lines = [Text("local slopes: too few pairs with a CI to judge", style="dim")]
    b = local.broken
    if b is not None:
        lines.append(
            Text(
                f"broken power law: α {b.alpha_below:.3f} below x = {b.break_x:.3g}, {b.alpha_above:.3f} above · "
                f"BIC {b.bic_broken:.1f} against {b.bic_one:.1f} for one slope: "
                + ("preferred" if b.preferred else f"not preferred (needs a drop over {BROKEN_BIC_MARGIN:g})"),
                style="bold" if b.preferred else "dim",
            )
        )
    return lines


def variance_line(fit: PowerLawFit | None) -> Text:
    if fit is None:
        return Text("V slope: needs 2+ widths with 2+ finite seeds", style="yellow")
    return Text.assemble(
        (variance_numbers(fit), "bold green"),
        ("  (output variance across seeds; lottery-ticket ensembling predicts 1)", "dim"),
    )


def theory_line(analysis: RunAnalysis) -> Text:
    line = Text("theory: " + " · ".join(analysis.theory), style="dim")
    if analysis.intrinsic is not None:
        d = analysis.intrinsic.dimension
        # TwoNN of the inputs recovers the sampler's own d; it cannot say whether the law follows 4/d.
        line.append(f"  ·  inputs: TwoNN d = {d:.2f} (checks the sampler) → 4/d = {4 / d:.2f}", style="cyan")
    return line


def exclusions_line(analysis: RunAnalysis) -> Text | None:
    """What the fits leave out (diverged models) and what they keep but flag (models still falling)."""
    diverged = sum(s.diverged for s in analysis.widths)
    falling = sum(s.unconverged for s in analysis.widths)
    dropped = sum(s.dropped for s in analysis.widths)
    if not diverged and not falling:
        return None
    kept = f"{dropped} of them dropped (--exclude-unconverged)" if dropped else "kept in fits"
    return Text(
        f"{diverged} diverged (NaN/inf, left out of fits) · {falling} still falling at the end (training loss "
        f"fell > {CONVERGENCE_THRESHOLD:.0%} over the last {CONVERGENCE_WINDOW:.0%} of steps; {kept})",
        style="yellow",
    )


def selection_lines(analysis: RunAnalysis) -> list[Text]:
    """With --exclude-unconverged: how many models were dropped at each width, and the one-line warning
    when the dropped shares differ enough between widths to select by outcome."""
    if not analysis.options.exclude_unconverged:
        return []
    counts = " · ".join(f"width {s.width}: {s.dropped}/{s.seeds - s.diverged}" for s in analysis.widths)
    lines = [Text(f"dropped as still falling: {counts}", style="yellow")]
    warning = selection_warning(analysis.widths)
    if warning is not None:
        lines.append(Text(f"warning: {warning}", style="bold yellow"))
    return lines


def budget_lines(budget: BudgetAnalysis) -> list[Text]:
    """Whether α and each width have settled over the last doubling of the budget, in the stated rules."""
    if budget.error:
        alpha = Text(f"α(step): {budget.error}", style="yellow")
    elif budget.alpha_settled is None:
        alpha = Text(
            f"α not judged: no evaluated step at or below half of the last ({budget.steps[-1]}) besides "
            "step 0, or no CI",
            style="dim",
        )
    else:
        settled = budget.alpha_settled
        alpha = Text(
            f"α {'settled' if settled else 'not settled'}: moved {budget.alpha_move:.3f} over the last doubling "
            f"(step {budget.half_step}→{budget.steps[-1]}), {'<' if settled else '≥'} its CI half-width "
            f"{budget.ci_half_width:.3f}",
            style="green" if settled else "bold yellow",
        )
    groups: dict[bool | None, list[str]] = {True: [], False: [], None: []}
    for b in budget.widths:
        groups[b.settled].append(str(b.width) if b.settled is not False else f"{b.width} ({b.change:+.0%})")
    settled = f"widths settled (test loss moved < {SETTLED_CHANGE:.0%} over the last doubling)"
    parts = [
        f"{label}: {', '.join(groups[key]) or 'none'}"
        for key, label in ((True, settled), (False, "not settled"), (None, "not judged"))
        if groups[key] or key
    ]
    return [alpha, Text(" · ".join(parts))]


def thin_steps(steps: np.ndarray, limit: int = 40) -> np.ndarray:
    """At most about ``limit`` of the steps for a table, spread evenly in log(step), the last one kept."""
    if steps.size <= limit:
        return steps
    grid = np.geomspace(steps[0], steps[-1], limit)
    picked = np.unique(np.r_[[steps[np.argmin(np.abs(np.log(steps) - np.log(g)))] for g in grid], steps[-1]])
    return picked


def budget_table(budget: BudgetAnalysis, room: int) -> tuple[Table, str | None]:
    """step → α [CI] and each width's aggregate test loss, widths dropped from the right to fit ``room``
    columns; returns the table and a note on what it left out."""
    axis = x_symbol(budget.options.axis, budget.options.x_axis)
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for name in ("step", f"α vs {axis}", "95% CI"):
        table.add_column(name, justify="right", no_wrap=True)
    fixed = 7 + 8 + 18
    shown = budget.widths[: max(0, (room - fixed) // 10)]
    for b in shown:
        table.add_column(f"w={b.width}", justify="right", no_wrap=True)
    alpha = dict(zip(budget.steps.tolist(), zip(budget.alpha, budget.ci_low, budget.ci_high, strict=True), strict=True))
    everything = np.unique(np.concatenate([b.steps for b in budget.widths])) if budget.widths else np.array([])
    steps = thin_steps(everything)
    for step in steps.tolist():
        a, low, high = alpha.get(step, (math.nan,) * 3)
        cells = [
            str(step),
            "–" if not math.isfinite(a) else f"{a:.3f}",
            "–" if not math.isfinite(low) else f"[{low:.3f}, {high:.3f}]",
        ]
        for b in shown:
            at = np.searchsorted(b.steps, step)
            cells.append(fmt(b.aggregate[at], 2) if at < b.steps.size and b.steps[at] == step else "")
        table.add_row(*cells)
    notes = []
    if steps.size < everything.size:
        notes.append(f"{steps.size} of {everything.size} steps shown")
    if len(shown) < len(budget.widths):
        notes.append(f"widths {', '.join(str(b.width) for b in budget.widths[len(shown) :])} left out for room")
    return table, ("; ".join(notes) + "; --json has everything") if notes else None


def ticket_summary(report: TicketReport) -> Text:
    """One line: how many neurons pair up, and how much of the output the pairs carry."""
    share = report.paired_rms / (report.paired_rms + report.unpaired_rms) if report.paired_rms else 0.0
    return Text.assemble(
        (f"width {report.width}, seed {report.seed}: ", "bold"),
        (
            f"{2 * len(report.pairs)} of {report.width} neurons in {count(len(report.pairs), 'mirror pair')} "
            f"({report.paired_fraction:.0%})",
            "bold cyan",
        ),
        f" at tolerance {report.tolerance:g} (same-sign twins, the chance baseline: {report.twins}); "
        f"output variation carried by pairs {report.paired_rms:.3g}, by the rest {report.unpaired_rms:.3g} "
        f"({share:.0%} paired)",
    )


def pair_table(report: TicketReport, limit: int | None = 12) -> Table:
    """The mirror pairs, largest contribution first: their weights and the shape of what they add."""
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for name in ("neurons", "w", "b", "a (out)", "distance", "contribution", "x² fit R²"):
        table.add_column(name, justify="right", no_wrap=True)
    pairs = sorted(report.pairs, key=lambda p: -p.contribution_rms)
    for pair in pairs[:limit] if limit else pairs:
        i, j = pair.first, pair.second
        w = report.input_weights
        w_text = f"{w[i, 0]:+.3f} / {w[j, 0]:+.3f}" + (" …" if w.shape[1] > 1 else "")
        table.add_row(
            f"{i} & {j}",
            w_text,
            f"{report.biases[i]:+.3f} / {report.biases[j]:+.3f}",
            f"{report.output_weights[i]:+.3g} / {report.output_weights[j]:+.3g}",
            f"{pair.distance:.3f}",
            f"{pair.contribution_rms:.3g}",
            "–" if pair.quadratic_r2 is None else f"{pair.quadratic_r2:.4f}",
        )
    if limit and len(pairs) > limit:
        table.caption = f"{len(pairs) - limit} more pairs (--all lists them)"
    return table


def ensemble_table(rows: list[EnsembleComparison]) -> Table:
    """k averaged seeds of width w against one model of width k·w: is a wide net an ensemble of tickets?"""
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    # The headers may fold onto two lines: a table of no_wrap columns is shrunk evenly when it is too wide,
    # which gave the one-digit k column no width at all at 80 columns.
    for name in ("width w", "k", "groups", "one net, w", "k nets averaged", "one net, k·w", "wide / ensemble"):
        table.add_column(name, justify="right")
    for r in rows:
        ratio = r.wide_loss / r.ensemble_loss if r.ensemble_loss > 0 else math.inf
        table.add_row(
            str(r.width),
            str(r.k),
            str(r.groups),
            fmt(r.single_loss),
            fmt(r.ensemble_loss),
            f"{fmt(r.wide_loss)} (w={r.wide_width})",
            f"{ratio:.3g}",
        )
    return table


def system_text(sample: SystemSample) -> Text:
    """The machine, the followed run's runner and the GPUs, one part each: what the system pane shows."""
    parts: list[Text] = []
    if sample.load is not None:
        busy = "bold red" if sample.load[0] > sample.cpus else ""
        parts.append(Text.assemble("load ", (f"{sample.load[0]:.2f}", busy), f" on {count(sample.cpus, 'CPU')}"))
    if sample.mem_total and sample.mem_available is not None:
        parts.append(Text(f"memory {gib(sample.mem_total - sample.mem_available)} of {gib(sample.mem_total)} used"))
    runner = sample.runner
    if runner is None:
        parts.append(Text("runner: none running here", style="dim"))
    else:
        cpu = "measuring" if runner.cpu_percent is None else f"{runner.cpu_percent:.0f}% CPU"
        parts.append(Text(f"runner: {count(runner.pids, 'process', 'processes')}, {cpu}, {gib(runner.rss_bytes)}"))
    for gpu in sample.gpus:
        used = f"{gib(gpu.used_bytes)} of {gib(gpu.total_bytes)}"
        parts.append(Text(f"GPU {gpu.index} {gpu.name}: {gpu.util_percent}%, {used}"))
    if sample.note:
        parts.append(Text(sample.note, style="yellow"))
    return Text(" · ").join(parts)


# --- the seed distribution (scaletui seeds, the explorer's Seeds panel) ---------------------------------


def _in_units(value: float, units: str) -> str:
    """A quantile in the analysis's units: decades and ranks to two decimals, losses as the tables do."""
    if not math.isfinite(value):
        return "–"
    return fmt(value) if units == "loss" else f"{value:.2f}"


def _tail(tail: TailIndex | None) -> Text:
    if tail is None:
        return Text("–", style="dim")
    style = {"heavy": "bold red", "thin": "green"}.get(tail.verdict, "")
    return Text(f"{tail.index:.2g}±{tail.stderr:.1g}", style=style)


def seeds_table(analysis: SeedsAnalysis, compact: bool) -> Table:
    """Per width: the quantiles in the chosen units, the basin fraction, best-of-k losses and both tails'
    Hill indices (red: heavy, green: thin). Compact (under 110 columns) keeps the quartiles and best of 10."""
    quantile_names = [f"q{round(q * 100)}" for q in QUANTILES]
    shown = [1, 2, 3] if compact else list(range(len(QUANTILES)))
    best_of = [10] if compact else list(BEST_OF)
    digits = 2 if compact else 3
    table = Table(
        title=f"seeds per width ({UNIT_LABELS[analysis.units]})",
        title_justify="left",
        header_style="bold",
        pad_edge=False,
        box=None,
        padding=(0, 1),
    )
    for name in [
        "width",
        "N",
        "seeds",
        *(quantile_names[i] for i in shown),
        "outside",
        *(f"best{k}" for k in best_of),
        "lucky",
        "unlucky",
    ]:
        table.add_column(name, justify="right", no_wrap=True)
    for w in analysis.widths:
        outside = "–" if not math.isfinite(w.fraction_outside) else f"{w.fraction_outside:.0%}"
        table.add_row(
            str(w.width),
            str(w.n_params),
            str(w.seeds),
            *(_in_units(w.quantiles[i], analysis.units) for i in shown),
            outside,
            *(fmt(w.best_of[k], digits) if k in w.best_of else "–" for k in best_of),
            _tail(w.lucky),
            _tail(w.unlucky),
        )
    return table


def seeds_lines(analysis: SeedsAnalysis) -> list[Text]:
    """The median's fit (the run's α), the verdict's sentences (the last one bold), and the tail rule."""
    lines = [Text("median loss: " + (alpha_numbers(analysis.median_fit) if analysis.median_fit else "–"))]
    if analysis.units == "rank":
        lines.append(
            Text(
                "ranks have the same spread at every width by construction: spread and tails in log10 loss", style="dim"
            )
        )
    *body, last = analysis.verdict
    lines.extend(Text(line) for line in body)
    lines.append(Text(last, style="bold"))
    lines.append(Text(f"tails: {TAIL_RULE}", style="dim"))
    return lines


def joint_lines(fitted: JointFit) -> list[Text]:
    """``L = E + A·N^-α + B·D^-β`` with each exponent's and E's interval, and what it was fitted on."""
    exponent = (
        f"α (N) = {fitted.alpha:.3f}  {ci(*fitted.ci.get('alpha', (math.nan, math.nan)))}  ·  "
        f"β (D) = {fitted.beta:.3f}  {ci(*fitted.ci.get('beta', (math.nan, math.nan)))}"
    )
    low, high = fitted.ci.get("E", (math.nan, math.nan))
    floor = f"E = {fmt(fitted.E)}  95% CI [{fmt(low)}, {fmt(high)}]  ·  A = {fitted.A:.3g}  ·  B = {fitted.B:.3g}"
    depth = f", depth {fitted.depth}" if fitted.depth is not None else ""
    how = (
        f"L = E + A·N^-α + B·D^-β over {fitted.cells} (N, D) cells{depth}; Huber on log residuals; "
        f"{fitted.resamples} seed resamples of {fitted.seeds} seeds; log RMSE {fitted.log_rmse:.3f}"
    )
    caveats = [Text(note, style="yellow") for note in fitted.caveats()]
    return [Text(exponent, style="bold cyan"), Text(floor), Text(how, style="dim"), *caveats]


def joint_json(fitted: JointFit) -> dict[str, object]:
    """The joint fit as plain data: estimates, intervals (lists [low, high]) and what it was fitted on."""
    return {
        "law": "L = E + A*N^-alpha + B*D^-beta",
        **{name: fitted.value(name) for name in ("alpha", "beta", "E", "A", "B")},
        "ci": {name: list(bounds) for name, bounds in fitted.ci.items()},
        "cells": fitted.cells,
        "seeds": fitted.seeds,
        "resamples": fitted.resamples,
        "depth": fitted.depth,
        "log_rmse": fitted.log_rmse,
        "caveats": fitted.caveats(),
    }
