"""Floating-point formats: their encodings, exact decoding and correctly rounded encoding.

One table, :data:`FLOAT_FORMATS`, declares every binary floating-point format peforge knows
(exponent and mantissa widths, bias, which codes are special). The float PEs, their golden
models, the testbenches and the cost model's format rule (:func:`represents`) all read it.

Decoding and encoding are exact: a finite code decodes to a :class:`fractions.Fraction`, and
:func:`encode` rounds a rational value to nearest, ties to even (IEEE 754 roundTiesToEven).

Formats (``special``):

- ``ieee``: the all-ones exponent holds ±Inf (mantissa 0) and NaN (mantissa ≠ 0): fp32, bf16,
  fp16 (IEEE binary16) and FP8 E5M2.
- ``e4m3``: FP8 E4M3 of the OCP 8-bit floating point spec (v1.0, 2023): no infinities; only
  S.1111.111 is NaN, so the largest finite value is S.1111.110 = ±448.
- ``none``: every code is finite (OCP Microscaling FP6 E3M2 and FP4 E2M1).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["FloatFormat", "FLOAT_FORMATS", "float_format", "decode", "encode", "represents",
           "int_bits", "NAN", "POS_INF", "NEG_INF"]

NAN = float("nan")
POS_INF = float("inf")
NEG_INF = float("-inf")


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: 1 sign bit, ``exp_bits`` exponent, ``man_bits`` mantissa.

    A normal value is ``(-1)**s * 2**(e - bias) * (1 + m / 2**man_bits)``; exponent field 0
    holds the subnormals ``(-1)**s * 2**(1 - bias) * m / 2**man_bits`` (and ±0).
    """

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    special: str  # "ieee" | "e4m3" | "none" (see the module docstring)
    doc: str

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def precision(self) -> int:
        """Significand bits including the hidden bit."""
        return self.man_bits + 1

    @property
    def exp_max_field(self) -> int:
        """The largest exponent field of a finite value."""
        top = (1 << self.exp_bits) - 1
        return top - 1 if self.special == "ieee" else top

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal value (unbiased)."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value (unbiased)."""
        return self.exp_max_field - self.bias

    @property
    def max_man_field(self) -> int:
        """The mantissa field of the largest finite value."""
        full = (1 << self.man_bits) - 1
        return full - 1 if self.special == "e4m3" else full

    @property
    def max_finite(self) -> Fraction:
        return Fraction(2) ** self.emax * (1 + Fraction(self.max_man_field, 1 << self.man_bits))

    @property
    def min_subnormal(self) -> Fraction:
        return Fraction(2) ** (self.emin - self.man_bits)

    @property
    def has_inf(self) -> bool:
        return self.special == "ieee"

    @property
    def nan_code(self) -> int | None:
        """The canonical (quiet, positive) NaN code, or ``None`` when the format has none."""
        if self.special == "ieee":
            return ((1 << self.exp_bits) - 1) << self.man_bits | 1 << self.man_bits - 1
        if self.special == "e4m3":
            return (1 << self.bits - 1) - 1
        return None

    def inf_code(self, negative: bool) -> int:
        if not self.has_inf:
            raise ValueError(f"{self.name} has no infinity")
        return int(negative) << self.bits - 1 | ((1 << self.exp_bits) - 1) << self.man_bits

    def max_code(self, negative: bool) -> int:
        """The code of the largest finite magnitude, with sign."""
        return int(negative) << self.bits - 1 | self.exp_max_field << self.man_bits | self.max_man_field

    def fields(self, code: int) -> tuple[int, int, int]:
        """``(sign, exponent field, mantissa field)`` of ``code``."""
        if not 0 <= code < 1 << self.bits:
            raise ValueError(f"{self.name} code {code!r} outside 0..{(1 << self.bits) - 1}")
        return code >> self.bits - 1, code >> self.man_bits & (1 << self.exp_bits) - 1, code & (1 << self.man_bits) - 1

    def is_nan(self, code: int) -> bool:
        sign, exp, man = self.fields(code)
        if self.special == "ieee":
            return exp == (1 << self.exp_bits) - 1 and man != 0
        if self.special == "e4m3":
            return exp == (1 << self.exp_bits) - 1 and man == (1 << self.man_bits) - 1
        return False

    def is_inf(self, code: int) -> bool:
        sign, exp, man = self.fields(code)
        return self.has_inf and exp == (1 << self.exp_bits) - 1 and man == 0


FLOAT_FORMATS: dict[str, FloatFormat] = {f.name: f for f in (
    FloatFormat("fp32", 8, 23, 127, "ieee", "IEEE 754 binary32"),
    FloatFormat("bf16", 8, 7, 127, "ieee", "bfloat16: binary32's exponent, 7-bit mantissa"),
    FloatFormat("fp16", 5, 10, 15, "ieee", "IEEE 754 binary16"),
    FloatFormat("e5m2", 5, 2, 15, "ieee", "FP8 E5M2 (OCP 8-bit floating point, IEEE-like)"),
    FloatFormat("e4m3", 4, 3, 7, "e4m3", "FP8 E4M3 (OCP 8-bit floating point: no Inf, one NaN code, max 448)"),
    FloatFormat("fp6", 3, 2, 3, "none", "FP6 E3M2 (OCP Microscaling)"),
    FloatFormat("fp4", 2, 1, 1, "none", "FP4 E2M1 (OCP Microscaling)"),
)}

