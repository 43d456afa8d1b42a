"""The generic linear area fit."""

from __future__ import annotations

import pytest

from peforge.sim.scaling import FAMILIES, available_families, fit_linear


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


def test_families_listed_only_when_block_exists():
    assert set(available_families()) <= set(FAMILIES)
    assert "mac-wbits" in available_families()
