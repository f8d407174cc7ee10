"""TwoNN against manifolds of known dimension."""

from __future__ import annotations

import re

import numpy as np
import pytest

from scaletui.intrinsic import two_nn_dimension
from tests.conftest import run_cli


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6])
def test_a_cube_linearly_embedded_in_20_dimensions_has_its_own_dimension(d):
    rng = np.random.default_rng(d)
    cube = rng.uniform(-0.5, 0.5, size=(4000, d))
    embedding = rng.normal(size=(d, 20))  # a random linear map into 20 dimensions, full rank
    estimate = two_nn_dimension(cube @ embedding)
    assert abs(estimate.dimension - d) < 0.12 * d + 0.1, estimate


def test_a_curved_manifold_counts_its_own_dimension_not_the_ambient_one():
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, size=(3000, 2))
    torus = np.stack(
        [(2 + np.cos(angles[:, 0])) * np.cos(angles[:, 1]), (2 + np.cos(angles[:, 0])) * np.sin(angles[:, 1]),
         np.sin(angles[:, 0])], axis=1,
    )  # fmt: skip
    assert abs(two_nn_dimension(torus).dimension - 2) < 0.25


def test_duplicates_are_ignored_and_too_few_points_are_refused():
    rng = np.random.default_rng(1)
    line = rng.uniform(size=(500, 1)) @ rng.normal(size=(1, 5))
    doubled = np.concatenate([line, line])
    assert two_nn_dimension(doubled).points == 500
    assert abs(two_nn_dimension(doubled).dimension - 1) < 0.15
    with pytest.raises(ValueError, match="at least 10 distinct points"):
        two_nn_dimension(np.zeros((50, 3)))


def test_show_puts_the_measured_dimension_of_a_teacher_runs_data_beside_4_over_d(tmp_path):
    runs = tmp_path / "runs"
    trained = run_cli(
        "run", "smoke", "--runs-dir", str(runs), "--set", 'target.kind="teacher"', "--set", "target.input_dim=20",
        "--set", "target.intrinsic_dim=3", "--set", "target.domain=[-0.5, 0.5]", "--set", "data.n_test=2000",
        "--set", "model.widths=[4, 8]", "--set", "training.steps=20",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    shown = run_cli("show", "latest", "--runs-dir", str(runs), "--no-plots")
    assert shown.returncode == 0, shown.stderr
    found = re.search(r"inputs: TwoNN d = ([0-9.]+) \(checks the sampler\) → 4/d = ([0-9.]+)", shown.stdout)
    assert found, shown.stdout
    assert abs(float(found.group(1)) - 3) < 0.3
    assert "4/d = 1.33 (resolution, piecewise linear)" in shown.stdout  # the config's d, for reference
