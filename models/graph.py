"""Operator graph of one forward step: every operator of every layer, with shapes, MACs and bytes.

A step processes ``batch`` sequences, each adding ``seq`` new tokens on top of
``kv_len`` tokens already in its KV cache. Prefill is ``seq = S`` (``kv_len`` > 0
is a chunked prefill or a cached prefix); decode is ``seq = 1``.

Conventions (what a cost model may rely on):

- An operator is ``count`` independent products of an ``M x K`` by a ``K x N``
  matrix; ``macs == count * M * K * N``. Elementwise operators have ``K == 0``,
  ``macs == 0`` and a nominal ``ops`` per element (see ``_EW_OPS``).
- ``ops`` is 2 per MAC (multiply and add) plus elementwise operations;
  arithmetic intensity is ``ops / bytes``.
- Weight bytes: each weight read once per step (the batch shares it); an
  embedding gather reads only the rows it uses. Formats as in
  :mod:`peforge.models.weights`: every weight matrix (projections, MLP and experts,
  router, LM head, embedding and position tables, ``project_in``/``project_out``) at the
  scheme's weight format with its group overhead, every vector (norms, biases) at 16
  bits. So every matrix product with weights is stored and computed at the scheme's
  weight format: a cost model may price all of them at ``quant.weight``. Activation bytes: every
  activation operand read and every result written, at the activation format.
  KV bytes: K/V projections write the new entries; attention reads every key
  and value it attends to from the cache.
- Attention is counted dense: each of the ``seq`` queries meets all
  ``kv_len + seq`` keys (the causal mask's upper triangle included, as a dense
  score GEMM computes it), capped by a sliding window if the model has one.
- Attention is GQA-aware: the ``num_heads / num_kv_heads`` query heads that share a
  KV head form one product (``M = group * seq``), so K and V are read once per KV head.
- The LM head runs on the last token of each sequence only (as serving engines do).
- MoE: a token goes to ``experts_per_token`` experts; routing is taken as balanced,
  so ``min(num_experts, tokens * experts_per_token)`` experts are read.

Nothing here knows about hardware.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import ModelConfig
from .quant import DEFAULT_SCHEME, QuantScheme, parse_scheme, tensor_bits

if TYPE_CHECKING:
    import pandas

__all__ = ["Operator", "Graph", "KINDS", "PHASES", "build_graph", "cached_tokens", "kv_cache_bytes", "kv_token_bytes"]

KINDS = ("gemm", "gemv", "attention", "elementwise")
PHASES = ("prefill", "decode")

# Nominal arithmetic operations per output element of elementwise operators.
# Why these: square+sum+scale+weight for RMSNorm, plus mean/sub/bias for LayerNorm;
# max+sub+exp+sum+div for softmax; rotate = 2 mul + 1 add; SiLU ~ exp, add, div, mul.
_EW_OPS = {"rmsnorm": 4, "layernorm": 7, "softmax": 5, "rope": 3, "add": 1,
           "silu": 4, "gelu": 8, "gelu_new": 8, "gelu_pytorch_tanh": 8, "relu": 1, "mul": 1,
           "gather": 0}


@dataclass(frozen=True, slots=True)
class Operator:
    """One operator of the step.

    Parameters
    ----------
    layer : int
        Decoder layer index; -1 before the layers (embedding), ``num_layers`` after (LM head).
    name : str
        What it computes, e.g. ``"q_proj"``, ``"attn.score"``.
    kind : str
        ``"gemm"``, ``"gemv"`` (M == 1), ``"attention"`` (score or context, operands
        from the KV cache) or ``"elementwise"``.
    m, k, n : int
        Product shape ``(M x K) @ (K x N)``, elements; elementwise: ``M`` rows of ``N``, ``K == 0``.
    count : int
        Independent products of that shape (KV heads x sequences, or experts).
    macs : int
        Multiply-accumulates, all ``count`` products.
    ops : int
        Arithmetic operations: ``2 * macs`` plus elementwise operations.
    weight_bytes, act_bytes, kv_bytes : float
        Bytes of weights read, activations read and written, and KV cache read or written.
    vector : str
        The vector unit's work as the accelerator tile lowers it (the kinds of
        :data:`peforge.dse.tile.vector_lowering.VECTOR_KINDS`; ``""``: none, or no lowering): an
        elementwise operator's op, a product's requantization epilogue.
    vector_a, vector_b : int
        The lowering's figures: softmax's new tokens per sequence (causal rows); RoPE's rotated
        head dim and the width of q's part; a cache write's head dim; the context's query heads
        per KV head.
    move : str
        The tile's DMA-only move of the operator's output (the kinds of
        :data:`peforge.dse.tile.operator_program.MOVES`; ``""``: none): the new K rows into the
        cache (``cache_rows``), V's transposed columns (``cache_columns``), the rotated queries
        split into heads (``split_heads``), the context's heads merged (``merge_heads``).
    """

    layer: int
    name: str
    kind: str
    m: int
    k: int
    n: int
    count: int
    macs: int
    ops: int
    weight_bytes: float
    act_bytes: float
    kv_bytes: float
    vector: str = ""
    vector_a: int = 0
    vector_b: int = 0
    move: str = ""

    @property
    def bytes(self) -> float:
        """All bytes moved."""
        return self.weight_bytes + self.act_bytes + self.kv_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, operations per byte."""
        return self.ops / self.bytes if self.bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, kw_only=True)
