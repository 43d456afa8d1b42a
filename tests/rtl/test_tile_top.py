"""The whole accelerator tile in the Amaranth simulator: programs written through ``s_axil``,
started, run against an AXI4 memory written here (a bytearray; address channels always ready, a
read burst's first beat ``READ_LATENCY`` cycles after its address, beats back to back, a write
response ``WRITE_LATENCY`` cycles after the last beat: the DMA's :class:`MemoryModel` with
period 1). Results in the memory must equal the golden models bit for bit, and the cycles from
``start`` to ``done`` (measured, and read from the ``cycles`` register) must equal
:func:`peforge.hw.tile.isa.program_cycles` with each unit's own ``cycles``."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment

from peforge.arith import ceil_div
from peforge.dse.design.point import Compute, DesignPoint, Memory, Sram, design_named
from peforge.hw import intops
from peforge.hw.golden import wrap
from peforge.hw.systolic import systolic_gemm
from peforge.hw.tile.axi import verilog_ports
from peforge.hw.tile.config import TileConfig
from peforge.hw.tile.dma import DmaCommand, MemoryModel
from peforge.hw.tile.gemm import OUT_BITS, GemmCommand
from peforge.hw.tile.isa import End, Issue, Nop, Wait, program_cycles
from peforge.hw.tile.rules import check_program
from peforge.hw.tile.tile import AcceleratorTile
from peforge.hw.tile.vector import VecOp, VectorCommand, VectorConfig, VectorUnit, execute, softmax_program
from peforge.sim import tile_run
from peforge.sim.testbench.systolic import Gemm, Stimulus

pytestmark = pytest.mark.rtl

READ_LATENCY, WRITE_LATENCY = 3, 2
MEMORY = MemoryModel(read_latency=READ_LATENCY, write_latency=WRITE_LATENCY)
DRAM_BYTES = 1 << 14
# DRAM bytes: A, B^T, metadata, C, requantized C, the next GEMM's B^T and C (A and the metadata
# off the bus alignment: DMA rows start mid-beat)
A_AT, B_AT, M_AT, C_AT, Q_AT, B2_AT, C2_AT = 0x0002, 0x0400, 0x0804, 0x1000, 0x1800, 0x0600, 0x1400


def design(pe: str = "mac", arrays: int = 1, dataflow: str = "ws", **pe_params) -> DesignPoint:
    """A design of ``pe`` arrays the tile scales down to 4 x 4."""
    compute = Compute(pe=pe, rows=16, cols=16, arrays=arrays, dataflow=dataflow, clock_mhz=500.0,
                      pe_params=tuple(sorted(pe_params.items())))
    return DesignPoint(compute=compute, sram=Sram(weight_kib=64, activation_kib=64, output_kib=64),
                       memory=Memory(technology="DDR4", units=1))


# Designs of every kind of PE the tile runs: plain integers, run-time weight precision, per-group
# metadata (its own scratchpad), floats; both dataflows.
DESIGNS = {
    "mac-ws": design(a_bits=8, w_bits=8),
    "mac-ws-2x": design(arrays=2, a_bits=8, w_bits=8),
    "mac-os-2x": design(arrays=2, dataflow="os", a_bits=8, w_bits=8),
    "bitserial": design("bitserial", lanes=4, k=2, max_w_bits=6),
    "mixed-os": design("mixed", dataflow="os", lanes=4, group=8),
    "fpmac": design("fpmac"),
}


def run_tile(config: TileConfig, program: list, dram: bytearray, *, timeout: int = 20_000,
             memory: MemoryModel = MEMORY) -> dict:
    """:func:`peforge.sim.tile_run.run_tile` over this file's memory (or ``memory``)."""
    return tile_run.run_tile(config, program, dram, memory, timeout=timeout)


# --- programs -------------------------------------------------------------------------------------


def put(dram: bytearray, at: int, matrix, size: int) -> None:
    """Store ``matrix`` row-major at byte ``at``, ``size`` bytes per element (two's complement codes)."""
    data = b"".join((int(v) % (1 << 8 * size)).to_bytes(size, "little") for v in np.asarray(matrix).ravel())
    dram[at:at + len(data)] = data


