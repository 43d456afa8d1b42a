"""Integer-only elementwise operators of a decoder layer: the golden models a vector unit's RTL
is to match bit for bit (issue 14), in the style of I-BERT (Kim et al., "I-BERT: Integer-only
BERT Quantization", ICML 2021: second-order polynomial exp, Newton integer square root).

A quantized tensor is an integer array ``q`` with a real ``scale`` (its value is ``q * scale``).
Every operator computes on integers only (numpy ``int64``, whose range each one states); the
reals appear only in constants folded from the scale once, which the hardware would take as
parameters. The error of each operator against float is measured over every input code by
``tests/unit/test_intops.py`` and bounded there as each docstring states.
"""

from __future__ import annotations

import math

import numpy as np

# I-BERT's fit of exp on (-ln 2, 0]: exp(p) ~ A (p + B)^2 + C (Kim et al. 2021, section 3.4)
EXP_A, EXP_B, EXP_C = 0.3585, 1.353, 0.344
LN2 = math.log(2.0)


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
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(rounded, low, high)


def i_exp(q, scale: float, frac_bits: int = 16) -> tuple[np.ndarray, float]:
    """``exp(q * scale)`` for ``q <= 0`` (a softmax input after its row maximum is subtracted):
    ``q * scale = p - z ln 2`` with ``p`` in ``(-ln 2, 0]``, ``exp(p)`` by the polynomial in
    integers, ``frac_bits`` more bits kept, shifted right by ``z``. Returns ``(q_out,
    scale_out)``. Needs ``((ln 2 + 1.353) / scale)**2 * 2**frac_bits < 2**62``. Relative error
    against ``exp`` where ``exp(x) >= 2**-8``: under 0.6 % at input scales of 2**-11 or finer (a
    score accumulator's), 2 % at 2**-8, 6 % at 2**-5 (the constants' rounding to the input's
    step dominates there)."""
    q = np.asarray(q, dtype=np.int64)
    if np.any(q > 0):
        raise ValueError("i_exp: inputs must be <= 0 (subtract the row maximum first)")
    q_ln2 = math.floor(LN2 / scale)
    if q_ln2 < 1:
        raise ValueError(f"i_exp: scale {scale!r} is coarser than ln 2; allowed scales below {LN2:.4f}")
    z = (-q) // q_ln2
    p = q + z * q_ln2  # in (-q_ln2, 0]
    q_b = math.floor(EXP_B / scale)
    q_c = math.floor(EXP_C / (EXP_A * scale * scale))
    poly = ((p + q_b) ** 2 + q_c) << frac_bits
    return poly >> np.minimum(z, 62), EXP_A * scale * scale / (1 << frac_bits)


def i_softmax(q, scale: float, out_bits: int = 8, axis: int = -1) -> tuple[np.ndarray, float]:
    """Softmax along ``axis`` in integers: row maximum subtracted, :func:`i_exp`, and each term
    over the row's sum at ``out_bits`` unsigned bits of fraction (``scale_out = 2**-out_bits``).
    Absolute error against float softmax under 2**-7 at the default 8 bits, input scales 2**-4
    to 2**-10 (the exp's error on the largest terms, and the output step)."""
    q = np.asarray(q, dtype=np.int64)
    shifted = q - q.max(axis=axis, keepdims=True)
    e, _ = i_exp(shifted, scale)
    total = e.sum(axis=axis, keepdims=True)
    return (e << out_bits) // total, 2.0 ** -out_bits


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


def i_rmsnorm(q, out_bits: int = 12, guard_bits: int = 8, axis: int = -1) -> tuple[np.ndarray, float]:
    """``x / sqrt(mean(x^2))`` along ``axis`` (RMSNorm before its gain; the input scale cancels):
    the mean of squares in integers with ``2 * guard_bits`` more bits, :func:`i_sqrt`, and the
    quotient at ``out_bits`` bits of fraction (``scale_out = 2**-out_bits``). Needs
    ``sum(q^2) * 2**(2 guard_bits) < 2**62``. Absolute error under 2**-(out_bits - 1) plus
    ``|x| / rms`` times the root's relative error (under ``2**-guard_bits / rms`` of the codes)."""
    q = np.asarray(q, dtype=np.int64)
    mean_square = ((q * q).sum(axis=axis, keepdims=True) << (2 * guard_bits)) // q.shape[axis]
    root = np.maximum(i_sqrt(mean_square), 1)  # rms with guard_bits of fraction
    return np.floor_divide(q << (out_bits + guard_bits), root), 2.0 ** -out_bits


def i_silu(q, scale: float, out_bits: int = 12) -> tuple[np.ndarray, float]:
    """SiLU ``x * sigmoid(x)`` in integers: ``sigmoid(|x|) = 1 / (1 + exp(-|x|))`` from
    :func:`i_exp` at ``out_bits`` bits of fraction, ``sigmoid(-y) = 1 - sigmoid(y)``, times ``q``
    (``scale_out = scale * 2**-out_bits``). Absolute error under 0.4 % of ``|x|`` at input scales
    of 2**-5 or finer (the sigmoid's slope, at most 1/4, damps :func:`i_exp`'s error)."""
    q = np.asarray(q, dtype=np.int64)
    e, e_scale = i_exp(-np.abs(q), scale)
    one = round(1.0 / e_scale)  # exp(0) in i_exp's codes
    sigmoid_abs = (one << out_bits) // (one + e)  # sigmoid(|x|) at out_bits of fraction
    sigmoid = np.where(q >= 0, sigmoid_abs, (1 << out_bits) - sigmoid_abs)
    return q * sigmoid, scale * 2.0 ** -out_bits


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
