"""TwoNN: the intrinsic dimension of a point cloud from its two nearest neighbours (Facco et al. 2017).

Sharma & Kaplan's law predicts α ≈ 4/d with d the dimension of the data manifold, not of the input
space, so the tool measures d from the data instead of trusting the config. For each point the ratio
μ = r₂/r₁ of its second to first neighbour distance follows P(μ) = d·μ^(−d−1) on a locally uniform
manifold, so −log(1 − F(μ)) = d·log μ: d is the slope of that line through the origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

DISCARD_FRACTION = 0.1  # the largest ratios come from sparse regions and bias d low (Facco et al.)


@dataclass(frozen=True)
class IntrinsicDimension:
    """A TwoNN estimate and how many points it rests on."""

    dimension: float
    points: int


def two_nn_dimension(points: np.ndarray, discard: float = DISCARD_FRACTION) -> IntrinsicDimension:
    """Estimate the intrinsic dimension of ``points`` (n, D); duplicates are ignored, not counted as d = 0."""
    points = np.asarray(points, dtype=float)
    if points.ndim == 1:
        points = points[:, None]
    unique = np.unique(points, axis=0)
    if len(unique) < 10:
        raise ValueError(f"TwoNN needs at least 10 distinct points, got {len(unique)}")
    distances, _ = cKDTree(unique).query(unique, k=3)
    ratios = np.sort(distances[:, 2] / distances[:, 1])
    kept = ratios[: max(2, int(len(ratios) * (1 - discard)))]
    kept = kept[kept > 1.0]  # equal first and second distances (a lattice) carry no information on d
    if kept.size < 2:
        raise ValueError("TwoNN found no spread in neighbour distances (points on a regular grid?)")
    empirical = np.arange(1, len(ratios) + 1)[np.searchsorted(ratios, kept, side="right") - 1] / len(ratios)
    x, y = np.log(kept), -np.log(1 - empirical)
    return IntrinsicDimension(float(np.dot(x, y) / np.dot(x, x)), len(unique))
