"""The LM head and the embedding table: the bytes stored and the bits the cost model computes at agree."""

import pytest

from peforge.dse.cost.api import evaluate, prepare
from peforge.dse.design.point import design_named
from peforge.models.config import load_config
from peforge.models.quant import parse_scheme, tensor_bits
from peforge.models.weights import weight_tensors

H, VOCAB = 4096, 32000  # Llama-2-7B


@pytest.mark.parametrize("quant, bits, group, overhead", [
    ("w4a8kv8-g128", 4, 128, 16 + 4),  # FP16 scale and INT4 zero point per 128 weights
    ("w5a8kv8-g64-sym", 5, 64, 16),
    ("w8a8kv8", 8, H, 16 + 8),  # per output channel: one group of K = h
    ("wfp8afp8kvfp8", 8, H, 16),  # floats: the scale only
    ("w16a16kv16", 16, 0, 0),
])
def test_lm_head_row_is_stored_and_computed_at_the_schemes_weight_bits(quant, bits, group, overhead):
    workload = prepare("llama-2-7b", seq=16, gen=2, quant=quant)
    groups = VOCAB * (H // group) if group else 0
    stored = (H * VOCAB * bits + groups * overhead) / 8  # by hand
    # the checkpoint's tensor and the footprint it adds
    lm_head = next(t for t in weight_tensors(load_config("llama-2-7b")) if t.name == "lm_head")
    assert tensor_bits(lm_head.k, lm_head.n, parse_scheme(quant), quantized=lm_head.quantized) / 8 == stored
    # the op table's LM head rows read those bytes, in both phases ...
    for table in (workload.prefill, workload.decode.base):
        row = table.names.index("lm_head")
        assert table.cols["weight_bytes"][row] == stored
        assert (table.cols["k"][row], table.cols["n"][row]) == (H, VOCAB)
    # ... and the cost model computes every weight row at the workload's one weight format
    assert workload.weight_bits == bits and workload.formats["weight"] == parse_scheme(quant).weight.name


@pytest.mark.parametrize("quant, row_bits", [
    ("w4a8kv8-g128", H * 4 + (H // 128) * (16 + 4)),
    ("w16a16kv16", H * 16),
])
def test_a_gathered_embedding_row_carries_its_groups(quant, row_bits):
    workload = prepare("llama-2-7b", batch=3, seq=16, gen=2, quant=quant)
    table = workload.decode.base
    assert table.cols["weight_bytes"][table.names.index("embed_tokens")] == 3 * row_bits / 8


def test_integer_design_prices_its_4_bit_lm_head():
    """The shipped edge design (an INT8 bit-serial PE) runs the whole model, LM head included, and
    moves the LM head's 4-bit bytes from DRAM, not 16-bit ones."""
    workload = prepare("llama-2-7b", seq=16, gen=2, quant="w4a8kv8-g128")
    ops = evaluate(design_named("edge"), workload, phases=("decode",)).operators
    moved = float(ops[ops.operator == "lm_head"].dram_bytes.iloc[0])
    four_bit = (H * VOCAB * 4 + VOCAB * (H // 128) * 20) / 8
    assert four_bit <= moved < 1.01 * four_bit
