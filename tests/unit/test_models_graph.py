"""Operator graphs against counts made by hand: MACs and bytes of a tiny model and of Llama-2-7B and
Mixtral (published shapes), KV bytes in L and under GQA, weight bytes, the vectorized summary."""

import dataclasses

import pytest

from peforge.models.config import from_hf_dict, load_config
from peforge.models.graph import KINDS, build_graph


def test_prefill_macs_identity_dense():
    """Prefill MACs = T * P_lin + B * V * h + 2 * n_layers * B * n_heads * S * S * d_head.

    T = B * S tokens each pass through every linear weight of the layers once (P_lin = per-layer
    Q, K, V, O, gate, up, down parameters times the layers); the LM head runs for the last token of
    each sequence (B rows); attention is two dense S x S x d_head products (score, context) per head.
    This is the "2 x params x tokens / 2 plus attention" rule with embeddings and norms left out.
    """
    h, inter, vocab, layers, heads, d_head = 4096, 11008, 32000, 32, 32, 128  # Llama-2-7B
    batch, seq = 2, 300
    tokens = batch * seq
    p_lin = layers * (4 * h * h + 3 * h * inter)
    expected = tokens * p_lin + batch * vocab * h + 2 * layers * batch * heads * seq * seq * d_head
    graph = build_graph(load_config("llama-2-7b"), "prefill", batch=batch, seq=seq)
    assert graph.totals()["macs"] == expected
    # and the rough rule: MACs ~ params x tokens, with the 6.74 B parameters of the Llama 2 model
    # card (within the embedding share and attention, 6 % here)
    assert graph.totals()["macs"] == pytest.approx(6.74e9 * tokens, rel=0.06)


def test_prefill_macs_identity_moe_and_gqa():
    """Mixtral: each token meets k of E experts plus the router; GQA leaves attention MACs per query head.

    MACs = T * n_layers * (2 h^2 + 2 h h_kv + k * 3 h I + h E) + B * V * h + 2 * n_layers * B * heads * S^2 * d.
    """
    h, h_kv, inter, experts, k, vocab, layers, heads, d = 4096, 1024, 14336, 8, 2, 32000, 32, 32, 128
    batch, seq = 3, 7  # 42 expert assignments over 8 experts: uneven, exercises the split
    tokens = batch * seq
    per_token = layers * (2 * h * h + 2 * h * h_kv + k * 3 * h * inter + h * experts)
    expected = tokens * per_token + batch * vocab * h + 2 * layers * batch * heads * seq * seq * d
    graph = build_graph(load_config("mixtral-8x7b"), "prefill", batch=batch, seq=seq)
    assert graph.totals()["macs"] == expected


