"""Quantization schemes: parsing, validation, and exact weight storage."""

import pytest

from peforge.models.config import load_config
from peforge.models.quant import FORMATS, QuantScheme, parse_scheme, tensor_bits
from peforge.models.weights import weight_bits, weight_bytes, weight_tensors


@pytest.mark.parametrize("text, w, a, kv, group, sym", [
    ("w4a8kv4-g128", "int4", "int8", "int4", 128, False),
    ("w16a16kv16", "fp16", "fp16", "fp16", 0, False),
    ("wbf16abf16kvfp8", "bf16", "bf16", "fp8", 0, False),
    ("wnf4a16kv16-g64", "nf4", "fp16", "fp16", 64, False),
    ("w3a16kv2-g128-sym", "int3", "fp16", "int2", 128, True),
    ("wfp4afp8kv8-g32", "fp4", "fp8", "int8", 32, False),
    ("W8A8KV8", "int8", "int8", "int8", 0, False),
    ("w5a8kv8-g64", "int5", "int8", "int8", 64, False),
    ("w6a8kv6-g128-sym", "int6", "int8", "int6", 128, True),
    ("w7a16kv5", "int7", "fp16", "int5", 0, False),
    ("wint5a8kv7", "int5", "int8", "int7", 0, False),
])
def test_parse(text, w, a, kv, group, sym):
    scheme = parse_scheme(text)
    assert (scheme.weight.name, scheme.activation.name, scheme.kv.name) == (w, a, kv)
    assert (scheme.group_size, scheme.symmetric) == (group, sym)
    assert parse_scheme(scheme.name) == scheme  # canonical name round-trips


@pytest.mark.parametrize("text, message", [
    ("w9a8kv4", r"weight format '9' is not allowed; choose one of 16, bf16, fp8"),
    ("w1a8kv4", r"weight format '1' is not allowed"),
    ("w4a6kv4", r"activation format '6' is not allowed"),
    ("w4a8kv9", r"kv format '9' is not allowed"),
    ("w4a2kv4", r"activation format '2' is not allowed"),
    ("w4a8kvnf4", r"kv format 'nf4' is not allowed"),
    ("w4a8kv4-g0", r"option '-g0' is not allowed; use -g<N> with N in 1\.\.65536"),
    ("w4a8kv4-x", r"option '-x' is not allowed"),
    ("w16a16kv16-g128", r"a group size needs weights below 16 bits"),
    ("int4", r"is not of the form w<FMT>a<FMT>kv<FMT>"),
    ("", r"is not of the form"),
])
def test_bad_schemes(text, message):
    with pytest.raises(ValueError, match=message):
        parse_scheme(text)


def test_scheme_dataclass_validates():
    with pytest.raises(ValueError, match=r"group_size=-1 is out of range"):
        QuantScheme(weight=FORMATS["int4"], group_size=-1)
    with pytest.raises(ValueError, match=r"QuantScheme\.activation=.*is not allowed"):
        QuantScheme(activation=FORMATS["nf4"])


def test_group_overhead_bits():
    assert parse_scheme("w4a8kv4-g128").weight_group_overhead_bits == 16 + 4  # FP16 scale + INT4 zero
    assert parse_scheme("w4a8kv4-g128-sym").weight_group_overhead_bits == 16
    assert parse_scheme("wfp4a8kv4-g32").weight_group_overhead_bits == 16  # floats: scale only
    assert parse_scheme("w16a16kv16").weight_group_overhead_bits == 0
    assert parse_scheme("w16a16kv4").kv_vector_bits(128) == 128 * 4 + 16 + 4


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_every_integer_width_2_to_8_for_weights_and_kv(bits):
    scheme = parse_scheme(f"w{bits}a8kv{bits}-g128")
    assert scheme.weight.bits == scheme.kv.bits == bits and scheme.weight.kind == "int"
    assert scheme.name == f"w{bits}a8kv{bits}-g128"


@pytest.mark.parametrize("bits", [5, 6, 7])
def test_w5_w6_w7_tensor_bytes_by_hand(bits):
    """A 4096 x 11008 matrix in groups of 128: 32 groups per output channel, each an FP16 scale
    and a zero point of the weight's width."""
    scheme = parse_scheme(f"w{bits}a16kv16-g128")
    expected = 4096 * 11008 * bits + 11008 * (4096 // 128) * (16 + bits)
    assert tensor_bits(4096, 11008, scheme, quantized=True) == expected
    assert tensor_bits(4096, 11008, parse_scheme(f"w{bits}a16kv16-g128-sym"), quantized=True) == (
        4096 * 11008 * bits + 11008 * 32 * 16)


def test_tensor_bits_groups_and_channels():
    w4 = parse_scheme("w4a16kv16-g128")
    assert tensor_bits(4096, 11008, w4, quantized=True) == 4096 * 11008 * 4 + 11008 * 32 * 20
    assert tensor_bits(100, 3, w4, quantized=True) == 300 * 4 + 3 * 1 * 20  # one partial group per channel
    per_channel = parse_scheme("w8a8kv8")
    assert tensor_bits(4096, 512, per_channel, quantized=True) == 4096 * 512 * 8 + 512 * (16 + 8)
    assert tensor_bits(4096, 512, w4, quantized=False) == 4096 * 512 * 16


@pytest.mark.parametrize("text, bits, overhead", [
    ("w4a8kv8-g128", 4, 16 + 4),
    ("w3a16kv16-g128", 3, 16 + 3),
    ("w2a16kv16-g64-sym", 2, 16),
    ("wnf4a16kv16-g64", 4, 16),
    ("w16a16kv16", 16, 0),
])
def test_llama_2_7b_weight_bytes_exact(text, bits, overhead):
    """Weight matrices: bits x params / 8 + groups x overhead / 8; vectors 16-bit.

    Matrices of Llama-2-7B: per layer 4 h^2 (Q, K, V, O) + 3 h I (gate, up, down), and the
    embedding table and the LM head, V h each; K of every matrix (4096 or 11008) is a multiple of
    the group size, so groups = params / group. Vectors: 2 norms per layer plus the final one.
    """
    h, inter, layers, vocab = 4096, 11008, 32, 32000
    scheme = parse_scheme(text)
    cfg = load_config("llama-2-7b")
    matrices = layers * (4 * h * h + 3 * h * inter) + 2 * vocab * h
    vectors = (2 * layers + 1) * h
    group = scheme.group_size
    groups = matrices // group if group else 0
    expected = (bits * matrices + groups * overhead + 16 * vectors) / 8
    assert weight_bytes(cfg, scheme) == expected
    assert weight_bits(cfg, scheme) == 8 * expected


def test_embedding_table_and_lm_head_take_the_schemes_format_norms_stay_16_bit():
    """Per channel (no -g): one scale and zero point per row of the embedding table (V rows of h)."""
    cfg = load_config("llama-2-7b")
    tensors = {t.name: t for t in weight_tensors(cfg)}
    assert tensors["lm_head"].quantized and tensors["embed_tokens"].quantized
    assert not tensors["layer.norms"].quantized and not tensors["final_norm"].quantized
    w8 = parse_scheme("w8a8kv8")
    assert tensor_bits(4096, 32000, w8, quantized=True) == 4096 * 32000 * 8 + 32000 * (16 + 8)


def test_tied_embeddings_counted_once():
    names = [t.name for t in weight_tensors(load_config("qwen2-0.5b"))]
    assert "lm_head" not in names and any("tied" in n for n in names)
