"""Fidelity of the fitted per-cell and per-bank costs: a characterized size outside (and larger
than) the fitted ones must be predicted within 10 %: the whole array's (channel's) area and energy.

The held-out energy is recomputed here from the record's raw figures (toggles, activity factor,
cycles, gates, flip-flops, memory bits), with the energy model of ``peforge.sim.energy`` written
out once more: steady state, pJ per beat (array) or per MAC command (PIM).
"""

from __future__ import annotations

import time

import pytest

from peforge.hw.blocks import block_named
from peforge.hw.pim import PimChannelConfig
from peforge.hw.systolic import SystolicConfig
from peforge.sim import cells
from peforge.sim.characterize import ACTIVITY_OPS, characterize
from peforge.sim.synth import NAND2_WEIGHTS
from peforge.sim.tech import preset_named

TECH = preset_named("45nm")
TOLERANCE = 0.10


@pytest.fixture(scope="module")
def cache(characterization_cache):
    """The session's cache: the records of the fitted sizes are shared with the cost model's fits.
    Module-scoped so the module's tests run on one worker, one after the other."""
    return characterization_cache


def reference_pj(record, *, units_of_work: float, cycles_per_unit: int) -> float:
    """Steady-state pJ per unit of work of a record: toggles per unit over signal bits times
    logic gates, plus logic flip-flops clocked ``cycles_per_unit`` cycles (RTL memories left out)."""
    toggles = record.toggles_per_op * ACTIVITY_OPS
    bits = toggles / (record.alpha * record.extra["activity_cycles"])
    gates = record.nand2_eq - record.memory_bits * NAND2_WEIGHTS["$_DFF_P_"]
    flops = record.flops - record.memory_bits
    return (toggles / units_of_work / bits * gates * TECH.pj_per_gate_toggle.value
            + flops * TECH.pj_per_flop_clock.value * cycles_per_unit)


def off(predicted: float, measured: float) -> float:
    return abs(predicted / measured - 1)


ARRAYS = [
    # (PE block, PE parameters, dataflow, held-out n): ws streams M rows through one fold, so any n;
    # os splits M into row blocks of n, so n divides max_m (no padding rows). One in CI, the held-out
    # syntheses of the others (tens of seconds each) in the slow layer.
    pytest.param("mac", {"a_bits": 8, "w_bits": 8}, "ws", 5, id="mac-ws"),
    pytest.param("mac", {"a_bits": 8, "w_bits": 8}, "os", 6, id="mac-os", marks=pytest.mark.slow),
    pytest.param("bitserial", {"lanes": 2, "k": 2}, "os", 6, id="bitserial-os", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("pe_name, pe_params, dataflow, n", ARRAYS)
def test_array_fit_predicts_a_larger_array(cache, pe_name, pe_params, dataflow, n):
    pe = block_named(pe_name).config(**pe_params)
    costs = cells.array_cell_costs(pe, dataflow, TECH, cache_dir=cache)
    assert n > max(cells.ARRAY_SIZES + cells.ACTIVITY_SIZES)
    assert dataflow == "ws" or cells.ARRAY_MAX_M[dataflow] % n == 0
    config = SystolicConfig(rows=n, cols=n, pe=pe_name, dataflow=dataflow, pe_config=pe,
                            max_m=cells.ARRAY_MAX_M[dataflow])
    record = characterize(config, TECH, cache_dir=cache)
    area = costs.array_um2(n, n)
    energy = reference_pj(record, units_of_work=record.macs_per_op * ACTIVITY_OPS / (n * n * config.lanes),
                          cycles_per_unit=config.beat_cycles(None))
    predicted = costs.pj_per_beat(n * n, TECH)
    print(f"{pe_name} {dataflow} {n}x{n}: area {area:.0f} / {record.area_um2:.0f} µm² ({area / record.area_um2 - 1:+.1%}), "
          f"cell {costs.cell_um2:.0f} µm², pJ per beat {predicted:.2f} / {energy:.2f} "
          f"({predicted / energy - 1:+.1%}); {costs.sources}")
    assert off(area, record.area_um2) < TOLERANCE
    assert off(predicted, energy) < TOLERANCE
    assert costs.cell_um2 > 0 and costs.cell_pj_per_mac > 0


@pytest.mark.slow  # a held-out 6-bank synthesis: over a minute
def test_pim_fit_predicts_more_banks(cache):
    params = {"lanes": 2, "word_bits": 8}
    costs = cells.pim_bank_costs(params, TECH, cache_dir=cache)
    (config,) = cells.pim_configs(params, (6,))
    assert config.banks > max(cells.PIM_BANKS)
    record = characterize(config, TECH, cache_dir=cache)
    commands = record.macs_per_op * ACTIVITY_OPS / (config.banks * config.lanes)
    energy = reference_pj(record, units_of_work=commands, cycles_per_unit=config.t_ccd)
    area, predicted = costs.area.predict(config.banks), costs.energy.predict(config.banks)
    print(f"pim 6 banks: area {area:.0f} / {record.area_um2:.0f} µm² ({area / record.area_um2 - 1:+.1%}), "
          f"pJ per MAC command {predicted:.2f} / {energy:.2f} ({predicted / energy - 1:+.1%}); {costs.sources}")
    assert off(area, record.area_um2) < TOLERANCE
    assert off(predicted, energy) < TOLERANCE
    assert costs.lane_um2 == pytest.approx(costs.bank_um2 / 2) and costs.lane_pj_per_mac > 0


def test_second_call_is_a_cache_hit(cache):
    pe = block_named("mac").config(a_bits=8, w_bits=8)
    first = cells.array_cell_costs(pe, "ws", TECH, cache_dir=cache)
    start = time.perf_counter()
    again = cells.array_cell_costs(pe, "ws", TECH, cache_dir=cache)
    assert time.perf_counter() - start < 0.5
    assert again == first
    pim = cells.pim_bank_costs(PimChannelConfig(lanes=2, word_bits=8, rows=16, cols=4), TECH, cache_dir=cache)
    assert pim == cells.pim_bank_costs({"lanes": 2, "word_bits": 8}, TECH, cache_dir=cache)
