"""The entry points of serving: a serving configuration and a trace in, a run and its metrics out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ...models import load_config
from ..design.point import DesignPoint
from .cost import PoolCost, pool_cost
from .metrics import SLO, max_rate, summarize
from .sim import Link, Scheduler, SimResult, simulate_disaggregated, simulate_pool
from .trace import Trace, parse_synthetic, read_trace, shipped_trace

__all__ = ["ServingConfig", "load_trace", "serve", "runner", "max_slo_rate"]


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    """A service: ``count`` chips of ``design`` serving both phases, or (``decode_design`` set)
    a prefill pool of ``count`` x ``design`` and a decode pool of ``decode_count`` x
    ``decode_design`` joined by ``link`` (Splitwise)."""

    design: DesignPoint
    count: int = 1
    decode_design: DesignPoint | None = None
    decode_count: int = 1
    link: Link = field(default_factory=Link)
    scheduler: Scheduler = field(default_factory=Scheduler)

    def __post_init__(self):
        for name in ("count", "decode_count"):
            value = getattr(self, name)
            if type(value) is not int or not 1 <= value <= 1024:
                raise ValueError(f"{name}={value!r}: allowed integers 1..1024")

    @property
    def disaggregated(self) -> bool:
        return self.decode_design is not None


def load_trace(text: str | Path, *, model: str) -> Trace:
    """A trace named by ``text``: a CSV file, ``synthetic:rate=..,n=..``, or a shipped trace's
    name (``conversation``); every request checked against ``model``'s context."""
    config = load_config(model)
    text = str(text)
    if text.startswith("synthetic"):
        trace = parse_synthetic(text, max_positions=config.max_positions)
    elif text.endswith(".csv") or "/" in text:
        trace = read_trace(text)
    else:
        trace = read_trace(shipped_trace(text))
    trace.check_context(config.max_positions, config.name)
    return trace


def _pools(config: ServingConfig, model: str, trace: Trace, quant: str | None) -> tuple[PoolCost, PoolCost | None]:
    top = int(max(int((trace.prompt + trace.output - 1).max()), 2))
    lengths = np.unique(trace.prompt)
    cap = config.scheduler.max_running or 256
    first = pool_cost(config.design, model, prompt_lengths=lengths, max_context=top, quant=quant, max_batch=cap)
    second = None
    if config.decode_design is not None:
        second = pool_cost(config.decode_design, model, prompt_lengths=lengths, max_context=top, quant=quant,
                           max_batch=cap)
    return first, second


def runner(config: ServingConfig, model: str, trace: Trace, *, quant: str | None = None) -> Callable[[Trace], SimResult]:
    """A function simulating ``config`` on a trace with ``trace``'s lengths (any arrival times):
    the pools are priced once, here."""
    first, second = _pools(config, model, trace, quant)
    if second is None:
        return lambda t: simulate_pool(first, t, config.scheduler, count=config.count)
    return lambda t: simulate_disaggregated(first, second, t, config.scheduler, prefill_count=config.count,
                                            decode_count=config.decode_count, link=config.link)


def serve(config: ServingConfig, model: str, trace: Trace, *, slo: SLO | None = None,
          quant: str | None = None) -> tuple[SimResult, dict[str, float]]:
    """Simulate ``config`` serving ``trace``: the run and its metrics (:func:`summarize`)."""
    result = runner(config, model, trace, quant=quant)(trace)
    return result, summarize(result, slo)


def max_slo_rate(config: ServingConfig, model: str, trace: Trace, slo: SLO, *, quant: str | None = None,
                 tolerance: float = 0.01) -> tuple[float, dict[str, float]]:
    """The highest arrival rate of ``trace`` (scaled) that ``config`` serves within ``slo``, and
    the metrics at that rate (:func:`~peforge.dse.serve.metrics.max_rate`)."""
    run = runner(config, model, trace, quant=quant)
    return max_rate(run, trace, slo, tolerance=tolerance, start_rps=max(trace.rate_rps, 1e-3)
                    if np.isfinite(trace.rate_rps) else 1.0)