def get(dram: bytearray, at: int, rows: int, cols: int, size: int) -> np.ndarray:
    return np.array([[int.from_bytes(dram[at + (r * cols + c) * size:][:size], "little", signed=True)
                      for c in range(cols)] for r in range(rows)], dtype=np.int64)


def load(config: TileConfig, spad: str, dram_at: int, spad_element: int, pitch: int, rows: int, cols: int,
         slices: int = 1) -> Issue:
    """DMA: a ``rows x cols`` row-major matrix at ``dram_at`` into ``spad`` at ``spad_element`` with
    a row pitch of ``pitch`` words, in the slices of ``slices``."""
    size = config.element_bytes(spad)
    words = config.spads[spad].word_elements
    return Issue("dma", DmaCommand(dir="load", dram_addr=dram_at, spad_addr=config.dma_base(spad) + spad_element * size,
                                   rows=rows, row_bytes=cols * size, dram_stride=cols * size,
                                   spad_stride=pitch * words * size, slice_mask=slices))


def store(config: TileConfig, spad: str, dram_at: int, dram_cols: int, spad_element: int, pitch: int, rows: int,
          cols: int, slice: int = 0) -> Issue:
    """DMA: ``rows x cols`` elements of ``spad`` (row pitch ``pitch`` words) of slice ``slice`` into
    a row-major matrix of ``dram_cols`` columns at ``dram_at``."""
    size = config.element_bytes(spad)
    words = config.spads[spad].word_elements
    return Issue("dma", DmaCommand(dir="store", dram_addr=dram_at,
                                   spad_addr=config.dma_base(spad) + spad_element * size,
                                   rows=rows, row_bytes=cols * size, dram_stride=dram_cols * size,
                                   spad_stride=pitch * words * size, slice_mask=1 << slice))


def unit_cycles(config: TileConfig, memory: MemoryModel = MEMORY):
    """Each unit's own ``cycles`` (the DMA's over the memory of this test, or ``memory``)."""
    def cycles(slot: str, command) -> int:
        if slot == "dma":
            return config.dma.cycles(command, memory)
        if slot == "vec":
            return config.vector.cycles(command)
        return config.gemm.cycles(command)
    return cycles


def operands(config: TileConfig, M: int, K: int, N: int, seed: int) -> Gemm:
    """A random GEMM for the tile's PE (codes, metadata, run-time precision), its first row of A
    and column of B at the extremes where the PE's codes are plain integers."""
    stim = Stimulus(config.array, np.random.default_rng(seed))
    g = stim.random(M, K, N)
    if config.array.pe == "mac":
        g.a[0, :], g.b[:, 0] = stim.a_min, stim.w_min  # the largest products
    return g


