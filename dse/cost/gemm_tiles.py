"""The GEMM commands a mapping becomes on the tile, in closed form over designs: their tile
sides and their summed cycles.

The tile compiler (:mod:`peforge.dse.tile.compiler`) runs one array's share of a product as GEMM
commands over output tiles of ``tm x tn`` and K blocks of ``kb``: full tiles and the edge tiles
in M, N and K. Each command takes :meth:`peforge.hw.tile.gemm.GemmEngineConfig.cycles`: the
array's exact cycle formula plus the engine's :data:`~peforge.hw.tile.gemm.OVERHEAD`. The tile
sides are the mapping's cut to what a slice's scratchpads hold (skewed row pitches of
:func:`~peforge.hw.tile.spad.skewed_pitch`, word-aligned regions, a tile and its double-buffer
copy), the free side of a resident family as wide as fits; :func:`tile_sides` says which, for
every design at once (numpy), and :func:`gemm_work` sums the commands' cycles.

The scratchpads are those of the design's tile (:func:`design_tile`: ``sram.*_kib`` split over
the arrays); :func:`geometry` lays them out as columns. Where no tile of the mapping's family fits
a slice, the compiler blocks K in the widest whole array folds that fit; :func:`tile_sides`
returns 0 sides there and the cost model keeps the spread's own cycles.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...arith import ceil_div
from . import mapper
from .array import ArrayShape, gemm_cycles

__all__ = ["TileGeometry", "design_tile", "tile_of", "geometry", "share_sides", "tile_sides", "gemm_work",
           "gemm_bytes", "gemm_fill", "dma_period", "dma_bytes_per_s"]

_HALVINGS = 24  # the compiler halves a fixed side until it fits: more halvings than any side has


@dataclass(frozen=True)
class TileGeometry:
    """Each design's slice scratchpads and GEMM limits as ``(designs, 1, 1)`` columns: elements,
    banks and elements per word of the activation (``a``), weight (``w``) and output (``o``)
    scratchpads, the array's ``max_m``, ``max_k``, ``max_n``, the DMA's largest transfer row
    (bytes, exclusive), the DMA's bus (bytes per beat) and ``buildable`` (False where the tile
    cannot be built: the model then prices the mapping's own tiles)."""

    a_elements: np.ndarray
    a_banks: np.ndarray
    a_word: np.ndarray
    w_elements: np.ndarray
    w_banks: np.ndarray
    w_word: np.ndarray
    o_elements: np.ndarray
    o_word: np.ndarray
    max_m: np.ndarray
    max_k: np.ndarray
    max_n: np.ndarray
    dma_row: np.ndarray
    bus_bytes: np.ndarray
    buildable: np.ndarray


def design_tile(design):
    """The tile of ``design`` at its own buffer sizes: :meth:`TileConfig.from_design
    <peforge.hw.tile.config.TileConfig.from_design>` unscaled, and where that refuses a DMA bus or
    vector lanes wider than a scratchpad run (small buffers of few banks), the same tile with both
    narrowed to the widest run every scratchpad takes (powers of two); the largest instruction
    memory either way. ``ValueError`` where the tile cannot be built otherwise."""
    import dataclasses

    from ...hw.systolic import SystolicConfig
    from ...hw.tile.config import TileConfig, element_bytes
    from ...hw.tile.gemm import spad_rules
    from ...hw.tile.spad import ScratchpadConfig

    try:
        return dataclasses.replace(TileConfig.from_design(design, scaled=False), imem_depth=1 << 16)
    except ValueError as error:
        if "runs of at most" not in str(error):
            raise
    c, s = design.compute, design.sram
    array = SystolicConfig(rows=c.rows, cols=c.cols, pe=c.pe, dataflow=c.dataflow, pe_config=c.pe_config,
                           max_m=256, max_k=4096, max_n=4096)
    rules, out_banks = spad_rules(array), 2
    spads = {name: ScratchpadConfig.sized(getattr(s, key) / c.arrays, **{**rules[name], **(
        {"banks": out_banks} if name == "out" else {})})
        for name, key in (("act", "activation_kib"), ("weight", "weight_kib"), ("out", "output_kib"))}
    floor2 = lambda v: 1 << (max(1, int(v)).bit_length() - 1)  # noqa: E731
    lanes = floor2(min(c.lanes_of_vector_unit, *(spad.max_run for spad in spads.values())))
    bus = floor2(min(spad.max_run * element_bytes(spad.element_bits) for spad in spads.values()))
    bus = max(bus, *(element_bytes(spad.element_bits) for spad in spads.values()))
    return TileConfig(array=array, arrays=c.arrays, act_depth=spads["act"].depth, weight_depth=spads["weight"].depth,
                      out_depth=spads["out"].depth, out_banks=out_banks, vector_lanes=lanes, bus_bytes=bus,
                      imem_depth=1 << 16)


@functools.lru_cache(maxsize=4096)
def tile_of(design):
    """:func:`design_tile`, or None where the tile cannot be built (cached: a search prices the
    same designs again)."""
    try:
        return design_tile(design)
    except ValueError:
        return None


