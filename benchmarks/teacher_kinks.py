"""Where a teacher's kinks lie for a few bias stds: the measurement behind ``target.teacher_bias_std``'s default.

    python benchmarks/teacher_kinks.py [--sigmas 0 0.05 0.1 0.2 0.5] [--teachers 10]

For the teacher presets (d = 2 and 3 of 20 coordinates on [-0.5, 0.5]) and each σ, over teacher seeds
0..teachers-1: the fraction of hidden units whose pre-activation takes both signs on the data (their kink
crosses it), per layer; the median distance of a first-layer kink hyperplane from the origin; and how far
the teacher is from positively homogeneous, RMS of f(2x) − f(0) − 2(f(x) − f(0)) over RMS of 2(f(x) − f(0))
on the inner half of the domain. docs/SCIENCE.md ("Why the teacher has biases") reports the output.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from scaletui.config import load_config
from scaletui.presets import resolve_preset
from scaletui.targets import build_target, teacher_parameters

SAMPLES = 20_000


def measure(preset: str, sigma: float, teachers: int) -> tuple[list[float], float, list[float]]:
    """(crossing fraction per hidden layer, median first-layer kink distance, homogeneity defects)."""
    base = load_config(resolve_preset(preset)).target
    crossing: list[list[float]] = [[] for _ in base.teacher_hidden]
    distances, defects = [], []
    for seed in range(teachers):
        cfg = dataclasses.replace(base, teacher_seed=seed, teacher_bias_std=sigma)
        target = build_target(cfg)
        x = target.sample_inputs(SAMPLES, torch.Generator().manual_seed(1000 + seed), torch.float64)
        weights, biases = teacher_parameters(cfg)
        h = x
        for layer, (w, b) in enumerate(zip(weights[:-1], biases, strict=True)):
            pre = h @ w + b
            crossing[layer].append(float(((pre.max(0).values > 0) & (pre.min(0).values < 0)).double().mean()))
            h = torch.relu(pre)
        distances.append((biases[0].abs() / weights[0][: cfg.intrinsic_dim].norm(dim=0)).numpy())
        inner = 0.5 * x[:2000]
        f0 = target(torch.zeros((1, cfg.input_dim), dtype=torch.float64))
        scaled, twice = target(2 * inner) - f0, 2 * (target(inner) - f0)
        defects.append(float((scaled - twice).pow(2).mean().sqrt() / twice.pow(2).mean().sqrt()))
    return [float(np.mean(c)) for c in crossing], float(np.median(np.concatenate(distances))), defects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.5])
    parser.add_argument("--teachers", type=int, default=10)
    args = parser.parse_args()
    print("| preset | σ | kinks crossing the data, per layer | median kink distance | homogeneity defect |")
    print("| --- | --- | --- | --- | --- |")
    for preset in ("teacher-d2", "teacher-d3"):
        for sigma in args.sigmas:
            crossing, distance, defects = measure(preset, sigma, args.teachers)
            layers = " / ".join(f"{c:.0%}" for c in crossing)
            print(f"| {preset} | {sigma:g} | {layers} | {distance:.2f} | {min(defects):.2f}–{max(defects):.2f} |")


if __name__ == "__main__":
    main()
