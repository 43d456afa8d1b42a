"""The integer Llama layer (the tile's golden model): against a float64 reference of the same layer
built here from its dequantized weights, prefill then decode against a longer prefill bit for bit,
the GQA head map and causal rows by hand, its GEMMs against the operator graph, its config."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest

from peforge.models.config import load_config
from peforge.models.graph import build_graph
from peforge.dse.tile.intlayer import Gemm, IntLayer, IntLayerConfig, Move, Vector, execute, output_bits

# Error of the output against the float layer, in codes of its INT8 (x_scale = 1/16), measured over
# seeds 0..11 (the slow test's inputs): 32 tokens, max 3.5 and mean 0.79 codes; 128 tokens (every
# position), max 6.1 and mean 0.98. The output's own rounding is 1/2 code; the rest is INT8 activations between the products,
# the integer exp, sqrt and sigmoid, and the 7-bit probabilities, whose step (1/128) grows relative
# to a probability as the context lengthens. Bounds: tokens -> (max, mean).
ERROR_BOUND_CODES = {32: (5.0, 1.0), 128: (7.0, 1.25)}


@pytest.fixture(scope="module")
def layer() -> IntLayer:
    return IntLayer(IntLayerConfig(seed=0))


def float_layer(layer: IntLayer, x_codes: np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """The layer in float64 from its dequantized weights and real gains, written out plainly:
    RMSNorm (no epsilon, as the integer one), Llama's rotate-half RoPE at positions 0.., causal
    softmax attention with query head h on KV head h // (heads / kv heads), SiLU-gated MLP."""
    cfg, w = layer.config.model, layer.dequantized()
    tokens, d = len(x_codes), cfg.head_dim
    x = x_codes * layer.config.x_scale

    def rmsnorm(v, gain):
        return v / np.sqrt((v * v).mean(axis=-1, keepdims=True)) * gain

    def rope(v):
        angle = np.arange(tokens)[:, None] * theta ** (-np.arange(0, d, 2) / d)
        cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        heads = v.reshape(tokens, -1, d)
        a, b = heads[..., :d // 2], heads[..., d // 2:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1).reshape(tokens, -1)

    normed = rmsnorm(x, w["attn_norm"])
    q, k, v = rope(normed @ w["w_q"].T), rope(normed @ w["w_k"].T), normed @ w["w_v"].T
    context = []
    for head in range(cfg.num_heads):
        kv = head // (cfg.num_heads // cfg.num_kv_heads)
        scores = q[:, head * d:(head + 1) * d] @ k[:, kv * d:(kv + 1) * d].T / math.sqrt(d)
        scores[np.triu_indices(tokens, 1)] = -np.inf  # token t sees keys 0..t
        p = np.exp(scores - scores.max(axis=-1, keepdims=True))
        context.append(p / p.sum(axis=-1, keepdims=True) @ v[:, kv * d:(kv + 1) * d])
    h = x + np.concatenate(context, axis=1) @ w["w_o"].T
    normed = rmsnorm(h, w["mlp_norm"])
    gate, up = normed @ w["w_gate"].T, normed @ w["w_up"].T
    return h + (gate / (1 + np.exp(-gate)) * up) @ w["w_down"].T


def check_against_float(seed: int, tokens: int) -> None:
    layer = IntLayer(IntLayerConfig(seed=seed))
    x = layer.embed(np.random.default_rng(100 + seed).integers(0, 256, tokens))
    out, cache = layer.prefill(x)
    error = np.abs(out * layer.config.x_scale - float_layer(layer, x)) / layer.config.x_scale  # codes
    bound_max, bound_mean = ERROR_BOUND_CODES[tokens]
    assert error.max() < bound_max and error.mean() < bound_mean, (error.max(), error.mean())
    assert out.min() >= -128 and out.max() <= 127 and cache.length == tokens


@pytest.mark.parametrize("seed, tokens", [(0, 32), (1, 32), (2, 128)])
def test_integer_layer_within_its_bound_of_float(seed, tokens):
    check_against_float(seed, tokens)


@pytest.mark.slow
@pytest.mark.parametrize("tokens", sorted(ERROR_BOUND_CODES))
@pytest.mark.parametrize("seed", range(12))
def test_integer_layer_within_its_bound_of_float_every_seed(seed, tokens):
    check_against_float(seed, tokens)


def test_prefill_then_decode_equals_the_longer_prefill_bit_for_bit(layer):
    x = layer.embed(np.random.default_rng(3).integers(0, 256, 9))
    _, cache = layer.prefill(x[:6])
    rows = []
    for token in x[6:]:  # three decode steps, each reading the cache the last one wrote
        row, cache = layer.decode(cache, token)
        rows.append(row)
    full, full_cache = layer.prefill(x)
    assert np.array_equal(np.stack(rows), full[6:])
    assert cache.length == full_cache.length == 9
    assert np.array_equal(cache.k, full_cache.k) and np.array_equal(cache.v_t, full_cache.v_t)
    assert not cache.k[:, 9:].any() and not cache.v_t[:, :, 9:].any()  # nothing beyond the tokens
    # a chunked prefill (3 tokens after 6 cached) is the same rows again
    _, cache = layer.prefill(x[:6])
    assert np.array_equal(layer.execute(x[6:], cache)["out"], full[6:])


def test_gqa_head_map_and_causal_rows_by_hand(layer):
    cfg, tokens, d = layer.config.model, 5, layer.config.model.head_dim
    t = layer.execute(layer.embed(np.arange(10, 10 + tokens)))
    group = cfg.num_heads // cfg.num_kv_heads
    for head in range(cfg.num_heads):
        kv, j = divmod(head, group)  # query head h = group * kv + j uses KV head kv = h // group
        q = t["q_rot"][:, head * d:(head + 1) * d]
        k = t["k_rot"][:, kv * d:(kv + 1) * d]
        assert np.array_equal(t["scores"][kv, j * tokens:(j + 1) * tokens], q @ k.T)
        assert np.array_equal(t["k_cache"][kv, :tokens], k)
        assert np.array_equal(t["v_cache_t"][kv, :, :tokens], t["v"][:, kv * d:(kv + 1) * d].T)
        probs = t["probs"][kv, j * tokens:(j + 1) * tokens]
        assert not np.triu(probs, 1).any()  # no weight on a later token
        assert (probs.sum(axis=1) >= 120).all()  # each row ~ 1 at 2**-7 (floors and the 127 clip)
        assert np.array_equal(t["attn"][:, head * d:(head + 1) * d], t["context"][kv, j * tokens:(j + 1) * tokens])
    assert probs[0, 0] == 127  # the first token sees only itself: probability 1, saturated to INT8


def test_rope_rotates_each_token_by_its_own_position(layer):
    # attention only sees relative positions, so a shifted table passes the float comparison: check here
    d = layer.config.model.head_dim
    _, cache = layer.prefill(layer.embed(np.arange(12)))
    for t, position in ((layer.execute(layer.embed(np.arange(4))), 0), (layer.execute(layer.embed([7]), cache), 12)):
        angle = (position + np.arange(len(t["q"])))[:, None] * 10000.0 ** (-np.arange(0, d, 2) / d)
        cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        for name in ("q", "k"):
            heads = t[name].reshape(len(t[name]), -1, d)
            a, b = heads[..., :d // 2], heads[..., d // 2:]
            exact = np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1).reshape(len(t[name]), -1)
            # i_rope's bound at 14 table bits and |x| <= 128: 1/2 + 256 * 2**-15 codes, then the INT8 clip
            assert np.abs(t[f"{name}_rot"] - np.clip(exact, -128, 127)).max() <= 0.5 + 2 ** -7
    assert np.array_equal(layer.execute(layer.embed([5]))["q_rot"], layer.execute(layer.embed([5]))["q"])


@pytest.mark.parametrize("phase, tokens, position", [("prefill", 7, 0), ("prefill", 5, 9), ("decode", 1, 11)])
def test_gemm_shapes_are_the_operator_graph(layer, phase, tokens, position):
    graph = build_graph(load_config("tiny-llama"), phase, seq=tokens if phase == "prefill" else None,
                        kv_len=position, quant="w8a8kv8")
    expected = [(op.name, op.m, op.k, op.n, op.count) for op in graph.layer(0) if op.k]
    steps = layer.steps(tokens, position)
    assert [(s.name, s.m, s.k, s.n, s.count) for s in steps if isinstance(s, Gemm)] == expected
    assert len(expected) == 9  # q, k, v, score, context, o, gate, up, down


def test_every_step_writes_a_new_tensor_or_updates_a_cache(layer):
    written = [s.out for s in layer.steps(4, 0)]
    caches = {"k_cache", "v_cache_t"}
    assert len(written) == len(set(written)) and caches <= set(written)
    read = {name for s in layer.steps(4, 0) for name in
            ((s.a, s.b_t) if isinstance(s, Gemm) else s.inputs if isinstance(s, Vector) else (s.src,))}
    given = set(layer.constants) | {"x"} | caches
    assert read <= given | set(written)  # each input is a constant, the layer's input, or written before


def test_every_tensor_fits_the_width_it_is_stored_at(layer):
    # the vector unit's lanes are 32-bit and the operands of every product INT8: a scale that let a
    # value grow past its width would show here first (SiLU times up is the widest, about 2**26)
    _, cache = layer.prefill(layer.embed(np.arange(20)))
    t = layer.execute(layer.embed([3, 1, 4]), cache)
    bits = output_bits(layer.steps(3, 20))
    assert bits["scores"] == bits["gate_up"] == 32 and bits["probs"] == bits["mlp_act"] == bits["k_cache"] == 8
    for name, width in bits.items():
        assert -(1 << (width - 1)) <= t[name].min() and t[name].max() < 1 << (width - 1), name


def test_tiny_llama_config_loads():
    cfg = load_config("tiny-llama")
    assert (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size,
            cfg.num_layers, cfg.vocab_size) == (64, 4, 2, 16, 176, 1, 256)
    assert (cfg.norm, cfg.activation, cfg.gated_mlp, cfg.rotary_dim) == ("rmsnorm", "silu", True, 16)
    raw = json.loads(resources.files("peforge.models").joinpath("zoo", "tiny-llama.json").read_text())
    assert raw["rope_theta"] == IntLayerConfig().rope_theta == 10000.0


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="not a dense Llama layer"):
        IntLayerConfig(model="gpt2")
    with pytest.raises(ValueError, match="rope_bits"):
        IntLayerConfig(rope_bits=0)
    with pytest.raises(ValueError, match="'exp' is not an op"):
        Vector(op="exp", inputs=("a",), out="b")
    with pytest.raises(ValueError, match="takes 2 inputs"):
        Vector(op="add", inputs=("a",), out="b")
    with pytest.raises(ValueError, match="Gemm.k: must be an integer >= 1"):
        Gemm(name="g", a="a", b_t="b", out="c", m=1, k=0, n=1)
    with pytest.raises(ValueError, match="'transpose' is not an op"):
        Move(op="transpose", src="a", out="b")
    with pytest.raises(ValueError, match="must be INT8 codes"):
        execute([Gemm(name="g", a="a", b_t="b", out="c", m=1, k=1, n=1)],
                {"a": np.array([[200]]), "b": np.array([[1]])})
    layer = IntLayer()
    with pytest.raises(ValueError, match="position 120"):
        layer.steps(9, 120)