class Graph:
    """The operators of one forward step of ``config``.

    Parameters
    ----------
    config : ModelConfig
    phase : str
        ``"prefill"`` or ``"decode"``.
    batch : int
        Sequences in the step.
    seq : int
        New tokens per sequence (1 for decode).
    kv_len : int
        Tokens already in each sequence's KV cache.
    quant : QuantScheme
    operators : tuple of Operator
        In execution order: embedding, then layer 0, 1, ..., then the LM head.
    """

    config: ModelConfig
    phase: str
    batch: int
    seq: int
    kv_len: int
    quant: QuantScheme
    operators: tuple[Operator, ...]

    @property
    def tokens(self) -> int:
        """New tokens in the step, all sequences."""
        return self.batch * self.seq

    def layer(self, index: int) -> list[Operator]:
        """Operators of one layer (-1: before the layers, ``num_layers``: after)."""
        return [op for op in self.operators if op.layer == index]

    def totals(self) -> dict[str, float]:
        """Sums over all operators: macs, ops, weight/act/kv bytes, bytes, intensity (ops/byte)."""
        return _total(self.operators)

    def by_kind(self) -> dict[str, dict[str, float]]:
        """:meth:`totals` per operator kind, kinds in :data:`KINDS` order, absent kinds left out."""
        return {kind: _total(ops) for kind in KINDS
                if (ops := [op for op in self.operators if op.kind == kind])}

    def summary(self) -> pandas.DataFrame:
        """One row per unique operator shape with the number of times it occurs.

        Columns ``kind, m, k, n`` and per-product ``macs, ops, weight_bytes,
        act_bytes, kv_bytes`` (one ``M x K x N`` product), ``count`` (products
        in the whole step) and ``names``. Summing ``column * count`` over rows
        gives :meth:`totals`; a cost model evaluates each row once.
        """
        import numpy as np
        import pandas as pd  # lazy: the CLI does not need it

        frame = pd.DataFrame([op.as_dict() for op in self.operators])
        count = frame["count"].to_numpy()
        for col in ("macs", "ops", "weight_bytes", "act_bytes", "kv_bytes"):
            frame[col] = frame[col].to_numpy() / count  # per product
        frame["macs"] = frame["macs"].round().astype(np.int64)
        frame["ops"] = frame["ops"].round().astype(np.int64)
        keys = ["kind", "m", "k", "n", "macs", "ops", "weight_bytes", "act_bytes", "kv_bytes"]
        grouped = frame.groupby(keys, sort=False).agg(
            count=("count", "sum"), names=("name", lambda s: ",".join(dict.fromkeys(s))))
        return grouped.reset_index()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: phase, totals, per kind, and one layer's operators."""
        cfg = self.config
        return {
            "model": cfg.name, "params": cfg.params, "active_params": cfg.active_params,
            "phase": self.phase, "batch": self.batch, "seq": self.seq, "kv_len": self.kv_len,
            "quant": self.quant.name, "num_layers": cfg.num_layers,
            "totals": self.totals(), "by_kind": self.by_kind(),
            "before_layers": [op.as_dict() for op in self.layer(-1)],
            "layer": [op.as_dict() for op in self.layer(0)],
            "after_layers": [op.as_dict() for op in self.layer(cfg.num_layers)],
        }


