"""Pareto fronts and hypervolume of objective tables, directions as Optuna spells them."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def as_minimized(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """``values`` (points x objectives) with maximized columns negated, so smaller is better."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(values, dtype=float) * signs


def front_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (duplicates of a front point all kept)."""
    points = as_minimized(values, directions)
    n = len(points)
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep
    # Sorting by the first objective means only earlier rows can dominate a later one.
    order = np.lexsort(points.T[::-1])
    sorted_points = points[order]
    for rank in range(n):
        row = sorted_points[rank]
        earlier = sorted_points[:rank][keep[order[:rank]]]
        if len(earlier) and np.any(np.all(earlier <= row, axis=1) & np.any(earlier < row, axis=1)):
            keep[order[rank]] = False
    return keep


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Volume dominated by ``values`` and bounded by ``reference`` (a point worse than all of them,
    in the objectives' own directions). Exact; 2 objectives by a sweep, more by slicing."""
    points = as_minimized(values, directions)
    ref = as_minimized(np.asarray(reference, dtype=float)[None, :], directions)[0]
    points = points[np.all(points < ref, axis=1)]
    if len(points) == 0:
        return 0.0
    points = points[front_mask(points, ["minimize"] * points.shape[1])]
    return _volume(points, ref)


def _volume(points: np.ndarray, ref: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    if points.shape[1] == 2:
        order = np.argsort(points[:, 0])
        xs, ys = points[order, 0], points[order, 1]
        best_y = np.minimum.accumulate(ys)
        widths = np.diff(np.append(xs, ref[0]))
        return float(np.sum(widths * (ref[1] - best_y)))
    # Slice along the last objective: between consecutive levels the dominated set's
    # cross-section is the hypervolume (one dimension fewer) of the points below the slice.
    order = np.argsort(points[:, -1])
    levels = np.append(points[order, -1], ref[-1])
    total = 0.0
    for i in range(len(order)):
        height = levels[i + 1] - levels[i]
        if height > 0:
            below = points[order[: i + 1], :-1]
            total += height * _volume(below[front_mask(below, ["minimize"] * below.shape[1])], ref[:-1])
    return total
