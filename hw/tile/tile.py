"""The accelerator tile: the units of :mod:`peforge.hw.tile` wired into one machine.

Inside: an AXI4-Lite register file (the control registers of :mod:`peforge.hw.tile.config`), the
:class:`~peforge.hw.tile.sequencer.Sequencer` with every unit on its slot (``dma``, ``gemm0 ..``,
``vec``), one :class:`~peforge.hw.tile.gemm.GemmSlice` per array (its GEMM engine and its
activation, weight, output and metadata scratchpads), the :class:`~peforge.hw.tile.dma.Dma`
(its AXI4 master is the tile's ``m_axi``) and the :class:`~peforge.hw.tile.vector.VectorUnit`.

The DMA and the vector unit reach every scratchpad through the address map of
:mod:`peforge.hw.tile.config`, on three access ports per scratchpad (:data:`ACCESS_PORTS`):

- ``access``: the DMA's runs (reads and writes) and the vector unit's writes, shared by OR of
  their enables (each user's address, write data and mask gated by its own enable);
- ``access1``: the vector unit's operand A; ``access2``: its operand B;

read data goes back to whoever read in the previous cycle. So a vector command may read both
operands from, and write into, one scratchpad (in place, as the vector unit allows), and it is
**the program's rule** (the compiler's, with ``WAIT``; checked by
:func:`peforge.hw.tile.rules.check_program`) that a DMA transfer and a vector command writing
into the same scratchpad of the same slice never run together.

The GEMM engines use their own per-bank ports (feed and store), so a GEMM may run while the DMA
fills another region of the same scratchpad (double buffering); no running command may touch a
region another running command writes (the rules' data rule). No arithmetic happens here: only
wiring, field selects, widening and truncation of elements.
"""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import Axi4LiteSignature, Axi4Signature, AxiLiteRegisters
from .config import SPAD_ID_BITS, SPADS, TileConfig
from .dma import Dma
from .gemm import GemmSlice
from .sequencer import Sequencer
from .spad import ScratchpadConfig, access_name
from .vector import ELEM_BITS, VectorUnit


ACCESS_PORTS = 3  # per scratchpad: DMA and vector writes, vector operand A, vector operand B
SHARED, OPERAND_A, OPERAND_B = range(ACCESS_PORTS)


def _any(values):
    return functools.reduce(operator.or_, values, Const(0, 1))


def _gated_or(pairs):
    """OR of each ``value`` where its ``enable`` is high (at most one is, by the program's rule)."""
    return functools.reduce(operator.or_, [Mux(enable, value, 0) for enable, value in pairs], Const(0, 1))


def _widen(value, bits: int, signed: bool):
    """``value`` sign- or zero-extended to ``bits`` bits."""
    pad = bits - len(value)
    return Cat(value, value[-1].replicate(pad) if signed else Const(0, pad)) if pad else value


class _SharedPort:
    """The users of one scratchpad access port; :meth:`drive` ORs them onto it."""

    def __init__(self, port, spad: ScratchpadConfig):
        self.port, self.spad = port, spad
        self.readers, self.writers = [], []

    def read(self, hit, addr) -> None:
        self.readers.append((hit, addr))

    def write(self, hit, addr, mask, data) -> None:
        """``mask``: one bit per element of the run from ``addr``; ``data``: the run's elements as raw bits."""
        self.writers.append((hit, addr, mask, data))

    def drive(self, m: Module) -> None:
        port = self.port
        hits = [hit for hit, *_ in self.readers + self.writers]
        m.d.comb += [port.en.eq(_any(hits)), port.we.eq(_any(hit for hit, *_ in self.writers)),
                     port.addr.eq(_gated_or([(hit, addr) for hit, addr, *_ in self.readers + self.writers])),
                     port.mask.eq(_gated_or([(hit, mask) for hit, _, mask, _ in self.writers])),
                     port.wdata.eq(_gated_or([(hit, data) for hit, _, _, data in self.writers]))]

    def element(self, i: int):
        """Element ``i`` of the last run read, as raw bits."""
        return self.port.rdata.as_value().word_select(i, self.spad.element_bits)


