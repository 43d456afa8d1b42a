"""The cost model: a workload's operators priced on design points (cycles, traffic, energy, area)."""

from .api import evaluate, evaluate_many
from .footprint import Footprint, capacity_bytes, check_fits, max_batch
from .metrics import METRICS, PHASE_METRICS, Metric
from .model import CostModel, Evaluation, check_design
from .units import UnitCosts, unit_costs
from .workload import Workload, prepare

__all__ = ["CostModel", "Evaluation", "Footprint", "METRICS", "Metric", "PHASE_METRICS", "UnitCosts", "Workload",
           "capacity_bytes", "check_design", "check_fits", "evaluate", "evaluate_many", "max_batch", "prepare",
           "unit_costs"]
