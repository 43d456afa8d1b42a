"""INT8 weights on the mixed PE (:mod:`peforge.hw.pe.mixed`): digit planes of its low-bit codes,
each with its group metadata, whose accumulated GEMMs give the integer product exactly.

The mixed PE multiplies INT8 activations by ``w_bits``-bit weight codes ``c`` with a zero point
``zp`` and a scale per column and quantization group, ``(sum a (c - zp)) x scale``, summed over
the groups and floor-divided by ``2**scale_frac_bits`` (``f``). An INT8 weight ``w`` is written
in base ``2**d`` (``d = w_bits``) as the digits ``u_j`` of ``w + 128`` (unsigned), so that

    w = sum_j (u_j - zp_j) 2**(d j),   zp_j = 0 except the top digit's: 128 / 2**(d (P - 1))

with ``P = ceil(8 / d)`` planes. Plane ``j`` runs as ``repeats`` accumulated GEMMs (the tile
engine's ``accumulate``) whose every group has the scale ``2**(d j) x 2**f / repeats``: the
fewest (a power of two) that keeps the scale within ``scale_bits``. Every group's product is then
a multiple of ``2**f``, so the floor drops nothing, and the planes' sum is ``A W^T`` exactly.
With the PE's defaults (``w_bits=4``, 16-bit scales, ``f=12``): a low plane (scale 4096), a high
plane with zero point 8 run twice (scale 32768, as 16 x 4096 does not fit 16 bits).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ...arith import ceil_div
from ...hw.tile.gemm import GemmCommand
from ...hw.tile.vector import VecOp, VectorCommand

__all__ = ["MixedGemm", "Plane", "extra_needs", "int8_planes", "plane_count"]

INT8_OFFSET = 128  # w + 128 is unsigned


@dataclass(frozen=True)
class Plane:
    """One digit plane of an INT8 weight matrix ``[n][k]``.

    Attributes
    ----------
    codes : ``[n][k]`` unsigned ``w_bits`` codes (the weight scratchpad's elements)
    meta : the group metadata as the PE's golden takes it: ``scale`` and ``zp``, ``groups x n``
    repeats : accumulated GEMMs of this plane
    """

    codes: np.ndarray
    meta: dict[str, np.ndarray]
    repeats: int


def int8_planes(weights, pe) -> list[Plane]:
    """The planes of INT8 ``weights`` (``[n][k]``) for the mixed PE config ``pe``; ``ValueError``
    for a configuration they cannot be exact on."""
    w = np.asarray(weights, dtype=np.int64)
    if w.ndim != 2 or w.size and (w.min() < -INT8_OFFSET or w.max() >= INT8_OFFSET):
        raise ValueError(f"int8_planes: weights must be an INT8 [n][k] matrix, not shape {w.shape}")
    if not pe.zero_point:
        raise ValueError("int8_planes: the mixed PE needs zero_point=true (unsigned digit codes), not false")
    d, f, top_scale = pe.w_bits, pe.scale_frac_bits, (1 << pe.scale_bits) - 1
    planes = ceil_div(8, d)
    n, k = w.shape
    groups = ceil_div(k, pe.group)
    unsigned = w + INT8_OFFSET
    out = []
    for j in range(planes):
        weight = (1 << d * j) << f  # what this plane's products must be scaled by, in all
        repeats = 1
        while weight // repeats > top_scale:
            repeats *= 2
        if repeats > 1 << d * j:  # the scale would drop below 2**f: the floor would lose bits
            raise ValueError(f"int8_planes: scale_frac_bits={f!r} leaves no exact scale in scale_bits="
                             f"{pe.scale_bits!r} for plane {j} of {planes}")
        zp = INT8_OFFSET >> d * j if j == planes - 1 else 0
        meta = {"scale": np.full((groups, n), weight // repeats, dtype=np.int64),
                "zp": np.full((groups, n), zp, dtype=np.int64)}
        out.append(Plane(codes=unsigned >> d * j & ((1 << d) - 1), meta=meta, repeats=repeats))
    return out


# --- lowering a GEMM on the mixed PE (called from lower_gemm) ---------------------------------

HIGH_BIAS = 120  # (x + 120 + 8) >> 4 = floor((x + 128) / 16): the high digit by an ADD and a rounding MULSHIFT
DIGIT_BITS = 4


def plane_count(tile) -> int:
    """Weight planes a GEMM's B^T takes on ``tile``'s PE: 1 without column metadata, else the
    digit planes of INT8 the PE's config declares (``int8_digit_bits``; ``ValueError`` where it
    declares none, or digits the lowering cannot split INT8 operands into)."""
    pe = tile.array.pe_config
    if not pe.column_fields():
        return 1
    # a PE with column metadata declares the digits INT8 operands split into (hw.pe.mixed)
    if getattr(pe, "int8_digit_bits", None) != DIGIT_BITS:
        raise ValueError(f"the {tile.array.pe} PE (w_bits={getattr(pe, 'w_bits', None)!r}) takes per-column metadata; "
                         f"the tile compiler splits INT8 operands only into digit planes of {DIGIT_BITS} bits "
                         f"(int8_digit_bits of the PE's config)")
    return len(int8_planes(np.zeros((1, 1), dtype=np.int64), pe))


def extra_needs(tile, tn: int, kb: int, copies: dict[str, int]) -> dict[str, int]:
    """Scratchpad elements a GEMM tiling needs beyond one plane of weights: the second plane of
    each weight copy, the staging of an INT8 tile (act) and its biased copy (out), and the two
    planes' metadata."""
    if plane_count(tile) == 1:
        return {}
    g = tile.gemm
    plane = tn * g.weight.row_pitch(kb) * g.weight.word_elements
    return {"weight": copies["weight"] * plane, "act": plane, "out": plane,
            "meta": 2 * tn * g.meta.row_pitch(g.groups(kb))}


