"""The measured columns of docs/REPRODUCTIONS.md for finished runs, as Markdown table cells.

    python benchmarks/reproduction_table.py RUN [--runs-dir DIR] [--x params|width] [--max-width W]
        [--offset] [--exclude-unconverged]

Prints α with its 95% bootstrap CI, the output-variance slope with its CI, the fraction of models that
converged (neither diverged nor flagged by the still-falling rule), the TwoNN dimension of the inputs where
there is one, and the run's wall time, all from the store through the same analysis as `scaletui fit`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scaletui.analysis import FitOptions, analyze_run
from scaletui.store import open_run


def interval(fit) -> str:
    if fit is None:
        return "–"
    return f"{fit.alpha:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--x", choices=("params", "width"), default="params")
    parser.add_argument("--min-width", type=int)
    parser.add_argument("--max-width", type=int)
    parser.add_argument("--offset", action="store_true")
    parser.add_argument("--exclude-unconverged", action="store_true")
    args = parser.parse_args()
    run = open_run(args.runs_dir, args.run)
    options = FitOptions(
        x_axis=args.x, aggregate="median", min_width=args.min_width, max_width=args.max_width, offset=args.offset,
        robust=False, resamples=2000, seed=0, exclude_unconverged=args.exclude_unconverged,
    )  # fmt: skip
    analysis = analyze_run(run, options)
    total = sum(s.seeds for s in analysis.widths)
    bad = sum(s.diverged + s.unconverged for s in analysis.widths)
    status = run.status()
    dimension = f" · TwoNN d = {analysis.intrinsic.dimension:.2f}" if analysis.intrinsic else ""
    print(f"run {run.id} ({status.status}, {total} models){dimension}")
    print(f"α vs {args.x}: {interval(analysis.fit)}  R² {analysis.fit.r2:.3f}" if analysis.fit else analysis.fit_error)
    if analysis.fit is not None and args.offset:
        print(f"L∞ = {analysis.fit.l_inf:.3g}")
    print(f"V slope: {interval(analysis.variance_slope)}")
    print(f"converged: {total - bad}/{total} = {(total - bad) / max(total, 1):.0%}")
    print(f"wall time: {(status.duration or 0) / 60:.1f} min")
    for s in analysis.widths:
        print(f"  width {s.width:5d}  median {s.median:.3e}  used {s.used}/{s.seeds}  unconverged {s.unconverged}")


if __name__ == "__main__":
    main()
