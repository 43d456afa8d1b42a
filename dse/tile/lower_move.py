"""Lowering of a :class:`~peforge.dse.tile.intlayer.Move` step: DMA transfers through a
scratchpad (see :mod:`peforge.dse.tile.compiler`)."""

from __future__ import annotations

import numpy as np

from .context import VECTOR_SLICE, Context, spad_of
from .intlayer import Move

__all__ = ["lower_move"]


def lower_move(ctx: Context, step: Move, tag: str, label: str) -> None:
    """Rows of the source into slice 0's scratchpad, then 2-D stores into the new layout."""
    src, out = ctx.symbols[step.src], ctx.symbols[step.out]
    c = step.constants
    g, r, d = c["kv_heads"], c["group"], c["head_dim"]
    spad = spad_of(src)
    if out.elem_bytes != src.elem_bytes:
        raise ValueError(f"{tag}: a move keeps element widths, not {src.elem_bytes} to {out.elem_bytes} bytes")
    width = src.shape[-1]
    rows = int(np.prod(src.shape[:-1]))
    eb = src.elem_bytes
    free = ctx.tile.spads[spad].elements
    block = min(rows, free // width)
    tokens = src.shape[1] // r if step.op == "merge_heads" else src.shape[0]
    if step.op == "merge_heads":
        block = min(rows, (free // (width * tokens)) * tokens)  # whole (group, head) blocks of tokens
    if block < 1:
        raise ValueError(f"{tag}: a row of {width} elements does not fit the {spad} scratchpad")
    ctx.plans[label] = f"DMA, blocks of {block} rows through the {spad} scratchpad"
    P = out.shape[1] if step.op == "cache_rows" else (out.shape[2] if step.op == "cache_columns" else 0)
    for r0 in range(0, rows, block):
        n = min(block, rows - r0)
        ctx.load(tag=tag, symbol_addr=src.addr + r0 * src.row_bytes, spad=spad, offset=0, rows=n, elems=width,
                 dram_stride=src.row_bytes, pitch=width, slices=[VECTOR_SLICE], elem_bytes=eb)

        def put(addr, offset, count, elems, dram_stride, pitch):
            ctx.store(tag=tag, symbol_addr=addr, spad=spad, offset=offset, rows=count, elems=elems,
                      dram_stride=dram_stride, pitch=pitch, slice_=VECTOR_SLICE)

        if step.op == "split_heads":  # [T][G r d] -> [G][r T][d]
            for head in range(g * r):
                put(out.address(head // r, (head % r) * tokens + r0), head * d, n, d, d * eb, width)
        elif step.op == "merge_heads":  # [G][r T][d] -> [T][G r d]
            for b in range(r0 // tokens, (r0 + n) // tokens):
                put(out.address(0) + b * d * eb, (b * tokens - r0) * width, tokens, d, out.row_bytes, width)
        elif step.op == "cache_rows":  # [T][G d] -> rows p.. of [G][P][d]
            for head in range(g):
                put(out.address(head, c["position"] + r0), head * d, n, d, d * eb, width)
        elif step.op == "cache_columns":  # [T][G d] -> columns p.. of [G][d][P]: one element per DMA row
            for t in range(n):
                put(out.address(0) + (c["position"] + r0 + t) * eb, t * width, g * d, 1, P * eb, 1)
        else:
            raise ValueError(f"{tag}: move {step.op!r} has no lowering")
