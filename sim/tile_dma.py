"""Testing the tile's DMA: a bench top to export (the DMA, a scratchpad, AXI4-Lite registers), the
checks every DMA test shares (bursts legal, data exact) and the cocotb run against cocotbext-axi's
AxiRam (the test module is :mod:`peforge.sim.cocotb_dma`).
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..files import write_atomic
from ..hw.tile.axi import (BOUNDARY_BYTES, BURST_INCR, Axi4LiteSignature, Axi4Signature, AxiLiteRegisters, Register,
                           verilog_ports)
from ..hw.tile.dma import Dma, DmaCommand, DmaConfig, spad_read_signature, spad_write_signature

BENCH_MODULE = "dma_bench"
COCOTB_MODULE = "peforge.sim.cocotb_dma"
# The bench's AXI4-Lite registers, word i at byte address 4 i.
REGISTERS = [Register(name="status", kind="ro"),  # bit 0: the DMA is busy
             Register(name="busy_cycles", kind="ro"),  # cycles the DMA has been busy since reset
             Register(name="commands", kind="ro"),  # commands accepted since reset
             Register(name="length", reset=0),  # a program length for the sequencer (scratch here)
             Register(name="start", kind="pulse"),
             Register(name="starts", kind="ro")]  # start pulses seen


class RunScratchpad(wiring.Component):
    """A scratchpad of the DMA's runs: ``run_elems`` banks of ``depth`` elements (one
    ``amaranth.lib.memory.Memory`` each), element ``e`` in bank ``e % run_elems`` at row
    ``e // run_elems``, so any run of ``run_elems`` consecutive elements is one row of distinct banks
    (tile spec section 2 with one element per word). ``dbg_addr``/``dbg_data``: a bank row
    (``run_elems`` elements from ``dbg_addr * run_elems``), read the next cycle, for testbenches.
    """

    def __init__(self, config: DmaConfig, depth: int, init: list[int]):
        if len(init) != depth * config.run_elems:
            raise ValueError(f"init of {len(init)!r} elements: need {depth * config.run_elems}")
        self.config, self.depth, self.init = config, depth, list(init)
        super().__init__({"w": In(spad_write_signature(config)), "r": In(spad_read_signature(config)),
                          "dbg_addr": In(range(depth)), "dbg_data": Out(8 * config.bus_bytes)})

    def elaborate(self, platform) -> Module:
        m = Module()
        c, n = self.config, self.config.run_elems
        lg = n.bit_length() - 1
        row_bits = max(1, (self.depth - 1).bit_length())
        r_low = Signal(max(1, lg))  # the read run's first bank, for the next cycle's rotation
        banks_out, dbg_out = [], []
        for b in range(n):
            mem = memory.Memory(shape=c.elem_bits, depth=self.depth, init=self.init[b::n])
            m.submodules[f"bank{b}"] = mem
            w, r, dbg = mem.write_port(), mem.read_port(), mem.read_port()
            lane = Signal(max(1, lg), name=f"w_lane{b}")  # the run's lane landing in bank b
            m.d.comb += lane.eq(b - self.w.addr[:lg]) if lg else lane.eq(0)
            m.d.comb += [w.addr.eq((self.w.addr >> lg) + (b < self.w.addr[:lg]) if lg else self.w.addr),
                         w.data.eq(self.w.data.word_select(lane, c.elem_bits)),
                         w.en.eq(self.w.en & self.w.mask.bit_select(lane, 1))]
            m.d.comb += r.addr.eq(((self.r.addr >> lg) + (b < self.r.addr[:lg]))[:row_bits] if lg else self.r.addr)
            m.d.comb += r.en.eq(self.r.en)
            m.d.comb += dbg.addr.eq(self.dbg_addr)
            banks_out.append(r.data)
            dbg_out.append(dbg.data)
        if lg:
            with m.If(self.r.en):
                m.d.sync += r_low.eq(self.r.addr[:lg])
        twice = Cat(*banks_out, *banks_out)
        m.d.comb += [self.r.data.eq((twice >> (r_low * c.elem_bits))[:8 * c.bus_bytes]),
                     self.dbg_data.eq(Cat(*dbg_out))]
        return m


class DmaBench(wiring.Component):
    """What the DMA's cocotb test exports: :class:`Dma` on the AXI4 port ``m_axi`` and a
    :class:`RunScratchpad`, its command port ``cmd``/``busy`` on top, and an
    :class:`AxiLiteRegisters` slave ``s_axil`` with :data:`REGISTERS`."""

    def __init__(self, config: DmaConfig, depth: int, init: list[int]):
        self.config, self.depth, self.init = config, depth, init
        super().__init__({"cmd": In(stream.Signature(config.command_layout)), "busy": Out(1),
                          "m_axi": Out(Axi4Signature(addr_bits=config.addr_bits, data_bytes=config.bus_bytes)),
                          "s_axil": In(Axi4LiteSignature(addr_bits=8)),
                          "dbg_addr": In(range(depth)), "dbg_data": Out(8 * config.bus_bytes)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dma = dma = Dma(self.config)
        m.submodules.spad = spad = RunScratchpad(self.config, self.depth, self.init)
        m.submodules.regs = regs = AxiLiteRegisters(REGISTERS)
        wiring.connect(m, wiring.flipped(self.cmd), dma.cmd)
        wiring.connect(m, wiring.flipped(self.m_axi), dma.m_axi)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)
        wiring.connect(m, dma.spad_w, spad.w)
        wiring.connect(m, dma.spad_r, spad.r)
        m.d.comb += [self.busy.eq(dma.busy), spad.dbg_addr.eq(self.dbg_addr), self.dbg_data.eq(spad.dbg_data),
                     regs.regs.status.eq(dma.busy)]
        m.d.sync += regs.regs.busy_cycles.eq(regs.regs.busy_cycles + dma.busy)
        m.d.sync += regs.regs.commands.eq(regs.regs.commands + (dma.cmd.valid & dma.cmd.ready))
        m.d.sync += regs.regs.starts.eq(regs.regs.starts + regs.regs.start)
        return m


def export_bench(config: DmaConfig, depth: int, init: list[int], out_dir: Path) -> Path:
    """Write ``out_dir/dma_bench.v`` (AXI ports named ``m_axi_*``, ``s_axil_*``) and return its path."""
    top = DmaBench(config, depth, init)
    text = verilog.convert(top, name=BENCH_MODULE, ports=verilog_ports(top), emit_src=False)
    return write_atomic(Path(out_dir) / f"{BENCH_MODULE}.v", text)


def burst_problems(config: DmaConfig, cmd: DmaCommand, bursts: list[tuple[int, int, int, int]]) -> list[str]:
    """What is wrong with ``bursts`` (``(address, len, size, burst)`` of each AR or AW handshake, in
    order) as the bursts of ``cmd``: not INCR, not full-width, not bus-aligned, longer than
    ``max_burst``, across 4 KiB, or not covering each bus word of each row exactly once, in order."""
    bus = config.bus_bytes
    problems, covered = [], []
    for addr, length, size, burst in bursts:
        beats = length + 1
        where = f"burst {addr:#x}+{beats}"
        if burst != BURST_INCR or 2**size != bus:
            problems.append(f"{where}: burst type {burst} size {size}")
        if addr % bus or beats > config.max_burst:
            problems.append(f"{where}: unaligned or longer than {config.max_burst} beats")
        if addr // BOUNDARY_BYTES != (addr + beats * bus - 1) // BOUNDARY_BYTES:
            problems.append(f"{where}: crosses a 4 KiB boundary")
        covered += range(addr, addr + beats * bus, bus)
    want = [word for r in range(cmd.rows)
            for word in range(cmd.row_dram(r) - cmd.row_dram(r) % bus, cmd.row_dram(r) + cmd.row_bytes, bus)]
    if covered != want:
        problems.append(f"bursts cover words {covered[:8]}..., the rows need {want[:8]}...")
    return problems


def run_dma_cocotb(config: DmaConfig, simulator: str, build_dir: Path, spec: dict[str, Any], *,
                   depth: int, init: list[int], quick_build: bool = True) -> dict[str, Any]:
    """Export a :class:`DmaBench` and run :mod:`peforge.sim.cocotb_dma` on it under ``simulator``;
    ``spec`` is what that module's docstring lists (phases of commands over memory models, the
    DRAM seed). Returns its JSON report."""
    from .runners import run_cocotb_module

    build_dir = Path(build_dir).resolve()
    source = export_bench(config, depth, init, build_dir / "rtl")
    spec_file = build_dir / f"dma-{simulator}.json"
    report = build_dir / f"dma-report-{simulator}.json"
    report.unlink(missing_ok=True)
    spec_file.write_text(json.dumps({**spec, "config": dataclasses.asdict(config), "depth": depth, "init": init,
                                     "report": str(report)}))
    run_cocotb_module(source, BENCH_MODULE, COCOTB_MODULE, simulator, build_dir,
                      plusargs=[f"+peforge_dma={spec_file}"], quick_build=quick_build)
    if not report.exists():  # an exception (an AxiRam assertion, a hang) ended the test early
        log = build_dir / f"test-{simulator}.log"
        errors = [line.strip() for line in log.read_text(errors="replace").splitlines() if "Error" in line] \
            if log.exists() else []
        raise RuntimeError(f"the DMA's cocotb run on {simulator} wrote no report "
                           f"({errors[-1] if errors else 'no error logged'}); see {log}")
    return json.loads(report.read_text())


def random_commands(rng: random.Random, n: int, *, spad_elems: int, dram_bytes: int,
                    elem_bytes: int = 1) -> list[DmaCommand]:
    """``n`` random 2-D transfers of the shapes that break DMAs: unaligned starts, row lengths
    that are not multiples of any bus, one-element rows, rows across a 4 KiB boundary, gaps
    between rows; every row inside ``dram_bytes`` and ``spad_elems`` (DRAM addresses, strides
    and row lengths in whole ``elem_bytes`` elements)."""
    out = []
    for _ in range(n):
        rows = rng.choice([1, 1, 2, 3, 5])
        row_elems = rng.choice([1, 1, 3, 4, 7, 13, 29, 40, 67])
        dram_stride = (row_elems + rng.randrange(0, 9)) * elem_bytes
        spad_stride = row_elems + rng.randrange(0, 5)
        row_bytes = row_elems * elem_bytes
        span = (rows - 1) * dram_stride + row_bytes
        if rng.random() < 0.4 and dram_bytes > BOUNDARY_BYTES:  # start just below a 4 KiB boundary
            dram_addr = BOUNDARY_BYTES * rng.randrange(1, dram_bytes // BOUNDARY_BYTES) - rng.randrange(1, 24)
        else:
            dram_addr = rng.randrange(0, dram_bytes - span)
        dram_addr = min(dram_addr, dram_bytes - span) // elem_bytes * elem_bytes
        spad_addr = rng.randrange(0, spad_elems - (rows - 1) * spad_stride - row_elems + 1)
        out.append(DmaCommand(dir=rng.choice(["load", "store"]), dram_addr=dram_addr, spad_addr=spad_addr,
                              rows=rows, row_bytes=row_bytes, dram_stride=dram_stride, spad_stride=spad_stride))
    return out