def gemm_program(config: TileConfig, g: Gemm, splits: int):
    """The GEMM ``g`` with N split over ``splits`` slices: A broadcast to all, each slice's
    columns of B^T (and of the metadata), the GEMMs in parallel, each slice's C stored to its
    columns of C in DRAM. Returns the program (without END), the golden C and C's placement."""
    M, K, N = g.shape
    act, weight, out, meta = (config.spads.get(name) for name in ("act", "weight", "out", "meta"))
    a_pitch, b_pitch = act.row_pitch(K), weight.row_pitch(K)
    a_base, b_base, c_base = act.word_elements, 0, out.word_elements  # not all at element 0
    cut = ceil_div(N, splits)
    parts = [(s * cut, min(N, (s + 1) * cut)) for s in range(splits)]
    c_pitch = ceil_div(cut, out.word_elements) + 1
    pe_fields = {} if g.w_bits is None else {"w_bits": g.w_bits}
    program = [load(config, "act", A_AT, a_base, a_pitch, M, K, slices=(1 << splits) - 1)]
    groups = config.gemm.groups(K)
    extra = {}
    for s, (n0, n1) in enumerate(parts):
        program.append(load(config, "weight", B_AT + n0 * K * config.element_bytes("weight"), b_base, b_pitch,
                            n1 - n0, K, slices=1 << s))
        if meta is not None:
            extra = dict(meta_base=meta.word_elements, meta_pitch=meta.row_pitch(groups))
            program.append(load(config, "meta", M_AT + n0 * groups * config.element_bytes("meta"),
                                extra["meta_base"], extra["meta_pitch"], n1 - n0, groups, slices=1 << s))
    program.append(Wait("dma"))
    for s, (n0, n1) in enumerate(parts):
        program.append(Issue(f"gemm{s}", GemmCommand(a_base=a_base, a_pitch=a_pitch, b_base=b_base, b_pitch=b_pitch,
                                                     c_base=c_base, c_pitch=c_pitch, m=M, k=K, n=n1 - n0,
                                                     pe_fields=pe_fields, **extra)))
    program.append(Wait(tuple(f"gemm{s}" for s in range(splits))))
    for s, (n0, n1) in enumerate(parts):
        program.append(store(config, "out", C_AT + 4 * n0, N, c_base, c_pitch, M, n1 - n0, slice=s))
    array = config.array
    golden = wrap(systolic_gemm(g.a, g.b, array.pe_config, acc_bits=array.acc_bits, w_bits=g.w_bits, meta=g.meta,
                                rows=array.rows, dataflow=array.dataflow), OUT_BITS).astype(np.int64)
    # What each scratchpad must hold afterwards (they start at zero): exactly these matrices.
    images = {}
    for s, (n0, n1) in enumerate(parts):
        images[s, "act"] = act.pack(act.blank(), g.a, a_base, a_pitch)
        images[s, "weight"] = weight.pack(weight.blank(), np.asarray(g.b).T[n0:n1], b_base, b_pitch)
        images[s, "out"] = out.pack(out.blank(), golden[:, n0:n1], c_base, c_pitch)
        if meta is not None:
            codes = config.gemm.meta_codes(g.meta)[n0:n1]
            images[s, "meta"] = meta.pack(meta.blank(), codes, extra["meta_base"], extra["meta_pitch"])
    return program, golden, dict(c_base=c_base, c_pitch=c_pitch, images=images)


def dram_with(config: TileConfig, g: Gemm) -> bytearray:
    """Random DRAM holding A, B^T (weights [n][k]) and the metadata matrix [n][groups]."""
    dram = bytearray(np.random.default_rng(7).integers(0, 256, DRAM_BYTES, dtype=np.uint8).tobytes())
    put(dram, A_AT, g.a, config.element_bytes("act"))
    put(dram, B_AT, np.asarray(g.b).T, config.element_bytes("weight"))
    if "meta" in config.spads:
        put(dram, M_AT, config.gemm.meta_codes(g.meta), config.element_bytes("meta"))
    return dram


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DESIGNS))
def test_gemm_program(name):
    """DMA loads A and B^T (and metadata), GEMM(s), WAIT, DMA stores C, END: C exact, cycles as the
    timeline says; with two slices N is split over them and both GEMMs run in parallel."""
    config = TileConfig.from_design(DESIGNS[name], scaled=True)
    assert (config.array.rows, config.array.cols) == (4, 4)
    splits = config.arrays
    M, K, N = 5, 2 * config.array.k_per_fold + 3, 7
    g = operands(config, M, K, N, seed=len(name))
    program, golden, placed = gemm_program(config, g, splits)
    program.append(End())
    dram = dram_with(config, g)
    before = bytes(dram)
    result = run_tile(config, program, dram)
    np.testing.assert_array_equal(get(dram, C_AT, M, N, 4), golden)
    assert result["spads"].keys() == placed["images"].keys()
    for key, image in placed["images"].items():
        np.testing.assert_array_equal(result["spads"][key], image, err_msg=f"scratchpad {key}")
    changed = [i for i in range(DRAM_BYTES) if dram[i] != before[i]]
    assert all(C_AT <= i < C_AT + M * N * 4 for i in changed), "the DMA wrote outside C"
    expected = program_cycles(program, unit_cycles(config))
    assert result["measured"] == expected
    assert result["cycles_register"] == expected
    assert result["idle"] == 0 and result["running"] == {2} and result["status"] == 1  # busy, then done


