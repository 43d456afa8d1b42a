"""The lowering of elementwise work to vector-unit commands, shared by the tile compiler and the
cost model (one rule: what the compiler issues is what the model prices).

A vector step (an :class:`~peforge.dse.tile.intlayer.Vector` of the integer layer, or one of the
steps :func:`graph_steps` derives from a graph operator's ``vector`` field) runs over blocks of
rows (and, for an elementwise op whose rows do not fit, of columns) held in buffers placed over
the slices' scratchpads: :func:`step_buffers` says which buffers, :func:`plan_blocks` how many
rows a block takes and where the buffers go (the largest block that fits, double-buffered where
two copies fit, slice 0's scratchpads first), :func:`step_commands` the commands of one block.
:mod:`peforge.dse.tile.lower_vector` adds the DMA around them (each ``in`` buffer loaded per
block, each ``const`` once or once per column block, each ``out`` stored per block:
:func:`step_bytes`); :func:`row_cycles` sums their :func:`~peforge.hw.tile.vector.vector_cycles`
and :func:`row_bytes` their DMA bytes for the cost model (``CostModel(tile_commands=True)``).

The graph's vector kinds (:data:`VECTOR_KINDS`, the ``vector`` field of
:class:`peforge.models.graph.Operator`): elementwise rows ``rmsnorm`` (the norm, then a
requantization by the per-channel gains), ``rope`` (q's and k's rotations), ``softmax`` (causal:
each token's rows as one command group of its length), ``add`` (the residual add, a 16-bit
addend), ``silu_mul`` (SiLU, the product with ``up``, a requantization); a matrix row's epilogue
``requantize`` (per-channel multipliers to INT8), ``requantize16`` (to 16 bits, feeding the
residual add), ``requantize_scalar`` (one multiplier: attention's context).

This module imports neither the compiler's mapping (:mod:`peforge.dse.tile.mapping`) nor the cost
model, so both can import it.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ...hw import intops
from ...hw.tile.vector import BMode, VecOp, VectorCommand, rmsnorm_program, softmax_program, vector_cycles
from ..cost.workload import VECTOR_CODES
from .intlayer import ACC_BITS, ACT_BITS, NORM_BITS, PROB_BITS, SILU_BITS

__all__ = ["VECTOR_KINDS", "Buffer", "Block", "BlockPlan", "VectorStep", "graph_steps", "step_buffers",
           "plan_blocks", "step_commands", "step_bytes", "row_cycles", "row_bytes", "row_steps", "step_figure",
           "MAX_STEPS", "STEP_FIGURES", "row_commands", "tile_vector_cycles"]

VECTOR_SLICE = 0  # the slice whose scratchpads a vector step prefers
# codes of the graph operators' ``vector`` field (0: no lowering, priced by nominal ops)
VECTOR_KINDS = VECTOR_CODES
_SCALE = 2.0 ** -4  # an exp input scale standing in for the workload's (it does not change the shapes)
_SPLIT_OPS = ("requantize", "add", "mul", "silu")  # elementwise: column blocks where a row does not fit


def spad_of_bits(bits: int) -> str:
    """The scratchpad kind a tensor of ``bits``-bit elements goes in: 8-bit ``act``, wider ``out``."""
    return "act" if bits <= 8 else "out"


@dataclass(frozen=True)
class Buffer:
    """A block of rows of one tensor in a scratchpad: ``kind`` ``in`` (loaded), ``out`` (stored),
    ``tmp``, or ``const`` (loaded once, one copy); ``spad`` the kind of scratchpad its elements need
    (``act``: 8-bit, ``out``: 32-bit; :func:`plan_blocks` may move it); ``pitch`` elements per row;
    DRAM rows from ``row0`` on of ``cols`` elements (``symbol``: the compiler's DRAM tensor)."""

    name: str
    kind: str
    spad: str
    pitch: int
    symbol: Any = None
    cols: int = 0
    row0: int = 0
    rows: int | None = None  # const: its rows (else the block's)
    slice: int = VECTOR_SLICE


@dataclass(frozen=True)
class Block:
    """One block of a vector step: rows ``r0 .. r0 + rows - 1``, columns ``c0 .. c0 + cols - 1`` of
    the split width (all of it unless split), held at ``pitch`` elements per row."""

    r0: int
    rows: int
    c0: int
    cols: int
    pitch: int


@dataclass(frozen=True)
class BlockPlan:
    """Where a step's buffers go and its blocks: ``buffers`` as placed, rows per ``block``, ``copies``
    (2: double-buffered), the column block ``width`` (None: whole rows), each buffer's ``base``
    offset in its scratchpad, and the ``blocks`` in program order."""

    buffers: tuple[Buffer, ...]
    block: int
    copies: int
    width: int | None
    split: int | None
    base: dict[str, int]
    blocks: tuple[Block, ...]

    def follows(self, b: Buffer) -> bool:
        """Whether ``b`` is cut into the column blocks (a tensor of the split width)."""
        return self.split is not None and b.cols == self.split and b.pitch == self.split

    def pitch_of(self, b: Buffer) -> int:
        return self.width if self.follows(b) else b.pitch

    def offset(self, b: Buffer, i: int) -> int:
        """``b``'s offset in its scratchpad for block ``i`` (copies alternate)."""
        if b.kind == "const":
            return self.base[b.name]
        return self.base[b.name] + (i % self.copies) * self.block * self.pitch_of(b)


@dataclass(frozen=True)
class VectorStep:
    """One vector step as the lowering sees it: ``op`` (``requantize``, ``rmsnorm``, ``add``,
    ``mul``, ``silu``, ``rope``, ``softmax``) over ``rows`` rows of ``width`` elements, its inputs'
    and its output's scratchpad kinds, and the op's ``constants`` (as the integer layer's
    :class:`~peforge.dse.tile.intlayer.Vector`: ``multiplier``, ``shift``, ``bits``, ``scale``,
    ``head_dim``, ``position``, ``frac_bits``, ``tokens``; ``softmax`` also ``groups``)."""

    op: str
    rows: int
    width: int
    in_spads: tuple[str, ...]
    out_spad: str
    constants: dict = field(default_factory=dict)


def graph_steps(kind: int, rows: int, width: int, a: int, b: int) -> list[VectorStep]:
    """The vector steps of a graph row: ``kind`` a :data:`VECTOR_KINDS` code, ``rows`` x ``width``
    its elements (a matrix row's epilogue: its products' outputs, ``count * m`` rows of ``n``);
    ``a``, ``b`` the kind's figures (``softmax``: tokens per sequence; ``rope``: head dim and the
    width of q's part). Constants that do not change the commands' shapes are placeholders."""
    name = {v: k for k, v in VECTOR_KINDS.items()}[int(kind)]
    per_channel = {"multiplier": (1,) * width, "shift": 31}
    if name == "rmsnorm":
        return [VectorStep("rmsnorm", rows, width, ("act",), spad_of_bits(ACC_BITS)),
                VectorStep("requantize", rows, width, (spad_of_bits(ACC_BITS),), "act", per_channel)]
    if name == "rope":
        rope = {"head_dim": a, "position": 0, "frac_bits": 0}
        return [VectorStep("rope", rows, w, ("act",), "act", rope) for w in (b, width - b) if w > 0]
    if name == "softmax":
        return [VectorStep("softmax", rows, width, (spad_of_bits(ACC_BITS),), "act",
                           {"scale": _SCALE, "tokens": a, "position": width - a})]
    if name == "add":  # the residual stream (INT8) plus a 16-bit projection
        return [VectorStep("add", rows, width, ("act", spad_of_bits(16)), "act", {"bits": ACT_BITS})]
    if name == "silu_mul":
        wide = spad_of_bits(ACC_BITS)
        return [VectorStep("silu", rows, width, ("act",), wide, {"scale": _SCALE}),
                VectorStep("mul", rows, width, (wide, "act"), wide),
                VectorStep("requantize", rows, width, (wide,), "act", {"multiplier": 1, "shift": 31})]
    if name in ("requantize", "requantize16"):
        out = "act" if name == "requantize" else spad_of_bits(16)
        return [VectorStep("requantize", rows, width, (spad_of_bits(ACC_BITS),), out, per_channel)]
    if name == "requantize_scalar":
        return [VectorStep("requantize", rows, width, (spad_of_bits(ACC_BITS),), "act",
                           {"multiplier": 1, "shift": 31})]
    return []


def step_buffers(step: VectorStep) -> tuple[list[Buffer], int | None]:
    """The buffers of ``step`` (inputs ``in0``, ``in1``, ..., output ``out``, the op's constants and
    temporaries; the compiler attaches the DRAM symbols) and the split width (None: whole rows)."""
    w, c = step.width, step.constants
    ins = [Buffer(name=f"in{i}", kind="in", spad=s, pitch=w, cols=w) for i, s in enumerate(step.in_spads)]
    out = Buffer(name="out", kind="out", spad=step.out_spad, pitch=w, cols=w)
    split = w if step.op in _SPLIT_OPS else None
    if step.op == "requantize":
        extra = ([Buffer(name="mult", kind="const", spad="out", pitch=w, cols=w, rows=1)]
                 if not isinstance(c["multiplier"], int) else [])
        return [ins[0], out, *extra], split
    scratch = Buffer(name="scratch", kind="tmp", spad="out", pitch=1)
    if step.op == "rmsnorm":
        return [ins[0], out, scratch], split
    if step.op == "softmax":
        return [ins[0], scratch, out], split
    if step.op in ("add", "mul"):
        return [ins[0], ins[1], out], split
    if step.op == "silu":
        return [ins[0], out], split
    if step.op == "rope":
        d, p = c["head_dim"], c["position"]
        tables = [Buffer(name=name, kind="in", spad="out", pitch=d, cols=d, row0=p) for name in ("cos", "sin")]
        tmp = [Buffer(name=name, kind="tmp", spad="out", pitch=d) for name in ("rot", "scratch")]
        return [ins[0], *tables, *tmp, out], split
    raise ValueError(f"vector op {step.op!r} has no lowering")


def _placements(tile, buffers: list[Buffer]) -> list[list[Buffer]]:
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


def _layout(tile, placed, block, copies, width, split):
    """Each buffer's base offset (a bump allocation per scratchpad, regions word-aligned) and the
    tops; None where a scratchpad overflows."""
    top: dict[tuple[int, str], int] = {}
    base = {}
    for b in placed:
        count, size = (1, b.rows) if b.kind == "const" else (copies, block)
        follows = split is not None and b.cols == split and b.pitch == split
        w = tile.spads[b.spad].word_elements
        base[b.name] = -(-top.get((b.slice, b.spad), 0) // w) * w
        top[b.slice, b.spad] = base[b.name] + count * size * (width if follows else b.pitch)
    if all(end <= tile.spads[spad].elements for (_, spad), end in top.items()):
        return base
    return None


def plan_blocks(tile, tag: str, rows: int, buffers: list[Buffer], split: int | None,
                granule: int = 1) -> BlockPlan:
    """Blocks of ``rows`` (multiples of ``granule``) and, with ``split`` (the width of an
    elementwise op's tensors) where a whole row does not fit, of columns, for ``buffers`` on
    ``tile`` (a :class:`~peforge.hw.tile.config.TileConfig`): the first placement
    (:func:`_placements`) where any block fits, then whole rows before column blocks, two copies
    before one, the most rows. ``ValueError`` naming ``tag`` where nothing fits."""
    widths = sorted({-(-split // parts) for parts in range(1, split + 1)}, reverse=True) if split else [None]
    choice = None
    for placed in _placements(tile, buffers):
        for width in widths:
            for copies in (2, 1):
                # the largest block that fits: fitting is monotone in the block, so bisect
                low, high = 0, rows // granule
                while low < high:
                    mid = (low + high + 1) // 2
                    if _layout(tile, placed, mid * granule, copies, width, split) is None:
                        high = mid - 1
                    else:
                        low = mid
                if low:
                    choice = (placed, low * granule, copies, width)
                    break
            if choice:
                break
        if choice:
            break
    if choice is None:
        raise ValueError(f"{tag}: rows of {', '.join(f'{b.name} {b.pitch}' for b in buffers)} elements do not fit "
                         f"the scratchpads")
    placed, block, copies, width = choice
    base = _layout(tile, placed, block, copies, width, split)
    chunks = [(c0, min(width, split - c0)) for c0 in range(0, split, width)] if split else [(0, 0)]
    blocks = tuple(Block(r0, min(block, rows - r0), c0, cols, width or 0) for c0, cols in chunks
                   for r0 in range(0, rows, block))
    return BlockPlan(buffers=tuple(placed), block=block, copies=copies, width=width, split=split, base=base,
                     blocks=blocks)


def step_commands(step: VectorStep, blk: Block, a: dict[str, int]) -> list[VectorCommand]:
    """The commands of ``step`` on block ``blk``, its buffers at the vector unit's element
    addresses ``a`` (by buffer name)."""
    c, width, op = step.constants, step.width, step.op
    ob = c.get("bits", 32)
    if op == "requantize":
        mult = c["multiplier"]
        rows_of = dict(length=blk.cols, rows=blk.rows, pitch_a=blk.pitch, pitch_d=blk.pitch, shift=c["shift"],
                       out_bits=ob)
        if isinstance(mult, int):
            return [VectorCommand(op=VecOp.MULSHIFT, src_a=a["in0"], dst=a["out"], mult=mult, **rows_of)]
        # the multipliers' row again for every row
        return [VectorCommand(op=VecOp.MULSHIFT, src_a=a["in0"], src_b=a["mult"], dst=a["out"], pitch_b=0,
                              b_mode=BMode.STREAM, **rows_of)]
    if op == "rmsnorm":
        return rmsnorm_program(src=a["in0"], dst=a["out"], scratch=a["scratch"], length=width, rows=blk.rows,
                               pitch=width, out_bits=NORM_BITS)
    if op in ("add", "mul"):
        return [VectorCommand(op=VecOp.ADD if op == "add" else VecOp.MUL, src_a=a["in0"], src_b=a["in1"],
                              dst=a["out"], length=blk.cols, rows=blk.rows, pitch_a=blk.pitch, pitch_b=blk.pitch,
                              pitch_d=blk.pitch, b_mode=BMode.STREAM, out_bits=ob)]
    if op == "silu":
        k = intops.ExpConstants.of(c["scale"])
        return [VectorCommand(op=VecOp.SILU, src_a=a["in0"], dst=a["out"], length=blk.cols, rows=blk.rows,
                              pitch_a=blk.pitch, pitch_d=blk.pitch, exp=k, mult=k.one, shift=SILU_BITS)]
    if op == "rope":
        # the unit's rotation program (rope_program) per head, rows of x at the tensor's pitch and
        # the tables and products at one head's
        d, fb = c["head_dim"], c["frac_bits"]
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
        return commands
    if op == "softmax":
        # row i is token i % tokens; its keys beyond its causal length stay 0
        commands = [_softmax_clear(step, blk, a)] if c["tokens"] > 1 else []
        for _, count, local, length in zip(*_softmax_groups(step, np.array([blk.r0]), np.array([blk.rows]))):
            commands += _softmax_group(step, a, int(local[0]), int(count[0]), int(length[0]))
        return commands
    raise ValueError(f"vector op {op!r} has no lowering")


def _softmax_clear(step: VectorStep, blk: Block, a: dict[str, int]) -> VectorCommand:
    """A causal softmax's first command of a block: its probabilities zeroed (the keys beyond a
    row's causal length stay 0)."""
    keys = step.width
    return VectorCommand(op=VecOp.MUL, src_a=a["in0"], dst=a["out"], length=keys, rows=blk.rows, pitch_a=keys,
                         pitch_d=keys, mult=0, out_bits=ACT_BITS)


def _softmax_groups(step: VectorStep, r0: np.ndarray, n: np.ndarray):
    """Per token ``t`` of a softmax step and per block (rows ``r0 ..``, ``n`` of them: arrays): the
    block's rows of token ``t`` (``count``, 0: none), the first one's offset in the block
    (``local``, elements) and the causal length; arrays ``(tokens, blocks)``."""
    keys, tokens, p = step.width, step.constants["tokens"], step.constants["position"]
    t = np.arange(tokens)[:, None]
    first = r0[None, :] + (t - r0[None, :]) % tokens  # the block's first row of token t
    inside = first < (r0 + n)[None, :]
    count = np.where(inside, (r0 + n - 1)[None, :] - first, -tokens) // tokens + 1
    local = (first - r0[None, :]) * keys
    return np.arange(tokens), count, local, np.broadcast_to(p + t + 1, count.shape)


def _softmax_group(step: VectorStep, a: dict[str, int], local: int, count: int, length: int) -> list[VectorCommand]:
    """The commands of one token's ``count`` rows of a block (``count`` 0: none): the unit's
    softmax program, exp in place over the block's copy of the scores, probabilities to ``out``."""
    if count < 1:
        return []
    program = softmax_program(src=a["in0"] + local, dst=a["in0"] + local, scratch=a["scratch"], length=length,
                              rows=count, pitch=step.constants["tokens"] * step.width, scale=step.constants["scale"],
                              out_bits=PROB_BITS)
    return [*program[:-1], replace(program[-1], dst=a["out"] + local, out_bits=ACT_BITS)]


def step_bytes(tile, plan: BlockPlan) -> int:
    """The bytes the DMA moves for a vector step over ``plan``'s blocks on ``tile``: every ``in``
    buffer loaded and every ``out`` one stored per block, a ``const`` once (once per column block
    where it follows them); what :func:`~peforge.dse.tile.lower_vector.lower_vector` transfers."""
    total = 0
    for b in plan.buffers:
        if b.kind == "tmp":
            continue
        eb = tile.element_bytes(b.spad)
        if b.kind == "const":
            chunks = {blk.c0: blk.cols for blk in plan.blocks} if plan.follows(b) else {0: b.cols}
            total += b.rows * sum(chunks.values()) * eb
        else:
            total += sum(blk.rows * (blk.cols if plan.follows(b) else b.cols) for blk in plan.blocks) * eb
    return total


def _cycles(tile, commands, length=None, rows=None) -> int:
    """Summed :func:`~peforge.hw.tile.vector.vector_cycles` of ``commands`` on ``tile``'s unit, or
    of each command as a template over ``length`` and ``rows`` arrays (0 rows: none)."""
    total = 0
    for cmd in commands:
        n = cmd.rows if rows is None else rows
        cycles = vector_cycles(lanes=tile.vector_lanes, op=cmd.op, post=cmd.post,
                               length=cmd.length if length is None else length, rows=n, shift=cmd.shift,
                               sigmoid_bits=tile.vector.sigmoid_bits)
        total += int(np.sum(np.where(np.asarray(n) > 0, cycles, 0)))
    return total


def _step_cycles(tile, step: VectorStep, plan: BlockPlan) -> int:
    """The cycles of ``step``'s commands over ``plan``'s blocks: a softmax's token groups as
    templates over arrays (a long prompt has thousands per block); any other op's commands once
    per distinct block size (they depend on nothing else)."""
    if step.op != "softmax":
        sizes = Counter((blk.rows, blk.cols, blk.pitch) for blk in plan.blocks)
        return sum(times * _cycles(tile, step_commands(step, Block(0, rows, 0, cols, pitch), _Zero()))
                   for (rows, cols, pitch), times in sizes.items())
    r0 = np.array([blk.r0 for blk in plan.blocks])
    n = np.array([blk.rows for blk in plan.blocks])
    _, count, _, length = _softmax_groups(step, r0, n)
    total = _cycles(tile, _softmax_group(step, _Zero(), 0, 1, 1), length=length, rows=np.maximum(count, 0))
    if step.constants["tokens"] > 1:
        total += _cycles(tile, [_softmax_clear(step, plan.blocks[0], _Zero())], rows=n)
    return total


class _Zero(dict):
    """Addresses of no consequence: every buffer at 0 (the commands' shapes do not depend on them)."""

    def __missing__(self, key):
        return 0


def row_commands(tile, kind: int, rows: int, width: int, a: int, b: int) -> list[VectorCommand]:
    """Every vector command the compiler issues for a graph row (:func:`graph_steps`) on ``tile``,
    at placeholder addresses; ``ValueError`` where the tile cannot hold its blocks."""
    commands = []
    for step in graph_steps(kind, rows, width, a, b):
        buffers, split = step_buffers(step)
        plan = plan_blocks(tile, step.op, step.rows, buffers, split)
        for blk in plan.blocks:
            commands += step_commands(step, blk, _Zero())
    return commands


@functools.lru_cache(maxsize=65536)
def row_cycles(tile, kind: int, rows: int, width: int, a: int, b: int) -> float:
    """The vector unit's cycles for a graph row on ``tile``: the sum of
    :func:`~peforge.hw.tile.vector.vector_cycles` of :func:`row_commands`, in closed form over
    its repeated shapes (:func:`_step_cycles`); NaN where the tile cannot hold its blocks (the cost
    model then keeps the nominal figure). Cached: a search prices the same rows on the same tiles
    again."""
    total = 0
    try:
        for step in graph_steps(kind, rows, width, a, b):
            buffers, split = step_buffers(step)
            total += _step_cycles(tile, step, plan_blocks(tile, step.op, step.rows, buffers, split))
    except ValueError:
        return float("nan")
    return float(total)


@functools.lru_cache(maxsize=65536)
def row_bytes(tile, kind: int, rows: int, width: int, a: int, b: int) -> float:
    """The DMA's bytes for a graph row's vector steps on ``tile`` (:func:`step_bytes` of each):
    every step loads its operands and stores its result; NaN where the tile cannot hold its
    blocks."""
    total = 0
    try:
        for step in graph_steps(kind, rows, width, a, b):
            buffers, split = step_buffers(step)
            total += step_bytes(tile, plan_blocks(tile, step.op, step.rows, buffers, split))
    except ValueError:
        return float("nan")
    return float(total)


MAX_STEPS = 3  # vector steps of a graph row at most (SiLU-mul: SiLU, the product, a requantization)


MAX_STEPS = 3  # vector steps of a graph row at most (SiLU-mul: SiLU, the product, a requantization)
STEP_FIGURES = ("cycles", "loads", "stores", "blocks", "overlap")


def _overlaps(step: VectorStep, plan: BlockPlan) -> bool:
    """Whether the next block's loads can run beside a block's commands: two copies, and no load
    on a scratchpad the commands write (the DMA and the vector unit's writes share its port; a
    store always shares the destination's, so it waits for the block's commands)."""
    written = {(b.slice, b.spad) for b in plan.buffers
               if b.kind in ("out", "tmp") or (step.op == "softmax" and b.name == "in0")}  # softmax: exp in place
    loaded = {(b.slice, b.spad) for b in plan.buffers if b.kind in ("in", "const")}
    return plan.copies > 1 and not written & loaded


def _dma_cycles(tile, memory, plan: BlockPlan) -> tuple[int, int]:
    """The DMA's cycles for a vector step's loads and its stores over ``memory`` (each transfer
    :meth:`DmaConfig.cycles <peforge.hw.tile.dma.DmaConfig.cycles>` of its rows, from a
    bus-aligned DRAM row: the compiler's tensors start aligned)."""
    from ...hw.tile.dma import DmaCommand

    def cycles(direction, rows, elems, b):
        eb = tile.element_bytes(b.spad)
        return tile.dma.cycles(DmaCommand(dir=direction, dram_addr=0, spad_addr=0, rows=rows, row_bytes=elems * eb,
                                          dram_stride=elems * eb if rows > 1 else 0,
                                          spad_stride=elems if rows > 1 else 0), memory)

    loads = stores = 0
    for b in plan.buffers:
        if b.kind == "const":
            chunks = {blk.c0: blk.cols for blk in plan.blocks} if plan.follows(b) else {0: b.cols}
            loads += sum(cycles("load", b.rows, cols, b) for cols in chunks.values())
        elif b.kind in ("in", "out"):
            moved = sum(cycles("load" if b.kind == "in" else "store", blk.rows,
                               blk.cols if plan.follows(b) else b.cols, b) for blk in plan.blocks)
            loads, stores = (loads + moved, stores) if b.kind == "in" else (loads, stores + moved)
    return loads, stores


@functools.lru_cache(maxsize=65536)
def row_steps(tile, memory, kind: int, rows: int, width: int, a: int, b: int) -> tuple[tuple[float, ...], ...]:
    """Each vector step of a graph row on ``tile`` over ``memory`` (a
    :class:`~peforge.hw.tile.dma.MemoryModel`; :data:`MAX_STEPS` steps, zeros past the last): its
    :data:`STEP_FIGURES`, the commands' cycles, the DMA's cycles for its loads and for its stores,
    the blocks and whether the next block's loads run beside a block's commands (1.0, else 0.0:
    :func:`_overlaps`); NaN where the tile cannot hold its blocks. The compiler runs a row's steps
    one after another, each block's loads, commands and store in turn."""
    out = []
    try:
        for step in graph_steps(kind, rows, width, a, b):
            buffers, split = step_buffers(step)
            plan = plan_blocks(tile, step.op, step.rows, buffers, split)
            out.append((float(_step_cycles(tile, step, plan)), *map(float, _dma_cycles(tile, memory, plan)),
                        float(len(plan.blocks)), float(_overlaps(step, plan))))
    except ValueError:
        return ((float("nan"),) * len(STEP_FIGURES),) * MAX_STEPS
    return tuple(out + [(0.0,) * len(STEP_FIGURES)] * (MAX_STEPS - len(out)))


def step_figure(index: int, part: str):
    """A rule for :func:`tile_vector_cycles` over ``(tile, memory)`` pairs: figure ``part`` (of
    :data:`STEP_FIGURES`) of step ``index`` of :func:`row_steps`."""
    column = STEP_FIGURES.index(part)

    def rule(tile_memory, kind, rows, width, a, b):
        return row_steps(*tile_memory, kind, rows, width, a, b)[index][column]
    return rule


def tile_vector_cycles(tiles, kind, rows, width, a, b, rule=row_cycles) -> np.ndarray:
    """:func:`row_cycles` (or ``rule``: :func:`row_bytes`, :func:`step_figure`) of every cell for
    every design's tile: ``tiles`` one per design (what ``rule`` takes first; None:
    no tile), the other arguments arrays that broadcast (codes, figures); an array of shape
    ``(designs, *cells)``, NaN where a design has no tile, the tile cannot hold a row's blocks, or
    a cell has no lowering (code 0). The distinct cells are lowered once per distinct tile."""
    cells = np.broadcast(kind, rows, width, a, b).shape
    columns = [np.broadcast_to(np.asarray(v), cells).reshape(-1) for v in (kind, rows, width, a, b)]
    keys = np.stack(columns, axis=1).astype(np.int64)
    lowered = keys[:, 0] > 0
    unique, inverse = np.unique(keys[lowered], axis=0, return_inverse=True)
    out = np.full((len(tiles), keys.shape[0]), np.nan)
    by_tile: dict[Any, np.ndarray] = {}
    for d, tile in enumerate(tiles):
        if tile is None or not len(unique):
            continue
        if tile not in by_tile:
            by_tile[tile] = np.array([rule(tile, *map(int, key)) for key in unique])
        out[d, lowered] = by_tile[tile][inverse.reshape(-1)]
    return out.reshape(len(tiles), *cells)
