"""The compiler from the integer decoder layer and the mapper's mappings to the tile's program.

:func:`compile_layer` lowers the steps of :meth:`IntLayer.steps
<peforge.dse.tile.intlayer.IntLayer.steps>` one by one:

- every named tensor lives in DRAM (:mod:`peforge.dse.tile.dram`): the inputs, the constants
  (weights packed in the tiles the GEMMs load, RoPE's tables in the vector unit's layout, per-channel
  requantization multipliers), each step's output and the KV cache (at the same addresses for any
  ``tokens`` and ``position``, so a decode image takes over a prefill's cache); a step loads its
  operands tile by tile into the scratchpads and stores its result;
- a :class:`~peforge.dse.tile.intlayer.Gemm` follows its operator's :class:`OperatorMapping`: the
  products side by side or one at a time over the arrays, each product's arrays splitting M, N, K
  or two of them (N and M, N and K, shared as :func:`~peforge.dse.cost.mapper.two_way` says; a
  shared operand is loaded once into every slice that needs it, by the DMA's slice mask; the
  partial sums of a K split added by the vector unit into the first slice's tile, then stored), the
  tiling family as the loop order (*on chip* and *activations resident*: a row block of A stays
  while weight tiles stream; *weights resident*: the converse; *K-blocked*: output tiles whose K
  blocks of one array fold accumulate in the output scratchpad), the mapping's tile sizes
  (shrunk, and said so in :attr:`Compiled.plans`, where a slice's scratchpads or the array's GEMM
  limits cannot hold them; the free side of a resident family as large as fits), and double
  buffering (two copies of each streamed operand and of the output tile: the DMA fills one while
  the array reads the other). Where no tile of the mapping's family fits a slice, the K-blocked
  tiling of the widest K block that does; several accumulation passes over K (a K beyond the PE's
  accumulation bound): K-blocked, one array fold per GEMM. Refused, with a ``ValueError`` naming
  the operator: fused attention, a PE with per-column metadata (the mixed PE: its weights are not
  INT8);
- a :class:`~peforge.dse.tile.intlayer.Vector` step runs on the vector unit over row blocks (and
  column blocks for an elementwise op whose rows do not fit), double-buffered where two copies
  fit: ``requantize`` one ``MULSHIFT`` (per-channel multipliers as a streamed row), ``rmsnorm``
  and ``softmax`` the unit's programs (the causal rows of a token as one command group of their
  length, the rest of the row zero), ``rope`` the unit's rotation program per head (the tables
  and products at one head's pitch), ``silu``, ``mul``, ``add`` one command each. Its buffers
  (8-bit data in an activation or weight scratchpad, 32-bit in an output one) are placed over
  every slice's scratchpads so that no command has two operands in one (a scratchpad's access
  port serves one per cycle) where the tile has enough of them: four slices do; with one or two
  (one 32-bit scratchpad each) softmax's exp, RoPE's sums and some requantizations cannot, and
  :func:`~peforge.dse.tile.interpret.shared_operands` lists those commands;
- a :class:`~peforge.dse.tile.intlayer.Move` is DMA only: rows loaded into a scratchpad, stored
  back in the new layout by 2-D transfers (the V cache's transposed columns one byte per row).

``Wait`` instructions come from :class:`~peforge.dse.tile.program.ProgramBuilder`: only where a
command depends on, or would overwrite, what another unit may still be doing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import zip_longest
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from ...arith import ceil_div
from ...hw import intops
from ...hw.tile.config import SPAD_ID_BITS, SPADS, TileConfig
from ...hw.tile.dma import DmaCommand
from ...hw.tile.gemm import GemmCommand
from ...hw.tile.isa import Instruction
from ...hw.tile.vector import BMode, VecOp, VectorCommand, rmsnorm_program, softmax_program
from ..cost import mapper
from .dram import ALIGN, Symbol, Tile, storage_bytes
from .intlayer import ACT_BITS, NORM_BITS, PROB_BITS, SILU_BITS, Gemm, IntLayer, KVCache, Move, Step, Vector, \
    output_bits
from .mapping import OperatorMapping
from .program import ProgramBuilder, Region

__all__ = ["Compiled", "compile_layer", "operator_of_steps", "split_address", "CACHE_NAMES"]

CACHE_NAMES = ("k_cache", "v_cache_t")
VECTOR_SLICE = 0  # the vector unit works in slice 0's scratchpads
# The graph operator of a step that is not a Gemm, by the tensor it writes (a requantization of a
# GEMM's accumulators is that GEMM's epilogue, found by its input).
_OPERATOR_OF_OUTPUT = {
    "attn_norm_rms": "input_norm", "attn_norm": "input_norm", "q_rot": "rope", "k_rot": "rope",
    "k_cache": "attn.score", "v_cache_t": "attn.context", "q_heads": "attn.score", "probs": "attn.softmax",
    "attn": "attn.context", "h": "residual_add", "mlp_norm_rms": "post_attention_norm",
    "mlp_norm": "post_attention_norm", "gate_silu": "mlp.silu_mul", "gate_up": "mlp.silu_mul",
    "mlp_act": "mlp.silu_mul", "out": "residual_add",
}


def operator_of_steps(steps: list[Step]) -> list[str]:
    """The operator of :mod:`peforge.models.graph` each step belongs to (the cycle table's rows)."""
    producer: dict[str, str] = {}
    names = []
    for step in steps:
        if isinstance(step, Gemm):
            name = step.name
        elif isinstance(step, Vector) and step.op == "requantize" and step.inputs[0] in producer:
            name = producer[step.inputs[0]]
        else:
            name = _OPERATOR_OF_OUTPUT.get(step.out, step.out)
        producer[step.out] = name
        names.append(name)
    return names


@dataclass(frozen=True)
class Compiled:
    """A layer compiled for a tile.

    Attributes
    ----------
    tile : TileConfig
    tokens, position : int
        The new tokens and the first one's position (the cache holds ``position`` tokens).
    program : tuple of Instruction
        Ends with ``End``; ``Issue`` commands are the units' command dataclasses.
    tags : tuple of str
        The graph operator of each instruction (``end`` for the ``End``).
    symbols : dict of str to Symbol
        Every named tensor in DRAM.
    dram_bytes : int
        Size of the DRAM image.
    constants : dict of str to numpy array
        The constant tensors the image holds (the layer's, and the derived tables).
    plans : dict of str to str
        Per step (``"<index> <operator>"``): the mapping followed, tiles and buffers used.
    lifetimes : dict of str to tuple of int
        Per named tensor: the first step writing it and the last reading it (-1: an input / none).
    """

    tile: TileConfig
    tokens: int
    position: int
    program: tuple[Instruction, ...]
    tags: tuple[str, ...]
    symbols: dict[str, Symbol]
    dram_bytes: int
    constants: dict[str, np.ndarray]
    plans: dict[str, str]
    lifetimes: dict[str, tuple[int, int]]

    def image(self, x, cache: KVCache | None = None) -> bytearray:
        """The DRAM image to start from: constants, the input rows ``x`` ``[tokens][hidden]`` and
        ``cache`` (zeros if None)."""
        dram = bytearray(self.dram_bytes)
        for name, value in self.constants.items():
            self.symbols[name].write(dram, value)
        self.symbols["x"].write(dram, x)
        if cache is not None:
            self.symbols["k_cache"].write(dram, cache.k)
            self.symbols["v_cache_t"].write(dram, cache.v_t)
        return dram

    def read(self, dram: bytes, name: str) -> np.ndarray:
        """Named tensor ``name`` as held in ``dram``."""
        return self.symbols[name].read(dram)


# --- the context of one compilation ----------------------------------------------------------


@dataclass
class _Context:
    tile: TileConfig
    builder: ProgramBuilder
    symbols: dict[str, Symbol]
    constants: dict[str, np.ndarray]
    top: int  # next free DRAM byte
    plans: dict[str, str] = field(default_factory=dict)

    def allocate(self, size: int) -> int:
        addr = self.top
        self.top += -(-size // ALIGN) * ALIGN
        return addr

    def add(self, name: str, shape, bits: int) -> Symbol:
        symbol = Symbol(name=name, addr=0, shape=tuple(int(s) for s in shape), elem_bytes=storage_bytes(bits))
        symbol = replace(symbol, addr=self.allocate(symbol.size))
        self.symbols[name] = symbol
        return symbol

    def constant(self, name: str, value: np.ndarray, bits: int) -> Symbol:
        if name not in self.symbols:
            self.add(name, value.shape, bits)
            self.constants[name] = value
        return self.symbols[name]

    # addresses of scratchpad elements, for the DMA (bytes) and the vector unit (elements)
    def dma_spad(self, spad: str, offset: int) -> int:
        return self.tile.dma_base(spad) + offset * self.tile.element_bytes(spad)

    def vec(self, spad: str, offset: int) -> int:
        return self.tile.spad_base(VECTOR_SLICE, spad) + offset

    def transfer(self, direction: str, *, tag, symbol_addr, spad, offset, rows, elems, dram_stride, pitch, slices,
                 elem_bytes) -> None:
        """A 2-D DMA ``load`` or ``store`` of ``rows`` rows of ``elems`` elements at ``offset`` of
        ``spad`` (row pitch ``pitch`` elements) in every slice of ``slices`` (a store: one), the DRAM
        rows ``dram_stride`` bytes apart from ``symbol_addr``."""
        eb = self.tile.element_bytes(spad)
        if eb != elem_bytes:
            raise ValueError(f"{tag}: {elem_bytes}-byte elements cannot move to or from the {eb}-byte {spad} "
                             f"scratchpad")
        cmd = DmaCommand(dir=direction, dram_addr=symbol_addr, spad_addr=self.dma_spad(spad, offset), rows=rows,
                         row_bytes=elems * eb, dram_stride=dram_stride if rows > 1 else 0,
                         spad_stride=pitch * eb if rows > 1 else 0, slice_mask=sum(1 << s for s in slices))
        touched = [Region(s, spad, offset, offset + (rows - 1) * pitch + elems) for s in slices]
        self.builder.issue("dma", cmd, ports=[(s, spad) for s in slices], tag=tag,
                           **({"writes": touched} if direction == "load" else {"reads": touched}))

    def load(self, **transfer) -> None:
        self.transfer("load", **transfer)

    def store(self, *, slice_: int, **transfer) -> None:
        spad = transfer["spad"]
        self.transfer("store", slices=[slice_], elem_bytes=self.tile.element_bytes(spad), **transfer)


class _Arena:
    """Bump allocation of word-aligned regions in each scratchpad of a slice (the same offsets in
    every slice), for one step."""

    def __init__(self, tile: TileConfig):
        self.tile = tile
        self.top = {name: 0 for name in tile.spads}

    def fits(self, needs: dict[str, int]) -> bool:
        return all(self._end(spad, self.top[spad], size) <= self.tile.spads[spad].elements
                   for spad, size in needs.items())

    def _end(self, spad: str, start: int, size: int) -> int:
        w = self.tile.spads[spad].word_elements
        return -(-start // w) * w + size

    def alloc(self, spad: str, size: int, tag: str) -> int:
        w = self.tile.spads[spad].word_elements
        start = -(-self.top[spad] // w) * w
        if start + size > self.tile.spads[spad].elements:
            raise ValueError(f"{tag}: {size} elements do not fit the {spad} scratchpad "
                             f"({self.tile.spads[spad].elements - start} free)")
        self.top[spad] = start + size
        return start


# --- GEMM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Share:
    """One array's part of one product: rows ``m0 .. m1 - 1`` and columns ``n0 .. n1 - 1`` of C,
    over ``k0 .. k1 - 1`` of K (a part of K: partial sums, added by the vector unit)."""

    slice: int
    product: int
    m0: int
    m1: int
    n0: int
    n1: int
    k0: int
    k1: int


@dataclass(frozen=True)
class _Job:
    share: _Share
    m0: int
    m1: int
    n0: int
    n1: int
    k0: int
    k1: int
    first: bool  # the first K block of its output tile
    last: bool  # the last: the tile is stored after it


def _parts(total: int, parts: int, unit: int) -> list[tuple[int, int]]:
    """``total`` cut into at most ``parts`` ranges of whole ``unit`` multiples (the last shorter)."""
    size = ceil_div(ceil_div(total, unit), parts) * unit
    return [(lo, min(total, lo + size)) for lo in range(0, total, size)]


def _shares(tile: TileConfig, step: Gemm, mapping: OperatorMapping) -> list[list[_Share]]:
    """The products' shares per round (products side by side, or one at a time)."""
    arrays, count = tile.arrays, step.count
    in_flight = min(count, arrays) if mapping.side_by_side else 1
    per_product = min(max(1, mapping.arrays), arrays // in_flight)
    split = mapping.split
    m, n, k = step.m, step.n, step.k
    fold = tile.array.rows * tile.array.lanes
    if per_product > 1 and split in ("MN", "KN"):
        # the mapper's share of the arrays between N's column folds and M (or K's row folds)
        shape = SimpleNamespace(rows=tile.array.rows, cols=tile.array.cols, lanes=tile.array.lanes)
        parts = mapper.two_way(shape, np.float64(per_product), np.int64(mapper.SPLITS.index(split)), m, k, n)
        n_parts, other = (int(np.ravel(v)[0]) for v in parts)
    rounds = []
    for first in range(0, count, in_flight):
        shares = []
        for i, product in enumerate(range(first, min(count, first + in_flight))):
            slices = range(i * per_product, (i + 1) * per_product)
            if per_product == 1 or split == "N":
                cuts = _parts(n, per_product, tile.array.cols)
                shares += [_Share(s, product, 0, m, n0, n1, 0, k) for s, (n0, n1) in zip(slices, cuts)]
            elif split == "M":
                cuts = _parts(m, per_product, 1)
                shares += [_Share(s, product, m0, m1, 0, n, 0, k) for s, (m0, m1) in zip(slices, cuts)]
            elif split == "K":  # in parts of whole array folds
                cuts = _parts(k, per_product, fold)
                shares += [_Share(s, product, 0, m, 0, n, k0, k1) for s, (k0, k1) in zip(slices, cuts)]
            else:  # N and M, or N and K, on a grid of the product's arrays
                cells = [(nc, oc) for nc in _parts(n, n_parts, tile.array.cols)
                         for oc in (_parts(m, other, 1) if split == "MN" else _parts(k, other, fold))]
                for s, ((n0, n1), (o0, o1)) in zip(slices, cells):
                    shares.append(_Share(s, product, o0, o1, n0, n1, 0, k) if split == "MN"
                                  else _Share(s, product, 0, m, n0, n1, o0, o1))
        rounds.append(shares)
    return rounds


@dataclass(frozen=True)
class _Tiling:
    tm: int
    tn: int
    kb: int
    copies: dict[str, int]  # act, weight, out
    order: str  # "a" (A row block resident), "b" (weights resident), "k" (K-blocked)


def _gemm_needs(tile: TileConfig, tm: int, tn: int, kb: int, copies: dict[str, int]) -> dict[str, int]:
    g = tile.gemm
    return {"act": copies["act"] * tm * g.act.row_pitch(kb) * g.act.word_elements,
            "weight": copies["weight"] * tn * g.weight.row_pitch(kb) * g.weight.word_elements,
            "out": copies["out"] * tm * ceil_div(tn, g.out.word_elements) * g.out.word_elements}


def _tiling(tile: TileConfig, step: Gemm, mapping: OperatorMapping, ms: int, ns: int, ks: int) -> tuple[_Tiling, str]:
    """Tile sizes and buffer copies for shares of at most ``ms x ns`` outputs over ``ks`` of K, and a note of how
    they differ from the mapping's. Where no tile of the mapping's family fits a slice (K longer
    than a scratchpad row or the array's ``max_k``), the K-blocked tiling of the widest K block of
    whole array folds that fits."""
    a = tile.array
    family = mapping.family
    if family == mapper.FUSED:
        raise ValueError(f"{step.name}: fused attention; the tile compiler runs the unfused score, softmax, context")
    copy = 2 if mapping.double else 1
    order = {mapper.ON_CHIP: "a", mapper.ACT_RESIDENT: "a", mapper.WEIGHT_RESIDENT: "b", mapper.K_BLOCKED: "k"}[family]
    fold = a.rows * a.lanes  # the mapper's K block: one array fold
    want_m = ms if family == mapper.ON_CHIP else min(mapping.tile_m, ms)
    want_n = ns if family == mapper.ON_CHIP else min(mapping.tile_n, ns)
    # a resident family leaves one side to the compiler (the mapper's 1 there only marks it)
    free = {"a": "n", "b": "m"}.get(order) if family != mapper.ON_CHIP else None
    if mapping.k_passes > 1:  # K beyond the PE's accumulation bound: K-blocked, a fold at a time
        order = "k"
    chosen = _fit(tile, ks if order != "k" else min(ks, fold), order, copy, want_m, want_n, free, ms, ns)
    note = ""
    if chosen is None and order != "k":
        for kb in range(min(ks, a.max_k) // fold * fold or min(ks, a.max_k), 0, -fold):
            chosen = _fit(tile, kb, "k", copy, want_m, want_n, free, ms, ns)
            if chosen is not None:
                note = f" (K-blocked: no {mapper.FAMILIES[family]} tile of K = {ks} fits a slice)"
                break
    if chosen is None:
        raise ValueError(f"{step.name}: no {mapper.FAMILIES[family]} tile fits a slice's scratchpads "
                         f"({', '.join(f'{n} {s.elements}' for n, s in tile.spads.items())} elements)")
    t = chosen
    if not note and ((family == mapper.ON_CHIP and (t.tm, t.tn) != (ms, ns)) or (free != "n" and t.tn != want_n)
                     or (free != "m" and t.tm != want_m)):
        note = f" (the mapping's {want_m}x{want_n} does not fit a slice)"
    return t, note


def _fit(tile: TileConfig, kb: int, order: str, copy: int, want_m: int, want_n: int, free: str | None, ms: int,
         ns: int) -> _Tiling | None:
    """The tiling of K blocks of ``kb`` in loop ``order``: the wanted sides cut to what fits (the
    fixed one of a resident family halved until the ``free`` one, ``m`` or ``n``, fits too, as wide
    as it can); None where none does."""
    a = tile.array
    copies = {"act": 1 if order == "a" else copy, "weight": 1 if order == "b" else copy, "out": copy}

    def fits(tm, tn):
        return (tm <= a.max_m and tn <= a.max_n and kb <= a.max_k
                and _Arena(tile).fits(_gemm_needs(tile, tm, tn, kb, copies))
                and tn * tile.gemm.weight.row_pitch(kb) * tile.gemm.weight.word_elements < 1 << tile.dma.count_bits)

    def widest(limit, unit, probe):
        """The largest size up to ``limit`` that fits: whole, else whole units of the array, else any."""
        candidates = [limit, *range(limit // unit * unit, 0, -unit), *range(min(limit, unit - 1), 0, -1)]
        return next((v for v in candidates if probe(v)), 0)

    tm, tn = want_m, want_n
    if free == "n":
        while tm >= 1 and not widest(ns, a.cols, lambda v: fits(tm, v)):
            tm //= 2
        tn = widest(ns, a.cols, lambda v: fits(tm, v)) if tm else 0
    elif free == "m":
        while tn >= 1 and not widest(ms, a.rows, lambda v: fits(v, tn)):
            tn //= 2
        tm = widest(ms, a.rows, lambda v: fits(v, tn)) if tn else 0
    else:  # both sides the mapping's, each cut to the widest that fits
        tm = widest(want_m, a.rows, lambda v: fits(v, 1))
        tn = widest(want_n, a.cols, lambda v: fits(tm, v)) if tm else 0
    if tm < 1 or tn < 1 or not fits(tm, tn):
        return None
    return _Tiling(tm, tn, kb, copies, order)


def _jobs(share: _Share, t: _Tiling) -> list[_Job]:
    ms = [(lo, min(share.m1, lo + t.tm)) for lo in range(share.m0, share.m1, t.tm)]
    ns = [(lo, min(share.n1, lo + t.tn)) for lo in range(share.n0, share.n1, t.tn)]
    ks = [(lo, min(share.k1, lo + t.kb)) for lo in range(share.k0, share.k1, t.kb)]
    if t.order == "b":
        grid = [(mr, nr) for nr in ns for mr in ms]
    else:
        grid = [(mr, nr) for mr in ms for nr in ns]
    return [_Job(share, m0, m1, n0, n1, k0, k1, i == 0, i == len(ks) - 1)
            for (m0, m1), (n0, n1) in grid for i, (k0, k1) in enumerate(ks)]


class _Ring:
    """The copies of one operand's buffer in one slice: the tile each holds, filled in turn."""

    def __init__(self, base: int, size: int, copies: int):
        self.base, self.size, self.copies = base, size, copies
        self.held: list[Any] = [None] * copies
        self.next = 0
        self.latest = -1

    def place(self, key) -> tuple[int, bool]:
        """The offset holding tile ``key``, and whether it must be loaded."""
        if self.latest >= 0 and self.held[self.latest] == key:
            return self.base + self.latest * self.size, False
        slot = self.next
        self.held[slot], self.latest, self.next = key, slot, (slot + 1) % self.copies
        return self.base + slot * self.size, True


def _pe_fields(tile: TileConfig, tag: str) -> dict[str, int]:
    pe = tile.array.pe_config
    if pe.column_fields():
        raise ValueError(f"{tag}: the {tile.array.pe} PE takes per-column metadata and low-bit weights; the "
                         f"integer layer's weights are INT8 (the tile compiler runs PEs without column fields)")
    fields = pe.array_fields()
    if set(fields) - {"w_bits"}:
        raise ValueError(f"{tag}: run-time PE fields {sorted(fields)}; the tile compiler sets only w_bits")
    return {"w_bits": ACT_BITS} if "w_bits" in fields else {}


def _weight_tile(ctx: _Context, symbol: Symbol, n0, n1, k0, k1, pitch: int) -> Tile:
    """The packed tile of ``symbol`` (allocated on first use)."""
    for t in symbol.tiles:
        if (t.n0, t.n1, t.k0, t.k1) == (n0, n1, k0, k1):
            return t
    size = (n1 - n0) * pitch
    t = Tile(n0=n0, n1=n1, k0=k0, k1=k1, addr=ctx.allocate(size), pitch=pitch, size=size)
    ctx.symbols[symbol.name] = replace(symbol, tiles=(*symbol.tiles, t))
    return t


def _lower_gemm(ctx: _Context, step: Gemm, mapping: OperatorMapping, tag: str, label: str) -> None:
    tile = ctx.tile
    g = tile.gemm
    pe_fields = _pe_fields(tile, step.name)
    rounds = _shares(tile, step, mapping)
    all_shares = [s for r in rounds for s in r]
    ms = max(s.m1 - s.m0 for s in all_shares)
    ns = max(s.n1 - s.n0 for s in all_shares)
    t, note = _tiling(tile, step, mapping, ms, ns, max(s.k1 - s.k0 for s in all_shares))
    arena = _Arena(tile)
    pitch_a, pitch_b = g.act.row_pitch(t.kb), g.weight.row_pitch(t.kb)
    c_words = ceil_div(t.tn, g.out.word_elements)
    size = {"act": t.tm * pitch_a * g.act.word_elements, "weight": t.tn * pitch_b * g.weight.word_elements,
            "out": t.tm * c_words * g.out.word_elements}
    bases = {spad: arena.alloc(spad, size[spad] * t.copies[spad], step.name) for spad in size}
    rings = {(s, spad): _Ring(bases[spad], size[spad], t.copies[spad])
             for s in range(tile.arrays) for spad in size}
    a_sym, b_sym, c_sym = ctx.symbols[step.a], ctx.symbols[step.b_t], ctx.symbols[step.out]
    lead = step.count > 1
    ctx.plans[label] = (f"{mapping.describe()} -> {len(all_shares)} shares on slices "
                        f"{sorted({s.slice for s in all_shares})}, tiles {t.tm}x{t.tn}, K blocks of {t.kb}; each "
                        f"slice's " + ", ".join(f"{spad} {t.copies[spad]} x {size[spad]} at {bases[spad]}"
                                                 for spad in size) + f" (elements){note}")

    groups = []
    for shares in rounds:
        per_share = [_jobs(s, t) for s in shares]
        groups += [[j for j in group if j is not None] for group in zip_longest(*per_share)]

    out_ring: dict[int, int] = {}  # slice -> output copies used so far
    c_offset: dict[_Share, int] = {}

    def emit_loads(group):
        loads: dict[tuple, list[int]] = {}  # (operand, key, offset) -> slices
        for job in group:
            s, p = job.share.slice, job.share.product
            for spad, key in (("act", (p, job.m0, job.m1, job.k0, job.k1)),
                              ("weight", (p, job.n0, job.n1, job.k0, job.k1))):
                offset, fresh = rings[s, spad].place(key)
                if fresh:
                    loads.setdefault((spad, key, offset), []).append(s)
        for (spad, key, offset), slices in loads.items():
            p, lo, hi, k0, k1 = key
            if spad == "act":
                ctx.load(tag=tag, symbol_addr=a_sym.address(*((p,) if lead else ()), lo, k0), spad="act", offset=offset,
                         rows=hi - lo, elems=k1 - k0, dram_stride=a_sym.row_bytes, pitch=pitch_a * g.act.word_elements,
                         slices=slices, elem_bytes=a_sym.elem_bytes)
            elif b_sym.name in ctx.constants:  # a weight: its packed tile, one linear transfer
                w = _weight_tile(ctx, ctx.symbols[b_sym.name], lo, hi, k0, k1, pitch_b * g.weight.word_elements)
                ctx.load(tag=tag, symbol_addr=w.addr, spad="weight", offset=offset, rows=1, elems=w.size, dram_stride=0,
                         pitch=0, slices=slices, elem_bytes=1)
            else:
                ctx.load(tag=tag, symbol_addr=b_sym.address(*((p,) if lead else ()), lo, k0), spad="weight",
                         offset=offset, rows=hi - lo, elems=k1 - k0, dram_stride=b_sym.row_bytes,
                         pitch=pitch_b * g.weight.word_elements, slices=slices, elem_bytes=b_sym.elem_bytes)

    def emit_gemm(job):
        s = job.share.slice
        key = (job.share, job.m0, job.n0)
        if job.first:
            used = out_ring.get(s, 0)
            c_offset[key] = bases["out"] + (used % t.copies["out"]) * size["out"]
            out_ring[s] = used + 1
        a_off = rings[s, "act"].base + rings[s, "act"].latest * size["act"]
        b_off = rings[s, "weight"].base + rings[s, "weight"].latest * size["weight"]
        c_off = c_offset[key]
        m, n, k = job.m1 - job.m0, job.n1 - job.n0, job.k1 - job.k0
        cmd = GemmCommand(a_base=a_off, a_pitch=pitch_a, b_base=b_off, b_pitch=pitch_b, c_base=c_off,
                          c_pitch=c_words, m=m, k=k, n=n, accumulate=not job.first, pe_fields=dict(pe_fields))
        we = g.act.word_elements
        ctx.builder.issue(f"gemm{s}", cmd, tag=tag,
                          reads=[Region(s, "act", a_off, a_off + (m - 1) * pitch_a * we + k),
                                 Region(s, "weight", b_off, b_off + (n - 1) * pitch_b * g.weight.word_elements + k)],
                          writes=[Region(s, "out", c_off, c_off + m * c_words * g.out.word_elements)])

    k_parts: dict[tuple, set] = {}  # (product, rows, columns) of a share -> slices with its parts of K
    for share in all_shares:
        k_parts.setdefault((share.product, share.m0, share.n0), set()).add(share.slice)
    partials: dict[tuple, list[tuple[int, int]]] = {}
    pitch_c = c_words * g.out.word_elements

    def emit_store(job):
        s, p = job.share.slice, job.share.product
        c_off = c_offset.pop((job.share, job.m0, job.n0))
        rows, cols = job.m1 - job.m0, job.n1 - job.n0
        if step.k > job.share.k1 - job.share.k0:  # a part of K: the first slice's copy takes the others' sums
            held = partials.setdefault((p, job.m0, job.n0), [])
            held.append((s, c_off))
            if len(held) < len(k_parts[p, job.share.m0, job.share.n0]):
                return
            (s, c_off), *others = partials.pop((p, job.m0, job.n0))
            sum_at = tile.spad_base(s, "out") + c_off
            for other, offset in others:
                cmd = VectorCommand(op=VecOp.ADD, src_a=sum_at, src_b=tile.spad_base(other, "out") + offset,
                                    dst=sum_at, length=cols, rows=rows, pitch_a=pitch_c, pitch_b=pitch_c,
                                    pitch_d=pitch_c, b_mode=BMode.STREAM)
                for cmd_, reads, writes in _with_access(tile, [cmd]):
                    ctx.builder.issue("vec", cmd_, reads=reads, writes=writes,
                                      ports=[(r.slice, r.spad) for r in (*reads, *writes)], tag=tag)
        ctx.store(tag=tag, symbol_addr=c_sym.address(*((p,) if lead else ()), job.m0, job.n0), spad="out",
                  offset=c_off, rows=rows, elems=cols, dram_stride=c_sym.row_bytes, pitch=pitch_c, slice_=s)

    # software pipeline: the next group's loads and the previous group's stores overlap a group's GEMMs
    pending: list[_Job] = []
    if groups:
        emit_loads(groups[0])
    for i, group in enumerate(groups):
        if t.copies["out"] == 1:  # one output copy: stored before the next GEMM overwrites it
            for job in pending:
                emit_store(job)
            pending = []
        for job in group:
            emit_gemm(job)
        for job in pending:
            emit_store(job)
        pending = [job for job in group if job.last]
        if i + 1 < len(groups):
            emit_loads(groups[i + 1])
    for job in pending:
        emit_store(job)


# --- vector steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Buffer:
    """A block of rows of one tensor in a scratchpad: ``kind`` ``in`` (loaded), ``out`` (stored),
    ``tmp``, or ``const`` (loaded once, one copy); ``spad`` the kind of scratchpad its elements need
    (``act``: 8-bit, ``out``: 32-bit; :func:`_place` picks the slice and scratchpad); ``pitch``
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


def _spad_of(symbol: Symbol) -> str:
    return "act" if symbol.elem_bytes == 1 else "out"


@dataclass(frozen=True)
class _Block:
    """One block of a vector step: rows ``r0 .. r0 + rows - 1``, columns ``c0 .. c0 + cols - 1`` of
    the split width (all of it unless split), held at ``pitch`` elements per row."""

    r0: int
    rows: int
    c0: int
    cols: int
    pitch: int


def _operands(tile: TileConfig, buffers: list[_Buffer], body, probe: _Block) -> set[tuple[int, ...]]:
    """Which buffers each of ``body``'s commands takes as A, B (unless a constant) and destination,
    as tuples of buffer indices (``body`` run once on addresses that name the buffers)."""
    shift = 40  # far above any offset within a buffer
    fake = {b.name: (i + 1) << shift for i, b in enumerate(buffers)}
    uses = set()
    for cmd, _, _ in body(probe, fake):
        fields = (cmd.src_a, *(() if cmd.b_mode == BMode.CONST else (cmd.src_b,)), cmd.dst)
        uses.add(tuple((f >> shift) - 1 for f in fields))
    return uses


def _place(tile: TileConfig, buffers: list[_Buffer], uses: set[tuple[int, ...]]) -> list[list[_Buffer]]:
    """Placements of ``buffers`` over every slice's scratchpads of their element width, best first:
    fewest commands with two operands in one scratchpad (its access port serves one per cycle),
    then fewest buffers away from slice 0's default scratchpad."""
    from itertools import product

    def homes(b):
        eb = tile.element_bytes(b.spad)
        return [(s, name) for s in range(tile.arrays) for name, spad in tile.spads.items()
                if name != "meta" and spad.signed and tile.element_bytes(name) == eb
                and spad.element_bits == tile.spads[b.spad].element_bits]

    options = [homes(b) for b in buffers]
    default = tuple((VECTOR_SLICE, b.spad) for b in buffers)
    scored = []
    for choice in product(*options):
        shared = sum(len({choice[i] for i in use}) < len(use) for use in uses)
        moved = sum(c != d for c, d in zip(choice, default))
        scored.append((shared, moved, choice))
    scored.sort(key=lambda x: x[:2])
    return [[replace(b, slice=c[0], spad=c[1]) for b, c in zip(buffers, choice)] for *_, choice in scored[:64]]


def _vector_blocks(ctx: _Context, tag: str, label: str, rows: int, granule: int, buffers: list[_Buffer],
                   body: Callable[[_Block, dict[str, int]], list[tuple[VectorCommand, list, list]]],
                   split: int | None = None) -> None:
    """Run ``body`` over blocks of rows (multiples of ``granule``) and, for an elementwise op
    (``split``: the width of its tensors), of columns where a whole row does not fit, loading the
    ``in`` and ``const`` buffers and storing the ``out`` ones around it; double-buffered where two
    copies fit; the buffers placed over the slices' scratchpads so that a command's operands are
    in different ones where the tile has enough (:func:`_place`)."""
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
    probe = _Block(0, min(rows, granule), 0, split or 0, split or 0)
    choice = None
    for placed in _place(tile, buffers, _operands(tile, buffers, body, probe)):
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
            ports = [(r.slice, r.spad) for r in (*reads, *writes)]
            ctx.builder.issue("vec", cmd, reads=reads, writes=writes, ports=ports, tag=tag)
        if i and copies > 1:
            stores(i - 1)
        if i + 1 < len(blocks):
            loads(i + 1)
    stores(len(blocks) - 1)


def _span(tile: TileConfig, address: int, rows: int, pitch: int, length: int) -> Region:
    """The region a vector command's operand covers (``rows`` rows of ``length`` at ``pitch``)."""
    slice_, spad, offset = split_address(tile, address)
    return Region(slice_, spad, offset, offset + (rows - 1) * pitch + length)


def split_address(tile: TileConfig, address: int) -> tuple[int, str, int]:
    """``(slice, scratchpad, element offset)`` of a tile element address (the vector unit's)."""
    bits = tile.offset_bits
    return address >> (bits + SPAD_ID_BITS), SPADS[(address >> bits) & ((1 << SPAD_ID_BITS) - 1)], \
        address & ((1 << bits) - 1)


def _access(tile: TileConfig, cmd: VectorCommand) -> tuple[list[Region], list[Region]]:
    """What a vector command reads and writes."""
    reads = [_span(tile, cmd.src_a, cmd.rows, cmd.pitch_a, cmd.length)]
    if cmd.b_mode == BMode.STREAM:
        reads.append(_span(tile, cmd.src_b, cmd.rows, cmd.pitch_b, cmd.length))
    elif cmd.b_mode == BMode.ROW:
        reads.append(_span(tile, cmd.src_b, cmd.rows, cmd.pitch_b, 1))
    reduces = cmd.op in (VecOp.RMAX, VecOp.RSUM, VecOp.RSUMSQ)
    writes = [_span(tile, cmd.dst, cmd.rows, cmd.pitch_d, 1 if reduces else cmd.length)]
    return reads, writes


def _with_access(tile: TileConfig, commands: list[VectorCommand]):
    return [(cmd, *_access(tile, cmd)) for cmd in commands]


def _lower_vector(ctx: _Context, step: Vector, tag: str, label: str, layer: IntLayer) -> None:
    tile, c = ctx.tile, step.constants
    ins = [ctx.symbols[name] for name in step.inputs]
    out = ctx.symbols[step.out]
    x = ins[0]
    width = x.shape[-1]
    rows = int(np.prod(x.shape[:-1]))
    io = [_Buffer(name=f"in{i}", kind="in", spad=_spad_of(s), pitch=width, symbol=s, cols=width)
          for i, s in enumerate(ins)]
    res = _Buffer(name="out", kind="out", spad=_spad_of(out), pitch=width, symbol=out, cols=width)
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
            return _with_access(tile, [cmd])
        _vector_blocks(ctx, tag, label, rows, 1, buffers, body, split=width)

    elif op == "rmsnorm":
        scratch = _Buffer(name="scratch", kind="tmp", spad="out", pitch=1)

        def body(blk, a):
            return _with_access(tile, rmsnorm_program(src=a["in0"], dst=a["out"], scratch=a["scratch"], length=width,
                                                      rows=blk.rows, pitch=width, out_bits=NORM_BITS))
        _vector_blocks(ctx, tag, label, rows, 1, [io[0], res, scratch], body)

    elif op in ("add", "mul"):
        vec_op = VecOp.ADD if op == "add" else VecOp.MUL

        def body(blk, a):
            return _with_access(tile, [VectorCommand(op=vec_op, src_a=a["in0"], src_b=a["in1"], dst=a["out"],
                                                     length=blk.cols, rows=blk.rows, pitch_a=blk.pitch,
                                                     pitch_b=blk.pitch, pitch_d=blk.pitch, b_mode=BMode.STREAM,
                                                     out_bits=ob)])
        _vector_blocks(ctx, tag, label, rows, 1, [io[0], io[1], res], body, split=width)

    elif op == "silu":
        k = intops.ExpConstants.of(c["scale"])

        def body(blk, a):
            return _with_access(tile, [VectorCommand(op=VecOp.SILU, src_a=a["in0"], dst=a["out"], length=blk.cols,
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
        tmp = [_Buffer(name=name, kind="tmp", spad="out", pitch=d) for name in ("rot", "scratch", "sum")]

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
                    VectorCommand(op=VecOp.ADD, src_a=rot, src_b=scr, dst=a["sum"], length=d, rows=n, pitch_a=d,
                                  pitch_b=d, pitch_d=d, b_mode=BMode.STREAM),
                    VectorCommand(op=VecOp.MULSHIFT, src_a=a["sum"], dst=a["out"] + h * d, length=d, rows=n,
                                  pitch_a=d, pitch_d=width, mult=1, shift=fb, out_bits=ACT_BITS)]
            return _with_access(tile, commands)
        _vector_blocks(ctx, tag, label, rows, 1, [io[0], *tables, *tmp, res], body)

    elif op == "softmax":
        groups, group_rows, keys = x.shape
        tokens, p = c["tokens"], c["position"]
        scratch = _Buffer(name="scratch", kind="tmp", spad="out", pitch=1)
        exp = _Buffer(name="exp", kind="tmp", spad="out", pitch=keys)

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
                program = softmax_program(src=a["in0"] + local, dst=a["exp"] + local, scratch=a["scratch"],
                                          length=p + t + 1, rows=count, pitch=tokens * keys, scale=c["scale"],
                                          out_bits=PROB_BITS)
                commands += [*program[:-1], replace(program[-1], dst=a["out"] + local, out_bits=ACT_BITS)]
            return _with_access(tile, commands)
        _vector_blocks(ctx, tag, label, groups * group_rows, 1, [io[0], exp, scratch, res], body)
    else:
        raise ValueError(f"{tag}: vector op {op!r} has no lowering")


# --- moves -----------------------------------------------------------------------------------


def _lower_move(ctx: _Context, step: Move, tag: str, label: str) -> None:
    """Rows of the source into slice 0's scratchpad, then 2-D stores into the new layout."""
    src, out = ctx.symbols[step.src], ctx.symbols[step.out]
    c = step.constants
    g, r, d = c["kv_heads"], c["group"], c["head_dim"]
    spad = _spad_of(src)
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


# --- the layer -------------------------------------------------------------------------------


def _shapes(layer: IntLayer, steps: list[Step], tokens: int) -> dict[str, tuple[int, ...]]:
    """Shape of every named tensor the steps read or write."""
    cfg = layer.config.model
    g, d, p = cfg.num_kv_heads, cfg.head_dim, cfg.max_positions
    shapes = {name: tuple(v.shape) for name, v in layer.constants.items()}
    shapes.update(x=(tokens, cfg.hidden_size), k_cache=(g, p, d), v_cache_t=(g, d, p))
    for step in steps:
        if isinstance(step, Gemm):
            shapes[step.out] = (step.count, step.m, step.n) if step.count > 1 else (step.m, step.n)
        elif isinstance(step, Vector):
            shapes[step.out] = shapes[step.inputs[0]]
        elif step.op == "split_heads":
            c = step.constants
            shapes[step.out] = (c["kv_heads"], c["group"] * tokens, c["head_dim"])
        elif step.op == "merge_heads":
            c = step.constants
            shapes[step.out] = (tokens, c["kv_heads"] * c["group"] * c["head_dim"])
    return shapes


def compile_layer(layer: IntLayer, tokens: int, position: int, tile_config: TileConfig,
                  mappings: dict[str, OperatorMapping]) -> Compiled:
    """Compile ``layer``'s steps for ``tokens`` new tokens at positions ``position ..`` (the cache
    holding ``position`` tokens) for the tile ``tile_config``.

    Parameters
    ----------
    layer : IntLayer
    tokens, position : int
    tile_config : TileConfig
    mappings : dict of str to OperatorMapping
        The mapping of each GEMM operator by name (the cost model's: :func:`cost_model_mappings
        <peforge.dse.tile.mapping.cost_model_mappings>` of the phase).

    Raises ``ValueError`` (one line naming the operator) for a mapping or a shape the tile cannot
    run (see the module docstring for what it can), and for a program longer than the
    sequencer's instruction memory or an image beyond the DRAM address space.
    """
    steps = layer.steps(tokens, position)
    bits = output_bits(steps)
    shapes = _shapes(layer, steps, tokens)
    ctx = _Context(tile=tile_config, builder=ProgramBuilder(), symbols={}, constants={}, top=0)
    # the caches first, at addresses that do not depend on tokens or position
    for name in CACHE_NAMES:
        ctx.add(name, shapes[name], ACT_BITS)
    for name, value in layer.constants.items():
        if name.startswith("w_"):
            # a weight: its packed tiles are placed as the GEMM's plan needs them
            ctx.symbols[name] = Symbol(name=name, addr=0, shape=tuple(value.shape), elem_bytes=1, layout="tiles")
            ctx.constants[name] = value
        else:
            ctx.constant(name, value, 32)
    ctx.add("x", shapes["x"], ACT_BITS)
    for step in steps:
        if step.out not in ctx.symbols:
            ctx.add(step.out, shapes[step.out], bits[step.out])

    names = operator_of_steps(steps)
    lifetimes: dict[str, list[int]] = {}
    for index, (step, name) in enumerate(zip(steps, names)):
        label = f"{index} {name}"
        reads = ((step.a, step.b_t) if isinstance(step, Gemm) else
                 step.inputs if isinstance(step, Vector) else (step.src,))
        for tensor in reads:
            lifetimes.setdefault(tensor, [-1, -1])[1] = index
        life = lifetimes.setdefault(step.out, [-1, -1])
        life[0] = index if life[0] < 0 else life[0]
        if isinstance(step, Gemm):
            if step.name not in mappings:
                raise ValueError(f"{step.name}: no mapping given; known: {', '.join(sorted(mappings)) or 'none'}")
            _lower_gemm(ctx, step, mappings[step.name], name, label)
        elif isinstance(step, Vector):
            _lower_vector(ctx, step, name, label, layer)
        else:
            _lower_move(ctx, step, name, label)
    ctx.builder.end()
    # the packed weights' symbols start at their first tile
    for name, symbol in list(ctx.symbols.items()):
        if symbol.layout == "tiles":
            if not symbol.tiles:
                del ctx.symbols[name], ctx.constants[name]  # no step reads it
            else:
                ctx.symbols[name] = replace(symbol, addr=symbol.tiles[0].addr)
    if len(ctx.builder.instructions) > tile_config.imem_depth:
        raise ValueError(f"the layer's program of {len(ctx.builder.instructions)} instructions exceeds the "
                         f"sequencer's imem_depth={tile_config.imem_depth}")
    if ctx.top > 1 << tile_config.dram_addr_bits:
        raise ValueError(f"the layer's DRAM image of {ctx.top} bytes exceeds the tile's "
                         f"{tile_config.dram_addr_bits}-bit address space")
    return Compiled(tile=tile_config, tokens=tokens, position=position, program=tuple(ctx.builder.instructions),
                    tags=tuple(ctx.builder.tags), symbols=dict(ctx.symbols), dram_bytes=ctx.top,
                    constants=dict(ctx.constants), plans=dict(ctx.plans),
                    lifetimes={k: (v[0], v[1]) for k, v in lifetimes.items()})
