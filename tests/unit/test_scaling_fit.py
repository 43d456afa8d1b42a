"""The generic linear fit, and which arrays and channels the cell and bank fits characterize."""

from __future__ import annotations

import pytest

from peforge.hw.blocks import block_named
from peforge.sim.cells import array_configs, pim_configs
from peforge.sim.scaling import FAMILIES, fit_linear


def test_exact_line():
    fit = fit_linear([(4, 140.0), (16, 500.0), (64, 1940.0)])
    assert fit.per_unit == pytest.approx(30.0) and fit.fixed == pytest.approx(20.0)
    assert fit.r2 == pytest.approx(1.0) and fit.max_rel_error < 1e-9
    assert fit.predict(128 * 128) == pytest.approx(20 + 30 * 16384)


def test_noisy_points_report_error():
    fit = fit_linear([(1, 10.0), (2, 25.0), (4, 38.0)])
    assert 0.8 < fit.r2 < 1.0 and fit.max_rel_error > 0.01


def test_needs_two_sizes():
    with pytest.raises(ValueError, match="at least two distinct sizes"):
        fit_linear([(4, 1.0), (4, 2.0)])


def test_families_name_blocks_that_exist():
    assert {family.block for family in FAMILIES.values()} <= {"systolic", "pim-channel", "bitserial", "mixed", "mac"}
    for family in FAMILIES.values():
        block_named(family.block)


def test_array_sizes_are_square_and_share_the_pe():
    pe = block_named("mac").config(a_bits=8, w_bits=8)
    configs, notes = array_configs(pe, "os", (1, 2, 3))
    assert [(c.rows, c.cols) for c in configs] == [(1, 1), (2, 2), (3, 3)] and notes == []
    assert all(c.pe_config == pe and c.dataflow == "os" and c.max_m == configs[0].max_m for c in configs)


def test_array_feature_the_array_rejects_is_set_back_and_named():
    pe = block_named("bitserial").config(lanes=4, rescale=True)
    configs, notes = array_configs(pe, "os", (1, 2))
    assert all(c.pe_config.rescale is False and c.pe_config.lanes == 4 for c in configs)
    assert notes == ["pe.rescale=False (the array does not support True)"]
    configs, notes = array_configs(block_named("mac").config(output_register=True), "ws", (2,))
    assert configs[0].pe_config.output_register is False and "output_register" in notes[0]
    configs, _ = array_configs(block_named("mac").config(output_register=True), "os", (2,))
    assert configs[0].pe_config.output_register is True  # allowed under os: kept


def test_array_shape_the_array_rejects_is_replaced_by_fewer_rows():
    pe = block_named("mixed").config(lanes=8, w_bits=4, group=128)  # ws: group % (rows x 8) == 0
    configs, notes = array_configs(pe, "ws", (1, 2, 3))
    assert [(c.rows, c.cols) for c in configs] == [(1, 1), (2, 2), (2, 5)]
    assert len(notes) == 1 and notes[0].startswith("2x5 for 3x3") and configs[2].pe_config == pe


def test_pim_configs_sweep_banks_with_small_rows():
    configs = pim_configs({"lanes": 4, "word_bits": 8, "banks": 16}, (1, 2, 4))
    assert [c.banks for c in configs] == [1, 2, 4]
    assert all(c.lanes == 4 and c.word_bits == 8 and c.rows == 16 and c.cols == 8 for c in configs)
    with pytest.raises(ValueError, match="unknown pim-channel parameters"):
        pim_configs({"lane": 4})
