"""The samplers a sweep can use, by name: the one list every caller (CLI, sweep, benchmarks) reads.

Each entry builds a seeded Optuna sampler for a space. Optuna is imported when a sampler is
built, not when the list is read, so the command line stays quick to start.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Callable

from .space import GRID_LIMIT, Space

if TYPE_CHECKING:
    import optuna


def grid_size(space: Space) -> int:
    """Points of a space's grid (``ValueError`` for a continuous or oversized space)."""
    try:
        for p in space.params:
            p.values()
    except ValueError as error:
        raise ValueError(f"--sampler grid: {space.where}: {error}") from None
    count = 0
    for _ in space.points():
        count += 1
        if count > GRID_LIMIT:
            raise ValueError(f"--sampler grid: {space.where} has more than {GRID_LIMIT} points; "
                             f"use another sampler or narrow the space")
    return count


def _nsga2(seed: int | None, space: Space):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


def _tpe(seed: int | None, space: Space):
    import optuna

    # group: conditional parameters are modelled per branch, not as one flat space
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


def _random(seed: int | None, space: Space):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _qmc(seed: int | None, space: Space):
    import optuna

    return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                                      independent_sampler=optuna.samplers.RandomSampler(seed=seed))


def _grid(seed: int | None, space: Space):
    import optuna

    class GridOnce(optuna.samplers.GridSampler):
        """Optuna's grid sampler, minus its ``study.stop()`` once the grid is visited: that works only
        inside ``study.optimize``, and the sweep's own loop stops at the requested count anyway."""

        def after_trial(self, study, trial, state, values) -> None:
            return None

    return GridOnce({"grid_index": list(range(grid_size(space)))}, seed=seed)


# name -> factory(seed, space); the first is the default
SAMPLERS: dict[str, Callable[[int | None, Space], "optuna.samplers.BaseSampler"]] = {
    "nsga2": _nsga2, "tpe": _tpe, "random": _random, "qmc": _qmc, "grid": _grid,
}
DEFAULT_SAMPLER = next(iter(SAMPLERS))


def make_sampler(name: str, seed: int | None, space: Space) -> "optuna.samplers.BaseSampler":
    """A seeded Optuna sampler by name."""
    if name not in SAMPLERS:
        raise ValueError(f"--sampler {name}: choose one of {', '.join(SAMPLERS)}")
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS[name](seed, space)