# Names the quantization schemes use for these formats (peforge.models.quant).
_ALIASES = {"fp8": "e4m3"}


def float_format(name: str) -> FloatFormat:
    """The format called ``name`` (``fp8`` is E4M3); a one-line ``ValueError`` lists the known ones."""
    name = _ALIASES.get(name, name)
    if name not in FLOAT_FORMATS:
        raise ValueError(f"unknown floating-point format {name!r}; known: {', '.join(FLOAT_FORMATS)}")
    return FLOAT_FORMATS[name]


def decode(fmt: FloatFormat, code: int) -> Fraction | float:
    """The value of ``code``: a ``Fraction`` when finite (both zeros decode to 0), else
    :data:`NAN`, :data:`POS_INF` or :data:`NEG_INF`."""
    sign, exp, man = fmt.fields(code)
    if fmt.is_nan(code):
        return NAN
    if fmt.is_inf(code):
        return NEG_INF if sign else POS_INF
    if exp == 0:
        magnitude = Fraction(man, 1 << fmt.man_bits) * Fraction(2) ** fmt.emin
    else:
        magnitude = (1 + Fraction(man, 1 << fmt.man_bits)) * Fraction(2) ** (exp - fmt.bias)
    return -magnitude if sign else magnitude


def _floor_log2(x: Fraction) -> int:
    """floor(log2(x)) of a positive rational, exactly."""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e if Fraction(2) ** e <= x else e - 1


def encode(fmt: FloatFormat, value: Fraction | int | float, *, negative_zero: bool = False,
           subnormals: bool = True, overflow: str = "inf") -> int:
    """The code of ``value`` rounded to nearest, ties to even.

    ``value`` is exact (``Fraction`` or ``int``) or one of the specials NaN / ±Inf. A zero
    result is -0 when ``negative_zero`` (or when a negative value rounds to zero).
    ``subnormals=False`` flushes results below the smallest normal to zero (sign kept).
    ``overflow``: ``inf`` rounds past the largest finite value as IEEE 754 does (to ±Inf where
    the format has it, else to NaN for E4M3, saturating for formats without NaN); ``saturate``
    clamps to ±max_finite (the OCP spec's saturating conversion).
    """
    if overflow not in ("inf", "saturate"):
        raise ValueError(f"overflow={overflow!r}; allowed: inf, saturate")
    if isinstance(value, float):
        if value != value:
            if fmt.nan_code is None:
                raise ValueError(f"{fmt.name} has no NaN")
            return fmt.nan_code
        if value in (POS_INF, NEG_INF):
            return _overflowed(fmt, value < 0, overflow)
        value = Fraction(value)
    value = Fraction(value)
    negative = value < 0 or (value == 0 and negative_zero)
    sign = int(negative) << fmt.bits - 1
    magnitude = abs(value)
    if magnitude == 0:
        return sign
    # Quantum (weight of the last mantissa bit) at this magnitude, then round to a multiple of it.
    exponent = max(_floor_log2(magnitude), fmt.emin)
    quantum = Fraction(2) ** (exponent - fmt.man_bits)
    scaled = magnitude / quantum
    units = scaled.numerator // scaled.denominator
    rest = scaled - units
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and units % 2):
        units += 1
    rounded = units * quantum
    if rounded > fmt.max_finite:
        return _overflowed(fmt, negative, overflow)
    if rounded < Fraction(2) ** fmt.emin:  # subnormal (or rounded up to the smallest normal: units == 2**man)
        if not subnormals:
            return sign
        return sign | units  # exponent field 0; units < 2**man_bits, or == 2**man_bits: the smallest normal
    e = _floor_log2(rounded)
    man = rounded / Fraction(2) ** (e - fmt.man_bits) - (1 << fmt.man_bits)
    return sign | (e + fmt.bias) << fmt.man_bits | int(man)


def _overflowed(fmt: FloatFormat, negative: bool, overflow: str) -> int:
    if overflow == "saturate" or fmt.special == "none":
        return fmt.max_code(negative)
    if fmt.has_inf:
        return fmt.inf_code(negative)
    return fmt.nan_code | int(negative) << fmt.bits - 1


def int_bits(name: str) -> int | None:
    """The width of an integer format name ``int<N>`` (signed), else ``None``."""
    if name.startswith("int") and name[3:].isdigit():
        return int(name[3:])
    return None


def represents(container: str, fmt: str) -> bool:
    """True when every value of number format ``fmt`` is exactly a value of format ``container``.

    Names are ``int<N>`` (signed integers) or :data:`FLOAT_FORMATS` names (``fp8`` = E4M3).
    A float holds ``int<N>`` when its significand and range cover ±2**(N-1); an integer holds
    no float format. Specials (NaN, Inf) are not required to carry over.
    """
    c_int, f_int = int_bits(container), int_bits(fmt)
    if c_int is not None:
        return f_int is not None and f_int <= c_int
    c = float_format(container)
    if f_int is not None:
        # Integers up to 2**(N-1) in magnitude: exact while they need <= precision significant bits.
        return f_int - 1 <= c.precision and f_int - 1 <= c.emax
    f = float_format(fmt)
    return (f.precision <= c.precision and f.emax <= c.emax and f.max_finite <= c.max_finite
            and f.min_subnormal >= c.min_subnormal)
