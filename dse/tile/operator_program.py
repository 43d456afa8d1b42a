"""One operator of a workload as the tile's program runs it: its steps lowered by the compiler's
own modules on a scratch compilation, timed by the ISA's timeline.

The cost model's row of an operator (:mod:`peforge.dse.cost.workload`: shape, products, the
vector unit's work and its DMA-only move) becomes the steps the compiler emits for it
(:mod:`peforge.dse.tile.compiler`): a product's GEMM (:func:`~.lower_gemm.lower_gemm`, the
mapping the mapper chose), its epilogue's vector steps and its move (the new K rows into the
cache, V's transposed columns, the queries split into heads, the context's heads merged:
:func:`~.lower_move.lower_move`); an elementwise row's vector steps
(:func:`~.lower_vector.lower_vector_step` of :func:`~.vector_lowering.graph_steps`). Their
instructions, with the ``Wait`` s the program builder adds, are timed by
:func:`peforge.hw.tile.isa.program_timeline` with each unit's exact ``cycles``: what the
sequencer spends on the operator from its first instruction to every unit idle again (the next
operator's first transfer queues behind this one's last store on the one DMA, so an operator's
drain is its own; the program's start and done latencies are the layer's, not counted here).

The scratch compilation places tensors at aligned DRAM addresses, as the compiler does; a cache
holds the next power of two of its keys (at least :data:`~.dram.ALIGN` positions) where the
tile's holds the model's ``max_positions``: the same beats for every row that does not cross a
4 KiB boundary. An operator of more than :data:`MAX_INSTRUCTIONS` instructions is not enumerated
(the cost model keeps its closed form for it: a large model on a small tile).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...arith import ceil_div
from ...hw.tile.isa import DONE_LATENCY, FETCH_LATENCY, End, Issue, program_timeline
from ..cost.workload import MOVE_CODES
from .context import Context
from .dram import ALIGN, Symbol
from .intlayer import Gemm, Move
from .lower_gemm import _shares, _tiling, lower_gemm
from .lower_move import lower_move
from .lower_vector import lower_vector_step
from .mapping import MAPPING_FIELDS, OperatorMapping, operator_mapping
from .predict import dma_bytes, phase_work
from .program import ProgramBuilder
from .vector_lowering import graph_steps, plan_blocks, step_buffers

__all__ = ["MOVES", "MAX_INSTRUCTIONS", "OperatorRow", "Phases", "operator_phases", "rows_phases"]

# The DMA-only move a row's operator ends with: the workload's ``move`` column's codes.
MOVES = MOVE_CODES
MAX_INSTRUCTIONS = 4000  # instructions of one operator's program enumerated at most


@dataclass(frozen=True)
class OperatorRow:
    """One operator row as the tile lowers it (hashable: timings are cached per tile).

    ``m, k, n, count``: each product's shape and the products (``k`` 0: elementwise, ``m`` rows of
    ``n``); ``kv``: B is the KV cache (``score``: K rows, else V's transposed columns);
    ``vector``, ``a``, ``b``: the vector unit's work (a :data:`~.vector_lowering.VECTOR_KINDS` code) and its figures;
    ``move``: a :data:`MOVES` code, and ``heads`` its head dim (a cache move) or query heads per
    KV head (the context's merge); ``mapping``: a product's :class:`OperatorMapping`."""

    m: int
    k: int
    n: int
    count: int = 1
    kv: bool = False
    score: bool = False
    vector: int = 0
    a: int = 0
    b: int = 0
    move: int = 0
    heads: int = 0
    mapping: OperatorMapping | None = None


def _positions(keys: int) -> int:
    return max(ALIGN, 1 << (max(keys, 1) - 1).bit_length())


def _symbol(ctx: Context, name: str, shape, elem_bytes: int, **extra) -> Symbol:
    symbol = Symbol(name=name, addr=0, shape=tuple(int(s) for s in shape), elem_bytes=elem_bytes, **extra)
    if extra.get("layout") == "tiles":  # a weight: its packed tiles are placed as the GEMM loads them
        ctx.constants[name] = None
    else:
        symbol = Symbol(name=name, addr=ctx.allocate(symbol.size), shape=symbol.shape, elem_bytes=elem_bytes)
    ctx.symbols[name] = symbol
    return symbol


def _bytes_of(spad: str) -> int:
    return 1 if spad == "act" else 4


def _vector_steps(ctx: Context, row: OperatorRow, rows: int, source: Symbol | None) -> Symbol | None:
    """The row's vector steps over ``rows`` rows of ``n``: each step's first input the previous
    step's output (``source`` for the first: a product's accumulators), RoPE's parts each from
    their own tensor. The last output."""
    out = source
    for i, step in enumerate(graph_steps(row.vector, rows, row.n, row.a, row.b)):
        chained = out is not None and step.op != "rope"
        data = [out if chained and j == 0 else
                _symbol(ctx, f"v{i}.in{j}", (rows, step.width), _bytes_of(spad))
                for j, spad in enumerate(step.in_spads)]
        out = _symbol(ctx, f"v{i}.out", (rows, step.width), _bytes_of(step.out_spad))
        tables = None
        if step.op == "rope":
            positions = _positions(step.constants["position"] + rows)
            tables = (np.zeros((positions, row.a // 2), np.int64),) * 2
        lower_vector_step(ctx, step, data, out, "op", f"{i} vector", tables)
    return out


def _move(ctx: Context, row: OperatorRow, src: Symbol) -> None:
    """The row's DMA-only move of ``src`` (rows of the operator's output)."""
    name = {v: k for k, v in MOVES.items()}[row.move]
    if name in ("cache_rows", "cache_columns"):
        d = row.heads
        tokens, g = src.shape[0], src.shape[-1] // d
        p = _positions(tokens)
        shape = (g, p, d) if name == "cache_rows" else (g, d, p)
        step = Move(op=name, src=src.name, out="cache", constants={"kv_heads": g, "group": 1, "head_dim": d,
                                                                       "position": 0})
        _symbol(ctx, "cache", shape, 1)
    elif name == "split_heads":  # the rotated queries (RoPE's first part) into [G][r T][d]
        d, q_width = row.a, row.b
        g = (row.n - q_width) // d
        r, tokens = q_width // (g * d), row.m
        src = ctx.symbols["v0.out"]
        _symbol(ctx, "heads", (g, r * tokens, d), 1)
        step = Move(op=name, src=src.name, out="heads", constants={"kv_heads": g, "group": r, "head_dim": d})
    else:  # merge_heads: the context [G][r T][d] into [T][G r d]
        g, r, d = row.count, row.heads, row.n
        tokens = row.m // r
        src = ctx.symbols[src.name] = Symbol(name=src.name, addr=src.addr, shape=(g, r * tokens, d),
                                             elem_bytes=src.elem_bytes)
        _symbol(ctx, "merged", (tokens, g * r * d), 1)
        step = Move(op=name, src=src.name, out="merged", constants={"kv_heads": g, "group": r, "head_dim": d})
    lower_move(ctx, step, "op", "move")


def _least_instructions(tile, row: OperatorRow) -> int:
    """A lower bound of the instructions of ``row``'s program, from its plans alone (no
    commands): a product's GEMM commands (the compiler's shares and tiling: one command per
    output tile and K block of each share) and each vector step's blocks (a command each at
    least)."""
    count = 0
    if row.k:
        step = Gemm(name="op", a="a", b_t="b", out="c", m=row.m, k=row.k, n=row.n, count=row.count)
        shares = [s for group in _shares(tile, step, row.mapping) for s in group]
        t, _ = _tiling(tile, step, row.mapping, max(s.m1 - s.m0 for s in shares), max(s.n1 - s.n0 for s in shares),
                       max(s.k1 - s.k0 for s in shares))
        count = sum(ceil_div(s.m1 - s.m0, t.tm) * ceil_div(s.n1 - s.n0, t.tn) * ceil_div(s.k1 - s.k0, t.kb)
                    for s in shares)
    rows = row.count * row.m if row.k else row.m
    for step in graph_steps(row.vector, rows, row.n, row.a, row.b) if row.vector else ():
        buffers, split = step_buffers(step)
        count += len(plan_blocks(tile, step.op, step.rows, buffers, split).blocks)
    return count


class _TooLong(Exception):
    pass


class _Budget(ProgramBuilder):
    """A program builder that gives up past :data:`MAX_INSTRUCTIONS` (the row is then priced in
    closed form by the cost model)."""

    def issue(self, slot, command, **access) -> None:
        if len(self.instructions) >= MAX_INSTRUCTIONS:
            raise _TooLong
        super().issue(slot, command, **access)


class Phases(NamedTuple):
    """An operator's cycles as its program runs (NaN each where it is not enumerated): ``total``
    the sequencer's, ``array`` the busiest slice's GEMM commands' and ``vector`` the vector unit's
    commands' (:func:`~.predict.phase_work`: a mixed PE's digit planes and the vector steps making
    its high plane included); and ``dma_bytes``, the bytes its DMA commands load and store
    (:func:`~.predict.dma_bytes`: the mixed PE's digit planes' too)."""

    total: float
    array: float
    vector: float
    dma_bytes: float


_NAN = Phases(*(float("nan"),) * len(Phases._fields))


@functools.lru_cache(maxsize=65536)
def operator_phases(tile, memory, row: OperatorRow) -> Phases:
    """The cycles the tile's sequencer spends on ``row``'s operator over ``memory`` (a
    :class:`~peforge.hw.tile.dma.MemoryModel`: its instructions' timeline until every unit is idle),
    its program's array and vector work (cycles) and the bytes its DMA moves; NaN where the tile
    cannot run it or it is too large to enumerate."""
    try:
        if _least_instructions(tile, row) > MAX_INSTRUCTIONS:
            return _NAN
    except ValueError:  # no tiling or blocks the tile can hold
        return _NAN
    ctx = Context(tile=tile, builder=_Budget(), symbols={}, constants={}, top=0)
    lead = (row.count,) if row.count > 1 else ()
    try:
        if row.k:  # a product, its epilogue, its move
            _symbol(ctx, "a", (*lead, row.m, row.k), 1)
            if not row.kv:
                _symbol(ctx, "b", (row.n, row.k), 1, layout="tiles")
            elif row.score:  # K rows [G][P][d]
                _symbol(ctx, "b", (*lead, _positions(row.n), row.k), 1)
            else:  # V's columns [G][d][P]
                _symbol(ctx, "b", (*lead, row.n, _positions(row.k)), 1)
            acc = _symbol(ctx, "c", (*lead, row.m, row.n), 4)
            lower_gemm(ctx, Gemm(name="op", a="a", b_t="b", out="c", m=row.m, k=row.k, n=row.n, count=row.count),
                       row.mapping, "op", "gemm")
            flat = Symbol(name="c", addr=acc.addr, shape=(row.count * row.m, row.n), elem_bytes=4)
            ctx.symbols["c"] = flat
            out = _vector_steps(ctx, row, row.count * row.m, flat) if row.vector else flat
        elif row.vector:
            out = _vector_steps(ctx, row, row.m, None)
        else:  # an elementwise row the tile does not lower
            return _NAN
        if row.move:
            _move(ctx, row, out)
        program = [*ctx.builder.instructions, End()]
        timeline = program_timeline(program, lambda slot, cmd: tile.unit_cycles(slot, cmd, memory))
    except (ValueError, _TooLong):  # a command the tile's units refuse (a field too narrow), or too many
        return _NAN
    slots: dict[str, int] = {}
    moved = 0
    for step in timeline.steps:
        if isinstance(step.instruction, Issue):
            slots[step.instruction.slot] = slots.get(step.instruction.slot, 0) + step.completed - step.issued
            moved += dma_bytes(step.instruction)
    array, vector = phase_work(slots)
    return Phases(float(timeline.cycles - FETCH_LATENCY - DONE_LATENCY), float(array), float(vector), float(moved))


def rows_phases(tiles, memories, *, m, k, n, products, matrix, attention, score, vector, a, b, move, mapping,
                fused) -> Phases:
    """:func:`operator_phases` of every cell of the cost model's rows on every design, each
    phase an array: ``tiles`` and ``memories`` one per design (a tile None: NaN); the rows'
    figures arrays that broadcast to ``(designs, steps, rows)``, ``mapping`` a dict of
    :class:`OperatorMapping`'s fields as such arrays, ``fused`` where the mapping is fused
    attention (not lowered: NaN). Each distinct cell of a tile is lowered once."""
    figures = [m, k, n, products, matrix, attention, score, vector, a, b, move, fused,
               *(mapping[f] for f in MAPPING_FIELDS)]
    shape = np.broadcast_shapes((len(tiles), 1, 1), *(np.shape(v) for v in figures))
    cols = [np.broadcast_to(v, shape).reshape(len(tiles), -1) for v in figures]
    out = np.full((len(tiles), cols[0].shape[1], len(Phases._fields)), np.nan)
    for d, (tile, memory) in enumerate(zip(tiles, memories)):
        if tile is None:
            continue
        seen: dict[tuple, Phases] = {}
        for i, cell in enumerate(zip(*(c[d] for c in cols))):
            key = tuple(float(v) for v in cell)
            if key not in seen:
                seen[key] = _cell_phases(tile, memory, key)
            out[d, i] = seen[key]
    return Phases(*(out[..., j].reshape(shape) for j in range(len(Phases._fields))))


def _cell_phases(tile, memory, key: tuple) -> Phases:
    m, k, n, products, matrix, attention, score, vector, a, b, move, fused, *plan = key
    if fused:
        return _NAN
    mapping = operator_mapping(dict(zip(MAPPING_FIELDS, plan))) if matrix else None
    heads = int(a) if move in (MOVES["cache_rows"], MOVES["cache_columns"], MOVES["merge_heads"]) else 0
    row = OperatorRow(m=int(m), k=int(max(k, 1)) if matrix else 0, n=int(n),
                      count=max(1, int(round(products))) if matrix else 1, kv=bool(attention), score=bool(score),
                      vector=int(vector), a=0 if heads else int(a), b=int(b), move=int(move), heads=heads,
                      mapping=mapping)
    return operator_phases(tile, memory, row)
