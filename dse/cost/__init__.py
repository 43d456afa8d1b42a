"""The cost model: a workload's operators priced on design points (cycles, traffic, energy, area)."""

from .api import evaluate, evaluate_many
from .metrics import METRICS, PHASE_METRICS, Metric
from .model import CostModel, Evaluation, check_design
from .units import UnitCosts, unit_costs
from .workload import Workload, prepare

__all__ = ["CostModel", "Evaluation", "METRICS", "Metric", "PHASE_METRICS", "UnitCosts", "Workload",
           "check_design", "evaluate", "evaluate_many", "prepare", "unit_costs"]
