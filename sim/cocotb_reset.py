"""The reset every cocotb testbench of the tile applies, written once: ``rst`` high for
:data:`RESET_CYCLES` rising edges of ``clk``, then low for as many before the first stimulus."""

from __future__ import annotations

from cocotb.triggers import RisingEdge

__all__ = ["RESET_CYCLES", "reset"]

RESET_CYCLES = 3


async def reset(dut, cycles: int = RESET_CYCLES) -> None:
    """Hold ``dut.rst`` high for ``cycles`` rising edges of ``dut.clk`` (already clocked), then
    low for ``cycles`` more."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
