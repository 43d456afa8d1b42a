"""The tile testbench's pure-Python parts: the memory it times the AxiRam as, the sequencer's time per
operator, the comparison of a run with the golden tensors and the predicted timeline, the tile's
parameters through an export manifest, the program file format."""

from __future__ import annotations

import numpy as np
import pytest

from peforge.dse.design.point import design_from_dict
from peforge.dse.report.tile_rtl import read_words, tile_from_dict, tile_to_dict
from peforge.dse.tile.bench import check_phase, memory_model, operator_totals
from peforge.dse.tile.dram import Symbol
from peforge.hw.systolic import SystolicConfig
from peforge.hw.tile.config import TileConfig


def _design(gb_per_s: float, clock_mhz: float, units: int = 1):
    return design_from_dict({"tech": "7nm", "compute": {"pe": "mac", "rows": 4, "cols": 4, "clock_mhz": clock_mhz},
                             "memory": {"technology": "LPDDR5", "units": units, "gb_per_s": gb_per_s,
                                        "efficiency": 0.5}})


@pytest.mark.parametrize("gb_per_s, clock_mhz, units, bus, period", [
    (8.0, 500.0, 1, 4, 1),    # 4 GB/s sustained at 500 MHz: 8 bytes per cycle, more than the bus
    (2.0, 500.0, 1, 4, 2),    # 1 GB/s: 2 bytes per cycle, a 4-byte beat every 2 cycles
    (2.0, 500.0, 1, 16, 8),
    (3.0, 1000.0, 2, 4, 2),   # 2 x 1.5 GB/s at 1 GHz: 3 bytes per cycle; a beat every cycle would be 4
    (1.0, 1000.0, 4, 8, 4),   # 4 x 0.5 GB/s at 1 GHz: 2 bytes per cycle
])
def test_memory_period_never_faster_than_the_designs_sustained_bandwidth(gb_per_s, clock_mhz, units, bus, period):
    design = _design(gb_per_s, clock_mhz, units)
    memory = memory_model(design, _Bus(bus), read_latency=12, write_latency=5)
    assert (memory.period, memory.read_latency, memory.write_latency) == (period, 12, 5)


class _Bus:
    """A tile as far as the memory model looks at it: its bus width (bytes)."""

    def __init__(self, bus_bytes: int):
        self.bus_bytes = bus_bytes


def test_operator_totals_charge_each_instruction_from_the_previous_one_leaving():
    # left decode at 1, 5 (a), 6 (b); End left at 10, done at 11
    totals = operator_totals([1, 5, 6, 10], ["a", "a", "b", "end"], 11)
    assert totals == {"a": 2 + 4, "b": 1 + 4}
    assert sum(totals.values()) == 11


def _symbols():
    return {"y": Symbol(name="y", addr=8, shape=(2, 3), elem_bytes=4),
            "z": Symbol(name="z", addr=40, shape=(4,), elem_bytes=1)}


def _dram(y, z) -> bytes:
    dram = bytearray(64)
    dram[8:32] = np.asarray(y, dtype="<i4").tobytes()
    dram[40:44] = np.asarray(z, dtype="<i1").tobytes()
    return bytes(dram)


def _check(dram, issued, *, done=True, measured=12):
    expected = {"y": np.array([[1, -2, 3], [4, 5, -6]]), "z": np.array([-1, 0, 7, 127])}
    return check_phase(name="prefill", done=done, measured=measured, dram=dram, issued=issued, tensors=_symbols(),
                       expected=expected, tags=["q", "q", "r", "end"], predicted=12, predicted_issued=[1, 3, 4, 11],
                       predicted_operators={"q": {"total": 4}, "r": {"total": 8}}, limit=100)


def test_a_run_like_the_golden_model_and_the_timeline_passes():
    report = _check(_dram([[1, -2, 3], [4, 5, -6]], [-1, 0, 7, 127]), [(0, 1), (1, 3), (2, 4), (3, 11)])
    assert report.passed and report.problem() is None and report.divergence is None
    assert report.checked == ("y", "z")
    assert report.operators == {"q": {"total": 4, "measured": 4}, "r": {"total": 8, "measured": 8}}


