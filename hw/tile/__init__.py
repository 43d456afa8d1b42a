"""The accelerator tile: the design point as one machine (arrays, scratchpads, DMA, vector unit,
sequencer) that runs a program compiled from the mapper's tilings.

:class:`TileConfig` holds every parameter (:meth:`TileConfig.from_design` builds it from a design
point) and turns programs of :mod:`~peforge.hw.tile.isa` instructions, whose ``Issue`` commands
are the units' command dataclasses, into instruction words, AXI4-Lite writes and exact cycles;
:class:`AcceleratorTile` is the hardware.
"""

from .config import SPADS, TileConfig
from .dma import DmaCommand, MemoryModel
from .gemm import GemmCommand
from .isa import End, Issue, Nop, Wait, program_cycles, program_timeline
from .rules import check_program
from .tile import AcceleratorTile
from .vector import BMode, Post, VecOp, VectorCommand

__all__ = ["SPADS", "AcceleratorTile", "BMode", "DmaCommand", "End", "GemmCommand", "Issue", "MemoryModel", "Nop",
           "Post", "TileConfig", "VecOp", "VectorCommand", "Wait", "check_program", "program_cycles",
           "program_timeline"]
