"""The lottery-ticket picture, measured: mirror pairs of neurons, and wide nets against ensembles of narrow ones.

Liu & Tegmark explain SiLU's N^-1 law by neurons that pair up as (w, b) and (−w, b): each pair's output
a·σ(w·x + b) + a'·σ(−w·x + b) is a smooth bump that approximates x² with its own error (a "ticket"), and a
wide net averages many. This module finds those pairs in trained weights and asks the run the direct
question: is a net of width k·w as good as k nets of width w averaged? Pure numpy: arrays in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

DEFAULT_TOLERANCE = 0.1  # relative distance between (w_i, b_i) and (−w_j, b_j) below which two neurons pair


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))


def _gelu(z: np.ndarray) -> np.ndarray:
    return 0.5 * z * (1 + erf(z / np.sqrt(2)))


NUMPY_ACTIVATIONS = {
    "silu": lambda z: z * _sigmoid(z),
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "gelu": _gelu,
    "sigmoid": _sigmoid,
}


@dataclass(frozen=True)
class MirrorPair:
    """Two hidden neurons with (w_j, b_j) ≈ (−w_i, b_i), and what they add to the output together."""

    first: int
    second: int
    distance: float  # ‖(w_i + w_j, b_i − b_j)‖ relative to the pair's own size
    contribution_rms: float  # RMS over the test inputs of the pair's output, less its mean
    quadratic_r2: float | None  # how well c₀ + c₂x² describes that output (one input dimension only)


@dataclass(frozen=True)
class TicketReport:
    """One model's hidden layer: every neuron's weights, its mirror pairs and their share of the output."""

    width: int
    seed: int
    activation: str
    input_weights: np.ndarray  # (width, d)
    biases: np.ndarray  # (width,)
    output_weights: np.ndarray  # (width,)
    pairs: list[MirrorPair]
    tolerance: float
    paired_rms: float  # RMS variation of the output of all paired neurons together
    unpaired_rms: float  # and of all the other neurons together
    twins: int  # pairs (w, b) ≈ (w', b') at the same tolerance: how many "pairs" chance alone makes

    @property
    def paired_fraction(self) -> float:
        return 2 * len(self.pairs) / self.width

    @property
    def paired(self) -> np.ndarray:
        return _paired_mask(self.pairs, self.width)


def _paired_mask(pairs: list[MirrorPair], width: int) -> np.ndarray:
    mask = np.zeros(width, dtype=bool)
    for pair in pairs:
        mask[[pair.first, pair.second]] = True
    return mask


def find_mirror_pairs(
    input_weights: np.ndarray, biases: np.ndarray, tolerance: float, mirrored: bool = True
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, distance) with (w_j, b_j) ≈ (−w_i, b_i), greedily from the closest; each neuron in one pair.

    Distances are relative to the pair's size, so the tolerance means the same for big and small neurons.
    Neurons whose input weights vanish are left out: (0, b) mirrors itself and says nothing about tickets.
    ``mirrored=False`` finds twins (w_j, b_j) ≈ (w_i, b_i) instead: the count chance alone would give.
    """
    w = np.asarray(input_weights, dtype=float).reshape(len(biases), -1)
    b = np.asarray(biases, dtype=float)
    size_sq = (w**2).sum(axis=1) + b**2
    scale = float(np.sqrt(np.median(size_sq))) if len(b) else 0.0
    active = np.sqrt((w**2).sum(axis=1)) > 1e-6 * max(scale, 1e-300)
    sign = 1.0 if mirrored else -1.0
    mismatch = ((w[:, None, :] + sign * w[None, :, :]) ** 2).sum(axis=2) + (b[:, None] - b[None, :]) ** 2
    distance = np.sqrt(mismatch / np.maximum((size_sq[:, None] + size_sq[None, :]) / 2, 1e-300))
    candidates = [
        (float(distance[i, j]), i, j)
        for i in range(len(b))
        for j in range(i + 1, len(b))
        if active[i] and active[j] and distance[i, j] <= tolerance
    ]
    taken: set[int] = set()
    pairs = []
    for dist, i, j in sorted(candidates):
        if i not in taken and j not in taken:
            taken |= {i, j}
            pairs.append((i, j, dist))
    return pairs


def _variation_rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean((values - values.mean()) ** 2)))


def _quadratic_r2(x: np.ndarray, values: np.ndarray) -> float | None:
    """R² of the least-squares fit c₀ + c₂x² to ``values`` on one-dimensional inputs."""
    if x.shape[1] != 1:
        return None
    design = np.stack([np.ones(len(x)), x[:, 0] ** 2], axis=1)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    total = float(((values - values.mean()) ** 2).sum())
    return 1 - float(((values - design @ coef) ** 2).sum()) / total if total > 0 else None


