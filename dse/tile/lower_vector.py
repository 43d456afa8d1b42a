"""Lowering of a :class:`~peforge.dse.tile.intlayer.Vector` step to vector-unit commands over
blocks of rows loaded into, and stored from, buffers placed over the slices' scratchpads (see
:mod:`peforge.dse.tile.compiler`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ...hw import intops
from ...hw.tile.config import TileConfig
from ...hw.tile.vector import BMode, VecOp, VectorCommand, rmsnorm_program, softmax_program
from .context import VECTOR_SLICE, Context, spad_of
from .dram import Symbol
from .intlayer import ACT_BITS, NORM_BITS, PROB_BITS, SILU_BITS, IntLayer, Vector
from .program import Region

__all__ = ["lower_vector", "with_access", "vector_ports"]


@dataclass(frozen=True)
class _Buffer:
    """A block of rows of one tensor in a scratchpad: ``kind`` ``in`` (loaded), ``out`` (stored),
    ``tmp``, or ``const`` (loaded once, one copy); ``spad`` the kind of scratchpad its elements need
    (``act``: 8-bit, ``out``: 32-bit; :func:`_placements` may move it); ``pitch``
    elements per row; DRAM rows from ``row0`` on of ``cols`` elements."""

    name: str
    kind: str
    spad: str
    pitch: int
    symbol: Symbol | None = None
    cols: int = 0
    row0: int = 0
    rows: int | None = None  # const: its rows (else the block's)
    slice: int = VECTOR_SLICE


@dataclass(frozen=True)
class _Block:
    """One block of a vector step: rows ``r0 .. r0 + rows - 1``, columns ``c0 .. c0 + cols - 1`` of
    the split width (all of it unless split), held at ``pitch`` elements per row."""

    r0: int
    rows: int
    c0: int
    cols: int
    pitch: int


def _placements(tile: TileConfig, buffers: list[_Buffer]) -> list[list[_Buffer]]:
    """Where ``buffers`` may go, in the order tried: all in slice 0's default scratchpads, one
    moved to another scratchpad of its element width (any slice), then spread over the slices."""
    def homes(b):
        bits = tile.spads[b.spad].element_bits
        return [(s, name) for s in range(tile.arrays) for name, spad in tile.spads.items()
                if name != "meta" and spad.signed and spad.element_bits == bits]

    out = [buffers]
    for i, b in enumerate(buffers):
        out += [[*buffers[:i], replace(b, slice=s, spad=name), *buffers[i + 1:]] for s, name in homes(b)
                if (s, name) != (b.slice, b.spad)]
    out.append([replace(b, slice=i % tile.arrays) for i, b in enumerate(buffers)])
    return out


def _vector_blocks(ctx: Context, tag: str, label: str, rows: int, granule: int, buffers: list[_Buffer],
                   body: Callable[[_Block, dict[str, int]], list[tuple[VectorCommand, list, list]]],
                   split: int | None = None) -> None:
    """Run ``body`` over blocks of rows (multiples of ``granule``) and, for an elementwise op
    (``split``: the width of its tensors), of columns where a whole row does not fit, loading the
    ``in`` and ``const`` buffers and storing the ``out`` ones around it; double-buffered where two
    copies fit; the buffers in slice 0's scratchpads, or where slice 0's do not hold them, moved
    over the others' (:func:`_placements`)."""
    tile = ctx.tile
    follows = lambda b: split is not None and b.cols == split and b.pitch == split  # noqa: E731

    def pitch_of(b, width):
        return width if follows(b) else b.pitch

    def fits(placed, block, copies, width):
        top: dict[tuple[int, str], int] = {}
        for b in placed:
            count, size = (1, b.rows) if b.kind == "const" else (copies, block)
            w = tile.spads[b.spad].word_elements
            start = -(-top.get((b.slice, b.spad), 0) // w) * w
            top[b.slice, b.spad] = start + count * size * pitch_of(b, width)
        return all(end <= tile.spads[spad].elements for (_, spad), end in top.items())

    widths = sorted({-(-split // parts) for parts in range(1, split + 1)}, reverse=True) if split else [None]
    choice = None
    for placed in _placements(tile, buffers):
        choice = next(((placed, block, copies, width) for width in widths for copies in (2, 1)
                       for block in range(rows // granule * granule, 0, -granule)
                       if fits(placed, block, copies, width)), None)
        if choice is not None:
            break
    if choice is None:
        raise ValueError(f"{tag}: rows of {', '.join(f'{b.name} {b.pitch}' for b in buffers)} elements do not fit "
                         f"the scratchpads")
    buffers, block, copies, width = choice
    top: dict[tuple[int, str], int] = {}
    base = {}
    for b in buffers:  # the same bump allocation as fits()
        count, size = (1, b.rows) if b.kind == "const" else (copies, block)
        w = tile.spads[b.spad].word_elements
        base[b.name] = -(-top.get((b.slice, b.spad), 0) // w) * w
        top[b.slice, b.spad] = base[b.name] + count * size * pitch_of(b, width)
    columns = f", columns in blocks of {width}" if width and width < split else ""
    ctx.plans[label] = (f"vector unit, blocks of {block} rows{columns}, {copies} cop{'ies' if copies > 1 else 'y'}; "
                        + ", ".join(f"{b.name} in slice {b.slice}'s {b.spad} at {base[b.name]}" for b in buffers))
    chunks = [(c0, min(width, split - c0)) for c0 in range(0, split, width)] if split else [(0, 0)]
    blocks = [_Block(r0, min(block, rows - r0), c0, cols, width or 0) for c0, cols in chunks
              for r0 in range(0, rows, block)]

    def offset(b, i):
        return base[b.name] if b.kind == "const" else base[b.name] + (i % copies) * block * pitch_of(b, width)

    def transfer(b: _Buffer, i: int):
        blk, symbol = blocks[i], b.symbol
        r0, count = (0, b.rows) if b.kind == "const" else (blk.r0, blk.rows)
        elems, c0 = (blk.cols, blk.c0) if follows(b) else (b.cols, 0)
        addr = symbol.addr + (b.row0 + r0) * symbol.row_bytes + c0 * symbol.elem_bytes
        if b.kind == "out":
            ctx.store(tag=tag, symbol_addr=addr, spad=b.spad, offset=offset(b, i), rows=count, elems=elems,
                      dram_stride=symbol.row_bytes, pitch=pitch_of(b, width), slice_=b.slice)
        else:
            ctx.load(tag=tag, symbol_addr=addr, spad=b.spad, offset=offset(b, i), rows=count, elems=elems,
                     dram_stride=symbol.row_bytes, pitch=pitch_of(b, width), slices=[b.slice],
                     elem_bytes=symbol.elem_bytes)

    def loads(i):
        for b in buffers:
            # a constant once, or once per column block
            fresh = b.kind == "const" and (i == 0 or (follows(b) and blocks[i].c0 != blocks[i - 1].c0))
            if b.kind == "in" or fresh:
                transfer(b, i)

    def stores(i):
        for b in buffers:
            if b.kind == "out":
                transfer(b, i)

    loads(0)
    for i, blk in enumerate(blocks):
        if i and copies == 1:  # one copy: stored before the next block overwrites it
            stores(i - 1)
        addresses = {b.name: tile.spad_base(b.slice, b.spad) + offset(b, i) for b in buffers}
        for cmd, reads, writes in body(blk, addresses):
            ctx.builder.issue("vec", cmd, reads=reads, writes=writes, ports=vector_ports(writes), tag=tag)
        if i and copies > 1:
            stores(i - 1)
        if i + 1 < len(blocks):
            loads(i + 1)
    stores(len(blocks) - 1)


def _access(tile: TileConfig, cmd: VectorCommand) -> tuple[list[Region], list[Region]]:
    """What a vector command reads and writes: its operands' spans (:meth:`TileConfig.vector_spans`)."""
    reads, writes = [], []
    for operand, (first, last) in tile.vector_spans(cmd).items():
        slice_, spad, start = tile.locate(first)
        (writes if operand == "d" else reads).append(Region(slice_, spad, start, start + last - first + 1))
    return reads, writes


def vector_ports(writes: list[Region]) -> list[tuple[int, str]]:
    """The access ports a vector command shares with the DMA: its destination's (the tile reads
    its operands on ports of their own)."""
    return [(w.slice, w.spad) for w in writes]


def with_access(tile: TileConfig, commands: list[VectorCommand]):
    return [(cmd, *_access(tile, cmd)) for cmd in commands]


def lower_vector(ctx: Context, step: Vector, tag: str, label: str, layer: IntLayer) -> None:
    tile, c = ctx.tile, step.constants
    ins = [ctx.symbols[name] for name in step.inputs]
    out = ctx.symbols[step.out]
    x = ins[0]
    width = x.shape[-1]
    rows = int(np.prod(x.shape[:-1]))
    io = [_Buffer(name=f"in{i}", kind="in", spad=spad_of(s), pitch=width, symbol=s, cols=width)
          for i, s in enumerate(ins)]
    res = _Buffer(name="out", kind="out", spad=spad_of(out), pitch=width, symbol=out, cols=width)
    op = step.op
    ob = c.get("bits", 32)

    if op == "requantize":
        mult = c["multiplier"]
        buffers = [io[0], res]
        if not isinstance(mult, int):
            m_sym = ctx.constant(f"{step.out}.multiplier", np.asarray(mult, dtype=np.int64)[None, :], 32)
            buffers.append(_Buffer(name="mult", kind="const", spad="out", pitch=width, symbol=m_sym, cols=width,
                                   rows=1))

        def body(blk, a):
            rows_of = dict(length=blk.cols, rows=blk.rows, pitch_a=blk.pitch, pitch_d=blk.pitch, shift=c["shift"],
                           out_bits=ob)
            if isinstance(mult, int):
                cmd = VectorCommand(op=VecOp.MULSHIFT, src_a=a["in0"], dst=a["out"], mult=mult, **rows_of)
            else:  # the multipliers' row again for every row
                cmd = VectorCommand(op=VecOp.MULSHIFT, src_a=a["in0"], src_b=a["mult"], dst=a["out"], pitch_b=0,
                                    b_mode=BMode.STREAM, **rows_of)
            return with_access(tile, [cmd])
        _vector_blocks(ctx, tag, label, rows, 1, buffers, body, split=width)

    elif op == "rmsnorm":
        scratch = _Buffer(name="scratch", kind="tmp", spad="out", pitch=1)

        def body(blk, a):
            return with_access(tile, rmsnorm_program(src=a["in0"], dst=a["out"], scratch=a["scratch"], length=width,
                                                      rows=blk.rows, pitch=width, out_bits=NORM_BITS))
        _vector_blocks(ctx, tag, label, rows, 1, [io[0], res, scratch], body)

    elif op in ("add", "mul"):
        vec_op = VecOp.ADD if op == "add" else VecOp.MUL

        def body(blk, a):
            return with_access(tile, [VectorCommand(op=vec_op, src_a=a["in0"], src_b=a["in1"], dst=a["out"],
                                                     length=blk.cols, rows=blk.rows, pitch_a=blk.pitch,
                                                     pitch_b=blk.pitch, pitch_d=blk.pitch, b_mode=BMode.STREAM,
                                                     out_bits=ob)])
        _vector_blocks(ctx, tag, label, rows, 1, [io[0], io[1], res], body, split=width)

    elif op == "silu":
        k = intops.ExpConstants.of(c["scale"])

        def body(blk, a):
            return with_access(tile, [VectorCommand(op=VecOp.SILU, src_a=a["in0"], dst=a["out"], length=blk.cols,
                                                     rows=blk.rows, pitch_a=blk.pitch, pitch_d=blk.pitch, exp=k,
                                                     mult=k.one, shift=SILU_BITS)])
        _vector_blocks(ctx, tag, label, rows, 1, [io[0], res], body, split=width)

    elif op == "rope":
        d, p, fb = c["head_dim"], c["position"], c["frac_bits"]
        cos, sin = (layer.constants[n] for n in ("rope_cos", "rope_sin"))
        # the rotation program's tables: [cos, cos] and [-sin, sin] per position
        cos_sym = ctx.constant("rope_cos.vector", np.concatenate([cos, cos], axis=1), 32)
        sin_sym = ctx.constant("rope_sin.vector", np.concatenate([-sin, sin], axis=1), 32)
        tables = [_Buffer(name=name, kind="in", spad="out", pitch=d, symbol=s, cols=d, row0=p)
                  for name, s in (("cos", cos_sym), ("sin", sin_sym))]
        tmp = [_Buffer(name=name, kind="tmp", spad="out", pitch=d) for name in ("rot", "scratch")]

        def body(blk, a):
            # the unit's rotation program (rope_program) per head, rows of x at the tensor's pitch
            # and the tables and products at one head's
            half, n = d // 2, blk.rows
            rows_of = dict(rows=n, pitch_a=width, pitch_b=d, pitch_d=d, b_mode=BMode.STREAM)
            commands = []
            for h in range(width // d):
                x_h, rot, scr = a["in0"] + h * d, a["rot"], a["scratch"]
                commands += [
                    VectorCommand(op=VecOp.MUL, src_a=x_h, src_b=a["cos"], dst=rot, length=d, **rows_of),
                    VectorCommand(op=VecOp.MUL, src_a=x_h + half, src_b=a["sin"], dst=scr, length=half, **rows_of),
                    VectorCommand(op=VecOp.MUL, src_a=x_h, src_b=a["sin"] + half, dst=scr + half, length=half,
                                  **rows_of),
                    VectorCommand(op=VecOp.ADD, src_a=rot, src_b=scr, dst=rot, length=d, rows=n, pitch_a=d,
                                  pitch_b=d, pitch_d=d, b_mode=BMode.STREAM),  # in place
                    VectorCommand(op=VecOp.MULSHIFT, src_a=rot, dst=a["out"] + h * d, length=d, rows=n,
                                  pitch_a=d, pitch_d=width, mult=1, shift=fb, out_bits=ACT_BITS)]
            return with_access(tile, commands)
        _vector_blocks(ctx, tag, label, rows, 1, [io[0], *tables, *tmp, res], body)

    elif op == "softmax":
        groups, group_rows, keys = x.shape
        tokens, p = c["tokens"], c["position"]
        scratch = _Buffer(name="scratch", kind="tmp", spad="out", pitch=1)

        def body(blk, a):
            # row i is token i % tokens; its keys beyond its causal length stay 0
            r0, n = blk.r0, blk.rows
            commands = []
            if tokens > 1:
                commands.append(VectorCommand(op=VecOp.MUL, src_a=a["in0"], dst=a["out"], length=keys, rows=n,
                                              pitch_a=keys, pitch_d=keys, mult=0, out_bits=ACT_BITS))
            for t in range(tokens):
                first = r0 + (t - r0) % tokens  # the block's first row of token t
                if first >= r0 + n:
                    continue
                count, local = (r0 + n - 1 - first) // tokens + 1, (first - r0) * keys
                # exp in place over the block's copy of the scores
                program = softmax_program(src=a["in0"] + local, dst=a["in0"] + local, scratch=a["scratch"],
                                          length=p + t + 1, rows=count, pitch=tokens * keys, scale=c["scale"],
                                          out_bits=PROB_BITS)
                commands += [*program[:-1], replace(program[-1], dst=a["out"] + local, out_bits=ACT_BITS)]
            return with_access(tile, commands)
        _vector_blocks(ctx, tag, label, groups * group_rows, 1, [io[0], scratch, res], body)
    else:
        raise ValueError(f"{tag}: vector op {op!r} has no lowering")