@dataclass
class MixedGemm:
    """The mixed PE's side of one GEMM step: where the staging and the planes' metadata sit in
    every slice, and how a weight tile is loaded and multiplied."""

    tile: Any
    planes: list[Plane]
    plane: int  # weight elements between a tile's low and high planes
    stage_act: int
    stage_out: int
    meta: list[int]  # meta element offset of each plane's metadata
    meta_pitch: int

    @classmethod
    def setup(cls, ctx, arena, tn: int, kb: int, plane: int, tag: str, name: str) -> MixedGemm | None:
        """Allocate the step's staging and metadata (``arena``) and load the metadata, constant per
        plane, into every slice; None for a PE without column metadata."""
        tile = ctx.tile
        if plane_count(tile) == 1:
            return None
        pe, g = tile.array.pe_config, tile.gemm
        planes = int8_planes(np.zeros((1, 1), dtype=np.int64), pe)
        groups = g.groups(kb)
        pitch = g.meta.row_pitch(groups)
        slices = list(range(tile.arrays))
        meta = []
        for j, p in enumerate(planes):
            code = int(g.meta_codes({"scale": p.meta["scale"][:1, :1], "zp": p.meta["zp"][:1, :1]})[0, 0])
            symbol = ctx.constant(f"mixed.meta{j}.{tn}x{groups}", np.full((tn, groups), code, dtype=np.int64), 32)
            at = arena.alloc("meta", tn * pitch, name)
            ctx.load(tag=tag, symbol_addr=symbol.addr, spad="meta", offset=at, rows=tn, elems=groups,
                     dram_stride=symbol.row_bytes, pitch=pitch, slices=slices, elem_bytes=4)
            meta.append(at)
        return cls(tile=tile, planes=planes, plane=plane, stage_act=arena.alloc("act", plane, name),
                   stage_out=arena.alloc("out", plane, name), meta=meta, meta_pitch=pitch)

    def load_weights(self, ctx, *, tag: str, offset: int, n_rows: int, k_cols: int, row_pitch: int, slices,
                     **transfer) -> None:
        """Load an INT8 B^T tile (the DMA ``transfer`` of the plain lowering) as its two planes at
        ``offset``: the low digit by the DMA itself (the weight scratchpad keeps an element's low 4
        bits: ``x mod 16``), the high one (``floor(x / 16) + 8``) through the staging: the tile again
        into ``act``, then ``ADD 120`` into ``out`` and a rounding ``>> 4`` into the high plane."""
        from .lower_vector import vector_ports, with_access

        tile = self.tile
        ctx.load(tag=tag, spad="weight", offset=offset, slices=slices, **transfer)
        ctx.load(tag=tag, spad="act", offset=self.stage_act, slices=slices, **transfer)
        for s in slices:
            rows_of = dict(length=k_cols, rows=n_rows, pitch_a=row_pitch, pitch_d=row_pitch)
            commands = [VectorCommand(op=VecOp.ADD, src_a=tile.spad_base(s, "act") + self.stage_act,
                                      dst=tile.spad_base(s, "out") + self.stage_out, mult=HIGH_BIAS, **rows_of),
                        VectorCommand(op=VecOp.MULSHIFT, src_a=tile.spad_base(s, "out") + self.stage_out,
                                      dst=tile.spad_base(s, "weight") + offset + self.plane, mult=1, shift=DIGIT_BITS,
                                      out_bits=DIGIT_BITS + 1, **rows_of)]
            for cmd, reads, writes in with_access(tile, commands):
                ctx.builder.issue("vec", cmd, reads=reads, writes=writes, ports=vector_ports(writes), tag=tag)

    def reads(self, s: int, cmd: GemmCommand) -> list:
        """What the planes' GEMMs of ``cmd`` in slice ``s`` read beyond its low plane: the high plane
        and the metadata."""
        from .program import Region

        g = self.tile.gemm
        end = g.weight.element_address(cmd.b_base, cmd.b_pitch, cmd.n - 1, cmd.k)
        groups = g.groups(cmd.k)
        return [Region(s, "weight", cmd.b_base + self.plane, end + self.plane),
                *(Region(s, "meta", at, g.meta.element_address(at, self.meta_pitch, cmd.n - 1, groups))
                  for at in self.meta)]

    def commands(self, cmd: GemmCommand) -> list[GemmCommand]:
        """``cmd`` (B^T's low plane at ``b_base``) as the planes' GEMMs, accumulated."""
        out = []
        for j, p in enumerate(self.planes):
            for r in range(p.repeats):
                out.append(replace(cmd, b_base=cmd.b_base + j * self.plane, meta_base=self.meta[j],
                                   meta_pitch=self.meta_pitch, accumulate=cmd.accumulate or bool(out)))
        return out
