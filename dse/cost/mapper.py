"""The mapper: for every matrix operator and design, the legal mapping that takes least time
(ties: least energy), searched for all designs and operators at once.

A mapping has two halves, chosen together because time is ``max(compute, DRAM)`` with double
buffering and ``compute + DRAM`` without.

**Spread** (compute). An operator is ``P`` independent products per layer (heads x sequences
for attention, experts for MoE, else 1) of ``M x K @ K x N``; layers run one after another.
The declared choices: *side by side* (``g = min(P, arrays)`` products at a time, in
``ceil(P / g)`` rounds, each product on ``s = floor(arrays / g)`` arrays) or *one at a time*
(each product on all arrays, ``P`` rounds); the ``s`` arrays of a product split one of M, N or
K, or two ways, N and M or N and K (many small arrays need both; :func:`two_way` says how the
arrays are shared). A K split into ``p`` parts leaves ``p`` partial sums per output that the
vector unit adds (``(p - 1) M N`` additions, each a 32-bit read and write of the output buffer
and one vector op, after the arrays). Each array's share runs with the RTL array's exact cycle
formula.

**Tiling** (DRAM). The products in flight share the SRAM buffers equally. Tiles are powers of
two or a whole dimension (``Tm x Tn`` outputs; K in blocks of at least one array fold,
``min(K, rows x lanes)``); partial sums of a K-blocked tile stay in the output buffer (32-bit),
so the output tile is stationary. Tiles are double-buffered (each buffer holds two) or, for
larger tiles, single-buffered, which serializes transfer and compute. Of the loop orders, the
activation row block may stay resident across all weight tiles (weights re-read once per row
block), or the weight column block across all activation tiles, or neither (both re-read: the
K-blocked output-stationary tiling). When all of an operator's activation operands and results
fit in the activation and output buffers they never leave the chip (the next operator finds
them there): only the weights (or KV cache) stream. A test enumerates this space by brute force.

**Fused attention** (a design option, ``compute.fused_attention``): the score, softmax and
context of a head stay on chip (FlashAttention-style): query tiles of ``Tq`` rows in the
activation buffer, key and value tiles of the array's columns in the weight buffer, scores and
the output accumulator in the output buffer; K and V are read once per query tile, scores
never reach DRAM; the online softmax rescales the output accumulator once per key tile (one
vector op per element). Taken where it is faster than the unfused mapping.

The array's dataflow is the design's (the RTL array is weight- or output-stationary, not
both), so there is no per-operator dataflow choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import arith
from .array import ArrayShape, gemm_cycles

PSUM_BYTES = 4  # partial sums are 32-bit words in the output buffer and between arrays
SPLITS = ("M", "N", "K", "MN", "KN")  # the dimensions a product's arrays split
# spread candidates: (side by side?, split dimension)
CANDIDATES = tuple((side, dim) for side in (True, False) for dim in SPLITS)
FAMILIES = ("on chip", "activations resident", "weights resident", "K-blocked", "fused attention")
ON_CHIP, ACT_RESIDENT, WEIGHT_RESIDENT, K_BLOCKED, FUSED = range(len(FAMILIES))


def pow2_tile(limit, dim):
    """The largest tile of a ``dim``-long dimension that is a power of two or ``dim`` itself and
    at most ``limit`` (0 where not even 1 fits)."""
    limit = np.asarray(limit, dtype=np.float64)
    _, exponent = np.frexp(limit)  # limit = mantissa x 2**exponent, mantissa in [0.5, 1)
    p2 = np.ldexp(1.0, exponent - 1)
    return np.where(limit >= dim, dim, np.where(limit >= 1, p2, 0.0))


def ceil_div(a, b):
    """:func:`peforge.arith.ceil_div` with divisors of at least 1: an illegal tile's 0 counts as 1,
    its cost is discarded anyway."""
    return arith.ceil_div(a, np.maximum(b, 1))


@dataclass(frozen=True)
class Tiling:
    """DRAM bytes per product of the best legal tiling, for one buffer share and buffering."""

    bytes: np.ndarray
    family: np.ndarray  # index into FAMILIES
    tile_m: np.ndarray
    tile_n: np.ndarray


def tile(m, k, n, A, B, C, a, b, act_buf, weight_buf, out_buf, fold_k, db, *, on_chip_ok) -> Tiling:
    """The least-traffic tiling of one ``m x k @ k x n`` product whose activation operand, weight
    (or K / V) operand and result are ``A``, ``B`` and ``C`` bytes (``a`` and ``b`` bytes per
    operand element), with buffers of ``act_buf``, ``weight_buf``, ``out_buf`` bytes (the
    product's share) and ``db`` copies of each tile (2: double-buffered). ``on_chip_ok``: the
    activation operand and result fit on chip, so they never go to DRAM.

    Everything broadcasts; the result has the broadcast shape."""
    m = np.atleast_1d(m)  # scalars too come back as arrays
    k = np.maximum(k, 1)  # elementwise rows (K = 0) come along in the arrays; their result is unused
    fold_k = np.minimum(k, fold_k)
    outputs = np.floor(out_buf / (db * PSUM_BYTES))  # output tile elements
    rows_cap = np.floor(act_buf / (db * fold_k * a))  # Tm with K blocked
    cols_cap = np.floor(weight_buf / (db * fold_k * b))  # Tn with K blocked
    shape = np.broadcast(m, n, A, B, outputs, rows_cap, cols_cap).shape
    best = np.full(shape, np.inf)
    family = np.full(shape, K_BLOCKED, dtype=np.int64)
    tile_m = np.zeros(shape)
    tile_n = np.zeros(shape)

    def take(cost, fam, tm, tn):
        better = cost < best  # strictly: earlier families win ties
        np.copyto(best, cost, where=better)
        np.copyto(family, fam, where=better)
        np.copyto(tile_m, tm, where=better)
        np.copyto(tile_n, tn, where=better)

    # the activations stay on chip: only the weights (or K / V) stream, once
    take(np.where(on_chip_ok, B, np.inf), ON_CHIP, m, n)
    # activation row block resident across every weight tile (Tn of 1 is enough for it)
    tm = pow2_tile(np.minimum(np.floor(act_buf / (db * k * a)), outputs), m)
    ok = (tm >= 1) & (cols_cap >= 1)
    take(np.where(ok, A + B * ceil_div(m, tm) + C, np.inf), ACT_RESIDENT, tm, 1.0)
    # weight column block resident across every activation tile
    tn = pow2_tile(np.minimum(np.floor(weight_buf / (db * k * b)), outputs), n)
    ok = (tn >= 1) & (rows_cap >= 1)
    take(np.where(ok, B + A * ceil_div(n, tn) + C, np.inf), WEIGHT_RESIDENT, 1.0, tn)
    # K-blocked output-stationary tiles, both operands re-read: only where neither resident
    # order already reads everything once
    need = np.isfinite(outputs) & (best > A + B + C) & (rows_cap >= 1) & (cols_cap >= 1)
    if need.any():
        idx = np.nonzero(need)
        mm, nn, AA, BB, CC, rc, cc, oo = (np.broadcast_to(v, shape)[idx]
                                          for v in (m, n, A, B, C, rows_cap, cols_cap, outputs))
        # every power-of-two Tm at once (axis 0), each with the widest legal Tn
        tm = np.minimum(np.exp2(np.arange(int(np.ceil(np.log2(max(mm.max(), 1)))) + 1))[:, None], mm)
        tn = pow2_tile(np.minimum(cc, np.floor(oo / tm)), nn)
        cost = np.where((tm <= rc) & (tn >= 1), AA * ceil_div(nn, tn) + BB * ceil_div(mm, tm) + CC, np.inf)
        j = np.argmin(cost, axis=0)  # the first (smallest Tm) of equal costs
        blocked, full_tm, full_tn = np.full(shape, np.inf), np.zeros(shape), np.zeros(shape)
        blocked[idx], full_tm[idx], full_tn[idx] = pick(cost, j), pick(tm, j), pick(tn, j)
        take(blocked, K_BLOCKED, full_tm, full_tn)
    return Tiling(best, family, tile_m, tile_n)


@dataclass(frozen=True)
class Spread:
    """Per-layer figures of spread candidates (stacked on axis 0 in the order of :data:`CANDIDATES`,
    or one chosen per side)."""

    cycles: np.ndarray  # array cycles of the products and the partial-sum additions, one layer
    adds: np.ndarray  # partial-sum additions (K split and accumulation-bound passes)
    in_flight: np.ndarray  # products at a time (they share the buffers)
    arrays: np.ndarray  # arrays a product uses
    rounds: np.ndarray
    k_passes: np.ndarray
    m: np.ndarray  # one array's share of the product
    k: np.ndarray
    n: np.ndarray
    n_parts: np.ndarray  # the parts N and K are cut into (the compiler cuts them in whole array folds)
    k_parts: np.ndarray


_SIDES = np.array([side for side, _ in CANDIDATES])[:, None, None, None]
_DIMS = np.array([SPLITS.index(dim) for _, dim in CANDIDATES])[:, None, None, None]


def spreads(shape: ArrayShape, arrays, vector_lanes, m, k, n, products, w_bits, passes,
            candidates: tuple[int, ...] = tuple(range(len(CANDIDATES)))) -> Spread:
    """Cycles of one layer's ``products`` products on ``arrays`` arrays, for the spread
    ``candidates`` (indices into :data:`CANDIDATES`) at once, on axis 0."""
    _SIDE, _DIM = _SIDES[list(candidates)], _DIMS[list(candidates)]
    in_flight = np.where(_SIDE, np.minimum(products, arrays), 1.0)
    per_product = np.floor(arrays / in_flight)
    rounds = ceil_div(products, in_flight)
    two = _DIM[:, 0, 0, 0] >= 3  # only the two-way candidates need their shares worked out
    n_two, other_two = two_way(shape, per_product[two], _DIM[two], m, k, n)
    n_parts = np.ones(np.broadcast(per_product, n_two[:1]).shape)
    other = np.ones_like(n_parts)
    n_parts[two], other[two] = n_two, other_two
    m_parts = np.where(_DIM == 0, per_product, np.where(_DIM == 3, other, 1.0))  # np.select is slower
    k_parts = np.where(_DIM == 2, per_product, np.where(_DIM == 4, other, 1.0))
    n_parts = np.where(_DIM == 1, per_product, n_parts)
    mp, np_, kp = ceil_div(m, m_parts), ceil_div(n, n_parts), ceil_div(k, k_parts)
    k_passes = np.maximum(1, np.ceil(kp / shape.max_reduction))
    cycles = gemm_cycles(shape, mp, np.ceil(kp / k_passes), np_, w_bits)
    adds = products * m * n * (k_parts - 1 + k_passes - 1)
    total = rounds * cycles * passes * k_passes + ceil_div(adds, vector_lanes)
    used = m_parts * n_parts * k_parts
    full = np.broadcast(total, mp, np_, kp, in_flight).shape  # axis 0 whole: options stack on it
    return Spread(np.broadcast_to(total, full), adds, in_flight, used, rounds, k_passes, mp, kp, np_, n_parts,
                  k_parts)


FOLDS_PER_ARRAY = (1, 2, 4, 8, 16)  # column folds per array a two-way split may give


def two_way(shape: ArrayShape, arrays, dim, m, k, n) -> tuple[np.ndarray, np.ndarray]:
    """``(n_parts, other_parts)`` of two-way splits of ``arrays`` arrays (axis 0: candidates of
    split ``dim``, an index into :data:`SPLITS`, 3: M and N, 4: K and N): N's ``F = ceil(N / cols)`` column folds in parts of ``j`` folds
    (``min(arrays, ceil(F / j))`` parts, ``j`` in :data:`FOLDS_PER_ARRAY`) and M (or K's row
    folds, ``ceil(K / (rows x lanes))``) over ``floor(arrays / n_parts)``: the ``j`` with the
    fewest folds per array, ``ceil(F / n_parts) x ceil(X / other)``; the smallest ``j`` on ties."""
    folds = ceil_div(n, shape.cols)
    other_dim = np.where(dim == 4, ceil_div(k, shape.rows * shape.lanes), m)
    best = n_best = None
    for j in FOLDS_PER_ARRAY:  # one j at a time: an axis of all of them is slower on many designs
        parts = np.minimum(arrays, ceil_div(folds, j))
        work = ceil_div(folds, parts) * ceil_div(other_dim, np.floor(arrays / parts))
        if best is None:
            best, n_best = work, parts
        else:
            better = work < best  # strictly: the smallest j wins ties
            best, n_best = np.where(better, work, best), np.where(better, parts, n_best)
    return n_best, np.floor(arrays / n_best)  # M's (or K's) parts follow from N's


def pick(choices: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``np.choose(index, choices)``: the choice ``index`` (on axis 0 of ``choices``, the rest
    broadcast to ``index``'s shape) of every element; indexing a flat view is faster on small arrays."""
    shape = (len(choices), *index.shape)
    flat = (choices if choices.shape == shape else np.broadcast_to(choices, shape)).reshape(len(choices), -1)
    return flat[index.reshape(-1), np.arange(index.size)].reshape(index.shape)


def reads(family, m, n, tile_m, tile_n) -> tuple[np.ndarray, np.ndarray]:
    """How often a tiling reads the activations and the weights (or K / V) from DRAM."""
    rows, cols = ceil_div(n, tile_n), ceil_div(m, tile_m)  # activation reads, weight reads when re-read
    act = np.select([family == ON_CHIP, family == ACT_RESIDENT, family == FUSED], [0.0, 1.0, 1.0], rows)
    weight = np.select([family == ON_CHIP, family == WEIGHT_RESIDENT], [1.0, 1.0], cols)
    return act, weight


def fastest(time: np.ndarray, energy: np.ndarray, axis: int = 0) -> np.ndarray:
    """Index along ``axis`` of least time, ties (to 1e-12) broken by least energy; first on full ties."""
    near = time <= time.min(axis=axis, keepdims=True) * (1 + 1e-12)
    return np.argmin(np.where(near, energy, np.inf), axis=axis)


def fused_bytes(m, d, kv_tile, stream_bytes, io_bytes, a, b, act_buf, weight_buf, out_buf, db):
    """DRAM bytes of a fused attention row (score or context) per product, ``inf`` where the
    tiles do not fit: ``io_bytes`` (the query read or the output written, 0 when on chip) plus the
    row's K or V (``stream_bytes``) once per tile of ``Tq`` query rows, with ``Tq x d`` queries in
    the activation buffer, ``kv_tile`` keys and values of ``d`` in the weight buffer and ``Tq x
    (kv_tile + d)`` scores and output accumulators in the output buffer; and ``Tq``."""
    tq = pow2_tile(np.minimum(np.floor(act_buf / (db * d * a)),
                              np.floor(out_buf / (db * PSUM_BYTES * (kv_tile + d)))), m)
    ok = (tq >= 1) & (weight_buf >= db * 2 * kv_tile * d * b)
    return np.where(ok, io_bytes + stream_bytes * ceil_div(m, tq), np.inf), tq
