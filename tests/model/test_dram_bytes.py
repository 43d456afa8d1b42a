"""DRAM bytes of the cost model against counts made here, independently of its formulas."""

import pytest
from tools import FPMAC_CELL_FIT

from peforge.dse.design.point import Compute, DesignPoint, Memory, Sram
from peforge.dse.cost.api import evaluate, prepare

MODEL = "llama-2-7b"
pytestmark = FPMAC_CELL_FIT  # an FP16 fpmac design


def design(sram_kib: int) -> DesignPoint:
    return DesignPoint(name="bytes", tech="7nm", compute=Compute(pe="fpmac", rows=32, cols=32, clock_mhz=500.0,
                                                                 pe_params=(("fmt", "fp16"),)),
                       sram=Sram(weight_kib=sram_kib, activation_kib=sram_kib, output_kib=sram_kib),
                       memory=Memory(technology="HBM3", units=1))


def test_decode_step_reads_weights_and_kv_once():
    """With buffers that hold every activation, a decode step moves exactly the weights it
    reads, the KV cache it attends to and the K/V entries it writes."""
    # Llama-2-7B at FP16: every weight of the 32 layers (4 h^2 + 3 h I + 2 h each), the final norm and
    # the LM head (V h) read once, plus 4 gathered embedding rows; the KV cache read by score and
    # context for 301 keys (300 cached and the new one), and the new K and V written, per layer,
    # sequence and KV head (32 x 4 x 32) of 128 elements.
    h, inter, vocab, layers, batch = 4096, 11008, 32000, 32, 4
    weights = 2 * (layers * (4 * h * h + 3 * h * inter + 2 * h) + h + vocab * h + batch * h)
    kv = layers * batch * 32 * 128 * 2 * (2 * 301 + 2)
    expected = weights + kv
    result = evaluate(design(1 << 16), prepare(MODEL, batch=4, seq=300, gen=2, quant="w16a16kv16"),
                      phases=("decode",))
    assert result.operators.dram_bytes.sum() == pytest.approx(expected, rel=1e-12)


def blocked_gemm_bytes(m, k, n, a_bytes, w_bytes, act_buffer, weight_buffer):
    """Bytes a GEMM blocked over whole K rows and columns loads (the rule before the mapper), counted
    block by block for both loop orders; the cheaper wins."""
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


# (M, K, N) of one prompt of 512 tokens through Llama-2-7B's h = 4096, I = 11008 projections
SHAPES = {"q_proj": (512, 4096, 4096), "mlp.down_proj": (512, 11008, 4096)}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_prefill_gemm_too_big_for_the_buffers_is_tiled(name):
    sram_kib = 256
    result = evaluate(design(sram_kib), prepare(MODEL, batch=1, seq=512, gen=1, quant="w16a16kv16"),
                      phases=("prefill",))
    row = result.operators.query("operator == @name").iloc[0]
    m, k, n = SHAPES[name]
    per_layer = blocked_gemm_bytes(m, k, n, 2, 2, sram_kib * 1024, sram_kib * 1024)
    assert per_layer > 2 * (k * n + m * k + m * n)  # the buffers are too small: something is re-read
    # the mapper's tiling (tests/model/test_mapper.py checks it exactly) re-reads, and never more
    # than the old rule of whole-K blocks would, for 32 alike layers
    assert 32 * 2 * (k * n + m * k + m * n) < row.dram_bytes <= per_layer * 32
