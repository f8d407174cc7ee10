"""Lottery tickets: mirror pairs in hand-built nets, ensembles against wide nets, and `scaletui inspect`."""

from __future__ import annotations

import numpy as np
import pytest

from scaletui.lottery import NUMPY_ACTIVATIONS, ensemble_versus_wide, find_mirror_pairs, inspect_model
from tests.conftest import run_cli

X = np.linspace(-2, 2, 401)[:, None]


def hand_built(perturbation: float = 1e-3) -> dict[str, np.ndarray]:
    """Six neurons: 0 & 3 and 1 & 4 are mirror pairs (up to ``perturbation``), 2 and 5 are not."""
    w = np.array([1.5, 0.7, 2.0, -1.5 + perturbation, -0.7, 0.5])
    b = np.array([0.3, -0.2, 1.0, 0.3, -0.2 - perturbation, -1.5])
    a = np.array([0.8, -0.4, 0.3, 0.8, -0.4, 0.1])
    return {"W0": w[None, :], "b0": b[None, :], "W1": a[:, None], "b1": np.array([[0.05]])}


def test_known_mirror_pairs_are_found_and_nothing_else():
    report = inspect_model(hand_built(), "silu", X, width=6, seed=0)
    assert {(p.first, p.second) for p in report.pairs} == {(0, 3), (1, 4)}
    assert report.paired_fraction == pytest.approx(4 / 6)
    assert report.paired.tolist() == [True, True, False, True, True, False]
    assert all(p.distance < 2e-3 for p in report.pairs)  # 1e-3 off, relative to sizes of about 0.7–1.5


def test_a_pair_further_apart_than_the_tolerance_is_not_a_pair():
    report = inspect_model(hand_built(perturbation=0.5), "silu", X, width=6, seed=0, tolerance=0.1)
    assert report.pairs == []
    loose = inspect_model(hand_built(perturbation=0.5), "silu", X, width=6, seed=0, tolerance=1.0)
    assert {(p.first, p.second) for p in loose.pairs} >= {(0, 3), (1, 4)}


def test_flat_neurons_do_not_pair_with_each_other():
    pairs = find_mirror_pairs(np.array([[0.0], [0.0], [1.0], [-1.0]]), np.array([0.5, 0.5, 0.2, 0.2]), 0.1)
    assert [(i, j) for i, j, _ in pairs] == [(2, 3)]


def test_each_pairs_contribution_is_its_two_terms_and_a_small_symmetric_pair_is_a_parabola():
    weights = hand_built()
    report = inspect_model(weights, "silu", X, width=6, seed=0)
    silu = NUMPY_ACTIVATIONS["silu"]
    terms = weights["W1"][:, 0] * silu(X @ weights["W0"] + weights["b0"])
    for pair in report.pairs:
        together = terms[:, pair.first] + terms[:, pair.second]
        assert pair.contribution_rms == pytest.approx(np.sqrt(np.mean((together - together.mean()) ** 2)))
    # σ(wx + b) + σ(−wx + b) = 2σ(b) + σ''(b)w²x² + O(x⁴): a narrow exact pair is almost a parabola.
    small = {"W0": np.array([[0.2, -0.2]]), "b0": np.array([[0.1, 0.1]]), "W1": np.array([[1.0], [1.0]])}
    (pair,) = inspect_model({**small, "b1": np.zeros((1, 1))}, "silu", X, width=2, seed=0).pairs
    assert pair.quadratic_r2 > 0.9999
    assert (pair.first, pair.second) == (0, 1)


def test_deeper_nets_are_refused():
    weights = {**hand_built(), "W2": np.ones((1, 1)), "b2": np.zeros((1, 1))}
    with pytest.raises(ValueError, match="one hidden layer"):
        inspect_model(weights, "silu", X, width=6, seed=0)


def test_ensembles_against_wide_nets_by_hand():
    y = np.zeros(3)
    outputs = {
        2: np.array([[1.0, 1, 1], [-1, -1, -1], [2, 2, 2], [-2, -2, -2]]),  # losses 1, 1, 4, 4; pairs cancel
        4: np.array([[0.5, 0.5, 0.5], [0.1, 0.1, 0.1]]),  # losses 0.25 and 0.01
        3: np.array([[0.3, 0.3, 0.3]]),  # not a multiple of 2 or of 4's divisors: never compared with 2
        8: np.array([[np.nan, 0, 0]]),  # not finite: left out, so nothing compares with 8
    }
    rows = ensemble_versus_wide(outputs, y)
    assert [(r.width, r.k, r.wide_width) for r in rows] == [(2, 2, 4)]
    (row,) = rows
    assert row.groups == 2
    assert row.single_loss == pytest.approx(2.5)  # median of 1, 1, 4, 4
    assert row.ensemble_loss == pytest.approx(0.0)  # (1 + −1)/2 and (2 + −2)/2 are exact
    assert row.wide_loss == pytest.approx(0.13)


def test_inspect_cli_shows_the_mirror_pairs_of_a_trained_silu_run(tmp_path):
    runs = tmp_path / "runs"
    trained = run_cli(
        "run", "smoke", "--runs-dir", str(runs), "--set", "model.widths=[4, 8, 16]", "--set", "seeds.count=4",
        "--set", 'training.optimizer="lm"', "--set", 'training.dtype="float64"', "--set", "training.steps=120",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    shown = run_cli("inspect", "latest", "--runs-dir", str(runs), "--width", "16", "--seed", "1", "--tolerance", "1")
    assert shown.returncode == 0, shown.stderr
    assert "width 16, seed 1:" in shown.stdout and "mirror pairs" in shown.stdout
    assert "Is a wide net an ensemble of narrow ones?" in shown.stdout
    assert "hidden neurons: bias b (up) vs input weight w (across)" in shown.stdout
    missing = run_cli("inspect", "latest", "--runs-dir", str(runs), "--width", "5")
    assert missing.returncode == 2
    assert "width 5 has no finished model (finished widths: 4, 8, 16)" in missing.stderr


def test_twins_count_the_pairs_chance_would_make():
    report = inspect_model(hand_built(), "silu", X, width=6, seed=0)
    assert report.twins == 0  # the hand-built net has mirror pairs and no same-sign twins
    twins = {"W0": np.array([[1.0, 1.0, -0.3]]), "b0": np.array([[0.2, 0.2, 0.9]]), "W1": np.ones((3, 1))}
    report = inspect_model({**twins, "b1": np.zeros((1, 1))}, "silu", X, width=3, seed=0)
    assert report.twins == 1 and report.pairs == []
