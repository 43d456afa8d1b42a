"""Search: spaces of design points, Optuna studies over them, their storage and progress."""

from .samplers import SAMPLERS, make_sampler
from .space import Space, load_space, parse_space, shipped_spaces
from .sweep import Sweep, SweepResult, WorkloadSpec, plan_sweep, run

__all__ = ["SAMPLERS", "Space", "Sweep", "SweepResult", "WorkloadSpec", "load_space", "make_sampler",
           "parse_space", "plan_sweep", "run", "shipped_spaces"]
