"""The cocotb test module: runs a block's shared testbench on the exported Verilog.

``peforge.sim.runners.run_cocotb`` passes a JSON spec (block, parameters, seed, report path and,
optionally, ``shapes``: GEMM shapes for the testbench module's ``run_shapes`` instead of its
``run``) through the plusarg ``+peforge_bench``; the report is written back as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
from cocotb.clock import Clock

from ..files import write_atomic
from ..hw.blocks import block_named
from .bench import CocotbBench
from .runners import CLOCK_PERIOD_S
from .testbench import testbench_for, testbench_module


@cocotb.test()
async def block_testbench(dut) -> None:
    spec = json.loads(Path(cocotb.plusargs["peforge_bench"]).read_text())
    block = block_named(spec["block"])
    config = block.config(**spec["params"])
    Clock(dut.clk, round(CLOCK_PERIOD_S * 1e9), unit="ns").start()
    bench = CocotbBench(dut)
    if spec.get("shapes") is not None:
        report = await testbench_module(block.name).run_shapes(bench, config, spec["seed"], spec["shapes"])
    else:
        report = await testbench_for(block.name)(bench, config, spec["seed"])
    write_atomic(Path(spec["report"]), json.dumps(report.to_dict()))
    assert report.passed, "; ".join(report.failures[:5])