@pytest.mark.parametrize("name", ["llama-2-7b", "mixtral-8x7b", "opt-6.7b", "gpt2", "qwen2-0.5b"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_every_operator_is_well_formed(name, phase):
    graph = build_graph(load_config(name), phase, batch=3, seq=17 if phase == "prefill" else None, kv_len=40)
    for op in graph.operators:
        assert op.kind in KINDS
        if op.kind == "elementwise":
            assert op.k == 0 and op.macs == 0
        if op.kind in ("gemm", "gemv"):
            assert (op.kind == "gemv") == (op.m == 1)
    layers = {op.layer for op in graph.operators}
    assert layers == set(range(-1, graph.config.num_layers + 1))


# A Llama small enough to count by hand: h = 64, I = 128, 2 layers, 4 query heads and 2 KV heads
# of d = 16 (KV width 32), vocabulary 100, untied LM head; FP16 everywhere (2 bytes an element).
TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "max_position_embeddings": 256}

# Decode, batch B = 2, kv_len 5, so T = 2 new tokens and 6 keys per sequence. Per layer-0 operator:
# (kind, m, k, n, count, MACs, weight bytes, activation bytes, KV bytes). Activation bytes are every
# operand read plus the result written, 2 bytes each; a K/V projection's result goes to the KV cache
# (2 tokens x 2 KV heads x 16 x 2 B = 128 B); score and context each read 2 x 2 x 6 x 16 x 2 = 768 B.
TINY_DECODE_LAYER = [
    ("input_norm", "elementwise", 2, 0, 64, 1, 0, 64 * 2, (128 + 128) * 2, 0),
    ("q_proj", "gemm", 2, 64, 64, 1, 2 * 64 * 64, 64 * 64 * 2, (128 + 128) * 2, 0),  # 8192 MACs
    ("k_proj", "gemm", 2, 64, 32, 1, 2 * 64 * 32, 64 * 32 * 2, 128 * 2, 128),
    ("v_proj", "gemm", 2, 64, 32, 1, 2 * 64 * 32, 64 * 32 * 2, 128 * 2, 128),
    ("rope", "elementwise", 2, 0, (4 + 2) * 16, 1, 0, 0, 2 * 2 * 96 * 2, 0),  # rotate q and k, read + write
    # 2 query heads share a KV head: 2 x 1 queries against 16 x 6 keys, for 2 sequences x 2 KV heads
    ("attn.score", "attention", 2, 16, 6, 4, 4 * 2 * 16 * 6, 0, 4 * (2 * 16 + 2 * 6) * 2, 2 * 2 * 6 * 32),
    ("attn.softmax", "elementwise", 8, 0, 6, 1, 0, 0, 2 * 48 * 2, 0),  # 2 seq x 4 heads rows of 6
    ("attn.context", "attention", 2, 6, 16, 4, 4 * 2 * 6 * 16, 0, 4 * (2 * 6 + 2 * 16) * 2, 2 * 2 * 6 * 32),
    ("o_proj", "gemm", 2, 64, 64, 1, 8192, 8192, 512, 0),
    ("residual_add", "elementwise", 2, 0, 64, 1, 0, 0, 3 * 128 * 2, 0),
    ("post_attention_norm", "elementwise", 2, 0, 64, 1, 0, 128, 512, 0),
    ("mlp.gate_proj", "gemm", 2, 64, 128, 1, 2 * 64 * 128, 64 * 128 * 2, (128 + 256) * 2, 0),  # 16384
    ("mlp.up_proj", "gemm", 2, 64, 128, 1, 16384, 16384, 768, 0),
    ("mlp.silu_mul", "elementwise", 2, 0, 128, 1, 0, 0, 3 * 256 * 2, 0),  # silu(gate) * up
    ("mlp.down_proj", "gemm", 2, 128, 64, 1, 2 * 128 * 64, 128 * 64 * 2, (256 + 128) * 2, 0),
    ("residual_add", "elementwise", 2, 0, 64, 1, 0, 0, 768, 0),
]


def test_tiny_decode_counted_by_hand():
    graph = build_graph(from_hf_dict(TINY, name="tiny"), "decode", batch=2, kv_len=5)
    shown = [(op.name, op.kind, op.m, op.k, op.n, op.count, op.macs, op.weight_bytes, op.act_bytes, op.kv_bytes)
             for op in graph.layer(0)]
    assert shown == TINY_DECODE_LAYER
    assert [op.name for op in graph.layer(-1)] == ["embed_tokens"]  # gathers 2 rows of 64: 256 B
    assert graph.layer(-1)[0].weight_bytes == 2 * 64 * 2
    head = graph.layer(2)[-1]  # the LM head, last token of each sequence: 2 x 64 x 100
    assert (head.name, head.macs, head.weight_bytes) == ("lm_head", 12_800, 12_800)
    totals = graph.totals()
    # per layer 8192 + 2 x 4096 + 2 x 768 + 8192 + 3 x 16384 = 75264 MACs; 2 layers and the head
    assert totals["macs"] == 2 * 75_264 + 12_800 == 163_328
    # per layer 36992 parameters (2 x 4096 + 2 x 2048 + 3 x 8192 + 2 x 64) x 2 B; the embedding
    # gather 256 B, the final norm 128 B and the LM head 12800 B
    assert totals["weight_bytes"] == 2 * 36_992 * 2 + 256 + 128 + 12_800 == 161_152
    assert totals["kv_bytes"] == 2 * (128 + 128 + 768 + 768) == 3584
    assert totals["ops"] == 2 * totals["macs"] + 2 * (512 + 576 + 240 + 128 + 512 + 1280 + 128) + 512


def test_tiny_prefill_counted_by_hand():
    """B = 1, S = 3: every linear weight meets 3 tokens; attention is dense 3 x 3 per head; the LM
    head sees the last token only."""
    graph = build_graph(from_hf_dict(TINY, name="tiny"), "prefill", batch=1, seq=3)
    linear = 3 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128)  # q, o; k, v; gate, up, down: 110592
    attention = 2 * 4 * 3 * 3 * 16  # score and context, 4 heads, 3 queries x 3 keys x 16: 1152
    assert graph.totals()["macs"] == 2 * (linear + attention) + 64 * 100 == 229_888
    assert {op.kind for op in graph.layer(0) if op.name.endswith("_proj")} == {"gemm"}


def _kv(cfg, kv_len, quant="w16a16kv16", batch=4):
    return build_graph(cfg, "decode", batch=batch, kv_len=kv_len, quant=quant).totals()["kv_bytes"]


def test_decode_kv_bytes_linear_in_context():
    """KV bytes = n_layers * B * kv_heads * (2 written + 2 * (L + 1) read) * d_head * bytes per element."""
    cfg = load_config("llama-2-7b")
    values = [_kv(cfg, L) for L in (0, 1, 100, 1000, 4000)]
    per_entry = 32 * 4 * 32 * 128 * 2  # layers x batch x kv_heads x d_head x FP16 bytes
    for L, value in zip((0, 1, 100, 1000, 4000), values):
        assert value == per_entry * (2 + 2 * (L + 1))
    # quantized KV stays linear, per-vector scale and zero included
    q = [_kv(cfg, L, "w4a8kv4-g128") for L in (0, 1000, 2000)]
    assert q[2] - q[1] == q[1] - q[0] == 1000 * 2 * 32 * 4 * 32 * (128 * 4 + 16 + 4) / 8