def test_gemm_program_on_a_throttled_memory():
    """The same program over a memory giving a data beat every 3 cycles (the pattern restarted at
    each DMA command): C exact, cycles as the timeline over that memory says, more than at full speed."""
    config = TileConfig.from_design(DESIGNS["mac-ws"], scaled=True)
    slow = MemoryModel(read_latency=READ_LATENCY, write_latency=WRITE_LATENCY, period=3)
    M, K, N = 5, 2 * config.array.k_per_fold + 3, 7
    g = operands(config, M, K, N, seed=3)
    program, golden, _ = gemm_program(config, g, 1)
    program = [Nop(), *program, End()]  # a NOP first: commands accepted off the pattern's absolute phase
    dram = dram_with(config, g)
    result = run_tile(config, program, dram, memory=slow)
    np.testing.assert_array_equal(get(dram, C_AT, M, N, 4), golden)
    expected = program_cycles(program, unit_cycles(config, slow))
    assert result["measured"] == result["cycles_register"] == expected
    assert expected > program_cycles(program, unit_cycles(config))


def test_vector_requantizes_for_the_next_gemm():
    """Then the vector unit requantizes C (output spad) into the activation spad of slice 0 while
    the DMA loads the next weights; the next GEMM takes the 8-bit result as its A while the DMA
    stores it; the DMA stores that GEMM's C too."""
    config = TileConfig.from_design(DESIGNS["mac-ws"], scaled=True)
    g = operands(config, 4, 6, 5, seed=11)
    program, golden, at = gemm_program(config, g, splits=1)
    act, weight, out = (config.spads[name] for name in ("act", "weight", "out"))
    q_base, q_pitch = 48 * act.word_elements, act.row_pitch(5)
    b2_base, b2_pitch = 48, weight.row_pitch(5)
    c2_base, c2_pitch = 64, 1
    b2 = np.random.default_rng(12).integers(-128, 128, (5, 3))
    multiplier, shift = 3, 9
    program += [
        Wait("dma"),  # C is in DRAM: the DMA leaves the output spad to the vector unit
        Issue("vec", VectorCommand(op=VecOp.MULSHIFT, src_a=config.spad_base(0, "out") + at["c_base"],
                                   dst=config.spad_base(0, "act") + q_base, length=5, rows=4,
                                   pitch_a=at["c_pitch"] * out.word_elements, pitch_d=q_pitch * act.word_elements,
                                   mult=multiplier, shift=shift, out_bits=8)),
        load(config, "weight", B2_AT, b2_base, b2_pitch, 3, 5),
        Wait(("vec", "dma")),
        Issue("gemm0", GemmCommand(a_base=q_base, a_pitch=q_pitch, b_base=b2_base, b_pitch=b2_pitch, c_base=c2_base,
                                   c_pitch=c2_pitch, m=4, k=5, n=3)),
        store(config, "act", Q_AT, 5, q_base, q_pitch, 4, 5),  # beside the GEMM: it reads A on its own port
        Wait(("gemm0", "dma")),
        store(config, "out", C2_AT, 3, c2_base, c2_pitch, 4, 3),
        End(),
    ]
    dram = dram_with(config, g)
    put(dram, B2_AT, b2.T, 1)
    result = run_tile(config, program, dram)
    np.testing.assert_array_equal(get(dram, C_AT, 4, 5, 4), golden)
    want = intops.requantize(golden, multiplier, shift, 8)
    assert np.abs(want).max() > 60 and (np.abs(want) == 127).any()  # the data exercise the range and saturate
    np.testing.assert_array_equal(get(dram, Q_AT, 4, 5, 1), want)
    pe = config.array.pe_config
    next_c = wrap(systolic_gemm(want, b2, pe, acc_bits=config.array.acc_bits, rows=4, dataflow="ws"), OUT_BITS)
    np.testing.assert_array_equal(get(dram, C2_AT, 4, 3, 4), next_c.astype(np.int64))
    expected = program_cycles(program, unit_cycles(config))
    assert result["measured"] == result["cycles_register"] == expected


