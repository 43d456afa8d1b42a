"""Integer-only elementwise operators of a decoder layer: the golden models a vector unit's RTL
is to match bit for bit (issue 14), in the style of I-BERT (Kim et al., "I-BERT: Integer-only
BERT Quantization", ICML 2021: second-order polynomial exp, Newton integer square root).

A quantized tensor is an integer array ``q`` with a real ``scale`` (its value is ``q * scale``).
Every operator computes on integers only (numpy ``int64``, whose range each one states); the
reals appear only in constants folded from the scale once, which the hardware would take as
parameters. The error of each operator against float is measured over every input code by
``tests/unit/test_intops.py`` and bounded there as each docstring states.

The forms are the vector unit's (``hw/tile/vector.py``): element codes of 32 bits, no division
per element but one integer reciprocal per row (:func:`i_recip`, :func:`i_rsqrt_mean`, a
sequential divider) followed by a multiply-and-shift (:func:`requantize`), ``i_exp``'s
division by ``q_ln2`` done by a multiplication with an exact reciprocal (:class:`ExpConstants`),
SiLU's one division per element by a pipelined divider of fixed width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# I-BERT's fit of exp on (-ln 2, 0]: exp(p) ~ A (p + B)^2 + C (Kim et al. 2021, section 3.4)
EXP_A, EXP_B, EXP_C = 0.3585, 1.353, 0.344
LN2 = math.log(2.0)
EXP_IN_BITS = 31  # i_exp takes -x in [0, 2**31]: inputs are clipped to [-2**31, 0]


def saturate(x, bits: int) -> np.ndarray:
    """``x`` clipped to ``bits``-bit signed integers."""
    return np.clip(np.asarray(x, dtype=np.int64), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def fixed_point(real: float, bits: int = 31) -> tuple[int, int]:
    """``(multiplier, shift)`` with ``real ~ multiplier / 2**shift`` and the multiplier in
    ``[2**(bits-1), 2**bits)``: how a hardware requantizer holds a positive real scale factor."""
    if not real > 0 or not math.isfinite(real):
        raise ValueError(f"fixed_point: the factor must be a positive finite real, not {real!r}")
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2**exponent, mantissa in [0.5, 1)
    return round(mantissa * (1 << bits)), bits - exponent


def requantize(q, multiplier: int, shift: int, bits: int) -> np.ndarray:
    """``round(q * multiplier / 2**shift)``, halves rounded up, saturated to ``bits``-bit signed
    integers: the multiply-and-shift that moves a 32-bit accumulator to the next layer's format."""
    q = np.asarray(q, dtype=np.int64)
    rounded = (q * multiplier + (1 << (shift - 1))) >> shift if shift > 0 else q * multiplier
    return saturate(rounded, bits)


