"""The one entry point of the cost model: a design point and a workload in, metrics out."""

from __future__ import annotations

from ..design.point import DesignPoint, load_design
from .footprint import check_fits
from .formats import operand_passes
from .model import CostModel, Evaluation, check_design
from .system import check_system, system_metrics
from .units import unit_costs
from .workload import Workload, prepare

__all__ = ["evaluate", "evaluate_many", "load_design", "prepare", "DesignPoint", "Workload", "Evaluation"]


def evaluate(design: DesignPoint, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
             breakdown: bool = True) -> Evaluation:
    """TTFT, TPOT, tokens/s, J/token, mm², W and (``breakdown``) a per-operator table of
    ``design`` on ``workload``. Raises ``ValueError`` when the design cannot run (e.g. the
    workload's footprint over its memory's capacity, a clock above the PE's Fmax, or a tensor
    format its PE does not compute)."""
    if design.system.chips > 1:  # a system of chips (peforge.dse.cost.system)
        from .system import evaluate_system
        return evaluate_system(design, workload, phases=phases, breakdown=breakdown)
    check_fits(design, workload)  # before characterizing: a machine that cannot hold the model
    return CostModel([design], [unit_costs(design)]).evaluate(workload, phases=phases, breakdown=breakdown)


def evaluate_many(designs: list[DesignPoint], workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
                  stride: int = 16):
    """Metrics of many design points at once, a pandas DataFrame with one row per design (in
    order): a column per metric, and ``error`` (why a design cannot run, else empty).

    Decode attention is priced once per ``stride`` decode steps, at each chunk's mean step
    (exact where its cost is linear in the step; ``stride=1`` prices every step).
    """
    import numpy as np
    import pandas as pd

    costs, runnable, errors = [], [], [""] * len(designs)
    for i, design in enumerate(designs):
        try:
            if design.system.chips > 1:
                check_system(design, workload)  # the split, and each chip's share of the capacity
            else:
                check_fits(design, workload)
            cost = unit_costs(design)
            check_design(design, cost)
            operand_passes(design, workload.formats)
        except ValueError as error:
            errors[i] = str(error)
            continue
        costs.append(cost)
        runnable.append(i)
    frame = pd.DataFrame({"design": [d.name for d in designs], "error": errors})
    single = [k for k, i in enumerate(runnable) if designs[i].system.chips == 1]
    systems = [k for k, i in enumerate(runnable) if designs[i].system.chips > 1]
    for members, price in ((single, lambda ds, cs: CostModel(ds, cs, checked=True).metrics(
                                workload, phases=phases, stride=stride)),
                           (systems, lambda ds, cs: system_metrics(ds, cs, workload, phases=phases, stride=stride))):
        if not members:
            continue
        rows = [runnable[k] for k in members]
        for key, values in price([designs[i] for i in rows], [costs[k] for k in members]).items():
            if key not in frame:
                frame[key] = np.full(len(designs), np.nan)
            frame.loc[rows, key] = values
    return frame