def inspect_model(
    weights: dict[str, np.ndarray],
    activation: str,
    x: np.ndarray,
    *,
    width: int,
    seed: int,
    tolerance: float = DEFAULT_TOLERANCE,
) -> TicketReport:
    """Mirror pairs of a one-hidden-layer model (weights as stored: W0 (d, w), b0 (1, w), W1 (w, 1), b1)."""
    if "W2" in weights:
        raise ValueError("mirror pairs are defined for nets with one hidden layer; this run has more")
    input_weights = np.asarray(weights["W0"], dtype=float).T  # (w, d)
    biases = np.asarray(weights["b0"], dtype=float).reshape(-1)
    output_weights = np.asarray(weights["W1"], dtype=float).reshape(-1)
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    terms = output_weights * NUMPY_ACTIVATIONS[activation](x @ input_weights.T + biases)  # (n, w): each neuron's term
    pairs = [
        MirrorPair(i, j, dist, _variation_rms(terms[:, i] + terms[:, j]), _quadratic_r2(x, terms[:, i] + terms[:, j]))
        for i, j, dist in find_mirror_pairs(input_weights, biases, tolerance)
    ]
    paired = _paired_mask(pairs, len(biases))
    return TicketReport(
        width,
        seed,
        activation,
        input_weights,
        biases,
        output_weights,
        pairs,
        tolerance,
        paired_rms=_variation_rms(terms[:, paired].sum(axis=1)),
        unpaired_rms=_variation_rms(terms[:, ~paired].sum(axis=1)),
        twins=len(find_mirror_pairs(input_weights, biases, tolerance, mirrored=False)),
    )


@dataclass(frozen=True)
class EnsembleComparison:
    """k seeds of width w averaged, beside single models of width k·w from the same run."""

    width: int
    k: int
    wide_width: int
    groups: int  # disjoint groups of k seeds that were averaged
    single_loss: float  # median test loss of one model of width w
    ensemble_loss: float  # median over groups of the averaged group's test loss
    wide_loss: float  # median test loss of one model of width k·w


def ensemble_versus_wide(outputs_by_width: dict[int, np.ndarray], y: np.ndarray) -> list[EnsembleComparison]:
    """For every pair of widths w and k·w in the run (k ≥ 2, at least k finite models at w), the comparison.

    Seeds are split into disjoint groups of k in seed order, so no model is counted twice.
    """
    finite = {w: out[np.all(np.isfinite(out), axis=1)] for w, out in outputs_by_width.items()}
    losses = {w: ((out - y) ** 2).mean(axis=1) for w, out in finite.items()}
    rows = []
    for w in sorted(finite):
        for wide in sorted(finite):
            k = wide // w
            if wide <= w or wide % w or k < 2 or len(finite[w]) < k or not len(finite[wide]):
                continue
            groups = len(finite[w]) // k
            grouped = finite[w][: groups * k].reshape(groups, k, -1).mean(axis=1)
            rows.append(
                EnsembleComparison(
                    width=w,
                    k=k,
                    wide_width=wide,
                    groups=groups,
                    single_loss=float(np.median(losses[w])),
                    ensemble_loss=float(np.median(((grouped - y) ** 2).mean(axis=1))),
                    wide_loss=float(np.median(losses[wide])),
                )
            )
    return rows


def inspect_run(run, width: int | None = None, seed: int | None = None, tolerance: float = DEFAULT_TOLERANCE):
    """The ticket report of one finished model of a stored run (default: the widest width, its first seed)."""
    models = run.models()
    if not len(models):
        raise ValueError(f"{run.id}: no finished models yet")
    widths = sorted(set(models.width.tolist()))
    width = widths[-1] if width is None else width
    if width not in widths:
        raise ValueError(f"width {width} has no finished model (finished widths: {', '.join(map(str, widths))})")
    seeds = sorted(models.seed[models.width == width].tolist())
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise ValueError(f"seed {seed} is not finished at width {width} (finished seeds: {seeds[0]}–{seeds[-1]})")
    x, _ = run.test_set()
    return inspect_model(
        run.weights(width, seed), run.config.model.activation, x, width=width, seed=seed, tolerance=tolerance
    )


def run_ensemble_comparison(run) -> list[EnsembleComparison]:
    """:func:`ensemble_versus_wide` over every finished width of a stored run."""
    models = run.models()
    if not len(models):
        return []
    _, y = run.test_set()
    return ensemble_versus_wide({w: run.outputs(w)[1] for w in sorted(set(models.width.tolist()))}, y)