@dataclass(frozen=True, kw_only=True)
class ExpConstants:
    """The integer constants of :func:`i_exp` at one input scale, folded once (the vector unit's
    command fields): ``q_ln2 = floor(ln 2 / scale)``, ``q_b = floor(B / scale)``, ``q_c =
    floor(C / (A scale^2))``, ``frac_bits`` (a left shift, or a right shift when negative, of the
    polynomial, chosen so that ``exp(0)``'s code has ``out_bits`` bits), and ``(recip, recip_shift)``
    with ``floor(n * recip / 2**recip_shift) == n // q_ln2`` for every ``0 <= n <= 2**31`` (the
    division by an invariant integer of Granlund and Montgomery, PLDI 1994: ``recip =
    ceil(2**s / q_ln2)``, ``s = 32 + ceil(log2 q_ln2)``)."""

    q_ln2: int
    q_b: int
    q_c: int
    frac_bits: int
    recip: int
    recip_shift: int
    scale_out: float

    @classmethod
    def of(cls, scale: float, out_bits: int = 30) -> ExpConstants:
        """The constants at input ``scale`` (``2**-15 <= scale < ln 2``: ``q_b`` and ``q_c`` then
        hold in 32 bits)."""
        if not 2.0 ** -15 <= scale < LN2:
            raise ValueError(f"i_exp: scale {scale!r} is outside [2**-15, ln 2 = {LN2:.4f})")
        q_ln2 = math.floor(LN2 / scale)
        q_b = math.floor(EXP_B / scale)
        q_c = math.floor(EXP_C / (EXP_A * scale * scale))
        frac_bits = out_bits - (q_b * q_b + q_c).bit_length()  # exp(0) = q_b^2 + q_c is the largest
        s = EXP_IN_BITS + 1 + (q_ln2 - 1).bit_length()
        return cls(q_ln2=q_ln2, q_b=q_b, q_c=q_c, frac_bits=frac_bits, recip=-(-(1 << s) // q_ln2),
                   recip_shift=s, scale_out=EXP_A * scale * scale * 2.0 ** -frac_bits)

    @property
    def one(self) -> int:
        """``exp(0)``'s code (the largest)."""
        return int(exp_codes(np.zeros(1, dtype=np.int64), self)[0])


def exp_codes(q, k: ExpConstants) -> np.ndarray:
    """:func:`i_exp`'s codes of inputs ``q`` clipped to ``[-2**31, 0]``, with constants ``k``:
    ``z = -q // q_ln2``, ``p = q + z q_ln2`` in ``(-q_ln2, 0]``, ``((p + q_b)^2 + q_c)`` shifted
    left by ``frac_bits`` (if positive) and right by ``z - frac_bits`` (if positive), at most 63."""
    q = np.clip(np.asarray(q, dtype=np.int64), -(1 << EXP_IN_BITS), 0)
    z = (-q) // k.q_ln2
    p = q + z * k.q_ln2
    poly = ((p + k.q_b) ** 2 + k.q_c) << max(k.frac_bits, 0)
    return poly >> np.minimum(z + max(-k.frac_bits, 0), 63)


def i_exp(q, scale: float, out_bits: int = 30) -> tuple[np.ndarray, float]:
    """``exp(q * scale)`` for ``q <= 0`` (a softmax input after its row maximum is subtracted):
    ``q * scale = p - z ln 2`` with ``p`` in ``(-ln 2, 0]``, ``exp(p)`` by the polynomial in
    integers, scaled so that ``exp(0)`` has ``out_bits`` bits, shifted right by ``z``
    (:func:`exp_codes`, constants :meth:`ExpConstants.of`). Returns ``(q_out, scale_out)``.
    Relative error against ``exp`` where ``exp(x) >= 2**-8``: under 0.6 % at input scales of
    2**-11 or finer (a score accumulator's), 2 % at 2**-8, 6 % at 2**-5 (the constants' rounding
    to the input's step dominates there)."""
    q = np.asarray(q, dtype=np.int64)
    if np.any(q > 0):
        raise ValueError("i_exp: inputs must be <= 0 (subtract the row maximum first)")
    k = ExpConstants.of(scale, out_bits)
    return exp_codes(q, k), k.scale_out


def i_recip(d, shift: int, bits: int = 32) -> np.ndarray:
    """``floor(2**shift / max(d, 1))`` saturated to ``bits``-bit signed, ``0 <= shift <= 62``: the
    one reciprocal per row the vector unit's sequential divider computes (``shift + 1`` steps)."""
    if not 0 <= shift <= 62:
        raise ValueError(f"i_recip: shift {shift!r} is outside 0..62")
    return saturate((1 << shift) // np.maximum(np.asarray(d, dtype=np.int64), 1), bits)


def i_rsqrt_mean(sum_squares, n: int, guard_bits: int, shift: int, bits: int = 32) -> np.ndarray:
    """``i_recip(max(i_sqrt((sum_squares << 2 guard_bits) // n), 1), shift, bits)``: the reciprocal
    of a row's root mean square with ``guard_bits`` bits of fraction. Needs ``sum_squares <<
    2 guard_bits < 2**63``."""
    s = np.asarray(sum_squares, dtype=np.int64)
    if np.any(s < 0) or np.any(s >= 1 << (63 - 2 * guard_bits)):
        raise ValueError(f"i_rsqrt_mean: sums of squares must be in [0, 2**{63 - 2 * guard_bits})")
    return i_recip(np.maximum(i_sqrt((s << (2 * guard_bits)) // n), 1), shift, bits)


def i_softmax(q, scale: float, out_bits: int = 8, axis: int = -1, recip_shift: int = 59) -> tuple[np.ndarray, float]:
    """Softmax along ``axis`` in integers, as the vector unit runs it: row maximum subtracted,
    :func:`i_exp` (30-bit codes), the row's sum, its reciprocal ``r = i_recip(sum,
    recip_shift)`` and each term ``requantize(e, r, recip_shift - out_bits)`` at ``out_bits``
    unsigned bits of fraction (``scale_out = 2**-out_bits``). ``r`` keeps ``recip_shift - 30 -
    log2(n)`` bits (17 at 4096 terms, the default shift), far below the output step. Absolute
    error against float softmax under 2**-7 at the default 8 bits, input scales 2**-4 to 2**-10
    (the exp's error on the largest terms, and the output step)."""
    q = np.asarray(q, dtype=np.int64)
    shifted = q - q.max(axis=axis, keepdims=True)
    e, _ = i_exp(shifted, scale)
    r = i_recip(e.sum(axis=axis, keepdims=True), recip_shift)
    return requantize(e, r, recip_shift - out_bits, 32), 2.0 ** -out_bits


def i_sqrt(n) -> np.ndarray:
    """``floor(sqrt(n))`` of non-negative integers below 2**62 by Newton's iteration from above
    (I-BERT's Algorithm 4): exact."""
    n = np.asarray(n, dtype=np.int64)
    if np.any(n < 0):
        raise ValueError("i_sqrt: inputs must be >= 0")
    bits = np.where(n > 0, np.floor(np.log2(np.maximum(n, 1))).astype(np.int64) + 1, 0)
    x = np.left_shift(np.int64(1), (bits + 1) // 2)  # 2**ceil(bits / 2) >= sqrt(n)
    while True:
        y = (x + n // np.maximum(x, 1)) >> 1
        done = y >= x
        if done.all():
            return np.where(n > 0, x, 0)
        x = np.where(done, x, y)


def i_rmsnorm(q, out_bits: int = 12, guard_bits: int = 8, axis: int = -1,
              recip_shift: int = 40) -> tuple[np.ndarray, float]:
    """``x / sqrt(mean(x^2))`` along ``axis`` (RMSNorm before its gain; the input scale cancels),
    as the vector unit runs it: the row's sum of squares, one reciprocal of its root mean square
    with ``guard_bits`` of fraction (:func:`i_rsqrt_mean`, ``r = 2**recip_shift / root``), then
    ``requantize(q, r, recip_shift - out_bits - guard_bits)`` (``scale_out = 2**-out_bits``).
    Needs ``sum(q^2) * 2**(2 guard_bits) < 2**63`` and, for ``r`` to hold in 31 bits, ``rms >=
    2**(recip_shift - 31 - guard_bits)`` (2 codes at the defaults; a smaller one saturates ``r``).
    Absolute error under 2**-(out_bits - 1) plus ``|x| / rms`` times the root's relative error
    (under ``2**-guard_bits / rms`` of the codes) and ``r``'s (under ``root / 2**recip_shift``)."""
    q = np.asarray(q, dtype=np.int64)
    r = i_rsqrt_mean((q * q).sum(axis=axis, keepdims=True), q.shape[axis], guard_bits, recip_shift)
    return requantize(q, r, recip_shift - out_bits - guard_bits, 32), 2.0 ** -out_bits


def sigmoid_codes(q, k: ExpConstants, out_bits: int) -> np.ndarray:
    """``sigmoid(q * scale)`` at ``out_bits`` bits of fraction: ``sigmoid(|x|) = one / (one + e)``
    with ``e = exp(-|x|)`` and ``one = exp(0)`` in :func:`exp_codes`' codes (one division per
    element, ``(one << out_bits) // (one + e)``), ``sigmoid(-y) = 1 - sigmoid(y)``."""
    q = np.asarray(q, dtype=np.int64)
    one = k.one
    sigmoid_abs = (one << out_bits) // (one + exp_codes(-np.abs(q), k))
    return np.where(q >= 0, sigmoid_abs, (1 << out_bits) - sigmoid_abs)


def i_silu(q, scale: float, out_bits: int = 12) -> tuple[np.ndarray, float]:
    """SiLU ``x * sigmoid(x)`` in integers: :func:`sigmoid_codes` times ``q`` (``scale_out =
    scale * 2**-out_bits``). Absolute error under 0.4 % of ``|x|`` at input scales of 2**-5 or
    finer (the sigmoid's slope, at most 1/4, damps :func:`i_exp`'s error)."""
    q = np.asarray(q, dtype=np.int64)
    return q * sigmoid_codes(q, ExpConstants.of(scale), out_bits), scale * 2.0 ** -out_bits


def i_rope(q, cos, sin, frac_bits: int) -> np.ndarray:
    """Rotary position embedding of integer vectors along the last axis (``d`` elements, Llama's
    rotate-half pairing: element ``i < d/2`` pairs with ``i + d/2``): ``(x_i, x_j) -> (x_i cos -
    x_j sin, x_j cos + x_i sin)``, with ``cos`` and ``sin`` integer tables at ``frac_bits`` bits
    of fraction (shape broadcastable to ``[..., d/2]``), shifted right by ``frac_bits`` with
    halves rounded up. The output keeps the input's scale and is not saturated (a rotation can
    grow an element by up to sqrt 2). Absolute error against the exact rotation, in codes: at
    most ``1/2 + (|x_i| + |x_j|) * 2**-(frac_bits + 1)`` (the tables' rounding, then the shift's)."""
    q = np.asarray(q, dtype=np.int64)
    cos, sin = np.asarray(cos, dtype=np.int64), np.asarray(sin, dtype=np.int64)
    if frac_bits < 1 or q.shape[-1] % 2:
        raise ValueError(f"i_rope: needs frac_bits >= 1 and an even last axis, not {frac_bits!r} and {q.shape!r}")
    half = q.shape[-1] // 2
    first, second = q[..., :half], q[..., half:]
    rotated = np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return (rotated + (1 << (frac_bits - 1))) >> frac_bits
