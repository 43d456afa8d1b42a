"""Least-squares fits of a measured figure against the size of a block, and the families fitted.

* :func:`fit_linear`: ``value ≈ fixed + per_unit × size`` over ``(size, value)`` points
  (:class:`LinearFit`, with R² and the largest relative error on the points).
* :data:`FAMILIES` names block families and the size parameter swept; :func:`fit_family`
  characterizes (through the characterization cache) each size of one and fits its
  NAND2-equivalent gates with :func:`fit_linear`.

The per-cell (systolic array) and per-bank (PIM channel) costs built on these fits are in
:mod:`peforge.sim.cells`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..hw.blocks import BLOCKS


def _quality(values: np.ndarray, fitted: np.ndarray) -> tuple[float, float]:
    """R² and the largest ``|fit - value| / |value|`` of a fit."""
    residual = float(np.sum((values - fitted) ** 2))
    spread = float(np.sum((values - values.mean()) ** 2))
    r2 = 1.0 - residual / spread if spread > 0 else 1.0
    rel = np.abs(fitted - values) / np.maximum(np.abs(values), 1e-12)
    return r2, float(rel.max())


@dataclass(frozen=True)
class LinearFit:
    """``value ≈ fixed + per_unit × size`` by least squares.

    Attributes
    ----------
    fixed : the size-independent part (units of the value: NAND2-eq. gates, µm² ...)
    per_unit : the part per unit of size (per PE, per bank, per lane)
    r2 : coefficient of determination (1 = every point on the line)
    max_rel_error : largest ``|fit - value| / value`` over the points
    points : the ``(size, value)`` pairs fitted
    """

    fixed: float
    per_unit: float
    r2: float
    max_rel_error: float
    points: tuple[tuple[float, float], ...]

    def predict(self, size: float) -> float:
        return self.fixed + self.per_unit * size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_linear(points: Sequence[tuple[float, float]]) -> LinearFit:
    """Least-squares line through ``(size, value)`` points (at least two distinct sizes)."""
    sizes = np.array([p[0] for p in points], dtype=float)
    values = np.array([p[1] for p in points], dtype=float)
    if len(set(sizes.tolist())) < 2:
        raise ValueError(f"a linear fit needs at least two distinct sizes, got {sizes.tolist()!r}")
    per_unit, fixed = np.polyfit(sizes, values, 1)
    r2, max_rel = _quality(values, fixed + per_unit * sizes)
    return LinearFit(float(fixed), float(per_unit), r2, max_rel,
                     tuple((float(s), float(v)) for s, v in zip(sizes, values)))


@dataclass(frozen=True)
class Family:
    """Sizes of one block to fit over.

    Attributes
    ----------
    block : block name in :data:`peforge.hw.blocks.BLOCKS`
    unit : what one unit of size is (``PE``, ``bank``, ``lane``)
    sizes : the values of the size parameter synthesized
    assignments : ``KEY=VALUE`` strings of the block config for one size value
    units : size value → number of units (``n`` → ``n * n`` PEs for an ``n × n`` array)
    """

    block: str
    unit: str
    sizes: tuple[int, ...]
    assignments: Callable[[int], list[str]]
    units: Callable[[int], int]


FAMILIES: dict[str, Family] = {
    "systolic": Family("systolic", "PE", (2, 4, 8), lambda n: [f"rows={n}", f"cols={n}"], lambda n: n * n),
    "pim-channel": Family("pim-channel", "bank", (1, 2, 4), lambda n: [f"banks={n}"], lambda n: n),
    "bitserial-lanes": Family("bitserial", "lane", (4, 8, 16), lambda n: [f"lanes={n}", "k=1"], lambda n: n),
    "mixed-lanes": Family("mixed", "lane", (4, 8, 16), lambda n: [f"lanes={n}"], lambda n: n),
    "mac-wbits": Family("mac", "weight bit", (4, 8, 16), lambda n: [f"w_bits={n}"], lambda n: n),
}


def fit_family(name: str, *, base: Sequence[str] = (), cache_dir: Path | None = None,
               progress: Callable[[str], None] | None = None) -> LinearFit:
    """Characterize every size of family ``name`` and fit NAND2-equivalent gates to its units.

    ``base``: further ``KEY=VALUE`` parameters shared by every size.
    """
    from .characterize import characterize

    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    family = FAMILIES[name]
    if family.block not in BLOCKS:
        raise ValueError(f"family {name!r} needs block {family.block!r}, which this peforge does not have")
    block = BLOCKS[family.block]
    points = []
    for size in family.sizes:
        config = block.configure([*base, *family.assignments(size)])
        record = characterize(config, cache_dir=cache_dir, progress=progress)
        points.append((family.units(size), record.nand2_eq))
    return fit_linear(points)
