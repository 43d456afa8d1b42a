"""The metrics the cost model reports: the one table that objectives, constraints, reports and the
command line read (name, meaning, unit, and the phase that produces it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One metric of :meth:`peforge.dse.cost.model.CostModel.metrics`.

    ``unit`` is the unit of the stored value (SI); ``show_unit`` and ``show_scale`` how
    ``peforge evaluate`` prints it (value × scale, in that unit); ``phase`` the phase whose
    pricing produces it (``None``: every run).
    """

    label: str
    unit: str
    show_unit: str
    show_scale: float = 1.0
    phase: str | None = None


METRICS: dict[str, Metric] = {
    "tokens_per_s": Metric("decode throughput", "tokens/s", "tokens/s", phase="decode"),
    "prefill_tokens_per_s": Metric("prefill throughput", "tokens/s", "tokens/s", phase="prefill"),
    "ttft_s": Metric("time to first token (TTFT)", "s", "ms", 1e3, phase="prefill"),
    "tpot_s": Metric("time per output token (TPOT)", "s", "ms", 1e3, phase="decode"),
    "j_per_token": Metric("energy per decoded token", "J/token", "mJ", 1e3, phase="decode"),
    "prefill_energy_j": Metric("prefill energy", "J", "J", phase="prefill"),
    "decode_energy_j": Metric("decode energy", "J", "J", phase="decode"),
    "area_mm2": Metric("area", "mm²", "mm²"),
    "power_w": Metric("average power", "W", "W"),
    "utilization": Metric("array utilization", "fraction", "%", 100.0),
    "energy_j": Metric("energy of the run", "J", "J"),
    "time_s": Metric("time of the run", "s", "s"),
}

# metrics only a phase produces: prefill gives TTFT, decode gives TPOT and the per-token figures
PHASE_METRICS: dict[str, tuple[str, ...]] = {
    phase: tuple(name for name, m in METRICS.items() if m.phase == phase) for phase in ("prefill", "decode")
}
