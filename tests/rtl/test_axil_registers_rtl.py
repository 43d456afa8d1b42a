"""The AXI4-Lite register file in the Amaranth simulator: the handshakes AxiLiteMaster (the cocotb
test of the DMA bench) never exercises: a response held by a low ``bready`` or ``rready``
blocks the next transfer, and a write needs its address and data together."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.sim import Simulator

from peforge.hw.tile.axi import AxiLiteRegisters, Register


def test_backpressure_and_pairing():
    regs = AxiLiteRegisters([Register(name="a", reset=5), Register(name="b"), Register(name="st", kind="ro"),
                             Register(name="go", kind="pulse")])
    top = Module()
    top.submodules.regs = regs
    sim = Simulator(top)
    sim.add_clock(1e-8)
    bus = regs.s_axil
    log = {}

    async def bench(ctx):
        assert ctx.get(regs.regs.a) == 5
        ctx.set(regs.regs.st, 0xCAFE)
        # Address without data: not taken.
        ctx.set(bus.awaddr, 4)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wstrb, 0xF)
        assert not ctx.get(bus.awready)
        await ctx.tick()
        # Data joins: taken this cycle; the response waits for bready.
        ctx.set(bus.wdata, 0x11)
        ctx.set(bus.wvalid, 1)
        assert ctx.get(bus.awready) and ctx.get(bus.wready)
        await ctx.tick()
        assert ctx.get(regs.regs.b) == 0x11 and ctx.get(bus.bvalid)
        # A second write (to the pulse register) stalls while the first response is not taken.
        ctx.set(bus.awaddr, 12)
        for _ in range(3):
            assert not ctx.get(bus.awready) and ctx.get(bus.bvalid)
            assert not ctx.get(regs.regs.go)
            await ctx.tick()
        ctx.set(bus.bready, 1)
        await ctx.tick()  # the response taken
        assert ctx.get(bus.awready)
        await ctx.tick()  # the second write taken
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        log["pulse"] = [ctx.get(regs.regs.go)]
        await ctx.tick()
        log["pulse"].append(ctx.get(regs.regs.go))
        # A read held by a low rready: data stays, the next address waits.
        ctx.set(bus.araddr, 8)
        ctx.set(bus.arvalid, 1)
        await ctx.tick()
        ctx.set(bus.araddr, 0)
        for _ in range(2):
            assert ctx.get(bus.rvalid) and ctx.get(bus.rdata) == 0xCAFE and not ctx.get(bus.arready)
            await ctx.tick()
        ctx.set(bus.rready, 1)
        await ctx.tick()
        await ctx.tick()
        log["second_read"] = ctx.get(bus.rdata)

    sim.add_testbench(bench)
    sim.run()
    assert log["pulse"] == [1, 0]  # one cycle high
    assert log["second_read"] == 5
