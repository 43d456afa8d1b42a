"""Operator graphs: MAC identities, KV bytes in L and under GQA, weight bytes, the vectorized summary."""

import dataclasses

import pytest

from peforge.models.config import load_config
from peforge.models.graph import KINDS, build_graph
from peforge.models.quant import parse_scheme
from peforge.models.weights import weight_bytes


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
    # and the rough rule: MACs ~ params x tokens (within the embedding share and attention)
    assert graph.totals()["macs"] == pytest.approx(graph.config.params * tokens, rel=0.06)


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
def test_every_operator_is_consistent(name, phase):
    graph = build_graph(load_config(name), phase, batch=3, seq=17 if phase == "prefill" else None, kv_len=40)
    for op in graph.operators:
        assert op.kind in KINDS
        assert op.macs == op.count * op.m * op.k * op.n
        if op.kind == "elementwise":
            assert op.k == 0 and op.macs == 0
        else:
            assert op.ops == 2 * op.macs
        if op.kind in ("gemm", "gemv"):
            assert (op.kind == "gemv") == (op.m == 1)
    layers = {op.layer for op in graph.operators}
    assert layers == set(range(-1, graph.config.num_layers + 1))


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
    ratio = gqa.num_heads // gqa.num_kv_heads
    for L in (0, 511, 4000):
        assert _kv(mha, L) == ratio * _kv(gqa, L)
    # attention MACs do not change: every query head still meets every key
    macs = [sum(op.macs for op in build_graph(c, "decode", batch=2, kv_len=999).operators
                if op.kind == "attention") for c in (gqa, mha)]
    assert macs[0] == macs[1]


def test_sliding_window_caps_kv_reads():
    cfg = load_config("mistral-7b")  # window 4096
    assert _kv(cfg, 5000) == _kv(cfg, 8000) == _kv(cfg, 4095)
    assert _kv(cfg, 4094) < _kv(cfg, 4095)


def test_decode_weight_bytes_match_the_model_inventory():
    """Decode reads every weight once, except the embedding table, of which only B rows are gathered."""
    cfg = load_config("llama-2-7b")
    batch = 8
    for text in ("w16a16kv16", "w4a8kv8-g128", "w3a16kv16-g64-sym"):
        graph = build_graph(cfg, "decode", batch=batch, kv_len=100, quant=text)
        table = cfg.vocab_size * cfg.hidden_size * 2
        expected = weight_bytes(cfg, parse_scheme(text)) - table + batch * cfg.hidden_size * 2
        assert graph.totals()["weight_bytes"] == pytest.approx(expected, rel=1e-12)


def test_moe_decode_reads_only_routed_experts():
    cfg = load_config("mixtral-8x7b")
    expert = 3 * cfg.hidden_size * cfg.intermediate_size * 2  # gate, up, down at FP16
    def expert_bytes(batch):
        graph = build_graph(cfg, "decode", batch=batch, kv_len=10)
        return sum(op.weight_bytes for op in graph.operators if op.name.startswith("expert."))
    assert expert_bytes(1) == cfg.num_layers * 2 * expert
    assert expert_bytes(64) == cfg.num_layers * 8 * expert


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
    (dict(phase="decode", batch=0), r"batch=0 is out of range; allowed integers >= 1"),
    (dict(phase="prefill", seq=0), r"seq=0 is out of range"),
    (dict(phase="decode", kv_len=-1), r"kv_len=-1 is out of range; allowed integers >= 0"),
    (dict(phase="decode", kv_len=4096), r"kv_len \+ seq = 4097 exceeds the 4096 positions of llama-2-7b"),
    (dict(phase="decode", quant="w4"), r"quantization scheme 'w4' is not of the form"),
])
def test_bad_phase_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_graph(load_config("llama-2-7b"), **kwargs)
