"""Each tile unit's exported Verilog idles with every output known under Icarus (4-state, in the
SystemVerilog mode cocotb's runner uses): ``cmd__ready`` 1, ``busy`` 0 and no ``x`` / ``z`` bit
on any output, from reset to its first command (see :mod:`peforge.sim.idle`).

A decoded ``ready`` stayed ``x`` there, and the whole tile hung at its first vector command.
"""

from __future__ import annotations

import pytest
from tools import need

from peforge.dse.design.point import design_from_dict
from peforge.hw.tile.config import TileConfig
from peforge.hw.tile.dma import Dma
from peforge.hw.tile.gemm import GemmSlice
from peforge.hw.tile.sequencer import Sequencer
from peforge.hw.tile.vector import VectorUnit
from peforge.sim.idle import idle_outputs
from peforge.sim.tools import missing_simulator

TILE = TileConfig.from_design(design_from_dict({
    "name": "idle", "tech": "7nm", "quant": "w8a8kv8",
    "compute": {"pe": "mac", "rows": 4, "cols": 4, "dataflow": "ws", "arrays": 1, "clock_mhz": 500.0,
                "vector_lanes": 4, "pe_params": {"a_bits": 8, "w_bits": 8}},
    "sram": {"weight_kib": 1, "activation_kib": 1, "output_kib": 1},
    "memory": {"technology": "LPDDR5", "units": 1}}), scaled=True)
UNITS = {"vector": lambda: VectorUnit(TILE.vector), "dma": lambda: Dma(TILE.dma),
         "sequencer": lambda: Sequencer(TILE.sequencer), "gemm": lambda: GemmSlice(TILE.gemm)}


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_an_idle_unit_has_no_unknown_output_under_icarus(tmp_path, unit):
    need(missing_simulator("icarus"))
    values = idle_outputs(UNITS[unit](), "icarus", tmp_path)
    # data, not control: a scratchpad's read data before its first read (the memory has no reset),
    # and a command's payload while its valid is low (the sequencer's instruction word before the
    # first fetch: its memory is read only when fetching)
    unknown = {name: v for name, v in values.items()
               if set(v.lower()) & {"x", "z"} and not name.endswith(("__rdata", "__cmd__payload"))}
    assert not unknown, f"{unit}: outputs unknown after reset: {sorted(unknown)}"
    if "cmd__ready" in values:
        assert (values["cmd__ready"], values["busy"]) == ("1", "0")
