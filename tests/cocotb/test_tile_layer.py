"""The tiny Llama layer on the whole tile's exported Verilog under cocotb: a prefill of 16 tokens, then
one decode step on the KV cache the prefill left in DRAM, from cocotbext-axi's AxiRam timed at the
design's bandwidth per cycle (:mod:`peforge.sim.axi_ram`).

Checked: every tensor the program leaves in DRAM (each step's output, the KV cache) bit for bit
against ``IntLayer.execute``; the tile's cycle counter equal to the program's exact timeline; every
instruction leaving decode in the cycle the timeline says (the testbench probes the sequencer);
the sequencer's time per operator measured beside the prediction's.

One configuration in the default run (MAC PE, weight-stationary, one array, a compute-bound
memory); the matrix (MAC, bit-serial and mixed PEs, both dataflows, one and two arrays, a
compute-bound and a memory-bound bandwidth, one run under Icarus) with ``--slow``.
"""

from __future__ import annotations

import json

import pytest
from tools import need

from peforge.dse.design.point import design_from_dict
from peforge.dse.tile.bench import layer_tile, plan_layer, run_plan, tile_mappings, uncharacterized_costs
from peforge.sim.tile_layer import export_tile
from peforge.sim.tools import missing_simulator

# One LPDDR5 channel: 6.4 GB/s x 0.70 sustained, 9 bytes per cycle at 500 MHz, more than the
# simulable tile's bus takes (a beat every cycle). "memory" leaves 0.5 GB/s: a beat every 4+ cycles.
BANDWIDTH = {"compute": {}, "memory": {"gb_per_s": 0.5, "efficiency": 1.0}}
PE_PARAMS = {"mac": {"a_bits": 8, "w_bits": 8}, "bitserial": {"lanes": 4, "k": 2, "a_bits": 8, "max_w_bits": 8},
             "mixed": {"lanes": 4, "w_bits": 4, "group": 32}}


def design(pe: str = "mac", dataflow: str = "ws", arrays: int = 1, bandwidth: str = "compute"):
    return design_from_dict({
        "name": f"tile-{pe}-{dataflow}-{arrays}-{bandwidth}", "tech": "7nm", "quant": "w8a8kv8",
        "compute": {"pe": pe, "rows": 4, "cols": 4, "dataflow": dataflow, "arrays": arrays, "clock_mhz": 500.0,
                    "vector_lanes": 4, "pe_params": PE_PARAMS[pe]},
        "sram": {"weight_kib": 8, "activation_kib": 8, "output_kib": 8},
        "memory": {"technology": "LPDDR5", "units": 1, **BANDWIDTH[bandwidth]}})


def run_layer(tmp_path, simulator: str, **choice):
    need(missing_simulator(simulator))
    d = design(**choice)
    # the mapper's choice on the design's memory; the PE left uncharacterized (no Yosys in a cocotb test)
    plan = plan_layer(d, layer_tile(d), tile_mappings(d, uncharacterized_costs(d)))
    source = export_tile(plan.tile, tmp_path / "rtl")
    report = run_plan(plan, source, simulator, tmp_path)
    (tmp_path / "report.json").write_text(json.dumps(report.to_dict(), indent=1))
    return plan, report


def check(plan, report):
    assert [p.name for p in report.phases] == ["prefill", "decode"]
    assert report.passed, report.problem()
    for phase, planned in zip(report.phases, plan.phases):
        assert {"out", "k_cache", "v_cache_t", "scores", "probs", "h"} <= set(phase.checked)
        assert phase.divergence is None, phase.divergence
        assert phase.measured == phase.predicted == planned.predicted_cycles
        for name, figures in phase.operators.items():
            assert figures["measured"] == figures["total"], name
        assert sum(f["measured"] for f in phase.operators.values()) == phase.measured
    as_json = report.to_dict()
    assert as_json["total"]["measured"] == sum(p.measured for p in report.phases)
    assert set(as_json["phases"]) == {"prefill", "decode"} and as_json["cycles_exact"]


def test_tiny_layer_on_the_tile_verilator(tmp_path):
    plan, report = run_layer(tmp_path, "verilator")
    assert plan.memory.period == 1  # compute-bound
    check(plan, report)


MATRIX = [
    pytest.param("mac", "os", 2, "memory", "verilator", id="mac-os-2-memory"),
    pytest.param("mac", "ws", 2, "compute", "verilator", id="mac-ws-2-compute"),
    # ~90 s on one core (build ~8 s): 4-state, event-driven
    pytest.param("mac", "ws", 1, "memory", "icarus", id="mac-ws-1-memory-icarus"),
    pytest.param("bitserial", "ws", 1, "memory", "verilator", id="bitserial-ws-1-memory"),
    pytest.param("bitserial", "os", 2, "compute", "verilator", id="bitserial-os-2-compute"),
    pytest.param("mixed", "ws", 2, "memory", "verilator", id="mixed-ws-2-memory"),
    pytest.param("mixed", "os", 1, "compute", "verilator", id="mixed-os-1-compute"),
]


@pytest.mark.slow
@pytest.mark.parametrize("pe, dataflow, arrays, bandwidth, simulator", MATRIX)
def test_tiny_layer_matrix(tmp_path, pe, dataflow, arrays, bandwidth, simulator):
    plan, report = run_layer(tmp_path, simulator, pe=pe, dataflow=dataflow, arrays=arrays, bandwidth=bandwidth)
    assert (plan.memory.period > 1) == (bandwidth == "memory")
    check(plan, report)
