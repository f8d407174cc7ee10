"""The words and numbers every face prints, from one module."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from scaletui.present import ci, dead_runner, duration, fmt, started


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (math.nan, "–"), (-3, "0s"), (0.4, "0s"), (59.6, "1m00s"), (187, "3m07s"), (7500, "2h05m")],
)
def test_durations_read_as_the_listings_show_them(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_numbers_and_intervals() -> None:
    assert fmt(0.000123456) == "1.23e-04" and fmt(math.inf) == "–" and fmt(None) == "–"
    assert fmt(2.0, digits=2) == "2.0e+00"
    assert ci(1.2314, 2.5876) == "95% CI [1.231, 2.588]"
    assert ci(math.nan, 1.0) == "95% CI –"


def test_start_times_and_the_dead_runner_remedy() -> None:
    moment = datetime(2026, 12, 3, 2, 16).timestamp()
    assert started(moment) == "12-03 02:16" and started(None) == "–"
    assert dead_runner("20261203-abc").endswith("`scaletui run --resume 20261203-abc`")