def test_gqa_cuts_kv_bytes_by_heads_over_kv_heads():
    gqa = load_config("llama-3-8b")  # 32 query heads, 8 KV heads
    mha = dataclasses.replace(gqa, num_kv_heads=gqa.num_heads)
    for L in (0, 511, 4000):
        assert _kv(mha, L) == 4 * _kv(gqa, L)  # 32 / 8
    # attention MACs do not change: every query head still meets every key
    macs = [sum(op.macs for op in build_graph(c, "decode", batch=2, kv_len=999).operators
                if op.kind == "attention") for c in (gqa, mha)]
    assert macs[0] == macs[1]


def test_sliding_window_caps_kv_reads():
    cfg = load_config("mistral-7b")  # window 4096
    assert _kv(cfg, 5000) == _kv(cfg, 8000) == _kv(cfg, 4095)
    assert _kv(cfg, 4094) < _kv(cfg, 4095)


@pytest.mark.parametrize("text, bits, overhead", [
    ("w16a16kv16", 16, 0),
    ("w4a8kv8-g128", 4, 16 + 4),  # FP16 scale and INT4 zero point per group of 128
    ("w3a16kv16-g64-sym", 3, 16),  # symmetric: the scale only
])
def test_decode_weight_bytes_counted_by_hand(text, bits, overhead):
    """Decode reads every weight once, except the embedding table, of which only B rows are gathered.

    Llama-2-7B: h = 4096, I = 11008, V = 32000, 32 layers. Matrices at ``bits`` with one group
    per ``group`` weights (every K divides by 64 and 128): 32 (4 h^2 + 3 h I), the LM head V h,
    and B = 8 gathered embedding rows of h (each row its own groups); 16-bit: the 32 x 2 + 1
    norm vectors of h.
    """
    h, inter, vocab, layers, batch = 4096, 11008, 32000, 32, 8
    matrices = layers * (4 * h * h + 3 * h * inter) + vocab * h + batch * h
    group = {"w16a16kv16": 0, "w4a8kv8-g128": 128, "w3a16kv16-g64-sym": 64}[text]
    groups = matrices // group if group else 0
    vectors = (2 * layers + 1) * h
    expected = (bits * matrices + overhead * groups + 16 * vectors) / 8
    graph = build_graph(load_config("llama-2-7b"), "decode", batch=batch, kv_len=100, quant=text)
    assert graph.totals()["weight_bytes"] == pytest.approx(expected, rel=1e-12)


def test_moe_decode_reads_only_routed_experts():
    cfg = load_config("mixtral-8x7b")
    expert = 3 * 4096 * 14336 * 2  # gate, up, down of h = 4096, I = 14336 at FP16

    def expert_bytes(batch):
        graph = build_graph(cfg, "decode", batch=batch, kv_len=10)
        return sum(op.weight_bytes for op in graph.operators if op.name.startswith("expert."))
    assert expert_bytes(1) == 32 * 2 * expert  # one token meets 2 of 8 experts in each of 32 layers
    assert expert_bytes(64) == 32 * 8 * expert  # 128 assignments reach all 8


def test_summary_rows_reproduce_totals():
    graph = build_graph(load_config("llama-2-70b"), "decode", batch=16, kv_len=2048, quant="w4a8kv8-g128")
    frame = graph.summary()
    assert len(frame) < len(graph.operators) / 20  # 80 alike layers collapse
    totals = graph.totals()
    for col in ("macs", "ops", "weight_bytes", "act_bytes", "kv_bytes"):
        assert (frame[col] * frame["count"]).sum() == pytest.approx(totals[col], rel=1e-12)
    assert set(frame["kind"]) <= set(KINDS)
    assert frame["count"].sum() == sum(op.count for op in graph.operators)


def test_decode_intensity_rises_with_batch():
    cfg = load_config("llama-2-7b")
    values = [build_graph(cfg, "decode", batch=b, kv_len=2048).totals()["intensity"] for b in (1, 16, 64)]
    assert values[0] == pytest.approx(1.0, rel=0.01)  # FP16 GEMV: 2 ops per 2-byte weight
    assert values[0] < values[1] < values[2]


@pytest.mark.parametrize("kwargs, message", [
    (dict(phase="train"), r"phase='train' is not allowed; choose one of prefill, decode"),
    (dict(phase="decode", seq=4), r"seq=4 is not allowed for decode"),
    (dict(phase="decode", batch=0), r"batch=0 is out of range; allowed integers 1..1048576"),
    (dict(phase="prefill", seq=0), r"seq=0 is out of range"),
    (dict(phase="decode", kv_len=-1), r"kv_len=-1 is out of range; allowed integers >= 0"),
    (dict(phase="decode", kv_len=4096), r"kv_len \+ seq = 4097 exceeds the 4096 positions of llama-2-7b"),
    (dict(phase="decode", quant="w4"), r"quantization scheme 'w4' is not of the form"),
])
def test_bad_phase_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_graph(load_config("llama-2-7b"), **kwargs)
