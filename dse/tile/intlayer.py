"""An integer-only Llama decoder layer: the golden model of the accelerator tile (issue 14).

One layer of a Llama-architecture :class:`~peforge.models.config.ModelConfig` (RMSNorm, rotary
embedding, grouped-query attention, SiLU-gated MLP; ``models/zoo/tiny-llama.json`` is the tile's
test model) with seeded random INT8 weights, INT8 activations between matrix products and 32-bit
accumulators. Every value is an integer code of a tensor whose real scale is fixed when the layer
is built (static calibration on seeded random inputs), so the arithmetic is integers only: matrix
products and the operators of :mod:`peforge.hw.intops` (plain integer arithmetic, no hardware).

The layer is an explicit list of steps (:class:`Gemm`, :class:`Vector`, :class:`Move`) executed
in order over a dict of named integer tensors (:func:`execute`): a compiler lowers each step to
the tile's commands one by one, and a testbench compares every named tensor. The matrix products
are those of :func:`peforge.models.graph.build_graph`, names and ``M, K, N, count`` alike.

Layouts (row-major everywhere; ``T`` new tokens at positions ``p .. p + T - 1``, ``G`` KV heads
of ``d`` elements, ``r`` query heads per KV head, ``P`` cache positions):

- token-major activations ``[T][width]``; a weight is stored ``[N][K]`` (``[out][in]``);
- query heads grouped per KV head ``[G][r T][d]``, head-major within a group: rows ``j T .. j T +
  T - 1`` of group ``g`` are query head ``h = r g + j``, so head ``h`` uses KV head ``h // r``
  (the graph's GQA product, ``M = r T``);
- the K cache ``[G][P][d]`` and the V cache transposed ``[G][d][P]``: each is the ``[N][K]``
  operand of its product (scores ``Q K^T``, context ``P V``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...hw import intops
from ...models.config import ModelConfig, load_config

__all__ = ["ACT_BITS", "ACC_BITS", "NORM_BITS", "SILU_BITS", "PROB_BITS", "Gemm", "Vector", "Move", "Step",
           "VECTOR_OPS", "MOVE_OPS", "KVCache", "IntLayerConfig", "IntLayer", "execute", "output_bits", "rope_tables"]

ACT_BITS = 8  # activations between matrix products, weights and the KV cache: INT8
ACC_BITS = 32  # matrix product accumulators
NORM_BITS = 12  # fraction bits of x / rms out of i_rmsnorm
SILU_BITS = 12  # fraction bits of the sigmoid inside i_silu
PROB_BITS = 7  # fraction bits of a probability: 2**7 = 128 saturates to 127, so P fits INT8


# --- steps ---------------------------------------------------------------------------------------

def _check_sizes(kind: str, **sizes: int) -> None:
    for name, value in sizes.items():
        if type(value) is not int or value < 1:
            raise ValueError(f"{kind}.{name}: must be an integer >= 1, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class Gemm:
    """``count`` integer matrix products ``out[c] = a[c][:m, :k] @ b_t[c][:n, :k]^T``.

    Parameters
    ----------
    name : str
        The operator of :mod:`peforge.models.graph` it is (``"q_proj"``, ``"attn.score"`` ...).
    a, b_t, out : str
        Named tensors: ``a`` is ``M x K`` (INT8), ``b_t`` is ``N x K`` (INT8: a weight ``[out][in]``
        or a cache), ``out`` the ``M x N`` 32-bit accumulators. With ``count > 1`` each carries a
        leading axis of ``count``; only the leading ``[:m, :k]`` / ``[:n, :k]`` blocks are read.
    m, k, n, count : int
        Product shape, elements, and independent products (one per KV head).
    """

    name: str
    a: str
    b_t: str
    out: str
    m: int
    k: int
    n: int
    count: int = 1

    def __post_init__(self) -> None:
        _check_sizes("Gemm", m=self.m, k=self.k, n=self.n, count=self.count)


@dataclass(frozen=True, kw_only=True)
class Vector:
    """One vector-unit operation, elementwise or by rows, over named tensors.

    Parameters
    ----------
    op : str
        One of :data:`VECTOR_OPS` (each a composition of :mod:`peforge.hw.intops` operators).
    inputs : tuple of str
        Named tensors read, as many as the op takes.
    out : str
        Named tensor written.
    constants : dict
        Integer (and for ``softmax`` / ``silu`` the input scale's) parameters of the op, fixed when
        the layer is built: ``multiplier`` (one int, or a tuple of one per channel of the last axis)
        and ``shift`` of a requantization, the ``bits`` it saturates to, RoPE's ``position``...
    """

    op: str
    inputs: tuple[str, ...]
    out: str
    constants: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in VECTOR_OPS:
            raise ValueError(f"Vector.op: {self.op!r} is not an op; allowed {', '.join(VECTOR_OPS)}")
        arity = VECTOR_OPS[self.op][0]
        if len(self.inputs) != arity:
            raise ValueError(f"Vector.inputs: {self.op} takes {arity} inputs, not {self.inputs!r}")


@dataclass(frozen=True, kw_only=True)
class Move:
    """A change of layout, no arithmetic (the DMA's 2-D transfers, or the vector unit's addressing).

    Parameters
    ----------
    op : str
        One of :data:`MOVE_OPS`: ``split_heads`` (``[T][G r d]`` to ``[G][r T][d]``),
        ``merge_heads`` (back), ``cache_rows`` (``[T][G d]`` into rows ``p ..`` of a ``[G][P][d]``
        cache), ``cache_columns`` (``[T][G d]`` into columns ``p ..`` of a ``[G][d][P]`` cache).
    src, out : str
        Named tensors; the cache moves update ``out`` in place (a copy of it in :func:`execute`).
    constants : dict
        ``kv_heads``, ``group`` (query heads per KV head), ``head_dim``; ``position`` for caches.
    """

    op: str
    src: str
    out: str
    constants: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in MOVE_OPS:
            raise ValueError(f"Move.op: {self.op!r} is not an op; allowed {', '.join(MOVE_OPS)}")


Step = Gemm | Vector | Move


def _saturate(q, bits: int) -> np.ndarray:
    return intops.requantize(q, 1, 0, bits)  # times 1, no shift: only the clip to bits


def _requantize(ins, c):
    return intops.requantize(ins[0], np.asarray(c["multiplier"], dtype=np.int64), c["shift"], c["bits"])


def _rmsnorm(ins, c):
    codes, _ = intops.i_rmsnorm(ins[0], out_bits=NORM_BITS)
    return codes


def _rope(ins, c):
    x, cos, sin = ins
    tokens, width = x.shape
    d, p = c["head_dim"], c["position"]
    rows = slice(p, p + tokens)
    heads = x.reshape(tokens, width // d, d)
    rotated = intops.i_rope(heads, cos[rows, None, :], sin[rows, None, :], c["frac_bits"])
    return _saturate(rotated.reshape(tokens, width), ACT_BITS)


def _causal_softmax(ins, c):
    """Row ``i`` of a group's ``r T`` rows is token ``i % T`` at position ``p + i % T``: it sees
    the first ``p + i % T + 1`` keys; the rest of the row is 0 (a row command of that length)."""
    scores = np.asarray(ins[0], dtype=np.int64)
    tokens, p = c["tokens"], c["position"]
    out = np.zeros_like(scores)
    for t in range(tokens):
        rows, length = slice(t, None, tokens), p + t + 1
        out[:, rows, :length], _ = intops.i_softmax(scores[:, rows, :length], c["scale"], out_bits=PROB_BITS)
    return _saturate(out, ACT_BITS)


def _silu(ins, c):
    codes, _ = intops.i_silu(ins[0], c["scale"], out_bits=SILU_BITS)
    return codes


#: op -> (inputs, function of (inputs, constants)); each one vector-unit operation of the tile.
VECTOR_OPS: dict[str, tuple[int, Callable[[list[np.ndarray], dict[str, Any]], np.ndarray]]] = {
    "requantize": (1, _requantize),  # multiply-and-shift, saturated to bits
    "rmsnorm": (1, _rmsnorm),  # x / rms at NORM_BITS of fraction; the gain goes in the next requantize
    "rope": (3, _rope),  # x, cos table, sin table: i_rope at rows position.., saturated to INT8
    "softmax": (1, _causal_softmax),  # causal rows of i_softmax, saturated to INT8
    "silu": (1, _silu),
    "mul": (2, lambda ins, c: ins[0] * ins[1]),  # SiLU's codes (< 2**19) times INT8: < 2**26, no clip
    "add": (2, lambda ins, c: _saturate(ins[0] + ins[1], c["bits"])),
}


def _split_heads(src, out, c):
    g, r, d = c["kv_heads"], c["group"], c["head_dim"]
    tokens = src.shape[0]
    return src.reshape(tokens, g, r, d).transpose(1, 2, 0, 3).reshape(g, r * tokens, d)


def _merge_heads(src, out, c):
    g, r, d = c["kv_heads"], c["group"], c["head_dim"]
    tokens = src.shape[1] // r
    return src.reshape(g, r, tokens, d).transpose(2, 0, 1, 3).reshape(tokens, g * r * d)


def _cache_rows(src, out, c):
    tokens, p = src.shape[0], c["position"]
    out = out.copy()
    out[:, p:p + tokens, :] = src.reshape(tokens, c["kv_heads"], c["head_dim"]).transpose(1, 0, 2)
    return out


def _cache_columns(src, out, c):
    tokens, p = src.shape[0], c["position"]
    out = out.copy()
    out[:, :, p:p + tokens] = src.reshape(tokens, c["kv_heads"], c["head_dim"]).transpose(1, 2, 0)
    return out


MOVE_OPS: dict[str, Callable[[np.ndarray, Any, dict[str, Any]], np.ndarray]] = {
    "split_heads": _split_heads, "merge_heads": _merge_heads,
    "cache_rows": _cache_rows, "cache_columns": _cache_columns,
}


def _in_bits(array: np.ndarray, bits: int) -> bool:
    return array.size == 0 or (array.min() >= -(1 << (bits - 1)) and array.max() < 1 << (bits - 1))


def _gemm(step: Gemm, a: np.ndarray, b_t: np.ndarray) -> np.ndarray:
    if step.count == 1:
        a, b_t = a[None], b_t[None]
    a, b_t = a[:step.count, :step.m, :step.k], b_t[:step.count, :step.n, :step.k]
    if a.shape != (step.count, step.m, step.k) or b_t.shape != (step.count, step.n, step.k):
        raise ValueError(f"Gemm {step.name}: operands {a.shape} and {b_t.shape} are smaller than "
                         f"count {step.count} x m {step.m}, n {step.n} x k {step.k}")
    if not (_in_bits(a, ACT_BITS) and _in_bits(b_t, ACT_BITS)):
        raise ValueError(f"Gemm {step.name}: operands {step.a!r}, {step.b_t!r} must be INT8 codes")
    acc = np.matmul(a.astype(np.int64), b_t.astype(np.int64).transpose(0, 2, 1))
    if not _in_bits(acc, ACC_BITS):
        raise ValueError(f"Gemm {step.name}: accumulators overflow {ACC_BITS} bits")
    return acc[0] if step.count == 1 else acc


def execute(steps: list[Step], tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``steps`` in order over named integer tensors.

    Parameters
    ----------
    steps : list of Step
    tensors : dict of str to numpy array
        Inputs and constants (weights, tables, caches); not modified.

    Returns
    -------
    dict of str to numpy array
        ``tensors`` plus every step's output (``int64`` arrays of codes), cache moves applied.
    """
    t = dict(tensors)
    for step in steps:
        if isinstance(step, Gemm):
            t[step.out] = _gemm(step, t[step.a], t[step.b_t])
        elif isinstance(step, Vector):
            t[step.out] = VECTOR_OPS[step.op][1]([t[name] for name in step.inputs], step.constants)
        else:
            t[step.out] = MOVE_OPS[step.op](t[step.src], t.get(step.out), step.constants)
    return t


def output_bits(steps: list[Step]) -> dict[str, int]:
    """Signed width, bits, each step's output is stored at (which scratchpad element it takes): 32
    for accumulators and the vector unit's wide intermediates, the ``bits`` a saturating op names,
    INT8 for RoPE and probabilities, the source's for a move."""
    fixed = {"rope": ACT_BITS, "softmax": ACT_BITS, "silu": ACC_BITS, "mul": ACC_BITS}
    bits: dict[str, int] = {}
    for step in steps:
        if isinstance(step, Gemm):
            bits[step.out] = ACC_BITS
        elif isinstance(step, Vector):
            bits[step.out] = step.constants.get("bits", fixed.get(step.op, ACC_BITS))
        else:
            bits[step.out] = bits.get(step.src, ACT_BITS)
    return bits


# --- the layer -----------------------------------------------------------------------------------

def rope_tables(positions: int, head_dim: int, theta: float, frac_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``cos`` and ``sin`` tables ``[positions][head_dim / 2]`` at ``frac_bits`` bits of
    fraction (rounded to nearest), angle ``pos * theta**(-2 i / head_dim)`` (Llama's RoPE)."""
    angles = np.arange(positions)[:, None] * theta ** (-np.arange(0, head_dim, 2) / head_dim)[None, :]
    return (np.round(np.cos(angles) * 2 ** frac_bits).astype(np.int64),
            np.round(np.sin(angles) * 2 ** frac_bits).astype(np.int64))


def _multipliers(reals) -> tuple[int | tuple[int, ...], int]:
    """Fixed-point ``(multiplier, shift)`` of one real, or per-channel multipliers sharing one
    shift (the largest factor's, so it keeps 31 bits and the others as many as their ratio to it
    allows) of an array of them."""
    if np.ndim(reals) == 0:
        return intops.fixed_point(float(reals))
    reals = np.asarray(reals, dtype=float)
    _, shift = intops.fixed_point(float(reals.max()))
    return tuple(int(m) for m in np.round(reals * 2.0 ** shift)), shift


@dataclass(frozen=True)
class KVCache:
    """The INT8 KV cache of one layer: ``k`` is ``[G][P][d]``, ``v_t`` is ``[G][d][P]`` (V
    transposed), ``length`` the positions written (tokens, from 0)."""

    k: np.ndarray
    v_t: np.ndarray
    length: int


@dataclass(frozen=True, kw_only=True)
class IntLayerConfig:
    """What an :class:`IntLayer` is built from.

    Parameters
    ----------
    model : ModelConfig or str
        A Llama-architecture model (zoo name or config); its first layer's shapes are used.
    seed : int
        Seeds the weights, norm gains, embedding table and calibration inputs.
    x_scale : float
        Real scale of the residual stream's INT8 codes, in and out of the layer.
    rope_theta : float
        RoPE base (``rope_theta`` of the config.json; Llama's 10000).
    rope_bits : int
        Fraction bits of the integer cos/sin tables.
    calibration_tokens : int
        Tokens of seeded random input whose float activations set the INT8 scales.
    margin : float
        Each INT8 scale is ``margin * max|activation| / 127`` over the calibration tokens.
    """

    model: ModelConfig | str = "tiny-llama"
    seed: int = 0
    x_scale: float = 2.0 ** -4
    rope_theta: float = 10000.0
    rope_bits: int = 14
    calibration_tokens: int = 256
    margin: float = 1.25

    def __post_init__(self) -> None:
        if isinstance(self.model, str):
            object.__setattr__(self, "model", load_config(self.model))
        cfg = self.model
        llama = (cfg.norm == "rmsnorm" and cfg.gated_mlp and cfg.activation == "silu" and cfg.rotary_dim == cfg.head_dim
                 and not (cfg.is_moe or cfg.parallel_block or cfg.qkv_bias or cfg.out_bias or cfg.mlp_bias
                          or cfg.sliding_window or cfg.learned_positions))
        if not llama:
            raise ValueError(f"IntLayerConfig.model: {cfg.name!r} is not a dense Llama layer (RMSNorm, full RoPE, "
                             f"SiLU gate, no bias, window or MoE)")
        if cfg.head_dim % 2:
            raise ValueError(f"IntLayerConfig.model: head_dim {cfg.head_dim} must be even for RoPE")
        if type(self.seed) is not int:
            raise ValueError(f"IntLayerConfig.seed: must be an integer, not {self.seed!r}")
        for name in ("x_scale", "rope_theta", "margin"):
            if not (isinstance(getattr(self, name), (int, float)) and 0 < getattr(self, name) < math.inf):
                raise ValueError(f"IntLayerConfig.{name}: must be a positive real, not {getattr(self, name)!r}")
        if type(self.rope_bits) is not int or not 1 <= self.rope_bits <= 16:
            raise ValueError(f"IntLayerConfig.rope_bits: allowed integers 1..16, not {self.rope_bits!r}")
        _check_sizes("IntLayerConfig", calibration_tokens=self.calibration_tokens)


def _weight_shapes(cfg: ModelConfig) -> dict[str, tuple[int, int]]:
    """The weight matrices of a layer, stored ``[N][K]``: name -> (rows, columns)."""
    h, q, kv, inter = cfg.hidden_size, cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim, \
        cfg.intermediate_size
    return {"w_q": (q, h), "w_k": (kv, h), "w_v": (kv, h), "w_o": (h, q),
            "w_gate": (inter, h), "w_up": (inter, h), "w_down": (h, inter)}


def _float_rmsnorm(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True))


class IntLayer:
    """One integer decoder layer with seeded INT8 weights and static INT8 activation scales.

    Attributes
    ----------
    config : IntLayerConfig
    weights : dict of str to numpy array
        INT8 codes of each weight ``[N][K]`` (``w_q`` ... ``w_down``) and the embedding table.
    weight_scales : dict of str to numpy array
        Real scale of each weight row (per output channel); the embedding's codes are at ``x_scale``.
    gains : dict of str to numpy array
        Real RMSNorm gains ``attn_norm`` and ``mlp_norm``, per channel.
    scales : dict of str to float
        Real scale of each calibrated INT8 activation (``attn_norm``, ``q`` (also ``q_rot``), ``k``
        (``k_rot``, the K cache), ``v`` (the V cache), ``context``, ``mlp_norm``, ``gate``, ``up``,
        ``mlp_act``) and ``out``, the residual stream's (``x``, ``h``, ``out``).
    constants : dict of str to numpy array
        The named constant tensors the steps read: the weights and the RoPE tables ``rope_cos``,
        ``rope_sin`` ``[max_positions][head_dim / 2]`` at ``rope_bits`` of fraction (``rope_bits +
        2``-bit signed integers: cos 0 is ``2**rope_bits``).
    """

    def __init__(self, config: IntLayerConfig | None = None):
        self.config = config = config or IntLayerConfig()
        cfg = config.model
        rng = np.random.default_rng(config.seed)
        self.weights: dict[str, np.ndarray] = {}
        self.weight_scales: dict[str, np.ndarray] = {}
        for name, (rows, cols) in _weight_shapes(cfg).items():
            real = rng.standard_normal((rows, cols)) / math.sqrt(cols)
            scale = np.abs(real).max(axis=1) / 127  # symmetric, per output channel
            self.weights[name] = np.round(real / scale[:, None]).astype(np.int64)
            self.weight_scales[name] = scale
        self.gains = {name: rng.uniform(0.5, 1.5, cfg.hidden_size) for name in ("attn_norm", "mlp_norm")}
        # a residual stream of about 1.5 rms: 24 codes of x_scale 1/16
        rms_codes = 1.5 / config.x_scale
        self.weights["embed_tokens"] = np.clip(np.round(rng.normal(0, rms_codes, (cfg.vocab_size, cfg.hidden_size))),
                                               -127, 127).astype(np.int64)
        calibration = np.clip(np.round(rng.normal(0, rms_codes, (config.calibration_tokens, cfg.hidden_size))),
                              -127, 127).astype(np.int64)
        self.scales = self._calibrate(calibration)
        cos, sin = rope_tables(cfg.max_positions, cfg.head_dim, config.rope_theta, config.rope_bits)
        self.constants = {**{n: w for n, w in self.weights.items() if n != "embed_tokens"},
                          "rope_cos": cos, "rope_sin": sin}

    def dequantized(self) -> dict[str, np.ndarray]:
        """Real weights ``[N][K]`` (codes times their row scales) and the gains, float64."""
        real = {n: self.weights[n] * self.weight_scales[n][:, None] for n in _weight_shapes(self.config.model)}
        return {**real, **self.gains}

    def _calibrate(self, x_codes: np.ndarray) -> dict[str, float]:
        """INT8 scales from the float activations of ``x_codes``, cut into sequences of at most
        ``max_positions`` tokens."""
        c, length = self.config, self.config.model.max_positions
        peaks: dict[str, float] = {}
        for start in range(0, len(x_codes), length):
            for name, a in self._float_activations(x_codes[start:start + length]).items():
                peaks[name] = max(peaks.get(name, 0.0), float(np.abs(a).max()))
        scales = {name: c.margin * peak / 127 for name, peak in peaks.items()}
        # a context row is a convex combination of V rows: V's scale cannot saturate it, whatever the input
        scales["context"] = scales["v"]
        scales["out"] = c.x_scale
        return scales

    def _float_activations(self, x_codes: np.ndarray) -> dict[str, np.ndarray]:
        """The float64 layer on one sequence, at each tensor quantized to INT8 (q and k before and
        after RoPE): calibration only; the tests keep their own reference."""
        cfg, c = self.config.model, self.config
        w = self.dequantized()
        tokens, d, r = x_codes.shape[0], cfg.head_dim, cfg.kv_group
        cos, sin = (f(np.arange(tokens)[:, None] * c.rope_theta ** (-np.arange(0, d, 2) / d)) for f in (np.cos, np.sin))

        def rope(v):  # rotate-half over heads of d
            heads = v.reshape(tokens, -1, d)
            a, b = heads[..., :d // 2], heads[..., d // 2:]
            return np.concatenate([a * cos[:, None] - b * sin[:, None], b * cos[:, None] + a * sin[:, None]],
                                  axis=-1).reshape(tokens, -1)

        acts: dict[str, np.ndarray] = {}
        x = x_codes * c.x_scale
        acts["attn_norm"] = _float_rmsnorm(x) * w["attn_norm"]
        q, k, acts["v"] = (acts["attn_norm"] @ w[n].T for n in ("w_q", "w_k", "w_v"))
        acts["q"], acts["k"] = np.concatenate([q, rope(q)]), np.concatenate([k, rope(k)])
        qh = rope(q).reshape(tokens, cfg.num_heads, d)
        kh, vh = rope(k).reshape(tokens, cfg.num_kv_heads, d), acts["v"].reshape(tokens, cfg.num_kv_heads, d)
        kv_of_head = np.arange(cfg.num_heads) // r
        scores = np.einsum("thd,shd->hts", qh, kh[:, kv_of_head]) / math.sqrt(d)
        scores = np.where(np.tril(np.ones((tokens, tokens), bool)), scores, -np.inf)
        probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        context = np.einsum("hts,shd->thd", probs, vh[:, kv_of_head])
        h = x + context.reshape(tokens, -1) @ w["w_o"].T
        acts["mlp_norm"] = _float_rmsnorm(h) * w["mlp_norm"]
        acts["gate"], acts["up"] = (acts["mlp_norm"] @ w[n].T for n in ("w_gate", "w_up"))
        acts["mlp_act"] = acts["gate"] / (1 + np.exp(-acts["gate"])) * acts["up"]
        return acts

    # -- the step list --
    def steps(self, tokens: int, position: int) -> list[Step]:
        """The layer for ``tokens`` new tokens at positions ``position ..`` (cache holding
        ``position`` tokens): every step, in order, with its constants."""
        cfg, c, s, ws = self.config.model, self.config, self.scales, self.weight_scales
        _check_sizes("steps", tokens=tokens)
        if type(position) is not int or position < 0 or position + tokens > cfg.max_positions:
            raise ValueError(f"steps: position {position!r} + tokens {tokens} must lie in 0..{cfg.max_positions}")
        h, d, g, r = cfg.hidden_size, cfg.head_dim, cfg.num_kv_heads, cfg.kv_group
        keys, q_width, kv_width, inter = position + tokens, cfg.num_heads * d, g * d, cfg.intermediate_size
        heads = {"kv_heads": g, "group": r, "head_dim": d}

        def requantize(src, out, reals, bits=ACT_BITS):
            multiplier, shift = _multipliers(reals)
            return Vector(op="requantize", inputs=(src,), out=out,
                          constants={"multiplier": multiplier, "shift": shift, "bits": bits})

        def projection(name, a, weight, out, k, n, in_scale, out_scale, bits=ACT_BITS):
            return [Gemm(name=name, a=a, b_t=weight, out=f"{out}_acc", m=tokens, k=k, n=n),
                    requantize(f"{out}_acc", out, in_scale * ws[weight] / out_scale, bits)]

        def norm(src, out):  # the gain, per channel, folded into the requantization's multipliers
            return [Vector(op="rmsnorm", inputs=(src,), out=f"{out}_rms"),
                    requantize(f"{out}_rms", out, self.gains[out] * 2.0 ** -NORM_BITS / s[out])]

        def rope(src, out):
            return Vector(op="rope", inputs=(src, "rope_cos", "rope_sin"), out=out,
                          constants={"head_dim": d, "position": position, "frac_bits": c.rope_bits})

        prob_scale = 2.0 ** -PROB_BITS
        silu_scale = s["gate"] * 2.0 ** -SILU_BITS
        return [
            *norm("x", "attn_norm"),
            *projection("q_proj", "attn_norm", "w_q", "q", h, q_width, s["attn_norm"], s["q"]),
            *projection("k_proj", "attn_norm", "w_k", "k", h, kv_width, s["attn_norm"], s["k"]),
            *projection("v_proj", "attn_norm", "w_v", "v", h, kv_width, s["attn_norm"], s["v"]),
            rope("q", "q_rot"),
            rope("k", "k_rot"),
            Move(op="cache_rows", src="k_rot", out="k_cache", constants={**heads, "position": position}),
            Move(op="cache_columns", src="v", out="v_cache_t", constants={**heads, "position": position}),
            Move(op="split_heads", src="q_rot", out="q_heads", constants=heads),
            Gemm(name="attn.score", a="q_heads", b_t="k_cache", out="scores", m=r * tokens, k=d, n=keys, count=g),
            Vector(op="softmax", inputs=("scores",), out="probs",
                   constants={"scale": s["q"] * s["k"] / math.sqrt(d), "tokens": tokens, "position": position}),
            Gemm(name="attn.context", a="probs", b_t="v_cache_t", out="context_acc", m=r * tokens, k=keys, n=d,
                 count=g),
            requantize("context_acc", "context", prob_scale * s["v"] / s["context"]),
            Move(op="merge_heads", src="context", out="attn", constants=heads),
            # back to the residual stream's scale, 16 bits so only the sum saturates
            *projection("o_proj", "attn", "w_o", "o", q_width, h, s["context"], s["out"], bits=16),
            Vector(op="add", inputs=("x", "o"), out="h", constants={"bits": ACT_BITS}),
            *norm("h", "mlp_norm"),
            *projection("mlp.gate_proj", "mlp_norm", "w_gate", "gate", h, inter, s["mlp_norm"], s["gate"]),
            *projection("mlp.up_proj", "mlp_norm", "w_up", "up", h, inter, s["mlp_norm"], s["up"]),
            Vector(op="silu", inputs=("gate",), out="gate_silu", constants={"scale": s["gate"]}),
            Vector(op="mul", inputs=("gate_silu", "up"), out="gate_up"),
            requantize("gate_up", "mlp_act", silu_scale * s["up"] / s["mlp_act"]),
            *projection("mlp.down_proj", "mlp_act", "w_down", "down", inter, h, s["mlp_act"], s["out"], bits=16),
            Vector(op="add", inputs=("h", "down"), out="out", constants={"bits": ACT_BITS}),
        ]

    # -- running it --
    def empty_cache(self) -> KVCache:
        """A KV cache of ``max_positions`` positions holding none."""
        cfg = self.config.model
        g, d, p = cfg.num_kv_heads, cfg.head_dim, cfg.max_positions
        return KVCache(k=np.zeros((g, p, d), np.int64), v_t=np.zeros((g, d, p), np.int64), length=0)

    def embed(self, tokens) -> np.ndarray:
        """INT8 residual-stream rows ``[T][hidden]`` (scale ``x_scale``) of token ids, from the
        seeded embedding table."""
        ids = np.asarray(tokens)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or ids.size and (
                ids.min() < 0 or ids.max() >= self.config.model.vocab_size):
            raise ValueError(f"embed: tokens must be a 1-D list of ids in 0..{self.config.model.vocab_size - 1}")
        return self.weights["embed_tokens"][ids]

    def execute(self, x, cache: KVCache | None = None) -> dict[str, np.ndarray]:
        """Every named tensor of the layer run on INT8 rows ``x`` ``[T][hidden]`` after ``cache``
        (empty if None): inputs, constants, each step's output, the updated caches."""
        cache = cache or self.empty_cache()
        x = np.asarray(x, dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != self.config.model.hidden_size or not _in_bits(x, ACT_BITS):
            raise ValueError(f"execute: x must be INT8 rows [T][{self.config.model.hidden_size}], not {x.shape}")
        tensors = {**self.constants, "x": x, "k_cache": cache.k, "v_cache_t": cache.v_t}
        return execute(self.steps(x.shape[0], cache.length), tensors)

    def prefill(self, x) -> tuple[np.ndarray, KVCache]:
        """The layer on ``T`` tokens' INT8 rows ``x`` ``[T][hidden]`` from an empty cache: the
        output rows (INT8 at ``x_scale``) and the cache holding the ``T`` tokens."""
        t = self.execute(x)
        return t["out"], KVCache(k=t["k_cache"], v_t=t["v_cache_t"], length=len(t["x"]))

    def decode(self, cache: KVCache, x) -> tuple[np.ndarray, KVCache]:
        """One token's INT8 row ``x`` ``[hidden]`` after ``cache``: its output row and the cache
        with it appended."""
        t = self.execute(np.asarray(x).reshape(1, -1), cache)
        return t["out"][0], KVCache(k=t["k_cache"], v_t=t["v_cache_t"], length=cache.length + 1)
