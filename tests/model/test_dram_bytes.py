"""DRAM bytes of the cost model against counts made here, independently of its formulas."""

import pytest

from peforge.dse.design.point import Compute, DesignPoint, Memory, Sram
from peforge.dse.cost.api import evaluate, prepare
from peforge.models import build_graph, load_config

MODEL = "llama-2-7b"


def design(sram_kib: int) -> DesignPoint:
    return DesignPoint(name="bytes", tech="7nm", compute=Compute(pe="mac", rows=32, cols=32, clock_mhz=500.0,
                                                                 pe_params=(("a_bits", 16), ("w_bits", 16))),
                       sram=Sram(weight_kib=sram_kib, activation_kib=sram_kib, output_kib=sram_kib),
                       memory=Memory(technology="HBM3", units=1))


def test_decode_step_reads_weights_and_kv_once():
    """With buffers that hold every activation, a decode step moves exactly the weights it
    reads, the KV cache it attends to and the K/V entries it writes."""
    graph = build_graph(load_config(MODEL), "decode", batch=4, kv_len=300, quant="w16a16kv16")
    expected = sum(op.weight_bytes + op.kv_bytes for op in graph.operators)
    result = evaluate(design(1 << 16), prepare(MODEL, batch=4, seq=300, gen=1, quant="w16a16kv16"),
                      phases=("decode",))
    assert result.operators.dram_bytes.sum() == pytest.approx(expected, rel=1e-12)


def blocked_gemm_bytes(m, k, n, a_bytes, w_bytes, act_buffer, weight_buffer):
    """Bytes a blocked GEMM loads, counted block by block for both loop orders; the cheaper wins."""
    rows = max(1, act_buffer // (k * a_bytes))  # activation rows a block holds (all of K)
    cols = max(1, weight_buffer // (k * w_bytes))  # weight columns a block holds
    row_blocks = [min(rows, m - start) for start in range(0, m, rows)]
    col_blocks = [min(cols, n - start) for start in range(0, n, cols)]
    acts_outer = 0
    for r in row_blocks:
        acts_outer += r * k * a_bytes
        for c in col_blocks:
            acts_outer += k * c * w_bytes
    weights_outer = 0
    for c in col_blocks:
        weights_outer += k * c * w_bytes
        for r in row_blocks:
            weights_outer += r * k * a_bytes
    return min(acts_outer, weights_outer) + m * n * a_bytes  # results written once


@pytest.mark.parametrize("name", ["q_proj", "mlp.down_proj"])
def test_prefill_gemm_too_big_for_the_buffers_is_tiled(name):
    sram_kib = 256
    result = evaluate(design(sram_kib), prepare(MODEL, batch=1, seq=512, gen=1, quant="w16a16kv16"),
                      phases=("prefill",))
    row = result.operators.query("operator == @name").iloc[0]
    graph = build_graph(load_config(MODEL), "prefill", batch=1, seq=512, quant="w16a16kv16")
    op = next(o for o in graph.operators if o.name == name)
    per_layer = blocked_gemm_bytes(op.m, op.k, op.n, 2, 2, sram_kib * 1024, sram_kib * 1024)
    assert per_layer > op.weight_bytes + op.act_bytes  # the buffers are too small: something is re-read
    assert row.dram_bytes == pytest.approx(per_layer * graph.config.num_layers, rel=1e-12)
