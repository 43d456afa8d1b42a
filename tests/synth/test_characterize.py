"""Characterization with real Yosys and the Amaranth simulator: checks that could fail."""

from __future__ import annotations

import json
import time

import pytest

from peforge.cli import main
from peforge.hw.blocks import BLOCKS
from peforge.hw.pe.mac import MacConfig
from peforge.sim import synth
from peforge.sim.characterize import characterize
from peforge.sim.scaling import fit_family


@pytest.fixture(scope="module")
def cache(characterization_cache):
    """The session's cache (a record made elsewhere is read, not measured again); the tests of cache
    hits and misses use their own ``tmp_path``. Module-scoped so the module runs on one worker."""
    return characterization_cache


def record(cache, block: str, *assignments: str, tech: str = "45nm"):
    return characterize(BLOCKS[block].configure(assignments), tech, cache_dir=cache)


def test_wider_mac_has_more_gates_and_deeper_logic(cache):
    narrow = record(cache, "mac", "a_bits=8", "w_bits=8")
    wide = record(cache, "mac", "a_bits=16", "w_bits=16")
    assert wide.nand2_eq > 2 * narrow.nand2_eq
    assert wide.gates > narrow.gates and wide.flops > narrow.flops
    assert wide.depth > narrow.depth
    assert wide.fmax_mhz < narrow.fmax_mhz and wide.area_um2 > narrow.area_um2


def test_mac_record_is_measured(cache):
    r = characterize(MacConfig(), cache_dir=cache, ice40=True)
    # the activity workload: dot products of 16 pairs, one per cycle, result 1 cycle after the last
    assert r.latency_cycles == 16
    assert r.interval_cycles == 1.0 and r.cycles_checked > 0
    assert r.multipliers == 1 and "$mul" in r.coarse_cells  # the multiplier check can fire
    # accumulator of 8 + 8 + ceil(log2 4096) = 28 bits and the done flag
    assert r.flops == 29
    assert r.macs_per_op == 16 and r.toggles_per_mac > 0
    assert 0.05 < r.pj_per_mac < 5  # 45 nm 8-bit MAC: Horowitz puts multiply + add near 0.3 pJ
    assert r.ice40 is not None and r.ice40["luts"] > 0 and r.memory_bits == 0
    assert {c["source"] != "" for c in r.constants.values()} == {True}


def test_depth_is_the_longest_gate_path():
    """A chain of XORs has exactly its length in levels; the flop breaks the path."""
    verilog = """
module chain(input clk, input [7:0] a, output reg q, output y);
  wire [7:0] t;
  assign t[0] = a[0];
  genvar i;
  generate for (i = 1; i < 8; i = i + 1) begin : g
    assign t[i] = t[i-1] ^ a[i];
  end endgenerate
  always @(posedge clk) q <= t[7];
  assign y = q & a[0];
endmodule
"""
    result = synth.synthesize(verilog, "chain")
    assert result.flops == 1
    assert 3 <= result.depth <= 7  # ABC may balance the chain into a tree of depth 3
    assert result.multipliers == 0


def test_tech_changes_derived_numbers_not_measurements(cache):
    a = record(cache, "mac", tech="45nm")
    b = record(cache, "mac", tech="7nm")
    assert b.cached and (a.gates, a.depth, a.toggles_per_op) == (b.gates, b.depth, b.toggles_per_op)
    assert b.area_um2 < a.area_um2 and b.pj_per_mac < a.pj_per_mac and b.fmax_mhz > a.fmax_mhz


def test_cache_hit_is_fast_and_equal(tmp_path):
    cfg = MacConfig(w_bits=6)
    first = characterize(cfg, cache_dir=tmp_path)
    start = time.perf_counter()
    second = characterize(cfg, cache_dir=tmp_path)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05, f"cached lookup took {elapsed * 1000:.1f} ms"
    assert not first.cached and second.cached
    assert {**first.to_dict(), "cached": True} == second.to_dict()


def test_corrupt_entry_is_recomputed(tmp_path):
    cfg = MacConfig(w_bits=6)
    first = characterize(cfg, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.json")
    entry.write_text(entry.read_text()[:200])  # as if a writer died after 200 bytes
    again = characterize(cfg, cache_dir=tmp_path)
    assert not again.cached and again.gates == first.gates
    assert characterize(cfg, cache_dir=tmp_path).cached  # and the entry is whole again


def test_cli_json_and_table(tmp_path, capsys):
    assert main(["characterize", "mac", "w_bits=6", "--json", "--cache-dir", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["block"] == "mac" and out["params"]["w_bits"] == 6 and out["gates"] > 0
    assert main(["characterize", "mac", "w_bits=6", "--tech", "7nm", "--cache-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "logic depth" in table and "pJ/MAC" in table and "7nm" in table
    assert main(["characterize", "mac", "--tech", "2nm"]) == 2
    assert "unknown technology '2nm'" in capsys.readouterr().err


def test_mixed_pe_has_no_multiplier_and_fewer_gates_than_macs(cache):
    mixed = record(cache, "mixed", "lanes=16", "w_bits=4")
    mac = record(cache, "mac", "a_bits=8", "w_bits=8")
    assert mixed.multipliers == 0, mixed.coarse_cells
    assert not any(t in mixed.coarse_cells for t in synth.MULTIPLIER_CELLS)
    assert mixed.nand2_eq < 16 * mac.nand2_eq  # 16 lanes against 16 MacPEs: equal MACs per cycle


def test_bitserial_area_is_linear_in_lanes(cache):
    fit = fit_family("bitserial-lanes", cache_dir=cache)
    print(f"bitserial k=1 lanes 4/8/16: {fit.per_unit:.1f} NAND2-eq./lane + {fit.fixed:.1f}, "
          f"R² {fit.r2:.4f}, max error {fit.max_rel_error:.1%}")
    assert fit.r2 > 0.98 and fit.per_unit > 0


def test_bitserial_energy_per_mac_falls_with_weight_bits(cache):
    four = record(cache, "bitserial", "lanes=16", "k=1", "max_w_bits=4")
    eight = record(cache, "bitserial", "lanes=16", "k=1", "max_w_bits=8")
    assert four.multipliers == 0 and eight.multipliers == 0
    assert four.pj_per_mac < eight.pj_per_mac
    assert four.interval_cycles < eight.interval_cycles  # bit-serial: cycles ∝ weight bits


@pytest.mark.parametrize("kind, base", [("fpmixed", "mixed"), ("fpbitserial", "bitserial")])
def test_fp_activation_pes_have_no_multiplier_and_pay_for_alignment(cache, kind, base):
    """Block alignment and the FP32 output stage are shifts, compares and adds: no multiplier
    cell for the products or anywhere else; they cost gates and depth over the integer PE."""
    fp = record(cache, kind, "lanes=8", "w_bits=4" if kind == "fpmixed" else "max_w_bits=4")
    integer = record(cache, base, "lanes=8", "w_bits=4" if base == "mixed" else "max_w_bits=4")
    assert fp.multipliers == 0, fp.coarse_cells
    assert not any(t in fp.coarse_cells for t in synth.MULTIPLIER_CELLS)
    assert fp.nand2_eq > integer.nand2_eq and fp.depth > integer.depth
    assert fp.pj_per_mac > 0 and fp.fmax_mhz > 0 and fp.cycles_checked > 0
