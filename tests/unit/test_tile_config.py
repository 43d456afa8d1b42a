"""TileConfig by hand: the address map, the control registers, instruction words split over
them, the program rules it checks, and what it builds from design points (and refuses)."""

from __future__ import annotations

import pytest

from peforge.dse.design.point import Compute, DesignPoint, Memory, Pim, Sram, design_named
from peforge.hw.systolic import SystolicConfig
from peforge.hw.tile.config import TileConfig
from peforge.hw.tile.dma import DmaCommand, MemoryModel
from peforge.hw.tile.gemm import GemmCommand
from peforge.hw.tile.isa import End, Issue, Wait
from peforge.hw.tile.rules import Region, check_program, regions
from peforge.hw.tile.vector import BMode, VecOp, VectorCommand

pytestmark = pytest.mark.unit

MEMORY = MemoryModel(read_latency=3, write_latency=2)


def two_slices() -> TileConfig:
    # 4 x 4 MAC arrays, one lane: act and weight spads of 4 banks x 64 words x 1 element (256
    # elements, 1 byte each), output spad of 2 banks x 32 words x 4 elements (256 elements, 4 bytes).
    return TileConfig(arrays=2)


def test_address_map_by_hand():
    t = two_slices()
    assert t.offset_bits == 10  # the output spad's 1024 bytes
    assert t.vector_addr_bits == 10 + 2 + 1
    assert [t.spad_base(0, name) for name in ("act", "weight", "out")] == [0, 1024, 2048]
    assert t.spad_base(1, "act") == 4096 and t.spad_base(1, "out") == 4096 + 2048
    assert [t.dma_base(name) for name in ("act", "weight", "out")] == [0, 1024, 2048]
    assert [t.element_bytes(name) for name in ("act", "weight", "out")] == [1, 1, 4]
    assert t.locate(4096 + 2048 + 5) == (1, "out", 5)
    assert t.vector.addr_bits == 13 and t.dma.spad_addr_bits == 12 and t.dma.slices == 2


@pytest.mark.parametrize("call, message", [
    (lambda t: t.spad_base(2, "act"), "slice 2 does not exist"),
    (lambda t: t.spad_base(0, "meta"), "no scratchpad 'meta'"),
    (lambda t: t.locate(3 << 10), "in no scratchpad"),  # the meta id: no such spad for a MAC
    (lambda t: t.locate(2048 + 256), "in no scratchpad"),  # past the output spad's 256 elements
])
def test_address_map_rejects(call, message):
    with pytest.raises(ValueError, match=message):
        call(two_slices())


