"""Floating-point activation stimulus shared by the FP-activation PE testbenches
(``fpbitserial``, ``fpmixed``): random codes of every class, the corner codes, and the decoder
of their common output payload."""

from __future__ import annotations

import numpy as np

from ...hw.fp import FloatFormat


def random_codes(fmt: FloatFormat, rng: np.random.Generator, shape, *, specials: bool = True) -> np.ndarray:
    """Activation codes: a mix of N(0, 1)-like normals, exponents spread over the whole range,
    subnormals, ±0 and (``specials``) a few Inf / NaN codes."""
    n = int(np.prod(shape))
    top = (1 << fmt.exp_bits) - 1
    sign = rng.integers(0, 2, n) << fmt.bits - 1
    man = rng.integers(0, 1 << fmt.man_bits, n)
    kind = rng.choice(5, n, p=[0.45, 0.3, 0.1, 0.1, 0.05] if specials else [0.5, 0.3, 0.1, 0.1, 0.0])
    near_one = np.clip(fmt.bias + rng.integers(-4, 3, n), 1, top - 1)  # |x| around 2**-4 .. 2**2
    spread = rng.integers(1, top, n)
    exp = np.select([kind == 0, kind == 1, kind == 2, kind == 3], [near_one, spread, 0, 0], top)
    man = np.where(kind == 3, 0, man)  # ±0
    return (sign | exp << fmt.man_bits | man).reshape(shape)


def corner_codes(fmt: FloatFormat) -> dict[str, int]:
    """Named codes: ±0, the smallest subnormal, the largest subnormal, the smallest normal,
    one, the largest finite (both signs), ±Inf, NaN."""
    top = (1 << fmt.exp_bits) - 1
    sign = 1 << fmt.bits - 1
    return {"+0": 0, "-0": sign, "min subnormal": 1, "max subnormal": (1 << fmt.man_bits) - 1,
            "min normal": 1 << fmt.man_bits, "one": fmt.bias << fmt.man_bits,
            "max": fmt.max_code(False), "-max": fmt.max_code(True),
            "inf": top << fmt.man_bits, "-inf": sign | top << fmt.man_bits, "nan": fmt.nan_code}


def as_signed(codes, bits: int = 16) -> np.ndarray:
    """Codes as the array port's signed activations hold them."""
    codes = np.asarray(codes, dtype=np.int64) & ((1 << bits) - 1)
    return np.where(codes >> bits - 1, codes - (1 << bits), codes)


def decoder(cfg):
    """Output payload bits -> ``(acc, nan, fp32 or None)``."""
    layout = cfg.out_layout()

    def decode(bits: int):
        view = layout.from_bits(bits)
        return int(view.acc), int(view.nan), int(view.fp32) if cfg.fp32_out else None
    return decode
