"""A tile program as it is built: instructions tagged with their operator, and the ``Wait``s a
dependency or a scratchpad write conflict needs, no more.

Each command declares the scratchpad elements it reads and writes (:class:`Region`) and the
scratchpad access ports it shares (``(slice, spad)``: the DMA's transfers and the vector unit's
writes share one port of each scratchpad; the vector unit reads on ports of its own, a GEMM
engine has its own per-bank ports).
The sequencer issues in order and a unit runs one command at a time, so a command ``p`` is known
complete once a later command of its unit has been issued (the unit took it: ``p`` was done) or
a ``Wait`` on its unit passed. Before a command ``c`` goes to its unit, every earlier command of
another unit that may still run and that writes what ``c`` reads or writes, reads what ``c``
writes, or uses an access port ``c`` uses, gets one ``Wait`` on its unit. DRAM needs no such
care: only the DMA touches it, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...hw.tile.isa import End, Instruction, Issue, Wait
from ...hw.tile.rules import Region  # one notion of a command's scratchpad elements; re-exported

__all__ = ["Region", "ProgramBuilder"]


def _conflict(reads_a, writes_a, reads_b, writes_b) -> bool:
    """Whether two commands' accesses conflict (one writes what the other reads or writes)."""
    return any(w.overlaps(r) for w in writes_a for r in (*reads_b, *writes_b)) or \
        any(w.overlaps(r) for w in writes_b for r in reads_a)


@dataclass
class _Running:
    slot: str
    reads: tuple[Region, ...]
    writes: tuple[Region, ...]
    ports: frozenset


@dataclass
class ProgramBuilder:
    """Collects instructions and their operator tags."""

    instructions: list[Instruction] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    _running: list[_Running] = field(default_factory=list)

    def issue(self, slot: str, command: Any, *, reads=(), writes=(), ports=(), tag: str) -> None:
        """Append ``command`` for the unit of ``slot``, after the ``Wait`` its accesses need."""
        reads, writes, ports = tuple(reads), tuple(writes), frozenset(ports)
        blocking = sorted({p.slot for p in self._running
                           if p.slot != slot and (p.ports & ports or _conflict(p.reads, p.writes, reads, writes))})
        if blocking:
            self.wait(blocking, tag=tag)
        # the unit takes this command only once its previous one is complete
        self._running = [p for p in self._running if p.slot != slot]
        self._running.append(_Running(slot, reads, writes, ports))
        self.instructions.append(Issue(slot, command))
        self.tags.append(tag)

    def wait(self, slots, *, tag: str) -> None:
        """Append ``Wait(slots)``: every command of those units is complete after it."""
        slots = tuple(slots)
        self._running = [p for p in self._running if p.slot not in slots]
        self.instructions.append(Wait(slots))
        self.tags.append(tag)

    def end(self) -> None:
        self.instructions.append(End())
        self.tags.append("end")