class AcceleratorTile(wiring.Component):
    """The tile of ``config`` (:class:`~peforge.hw.tile.config.TileConfig`).

    Ports
    -----
    m_axi : AXI4 master (the DMA's), ``bus_bytes`` wide, ``dram_addr_bits`` byte addresses
    s_axil : AXI4-Lite slave of the control registers (32-bit; see :mod:`peforge.hw.tile.config`)

    Attributes
    ----------
    slices : one :class:`~peforge.hw.tile.gemm.GemmSlice` per array (their ``spads`` for testbenches)
    sequencer, dma, vector, registers : the units
    """

    def __init__(self, config: TileConfig):
        self.config = config
        super().__init__({
            "m_axi": Out(Axi4Signature(addr_bits=config.dram_addr_bits, data_bytes=config.bus_bytes)),
            "s_axil": In(Axi4LiteSignature(addr_bits=config.axil_addr_bits)),
        })
        self.registers = AxiLiteRegisters(list(config.registers), addr_bits=config.axil_addr_bits)
        self.sequencer = Sequencer(config.sequencer)
        self.slices = [GemmSlice(config.gemm, access_ports=ACCESS_PORTS) for _ in range(config.arrays)]
        self.dma = Dma(config.dma)
        self.vector = VectorUnit(config.vector)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.submodules.registers = regs = self.registers
        m.submodules.sequencer = seq = self.sequencer
        m.submodules.dma = dma = self.dma
        m.submodules.vector = vec = self.vector
        for i, gemm in enumerate(self.slices):
            m.submodules[f"slice{i}"] = gemm

        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)
        wiring.connect(m, dma.m_axi, wiring.flipped(self.m_axi))
        r = regs.regs
        m.d.comb += [seq.start.eq(r.start), r.status.eq(Cat(seq.done, seq.busy)), r.cycles.eq(seq.cycles),
                     seq.imem.addr.eq(r.imem_addr), seq.imem.en.eq(r.imem_write),
                     seq.imem.data.eq(Cat(*(getattr(r, f"imem_data{i}") for i in range(cfg.data_registers))))]

        seq.connect_unit(m, "dma", dma)
        for name, gemm in zip(cfg.gemm_slots, self.slices):
            seq.connect_unit(m, name, gemm)
        seq.connect_unit(m, "vec", vec)

        ports = {(i, name, k): _SharedPort(getattr(gemm, f"{name}_{access_name(k)}"), spad)
                 for i, gemm in enumerate(self.slices) for name, spad in cfg.spads.items()
                 for k in range(ACCESS_PORTS)}
        self._dma_ports(m, ports)
        self._vector_ports(m, ports)
        for port in ports.values():
            port.drive(m)
        return m

    # --- the DMA: (spad, byte offset) addresses, slices by mask, bytes <-> elements --------------

    def _dma_ports(self, m: Module, ports: dict) -> None:
        cfg = self.config
        ob = cfg.offset_bits
        w, rd = self.dma.spad_w, self.dma.spad_r
        picks = []
        for (i, name, k), port in ports.items():
            if k != SHARED:
                continue
            size = cfg.element_bytes(name)
            shift = size.bit_length() - 1  # byte offset -> element offset
            elements = cfg.bus_bytes // size
            spad_id = SPADS.index(name)
            bits = port.spad.element_bits
            run = port.spad.run_elements
            data = Cat(*(w.data[8 * size * j:][:bits] for j in range(elements)))
            mask = Cat(*(w.mask[size * j] for j in range(elements)))
            port.write(w.en & w.slices[i] & (w.addr[ob:] == spad_id), w.addr[shift:ob],
                       Cat(mask, Const(0, run - elements)), data)
            read_hit = rd.en & rd.slices[i] & (rd.addr[ob:] == spad_id)
            port.read(read_hit, rd.addr[shift:ob])
            picks.append((read_hit, Cat(*(_widen(port.element(j), 8 * size, port.spad.signed)
                                          for j in range(elements)))))
        self._return_reads(m, rd.en, picks, rd.data, "dma")

    # --- the vector unit: tile element addresses, 32-bit lanes <-> elements ----------------------

    def _vector_ports(self, m: Module, ports: dict) -> None:
        cfg = self.config
        ob = cfg.offset_bits
        vec = self.vector
        lanes = cfg.vector_lanes

        def hit(bus, i, name):
            selects = bus.addr[ob:ob + SPAD_ID_BITS] == SPADS.index(name)
            if cfg.slice_bits:
                selects &= bus.addr[ob + SPAD_ID_BITS:ob + SPAD_ID_BITS + cfg.slice_bits] == i
            return bus.en & selects

        for operand, reader, index in (("a", vec.rd_a, OPERAND_A), ("b", vec.rd_b, OPERAND_B)):
            picks = []
            for (i, name, k), port in ports.items():
                if k != index:
                    continue
                read_hit = hit(reader, i, name)
                port.read(read_hit, reader.addr[:ob])
                picks.append((read_hit, Cat(*(_widen(port.element(k), ELEM_BITS, port.spad.signed)
                                              for k in range(lanes)))))
            self._return_reads(m, reader.en, picks, reader.data, f"vec_{operand}")
        wr = vec.wr
        for (i, name, k), port in ports.items():
            if k != SHARED:
                continue
            bits = port.spad.element_bits
            # Truncated: the command's out_bits saturated each value to the scratchpad's elements.
            data = Cat(*(wr.data.as_value().word_select(k, ELEM_BITS)[:bits] for k in range(lanes)))
            port.write(hit(wr, i, name), wr.addr[:ob], Cat(wr.mask, Const(0, port.spad.run_elements - lanes)), data)

    def _return_reads(self, m: Module, en, picks: list, data, name: str) -> None:
        """Drive ``data`` with the run read in the previous cycle by this reader (``picks``:
        ``(hit, run)`` per port), held until its next read as the scratchpads hold it."""
        last = Signal(len(picks), name=f"{name}_read_from")
        with m.If(en):
            m.d.sync += last.eq(Cat(hit for hit, _ in picks))
        m.d.comb += data.eq(_gated_or([(last[j], run) for j, (_, run) in enumerate(picks)]))
