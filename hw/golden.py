"""Bit-exact numpy reference models of every block.

Each function takes integer arrays and returns what the RTL produces, wrapping at the
block's register widths exactly as the hardware does. Tests (Amaranth and cocotb) and the
cost model use these functions, never a copy of the RTL's logic.
"""

from __future__ import annotations

import numpy as np


def wrap(values, bits: int) -> np.ndarray:
    """Two's-complement wrap of integers to ``bits`` (what a signed register of that width holds)."""
    values = np.asarray(values, dtype=object)
    half = 1 << (bits - 1)
    return (values + half) % (1 << bits) - half


def sign_extend(codes, bits) -> np.ndarray:
    """Read the low ``bits`` of each code as a two's-complement number (``bits`` may be an array)."""
    codes = np.asarray(codes, dtype=np.int64)
    bits = np.asarray(bits, dtype=np.int64)
    low = codes & ((1 << bits) - 1)
    return np.where(low >> (bits - 1) & 1, low - (1 << bits), low)


def mac_dot(a, w, acc_bits: int) -> int:
    """MacPE: sum of ``a[i] * w[i]`` in a signed accumulator of ``acc_bits``."""
    total = int(np.dot(np.asarray(a, dtype=object), np.asarray(w, dtype=object)))
    return int(wrap(total, acc_bits))


def bitserial_weights(codes, w_bits, lut=None) -> np.ndarray:
    """BitSerialPE's weight values: codes looked up in the code->value table when there is
    one, then read as ``w_bits``-bit two's complement (the precision the PE serializes)."""
    codes = np.asarray(codes, dtype=np.int64)
    if lut is not None:
        lut = np.asarray(lut, dtype=np.int64)
        codes = lut[codes % len(lut)]
    return sign_extend(codes, w_bits)


def scale_factor(e_hi: int, e_lo: int, lo_mode: int) -> int:
    """Power-of-two-plus-offset group scale: ``2**e_hi`` plus (mode 1) or minus (mode 2) ``2**e_lo``."""
    offset = {0: 0, 1: 1, 2: -1}[lo_mode] << e_lo
    return (1 << e_hi) + offset


def bitserial_result(dots, group_ends, scales, acc_bits: int) -> int:
    """BitSerialPE accumulation: dot products summed per group, each group times its scale
    factor (1 without rescale), wrapped at the accumulator width.

    ``group_ends[i]`` is true where dot product ``i`` closes its group; ``scales[i]`` (the
    factor of :func:`scale_factor`) is taken from that closing dot product.
    """
    total, group = 0, 0
    for dot, end, scale in zip(dots, group_ends, scales):
        group += int(dot)
        if end:
            total += group * int(scale)
            group = 0
    return int(wrap(total, acc_bits))


def mixed_weights(codes, w_bits: int, zero_point: bool) -> np.ndarray:
    """MixedPE weights: unsigned codes (with a zero point) or two's complement."""
    codes = np.asarray(codes, dtype=np.int64) & ((1 << w_bits) - 1)
    return codes if zero_point else sign_extend(codes, w_bits)


def mixed_group(a, codes, *, w_bits: int, zero_point: bool, zp: int, scale: int) -> int:
    """One quantization group, dequantized once: ``(sum(a*w) - zp*sum(a)) * scale``."""
    a = np.asarray(a, dtype=np.int64)
    w = mixed_weights(codes, w_bits, zero_point)
    acc = int(np.dot(a, w)) - (zp * int(a.sum()) if zero_point else 0)
    return acc * scale


def mixed_result(groups, acc_bits: int, frac_bits: int) -> int:
    """MixedPE output: dequantized groups summed in ``acc_bits``, then the scale's
    ``frac_bits`` dropped by an arithmetic shift (floor)."""
    return int(wrap(sum(int(g) for g in groups), acc_bits)) >> frac_bits