def _total(ops: list[Operator] | tuple[Operator, ...]) -> dict[str, float]:
    out = {"macs": sum(op.macs for op in ops), "ops": sum(op.ops for op in ops),
           "weight_bytes": sum(op.weight_bytes for op in ops), "act_bytes": sum(op.act_bytes for op in ops),
           "kv_bytes": sum(op.kv_bytes for op in ops)}
    out["bytes"] = out["weight_bytes"] + out["act_bytes"] + out["kv_bytes"]
    out["intensity"] = out["ops"] / out["bytes"] if out["bytes"] else 0.0
    return out


class _Builder:
    """Emits operators for one step; the byte rules live here once."""

    def __init__(self, cfg: ModelConfig, quant: QuantScheme):
        self.cfg = cfg
        self.q = quant
        self.a = quant.activation.bits / 8  # bytes per activation element
        self.ops: list[Operator] = []

    def weights(self, k: int, n: int, *, bias: bool = False) -> float:
        """Bytes of one K x N weight matrix at the scheme's weight format (groups along K), plus a
        16-bit bias of N; ``n`` gathered embedding rows of ``k`` are the same bytes."""
        return (tensor_bits(k, n, self.q, quantized=True) + (16 * n if bias else 0)) / 8

    def matmul(self, layer: int, name: str, m: int, k: int, n: int, *, count: int = 1,
               weight: float = 0.0, out_to_kv: float = 0.0, vector: str = "", vector_a: int = 0,
               move: str = "") -> None:
        """A product with weights (or none); ``out_to_kv`` bytes go to the KV cache instead of activations;
        ``vector``: its epilogue on the vector unit; ``move``, ``vector_a``: the tile's move after it
        (:class:`Operator`)."""
        macs = count * m * k * n
        act = self.a * count * m * k + (0.0 if out_to_kv else self.a * count * m * n)
        self.ops.append(Operator(layer, name, "gemv" if m == 1 else "gemm", m, k, n, count, macs, 2 * macs,
                                 count * weight, act, out_to_kv, vector, vector_a, 0, move))

    def attention(self, layer: int, name: str, m: int, k: int, n: int, count: int, kv: float,
                  vector: str = "", vector_a: int = 0, move: str = "") -> None:
        """Score or context: one operand from the KV cache, the other an activation; ``vector``: the
        epilogue (the context's requantization; the scores go to the softmax as they are)."""
        macs = count * m * k * n
        act = self.a * count * (m * k + m * n)
        self.ops.append(Operator(layer, name, "attention", m, k, n, count, macs, 2 * macs, 0.0, act, kv, vector,
                                 vector_a, 0, move))

    def elementwise(self, layer: int, name: str, rows: int, width: int, op: str, *, inputs: int = 1,
                    weight: float = 0.0, extra_ops: int = 0, vector: str = "", vector_a: int = 0,
                    vector_b: int = 0, move: str = "") -> None:
        """``inputs`` operands of rows x width read, one written; ``extra_ops`` more per element;
        ``vector``, ``vector_a``, ``vector_b``: the tile's lowering (:class:`Operator`)."""
        elems = rows * width
        self.ops.append(Operator(layer, name, "elementwise", rows, 0, width, 1, 0,
                                 (_EW_OPS[op] + extra_ops) * elems, float(weight), self.a * elems * (inputs + 1),
                                 0.0, vector, vector_a, vector_b, move))

    def norm(self, layer: int, name: str, rows: int) -> None:
        cfg = self.cfg
        vectors = 2 if cfg.norm == "layernorm" else 1
        self.elementwise(layer, name, rows, cfg.hidden_size, cfg.norm, weight=vectors * cfg.hidden_size * 2,
                         vector="rmsnorm" if cfg.norm == "rmsnorm" else "")


def kv_token_bytes(cfg: ModelConfig, quant: QuantScheme) -> float:
    """Bytes of one token's K (or V) entries in one layer: every KV head's vector at the KV
    format, group overhead included (the unit of every KV read and write below)."""
    return cfg.num_kv_heads * quant.kv_vector_bits(cfg.head_dim) / 8


def cached_tokens(cfg: ModelConfig, context: int) -> int:
    """Tokens a sequence of ``context`` positions keeps in its KV cache: all of them, or the
    sliding window's (a rolling buffer drops older entries)."""
    return min(context, cfg.sliding_window) if cfg.sliding_window else context


