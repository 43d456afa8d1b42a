"""Lowering of a :class:`~peforge.dse.tile.intlayer.Gemm` step to DMA and GEMM commands following
its operator's mapping (see :mod:`peforge.dse.tile.compiler`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import zip_longest
from types import SimpleNamespace
from typing import Any

import numpy as np

from ...arith import ceil_div
from ...hw.tile.config import TileConfig
from ...hw.tile.gemm import GemmCommand
from ...hw.tile.vector import BMode, VecOp, VectorCommand
from ..cost import mapper
from .context import Arena, Context
from .dram import Symbol, Tile
from .intlayer import ACT_BITS, Gemm
from .lower_mixed import MixedGemm, extra_needs, plane_count
from .lower_vector import vector_ports, with_access
from .mapping import OperatorMapping
from .program import Region

__all__ = ["lower_gemm"]


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
    needs = {"act": copies["act"] * tm * g.act.row_pitch(kb) * g.act.word_elements,
             "weight": copies["weight"] * tn * g.weight.row_pitch(kb) * g.weight.word_elements,
             "out": copies["out"] * tm * ceil_div(tn, g.out.word_elements) * g.out.word_elements}
    for spad, extra in extra_needs(tile, tn, kb, copies).items():  # the mixed PE's planes and staging
        needs[spad] = needs.get(spad, 0) + extra
    return needs


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
                and Arena(tile).fits(_gemm_needs(tile, tm, tn, kb, copies))
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
    try:
        plane_count(tile)  # per-column metadata: only the mixed PE's INT8 planes
    except ValueError as error:
        raise ValueError(f"{tag}: {error}") from None
    fields = pe.array_fields()
    if set(fields) - {"w_bits"}:
        raise ValueError(f"{tag}: run-time PE fields {sorted(fields)}; the tile compiler sets only w_bits")
    return {"w_bits": ACT_BITS} if "w_bits" in fields else {}


def _weight_tile(ctx: Context, symbol: Symbol, n0, n1, k0, k1, pitch: int) -> Tile:
    """The packed tile of ``symbol`` (allocated on first use)."""
    for t in symbol.tiles:
        if (t.n0, t.n1, t.k0, t.k1) == (n0, n1, k0, k1):
            return t
    size = (n1 - n0) * pitch
    t = Tile(n0=n0, n1=n1, k0=k0, k1=k1, addr=ctx.allocate(size), pitch=pitch, size=size)
    ctx.symbols[symbol.name] = replace(symbol, tiles=(*symbol.tiles, t))
    return t


def lower_gemm(ctx: Context, step: Gemm, mapping: OperatorMapping, tag: str, label: str) -> None:
    tile = ctx.tile
    g = tile.gemm
    pe_fields = _pe_fields(tile, step.name)
    rounds = _shares(tile, step, mapping)
    all_shares = [s for r in rounds for s in r]
    ms = max(s.m1 - s.m0 for s in all_shares)
    ns = max(s.n1 - s.n0 for s in all_shares)
    t, note = _tiling(tile, step, mapping, ms, ns, max(s.k1 - s.k0 for s in all_shares))
    arena = Arena(tile)
    pitch_a, pitch_b = g.act.row_pitch(t.kb), g.weight.row_pitch(t.kb)
    c_words = ceil_div(t.tn, g.out.word_elements)
    planes = plane_count(tile)
    size = {"act": t.tm * pitch_a * g.act.word_elements, "weight": planes * t.tn * pitch_b * g.weight.word_elements,
            "out": t.tm * c_words * g.out.word_elements}
    bases = {spad: arena.alloc(spad, size[spad] * t.copies[spad], step.name) for spad in size}
    mix = MixedGemm.setup(ctx, arena, t.tn, t.kb, size["weight"] // planes, tag, step.name)
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
            else:
                if b_sym.name in ctx.constants:  # a weight: its packed tile, one linear transfer
                    w = _weight_tile(ctx, ctx.symbols[b_sym.name], lo, hi, k0, k1, pitch_b * g.weight.word_elements)
                    transfer = dict(symbol_addr=w.addr, rows=1, elems=w.size, dram_stride=0, pitch=0, elem_bytes=1)
                else:
                    transfer = dict(symbol_addr=b_sym.address(*((p,) if lead else ()), lo, k0), rows=hi - lo,
                                    elems=k1 - k0, dram_stride=b_sym.row_bytes, pitch=pitch_b * g.weight.word_elements,
                                    elem_bytes=b_sym.elem_bytes)
                if mix:
                    mix.load_weights(ctx, tag=tag, offset=offset, slices=slices, n_rows=hi - lo, k_cols=k1 - k0,
                                     row_pitch=pitch_b * g.weight.word_elements, **transfer)
                else:
                    ctx.load(tag=tag, spad="weight", offset=offset, slices=slices, **transfer)

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
        for one in mix.commands(cmd) if mix else [cmd]:  # the mixed PE: its planes' GEMMs
            ctx.builder.issue(f"gemm{s}", one, tag=tag,
                              reads=[Region(s, "act", a_off, a_off + (m - 1) * pitch_a * we + k),
                                     Region(s, "weight", b_off, b_off + (n - 1) * pitch_b * g.weight.word_elements + k),
                                     *(mix.reads(s, cmd) if mix else ())],
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
                for cmd_, reads, writes in with_access(tile, [cmd]):
                    ctx.builder.issue("vec", cmd_, reads=reads, writes=writes, ports=vector_ports(writes), tag=tag)
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
