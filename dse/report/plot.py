"""``pareto.png``: the study's trials in every pair of objectives, the front highlighted."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .tables import StudyTables

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _log_worthy(values: np.ndarray) -> bool:
    values = values[np.isfinite(values)]
    return len(values) > 1 and values.min() > 0 and values.max() / values.min() > 30


def _color_key(tables: "StudyTables") -> str | None:
    """The parameter that colors the points: the PE family if the space searches it."""
    for p in tables.space.params:
        if p.path == "compute.pe" and p.kind == "categorical":
            return p.name
    return None


def pareto_png(tables: "StudyTables", path: Path) -> None:
    """Draw the projections and save them to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    from .tables import axis_label

    objectives = tables.objectives
    directions = tables.directions
    frame = tables.frame
    pairs = list(itertools.combinations(range(len(objectives)), 2)) or [(None, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.6), squeeze=False)
    feasible = frame[frame["feasible"]]
    infeasible = frame[(frame["state"] == "COMPLETE") & ~frame["feasible"]]
    front = tables.front()
    key = _color_key(tables)
    groups = sorted(feasible[key].dropna().astype(str).unique()) if key else []
    colors = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    for ax, (i, j) in zip(axes[0], pairs):
        ycol = objectives[j]
        xcol = "trial" if i is None else objectives[i]
        ax.scatter(infeasible[xcol], infeasible[ycol], s=10, marker="x", color="#bbbbbb", linewidths=0.6,
                   label="infeasible (violates a constraint)")
        if key:
            for group in groups:
                rows = feasible[feasible[key].astype(str) == group]
                ax.scatter(rows[xcol], rows[ycol], s=9, color=colors[group], alpha=0.25, linewidths=0)
                on_front = front[front[key].astype(str) == group]
                ax.scatter(on_front[xcol], on_front[ycol], s=42, color=colors[group], edgecolors="black",
                           linewidths=0.7, label=f"Pareto front: {group}", zorder=3)
        else:
            ax.scatter(feasible[xcol], feasible[ycol], s=9, color=PALETTE[0], alpha=0.25, linewidths=0)
            ax.scatter(front[xcol], front[ycol], s=42, color=PALETTE[0], edgecolors="black", linewidths=0.7,
                       label="Pareto front", zorder=3)
        for column, setter in ((xcol, ax.set_xscale), (ycol, ax.set_yscale)):
            if column != "trial" and _log_worthy(frame[column].to_numpy(dtype=float)):
                setter("log")
        ax.set_xlabel("trial" if i is None else f"{axis_label(xcol)}, {_better(directions[i])}")
        ax.set_ylabel(f"{axis_label(ycol)}, {_better(directions[j])}")
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    workload = tables.manifest.get("workload", {})
    fig.suptitle(f"{tables.name}: {workload.get('model', '')} {workload.get('quant', '')}, "
                 f"prompt {workload.get('seq', '')}, {workload.get('gen', '')} generated tokens — "
                 f"{len(frame)} trials, {int(frame['feasible'].sum())} feasible, {len(front)} on the front",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 0.95))
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _better(direction: str) -> str:
    return "higher is better" if direction == "maximize" else "lower is better"
