"""Lowering of a :class:`~peforge.dse.tile.intlayer.Vector` step to vector-unit commands over
blocks of rows loaded into, and stored from, buffers placed over the slices' scratchpads (see
:mod:`peforge.dse.tile.compiler`). The buffers, the blocks and each block's commands are the
shared rule of :mod:`peforge.dse.tile.vector_lowering` (the cost model prices the same commands);
this module adds the DRAM tensors and the DMA around them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...hw.tile.config import TileConfig
from ...hw.tile.vector import VectorCommand
from .context import Context, spad_of
from .intlayer import IntLayer, Vector
from .program import Region
from .vector_lowering import Buffer, VectorStep, plan_blocks, step_buffers, step_commands

__all__ = ["lower_vector", "lower_vector_step", "with_access", "vector_ports"]


def _vector_blocks(ctx: Context, tag: str, label: str, step: VectorStep, buffers: list[Buffer],
                   split: int | None) -> None:
    """Run ``step``'s commands over its blocks (:func:`~peforge.dse.tile.vector_lowering.plan_blocks`),
    loading the ``in`` and ``const`` buffers and storing the ``out`` ones around them;
    double-buffered where two copies fit."""
    tile = ctx.tile
    plan = plan_blocks(tile, tag, step.rows, buffers, split)
    buffers, blocks, width = plan.buffers, plan.blocks, plan.width
    columns = f", columns in blocks of {width}" if width and width < split else ""
    ctx.plans[label] = (f"vector unit, blocks of {plan.block} rows{columns}, {plan.copies} "
                        f"cop{'ies' if plan.copies > 1 else 'y'}; "
                        + ", ".join(f"{b.name} in slice {b.slice}'s {b.spad} at {plan.base[b.name]}" for b in buffers))

    def transfer(b: Buffer, i: int):
        blk, symbol = blocks[i], b.symbol
        r0, count = (0, b.rows) if b.kind == "const" else (blk.r0, blk.rows)
        elems, c0 = (blk.cols, blk.c0) if plan.follows(b) else (b.cols, 0)
        addr = symbol.addr + (b.row0 + r0) * symbol.row_bytes + c0 * symbol.elem_bytes
        if b.kind == "out":
            ctx.store(tag=tag, symbol_addr=addr, spad=b.spad, offset=plan.offset(b, i), rows=count, elems=elems,
                      dram_stride=symbol.row_bytes, pitch=plan.pitch_of(b), slice_=b.slice)
        else:
            ctx.load(tag=tag, symbol_addr=addr, spad=b.spad, offset=plan.offset(b, i), rows=count, elems=elems,
                     dram_stride=symbol.row_bytes, pitch=plan.pitch_of(b), slices=[b.slice],
                     elem_bytes=symbol.elem_bytes)

    def loads(i):
        for b in buffers:
            # a constant once, or once per column block
            fresh = b.kind == "const" and (i == 0 or (plan.follows(b) and blocks[i].c0 != blocks[i - 1].c0))
            if b.kind == "in" or fresh:
                transfer(b, i)

    def stores(i):
        for b in buffers:
            if b.kind == "out":
                transfer(b, i)

    copies = plan.copies
    loads(0)
    for i, blk in enumerate(blocks):
        if i and copies == 1:  # one copy: stored before the next block overwrites it
            stores(i - 1)
        addresses = {b.name: tile.spad_base(b.slice, b.spad) + plan.offset(b, i) for b in buffers}
        for cmd, reads, writes in with_access(tile, step_commands(step, blk, addresses)):
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
    ins = [ctx.symbols[name] for name in step.inputs]
    out = ctx.symbols[step.out]
    x, c = ins[0], step.constants
    width = x.shape[-1]
    rows = int(np.prod(x.shape[:-1]))
    # the tensors that are data (rope's tables are buffers of their own)
    data = ins[:1] if step.op == "rope" else ins
    shaped = VectorStep(op=step.op, rows=rows, width=width, in_spads=tuple(spad_of(s) for s in data),
                        out_spad=spad_of(out), constants=dict(c))
    tables = tuple(layer.constants[n] for n in ("rope_cos", "rope_sin")) if step.op == "rope" else None
    lower_vector_step(ctx, shaped, data, out, tag, label, tables)


def lower_vector_step(ctx: Context, shaped: VectorStep, data: list, out, tag: str, label: str,
                      tables: tuple | None = None) -> None:
    """``shaped`` over the DRAM symbols ``data`` (its inputs) and ``out``: its constants' symbols
    (per-channel multipliers; RoPE's ``tables``, cos and sin ``[positions][head_dim / 2]``) and
    its blocks' commands and transfers."""
    c = shaped.constants
    buffers, split = step_buffers(shaped)
    symbols = {f"in{i}": s for i, s in enumerate(data)} | {"out": out}
    if shaped.op == "requantize" and not isinstance(c["multiplier"], int):
        symbols["mult"] = ctx.constant(f"{out.name}.multiplier", np.asarray(c["multiplier"], dtype=np.int64)[None, :],
                                       32)
    if shaped.op == "rope":
        cos, sin = tables
        # the rotation program's tables: [cos, cos] and [-sin, sin] per position
        symbols["cos"] = ctx.constant("rope_cos.vector", np.concatenate([cos, cos], axis=1), 32)
        symbols["sin"] = ctx.constant("rope_sin.vector", np.concatenate([-sin, sin], axis=1), 32)
    buffers = [replace(b, symbol=symbols.get(b.name)) for b in buffers]
    _vector_blocks(ctx, tag, label, shaped, buffers, split)
