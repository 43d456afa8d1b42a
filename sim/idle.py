"""A component's outputs after reset, with no stimulus, under a 4-state simulator: the check that
its exported Verilog leaves no output unknown (``x``) while it idles.

Amaranth's Verilog (through Yosys ``write_verilog``) drives a combinational signal assigned under
a condition (an FSM state, a ``Switch``) from an ``always @*`` block. Yosys makes such blocks run
at time 0 by a trigger register initialized at its declaration, which is an event only under
Verilog-2005 rules; in SystemVerilog mode (Icarus's ``-g2012``, what cocotb's runner passes)
declaration initializers make no event, so a block whose inputs keep their initial values from
reset onwards never runs and its outputs stay ``x``. An idle unit's state registers do exactly
that, so an output decoded from them is unknown until the unit's first command.
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from ..files import write_atomic

__all__ = ["IDLE_MODULE", "idle_outputs"]

IDLE_MODULE = "peforge.sim.cocotb_idle"


def idle_outputs(component: wiring.Component, simulator: str, build_dir: Path, *, cycles: int = 2,
                 name: str = "idle_top") -> dict[str, str]:
    """Export ``component`` (its signature's ports, ``__``-joined names), run it under ``simulator``
    with every input 0 through the shared reset and ``cycles`` more cycles, and return each output's
    value as a binary string (MSB first; ``x`` and ``z`` as the simulator shows them)."""
    from .runners import run_cocotb_module

    build_dir = Path(build_dir).resolve()
    inputs, outputs = [], []
    for path, member, _ in component.signature.flatten(component):
        (inputs if member.flow == wiring.In else outputs).append("__".join(map(str, path)))
    source = write_atomic(build_dir / "rtl" / f"{name}.v", verilog.convert(component, name=name, emit_src=False))
    report = build_dir / f"idle-{simulator}.json"
    report.unlink(missing_ok=True)
    spec = write_atomic(build_dir / f"idle-spec-{simulator}.json",
                        json.dumps({"inputs": inputs, "outputs": outputs, "cycles": cycles, "report": str(report)}))
    run_cocotb_module(source, name, IDLE_MODULE, simulator, build_dir, plusargs=[f"+peforge_idle={spec}"])
    if not report.exists():
        raise RuntimeError(f"idle run of {name} on {simulator} wrote no report; see {build_dir / f'test-{simulator}.log'}")
    return json.loads(report.read_text())
