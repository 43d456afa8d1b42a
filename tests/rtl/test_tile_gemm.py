"""Scratchpad and GEMM engine of the accelerator tile in the Amaranth simulator.

GEMM engine: for the MAC, bit-serial and mixed PEs in both dataflows, a sequence of commands
run back to back (random shapes, M < R, K = 1, N = 1, extreme values, a K-blocked pair whose
second half accumulates): the output scratchpad afterwards must hold, bit for bit, what the
array's golden (:func:`~peforge.hw.systolic.systolic_gemm`) gives, wrapped to the spad's 32-bit
elements, with every other element untouched; every command must take exactly
:meth:`GemmEngineConfig.cycles`, measured from its acceptance to ``ready`` again.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from peforge.arith import ceil_div
from peforge.hw.golden import wrap
from peforge.hw.pe import PE_KINDS
from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.systolic import SystolicConfig, systolic_gemm
from peforge.hw.tile.gemm import OUT_BITS, GemmCommand, GemmEngineConfig, GemmSlice
from peforge.hw.tile.spad import Scratchpad, ScratchpadConfig
from peforge.sim.bench import AmaranthBench
from peforge.sim.testbench.systolic import Gemm, Stimulus
from peforge.sim.units import issue_commands

# Small arrays (2x2 .. 4x3); a MAC whose outputs exceed 32 bits shows the spad's wrap.
ARRAYS = {
    "mac": dict(rows=3, cols=2, pe_config=MacConfig(a_bits=8, w_bits=8, max_accumulations=64)),
    "mac-wide": dict(rows=2, cols=2, pe_config=MacConfig(a_bits=16, w_bits=16, max_accumulations=64)),
    "bitserial": dict(rows=2, cols=3, pe_config=BitSerialConfig(lanes=2, k=2, max_w_bits=6)),
    "mixed": dict(rows=2, cols=3, pe_config=MixedConfig(lanes=2, group=8)),
    "mixed-signed": dict(rows=4, cols=3, pe_config=MixedConfig(lanes=1, group=4, w_bits=3, zero_point=False)),
    "bitserial-serial": dict(rows=4, cols=3, pe_config=BitSerialConfig(lanes=1, k=1, max_w_bits=4, a_bits=6)),
}
CASES = [(name, df) for name in ARRAYS for df in ("ws", "os")]
SEEDS = {case: seed for seed, case in enumerate(CASES)}


OUT_BANKS = {"mac": 1, "mixed-signed": 3}  # else 2


def engine_config(name: str, dataflow: str, *, max_k: int = 40, **spec) -> GemmEngineConfig:
    spec = spec or ARRAYS[name]
    array = SystolicConfig(pe=name.split("-")[0], dataflow=dataflow, max_m=12, max_k=max_k, max_n=12, **spec)
    banks = OUT_BANKS.get(name, 2)
    return GemmEngineConfig.for_array(array, act_depth=256, weight_depth=256, out_depth=ceil_div(320, banks),
                                      out_banks=banks, meta_depth=128)


class Placer:
    """Places each GEMM's operands in fresh regions of the spads; keeps the model of the output spad."""

    def __init__(self, cfg: GemmEngineConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.images = {name: getattr(cfg, name).blank() for name in ("act", "weight", "meta") if getattr(cfg, name)}
        # The output spad starts with random values: accumulate must add to them, others stay.
        self.images["out"] = rng.integers(-(1 << 31), 1 << 31, cfg.out.elements)
        self.model = self.images["out"].copy()
        self.free = {name: 0 for name in self.images}

    def _region(self, name: str, rows: int, cols: int) -> tuple[int, int]:
        spad = getattr(self.cfg, name)
        pitch = spad.row_pitch(cols) if name != "out" else ceil_div(cols, spad.word_elements) + 1
        base = self.free[name] + spad.word_elements * int(self.rng.integers(0, 3))  # any word, not bank 0
        self.free[name] = base + rows * pitch * spad.word_elements
        return base, pitch

    def command(self, g: Gemm, *, into: GemmCommand | None = None, accumulate: bool = False) -> GemmCommand:
        """A command for ``g`` with fresh A, B^T (and metadata) regions; C at a fresh region or ``into``'s."""
        cfg = self.cfg
        M, K, N = g.shape
        a_base, a_pitch = self._region("act", M, K)
        b_base, b_pitch = self._region("weight", N, K)
        cfg.act.pack(self.images["act"], g.a, a_base, a_pitch)
        cfg.weight.pack(self.images["weight"], np.asarray(g.b).T, b_base, b_pitch)  # weights stored [n][k]
        c_base, c_pitch = (into.c_base, into.c_pitch) if into else self._region("out", M, N)
        fields = dict(a_base=a_base, a_pitch=a_pitch, b_base=b_base, b_pitch=b_pitch, c_base=c_base, c_pitch=c_pitch,
                      m=M, k=K, n=N, accumulate=accumulate,
                      pe_fields={} if g.w_bits is None else {"w_bits": g.w_bits})
        if cfg.meta is not None:
            meta_base, meta_pitch = self._region("meta", N, cfg.groups(K))
            cfg.meta.pack(self.images["meta"], cfg.meta_codes(g.meta), meta_base, meta_pitch)
            fields.update(meta_base=meta_base, meta_pitch=meta_pitch)
        cmd = GemmCommand(**fields)
        # The model: C (the array's golden) written, or added, as 32-bit elements.
        product = systolic_gemm(g.a, g.b, cfg.array.pe_config, acc_bits=cfg.array.acc_bits, w_bits=g.w_bits,
                                meta=g.meta, rows=cfg.array.rows, dataflow=cfg.array.dataflow)
        old = cfg.out.unpack(self.model, c_base, c_pitch, M, N).astype(object)
        cfg.out.pack(self.model, wrap(product + (old if accumulate else 0), OUT_BITS).astype(np.int64), c_base, c_pitch)
        return cmd


def run_slice(cfg: GemmEngineConfig, init: dict, payloads: list[int], *, beside=None):
    """Run the commands back to back on a :class:`GemmSlice`; returns their timings and the
    output spad afterwards. ``beside(ctx, dut)``: a testbench run alongside (e.g. a DMA's writes)."""
    dut = GemmSlice(cfg, init=init)
    top = Module()
    top.domains.sync = domain = ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    outcome = {}

    async def bench(ctx):
        outcome["timings"] = await issue_commands(AmaranthBench(ctx, dut, domain.rst), payloads, timeout=20_000)
        outcome["out"] = dut.spads["out"].contents(ctx.get)

    sim.add_testbench(bench)
    if beside is not None:
        async def other(ctx):
            await beside(ctx, dut)

        sim.add_testbench(other)
    sim.run()
    return outcome["timings"], outcome["out"]


def k_split(cfg: GemmEngineConfig, K: int) -> int:
    """Where to cut K in two blocks: at a quantization group (metadata) boundary, else anywhere."""
    step = cfg.group or 1
    return max(step, (K // 2) // step * step)


def gemm_sequence(cfg: GemmEngineConfig, rng: np.random.Generator):
    """The GEMMs of one run and how to issue each: ``(gemm, accumulate_into_previous)``."""
    stim = Stimulus(cfg.array, rng)
    R, C = cfg.array.rows, cfg.array.cols
    jobs = [(stim.random(R + 1, 2 * cfg.array.k_per_fold + 1, C + 1), False),  # not multiples of the array
            (stim.random(1, 1, 1), False),
            (stim.random(2, 2 * (cfg.group or cfg.array.k_per_fold) + 3, C), False),  # several groups of metadata
            (stim.random(max(1, R - 1), int(rng.integers(2, 12)), 1), False),  # M < R, N = 1
            (stim.random(int(rng.integers(1, 8)), 1, int(rng.integers(2, 8))), False),  # K = 1
            (stim.constant(R + 1, 9, C + 1, stim.a_min, "most negative"), False),
            (stim.constant(3, 5, 2, stim.a_max, "max"), False)]
    jobs += [(stim.random(*stim.random_shape()), False) for _ in range(6)]
    # A K-blocked pair: C = A[:, :k1] B[:k1] + A[:, k1:] B[k1:], the second added to the first.
    step = cfg.group or 1
    g = stim.random(int(rng.integers(1, 7)), int(rng.integers(step + 1, step + 12)), int(rng.integers(1, 7)))
    k1 = k_split(cfg, g.shape[1])
    groups = k1 // (cfg.group or 1)  # metadata rows are quantization groups of k
    first = Gemm(g.a[:, :k1], g.b[:k1], {key: np.asarray(v)[:groups] for key, v in g.meta.items()}, g.w_bits)
    second = Gemm(g.a[:, k1:], g.b[k1:], {key: np.asarray(v)[groups:] for key, v in g.meta.items()}, g.w_bits)
    jobs += [(first, False), (second, True)]
    return jobs


def check_engine(cfg: GemmEngineConfig, seed: int) -> None:
    rng = np.random.default_rng(seed)
    placer = Placer(cfg, rng)
    cmds = []
    for g, accumulate in gemm_sequence(cfg, rng):
        cmds.append(placer.command(g, into=cmds[-1] if accumulate else None, accumulate=accumulate))
    timings, out = run_slice(cfg, placer.images, [cmd.pack(cfg) for cmd in cmds])

    assert [t.cycles for t in timings] == [cfg.cycles(cmd) for cmd in cmds]
    # Back to back: each command is taken the cycle the previous one is done.
    assert [t.accepted for t in timings[1:]] == [t.ready for t in timings[:-1]]
    wrong = np.flatnonzero(out != placer.model)
    first = wrong[:8]
    assert wrong.size == 0, f"{wrong.size} elements differ, first at {first}: {out[first]} != {placer.model[first]}"


@pytest.mark.parametrize("name, dataflow", CASES, ids=[f"{name}-{df}" for name, df in CASES])
def test_gemm_engine_matches_golden_and_cycles(name, dataflow):
    check_engine(engine_config(name, dataflow), SEEDS[name, dataflow])


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("pe", list(PE_KINDS))
def test_every_registered_kind_with_its_defaults(pe, dataflow):
    """Any PE the registry lists (float ones too) runs in the engine with its default parameters
    (their quantization group of 128 k values: K up to 2 groups and more)."""
    check_engine(engine_config(pe, dataflow, max_k=300, rows=2, cols=2), 40)


def test_overhead_is_the_arrays_cycles_plus_four():
    """The stated overhead, independent of the engine's own formula: the measured span of a
    command minus the array's GEMM cycles."""
    cfg = engine_config("mac", "ws")
    placer = Placer(cfg, np.random.default_rng(2))
    stim = Stimulus(cfg.array, np.random.default_rng(2))
    cmd = placer.command(stim.random(2, 3, 2))
    timings, _ = run_slice(cfg, placer.images, [cmd.pack(cfg)])
    assert timings[0].cycles - cfg.array.cycles(2, 3, 2) == 4


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_access_port_fills_the_other_buffer_while_a_command_runs(dataflow):
    """Double buffering: while the first GEMM reads its A, the access port writes the second
    GEMM's A into another region (runs of ``run_elements``, one per cycle); the second command,
    taken right after the first, computes with what was written."""
    cfg = engine_config("mixed", dataflow)
    rng = np.random.default_rng(21)
    placer = Placer(cfg, rng)
    stim = Stimulus(cfg.array, rng)
    first = placer.command(stim.random(5, 12, 4))
    second = placer.command(stim.random(4, 10, 5))
    act = cfg.act
    start = second.a_base
    end = act.element_address(start, second.a_pitch, second.m - 1, second.k)
    written = placer.images["act"][start:end].copy()
    placer.images["act"][start:end] = 0  # not there until the access port writes it
    P = act.run_elements
    done = {}

    async def dma(ctx, dut):
        port = dut.act_access
        await ctx.tick().repeat(3)  # the first command runs
        for cycle, at in enumerate(range(start, end, P)):
            chunk = written[at - start:at - start + P]
            ctx.set(port.en, 1)
            ctx.set(port.we, 1)
            ctx.set(port.addr, at)
            ctx.set(port.mask, (1 << len(chunk)) - 1)
            ctx.set(port.wdata, [int(v) for v in chunk] + [0] * (P - len(chunk)))
            await ctx.tick()
        ctx.set(port.en, 0)
        done["cycle"] = 3 + cycle + 1

    timings, out = run_slice(cfg, placer.images, [first.pack(cfg), second.pack(cfg)], beside=dma)
    assert done["cycle"] < timings[0].ready  # the writes ended while the first command ran
    assert [t.cycles for t in timings] == [cfg.cycles(first), cfg.cycles(second)]
    assert out.tolist() == placer.model.tolist()


# --- scratchpad --------------------------------------------------------------------------------

SPADS = [ScratchpadConfig(banks=3, word_elements=2, element_bits=8, depth=8),
         ScratchpadConfig(banks=4, word_elements=4, element_bits=5, signed=False, depth=8, run=7),
         ScratchpadConfig(banks=1, word_elements=3, element_bits=32, depth=6)]


def simulate_spad(cfg: ScratchpadConfig, init: np.ndarray, testbench):
    dut = Scratchpad(cfg, init=init)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    async def run(ctx):
        await testbench(ctx, dut)

    sim.add_testbench(run)
    sim.run()


def random_codes(cfg: ScratchpadConfig, rng, size):
    lo, hi = (-(1 << cfg.element_bits - 1), 1 << cfg.element_bits - 1) if cfg.signed else (0, 1 << cfg.element_bits)
    return rng.integers(lo, hi, size)


@pytest.mark.parametrize("index", range(len(SPADS)))
def test_scratchpad_runs_read_back_and_masks_hold(index):
    """Random runs written (random masks) and read through the access port against a list model."""
    cfg = SPADS[index]
    rng = np.random.default_rng(index)
    P = cfg.run_elements
    model = random_codes(cfg, rng, cfg.elements)
    init = model.copy()
    checked = []

    async def bench(ctx, dut):
        acc = dut.access
        for _ in range(120):
            addr = int(rng.integers(0, cfg.elements - P + 1))
            ctx.set(acc.addr, addr)
            ctx.set(acc.en, 1)
            if rng.random() < 0.5:
                values, mask = random_codes(cfg, rng, P), int(rng.integers(0, 1 << P))
                ctx.set(acc.we, 1)
                ctx.set(acc.mask, mask)
                ctx.set(acc.wdata, [int(v) for v in values])
                await ctx.tick()
                for i in range(P):
                    if mask >> i & 1:
                        model[addr + i] = values[i]
            else:
                ctx.set(acc.we, 0)
                await ctx.tick()
                ctx.set(acc.en, 0)
                await ctx.tick()  # the data holds while no new read is asked
                checked.append(([int(ctx.get(acc.rdata[i])) for i in range(P)], model[addr:addr + P].tolist()))
        ctx.set(acc.en, 0)
        await ctx.tick()
        checked.append((dut.contents(ctx.get).tolist(), model.tolist()))

    simulate_spad(cfg, init, bench)
    assert len(checked) > 40
    for got, expected in checked:
        assert got == expected


@pytest.mark.parametrize("index", range(len(SPADS)))
def test_scratchpad_access_ports_work_in_the_same_cycle(index):
    """Three access ports: in every cycle a random run written on ``access`` while ``access1``
    and ``access2`` read random runs (a read sees the memory before the cycle's write)."""
    cfg = SPADS[index]
    rng = np.random.default_rng(20 + index)
    P = cfg.run_elements
    model = random_codes(cfg, rng, cfg.elements)
    init = model.copy()
    checked = []

    async def bench(ctx, dut):
        readers = [dut.access1, dut.access2]
        for _ in range(60):
            addr = int(rng.integers(0, cfg.elements - P + 1))
            values, mask = random_codes(cfg, rng, P), int(rng.integers(0, 1 << P))
            ctx.set(dut.access.addr, addr)
            ctx.set(dut.access.en, 1)
            ctx.set(dut.access.we, 1)
            ctx.set(dut.access.mask, mask)
            ctx.set(dut.access.wdata, [int(v) for v in values])
            reads = [int(rng.integers(0, cfg.elements - P + 1)) for _ in readers]
            for port, at in zip(readers, reads):
                ctx.set(port.addr, at)
                ctx.set(port.en, 1)
            wanted = [model[at:at + P].tolist() for at in reads]
            await ctx.tick()
            checked.extend(([int(ctx.get(port.rdata[i])) for i in range(P)], want)
                           for port, want in zip(readers, wanted))
            for i in range(P):
                if mask >> i & 1:
                    model[addr + i] = values[i]
        ctx.set(dut.access.en, 0)
        await ctx.tick()
        checked.append((dut.contents(ctx.get).tolist(), model.tolist()))

    dut = Scratchpad(cfg, init=init, access_ports=3)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def run(ctx):
        await bench(ctx, dut)

    sim.add_testbench(run)
    sim.run()
    assert len(checked) > 100
    for got, expected in checked:
        assert got == expected


@pytest.mark.parametrize("index", range(len(SPADS)))
def test_scratchpad_feeds_a_skewed_matrix_one_word_per_bank(index):
    """A matrix stored with the skewed pitch: word j of B consecutive rows, and B consecutive words
    of one row, each come back from one read with one address per bank."""
    cfg = SPADS[index]
    rng = np.random.default_rng(10 + index)
    B, W = cfg.banks, cfg.word_elements
    rows, cols = B + 1, W * (B + 1) - 1
    pitch = cfg.row_pitch(cols)
    base = W  # word 1: the matrix does not start in bank 0
    matrix = random_codes(cfg, rng, (rows, cols))
    init = cfg.pack(cfg.blank(), matrix, base, pitch)
    padded = np.zeros((rows, pitch * W), dtype=np.int64)
    padded[:, :cols] = matrix

    def word_of(row, word):  # the expected word, from the matrix itself
        return padded[row, word * W:(word + 1) * W].tolist()

    reads = []  # (wanted (row, word) per slot)
    for r0 in range(rows - B + 1):
        for j in range(ceil_div(cols, W)):
            reads.append([(r0 + i, j) for i in range(B)])  # a column of words: B rows
    for j in range(ceil_div(cols, W) - B + 1):
        reads.append([(0, j + i) for i in range(B)])  # a run of B words of one row
    results = []

    async def bench(ctx, dut):
        for slots in reads:
            banks = {}
            for row, word in slots:
                x = base // W + row * pitch + word
                banks[x % B] = (x // B, (row, word))
            assert len(banks) == B, "a skewed read must touch every bank once"
            for b, (address, _) in banks.items():
                ctx.set(dut.feed.addr[b], address)
            ctx.set(dut.feed.en, 1)
            await ctx.tick()
            ctx.set(dut.feed.en, 0)
            results.append([([int(ctx.get(dut.feed.data[b][lane])) for lane in range(W)], banks[b][1])
                            for b in range(B)])

    simulate_spad(cfg, init, bench)
    for result in results:
        for got, (row, word) in result:
            assert got == word_of(row, word)


def test_scratchpad_store_port_writes_lanes_per_bank():
    cfg = SPADS[0]
    image = random_codes(cfg, np.random.default_rng(5), cfg.elements)
    expected = image.copy()
    writes = [(0, 3, 0b01, [7, 9]), (2, 5, 0b11, [-1, -128]), (1, 0, 0b10, [4, 5])]  # (bank, address, lanes, data)
    for bank, address, lanes, values in writes:
        word = address * cfg.banks + bank
        for lane in range(cfg.word_elements):
            if lanes >> lane & 1:
                expected[word * cfg.word_elements + lane] = values[lane]
    seen = {}

    async def bench(ctx, dut):
        for bank, address, lanes, values in writes:
            ctx.set(dut.store.addr[bank], address)
            ctx.set(dut.store.en[bank], lanes)
            ctx.set(dut.store.data[bank], values)
        await ctx.tick()
        for bank, *_ in writes:
            ctx.set(dut.store.en[bank], 0)
        await ctx.tick()
        seen["out"] = dut.contents(ctx.get)

    simulate_spad(cfg, image, bench)
    assert seen["out"].tolist() == expected.tolist()