def kv_cache_bytes(cfg: ModelConfig, quant: QuantScheme, context: int) -> float:
    """KV cache of one sequence of ``context`` positions, bytes: K and V of every layer for
    each cached token (:func:`cached_tokens`)."""
    return 2 * cfg.num_layers * cached_tokens(cfg, context) * kv_token_bytes(cfg, quant)


def _layer(b: _Builder, batch: int, seq: int, keys: int) -> None:
    """Operators of decoder layer 0 (all layers are alike)."""
    cfg, q = b.cfg, b.q
    h, hd, tokens = cfg.hidden_size, cfg.head_dim, batch * seq
    q_width, kv_width = cfg.num_heads * hd, cfg.num_kv_heads * hd
    kv_written = tokens * kv_token_bytes(cfg, q)
    kv_read = batch * keys * kv_token_bytes(cfg, q)

    b.norm(0, "input_norm", tokens)
    b.matmul(0, "q_proj", tokens, h, q_width, weight=b.weights(h, q_width, bias=cfg.qkv_bias), vector="requantize")
    b.matmul(0, "k_proj", tokens, h, kv_width, weight=b.weights(h, kv_width, bias=cfg.qkv_bias),
             out_to_kv=kv_written, vector="requantize", vector_a=hd, move="cache_rows")
    b.matmul(0, "v_proj", tokens, h, kv_width, weight=b.weights(h, kv_width, bias=cfg.qkv_bias),
             out_to_kv=kv_written, vector="requantize", vector_a=hd, move="cache_columns")
    if cfg.rotary_dim:
        b.elementwise(0, "rope", tokens, (cfg.num_heads + cfg.num_kv_heads) * cfg.rotary_dim, "rope",
                      vector="rope" if cfg.rotary_dim == hd else "", vector_a=hd, vector_b=q_width,
                      move="split_heads")
    group_rows = cfg.kv_group * seq  # query rows sharing one KV head
    heads = batch * cfg.num_kv_heads
    b.attention(0, "attn.score", group_rows, hd, keys, heads, kv_read)
    # the tile's softmax is causal over every cached key (no rolling window)
    causal = "" if cfg.sliding_window else "softmax"
    b.elementwise(0, "attn.softmax", batch * cfg.num_heads * seq, keys, "softmax", vector=causal, vector_a=seq)
    b.attention(0, "attn.context", group_rows, keys, hd, heads, kv_read, vector="requantize_scalar",
                vector_a=cfg.kv_group, move="merge_heads")
    # 16 bits out: the residual add saturates, not the projection
    b.matmul(0, "o_proj", tokens, q_width, h, weight=b.weights(q_width, h, bias=cfg.out_bias), vector="requantize16")
    if not cfg.parallel_block:
        b.elementwise(0, "residual_add", tokens, h, "add", inputs=2, vector="add")
        b.norm(0, "post_attention_norm", tokens)
    _mlp(b, tokens)
    # parallel block: attention out + MLP out + residual in one pass
    b.elementwise(0, "residual_add", tokens, h, "add", inputs=3 if cfg.parallel_block else 2,
                  vector="" if cfg.parallel_block else "add")


def _mlp(b: _Builder, tokens: int) -> None:
    cfg = b.cfg
    h, inter = cfg.hidden_size, cfg.intermediate_size
    act = cfg.activation
    if not cfg.is_moe:
        groups = [("mlp", tokens, 1)]
    else:
        experts = cfg.num_experts
        b.matmul(0, "router", tokens, h, experts, weight=b.weights(h, experts))
        b.elementwise(0, "router.topk", tokens, experts, "softmax")
        # balanced routing: assignments spread as evenly as possible over the experts they reach
        assigned = tokens * cfg.experts_per_token
        used = min(experts, assigned)
        base, extra = divmod(assigned, used)
        groups = [("expert", m, c) for m, c in ((base + 1, extra), (base, used - extra)) if c]
    for prefix, m, count in groups:
        w_up = b.weights(h, inter, bias=cfg.mlp_bias)
        if cfg.gated_mlp:
            b.matmul(0, f"{prefix}.gate_proj", m, h, inter, count=count, weight=w_up, vector="requantize")
        b.matmul(0, f"{prefix}.up_proj", m, h, inter, count=count, weight=w_up, vector="requantize")
        if cfg.gated_mlp:  # act(gate) * up: both read, one written
            b.elementwise(0, f"{prefix}.{act}_mul", m * count, inter, act, inputs=2, extra_ops=1,
                          vector="silu_mul" if act == "silu" else "")
        else:
            b.elementwise(0, f"{prefix}.{act}", m * count, inter, act)
        b.matmul(0, f"{prefix}.down_proj", m, inter, h, count=count, weight=b.weights(inter, h, bias=cfg.mlp_bias),
                 vector="requantize16")
    if cfg.is_moe:  # weighted sum of each token's expert outputs
        b.elementwise(0, "expert.combine", tokens, h, "add", inputs=cfg.experts_per_token,
                      extra_ops=2 * cfg.experts_per_token - 1)


