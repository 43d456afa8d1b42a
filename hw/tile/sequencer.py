"""The tile's sequencer: runs a program of macro-instructions (:mod:`peforge.hw.tile.isa`) from its
instruction memory, handing commands to the units of its slots in order.

It knows its units only as slots (a name and a command layout): per slot a ``cmd`` stream it
drives and a ``busy`` it watches, to be connected to a unit with the ports of
:func:`peforge.hw.tile.unit.unit_ports` (:meth:`Sequencer.connect_unit`).

Timing is the one :func:`peforge.hw.tile.isa.program_timeline` models exactly: the memory is read
synchronously, so the first instruction is at decode one cycle after ``start``
(:data:`~peforge.hw.tile.isa.FETCH_LATENCY`); after that one instruction leaves decode per cycle
unless it stalls (its unit not ready, a ``WAIT``'s or ``END``'s units busy), because the read
address is the next pc whenever the instruction at decode leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import param, validate
from .isa import Instruction, Op, Slot, check_slots, encode, instruction_layout, slot_index


def slot_signature(slot: Slot) -> wiring.Signature:
    """The sequencer's side of one slot: ``cmd`` (a stream of the slot's commands) out, ``busy`` in."""
    return wiring.Signature({"cmd": Out(stream.Signature(slot.layout)), "busy": In(1)})


@dataclass(frozen=True, kw_only=True)
class SequencerConfig:
    """Parameters of :class:`Sequencer`.

    ``slots``: the units it drives, in slot-index order (a sequence of :class:`~peforge.hw.tile.isa.Slot`).
    """

    slots: tuple[Slot, ...]
    depth: int = param(256, "instruction memory depth (instructions)", low=2, high=1 << 16)
    counter_bits: int = param(32, "width of the cycle counter (bits; it wraps)", low=8, high=64)

    def __post_init__(self) -> None:
        validate(self)
        object.__setattr__(self, "slots", check_slots(self.slots))  # frozen: normalised to a tuple once

    @property
    def layout(self) -> data.StructLayout:
        """The instruction word's layout (:func:`~peforge.hw.tile.isa.instruction_layout`)."""
        return instruction_layout(self.slots)

    @property
    def width(self) -> int:
        """Bits of one instruction word."""
        return self.layout.size

    def encode(self, program: Sequence[Instruction]) -> list[int]:
        """The words of ``program`` for this sequencer (:func:`~peforge.hw.tile.isa.encode`), checked
        to fit its memory."""
        words = encode(program, self.slots)
        if len(words) > self.depth:
            raise ValueError(f"a program of {len(words)} instructions does not fit in depth={self.depth}")
        return words

    def slot(self, name: str) -> Slot:
        """The slot named ``name``."""
        return self.slots[slot_index(self.slots, name)]


class Sequencer(wiring.Component):
    """In-order issue of macro-instructions to the units of its slots.

    Ports
    -----
    imem : the instruction memory's write port (``addr``, ``data``: one instruction word, ``en``),
        written while the sequencer is idle (the tile drives it from AXI4-Lite or the DMA; a word
        written during a run is seen only if it is fetched at least one cycle later)
    start : a high cycle while idle runs the program from address 0 (ignored while running)
    busy : high from the cycle after ``start`` until ``done``
    done : high from the cycle after ``END`` leaves decode (every unit idle, all writes done)
        until the next ``start``
    cycles : cycles since ``start``, counted while busy: equals the run's cycles while ``done``
    units : per slot name, ``cmd`` (stream of the slot's commands, driven by the sequencer) and
        ``busy`` (the unit's, read by ``WAIT`` and ``END``)
    """

    def __init__(self, config: SequencerConfig):
        self.config = config
        super().__init__({
            "imem": In(wiring.Signature({"addr": Out(range(config.depth)), "data": Out(config.width),
                                         "en": Out(1)})),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(config.counter_bits),
            "units": Out(wiring.Signature({s.name: Out(slot_signature(s)) for s in config.slots})),
        })

    def connect_unit(self, m: Module, name: str, unit) -> None:
        """Connect slot ``name`` to ``unit`` (a component with :func:`~peforge.hw.tile.unit.unit_ports`)."""
        self.config.slot(name)
        port = getattr(self.units, name)
        wiring.connect(m, port.cmd, unit.cmd)
        m.d.comb += port.busy.eq(unit.busy)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        ports = [getattr(self.units, s.name) for s in cfg.slots]

        m.submodules.imem = imem = Memory(shape=cfg.width, depth=cfg.depth, init=[])
        wr = imem.write_port()
        rd = imem.read_port()  # synchronous: the word at `pc` is on rd.data in the cycle pc holds it
        m.d.comb += [wr.addr.eq(self.imem.addr), wr.data.eq(self.imem.data), wr.en.eq(self.imem.en)]

        running = Signal()
        pc = Signal(range(cfg.depth))
        ins = cfg.layout(rd.data)
        busy = Cat(p.busy for p in ports)
        go = Signal()  # the instruction at decode leaves this cycle
        with m.If(running):
            with m.Switch(ins.op):
                with m.Case(Op.UNIT):
                    with m.Switch(ins.slot):
                        for i, p in enumerate(ports):
                            with m.Case(i):
                                m.d.comb += go.eq(p.cmd.ready)
                        with m.Default():  # no such slot (only a hand-made word): skip it
                            m.d.comb += go.eq(1)
                with m.Case(Op.WAIT):
                    m.d.comb += go.eq(~(busy & ins.arg[:len(ports)]).any())
                with m.Case(Op.END):
                    m.d.comb += go.eq(~busy.any())
                with m.Case(Op.NOP):
                    m.d.comb += go.eq(1)
        for i, (s, p) in enumerate(zip(cfg.slots, ports)):
            m.d.comb += [p.cmd.valid.eq(running & (ins.op == Op.UNIT) & (ins.slot == i)),
                         p.cmd.payload.eq(ins.arg[:s.layout.size])]

        # The read address is the pc of the instruction at decode in the next cycle.
        launch = self.start & ~running
        following = Mux(pc == cfg.depth - 1, 0, pc + 1)
        addr = Mux(launch, 0, Mux(go, following, pc))
        m.d.comb += rd.addr.eq(addr)
        # Read only when fetching (a start, or the instruction at decode leaving): a stalled
        # instruction's word stays on rd.data, and an idle sequencer reads nothing.
        m.d.comb += rd.en.eq(launch | (running & go))
        m.d.sync += pc.eq(addr)

        with m.If(launch):
            m.d.sync += [running.eq(1), self.done.eq(0), self.cycles.eq(1)]
        with m.Elif(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(go & (ins.op == Op.END)):
                m.d.sync += [running.eq(0), self.done.eq(1)]
        m.d.comb += self.busy.eq(running)
        return m
