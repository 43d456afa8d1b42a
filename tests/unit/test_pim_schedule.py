"""PIM in the cost model: DRAM timing in ns at any PIM clock, the packed layout the model prices,
PIM channels tied to the memory, ``pim.ops``, and the decode scheduler that picks NPU-only,
blocked or concurrent with k sub-batches (never slower than any fixed schedule)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from peforge.dse.cost import pim as pim_cost
from peforge.dse.cost.model import CostModel, check_design
from peforge.dse.cost.units import UnitCosts, memory_costs
from peforge.dse.cost.workload import prepare
from peforge.dse.design.point import design_named
from peforge.hw.pim import DRAM_TIMINGS, DramTiming, PimBankConfig, PimChannelConfig, dram_cycles

# PE and PIM-lane figures, not characterized: the schedule is chosen by time, which they do not set.
PE = dict(pe_area_um2=100.0, pj_per_mac=0.5, fmax_mhz=5000.0, pim_pj_per_mac=0.1, pim_lane_area_um2=10.0)


def costs_of(design) -> UnitCosts:
    return UnitCosts(**PE, **memory_costs(design))


def shipped(**pim) -> object:
    design = design_named("pim")
    return dataclasses.replace(design, pim=dataclasses.replace(design.pim, **pim)) if pim else design


def model_of(*designs) -> CostModel:
    return CostModel(list(designs), [costs_of(d) for d in designs])


def tpot(model, workload, allowed=None) -> np.ndarray:
    return model.metrics(workload, phases=("decode",), pim_schedules=allowed)["tpot_s"]


# --- timing in ns ----------------------------------------------------------------------------


def test_dram_cycles_is_the_ceiling():
    # 14 ns at 1000 MHz is 14 cycles (not 15 from 14.000000000000002), at 300 MHz 4.2 -> 5
    assert dram_cycles(14.0, 1000.0) == 14 and dram_cycles(14.0, 300.0) == 5
    assert dram_cycles(34.0, 300.0) == 11 and dram_cycles(2.0, 300.0) == 1 and dram_cycles(0.1, 100.0) == 1
    assert dram_cycles(np.array([14.0, 34.0]), np.array([[1000.0], [500.0]])).tolist() == [[14, 34], [7, 17]]


@pytest.mark.parametrize("fast, slow", [(1000.0, 500.0), (1000.0, 300.0), (800.0, 333.0)])
def test_same_dram_at_two_clocks_keeps_its_ns(fast, slow):
    timing = DramTiming(t_rcd_ns=14.0, t_rp_ns=14.0, t_ras_ns=34.0, t_ccd_ns=2.0)
    for mhz in (fast, slow):
        channel = PimChannelConfig.at_clock(timing, mhz, banks=2, rows=64, cols=64, lanes=16)
        period = 1e3 / mhz
        for name in ("t_rcd", "t_rp", "t_ras", "t_ccd"):
            ns = getattr(timing, f"{name}_ns")
            assert ns <= getattr(channel, name) * period < ns + period, (mhz, name)  # within one cycle's rounding
    # the cost model's group converts with the same function
    assert shipped(clock_mhz=300.0).pim.channel == PimChannelConfig.at_clock(
        shipped().pim.timing, 300.0, **{k: getattr(shipped().pim, k) for k in
                                        ("rows", "cols", "word_bits", "lanes", "dual_row_buffer", "banks")})


def test_gemv_ns_latency_changes_only_by_its_logic_cycles():
    # 16 W rows of 1024 words on one bank of 64 bursts a row. At 1000 MHz: 64 LDX + 16 rows of
    # (tRCD 14 + 63 x tCCD 2 + 1) + 15 x tRP 14 + readout 2 = 2532 ns. At 500 MHz every DRAM
    # timing halves in cycles (7, 7, 17, 1), the same ns: 64 + 16 x (7 + 63 + 1) + 15 x 7 + 2 =
    # 1307 cycles = 2614 ns; the 82 ns more are the 64 + 16 + 2 one-cycle steps of the
    # controller and lanes, which take 2 ns instead of 1.
    timing = DRAM_TIMINGS["HBM2"][0]
    cycles = {mhz: PimBankConfig(**{k: v for k, v in timing.cycles(mhz).items()}, rows=64, cols=1024, lanes=16)
              .cycles(16, 1024) for mhz in (1000.0, 500.0)}
    assert cycles == {1000.0: 2532, 500.0: 1307}
    assert cycles[500.0] * 2 - cycles[1000.0] == 64 + 16 + 2


def test_out_of_range_cycles_name_the_ns_key():
    with pytest.raises(ValueError, match=r"PimChannelConfig.t_ras_ns=34.0 is 340 cycles at clock_mhz=10000.0; "
                                         r"the bank's counters allow 1..255 cycles"):
        PimChannelConfig.at_clock(DramTiming(), 10000.0)


# --- packed layout in the model ---------------------------------------------------------------


def test_model_prices_the_packed_layout_of_the_head_dimension():
    design = shipped()
    pim = design.pim
    arrays = pim_cost.PimArrays([design])
    # cols 1024 / head_dim 128 = 8 keys per DRAM row (8 bursts of 16 lanes each)
    assert pim.max_pack(128) == 8 == pim.cols // 128
    assert arrays.gemv_cycles(4096, 128)[0, 0, 0] == pim.channel.cycles(4096, 128, pack=8)
    # one ACT / PRE per 8 keys, not per key: 2624 against 4808 cycles at 300 MHz
    assert pim.channel.cycles(4096, 128, pack=8) < 0.6 * pim.channel.cycles(4096, 128)
    # a context GEMV (W = V^T: head_dim rows of 4096 keys) spans DRAM rows: one vector per row
    assert pim.max_pack(4096) == 1 and arrays.gemv_cycles(128, 4096)[0, 0, 0] == pim.channel.cycles(128, 4096)


# --- PIM tied to the memory -------------------------------------------------------------------


def test_pim_channels_are_channels_of_the_memory():
    design = shipped()  # 4 HBM3 stacks of 16 channels, all 64 with PIM
    check_design(design, costs_of(design))
    too_many = shipped(channels=65)
    with pytest.raises(ValueError, match=r"pim: pim.channels=65 exceeds the memory's 64 channels \(memory.units=4 "
                                         r"x 16 per HBM3 unit"):
        check_design(too_many, costs_of(too_many))
    check_design(dataclasses.replace(too_many, pim=dataclasses.replace(too_many.pim, mode="none")), costs_of(too_many))


def test_fc_on_pim_only_for_batch_one_weight_gemvs():
    attention, both = shipped(mode="blocked"), shipped(mode="blocked", ops="attention+fc")
    model = model_of(attention, both)
    one = prepare("llama-2-7b", batch=1, seq=510, gen=3, quant="w16a16kv16")
    four = prepare("llama-2-7b", batch=4, seq=510, gen=3, quant="w16a16kv16")
    t1, t4 = tpot(model, one), tpot(model, four)
    assert t1[1] < 0.5 * t1[0]  # the weight GEMVs stream inside the banks
    assert t4[1] == t4[0]  # batch 4: weight GEMMs, on the NPU
    costs: dict = {}
    model_of(both).metrics(one, phases=("decode",), costs_out=costs)
    rows = costs["decode"].rows
    table = one.decode.base
    on_pim = {name for name, p in zip(table.names, rows["pim_s"][0]) if p > 0}
    assert {"q_proj", "mlp.down_proj", "lm_head", "attn.score", "attn.context"} <= on_pim
    assert "input_norm" not in on_pim


# --- the scheduler ----------------------------------------------------------------------------

BATCHES = (1, 2, 4, 16, 64, 256)
CONTEXTS = (128, 1024, 4096)


def fixed_schedules(batch: int) -> list[tuple[str, int]]:
    """Every fixed schedule the runtime may take, listed here (not by the code under test): k
    sub-batches for k = 2, 4, 8 up to min(batch, 8), and min(batch, 8)."""
    top = min(batch, 8)
    ks = sorted({k for k in (2, 4, 8) if k <= top} | ({top} if top >= 2 else set()))
    return [("none", 0), ("blocked", 1)] + [("concurrent", k) for k in ks]


def test_the_choice_is_never_slower_than_any_fixed_schedule():
    model = model_of(shipped(), shipped(mode="blocked"), shipped(mode="none"))
    seen = set()
    for batch in BATCHES:
        for context in CONTEXTS:
            workload = prepare("llama-2-7b", batch=batch, seq=context - 2, gen=3, quant="w16a16kv16")
            costs: dict = {}
            chosen = model.metrics(workload, phases=("decode",), costs_out=costs)["tpot_s"]
            schedule = costs["decode"].schedule
            seen |= {schedule.names[i] for i in np.unique(schedule.choice[0])}
            fixed = {s: tpot(model, workload, [s]) for s in fixed_schedules(batch)}
            for s, t in fixed.items():  # inf where a design does not support s
                assert np.all(chosen <= t * (1 + 1e-12)), (batch, context, s, chosen, t)
            # what a design supports bounds what it may pick: a blocked design never goes concurrent
            best_blocked = min(fixed[("none", 0)][1], fixed[("blocked", 1)][1])
            assert chosen[1] == pytest.approx(best_blocked, rel=1e-12)
            assert chosen[2] == pytest.approx(fixed[("none", 0)][2], rel=1e-12)
    # the grid exercises the choice: blocked and concurrent with more than two sub-batches
    assert ("blocked", 1) in seen and any(name == "concurrent" and k > 2 for name, k in seen), seen


def test_npu_only_schedule_is_the_design_without_pim():
    workload = prepare("llama-2-7b", batch=16, seq=1022, gen=3, quant="w16a16kv16")
    with_pim, without = shipped(), shipped(mode="none")
    t = tpot(model_of(with_pim), workload, [("none", 0)])
    assert t[0] == pytest.approx(tpot(model_of(without), workload)[0], rel=1e-12)


def test_concurrent_step_by_hand():
    # k = 4 sub-batches of 64 at batch 256: max(4 N, P) + min(N, P / 4) / layers, N the NPU time
    # of one sub-batch (here priced as a batch-64 run with attention on PIM; the model scales the
    # batch's softmax rows to the sub-batch, hence the tolerance), P the PIM time of the whole batch.
    run = dict(seq=4094, gen=3, quant="w16a16kv16")
    model = model_of(shipped())
    costs, sub = {}, {}
    t = model.metrics(prepare("llama-2-7b", batch=256, **run), phases=("decode",), costs_out=costs,
                      pim_schedules=[("concurrent", 4)])["tpot_s"]
    model.metrics(prepare("llama-2-7b", batch=64, **run), phases=("decode",), costs_out=sub,
                  pim_schedules=[("blocked", 1)])
    n, p, weight = sub["decode"].npu_s[0], costs["decode"].pim_s[0], costs["decode"].weight
    step = np.maximum(4 * n, p) + np.minimum(n, p / 4) / 32
    assert t[0] == pytest.approx(float(step @ weight) / weight.sum(), rel=1e-3)
    assert t[0] < tpot(model, prepare("llama-2-7b", batch=256, **run), [("concurrent", 2)])[0]


def test_breakdown_reports_the_schedule_chosen():
    workload = prepare("llama-2-7b", batch=256, seq=4094, gen=3, quant="w16a16kv16")
    result = model_of(shipped()).evaluate(workload, phases=("decode",))
    mapping = result.operators.set_index("operator").mapping
    assert mapping["attn.score"].endswith("decode steps: concurrent k=4 100%"), mapping["attn.score"]
    small = model_of(shipped()).evaluate(prepare("llama-2-7b", batch=4, seq=510, gen=3, quant="w16a16kv16"),
                                         phases=("decode",))
    assert small.operators.set_index("operator").mapping["attn.context"].endswith("decode steps: blocked 100%")
