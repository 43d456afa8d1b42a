"""The cocotb test module of :func:`peforge.sim.idle.idle_outputs`: every input of the top level at
0, the shared reset (:func:`peforge.sim.cocotb_reset.reset`), then each output's value as the
simulator holds it (``x`` / ``z`` bits kept) after ``cycles`` more rising edges.

The plusarg ``+peforge_idle`` names a JSON spec: ``inputs`` and ``outputs`` (port names),
``cycles``, and ``report`` (where the JSON ``{output: binary string}`` goes).
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from ..files import write_atomic
from .axi_ram import CLOCK_NS
from .cocotb_reset import reset


@cocotb.test()
async def idle_outputs(dut) -> None:
    spec = json.loads(Path(cocotb.plusargs["peforge_idle"]).read_text())
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    for name in spec["inputs"]:
        getattr(dut, name).value = 0
    await reset(dut)
    for _ in range(spec["cycles"]):
        await RisingEdge(dut.clk)
    await ReadOnly()
    values = {name: str(getattr(dut, name).value) for name in spec["outputs"]}
    write_atomic(Path(spec["report"]), json.dumps(values))
