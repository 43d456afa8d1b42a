"""Systems of chips priced end to end: one chip equals the single-chip model exactly, a 70B model
that one chip cannot hold runs split eight ways, and the collectives and the pipeline bubble on
the critical path match hand computations. The chips are an INT8 MAC NPU (a quick cold
characterization, in the session's temporary cache) and the shipped edge design's memory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from peforge.dse.cost import CostModel, evaluate, evaluate_many, prepare, unit_costs
from peforge.dse.cost.footprint import check_fits
from peforge.dse.cost.system import system_metrics
from peforge.dse.design.point import System, design_from_dict, design_named

NVLINK4 = 18 * 25e9  # bytes/s per direction of a chip: the nvlink4 preset
STEP = 1e-6  # s, the preset's latency of one collective step


@pytest.fixture(scope="module")
def npu():
    """Four 128 x 128 INT8 MAC arrays at 1 GHz on four HBM3 stacks (64 GiB)."""
    design = design_from_dict({
        "name": "npu", "tech": "7nm", "quant": "w8a8kv8",
        "compute": {"pe": "mac", "rows": 128, "cols": 128, "arrays": 4, "clock_mhz": 1000.0,
                    "pe_params": {"a_bits": 8, "w_bits": 8}},
        "sram": {"weight_kib": 8192, "activation_kib": 8192, "output_kib": 4096},
        "memory": {"technology": "HBM3", "units": 4}})
    return design, unit_costs(design)


def on(design, **system):
    return dataclasses.replace(design, system=System(**system))


def test_one_chip_system_is_the_single_chip_result_exactly(npu):
    design, cost = npu
    other = dataclasses.replace(design, name="npu-1-array", compute=dataclasses.replace(design.compute, arrays=1))
    workload = prepare("llama-2-7b", batch=4, seq=128, gen=17, quant="w8a8kv8")
    single = CostModel([design, other], [cost, unit_costs(other)]).metrics(workload)
    system = system_metrics([design, other], [cost, unit_costs(other)], workload)
    for key, values in single.items():
        assert np.array_equal(system[key], values), key
    assert (system["comm_s"] == 0).all() and (system["chips"] == 1).all() and (system["comm_share"] == 0).all()
    for phases in (("prefill",), ("decode",)):
        alone = CostModel([design], [cost]).metrics(workload, phases=phases)
        assert {k: v[0] for k, v in system_metrics([design], [cost], workload, phases=phases).items() if k in alone} \
            == {k: v[0] for k, v in alone.items()}


def test_llama_70b_one_edge_chip_is_rejected_eight_run_with_their_share(npu):
    workload = prepare("llama-2-70b", batch=1, seq=512, gen=65, quant="w4a8kv8-g128")
    edge = design_named("edge")
    with pytest.raises(ValueError, match=r"llama-2-70b needs .* GiB .* but edge has 8 GiB"):
        check_fits(edge, workload)
    with pytest.raises(ValueError, match=r"but edge has 8 GiB"):
        evaluate(edge, workload)
    # edge chips' memory (4 LPDDR5 channels, 8 GiB), the NPU's arrays: eight of them, TP = 8
    chip = dataclasses.replace(npu[0], name="edge-npu", memory=edge.memory)
    result = evaluate(on(chip, chips=8, tp=8), workload)
    m = result.metrics
    weights = workload.footprint.weight_bytes / (1 << 30)
    assert m["footprint_gib"] < m["capacity_gib"] == 8.0
    assert weights / 8 < m["footprint_gib"] < weights / 8 * 1.01  # an eighth of the weights, a few norms more
    assert 0 < m["comm_share"] < 1 and m["chips"] == 8
    assert m["area_mm2"] == pytest.approx(8 * evaluate(chip, prepare("llama-2-7b", batch=1, seq=16, gen=2,
                                                                    quant="w4a8kv8-g128")).metrics["area_mm2"])
    ops = result.operators
    reduce = ops[(ops["operator"] == "tp.all_reduce") & (ops["phase"] == "decode")]["time_s"].sum()
    # 64 decode steps x 80 layers x 2 all-reduces of 8192 INT8 activations over 8 chips behind NVSwitch
    hand = 64 * 80 * 2 * (2 * 7 / 8 * 8192 / NVLINK4 + 2 * STEP)
    assert reduce == pytest.approx(hand, rel=1e-12)
    assert m["comm_s"] == pytest.approx(ops.loc[ops["kind"] == "collective", "time_s"].sum(), rel=1e-12)


def test_pipeline_bubble_against_hand(npu):
    """pp = 4 stages, micro-batches of one sequence: TTFT = (m + 3) x stage + 3 hops."""
    design, cost = npu
    ttft = {}
    for m in (2, 4):
        workload = prepare("llama-2-7b", batch=m, seq=256, gen=2, quant="w8a8kv8")
        out = system_metrics([on(design, chips=4, pp=4, micro_batches=m)], [cost], workload, phases=("prefill",))
        ttft[m] = out["ttft_s"][0]
        assert out["bubble"][0] == pytest.approx(3 / (m + 3), rel=1e-12)
        assert out["comm_s"][0] == pytest.approx(3 * (256 * 4096 / (NVLINK4 * 1.0) + STEP), rel=1e-12)
    stage = (ttft[4] - ttft[2]) / 2
    hop = 256 * 4096 / NVLINK4 + STEP  # one sequence's 256 x 4096 INT8 activations to the next stage
    assert ttft[2] == pytest.approx(5 * stage + 3 * hop, rel=1e-9)
    # a stage is about a quarter of one sequence's prefill on one chip (its 8 of 32 layers + the LM head)
    alone = CostModel([design], [cost]).metrics(prepare("llama-2-7b", batch=1, seq=256, gen=2, quant="w8a8kv8"),
                                                phases=("prefill",))["ttft_s"][0]
    assert 0.25 * alone < stage < 0.30 * alone


def test_expert_parallel_all_to_all_against_hand(npu):
    design, cost = npu
    workload = prepare("mixtral-8x7b", batch=8, seq=128, gen=9, quant="w8a8kv8")
    comm: dict = {}
    out = system_metrics([on(design, chips=2, ep=2)], [cost], workload, comm_out=comm)
    # each chip serves 4 sequences; per MoE layer a dispatch and a combine of 4 tokens x top-2 x 4096
    a2a = 1 / 2 * 4 * 2 * 4096 / NVLINK4 + STEP
    assert comm["decode", "ep.all_to_all"][0] == pytest.approx(8 * 32 * 2 * a2a, rel=1e-12)
    assert comm["decode", "tp.all_reduce"][0] == 0.0
    assert out["footprint_gib"][0] < 0.55 * workload.footprint.total_bytes() / (1 << 30)


def test_a_system_search_prices_many_systems_together(npu):
    design, cost = npu
    workload = prepare("llama-2-70b", batch=8, seq=256, gen=33, quant="w8a8kv8")
    splits = [(1, 1), (2, 1), (4, 1), (8, 1), (2, 2), (4, 2), (1, 8), (3, 1)]
    designs = [dataclasses.replace(on(design, chips=tp * pp, tp=tp, pp=pp), name=f"tp{tp}pp{pp}") for tp, pp in splits]
    frame = evaluate_many(designs, workload, stride=1).set_index("design")
    assert "needs" in frame.loc["tp1pp1", "error"]  # 69 GB of weights and the KV cache over 64 GiB
    assert "system.tp=3" in frame.loc["tp3pp1", "error"]
    fine = frame[frame["error"] == ""]
    assert len(fine) == 6 and (fine["comm_share"] > 0).all() and (fine["chips"] == [2, 4, 8, 4, 8, 8]).all()
    alone = evaluate(designs[3], workload, breakdown=False).metrics
    for key in ("tokens_per_s", "ttft_s", "j_per_token", "comm_share", "footprint_gib"):
        assert fine.loc["tp8pp1", key] == pytest.approx(alone[key], rel=1e-12), key
    # more tensor parallelism: faster decode, a larger communication share
    tp_rows = fine.loc[["tp2pp1", "tp4pp1", "tp8pp1"]]
    assert (np.diff(tp_rows["tpot_s"]) < 0).all() and (np.diff(tp_rows["comm_share"]) > 0).all()


def test_a_systems_breakdown_adds_up_to_its_energy(npu):
    design, _ = npu
    workload = prepare("llama-2-7b", batch=4, seq=128, gen=9, quant="w8a8kv8")
    result = evaluate(on(design, chips=8, tp=2, pp=4, micro_batches=2), workload)
    ops, m = result.operators, result.metrics
    assert ops["energy_j"].sum() == pytest.approx(m["energy_j"], rel=1e-9)
    links = ops.loc[ops["kind"] == "collective", "energy_j"].sum()
    assert links == pytest.approx(m["link_energy_j"], rel=1e-12) and links > 0
    assert set(ops.loc[ops["kind"] == "collective", "operator"]) == {"tp.all_reduce", "tp.edge", "pp.hop"}