def _figures(design) -> tuple:
    """One design's row of :class:`TileGeometry`."""
    tile = tile_of(design)
    if tile is None:
        return (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, False)
    g, a = tile.gemm, tile.array
    return (g.act.elements, g.act.banks, g.act.word_elements, g.weight.elements, g.weight.banks,
            g.weight.word_elements, g.out.elements, g.out.word_elements, a.max_m, a.max_k, a.max_n,
            1 << tile.dma.count_bits, tile.bus_bytes, True)


def geometry(designs: Sequence) -> TileGeometry:
    """The tile geometry of every design (:func:`design_tile`)."""
    cols = list(zip(*(_figures(d) for d in designs)))
    col = lambda v, t=np.float64: np.asarray(v, dtype=t)[:, None, None]  # noqa: E731
    return TileGeometry(*(col(v) for v in cols[:-1]), buildable=col(cols[-1], bool))


ACC_BYTES = 4  # a GEMM's output tile: 32-bit accumulators, stored whole


def gemm_bytes(geo: TileGeometry, ms, ks, ns, m, k, n, tm, tn, kb, order_b, packed, a_bytes, b_bytes) -> np.ndarray:
    """Bytes the compiler's DMA moves for one ``m x k @ k x n`` product cut into shares of ``ms x
    ns`` over ``ks`` of K, in tiles of ``tm x tn`` over K blocks of ``kb``: an operand's tile is
    loaded whenever the job before (loop order: M, N, K blocks, or N, M, K with ``order_b``, the
    weights resident) held another, once for every slice that takes it; a packed weight tile
    (``packed``) at its skewed row pitch, A and an unpacked B (the KV cache) as their elements
    (``a_bytes``, ``b_bytes`` each); every output tile stored once as 32-bit accumulators."""
    nm, nn, nk = ceil_div(ms, tm), ceil_div(ns, tn), ceil_div(ks, kb)
    one_k = nk == 1
    a_passes = np.where(one_k & (~order_b | (nm == 1)), 1.0, nn)
    b_passes = np.where(one_k & (order_b | (nn == 1)), 1.0, nm)
    tail = np.mod(k, ks)
    blocks = np.floor(k / ks) * nk + np.where(tail > 0, ceil_div(tail, kb), 0.0)  # over all K parts
    b_pass = np.where(packed, n * blocks * _pitch(kb, geo.w_word, geo.w_banks), n * k * b_bytes)
    return m * k * a_bytes * a_passes + b_pass * b_passes + m * n * ACC_BYTES


def gemm_fill(geo: TileGeometry, ms, ks, ns, tm, tn, kb, packed, a_bytes, b_bytes):
    """Bytes of a share's first A and B tiles (loaded before its first GEMM command) and of its
    last output tile (stored after its last one): the DMA that runs beside no GEMM command."""
    m0, n0, k0 = np.minimum(tm, ms), np.minimum(tn, ns), np.minimum(kb, ks)
    first_b = np.where(packed, n0 * _pitch(kb, geo.w_word, geo.w_banks), n0 * k0 * b_bytes)
    last_m, last_n = ms - (ceil_div(ms, tm) - 1) * tm, ns - (ceil_div(ns, tn) - 1) * tn
    return m0 * k0 * a_bytes, first_b, last_m * last_n * ACC_BYTES


def dma_period(bus_bytes, bytes_per_cycle):
    """Cycles per DMA beat (:attr:`MemoryModel.period <peforge.hw.tile.dma.MemoryModel.period>`)
    of a ``bus_bytes`` bus over a memory of ``bytes_per_cycle`` (bytes per clock cycle): the
    fewest whole cycles in which the memory delivers a beat, at least 1."""
    return np.maximum(1, np.ceil(np.asarray(bus_bytes, dtype=np.float64) / bytes_per_cycle))


def dma_bytes_per_s(geo: TileGeometry, bytes_per_s, clock_hz) -> np.ndarray:
    """The DRAM bandwidth the tile's DMA sees (bytes per second): one bus beat per
    :func:`dma_period` cycles of the memory's ``bytes_per_s`` at ``clock_hz``; ``bytes_per_s``
    itself where the tile cannot be built."""
    beats = geo.bus_bytes / dma_period(geo.bus_bytes, bytes_per_s / clock_hz) * clock_hz
    return np.where(geo.buildable, beats, bytes_per_s)


def _pitch(k, word, banks) -> np.ndarray:
    """Elements of a skewed row pitch holding ``k`` elements (``skewed_pitch`` of its words)."""
    words = ceil_div(k, word)
    return (words + np.mod(1 - words, banks)) * word


def share_sides(total, parts, unit) -> np.ndarray:
    """The first (largest) share of ``total`` cut into ``parts`` ranges of whole ``unit``
    multiples, as the compiler cuts a product over its arrays."""
    return np.minimum(total, ceil_div(ceil_div(total, unit), np.maximum(parts, 1)) * unit)


def _widest(limit, unit, cap) -> np.ndarray:
    """The compiler's widest side up to ``limit`` under a cap: whole, else whole ``unit``s of the
    array, else any (0: none fits)."""
    return np.where(limit <= cap, limit, np.where(cap >= unit, np.floor(cap / unit) * unit, np.maximum(cap, 0)))


