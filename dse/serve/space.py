"""Serving in a search space: the ``[serving]`` table and the serving metrics of a trial.

::

    [serving]
    trace = "conversation"      # a shipped trace, a CSV path, or "synthetic:rate=..,n=.."
    requests = 300              # the first N requests only (default: all)
    rate_rps = 1.0              # arrival rate goodput is measured at (default: the trace's)
    ttft_p99_s = 2.0            # SLOs
    tpot_p99_s = 0.1
    chunk_tokens = 512          # chunked prefill (default: whole prefills)
    count = 1                   # chips of the trial's design (the prefill pool when disaggregated)
    disaggregated = true        # Splitwise: a decode pool of decode_count x decode_design
    decode_count = 1
    decode_design = "edge"      # a shipped design or a design file (default: the trial's design)
    link_gb_per_s = 50.0        # KV transfer link (default: 400 Gb/s InfiniBand NDR)

Metrics a space may then optimize or constrain (:data:`SERVING_METRICS`): ``goodput_rps``
(requests/s meeting both SLOs at ``rate_rps``), ``max_rate_rps`` (the highest rate meeting the
P99 SLOs, by bisection: about fifteen simulations), ``goodput_per_mm2``, ``goodput_per_w``,
``max_rate_per_mm2``, and the run's ``serve_ttft_p99_s`` / ``serve_tpot_p99_s``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..design.point import DesignPoint, design_named
from ..search.space import typed_table
from .api import ServingConfig, load_trace, max_slo_rate, serve
from .metrics import SLO
from .sim import Link, Scheduler
from .trace import Trace

__all__ = ["SERVING_METRICS", "parse_serving", "serving_metrics"]

SERVING_METRICS = ("goodput_rps", "max_rate_rps", "goodput_per_mm2", "goodput_per_w", "max_rate_per_mm2",
                   "serve_ttft_p99_s", "serve_tpot_p99_s")
KEYS = {"trace": str, "requests": int, "rate_rps": float, "ttft_p99_s": float, "tpot_p99_s": float,
        "chunk_tokens": int, "count": int, "disaggregated": bool, "decode_count": int, "decode_design": str,
        "link_gb_per_s": float}


def parse_serving(table: Any, where: str) -> dict[str, Any]:
    """The ``[serving]`` table, checked (one line naming the key otherwise)."""
    typed_table(table, KEYS, "serving", where)
    if "trace" not in table:
        raise ValueError(f"{where}: [serving] needs trace = \"conversation\" (or a CSV path, or synthetic:...)")
    if "decode_design" in table and not table.get("disaggregated", False):
        raise ValueError(f"{where}: serving.decode_design needs disaggregated = true")
    SLO(ttft_p99_s=table.get("ttft_p99_s", 2.0), tpot_p99_s=table.get("tpot_p99_s", 0.1))
    Scheduler(chunk_tokens=table.get("chunk_tokens"))
    return dict(table)


_TRACES: dict[tuple, Trace] = {}


def _trace(serving: dict[str, Any], model: str) -> Trace:
    key = (serving["trace"], serving.get("requests"), serving.get("rate_rps"), model)
    if key not in _TRACES:
        trace = load_trace(serving["trace"], model=model)
        if "requests" in serving and serving["requests"] < len(trace):
            n = serving["requests"]
            trace = Trace(arrival_s=trace.arrival_s[:n], prompt=trace.prompt[:n], output=trace.output[:n],
                          name=f"{trace.name}[:{n}]", columns=trace.columns,
                          rows=None if trace.rows is None else trace.rows[:n])
        if "rate_rps" in serving:
            trace = trace.at_rate(serving["rate_rps"])
        _TRACES[key] = trace
    return _TRACES[key]


def serving_config(serving: dict[str, Any], design: DesignPoint) -> ServingConfig:
    """The service a space's ``[serving]`` makes of a trial's ``design``."""
    decode = None
    if serving.get("disaggregated", False):
        decode = design_named(serving["decode_design"]) if "decode_design" in serving else design
    link = Link(bandwidth_bytes_per_s=serving["link_gb_per_s"] * 1e9) if "link_gb_per_s" in serving else Link()
    return ServingConfig(design=design, count=serving.get("count", 1), decode_design=decode,
                         decode_count=serving.get("decode_count", 1), link=link,
                         scheduler=Scheduler(chunk_tokens=serving.get("chunk_tokens")))


def serving_metrics(design: DesignPoint, serving: dict[str, Any], *, model: str, quant: str | None,
                    needed: list[str]) -> dict[str, float]:
    """The serving metrics of ``design`` under a space's ``[serving]`` (``max_rate_rps`` only
    when ``needed`` names a rate metric: it is the costly one)."""
    trace = _trace(serving, model)
    slo = SLO(ttft_p99_s=serving.get("ttft_p99_s", 2.0), tpot_p99_s=serving.get("tpot_p99_s", 0.1))
    config = serving_config(serving, design)
    _, m = serve(config, model, trace, slo=slo, quant=quant)
    out = {"goodput_rps": m["goodput_rps"], "goodput_per_mm2": m["goodput_per_mm2"],
           "goodput_per_w": m["goodput_per_w"], "serve_ttft_p99_s": m["ttft_p99_s"],
           "serve_tpot_p99_s": m["tpot_p99_s"] if not np.isnan(m["tpot_p99_s"]) else 0.0,
           "serve_area_mm2": m["area_mm2"]}
    if {"max_rate_rps", "max_rate_per_mm2"} & set(needed):
        rate, _ = max_slo_rate(config, model, trace, slo, quant=quant)
        out.update(max_rate_rps=rate, max_rate_per_mm2=rate / m["area_mm2"])
    return out
