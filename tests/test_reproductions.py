"""docs/REPRODUCTIONS.md stays runnable: its commands name shipped presets that load, and (marked slow)
shortened versions of them run end to end through the CLI and give a fit."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from scaletui.config import load_config
from tests.conftest import run_cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "REPRODUCTIONS.md"
REFERENCE_PRESETS = {
    "lottery-silu",
    "lottery-silu-lm",
    "lottery-relu-lm",
    "lottery-seeds-cpu",
    "teacher-d2",
    "teacher-d3",
    "variance-limited",
    "data-variance-limited",
    "data-resolution-d2",
    "data-resolution-d3",
}


def documented_runs() -> list[tuple[str, list[str]]]:
    """(preset path, --set overrides) of every `scaletui run presets/….toml …` command in the document."""
    runs = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        found = re.search(r"scaletui run (presets/[\w-]+\.toml[^`|]*)", line)
        if found:
            words = shlex.split(found.group(1))
            runs.append((words[0], [words[i + 1] for i, w in enumerate(words) if w == "--set"]))
    return runs


def test_every_reference_preset_has_a_documented_command_that_loads():
    runs = documented_runs()
    assert {Path(path).stem for path, _ in runs} >= REFERENCE_PRESETS
    for path, overrides in runs:
        load_config(DOC.parents[1] / path, overrides)


def shortened(path: str) -> list[str]:
    """The same experiment at a fraction of the cost: three of its widths (and data sizes), three seeds, a
    tenth of the steps."""
    cfg = load_config(DOC.parents[1] / path)
    widths = cfg.model.widths[:3]
    steps = max(20, cfg.training.steps // 10)
    overrides = [f"model.widths={list(widths)}", "seeds.count=3", f"training.steps={steps}",
                 f"training.eval_every={max(1, steps // 10)}"]  # fmt: skip
    if len(cfg.data_sizes) > 1:
        overrides.append(f"data.n_train={list(cfg.data_sizes[:3])}")
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted({p for p, _ in documented_runs()}))
def test_a_shortened_reproduction_runs_and_fits(path, tmp_path):
    runs = tmp_path / "runs"
    ran = run_cli("run", str(DOC.parents[1] / path), "--runs-dir", str(runs), *shortened(path), timeout=900)
    assert ran.returncode == 0, ran.stderr
    along = ["--x", "data"] if len(load_config(DOC.parents[1] / path).data_sizes) > 1 else []
    fitted = run_cli("fit", "latest", "--runs-dir", str(runs), "--json", *along)
    assert fitted.returncode == 0, fitted.stderr
    for result in json.loads(fitted.stdout):  # one curve, or one per width of a data-size sweep
        assert result["fit"] is not None and result["fit"]["points"] == 3
