"""The whole accelerator tile in the Amaranth simulator: programs written through ``s_axil``,
started, run against an AXI4 memory written here (a bytearray; address channels always ready, a
read burst's first beat ``READ_LATENCY`` cycles after its address, beats back to back, a write
response ``WRITE_LATENCY`` cycles after the last beat: the DMA's :class:`MemoryModel` with
period 1). Results in the memory must equal the golden models bit for bit, and the cycles from
``start`` to ``done`` (measured, and read from the ``cycles`` register) must equal
:func:`peforge.hw.tile.isa.program_cycles` with each unit's own ``cycles``."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from amaranth.sim import Simulator

from peforge.arith import ceil_div
from peforge.dse.design.point import Compute, DesignPoint, Memory, Pim, Sram
from peforge.hw import intops
from peforge.hw.golden import wrap
from peforge.hw.systolic import systolic_gemm
from peforge.hw.tile.config import TileConfig
from peforge.hw.tile.dma import DmaCommand, MemoryModel
from peforge.hw.tile.gemm import OUT_BITS, GemmCommand
from peforge.hw.tile.isa import End, Issue, Wait, program_cycles
from peforge.hw.tile.tile import AcceleratorTile
from peforge.hw.tile.vector import VecOp, VectorCommand

pytestmark = pytest.mark.rtl

READ_LATENCY, WRITE_LATENCY = 3, 2
MEMORY = MemoryModel(read_latency=READ_LATENCY, write_latency=WRITE_LATENCY)
DRAM_BYTES = 1 << 14
A_AT, B_AT, C_AT, Q_AT = 0x0000, 0x0400, 0x0800, 0x0C00  # DRAM byte addresses of A, B^T, C, requantized C


def mac_design(arrays: int) -> DesignPoint:
    """A MAC design the tile scales down to 4 x 4 arrays (8-bit activations and weights)."""
    compute = Compute(pe="mac", rows=16, cols=16, arrays=arrays, clock_mhz=500.0,
                      pe_params=(("a_bits", 8), ("w_bits", 8)))
    return DesignPoint(compute=compute, sram=Sram(weight_kib=64, activation_kib=64, output_kib=64),
                       memory=Memory(technology="DDR4", units=1))


# --- the testbench's AXI4 memory and AXI4-Lite master ---------------------------------------------


async def axi_memory(ctx, bus, dram: bytearray, bus_bytes: int, trace: dict, tile: AcceleratorTile):
    """The memory (see the module docstring), and a monitor of the cycles ``start`` and ``done``
    are high (``trace``)."""
    reads: deque = deque()  # per burst: [first cycle a beat may pass, address, beats left]
    writes: deque = deque()  # per burst: [address, beats left]
    responses: deque = deque()  # cycles of pending write responses
    for ready in (bus.arready, bus.awready, bus.wready):
        ctx.set(ready, 1)
    cycle = 0
    while True:
        beat = bool(reads) and cycle >= reads[0][0]
        ctx.set(bus.rvalid, beat)
        if beat:
            addr = reads[0][1]
            ctx.set(bus.rdata, int.from_bytes(dram[addr:addr + bus_bytes], "little"))
            ctx.set(bus.rlast, reads[0][2] == 1)
        ctx.set(bus.bvalid, bool(responses) and responses[0] == cycle)
        if ctx.get(tile.sequencer.start):
            trace.setdefault("start", cycle)
        if ctx.get(tile.sequencer.done) and "start" in trace:
            trace.setdefault("done", cycle)
        if ctx.get(bus.arvalid):
            assert ctx.get(bus.arsize) == bus_bytes.bit_length() - 1 and ctx.get(bus.arburst) == 1
            reads.append([cycle + READ_LATENCY, ctx.get(bus.araddr), ctx.get(bus.arlen) + 1])
        if ctx.get(bus.awvalid):
            writes.append([ctx.get(bus.awaddr), ctx.get(bus.awlen) + 1])
        if beat:
            assert ctx.get(bus.rready), "the DMA must take read beats as they come"
            burst = reads[0]
            burst[1] += bus_bytes
            burst[2] -= 1
            if not burst[2]:
                reads.popleft()
                if reads:  # the next burst's beats follow, no earlier than the next cycle
                    reads[0][0] = max(reads[0][0], cycle + 1)
        if ctx.get(bus.wvalid):
            addr, left = writes[0]
            assert ctx.get(bus.wlast) == (left == 1)
            data, strobe = ctx.get(bus.wdata), ctx.get(bus.wstrb)
            for i in range(bus_bytes):
                if strobe >> i & 1:
                    dram[addr + i] = data >> (8 * i) & 0xFF
            writes[0] = [addr + bus_bytes, left - 1]
            if left == 1:
                writes.popleft()
                responses.append(cycle + WRITE_LATENCY)
        if responses and responses[0] == cycle:
            assert ctx.get(bus.bready)
            responses.popleft()
        await ctx.tick()
        cycle += 1


async def axil_write(ctx, bus, addr: int, value: int) -> None:
    ctx.set(bus.awaddr, addr)
    ctx.set(bus.wdata, value)
    ctx.set(bus.wstrb, 0xF)
    ctx.set(bus.awvalid, 1)
    ctx.set(bus.wvalid, 1)
    ctx.set(bus.bready, 1)
    while not (await ctx.tick().sample(bus.awready))[2]:
        pass
    ctx.set(bus.awvalid, 0)
    ctx.set(bus.wvalid, 0)
    while not (await ctx.tick().sample(bus.bvalid))[2]:
        pass


async def axil_read(ctx, bus, addr: int) -> int:
    ctx.set(bus.araddr, addr)
    ctx.set(bus.arvalid, 1)
    ctx.set(bus.rready, 1)
    while not (await ctx.tick().sample(bus.arready))[2]:
        pass
    ctx.set(bus.arvalid, 0)
    while True:
        _, _, valid, data = await ctx.tick().sample(bus.rvalid, bus.rdata)
        if valid:
            return data


def run_tile(config: TileConfig, program: list, dram: bytearray, *, timeout: int = 20_000) -> dict:
    """Write ``program`` through ``s_axil``, start it, poll ``status`` until done; ``dram`` is
    updated in place. Returns the cycles measured from ``start`` to ``done``, the ``cycles``
    register and the status words."""
    tile = AcceleratorTile(config)
    sim = Simulator(tile)
    sim.add_clock(1e-8)
    trace: dict = {}

    async def memory(ctx):
        await axi_memory(ctx, tile.m_axi, dram, config.bus_bytes, trace, tile)

    sim.add_testbench(memory, background=True)
    out: dict = {}

    async def host(ctx):
        lite = tile.s_axil
        for addr, value in config.program_writes(config.encode(program)):
            await axil_write(ctx, lite, addr, value)
        out["idle"] = await axil_read(ctx, lite, config.register_address("status"))
        await axil_write(ctx, lite, config.register_address("start"), 1)
        for _ in range(timeout):
            status = await axil_read(ctx, lite, config.register_address("status"))
            if status & 1:
                break
        else:
            raise TimeoutError(f"the tile did not finish in {timeout} polls")
        out["status"] = status
        out["cycles_register"] = await axil_read(ctx, lite, config.register_address("cycles"))

    sim.add_testbench(host)
    sim.run()
    return {**out, "measured": trace["done"] - trace["start"]}


# --- programs -------------------------------------------------------------------------------------


def put(dram: bytearray, at: int, matrix, size: int) -> None:
    """Store ``matrix`` row-major at byte ``at``, ``size`` bytes per element, little-endian."""
    data = b"".join(int(v).to_bytes(size, "little", signed=True) for v in np.asarray(matrix).ravel())
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
    return Issue("dma", DmaCommand(dir="store", dram_addr=dram_at, spad_addr=config.dma_base(spad) + spad_element * size,
                                   rows=rows, row_bytes=cols * size, dram_stride=dram_cols * size,
                                   spad_stride=pitch * words * size, slice_mask=1 << slice))


def unit_cycles(config: TileConfig):
    """Each unit's own ``cycles`` (the DMA's over the memory of this test)."""
    def cycles(slot: str, command) -> int:
        if slot == "dma":
            return config.dma.cycles(command, MEMORY)
        if slot == "vec":
            return config.vector.cycles(command)
        return config.gemm.cycles(command)
    return cycles


def operands(M: int, K: int, N: int, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (M, K))
    b = rng.integers(-128, 128, (K, N))
    a[0, :] = -128  # extremes: the largest products
    b[:, 0] = -128
    return a, b


def gemm_program(config: TileConfig, a, b, splits: int) -> tuple[list, np.ndarray]:
    """A GEMM of ``a`` by ``b`` with N split over ``splits`` slices: A broadcast to all, each
    slice's columns of B^T, the GEMMs in parallel, each slice's C stored to its columns.
    Returns the program (without END) and the golden C."""
    M, K = a.shape
    N = b.shape[1]
    act, weight, out = (config.spads[name] for name in ("act", "weight", "out"))
    a_pitch, b_pitch = act.row_pitch(K), weight.row_pitch(K)
    a_base, b_base, c_base = act.word_elements, 0, out.word_elements  # not all at element 0
    cut = ceil_div(N, splits)
    parts = [(s * cut, min(N, (s + 1) * cut)) for s in range(splits)]
    c_pitch = ceil_div(cut, out.word_elements) + 1
    program = [load(config, "act", A_AT, a_base, a_pitch, M, K, slices=(1 << splits) - 1)]
    for s, (n0, n1) in enumerate(parts):
        program.append(load(config, "weight", B_AT + n0 * K, b_base, b_pitch, n1 - n0, K, slices=1 << s))
    program.append(Wait("dma"))
    for s, (n0, n1) in enumerate(parts):
        program.append(Issue(f"gemm{s}", GemmCommand(a_base=a_base, a_pitch=a_pitch, b_base=b_base, b_pitch=b_pitch,
                                                     c_base=c_base, c_pitch=c_pitch, m=M, k=K, n=n1 - n0)))
    program.append(Wait(tuple(f"gemm{s}" for s in range(splits))))
    for s, (n0, n1) in enumerate(parts):
        program.append(store(config, "out", C_AT + 4 * n0, N, c_base, c_pitch, M, n1 - n0, slice=s))
    pe = config.array.pe_config
    golden = wrap(systolic_gemm(a, b, pe, acc_bits=config.array.acc_bits, rows=config.array.rows,
                                dataflow=config.array.dataflow), OUT_BITS).astype(np.int64)
    return program, golden, dict(c_base=c_base, c_pitch=c_pitch)


def dram_with(a, b) -> bytearray:
    dram = bytearray(np.random.default_rng(7).integers(0, 256, DRAM_BYTES, dtype=np.uint8).tobytes())
    put(dram, A_AT, a, 1)
    put(dram, B_AT, np.asarray(b).T, 1)  # weights [n][k]
    return dram


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("arrays", [1, 2])
def test_gemm_program(arrays):
    """DMA loads A and B^T, GEMM(s), WAIT, DMA stores C, END: C exact, cycles as the timeline says."""
    config = TileConfig.from_design(mac_design(arrays), scaled=True)
    assert (config.arrays, config.array.rows, config.array.cols) == (arrays, 4, 4)
    a, b = operands(5, 9, 7, seed=arrays)
    program, golden, _ = gemm_program(config, a, b, splits=arrays)
    program.append(End())
    dram = dram_with(a, b)
    before = bytes(dram)
    result = run_tile(config, program, dram)
    np.testing.assert_array_equal(get(dram, C_AT, 5, 7, 4), golden)
    changed = [i for i in range(DRAM_BYTES) if dram[i] != before[i]]
    assert all(C_AT <= i < C_AT + 5 * 7 * 4 for i in changed), "the DMA wrote outside C"
    expected = program_cycles(program, unit_cycles(config))
    assert result["measured"] == expected
    assert result["cycles_register"] == expected
    assert result["idle"] == 0 and result["status"] == 1  # done, not busy


def test_vector_requantizes_gemm_output():
    """Then the vector unit requantizes C (output spad) into the activation spad of slice 0,
    and the DMA stores the 8-bit result."""
    config = TileConfig.from_design(mac_design(1), scaled=True)
    a, b = operands(4, 6, 5, seed=11)
    program, golden, at = gemm_program(config, a, b, splits=1)
    act, out = config.spads["act"], config.spads["out"]
    q_base, q_pitch = 48 * act.word_elements, act.row_pitch(5)
    multiplier, shift = 3, 9
    program += [
        Wait("dma"),  # C is in DRAM, and the DMA leaves the output spad to the vector unit
        Issue("vec", VectorCommand(op=VecOp.MULSHIFT, src_a=config.spad_base(0, "out") + at["c_base"],
                                   dst=config.spad_base(0, "act") + q_base, length=5, rows=4,
                                   pitch_a=at["c_pitch"] * out.word_elements, pitch_d=q_pitch * act.word_elements,
                                   mult=multiplier, shift=shift, out_bits=8)),
        Wait("vec"),
        store(config, "act", Q_AT, 5, q_base, q_pitch, 4, 5),
        End(),
    ]
    dram = dram_with(a, b)
    result = run_tile(config, program, dram)
    np.testing.assert_array_equal(get(dram, C_AT, 4, 5, 4), golden)
    want = intops.requantize(golden, multiplier, shift, 8)
    assert np.abs(want).max() > 60  # the data exercise the range
    np.testing.assert_array_equal(get(dram, Q_AT, 4, 5, 1), want)
    expected = program_cycles(program, unit_cycles(config))
    assert result["measured"] == result["cycles_register"] == expected
