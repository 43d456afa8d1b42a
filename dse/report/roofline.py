"""A design's roofline: each operator's arithmetic intensity against the throughput it attains,
under the design's compute roof (peak MACs/s of its arrays) and memory roof (DRAM bandwidth)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ...files import write_atomic
from ..cost.metrics import human

_MARKERS = {"gemm": "o", "gemv": "s", "attention": "^"}


def points(evaluation: Any) -> Any:
    """The matrix operators of ``evaluation`` (a :class:`peforge.dse.cost.Evaluation`) that ran on
    the arrays, with ``intensity`` (MACs per DRAM byte) and ``attained`` (MACs per second)."""
    ops = evaluation.operators
    ops = ops[(ops["macs"] > 0) & (ops["bound"] != "pim") & (ops["time_s"] > 0) & (ops["dram_bytes"] > 0)].copy()
    ops["intensity"] = ops["macs"] / ops["dram_bytes"]
    ops["attained"] = ops["macs"] / ops["time_s"]
    return ops


def figure(evaluation: Any):
    """A matplotlib figure of the roofline (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = points(evaluation)
    peak, bandwidth = evaluation.peaks["macs_per_s"], evaluation.peaks["dram_bytes_per_s"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    low = min([peak / bandwidth / 100, *(ops["intensity"].tolist() or [1.0])]) / 2
    high = max([peak / bandwidth * 100, *(ops["intensity"].tolist() or [1.0])]) * 2
    x = np.geomspace(low, high, 200)
    ax.plot(x, np.minimum(peak, bandwidth * x), color="#444", lw=1.5,
            label=f"roofs: {human(peak, 'MAC/s')}, {human(bandwidth, 'B/s')}")
    for (phase, kind), group in ops.groupby(["phase", "kind"]):
        ax.scatter(group["intensity"], group["attained"], marker=_MARKERS.get(kind, "o"),
                   color="#1f77b4" if phase == "prefill" else "#d62728", label=f"{phase} {kind}", alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (MACs per DRAM byte)")
    ax.set_ylabel("attained throughput (MACs/s)")
    ax.set_title(f"{evaluation.design} on {evaluation.model}")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def roofline_png(evaluation: Any, path: Path) -> Path:
    """Write the roofline to ``path`` (PNG, atomically)."""
    import matplotlib.pyplot as plt

    fig = figure(evaluation)
    try:
        return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)


def roofline_svg(evaluation: Any) -> str:
    """The roofline as SVG text, for embedding in a page."""
    import matplotlib.pyplot as plt

    fig = figure(evaluation)
    try:
        buffer = io.StringIO()
        # no RDF metadata block: the page stays small and names no outside address
        fig.savefig(buffer, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
        text = buffer.getvalue()
    finally:
        plt.close(fig)
    return text[text.index("<svg"):]