# Sequences in one step: far beyond any served batch (thousands), small enough that sizes stay exact.
MAX_BATCH = 1 << 20


def _check_positive(name: str, value: Any, low: int, high: int | None = None) -> None:
    if type(value) is not int or value < low or (high is not None and value > high):
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value!r} is out of range; allowed integers {allowed}")


def build_graph(config: ModelConfig, phase: str, *, batch: int = 1, seq: int | None = None, kv_len: int = 0,
                quant: QuantScheme | str = DEFAULT_SCHEME) -> Graph:
    """Operators of one forward step.

    Parameters
    ----------
    config : ModelConfig
    phase : str
        ``"prefill"`` or ``"decode"``.
    batch : int
        Sequences processed together.
    seq : int, optional
        Prefill: new tokens per sequence (default 512). Decode: must be None or 1.
    kv_len : int
        Tokens already cached per sequence (decode: the context so far).
    quant : QuantScheme or str
        Formats; a string is parsed with :func:`~peforge.models.quant.parse_scheme`.

    Raises
    ------
    ValueError
        Unknown phase, non-positive sizes, or a context longer than the model's maximum.
    """
    if phase not in PHASES:
        raise ValueError(f"phase={phase!r} is not allowed; choose one of {', '.join(PHASES)}")
    if phase == "decode":
        if seq not in (None, 1):
            raise ValueError(f"seq={seq!r} is not allowed for decode, which adds 1 token per sequence; "
                             f"use phase prefill for more")
        seq = 1
    elif seq is None:
        seq = 512
    _check_positive("batch", batch, 1, MAX_BATCH)
    _check_positive("seq", seq, 1)
    _check_positive("kv_len", kv_len, 0)
    if kv_len + seq > config.max_positions:
        raise ValueError(f"kv_len + seq = {kv_len + seq} exceeds the {config.max_positions} positions "
                         f"of {config.name}; allowed kv_len + seq <= {config.max_positions}")
    scheme = parse_scheme(quant) if isinstance(quant, str) else quant

    b = _Builder(config, scheme)
    cfg, tokens = config, batch * seq
    keys = cached_tokens(cfg, kv_len + seq)

    b.elementwise(-1, "embed_tokens", tokens, cfg.embed_dim, "gather", inputs=0,
                  weight=b.weights(cfg.embed_dim, tokens))
    if cfg.embed_dim != cfg.hidden_size:
        b.matmul(-1, "project_in", tokens, cfg.embed_dim, cfg.hidden_size,
                 weight=b.weights(cfg.embed_dim, cfg.hidden_size))
    if cfg.learned_positions:
        b.elementwise(-1, "add_positions", tokens, cfg.hidden_size, "add", weight=b.weights(cfg.hidden_size, tokens))

    first = len(b.ops)
    _layer(b, batch, seq, keys)
    template = b.ops[first:]
    del b.ops[first:]
    for index in range(cfg.num_layers):
        b.ops += [dataclasses.replace(op, layer=index) for op in template] if index else template

    # only the last token of each sequence needs logits
    end = cfg.num_layers
    if cfg.final_norm:
        b.norm(end, "final_norm", batch)
    if cfg.embed_dim != cfg.hidden_size:
        b.matmul(end, "project_out", batch, cfg.hidden_size, cfg.embed_dim,
                 weight=b.weights(cfg.hidden_size, cfg.embed_dim))
    b.matmul(end, "lm_head", batch, cfg.embed_dim, cfg.vocab_size,
             weight=b.weights(cfg.embed_dim, cfg.vocab_size, bias=cfg.lm_head_bias))
    return Graph(config=config, phase=phase, batch=batch, seq=seq, kv_len=kv_len, quant=scheme,
                 operators=tuple(b.ops))
