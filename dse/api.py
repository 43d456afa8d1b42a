"""The one entry point of the cost model: a design point and a workload in, metrics out."""

from __future__ import annotations

from .accelerator import DesignPoint, load_design
from .costmodel import CostModel, Evaluation
from .costs import unit_costs
from .workload import Workload, prepare

__all__ = ["evaluate", "load_design", "prepare", "DesignPoint", "Workload", "Evaluation"]


def evaluate(design: DesignPoint, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
             breakdown: bool = True) -> Evaluation:
    """TTFT, TPOT, tokens/s, J/token, mm², W and (``breakdown``) a per-operator table of
    ``design`` on ``workload``. Raises ``ValueError`` when the design cannot run (e.g. a clock
    above the PE's Fmax)."""
    return CostModel([design], [unit_costs(design)]).evaluate(workload, phases=phases, breakdown=breakdown)