def test_a_wrong_element_is_named_with_its_index_and_both_values():
    report = _check(_dram([[1, -2, 3], [4, 9, -6]], [-1, 0, 7, -128]), [(0, 1), (1, 3), (2, 4), (3, 11)])
    assert not report.passed
    assert [(m.tensor, m.index, m.got, m.want, m.count) for m in report.mismatches] == [
        ("y", (1, 1), 9, 5, 1), ("z", (3,), -128, 127, 1)]
    line = report.problem()
    assert "\n" not in line and "y[1, 1] is 9" in line and "golden model's 5" in line and "2 tensor(s)" in line


def test_the_first_instruction_off_its_predicted_cycle_is_reported():
    report = _check(_dram([[1, -2, 3], [4, 5, -6]], [-1, 0, 7, 127]), [(0, 1), (1, 3), (2, 6), (3, 13)],
                    measured=14)
    assert report.passed  # the values are right; the cycles are the model's business
    assert report.divergence == {"instruction": 2, "tag": "r", "predicted": 4, "measured": 6}
    assert report.operators["r"]["measured"] == 10 and report.operators["q"]["measured"] == 4


def test_a_hung_run_fails_without_reading_its_dram_and_names_where_it_stalled():
    report = _check(bytes(64), [(0, 1)], done=False, measured=0)
    assert not report.passed and report.mismatches == ()
    assert report.divergence == {"instruction": 1, "tag": "q", "predicted": 3, "measured": None}
    assert report.problem() == ("prefill: the tile did not raise done within 100 cycles (instruction 1, q, never "
                                "left decode)")


def test_tile_parameters_survive_the_manifest():
    tile = TileConfig(array=SystolicConfig(rows=4, cols=2, pe="bitserial", dataflow="os", max_m=16, max_k=64,
                                           max_n=32), arrays=2, act_depth=32, imem_depth=512, vector_lanes=2)
    assert tile_from_dict(tile_to_dict(tile)) == tile


def test_program_files_are_hex_words_and_a_bad_line_is_named(tmp_path):
    good = tmp_path / "p.hex"
    good.write_text("0001\nffff\n\n1a2b\n")
    assert read_words(good) == [1, 0xFFFF, 0x1A2B]
    bad = tmp_path / "q.hex"
    bad.write_text("0001\nzz\n")
    with pytest.raises(ValueError, match=r"q.hex:2: 'zz' is not a hex instruction word"):
        read_words(bad)


def test_run_plan_refuses_unknown_phases_before_simulating(tmp_path):
    from peforge.dse.tile.bench import LayerPlan, PhasePlan, run_plan
    from peforge.dse.tile.intlayer import IntLayerConfig
    from peforge.hw.tile.dma import MemoryModel

    phase = PhasePlan(name="prefill", words=(0,), tags=("end",), image=b"", carry=(), tensors={}, symbols={},
                      predicted_cycles=2, predicted_issued=(1,), predicted_operators={})
    plan = LayerPlan(tile=None, memory=MemoryModel(), layer=IntLayerConfig(), tokens=(1, 2), phases=(phase,))
    with pytest.raises(ValueError, match="phases decode: choose among prefill"):
        run_plan(plan, tmp_path / "none.v", "verilator", tmp_path, only=("decode",))


def test_program_writes_skip_data_registers_already_holding_the_value():
    from peforge.sim.tile_layer import program_writes

    tile = TileConfig()
    n = tile.data_registers
    addr = tile.register_address
    word = (0x1234 << 32) | 0xABCD  # pieces 0 and 1 set, the rest 0
    writes = program_writes(tile, [word, word, word | 7])
    data = {addr(f"imem_data{i}"): i for i in range(n)}
    assert [(a, v) for a, v in writes if a not in data] == [
        (addr("imem_addr"), 0), (addr("imem_write"), 1), (addr("imem_addr"), 1), (addr("imem_write"), 1),
        (addr("imem_addr"), 2), (addr("imem_write"), 1)]
    stored = [(data[a], v) for a, v in writes if a in data]
    # the first word writes every piece; the second none; the third only piece 0
    assert stored == [(0, 0xABCD), (1, 0x1234), *((i, 0) for i in range(2, n)), (0, 0xABCD | 7)]
    # what the registers hold when each imem_write pulses is the full word
    held, seen = {}, []
    for a, v in writes:
        if a in data:
            held[data[a]] = v
        elif a == addr("imem_write"):
            seen.append(sum(held[i] << (32 * i) for i in range(n)))
    assert seen == [word, word, word | 7]
