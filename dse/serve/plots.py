"""Pictures of a serving run: latency percentiles, and batch size and KV use over time (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...files import write_atomic
from .sim import SimResult


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_png(result: SimResult, path: Path | str, *, title: str = "") -> Path:
    """TTFT, TPOT and end-to-end latency against their percentile (P0..P100), P50/P90/P99 marked."""
    from .metrics import percentile

    plt = _figure()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (name, values) in zip(axes, (("TTFT", result.ttft_s), ("TPOT", result.tpot_s),
                                         ("end-to-end", result.e2e_s))):
        v = np.sort(values[~np.isnan(values)])
        if len(v):
            ax.plot(100 * np.arange(1, len(v) + 1) / len(v), v, lw=1.5)
            for p, color in ((50, "tab:green"), (90, "tab:orange"), (99, "tab:red")):
                ax.axhline(percentile(v, p), color=color, lw=0.8, ls="--", label=f"P{p} {percentile(v, p):.3g} s")
            ax.legend(fontsize=8)
        ax.set_xlabel("percentile of requests")
        ax.set_ylabel(f"{name} (s)")
        ax.set_yscale("log" if len(v) and v[0] > 0 else "linear")
        ax.grid(alpha=0.3)
    fig.suptitle(title or "latency percentiles")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def timeline_png(result: SimResult, path: Path | str, *, title: str = "") -> Path:
    """Running requests (batch size) and KV-cache blocks in use after each simulated step."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    t = result.series["t_s"]
    ax.step(t, result.series["running"], where="post", color="tab:blue", lw=1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("running requests", color="tab:blue")
    kv = ax.twinx()
    kv.step(t, 100 * result.series["kv_blocks"] / max(result.kv_blocks, 1), where="post", color="tab:red", lw=1)
    kv.set_ylabel("KV cache in use (%)", color="tab:red")
    kv.set_ylim(0, 105)
    ax.set_title(title or "batch size and KV-cache use")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return Path(path)
