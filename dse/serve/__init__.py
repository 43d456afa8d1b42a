"""Serving: request traces, a continuous-batching simulator priced by the cost model, SLO metrics."""

from __future__ import annotations

from .api import ServingConfig, load_trace, max_slo_rate, runner, serve
from .cost import Composition, PoolCost, pool_cost
from .metrics import SLO, max_rate, percentile, summarize
from .sim import Link, Scheduler, SimResult, simulate, simulate_disaggregated, simulate_pool
from .trace import Trace, parse_synthetic, read_trace, shipped_trace, synthetic

__all__ = ["ServingConfig", "load_trace", "max_slo_rate", "runner", "serve", "Composition", "PoolCost", "pool_cost", "SLO", "max_rate", "percentile", "summarize", "Link",
           "Scheduler", "SimResult", "simulate", "simulate_disaggregated", "simulate_pool", "Trace",
           "parse_synthetic", "read_trace", "shipped_trace", "synthetic"]
