"""The blocks users name on the command line, with their config and component classes.

The PE kinds come first, from the registry :data:`peforge.hw.pe.PE_KINDS`, then the array and PIM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from . import params
from .pe import PE_KINDS
from .systolic import SystolicArray, SystolicConfig
from .pim import PimBank, PimBankConfig, PimChannel, PimChannelConfig


@dataclass(frozen=True)
class Block:
    name: str
    config: type
    component: type
    summary: str

    @property
    def module_name(self) -> str:
        """Verilog module name of the exported block."""
        return self.name.replace("-", "_")

    def configure(self, assignments: Iterable[str] = ()) -> Any:
        """A validated config from ``KEY=VALUE`` strings (defaults for the rest)."""
        return params.from_assignments(self.config, assignments)


BLOCKS: dict[str, Block] = {
    block.name: block
    for block in [
        *(Block(kind.name, kind.config, kind.component, kind.summary) for kind in PE_KINDS.values()),
        Block("systolic", SystolicConfig, SystolicArray,
              "R x C array of any PE, weight- or output-stationary, whole GEMMs tiled inside (TPU, SCALE-Sim)"),
        Block("pim-bank", PimBankConfig, PimBank,
              "DRAM bank with tRCD/tRP/tRAS/tCCD checks and near-bank MAC lanes for GEMV (AiM, NeuPIMs)"),
        Block("pim-channel", PimChannelConfig, PimChannel,
              "banks of pim-bank driven together in all-bank mode (HBM-PIM, AiM)"),
    ]
}


def block_named(name: str) -> Block:
    if name not in BLOCKS:
        raise ValueError(f"unknown block {name!r}; known: {', '.join(BLOCKS)}")
    return BLOCKS[name]


def block_of(config: Any) -> Block:
    """The block whose config class is exactly ``config``'s (a PE config may derive from another's)."""
    for block in BLOCKS.values():
        if type(config) is block.config:
            return block
    raise TypeError(f"not a block config: {config!r}")
