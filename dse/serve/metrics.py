"""Serving metrics of a simulated run: latency percentiles, throughput, goodput, the SLO rate.

Percentiles are nearest-rank: P-th of ``n`` sorted values is the ``ceil(P / 100 x n)``-th
(a value that occurred, never an interpolation). Goodput counts the requests that meet both
SLOs themselves (their TTFT and their TPOT) per second of the run (first arrival to last
finish). A run meets the SLO when its P99 TTFT and its P99 TPOT are within their limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .sim import SimResult
from .trace import Trace

__all__ = ["SLO", "percentile", "summarize", "max_rate", "METRIC_LABELS"]

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True, kw_only=True)
class SLO:
    """Service-level objectives: P99 time to first token and P99 time per output token (s)."""

    ttft_p99_s: float = 2.0
    tpot_p99_s: float = 0.1

    def __post_init__(self):
        for name in ("ttft_p99_s", "tpot_p99_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}={value!r}: must be a positive number of seconds")

    @classmethod
    def parse(cls, text: str) -> SLO:
        """``ttft_p99=2,tpot_p99=0.1`` (seconds)."""
        keys = {"ttft_p99": "ttft_p99_s", "tpot_p99": "tpot_p99_s"}
        values = {}
        for item in filter(None, (x.strip() for x in text.split(","))):
            key, _, value = item.partition("=")
            if key not in keys:
                raise ValueError(f"--slo {text}: {item!r}: allowed keys {', '.join(keys)} as key=seconds")
            try:
                values[keys[key]] = float(value)
            except ValueError:
                raise ValueError(f"--slo {text}: {key}={value!r} is not a number of seconds") from None
        return cls(**values)


def percentile(values: np.ndarray, p: float) -> float:
    """Nearest-rank ``p``-th percentile of ``values`` (NaNs dropped; NaN when none is left)."""
    v = np.sort(np.asarray(values, dtype=np.float64)[~np.isnan(values)])
    if not len(v):
        return math.nan
    rank = max(math.ceil(p / 100 * len(v)), 1)
    return float(v[rank - 1])


def summarize(result: SimResult, slo: SLO | None = None) -> dict[str, float]:
    """Every metric of a run (keys end in their unit)."""
    out: dict[str, float] = {}
    for name, values in (("ttft", result.ttft_s), ("tpot", result.tpot_s), ("e2e", result.e2e_s)):
        for p in PERCENTILES:
            out[f"{name}_p{p}_s"] = percentile(values, p)
        out[f"{name}_mean_s"] = float(np.nanmean(values)) if np.any(~np.isnan(values)) else math.nan
    n = len(result.arrival_s)
    span = float(result.finish_s.max() - result.arrival_s.min())
    tokens = float(result.output.sum())
    out.update(requests=float(n), duration_s=span, throughput_rps=n / span, tokens_per_s=tokens / span,
               energy_per_request_j=result.energy_j / n, peak_kv_blocks=float(result.peak_kv_blocks),
               kv_blocks=float(result.kv_blocks),
               peak_kv_use=result.peak_kv_use,
               kv_fragmentation=(1 - result.peak_kv_tokens / (result.peak_kv_blocks * result.block_tokens)
                                 if result.peak_kv_blocks else 0.0),
               peak_running=float(result.peak_running), preemptions=float(result.preemptions),
               mean_in_system=result.in_system_s / span, area_mm2=result.area_mm2,
               power_w=result.energy_j / span)
    if slo is not None:
        tpot = np.nan_to_num(result.tpot_s, nan=0.0)
        good = (result.ttft_s <= slo.ttft_p99_s) & (tpot <= slo.tpot_p99_s)
        out["goodput_rps"] = float(good.sum()) / span
        out["slo_met"] = float(meets(out, slo))
        out["goodput_per_mm2"] = out["goodput_rps"] / result.area_mm2
        out["goodput_per_w"] = out["goodput_rps"] / out["power_w"] if out["power_w"] > 0 else 0.0
    return out


def meets(metrics: dict[str, float], slo: SLO) -> bool:
    """Whether a run's P99 TTFT and P99 TPOT are within ``slo`` (no TPOT: one-token requests only)."""
    tpot = metrics["tpot_p99_s"]
    return metrics["ttft_p99_s"] <= slo.ttft_p99_s and (math.isnan(tpot) or tpot <= slo.tpot_p99_s)


def max_rate(run: Callable[[Trace], SimResult], trace: Trace, slo: SLO, *, tolerance: float = 0.01,
             start_rps: float | None = None, top_rps: float = 1e6) -> tuple[float, dict[str, float]]:
    """The highest arrival rate (requests/s) at which ``run`` of ``trace`` (its arrivals scaled
    to the rate, :meth:`Trace.at_rate`) meets ``slo``, by doubling then bisection until the
    failing rate is within ``tolerance`` of the meeting one; with the metrics at that rate.
    0.0 when even a slow trickle (every request alone) misses the SLO."""
    def check(rate: float) -> tuple[bool, dict[str, float]]:
        metrics = summarize(run(trace.at_rate(rate)), slo)
        return meets(metrics, slo), metrics

    guess = start_rps or 1.0
    ok, metrics = check(guess)
    if ok:
        lo, lo_metrics, hi = guess, metrics, None
        while hi is None:
            if lo * 2 > top_rps:
                return lo, lo_metrics
            ok, metrics = check(lo * 2)
            if ok:
                lo, lo_metrics = lo * 2, metrics
            else:
                hi = lo * 2
    else:
        hi, lo, lo_metrics = guess, None, None
        while lo is None:
            rate = hi / 2
            if rate < 1e-6:
                return 0.0, metrics
            ok, metrics = check(rate)
            if ok:
                lo, lo_metrics = rate, metrics
            else:
                hi = rate
    while hi / lo > 1 + tolerance:
        mid = math.sqrt(lo * hi)
        ok, metrics = check(mid)
        if ok:
            lo, lo_metrics = mid, metrics
        else:
            hi = mid
    return lo, lo_metrics


METRIC_LABELS = {
    "ttft_p50_s": ("TTFT P50", "s"), "ttft_p90_s": ("TTFT P90", "s"), "ttft_p99_s": ("TTFT P99", "s"),
    "tpot_p50_s": ("TPOT P50", "s"), "tpot_p90_s": ("TPOT P90", "s"), "tpot_p99_s": ("TPOT P99", "s"),
    "e2e_p50_s": ("end-to-end P50", "s"), "e2e_p90_s": ("end-to-end P90", "s"), "e2e_p99_s": ("end-to-end P99", "s"),
    "throughput_rps": ("requests/s", "req/s"), "tokens_per_s": ("output tokens/s", "tok/s"),
    "goodput_rps": ("goodput (meets SLO)", "req/s"), "energy_per_request_j": ("energy per request", "J"),
    "peak_kv_use": ("peak KV-cache use", ""), "kv_fragmentation": ("KV fragmentation at peak", ""),
    "peak_running": ("peak running requests", ""), "preemptions": ("preemptions", ""),
    "goodput_per_mm2": ("goodput per mm²", "req/s/mm²"), "goodput_per_w": ("goodput per W", "req/s/W"),
}
