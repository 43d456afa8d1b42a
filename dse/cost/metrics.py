"""The metrics the cost model reports: the one table that objectives, constraints, reports and the
command line read (name, meaning, unit, and the phase that produces it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One metric of :meth:`peforge.dse.cost.model.CostModel.metrics`.

    ``unit`` is the unit of the stored value (SI; :func:`human` prints it readably); ``phase``
    the phase whose pricing produces it (``None``: every run).
    """

    label: str
    unit: str
    phase: str | None = None


METRICS: dict[str, Metric] = {
    "tokens_per_s": Metric("decode throughput", "tokens/s", phase="decode"),
    "prefill_tokens_per_s": Metric("prefill throughput", "tokens/s", phase="prefill"),
    "ttft_s": Metric("time to first token (TTFT)", "s", phase="prefill"),
    "tpot_s": Metric("time per output token (TPOT)", "s", phase="decode"),
    "j_per_token": Metric("energy per decoded token", "J/token", phase="decode"),
    "prefill_energy_j": Metric("prefill energy", "J", phase="prefill"),
    "decode_energy_j": Metric("decode energy", "J", phase="decode"),
    "area_mm2": Metric("area", "mm²"),
    "power_w": Metric("average power", "W"),
    "utilization": Metric("array utilization", "fraction"),
    "energy_j": Metric("energy of the run", "J"),
    "time_s": Metric("time of the run", "s"),
    "footprint_gib": Metric("memory footprint", "GiB"),
    "capacity_gib": Metric("memory capacity", "GiB"),
    "max_batch": Metric("largest batch that fits", "sequences"),
    "decode_s": Metric("decode time of the run", "s", phase="decode"),
    # systems of chips (peforge.dse.cost.system); one chip: chips 1, no communication
    "chips": Metric("chips of the system", "chips"),
    "comm_s": Metric("communication time of the run", "s"),
    "comm_share": Metric("share of the run's time in communication", "fraction"),
    "link_energy_j": Metric("link energy of the run", "J"),
    "bubble": Metric("prefill pipeline bubble", "fraction", phase="prefill"),
}

# metrics only a phase produces: prefill gives TTFT, decode gives TPOT and the per-token figures
PHASE_METRICS: dict[str, tuple[str, ...]] = {
    phase: tuple(name for name, m in METRICS.items() if m.phase == phase) for phase in ("prefill", "decode")
}


# Units with SI prefixes scaled (value in the base unit) and, for time, the clock's own units.
_PREFIXED = {"J", "W", "tokens/s", "J/token", "MAC/s", "B/s", "B"}
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
       (1e-12, "p"))
_TIME = ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def human(value: float, unit: str) -> str:
    """``value`` (in ``unit``, as :data:`METRICS` stores it) with three significant digits in a
    readable unit: ``7.80 h``, ``16.6 s``, ``420 µs``, ``31.2 mJ/token``, ``1.41 ktokens/s``, ``53.6 %``."""
    import math

    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "fraction":
        return f"{value * 100:.3g} %"
    if unit == "s":
        scale, name = next(((s, n) for s, n in _TIME if abs(value) >= s), _TIME[-1])
        return f"{value / scale:.3g} {name}"
    if unit in _PREFIXED and value != 0:
        scale, prefix = next(((s, p) for s, p in _SI if abs(value) >= s), _SI[-1])
        return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.4g} {unit}"
