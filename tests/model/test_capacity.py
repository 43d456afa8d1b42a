"""Sustained bandwidth and capacity in priced runs: memory-bound time follows the bandwidth the
design sustains, and a model runs once the memory holds it. Unit costs come from the real
characterization of each PE (cached in the session's temporary folder)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tools import FPMAC_CELL_FIT

from peforge.dse.cost.api import evaluate, prepare
from peforge.dse.design.point import design_named

GIB = 1 << 30


def with_memory(design, **changes):
    return dataclasses.replace(design, memory=dataclasses.replace(design.memory, **changes))


@pytest.fixture(scope="module")
def edge_decode():
    """Batch-1 decode on the edge design (4 LPDDR5 channels): weight streaming, memory-bound."""
    workload = prepare("llama-2-7b", batch=1, seq=128, gen=4, quant="w4a8kv8-g128")
    edge = design_named("edge")
    runs = {name: evaluate(design, workload, phases=("decode",)) for name, design in (
        ("default", edge), ("full", with_memory(edge, efficiency=1.0)), ("half", with_memory(edge, efficiency=0.5)),
        ("fast", with_memory(edge, gb_per_s=25.6)))}
    return runs


def memory_bound(ops):
    return (ops["bound"] == "memory").to_numpy()


def test_memory_bound_time_is_bytes_over_sustained_bandwidth(edge_decode):
    """LPDDR5: 12.8 GB/s per x16 channel sustained at 0.70 (the preset's default), 4 channels."""
    ops = edge_decode["default"].operators
    bound = memory_bound(ops)
    assert bound.sum() >= 5  # the projections and the LM head stream their weights
    sustained = 4 * 12.8e9 * 0.70
    np.testing.assert_allclose(ops["time_s"].to_numpy()[bound], ops["dram_bytes"].to_numpy()[bound] / sustained,
                               rtol=1e-12)
    assert edge_decode["default"].peaks["dram_bytes_per_s"] == pytest.approx(sustained, rel=1e-12)
    costs = edge_decode["default"].costs
    assert costs.memory_peak_gb_per_s == 12.8 and costs.memory_efficiency == 0.70
    assert "x efficiency 0.7" in costs.sources["memory_gb_per_s"] and "STREAM" in costs.sources["memory_gb_per_s"]


def test_efficiency_scales_memory_bound_time_by_its_inverse(edge_decode):
    full, half = edge_decode["full"].operators, edge_decode["half"].operators
    bound = memory_bound(full) & memory_bound(half)
    assert bound.sum() >= 5
    np.testing.assert_allclose(half["time_s"].to_numpy()[bound] / full["time_s"].to_numpy()[bound], 2.0, rtol=1e-12)
    # the whole step too, where every operator that takes time is memory-bound at both
    assert edge_decode["half"].metrics["tpot_s"] > 1.9 * edge_decode["full"].metrics["tpot_s"]


def test_gb_per_s_sets_a_units_datasheet_bandwidth(edge_decode):
    default, fast = edge_decode["default"].operators, edge_decode["fast"].operators
    bound = memory_bound(default) & memory_bound(fast)
    # 25.6 GB/s per channel, still sustained at 0.70: twice the preset's 12.8 GB/s
    np.testing.assert_allclose(default["time_s"].to_numpy()[bound] / fast["time_s"].to_numpy()[bound], 2.0,
                               rtol=1e-12)
    assert edge_decode["fast"].costs.sources["memory_peak_gb_per_s"] == "memory.gb_per_s of the design"


def test_edge_reports_footprint_capacity_and_max_batch(edge_decode):
    m = edge_decode["default"].metrics
    assert m["capacity_gib"] == 8.0  # 4 LPDDR5 channels x 2 GiB
    # max_batch: (8 GiB - weights) / (KV + activations per sequence), the footprint's own parts
    fp = prepare("llama-2-7b", batch=1, seq=128, gen=4, quant="w4a8kv8-g128").footprint
    assert m["footprint_gib"] == pytest.approx((fp.weight_bytes + fp.kv_bytes_per_seq + fp.act_bytes_per_seq) / GIB)
    assert m["max_batch"] == (8 * GIB - fp.weight_bytes) // (fp.kv_bytes_per_seq + fp.act_bytes_per_seq)


@FPMAC_CELL_FIT
def test_llama70b_fp16_runs_where_the_memory_holds_it():
    """The FP16 NPU of the pim design (no PIM) on ten HBM3 stacks (160 GiB) holds 128.5 GiB of
    weights; on its four stacks it does not."""
    pim = design_named("pim")
    npu = dataclasses.replace(pim, pim=dataclasses.replace(pim.pim, mode="none"))
    workload = prepare("llama-2-70b", batch=1, seq=64, gen=2, quant="w16a16kv16")
    with pytest.raises(ValueError, match=r"llama-2-70b needs 128\.\d GiB .* but pim has 64 GiB \(4 HBM3 stacks x 16 GiB\)"):
        evaluate(npu, workload, breakdown=False)
    result = evaluate(with_memory(npu, units=10), workload, breakdown=False)
    assert result.metrics["tpot_s"] > 0 and result.metrics["capacity_gib"] == 160.0
    assert 128.5 < result.metrics["footprint_gib"] < 129.0