def test_vector_moves_between_slices():
    """With two slices the vector unit reads slice 1's output scratchpad (its half of C) and
    writes the requantized values into slice 0's activations (the slice field of its addresses)."""
    config = TileConfig.from_design(DESIGNS["mac-ws-2x"], scaled=True)
    g = operands(config, 4, 6, 7, seed=17)
    program, golden, at = gemm_program(config, g, splits=2)
    act, out = config.spads["act"], config.spads["out"]
    n0, cols = 4, 3  # slice 1 holds columns 4..6 of C
    q_base, q_pitch = 64, act.row_pitch(cols)
    program += [
        Issue("vec", VectorCommand(op=VecOp.MULSHIFT, src_a=config.spad_base(1, "out") + at["c_base"],
                                   dst=config.spad_base(0, "act") + q_base, length=cols, rows=4,
                                   pitch_a=at["c_pitch"] * out.word_elements, pitch_d=q_pitch * act.word_elements,
                                   mult=5, shift=10, out_bits=8)),
        Wait("vec"),
        store(config, "act", Q_AT, cols, q_base, q_pitch, 4, cols, slice=0),
        End(),
    ]
    dram = dram_with(config, g)
    result = run_tile(config, program, dram)
    np.testing.assert_array_equal(get(dram, Q_AT, 4, cols, 1), intops.requantize(golden[:, n0:], 5, 10, 8))
    assert result["measured"] == result["cycles_register"] == program_cycles(program, unit_cycles(config))


def test_softmax_in_one_scratchpad():
    """The vector unit's softmax program over C, its operands A and B and its destination all in
    slice 0's output scratchpad (in place for the last step): each on its own access port. The
    output scratchpad afterwards equals the unit's golden model command by command."""
    config = TileConfig.from_design(DESIGNS["mac-ws"], scaled=True)
    g = operands(config, 4, 6, 5, seed=13)
    program, golden, at = gemm_program(config, g, splits=1)
    out = config.spads["out"]
    base = config.spad_base(0, "out")
    pitch = at["c_pitch"] * out.word_elements
    d_base, scratch = 64, 120  # element offsets in the output spad: the result and the row values
    softmax = softmax_program(src=base + at["c_base"], dst=base + d_base, scratch=base + scratch, length=5, rows=4,
                              pitch=pitch, scale=2.0 ** -10)
    program += [Wait("dma"), *(Issue("vec", cmd) for cmd in softmax), Wait("vec"),
                store(config, "out", Q_AT, 5, d_base, at["c_pitch"], 4, 5), End()]
    dram = dram_with(config, g)
    result = run_tile(config, program, dram)
    image = at["images"][0, "out"]
    for cmd in softmax:  # the golden model on the output spad alone: offsets from its base
        image = execute(replace(cmd, src_a=cmd.src_a - base, src_b=cmd.src_b - base, dst=cmd.dst - base), image)
    np.testing.assert_array_equal(result["spads"][0, "out"], image)
    probabilities = get(dram, Q_AT, 4, 5, 4)
    np.testing.assert_array_equal(probabilities, out.unpack(image, d_base, at["c_pitch"], 4, 5))
    assert probabilities.max() > 100 and probabilities.min() >= 0  # 8-bit probabilities, the largest near 1
    assert result["measured"] == result["cycles_register"] == program_cycles(program, unit_cycles(config))


