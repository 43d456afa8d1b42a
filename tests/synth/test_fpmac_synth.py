"""Synthesis sanity of the float PE (Yosys through the characterization records, a temporary
cache): gates and energy per MAC order as the formats' widths say they must, against an INT8
MAC; approximate normalization is smaller than the exact one."""

from __future__ import annotations

import pytest

from peforge.hw.pe.fpmac import FpMacConfig
from peforge.hw.pe.mac import MacConfig
from peforge.sim.characterize import characterize

CONFIGS = {
    "int8 mac": MacConfig(a_bits=8, w_bits=8),
    "e4m3": FpMacConfig(fmt="e4m3"),
    "bf16": FpMacConfig(fmt="bf16"),
    "fp32": FpMacConfig(fmt="fp32"),
    "bf16 flushed": FpMacConfig(fmt="bf16", subnormals=False),
    "bf16 approx": FpMacConfig(fmt="bf16", subnormals=False, approx_norm=True),
}


@pytest.fixture(scope="module")
def records(characterization_cache):
    return {name: characterize(cfg, "45nm", cache_dir=characterization_cache) for name, cfg in CONFIGS.items()}


def test_gates_order_with_format_width(records):
    gates = {name: r.gates for name, r in records.items()}
    assert gates["int8 mac"] < gates["bf16"] < gates["fp32"], gates
    assert gates["e4m3"] < gates["bf16"], gates


def test_energy_per_mac_orders_with_format_width(records):
    pj = {name: r.pj_per_mac for name, r in records.items()}
    assert pj["int8 mac"] < pj["e4m3"] < pj["bf16"] < pj["fp32"], pj


def test_approximate_normalization_is_smaller(records):
    exact, approx = records["bf16 flushed"], records["bf16 approx"]
    assert approx.gates < exact.gates and approx.nand2_eq < exact.nand2_eq
    assert approx.depth <= exact.depth
    assert records["bf16 flushed"].gates < records["bf16"].gates  # no subnormal datapath


def test_records_are_measured(records):
    for name, r in records.items():
        assert r.cycles_checked > 0 and r.interval_cycles == 1.0, name
        assert r.latency_cycles == 16, name  # 16-beat dot products: cycles(16) = 15 + 1