def test_slots_and_registers():
    t = two_slices()
    assert [s.name for s in t.slots] == ["dma", "gemm0", "gemm1", "vec"]
    names = [r.name for r in t.registers]
    assert names[:5] == ["start", "status", "cycles", "imem_addr", "imem_write"]
    # The instruction word: the vector command (the widest), 2 slot bits, 2 opcode bits.
    assert t.sequencer.width == t.vector.cmd_layout().size + 2 + 2
    assert t.data_registers == -(-t.sequencer.width // 32) == len(names) - 5
    assert t.register_address("imem_data0") == 20


def test_program_writes_split_words_least_significant_first():
    t = TileConfig()
    word = (0xAAAA_BBBB << 64) | (0x1234_5678 << 32) | 0x9ABC_DEF0
    writes = t.program_writes([0, word])
    per_word = t.data_registers + 2
    assert len(writes) == 2 * per_word
    second = writes[per_word:]
    assert second[0] == (12, 1)  # imem_addr = 1
    assert second[1:4] == [(20, 0x9ABC_DEF0), (24, 0x1234_5678), (28, 0xAAAA_BBBB)]
    assert all(value == 0 for _, value in second[4:-1])
    assert second[-1] == (16, 1)  # imem_write


def test_config_checks():
    with pytest.raises(ValueError, match=r"vector_lanes=8: the act scratchpad .* at most 4"):
        TileConfig(vector_lanes=8)
    with pytest.raises(ValueError, match="bus_bytes=2 is narrower than one out element"):
        TileConfig(bus_bytes=2)
    with pytest.raises(ValueError, match=r"bus_bytes=8: the act scratchpad .* at most 4 elements, not 8"):
        TileConfig(bus_bytes=8)


def test_dma_commands_move_whole_elements_of_one_spad():
    t = TileConfig()
    ok = DmaCommand(dir="store", dram_addr=8, spad_addr=t.dma_base("out") + 4, rows=2, row_bytes=8,
                    dram_stride=16, spad_stride=16)
    assert t.pack("dma", ok) == ok.pack(t.dma)
    with pytest.raises(ValueError, match="row_bytes=6: a multiple of the out scratchpad's 4-byte elements"):
        t.pack("dma", DmaCommand(dir="store", dram_addr=8, spad_addr=t.dma_base("out"), rows=1, row_bytes=6))
    with pytest.raises(ValueError, match="names no scratchpad"):
        t.pack("dma", DmaCommand(dir="load", dram_addr=0, spad_addr=3 << t.offset_bits, rows=1, row_bytes=4))
    with pytest.raises(ValueError, match="slot 'dma' takes a DmaCommand"):
        t.pack("dma", GemmCommand())


def test_vector_operands_lie_in_one_spad_each():
    t = two_slices()
    out0, act0, out1 = t.spad_base(0, "out"), t.spad_base(0, "act"), t.spad_base(1, "out")
    fine = VectorCommand(op=VecOp.ADD, src_a=out0, src_b=out1, dst=act0, length=4, rows=2, pitch_a=8, pitch_b=8,
                         pitch_d=8, b_mode=BMode.STREAM, out_bits=8)
    assert t.vector_ports(fine) == {"a": (0, "out"), "b": (1, "out"), "d": (0, "act")}
    t.pack("vec", fine)
    # In place, B from the same scratchpad: each operand has its own port.
    t.pack("vec", VectorCommand(op=VecOp.ADD, src_a=out0, src_b=out0 + 64, dst=out0, length=4, b_mode=BMode.STREAM))
    too_wide = VectorCommand(op=VecOp.MULSHIFT, src_a=out0, dst=act0, length=4, mult=1, shift=1, out_bits=9)
    with pytest.raises(ValueError, match="out_bits=9 exceeds the act scratchpad's 8-bit elements"):
        t.pack("vec", too_wide)
    spill = VectorCommand(op=VecOp.ADD, src_a=out0 + 250, dst=act0, length=4, rows=2, pitch_a=4, out_bits=8)
    with pytest.raises(ValueError, match="in no scratchpad"):  # row 1 ends past the output spad
        t.pack("vec", spill)
    full = TileConfig(act_depth=256)  # 1024 activations: the act spad fills its offset range
    across = VectorCommand(op=VecOp.ADD, src_a=full.spad_base(0, "out"), dst=1020, length=4, rows=2, pitch_d=4,
                           out_bits=8)  # row 1 lands in the weight spad
    with pytest.raises(ValueError, match="operand d runs from slice 0 act into slice 0 weight"):
        full.pack("vec", across)


def test_check_program_finds_two_commands_on_the_shared_port():
    t = two_slices()
    load = Issue("dma", DmaCommand(dir="load", dram_addr=0, spad_addr=t.dma_base("act"), rows=1, row_bytes=4,
                                   slice_mask=0b10))
    vec = Issue("vec", VectorCommand(op=VecOp.MULSHIFT, src_a=t.spad_base(1, "out"), dst=t.spad_base(1, "act") + 8,
                                     length=4, mult=1, shift=0, out_bits=8))
    with pytest.raises(ValueError, match=r"instructions 0 \(dma\) and 1 \(vec\) run together in cycles 2\.\.\d+ "
                                         r"and both use the shared port of slice 1's act scratchpad"):
        check_program(t, [load, vec, End()], MEMORY)
    check_program(t, [load, Wait("dma"), vec, End()], MEMORY)  # waited: fine
    # Reading, not writing, the scratchpad the DMA fills (another region): the vector's own port.
    reads = Issue("vec", VectorCommand(op=VecOp.MULSHIFT, src_a=t.spad_base(1, "act") + 8, dst=t.spad_base(1, "out"),
                                       length=4, mult=1, shift=0))
    check_program(t, [load, reads, End()], MEMORY)


def test_check_program_finds_data_hazards():
    t = two_slices()
    # The DMA loads elements 0..7 of slice 1's activations (2 rows of 4, pitch 4).
    load = Issue("dma", DmaCommand(dir="load", dram_addr=0, spad_addr=t.dma_base("act"), rows=2, row_bytes=4,
                                   spad_stride=4, slice_mask=0b10))
    # A GEMM on slice 1 reading A at elements 8.. (the other buffer) runs beside it: fine; one
    # reading 5.. (pitch 5, 2 rows of 3: elements 5..12) overlaps the load.
    other_buffer = GemmCommand(a_base=8, a_pitch=5, b_pitch=1, c_pitch=1, m=2, k=3)
    check_program(t, [load, Issue("gemm1", other_buffer), End()], MEMORY)
    overlapping = GemmCommand(a_base=4, a_pitch=5, b_pitch=1, c_pitch=1, m=2, k=3)
    with pytest.raises(ValueError, match=r"elements 4\.\.7 of slice 1's act scratchpad are written by one"):
        check_program(t, [load, Issue("gemm1", overlapping), End()], MEMORY)
    check_program(t, [load, Issue("gemm0", overlapping), End()], MEMORY)  # slice 0: another scratchpad
    # The vector unit reading the output rows a GEMM writes.
    # C's rows at 4 and 12: elements 4..16.
    gemm = Issue("gemm0", GemmCommand(a_pitch=1, b_pitch=1, c_base=4, c_pitch=2, m=2, n=5))
    read_c = VectorCommand(op=VecOp.MULSHIFT, src_a=t.spad_base(0, "out") + 12, dst=t.spad_base(0, "act") + 64,
                           length=4, mult=1, shift=0, out_bits=8)
    with pytest.raises(ValueError, match=r"elements 12\.\.15 of slice 0's out scratchpad"):
        check_program(t, [gemm, Issue("vec", read_c), End()], MEMORY)
    assert check_program(t, [gemm, Wait("gemm0"), Issue("vec", read_c), End()], MEMORY).cycles > 0


def test_regions_by_hand():
    t = two_slices()
    store = DmaCommand(dir="store", dram_addr=0, spad_addr=t.dma_base("out") + 16, rows=3, row_bytes=8,
                       spad_stride=32, slice_mask=0b10)
    # Elements 4 .. 4 + (2 * 32 + 8) / 4 - 1 of slice 1's output spad, read.
    assert regions(t, "dma", store) == [Region(1, "out", 4, 22, False)]
    gemm = GemmCommand(a_base=2, a_pitch=5, b_base=1, b_pitch=9, c_base=8, c_pitch=3, m=3, k=4, n=2)
    assert regions(t, "gemm1", gemm) == [Region(1, "act", 2, 2 + 2 * 5 + 4, False),
                                         Region(1, "weight", 1, 1 + 9 + 4, False),
                                         Region(1, "out", 8, 8 + 2 * 3 * 4 + 2, True)]


def test_cycles_of_a_program_use_each_units_formula():
    t = TileConfig()
    dma = DmaCommand(dir="load", dram_addr=0, spad_addr=0, rows=1, row_bytes=4)
    gemm = GemmCommand(a_pitch=1, b_pitch=1, c_pitch=1)
    d, g = t.dma.cycles(dma, MEMORY), t.gemm.cycles(gemm)
    # FETCH_LATENCY 1: the DMA at 1; the GEMM at 2, both done at max(1 + d, 2 + g); END, done a cycle later.
    assert t.program_cycles([Issue("dma", dma), Issue("gemm0", gemm), End()], MEMORY) == max(1 + d, 2 + g) + 1


# --- from design points ---------------------------------------------------------------------------


def test_edge_design_full_size():
    t = TileConfig.from_design(design_named("edge"), scaled=False)
    assert (t.arrays, t.array.rows, t.array.cols, t.array.pe) == (1, 32, 32, "bitserial")
    assert t.bus_bytes == 64  # 4 x 12.8 GB/s at 800 MHz: 64 bytes per cycle
    assert t.vector_lanes == 32  # cols x arrays
    # 512 KiB of activations: 32 banks of 8 elements of 8 bits -> 2048 words per bank.
    assert t.spads["act"].depth == 2048 and t.spads["weight"].depth == 2048
    assert t.spads["out"].depth == 256 * 8192 // (2 * 32 * 32)
    assert t.dram_addr_bits == 33  # 4 channels of LPDDR5's 2 GiB: 8 GiB


def test_scaled_designs_keep_the_structure():
    t = TileConfig.from_design(design_named("datacenter"), scaled=True)
    assert (t.arrays, t.array.rows, t.array.cols, t.array.pe) == (2, 4, 4, "fpmac")
    assert t.array.dataflow == "ws" and t.dram_addr_bits == 20
    assert max(spad.depth for spad in t.spads.values()) <= 64
    # Vector lanes and bus fit the small spads' runs (act: 4 banks of one 16-bit element).
    assert t.vector_lanes == 4 and t.bus_bytes == 8


def _design(**groups) -> DesignPoint:
    compute = groups.pop("compute", {})
    return DesignPoint(compute=Compute(**{"pe": "mac", "rows": 16, "cols": 16, **compute}), **groups)


@pytest.mark.parametrize("design, message", [
    (lambda: design_named("pim"), r"pim.mode='concurrent': the tile has no PIM banks"),
    (lambda: _design(pim=Pim(mode="blocked")), r"pim.mode='blocked'"),
    (lambda: design_named("datacenter"), r"compute: the tile's array cannot be built: SystolicConfig.rows=128"),
    (lambda: _design(compute={"clock_mhz": 100.0}, memory=Memory(technology="HBM3", units=4)),
     r"memory: 4 x \d+ GB/s at compute.clock_mhz=100.0 is \d+ bytes per cycle; .* at most 128"),
    (lambda: _design(compute={"vector_lanes": 12}, memory=Memory(technology="DDR4")), r"compute.vector_lanes"),
    (lambda: _design(compute={"arrays": 64}, memory=Memory(technology="DDR4")), r"compute.arrays=64"),
    (lambda: _design(sram=Sram(output_kib=1), compute={"arrays": 8}, memory=Memory(technology="DDR4")),
     r"sram.output_kib=1 split over 8 slice\(s\): 0.125 KiB holds 0 words per bank .* need at least 2"),
])
def test_designs_the_tile_cannot_build(design, message):
    with pytest.raises(ValueError, match=message):
        TileConfig.from_design(design(), scaled=False)
