"""The cost model's area of the tile's vector unit, DMA and sequencer (:mod:`peforge.dse.cost.tile_parts`)
from the stored Yosys fits (:mod:`peforge.sim.tile_parts`): the data are a least-squares fit of
their own points (not tuned), the closed forms give the measured points back, and the cost model
adds the parts at each design's sizes."""

from __future__ import annotations

import json

import pytest

from peforge.dse.cost.model import CostModel
from peforge.dse.cost.tile_parts import PARTS, tile_parts_mm2, tile_parts_um2
from peforge.dse.design.point import design_from_dict
from peforge.dse.tile.bench import uncharacterized_costs
from peforge.hw.tile.config import AXI4_MAX_BUS_BYTES, dram_bus_bytes
from peforge.sim import tile_parts
from peforge.sim.scaling import fit_linear
from peforge.sim.tech import resolve

DATA = tile_parts.load()
NAND2_UM2 = resolve("7nm").um2_per_nand2.value


def design(lanes: int = 4, units: int = 1):
    return design_from_dict({**tile_parts.REFERENCE, "name": f"parts-{lanes}-{units}",
                             "compute": {**tile_parts.REFERENCE["compute"], "vector_lanes": lanes},
                             "memory": {"technology": "LPDDR5", "units": units}})


@pytest.mark.parametrize("part, sizes", [("vector", tile_parts.LANES), ("dma", tile_parts.BUS_BYTES)])
def test_stored_fit_is_the_least_squares_line_of_its_points(part, sizes):
    stored = DATA[part]
    assert [p[0] for p in stored["points"]] == list(sizes)
    refit = fit_linear([tuple(p) for p in stored["points"]])
    assert (stored["fixed"], stored["per_unit"]) == pytest.approx((refit.fixed, refit.per_unit), rel=1e-9)
    assert stored["per_unit"] > 0 and stored["r2"] > 0.98


@pytest.mark.parametrize("lanes, bus", [(1, 4), (2, 8), (4, 16)])
def test_closed_forms_give_the_measured_points_back(lanes, bus):
    got = tile_parts_um2("7nm", lanes=lanes, bus_bytes=bus)
    vector = dict(map(tuple, DATA["vector"]["points"]))[lanes] * NAND2_UM2
    dma = dict(map(tuple, DATA["dma"]["points"]))[bus] * NAND2_UM2
    assert got["vector unit"] == pytest.approx(vector, rel=1.01 * DATA["vector"]["max_rel_error"] + 1e-9)
    assert got["DMA"] == pytest.approx(dma, rel=1.01 * DATA["dma"]["max_rel_error"] + 1e-9)
    assert got["sequencer"] == pytest.approx(DATA["sequencer"]["nand2_eq"] * NAND2_UM2)


def test_instruction_memory_is_an_sram_macro_of_its_bits():
    small = tile_parts_um2("7nm", lanes=4, bus_bytes=4, imem_depth=256, imem_width=300)["instruction memory"]
    large = tile_parts_um2("7nm", lanes=4, bus_bytes=4, imem_depth=1024, imem_width=300)["instruction memory"]
    assert large > small > 0
    assert large == pytest.approx(resolve("7nm").sram_area_um2(1024 * 300 / 8))


def test_cost_model_area_adds_the_tile_parts_at_each_design_size():
    designs = [design(4), design(8), design(4, units=4)]
    model = CostModel(designs, [uncharacterized_costs(d) for d in designs])
    parts = model.area_parts_mm2()
    assert set(PARTS) <= set(parts)
    assert model.area_mm2() == pytest.approx(sum(parts.values()))
    vector = parts["vector unit"]
    assert vector[1] - vector[0] == pytest.approx(4 * DATA["vector"]["per_unit"] * NAND2_UM2 / 1e6)
    dma = parts["DMA"]
    bus = [min(dram_bus_bytes(d), AXI4_MAX_BUS_BYTES) for d in designs]
    assert bus[2] > bus[0]
    assert dma[2] - dma[0] == pytest.approx((bus[2] - bus[0]) * DATA["dma"]["per_unit"] * NAND2_UM2 / 1e6)
    assert tile_parts_mm2(designs)["sequencer"][0] == pytest.approx(DATA["sequencer"]["nand2_eq"] * NAND2_UM2 / 1e6)


@pytest.mark.slow
def test_stored_fits_are_what_yosys_measures(tmp_path):
    """Re-measured in a fresh cache: the stored data are the synthesis' figures (minutes of Yosys)."""
    fresh = tile_parts.measure(cache_dir=tmp_path)
    for part in ("vector", "dma"):
        assert json.loads(json.dumps(fresh[part]["points"])) == DATA[part]["points"]
    assert fresh["sequencer"]["nand2_eq"] == DATA["sequencer"]["nand2_eq"]
