"""How numbers, times and states read on every face: one module, so the CLI and the TUI print the same text.

Plain strings only (no rich, no Textual), so the report, the CLI and every screen of the TUI build their
own styling around the same words.
"""

from __future__ import annotations

import math
from datetime import datetime

# The colour of each run status, as rich style names (both faces use rich styles).
STATUS_STYLE = {
    "running": "bold green",
    "finished": "cyan",
    "stopped": "yellow",
    "failed": "bold red",
    "dead": "bold red",
    "not responding": "bold yellow",
    "created": "dim",
    "damaged": "bold magenta",
}
ONE_LAYER_ONLY = "mirror pairs are defined for one hidden layer; this run has more"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 run"``, ``"2 runs"``: a number with its noun in the number it takes."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def gib(n: int) -> str:
    """A size in bytes as GiB, one decimal."""
    return f"{n / 2**30:.1f} GiB"


def fmt(value: float | None, digits: int = 3) -> str:
    """A loss or a variance: ``digits`` significant digits in scientific notation, "–" when undefined."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits - 1}e}"


def duration(seconds: float | None) -> str:
    """ "42s", "3m07s", "2h05m": a run's or an ETA's length; "–" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def started(timestamp: float | None) -> str:
    """When a run started, as listings show it: "12-03 02:16" (local time); "–" when it has not."""
    return datetime.fromtimestamp(timestamp).strftime("%m-%d %H:%M") if timestamp else "–"


def ci(low: float, high: float, digits: int = 3) -> str:
    """A 95% interval: "95% CI [1.231, 2.588]", or "95% CI –" when the bootstrap gave none."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "95% CI –"
    return f"95% CI [{low:.{digits}f}, {high:.{digits}f}]"


def dead_runner(run_id: str) -> str:
    """What a run whose runner vanished needs: the reason is unknown, the remedy is not."""
    return f"the runner stopped without saying why; finish it with `scaletui run --resume {run_id}`"


def group_label(width: int, n_train: int, depth: int, sizes: int = 1, depths: int = 1) -> str:
    """``width 16``, or ``width 16 · D=1000 · depth 2`` in a run that sweeps data size (``sizes`` of them) or
    depth: only the coordinates the run varies."""
    parts = [f"width {width}"]
    if sizes > 1:
        parts.append(f"D={n_train}")
    if depths > 1:
        parts.append(f"depth {depth}")
    return " · ".join(parts)


def resume_points_text(points: list[tuple[str, int]]) -> str:
    """Where a resume takes each unfinished shard up, ``width 4 from step 2,692,250; width 8 from step 0``: the
    runner's "resumed" event and the explorer's resume toast, so a user sees which widths go on and which
    start over."""
    return "; ".join(f"{label} from step {step:,}" for label, step in points) or "nothing left to train"


AXIS_NAMES = {"width": "width", "data": "data size", "depth": "depth"}  # a sweep's axes, in words
AXIS_SYMBOLS = {"width": "width", "data": "D", "depth": "depth"}  # and as a column or an axis label names them


def x_symbol(axis: str, x_axis: str) -> str:
    """What a curve's x is called: ``N`` or ``width`` along width, ``D`` along data size, ``depth`` along depth."""
    return "N" if axis == "width" and x_axis == "params" else AXIS_SYMBOLS[axis]
