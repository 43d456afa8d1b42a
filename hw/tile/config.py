"""The accelerator tile's parameters (:class:`TileConfig`): every unit's config derived from one
place, the tile's address map, its AXI4-Lite registers, and how a program becomes instruction
words and cycles.

Address map
    Every scratchpad of the tile has an id (:data:`SPADS`: ``act`` 0, ``weight`` 1, ``out`` 2,
    ``meta`` 3) and each array slice has its own four. The vector unit addresses them by one
    *tile element address*, from the least significant bit::

        offset : offset_bits  -- the element in the scratchpad (its linear element address)
        spad   : 2 bits       -- the scratchpad id
        slice  : slice_bits   -- the array slice (ceil(log2(arrays)) bits; none with one slice)

    The DMA addresses ``(spad, byte offset)`` with the same ``offset`` and ``spad`` fields and
    picks slices by its ``slice_mask``; it moves bytes, and each scratchpad element occupies
    :meth:`TileConfig.element_bytes` bytes in DRAM (1, 2 or 4: the smallest of these that holds
    it; narrower elements are sign- or zero-extended on a store, truncated on a load), so its
    byte offset is the element offset times that. :meth:`TileConfig.spad_base` and
    :meth:`TileConfig.dma_base` give each scratchpad's base in both spaces.

Control registers (AXI4-Lite, register ``i`` at byte address ``4 i``, :data:`CONTROL_REGISTERS`
then ``imem_data0 ..``): ``start`` (a write starts the program at address 0), ``status`` (bit 0
done, bit 1 busy), ``cycles`` (the sequencer's cycle counter: the run's cycles once done),
``imem_addr``, ``imem_write`` (a write stores the instruction word held by ``imem_data*`` at
``imem_addr``), and ``imem_data0 .. imem_data{n-1}``: the instruction word in 32-bit pieces,
least significant first (:meth:`TileConfig.program_writes`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..params import param, validate
from ..systolic import SystolicConfig
from .axi import Register
from .dma import DmaCommand, DmaConfig, MemoryModel
from .gemm import GemmCommand, GemmEngineConfig, spad_rules
from .isa import Instruction, Issue, Slot, program_cycles
from .sequencer import SequencerConfig
from .spad import ScratchpadConfig
from .vector import REDUCTIONS, BMode, VectorCommand, VectorConfig

SPADS = ("act", "weight", "out", "meta")  # scratchpad ids of the address map, in id order
SPAD_ID_BITS = 2
AXI4_MAX_BUS_BYTES = 128  # AXI4's widest data bus (1024 bits)
DMA_ELEMENT_BITS = 8  # the DMA moves bytes; wider scratchpad elements are several bytes (see above)
CONTROL_REGISTERS = (Register(name="start", kind="pulse"), Register(name="status", kind="ro"),
                     Register(name="cycles", kind="ro"), Register(name="imem_addr"),
                     Register(name="imem_write", kind="pulse"))
REGISTER_BYTES = 4
_POWERS_OF_TWO = tuple(1 << i for i in range(8))  # 1 .. 128


def element_bytes(bits: int) -> int:
    """Bytes one element of ``bits`` bits occupies in DRAM: 1, 2 or 4."""
    for size in (1, 2, 4):
        if bits <= 8 * size:
            return size
    raise ValueError(f"scratchpad elements of {bits!r} bits do not fit the DMA's 4-byte elements")


def dram_bus_bytes(design: Any) -> int:
    """The DMA bus of ``design``'s full-size tile (bytes per beat): its memory's datasheet bandwidth
    per cycle of ``compute.clock_mhz`` (``memory.units`` x GB/s per unit / clock), rounded up to a
    power of two (``TileConfig.from_design`` refuses more than :data:`AXI4_MAX_BUS_BYTES`)."""
    memory = design.preset.memories[design.memory.technology]
    gb_per_s = design.memory.gb_per_s or memory.gb_per_s.value
    need = design.memory.units * gb_per_s * 1e3 / design.compute.clock_mhz
    return 1 << max(0, math.ceil(math.log2(need)))


def _floor_power_of_two(value: int) -> int:
    return 1 << (max(1, value).bit_length() - 1)


@dataclass(frozen=True, kw_only=True)
class TileConfig:
    """Parameters of :class:`~peforge.hw.tile.tile.AcceleratorTile`.

    ``array``: the systolic array of every slice (its PE, size, dataflow and GEMM limits).
    Depths are words per bank of each slice's scratchpads (:mod:`peforge.hw.tile.spad`; the
    banks and word widths follow from the array, :func:`~peforge.hw.tile.gemm.spad_rules`).
    """

    array: SystolicConfig = field(default_factory=lambda: SystolicConfig(max_m=16, max_k=64, max_n=32))
    arrays: int = param(1, "array slices: arrays, each with its GEMM engine and scratchpads", low=1, high=32)
    act_depth: int = param(64, "activation scratchpad depth (words per bank)", low=2, high=1 << 20)
    weight_depth: int = param(64, "weight scratchpad depth (words per bank)", low=2, high=1 << 20)
    out_depth: int = param(32, "output scratchpad depth (words per bank)", low=2, high=1 << 20)
    out_banks: int = param(2, "output scratchpad banks", low=1, high=64)
    meta_depth: int = param(32, "metadata scratchpad depth (words per bank; PEs with column fields)",
                            low=2, high=1 << 20)
    vector_lanes: int = param(4, "vector unit lanes", choices=(1, 2, 4, 8, 16, 32))
    bus_bytes: int = param(4, "AXI4 data bus of the DMA (bytes per beat)", choices=_POWERS_OF_TWO)
    max_burst: int = param(16, "DMA: beats per AXI burst at most", low=1, high=256)
    outstanding: int = param(4, "DMA: bursts in flight at most", low=1, high=64)
    dram_addr_bits: int = param(32, "DRAM byte address width (bits)", low=13, high=64)
    imem_depth: int = param(256, "sequencer instruction memory depth (instructions)", low=2, high=1 << 16)

    def __post_init__(self) -> None:
        validate(self)
        if not isinstance(self.array, SystolicConfig):
            raise ValueError(f"TileConfig.array must be a SystolicConfig, not {self.array!r}")
        # The vector unit and the DMA each move one run per cycle through a spad's access port,
        # and a bus beat holds whole elements.
        for name, spad in self.spads.items():
            if self.bus_bytes < self.element_bytes(name):
                raise ValueError(f"TileConfig.bus_bytes={self.bus_bytes!r} is narrower than one {name} element "
                                 f"({self.element_bytes(name)} bytes)")
            for who, elements in (("vector_lanes", self.vector_lanes),
                                  ("bus_bytes", self.bus_bytes // self.element_bytes(name))):
                if elements > spad.max_run:
                    raise ValueError(f"TileConfig.{who}={getattr(self, who)!r}: the {name} scratchpad reads or "
                                     f"writes runs of at most {spad.max_run} elements, not {elements}")
        if self.vector_addr_bits > 32:
            raise ValueError(f"TileConfig: the address map needs {self.vector_addr_bits} bits; the vector unit "
                             f"has at most 32 (fewer arrays or smaller scratchpads)")
        self.dma, self.vector, self.sequencer  # build and check them now

    # --- the units ------------------------------------------------------------------------------

    @functools.cached_property
    def gemm(self) -> GemmEngineConfig:
        """Every slice's GEMM engine with its scratchpads."""
        return GemmEngineConfig.for_array(self.array, act_depth=self.act_depth, weight_depth=self.weight_depth,
                                          out_depth=self.out_depth, out_banks=self.out_banks,
                                          meta_depth=self.meta_depth)

    @property
    def spads(self) -> dict[str, ScratchpadConfig]:
        """A slice's scratchpads by name, in id order (``meta`` only for PEs with column fields)."""
        return {name: getattr(self.gemm, name) for name in SPADS if getattr(self.gemm, name) is not None}

    @functools.cached_property
    def dma(self) -> DmaConfig:
        return DmaConfig(bus_bytes=self.bus_bytes, max_burst=self.max_burst, outstanding=self.outstanding,
                         addr_bits=self.dram_addr_bits, elem_bits=DMA_ELEMENT_BITS,
                         spad_addr_bits=self.offset_bits + SPAD_ID_BITS, slices=self.arrays)

    @functools.cached_property
    def vector(self) -> VectorConfig:
        return VectorConfig(lanes=self.vector_lanes, addr_bits=max(4, self.vector_addr_bits))

    @property
    def gemm_slots(self) -> tuple[str, ...]:
        return tuple(f"gemm{i}" for i in range(self.arrays))

    @functools.cached_property
    def slots(self) -> tuple[Slot, ...]:
        """The sequencer's slots: ``dma``, ``gemm0 .. gemm{arrays-1}``, ``vec``."""
        layout = self.gemm.cmd_layout()
        return (Slot("dma", self.dma.command_layout), *(Slot(name, layout) for name in self.gemm_slots),
                Slot("vec", self.vector.cmd_layout()))

    @functools.cached_property
    def sequencer(self) -> SequencerConfig:
        return SequencerConfig(slots=self.slots, depth=self.imem_depth)

    # --- address map ----------------------------------------------------------------------------

    def element_bytes(self, spad: str) -> int:
        """Bytes one element of scratchpad ``spad`` occupies in DRAM (what the DMA moves)."""
        return element_bytes(self._spad(spad).element_bits)

    @property
    def offset_bits(self) -> int:
        """Width of the offset field: the largest scratchpad's bytes."""
        return max((spad.elements * self.element_bytes(name) - 1).bit_length() for name, spad in self.spads.items())

    @property
    def slice_bits(self) -> int:
        return (self.arrays - 1).bit_length()

    @property
    def vector_addr_bits(self) -> int:
        """Width of a tile element address (offset, spad, slice)."""
        return self.offset_bits + SPAD_ID_BITS + self.slice_bits

    def spad_base(self, slice: int, spad: str) -> int:
        """Tile element address of element 0 of scratchpad ``spad`` of slice ``slice`` (vector unit)."""
        self._spad(spad)
        if not 0 <= slice < self.arrays:
            raise ValueError(f"slice {slice!r} does not exist; allowed 0..{self.arrays - 1}")
        return (slice << SPAD_ID_BITS | SPADS.index(spad)) << self.offset_bits

    def dma_base(self, spad: str) -> int:
        """DMA scratchpad address of byte 0 of scratchpad ``spad`` (in every slice of a ``slice_mask``)."""
        self._spad(spad)
        return SPADS.index(spad) << self.offset_bits

    def locate(self, address: int) -> tuple[int, str, int]:
        """``(slice, spad, element offset)`` of a tile element address (the vector unit's)."""
        offset = address & ((1 << self.offset_bits) - 1)
        spad = address >> self.offset_bits & ((1 << SPAD_ID_BITS) - 1)
        slice = address >> (self.offset_bits + SPAD_ID_BITS)
        if slice >= self.arrays or SPADS[spad] not in self.spads or offset >= self.spads[SPADS[spad]].elements:
            raise ValueError(f"tile element address {address:#x} is in no scratchpad (slice {slice}, spad field "
                             f"{spad}, offset {offset})")
        return slice, SPADS[spad], offset

    def _spad(self, name: str) -> ScratchpadConfig:
        if name not in self.spads:
            raise ValueError(f"no scratchpad {name!r} in this tile; it has {', '.join(self.spads)}")
        return self.spads[name]

    # --- programs -------------------------------------------------------------------------------

    def pack(self, slot: str, command: Any) -> int:
        """The bits of ``command`` (a :class:`DmaCommand`, :class:`GemmCommand` or
        :class:`VectorCommand`, or packed bits) for the unit of ``slot``."""
        if isinstance(command, int):
            return command
        config = self._unit_config(slot, command)
        if slot == "dma":
            self.check_dma(command)
        elif slot == "vec":
            self.check_vector(command)
        return command.pack(config)

    def vector_spans(self, cmd: VectorCommand) -> dict[str, tuple[int, int]]:
        """The first and last tile element address each operand of ``cmd`` touches (``a``, ``d``,
        and ``b`` unless ``CONST``)."""
        spans = {"a": (cmd.src_a, cmd.pitch_a, cmd.length),
                 "d": (cmd.dst, cmd.pitch_d, 1 if cmd.op in REDUCTIONS else cmd.length)}
        if cmd.b_mode != BMode.CONST:  # the unit reads B whatever the op
            spans["b"] = (cmd.src_b, cmd.pitch_b, cmd.length if cmd.b_mode == BMode.STREAM else 1)
        return {name: (first, first + (cmd.rows - 1) * pitch + length - 1)
                for name, (first, pitch, length) in spans.items()}

    def vector_ports(self, cmd: VectorCommand) -> dict[str, tuple[int, str]]:
        """The ``(slice, spad)`` each operand of ``cmd`` lies in, checked to stay in one
        scratchpad over all its rows."""
        ports = {}
        for name, (first, last) in self.vector_spans(cmd).items():
            ends = [self.locate(first)[:2], self.locate(last)[:2]]
            if ends[0] != ends[1]:
                raise ValueError(f"VectorCommand operand {name} runs from slice {ends[0][0]} {ends[0][1]} into "
                                 f"slice {ends[1][0]} {ends[1][1]}; an operand lies in one scratchpad")
            ports[name] = ends[0]
        return ports

    def check_vector(self, cmd: VectorCommand) -> None:
        """Raise ``ValueError`` unless each operand of ``cmd`` lies in one scratchpad of the tile
        and its results fit the destination's elements: ``out_bits`` signed bits at most its
        elements' width, or one more for unsigned elements (``0 .. 2**bits - 1`` saturated to
        ``bits + 1`` signed bits, the sign bit dropped)."""
        ports = self.vector_ports(cmd)
        destination = self.spads[ports["d"][1]]
        widest = destination.element_bits + (0 if destination.signed else 1)
        if cmd.out_bits > widest:  # the tile keeps an element's low bits
            raise ValueError(f"VectorCommand.out_bits={cmd.out_bits!r} exceeds the {ports['d'][1]} scratchpad's "
                             f"{destination.element_bits}-bit elements" + ("" if destination.signed else
                                                                            " (unsigned: one bit more)"))

    def check_dma(self, cmd: DmaCommand) -> None:
        """Raise ``ValueError`` unless ``cmd`` moves whole elements of one scratchpad of the tile."""
        self.dma.check(cmd)
        spad = cmd.spad_addr >> self.offset_bits
        if spad >= len(SPADS) or SPADS[spad] not in self.spads:
            raise ValueError(f"DmaCommand.spad_addr={cmd.spad_addr:#x} names no scratchpad (spad field {spad})")
        size = self.element_bytes(SPADS[spad])
        for name in ("dram_addr", "spad_addr", "row_bytes", "spad_stride", "dram_stride"):
            if getattr(cmd, name) % size:
                raise ValueError(f"DmaCommand.{name}={getattr(cmd, name)!r}: a multiple of the {SPADS[spad]} "
                                 f"scratchpad's {size}-byte elements")

    def encode(self, program: Sequence[Instruction]) -> list[int]:
        """Instruction words of ``program`` (its ``Issue`` commands as the units' command dataclasses)."""
        packed = [Issue(ins.slot, self.pack(ins.slot, ins.command)) if isinstance(ins, Issue) else ins
                  for ins in program]
        return self.sequencer.encode(packed)

    def unit_cycles(self, slot: str, command: Any, memory: MemoryModel) -> int:
        """Cycles the unit of ``slot`` takes for ``command`` (the DMA's over ``memory``)."""
        config = self._unit_config(slot, command)
        return config.cycles(command, memory) if slot == "dma" else config.cycles(command)

    def program_cycles(self, program: Sequence[Instruction], memory: MemoryModel) -> int:
        """Cycles from ``start`` to ``done`` of ``program`` (:func:`~peforge.hw.tile.isa.program_cycles`)."""
        return program_cycles(program, lambda slot, command: self.unit_cycles(slot, command, memory))

    def _unit_config(self, slot: str, command: Any) -> Any:
        kinds = {"dma": (DmaCommand, self.dma), "vec": (VectorCommand, self.vector),
                 **{name: (GemmCommand, self.gemm) for name in self.gemm_slots}}
        if slot not in kinds:
            raise ValueError(f"unknown slot {slot!r}; known: {', '.join(kinds)}")
        kind, config = kinds[slot]
        if not isinstance(command, kind):
            raise ValueError(f"slot {slot!r} takes a {kind.__name__}, not {command!r}")
        return config

    # --- control registers ----------------------------------------------------------------------

    @property
    def data_registers(self) -> int:
        """32-bit registers holding one instruction word."""
        return -(-self.sequencer.width // 32)

    @property
    def registers(self) -> tuple[Register, ...]:
        return (*CONTROL_REGISTERS, *(Register(name=f"imem_data{i}") for i in range(self.data_registers)))

    @property
    def axil_addr_bits(self) -> int:
        return max(8, (REGISTER_BYTES * len(self.registers) - 1).bit_length())

    def register_address(self, name: str) -> int:
        """Byte address of register ``name`` on ``s_axil``."""
        for i, reg in enumerate(self.registers):
            if reg.name == name:
                return REGISTER_BYTES * i
        raise ValueError(f"no register {name!r}; known: {', '.join(r.name for r in self.registers)}")

    def program_writes(self, words: Sequence[int]) -> list[tuple[int, int]]:
        """The AXI4-Lite writes ``(byte address, value)`` that store ``words`` at instruction 0 on."""
        writes = []
        for index, word in enumerate(words):
            writes.append((self.register_address("imem_addr"), index))
            writes += [(self.register_address(f"imem_data{i}"), word >> (32 * i) & 0xFFFF_FFFF)
                       for i in range(self.data_registers)]
            writes.append((self.register_address("imem_write"), 1))
        return writes

    # --- from a design point --------------------------------------------------------------------

    @classmethod
    def from_design(cls, design: Any, *, scaled: bool) -> TileConfig:
        """The tile of ``design`` (a :class:`peforge.dse.design.DesignPoint`).

        Arrays: ``compute.arrays`` of ``compute.rows x compute.cols`` of the design's PE and
        dataflow. Scratchpads: ``sram.activation_kib``, ``weight_kib``, ``output_kib`` split evenly
        over the arrays, as the most words per bank that fit (metadata, for PEs with column
        fields, beside the weights: one entry per quantization group of the weight spad's
        elements, not counted in ``weight_kib``). Vector lanes: ``compute.vector_lanes`` (its
        default, cols x arrays). DMA bus: the memory's datasheet bandwidth per cycle of
        ``compute.clock_mhz`` (``memory.units`` x GB/s per unit / clock), rounded up to a power of
        two bytes. DRAM address bits: enough for ``memory.units`` x the capacity per unit.

        ``scaled=True``: the same structure at a simulable size: arrays of at most 4 x 4, at most
        2 slices, scratchpads of at most 64 words per bank (output: 32), GEMMs up to 16 x 64 x 32,
        vector lanes and bus narrowed to what the small scratchpads take per cycle (powers of
        two), 20 DRAM address bits.

        Raises ``ValueError`` naming the design key for designs the tile cannot build.
        """
        c = design.compute
        if design.pim.mode != "none":
            raise ValueError(f"pim.mode={design.pim.mode!r}: the tile has no PIM banks (they sit in the memory, "
                             f"outside the accelerator tile); allowed: none")
        rows, cols, arrays = (min(c.rows, 4), min(c.cols, 4), min(c.arrays, 2)) if scaled else (c.rows, c.cols,
                                                                                                 c.arrays)
        limits = dict(max_m=16, max_k=64, max_n=32) if scaled else dict(max_m=256, max_k=4096, max_n=4096)
        try:
            array = SystolicConfig(rows=rows, cols=cols, pe=c.pe, dataflow=c.dataflow, pe_config=c.pe_config,
                                   **limits)
        except ValueError as error:
            raise ValueError(f"compute: the tile's array cannot be built: {error}") from None
        if arrays > 32:
            raise ValueError(f"compute.arrays={c.arrays!r}: the tile's DMA reaches at most 32 slices")
        rules = spad_rules(array)
        lanes = c.lanes_of_vector_unit
        out_banks = 2
        if not scaled:
            # Enough output banks that a run of the vector's lanes (or a bus beat) fits.
            need = max(lanes, AXI4_MAX_BUS_BYTES // 4)
            out_banks = max(2, 1 + -(-(need - 1) // cols))

        def depth(name: str, key: str, cap: int) -> int:
            kib = getattr(design.sram, key)
            fields = {**rules[name], **({"banks": out_banks} if name == "out" else {})}
            try:
                words = ScratchpadConfig.sized(kib / arrays, **fields).depth
            except ValueError as error:
                raise ValueError(f"sram.{key}={kib!r} split over {arrays} slice(s): {error}") from None
            return min(words, cap) if scaled else words

        depths = dict(act_depth=depth("act", "activation_kib", 64), weight_depth=depth("weight", "weight_kib", 64),
                      out_depth=depth("out", "output_kib", 32))
        group = getattr(array.pe_config, "group", None) if rules["meta"] else None
        if group:
            depths["meta_depth"] = max(2, -(-depths["weight_depth"] * array.lanes // group))

        memory = design.preset.memories[design.memory.technology]
        gb_per_s = design.memory.gb_per_s or memory.gb_per_s.value
        need = design.memory.units * gb_per_s * 1e3 / c.clock_mhz  # bytes per cycle
        bus = dram_bus_bytes(design)
        capacity = design.memory.units * (design.memory.capacity_gib or memory.capacity_gib.value) * 2**30
        addr_bits = min(64, max(13, math.ceil(math.log2(capacity))))
        if scaled:
            gemm = GemmEngineConfig.for_array(array, out_banks=out_banks, **depths)
            spads = [spad for spad in (gemm.act, gemm.weight, gemm.out, gemm.meta) if spad is not None]
            lanes = _floor_power_of_two(min(lanes, 4, *(spad.max_run for spad in spads)))
            widest = max(element_bytes(spad.element_bits) for spad in spads)
            bus = max(widest, _floor_power_of_two(min(bus, *(spad.max_run * element_bytes(spad.element_bits)
                                                             for spad in spads))))
            addr_bits = 20
        elif bus > AXI4_MAX_BUS_BYTES:
            raise ValueError(f"memory: {design.memory.units} x {gb_per_s:g} GB/s at compute.clock_mhz={c.clock_mhz!r} "
                             f"is {need:.0f} bytes per cycle; the tile's one AXI4 port carries at most "
                             f"{AXI4_MAX_BUS_BYTES}")
        if lanes not in (1, 2, 4, 8, 16, 32):
            raise ValueError(f"compute.vector_lanes: the tile's vector unit has 1, 2, 4, ..., 32 lanes, not {lanes!r}"
                             f" (the default is cols x arrays)")
        try:
            return cls(array=array, arrays=arrays, out_banks=out_banks, vector_lanes=lanes, bus_bytes=bus,
                       dram_addr_bits=addr_bits, **depths)
        except ValueError as error:
            raise ValueError(f"compute: {error}") from None