def test_double_buffered_k_blocks():
    """A K-blocked GEMM with double buffering: the DMA loads the second K block of A and B^T into
    the other halves of the activation and weight scratchpads while the GEMM engine computes the
    first block from them; the second GEMM accumulates onto the first's C."""
    config = TileConfig.from_design(DESIGNS["mac-ws"], scaled=True)
    M, K, N, cut = 6, 20, 5, 12
    g = operands(config, M, K, N, seed=5)
    act, weight, out = (config.spads[name] for name in ("act", "weight", "out"))
    half = act.elements // 2
    c_base, c_pitch = 0, 2
    program, gemms = [], []
    for block, (k0, k1) in enumerate([(0, cut), (cut, K)]):
        a_pitch, b_pitch = act.row_pitch(k1 - k0), weight.row_pitch(k1 - k0)
        base = block * half  # buffer 0, then buffer 1
        program += [
            Issue("dma", DmaCommand(dir="load", dram_addr=A_AT + k0, spad_addr=config.dma_base("act") + base,
                                    rows=M, row_bytes=k1 - k0, dram_stride=K, spad_stride=a_pitch)),
            Issue("dma", DmaCommand(dir="load", dram_addr=B_AT + k0, spad_addr=config.dma_base("weight") + base,
                                    rows=N, row_bytes=k1 - k0, dram_stride=K, spad_stride=b_pitch)),
        ]
        gemms.append(Issue("gemm0", GemmCommand(a_base=base, a_pitch=a_pitch, b_base=base, b_pitch=b_pitch,
                                                c_base=c_base, c_pitch=c_pitch, m=M, k=k1 - k0, n=N,
                                                accumulate=block == 1)))
    # load block 0, WAIT, GEMM 0 beside the loads of block 1, WAIT, GEMM 1 (accumulating), store C
    program = [*program[:2], Wait("dma"), gemms[0], *program[2:], Wait(("dma", "gemm0")), gemms[1],
               Wait("gemm0"), store(config, "out", C_AT, N, c_base, c_pitch, M, N), End()]
    timeline = check_program(config, program, MEMORY)
    gemm0, loads = timeline.steps[3], timeline.steps[4:6]
    assert all(step.issued < gemm0.completed for step in loads)  # the loads do overlap the GEMM
    dram = dram_with(config, g)
    result = run_tile(config, program, dram)
    golden = wrap(systolic_gemm(g.a, g.b, config.array.pe_config, acc_bits=config.array.acc_bits, rows=4,
                                dataflow="ws"), OUT_BITS)
    np.testing.assert_array_equal(get(dram, C_AT, M, N, 4), golden.astype(np.int64))
    assert result["measured"] == result["cycles_register"] == program_cycles(program, unit_cycles(config))


def test_verilog_top_has_axi_port_names():
    """Exported with :func:`~peforge.hw.tile.axi.verilog_ports`, the top module's ports are the
    clock, the reset and AXI signal names, as AXI verification IP binds them."""
    tile = AcceleratorTile(TileConfig(vector_lanes=1))  # the smallest vector unit: a shorter export
    text = verilog.convert(tile, name="tile", ports=verilog_ports(tile))
    header = re.search(r"module tile\((.*?)\);", text, re.S).group(1)
    ports = {name.strip() for name in header.split(",")}
    axi = {f"m_axi_{ch}{sig}" for ch in ("aw", "ar")
           for sig in ("id", "addr", "len", "size", "burst", "valid", "ready")}
    axi |= {f"m_axi_{name}" for name in ("wdata", "wstrb", "wlast", "wvalid", "wready", "bid", "bresp", "bvalid",
                                          "bready", "rid", "rdata", "rresp", "rlast", "rvalid", "rready")}
    lite = {f"s_axil_{name}" for name in ("awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
                                           "bresp", "bvalid", "bready", "araddr", "arvalid", "arready", "rdata",
                                           "rresp", "rvalid", "rready")}
    assert ports == {"clk", "rst"} | axi | lite


def test_widest_vector_unit_elaborates():
    """32 lanes (a full-size design's default, cols x arrays) elaborate: no expression in the
    unit grows with 2**lanes."""
    Fragment.get(VectorUnit(VectorConfig(lanes=32, addr_bits=24)), None)


@pytest.mark.slow
def test_edge_design_tile_elaborates_at_full_size():
    """The shipped edge design's tile (one 32 x 32 bit-serial array, 512 KiB scratchpads, a 64-byte
    bus, 32 vector lanes) elaborates."""
    config = TileConfig.from_design(design_named("edge"), scaled=False)
    Fragment.get(AcceleratorTile(config), None)
