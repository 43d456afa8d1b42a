"""The mapper's choice for one operator, as the tile compiler takes it, and how to get it from the
cost model (:class:`peforge.dse.cost.model.Mapping` holds the same figures as arrays over designs,
steps and operator rows).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..cost import mapper
from ..cost.model import CostModel, Mapping
from ..cost.workload import KIND_CODES

__all__ = ["MAPPING_FIELDS", "OperatorMapping", "cost_model_mappings", "operator_mapping"]

#: The cost model's :class:`Mapping` fields the tile's lowering reads (:func:`operator_mapping`).
MAPPING_FIELDS = ("candidate", "arrays", "double", "family", "tile_m", "tile_n", "k_passes")


@dataclass(frozen=True, kw_only=True)
class OperatorMapping:
    """One matrix operator's mapping (:mod:`peforge.dse.cost.mapper`).

    Parameters
    ----------
    candidate : int
        Spread: index into :data:`~peforge.dse.cost.mapper.CANDIDATES` (side by side or one at a
        time; the dimension a product's arrays split).
    arrays : int
        Arrays one product uses.
    double : bool
        Tiles double-buffered (the DMA fills one copy while the arrays read the other).
    family : int
        Tiling: index into :data:`~peforge.dse.cost.mapper.FAMILIES`.
    tile_m, tile_n : int
        The tile's output rows and columns (a resident family leaves its free side at 1).
    k_passes : int
        Passes over K of the accumulation bound.
    """

    candidate: int = 0
    arrays: int = 1
    double: bool = True
    family: int = mapper.ON_CHIP
    tile_m: int = 1
    tile_n: int = 1
    k_passes: int = 1

    def __post_init__(self) -> None:
        if type(self.candidate) is not int or not 0 <= self.candidate < len(mapper.CANDIDATES):
            raise ValueError(f"OperatorMapping.candidate: allowed 0..{len(mapper.CANDIDATES) - 1}, "
                             f"not {self.candidate!r}")
        if type(self.family) is not int or not 0 <= self.family < len(mapper.FAMILIES):
            raise ValueError(f"OperatorMapping.family: allowed 0..{len(mapper.FAMILIES) - 1}, not {self.family!r}")
        for name in ("arrays", "tile_m", "tile_n", "k_passes"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ValueError(f"OperatorMapping.{name}: must be an integer >= 1, not {getattr(self, name)!r}")

    @property
    def side_by_side(self) -> bool:
        return mapper.CANDIDATES[self.candidate][0]

    @property
    def split(self) -> str:
        """The dimension (``M``, ``N``, ``K``, ``MN``, ``KN``) a product's arrays split."""
        return mapper.CANDIDATES[self.candidate][1]

    def describe(self) -> str:
        """In words: spread, tiling, buffering."""
        spread = f"{'side by side' if self.side_by_side else 'one at a time'}, {self.split} over {self.arrays}"
        return (f"{spread}; {mapper.FAMILIES[self.family]} {self.tile_m}x{self.tile_n}; "
                f"{'double' if self.double else 'single'}-buffered")


def operator_mapping(value: dict[str, Any]) -> OperatorMapping:
    """The tile's mapping of one row from the cost model's :class:`Mapping` fields at that row
    (:data:`MAPPING_FIELDS` at least)."""
    return OperatorMapping(candidate=int(value["candidate"]), arrays=max(1, int(value["arrays"])),
                           double=bool(value["double"]), family=int(value["family"]),
                           tile_m=max(1, int(value["tile_m"])), tile_n=max(1, int(value["tile_n"])),
                           k_passes=max(1, int(value["k_passes"])))


def _of_row(mapping: Mapping, row: int) -> OperatorMapping:
    """The first design's, first step's mapping of operator row ``row``."""
    return operator_mapping({f.name: np.asarray(getattr(mapping, f.name))[0, 0, row] for f in fields(Mapping)})


def cost_model_mappings(model: CostModel, workload: Any) -> dict[str, dict[str, OperatorMapping]]:
    """The mapping the cost model chose for each matrix operator of ``workload`` on the model's
    first design, by phase (``prefill``, ``decode``: its first step) and operator name (the graph's,
    the names of the integer layer's :class:`~peforge.dse.tile.intlayer.Gemm` steps)."""
    maps: dict[str, dict] = {}
    phases = ("prefill", "decode") if workload.decode_run is not None else ("prefill",)
    model.metrics(workload, phases=phases, mappings_out=maps)
    out: dict[str, dict[str, OperatorMapping]] = {}
    for phase in phases:
        table = workload.prefill if phase == "prefill" else workload.decode.base
        varying = maps[phase]["varying"]
        fixed_rows, moving_rows = np.nonzero(~varying)[0], np.nonzero(varying)[0]
        chosen = {}
        for i, name in enumerate(table.names):
            if table.kind[i] == KIND_CODES["elementwise"]:  # the vector unit: no mapping
                continue
            if varying[i]:
                chosen[name] = _of_row(maps[phase]["moving"], int(np.nonzero(moving_rows == i)[0][0]))
            else:
                chosen[name] = _of_row(maps[phase]["fixed"], int(np.nonzero(fixed_rows == i)[0][0]))
        out[phase] = chosen
    return out