def tile_sides(geo: TileGeometry, shape: ArrayShape, ms, ks, ns, family, tile_m, tile_n, double, k_passes):
    """``(tm, tn, kb)`` of the compiler's tiles for shares of ``ms x ns`` outputs over ``ks`` of K
    with the mapping ``family`` (index into :data:`~peforge.dse.cost.mapper.FAMILIES`), tile
    sides, buffering and passes over K; 0 sides where no tile of the family fits (the compiler
    then blocks K more finely, which this does not follow)."""
    fold = shape.rows * shape.lanes
    copy = np.where(double, 2.0, 1.0)
    order_a = (family == mapper.ON_CHIP) | (family == mapper.ACT_RESIDENT)
    order_b = family == mapper.WEIGHT_RESIDENT
    blocked = (family == mapper.K_BLOCKED) | (k_passes > 1)
    kb = np.where(blocked, np.minimum(ks, fold), ks)
    ca = np.where(order_a & ~blocked, 1.0, copy)
    cw = np.where(order_b & ~blocked, 1.0, copy)
    co = copy
    on_chip = family == mapper.ON_CHIP
    want_m = np.where(on_chip, ms, np.minimum(tile_m, ms))
    want_n = np.where(on_chip, ns, np.minimum(tile_n, ns))
    pa, pw = _pitch(kb, geo.a_word, geo.a_banks), _pitch(kb, geo.w_word, geo.w_banks)
    # caps of each side alone, and of one side given the other (the output tile couples them)
    m_cap = np.minimum(geo.max_m, np.floor(geo.a_elements / (ca * pa)))
    n_cap = np.minimum(np.minimum(geo.max_n, np.floor(geo.w_elements / (cw * pw))),
                       np.ceil(geo.dma_row / pw) - 1)
    ok = (kb <= geo.max_k) & (n_cap >= 1) & (m_cap >= 1)

    def n_given(tm):
        return np.minimum(n_cap, np.floor(geo.o_elements / (co * np.maximum(tm, 1) * geo.o_word)) * geo.o_word)

    def m_given(tn):
        return np.minimum(m_cap, np.floor(geo.o_elements / (co * ceil_div(np.maximum(tn, 1), geo.o_word)
                                                            * geo.o_word)))

    free_n = (family == mapper.ACT_RESIDENT)
    free_m = order_b
    # free N: the fixed M side halved until a column fits, N as wide as fits
    tm_a, tm_fixed = want_m, m_given(1.0)
    for _ in range(_HALVINGS):
        over = (tm_a > tm_fixed) & (tm_a >= 1) & free_n
        if not over.any():
            break
        tm_a = np.where(over, np.floor(tm_a / 2), tm_a)
    tn_a = _widest(ns, shape.cols, n_given(tm_a))
    # free M: the converse
    tn_b = want_n
    for _ in range(_HALVINGS):
        over = ((m_given(tn_b) < 1) | (tn_b > n_cap)) & (tn_b >= 1) & free_m
        if not over.any():
            break
        tn_b = np.where(over, np.floor(tn_b / 2), tn_b)
    tm_b = _widest(ms, shape.rows, m_given(tn_b))
    # both sides the mapping's, each cut to the widest that fits
    tm_c = _widest(want_m, shape.rows, m_given(1.0))
    tn_c = _widest(want_n, shape.cols, n_given(tm_c))
    tm = np.select([free_n, free_m], [tm_a, tm_b], tm_c)
    tn = np.select([free_n, free_m], [tn_a, tn_b], tn_c)
    good = ok & (tm >= 1) & (tn >= 1)
    return np.where(good, tm, 0.0), np.where(good, tn, 0.0), kb


def gemm_work(shape: ArrayShape, ms, ks, ns, tm, tn, kb, w_bits) -> np.ndarray:
    """Cycles of the GEMM commands of one ``ms x ks @ ks x ns`` share in tiles of ``tm x tn``
    over K blocks of ``kb``: full and edge tiles in each dimension, each command the array's
    cycles plus :data:`~peforge.hw.tile.gemm.OVERHEAD`."""
    # imported here: the tile's modules bring in Amaranth, whose many objects slow the collector
    # for every cost-model call of a process that never asks for tile commands
    from ...hw.tile.gemm import OVERHEAD

    total = 0.0
    cuts = []
    for size, step in ((ms, tm), (ks, kb), (ns, tn)):
        step = np.maximum(step, 1)
        full, edge = np.floor(size / step), np.mod(size, step)
        cuts.append(((full, step), (np.where(edge > 0, 1.0, 0.0), np.maximum(edge, 1))))
    for count_m, m in cuts[0]:
        for count_k, k in cuts[1]:
            for count_n, n in cuts[2]:
                count = count_m * count_k * count_n
                if not np.any(count):
                    continue
                total = total + np.where(count > 0, count * (gemm_cycles(shape, m, k, n, w_bits) + OVERHEAD), 0.0)
    return total
