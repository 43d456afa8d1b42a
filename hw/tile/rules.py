"""The program's rules on the tile, checked on the exact timeline of a program.

The sequencer issues in order and only ``WAIT`` orders the units, so a program must itself keep
two running commands apart (the compiler's job; :func:`check_program` checks it):

1. **Ports.** The DMA and the vector unit's writes share one access port of each scratchpad
   (:mod:`peforge.hw.tile.tile`, by OR of enables): a DMA transfer and a vector command whose
   destination is the same scratchpad of the same slice never run together (the vector unit
   reads its operands on ports of their own; a GEMM engine has its per-bank ports).
2. **Data.** No running command reads or writes elements another running command writes: the
   element ranges (from a command's first element to its last, pitch gaps included) of two
   commands in one scratchpad of one slice are disjoint unless both only read. Double buffering
   is two regions: the DMA fills one while a GEMM reads the other.

A command runs from the cycle its unit accepts it to the cycle it is done
(:class:`~peforge.hw.tile.isa.Step` ``issued`` .. ``completed - 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .config import SPADS, TileConfig
from .dma import MemoryModel
from .isa import Instruction, Issue, Timeline, program_timeline


@dataclass(frozen=True)
class Region:
    """Elements ``start .. end - 1`` (linear element addresses) of scratchpad ``spad`` of slice
    ``slice`` that a command reads, or writes (``writes``), while it runs. (The compiler's
    :class:`~peforge.dse.tile.program.ProgramBuilder` keeps its reads and writes in two lists.)"""

    slice: int
    spad: str
    start: int
    end: int
    writes: bool = False

    def overlaps(self, other: Region) -> bool:
        """Whether the two share an element (of the same scratchpad of the same slice)."""
        return (self.slice, self.spad) == (other.slice, other.spad) and self.start < other.end \
            and other.start < self.end

    def conflicts(self, other: Region) -> bool:
        """Whether they overlap and one of them writes."""
        return (self.writes or other.writes) and self.overlaps(other)


def regions(config: TileConfig, slot: str, command: Any) -> list[Region]:
    """The scratchpad regions ``command`` of unit ``slot`` touches (see :class:`Region`)."""
    if slot == "dma":
        name = SPADS[command.spad_addr >> config.offset_bits]
        size = config.element_bytes(name)
        start = (command.spad_addr & ((1 << config.offset_bits) - 1)) // size
        end = start + ((command.rows - 1) * command.spad_stride + command.row_bytes) // size
        return [Region(i, name, start, end, command.dir == "load")
                for i in range(config.arrays) if command.slice_mask >> i & 1]
    if slot == "vec":
        out = []
        for operand, (first, last) in config.vector_spans(command).items():
            slice, name, start = config.locate(first)
            out.append(Region(slice, name, start, config.locate(last)[2] + 1, operand == "d"))
        return out
    i = config.gemm_slots.index(slot)
    spads = config.spads
    operands = [("act", command.a_base, command.a_pitch, command.m, command.k, False),
                ("weight", command.b_base, command.b_pitch, command.n, command.k, False),
                ("out", command.c_base, command.c_pitch, command.m, command.n, True)]
    if "meta" in spads:
        operands.append(("meta", command.meta_base, command.meta_pitch, command.n, config.gemm.groups(command.k),
                         False))
    return [Region(i, name, base, spads[name].element_address(base, pitch, rows - 1, cols), writes)
            for name, base, pitch, rows, cols, writes in operands]


def shared_ports(config: TileConfig, slot: str, command: Any) -> set[tuple[int, str]]:
    """The shared access ports ``(slice, spad)`` a command uses: the DMA's scratchpad in every
    slice of its mask, a vector command's destination, nothing for a GEMM engine."""
    if slot == "dma":
        return {(region.slice, region.spad) for region in regions(config, slot, command)}
    if slot == "vec":
        return {config.vector_ports(command)["d"]}
    return set()


def check_program(config: TileConfig, program: Sequence[Instruction], memory: MemoryModel) -> Timeline:
    """The exact timeline of ``program`` over ``memory``; ``ValueError`` naming both instructions
    if two running commands break a rule of this module."""
    timeline = program_timeline(program, lambda slot, command: config.unit_cycles(slot, command, memory))
    steps = [step for step in timeline.steps if isinstance(step.instruction, Issue)]
    for n, one in enumerate(steps):
        for other in steps[n + 1:]:
            if other.issued >= one.completed:
                continue
            a, b = one.instruction, other.instruction
            where = (f"instructions {one.index} ({a.slot}) and {other.index} ({b.slot}) run together in cycles "
                     f"{other.issued}..{min(one.completed, other.completed) - 1}")
            shared = shared_ports(config, a.slot, a.command) & shared_ports(config, b.slot, b.command)
            if shared:
                slice, name = min(shared)
                raise ValueError(f"{where} and both use the shared port of slice {slice}'s {name} scratchpad; "
                                 f"WAIT between them")
            for x in regions(config, a.slot, a.command):
                for y in regions(config, b.slot, b.command):
                    if x.conflicts(y):
                        raise ValueError(f"{where}; elements {max(x.start, y.start)}..{min(x.end, y.end) - 1} of "
                                         f"slice {x.slice}'s {x.spad} scratchpad are written by one and used by "
                                         f"the other; WAIT between them")
    return timeline
