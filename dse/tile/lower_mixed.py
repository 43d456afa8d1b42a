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

from dataclasses import dataclass

import numpy as np

from ...arith import ceil_div

__all__ = ["Plane", "int8_planes"]

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
