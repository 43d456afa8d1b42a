"""Block floating point for the FP16 / BF16-activation PEs (``fpbitserial``, ``fpmixed``).

The integer datapaths of BitSerialPE and MixedPE compute dot products of integers; these helpers
turn a beat of ``lanes`` floating-point activations into integers for them, and the wide
fixed-point sum they produce back into FP32. The arithmetic, exactly (``p`` = significand bits of
the format with the hidden bit, 11 for fp16, 8 for bf16; ``q = align_bits - 1``):

1. A finite lane ``(s, E, F)`` has the significand ``sig = (E != 0) * 2**(p-1) + F`` and the
   exponent ``e = max(E, 1)``, so its value is ``(-1)**s * sig * 2**(e - bias - p + 1)``
   (subnormals and ±0 included, ±0 giving sig = 0). A non-finite lane (exponent field all ones:
   Inf or NaN) counts as ``sig = 0, e = 1`` and raises the beat's ``nan`` flag.
2. The beat exponent is ``emax = max(e)`` over its lanes. Each lane is aligned to it and kept to
   ``align_bits`` bits, sign included: ``a = (-1)**s * floor(sig * 2**(q - p) / 2**(emax - e))``
   (the magnitude truncated toward zero, then signed; |a| <= 2**q - 1).
3. The integer datapath computes the beat's dot product ``D`` of these ``a`` with the integer
   weights; ``D`` weighs ``2**(emax - bias + 1 - q)``. It enters the accumulator shifted left by
   ``emax - 1`` (the *beat shift*, 0 .. 2**exp_bits - 3), so the accumulator is an integer whose
   LSB weighs ``2**lsb_exp``, ``lsb_exp = 2 - bias - q`` (fp16 with align_bits = 12:
   ``2**-24``, the smallest subnormal). Every partial sum is an exact integer: arrays add them
   with integer adders, and the only approximation is the truncation in step 2 (none at all
   for the beat's largest lane when ``align_bits >= p + 1``).
4. The one normalization: the (wrapped) accumulator ``x`` is converted to FP32 with
   round-to-nearest-even, IEEE 754 roundTiesToEven of ``x * 2**lsb_exp`` (subnormal FP32
   results and overflow to ±Inf included; an integer 0 gives +0). A result with any non-finite
   activation is the canonical quiet NaN 0x7FC00000 instead (Inf x 0 and Inf - Inf are NaN in
   IEEE 754; here any Inf is, a documented simplification).

:func:`align_beats` and :func:`to_fp32` are the golden models of steps 1-2 and 4;
:class:`FpAligner` and :func:`fp32_from_fixed` their RTL. :func:`alignment_error` measures the
error against exact dot products rounded once to FP32 (``benchmarks/fp_activation_error.py``
prints it).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..fp import FLOAT_FORMATS, FloatFormat, decode, encode, float_format
from ..params import param

ACT_FORMATS = ("fp16", "bf16")  # activation formats the aligner takes (16-bit codes)
FP32 = FLOAT_FORMATS["fp32"]
FP32_NAN = FP32.nan_code


def beat_shift_bits(fmt: FloatFormat) -> int:
    """The largest beat shift ``emax - 1``: the largest finite exponent field less one (bits of shift)."""
    return fmt.exp_max_field - 1


def lsb_exp(fmt: FloatFormat, align_bits: int) -> int:
    """Exponent of the accumulator's LSB: ``2 - bias - (align_bits - 1)``."""
    return 2 - fmt.bias - (align_bits - 1)


# --- golden ---------------------------------------------------------------------------------------



@dataclass(frozen=True, kw_only=True)
class FpActivationConfig:
    """The parameters and figures both FP-activation PEs add to their integer PE's config (a
    mixin listed before it: ``class FpMixedConfig(FpActivationConfig, MixedConfig)``)."""

    a_float: str = param("fp16", "activation format", choices=ACT_FORMATS)
    align_bits: int = param(12, "aligned activation width, sign included (bits); p + 1 keeps a beat's largest "
                                "lane exact (fp16: 12, bf16: 9)", low=3, high=16)
    fp32_out: bool = param(True, "FP32 output stage (round to nearest even) after the fixed-point accumulator")

    @property
    def fmt(self) -> FloatFormat:
        return float_format(self.a_float)

    @property
    def a_format(self) -> str:
        return self.a_float

    @property
    def cell_a_bits(self) -> int:
        """An aligned activation in the datapath (bits, signed)."""
        return self.align_bits

    @property
    def beat_shift(self) -> int:
        """The largest beat shift ``emax - 1`` (bits): 29 for fp16, 253 for bf16."""
        return beat_shift_bits(self.fmt)

    @property
    def lsb_exp(self) -> int:
        """The accumulator's LSB (an array result's unit) weighs ``2**lsb_exp``."""
        return lsb_exp(self.fmt, self.align_bits)

def _fields(fmt: FloatFormat, codes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(sign, sig, e, finite)`` of each 16-bit code, as step 1 of the module docstring reads them."""
    codes = np.asarray(codes, dtype=np.int64) & ((1 << fmt.bits) - 1)
    sign = codes >> (fmt.bits - 1) & 1
    exp = codes >> fmt.man_bits & ((1 << fmt.exp_bits) - 1)
    man = codes & ((1 << fmt.man_bits) - 1)
    finite = exp != (1 << fmt.exp_bits) - 1
    sig = np.where(finite, np.where(exp != 0, 1 << fmt.man_bits, 0) | man, 0)
    e = np.where(finite, np.maximum(exp, 1), 1)
    return sign, sig, e, finite


def align_beats(codes, fmt: FloatFormat, align_bits: int, lanes: int):
    """Golden alignment of activation codes ``codes`` (``... x K``; padded with +0 to whole beats
    of ``lanes`` consecutive k): returns ``(a, shift, nan)`` with ``a`` the aligned integers
    (``... x beats x lanes``, int64), ``shift`` the beat shifts ``emax - 1`` and ``nan`` whether
    a lane of the beat is not finite (both ``... x beats``)."""
    codes = np.asarray(codes, dtype=np.int64)
    k = codes.shape[-1]
    beats = -(-k // lanes)
    padded = np.zeros(codes.shape[:-1] + (beats * lanes,), dtype=np.int64)
    padded[..., :k] = codes
    sign, sig, e, finite = (x.reshape(codes.shape[:-1] + (beats, lanes)) for x in _fields(fmt, padded))
    emax = e.max(axis=-1)
    q, p = align_bits - 1, fmt.precision
    # floor(sig * 2**(q - p) / 2**(emax - e)) as one right shift of sig << max(q - p, 0).
    right = emax[..., None] - e + max(p - q, 0)
    magnitude = np.where(right < 63, (sig << max(q - p, 0)) >> np.minimum(right, 62), 0)
    return np.where(sign == 1, -magnitude, magnitude), emax - 1, ~finite.all(axis=-1)


def to_fp32(x, scale_exp: int, nan=False) -> int:
    """Golden output stage: the FP32 code of integer ``x * 2**scale_exp`` rounded to nearest
    even, or the canonical NaN when ``nan``."""
    if nan:
        return FP32_NAN
    return encode(FP32, Fraction(int(x)) * Fraction(2) ** scale_exp)


# --- RTL ------------------------------------------------------------------------------------------


class FpAligner(wiring.Component):
    """Steps 1-2 of the module docstring for one beat, combinational.

    Ports
    -----
    a : ``lanes`` activation codes (16 bits each); aligned : ``lanes`` aligned integers
    (``align_bits``, signed); shift : the beat shift ``emax - 1``; nan : a lane is Inf or NaN.
    """

    def __init__(self, fmt: FloatFormat, align_bits: int, lanes: int):
        self.fmt, self.align_bits, self.lanes = fmt, align_bits, lanes
        super().__init__({
            "a": In(data.ArrayLayout(unsigned(fmt.bits), lanes)),
            "aligned": Out(data.ArrayLayout(signed(align_bits), lanes)),
            "shift": Out(range(beat_shift_bits(fmt) + 1)),
            "nan": Out(1),
        })

    def elaborate(self, platform):
        fmt, lanes = self.fmt, self.lanes
        q, p = self.align_bits - 1, fmt.precision
        m = Module()
        ones = (1 << fmt.exp_bits) - 1
        sigs, exps, finites = [], [], []
        for lane in range(lanes):
            code = self.a[lane]
            exp, man = code[fmt.man_bits:fmt.man_bits + fmt.exp_bits], code[:fmt.man_bits]
            finite = exp != ones
            sig = Signal(p, name=f"sig_{lane}")
            e = Signal(fmt.exp_bits, name=f"e_{lane}")
            m.d.comb += [sig.eq(Mux(finite, Mux(exp != 0, 1 << fmt.man_bits, 0) | man, 0)),
                         e.eq(Mux(finite & (exp != 0), exp, 1))]
            sigs.append(sig), exps.append(e), finites.append(finite)
        emax = Signal(fmt.exp_bits)
        m.d.comb += emax.eq(_tree(exps, lambda x, y: Mux(x > y, x, y)))
        for lane in range(lanes):
            distance = Signal(fmt.exp_bits + 1, name=f"d_{lane}")  # emax - e, plus the truncation below p
            m.d.comb += distance.eq(emax - exps[lane] + max(p - q, 0))
            magnitude = (sigs[lane] << max(q - p, 0)) >> distance
            m.d.comb += self.aligned[lane].eq(Mux(self.a[lane][fmt.bits - 1], -magnitude[:q], magnitude[:q]))
        m.d.comb += [self.shift.eq(emax - 1), self.nan.eq(~_tree(finites, lambda x, y: x & y))]
        return m


def _tree(values, combine):
    """Reduce ``values`` pairwise in a balanced tree (log depth)."""
    level = list(values)
    while len(level) > 1:
        paired = [combine(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def _leading_one(value) -> tuple:
    """``(any, index)`` of the highest set bit of ``value``, a balanced tree of muxes."""
    n = len(value)
    if n == 1:
        return value[0], Const(0, 1)
    half = 1 << (n - 1).bit_length() - 1  # the low part: a power of two, so high indices just add it
    lo_any, lo_index = _leading_one(value[:half])
    hi_any, hi_index = _leading_one(value[half:])
    width = (n - 1).bit_length()
    return lo_any | hi_any, Mux(hi_any, hi_index + half, lo_index)[:width]


def fp32_from_fixed(m: Module, x, scale_exp: int, nan, name: str = "fp32") -> Signal:
    """Step 4 in RTL: the FP32 code (round to nearest even) of the signed integer ``x`` times
    ``2**scale_exp``; the canonical NaN when ``nan``. Combinational."""
    c = -126 - scale_exp  # bit of x weighing 2**-126: results below it lie on the subnormal grid 2**-149
    w = max(len(x), c + 1)
    out = Signal(32, name=name)
    negative = x[len(x) - 1]
    magnitude = Signal(w, name=f"{name}_mag")
    m.d.comb += magnitude.eq(Mux(negative, -x, x))
    found, top = _leading_one(magnitude)
    # The 24-bit window from bit `lead` down; lead = max(top, c), so subnormals keep the grid.
    lead = Signal(range(w), name=f"{name}_lead")
    m.d.comb += lead.eq(Mux(top > c, top, c) if c > 0 else top)
    amount = Signal(range(w), name=f"{name}_shift")
    m.d.comb += amount.eq(w - 1 - lead)
    # magnitude << 25, bit `lead` moved to the top (w + 24): the window, the round bit below it,
    # everything lower sticky.
    normal = Signal(w + 25, name=f"{name}_norm")
    m.d.comb += normal.eq((magnitude << 25) << amount)
    window, round_bit, sticky = normal[w + 1:w + 25], normal[w], normal[:w] != 0
    # The biased exponent less one: the window's top (hidden) bit adds the one.
    field = Signal(range(w + max(scale_exp, 0) + 127), name=f"{name}_field")
    m.d.comb += field.eq(lead + (scale_exp + 126))
    word = Signal(32, name=f"{name}_word")
    m.d.comb += word.eq((field[:8] << 23) + window + (round_bit & (sticky | window[0])))
    # A carry out of the window into exponent 255 leaves mantissa 0: the word is then ±Inf already.
    infinite = field >= 254
    with m.If(nan):
        m.d.comb += out.eq(FP32_NAN)
    with m.Elif(~found):
        m.d.comb += out.eq(0)
    with m.Elif(infinite):
        m.d.comb += out.eq(negative << 31 | 0xFF << 23)
    with m.Else():
        m.d.comb += out.eq(negative << 31 | word[:31])
    return out


# --- error versus exact FP32 dot products --------------------------------------------------------


def fmt_value(fmt: FloatFormat, code: int) -> Fraction:
    """The exact value of a finite code."""
    return decode(fmt, int(code) & ((1 << fmt.bits) - 1))


def fp32_value(code: int) -> float:
    """The value of an FP32 code."""
    return float(np.array([code], dtype=np.uint32).view(np.float32)[0])


def alignment_error(*, align_bits=(6, 8, 10, 12, 14, 16), fmt: str = "fp16", lanes: int = 16, k: int = 256,
                    w_bits: int = 4, trials: int = 200, spread: str = "normal", seed: int = 0) -> list[dict]:
    """Error of the aligned dot product (steps 1-4, unwrapped accumulator) against the exact dot
    product rounded once to FP32, over ``trials`` random dot products of length ``k`` in beats
    of ``lanes``, signed ``w_bits``-bit weights, per ``align_bits``.

    ``spread``: ``normal`` draws activations from N(0, 1) (LLM activations, mostly); ``wide`` from
    N(0, 1) times 2**U(-12, 12) (exponents far apart within a beat). Returns one dict per
    align_bits: ``mean_rel`` / ``max_rel``, the relative error ``|pe - ref| / |ref|`` (cases with
    ref = 0 skipped; cancellation in the sum inflates it); ``mean_norm`` / ``max_norm``, the error
    over ``sum |a_i * w_i|`` (the scale the truncation acts on); ``exact``, the share of results
    whose FP32 code equals the reference's.
    """
    f = float_format(fmt)
    rng = np.random.default_rng(seed)
    half = 1 << w_bits - 1
    cases = []
    for _ in range(trials):
        x = rng.standard_normal(k)
        if spread == "wide":
            x = x * 2.0 ** rng.uniform(-12, 12, k)
        if fmt == "fp16":
            codes = x.astype(np.float16).view(np.uint16).astype(np.int64)
        else:
            codes = np.array([encode(f, Fraction(float(v))) for v in x], dtype=np.int64)
        cases.append((codes, rng.integers(-half, half, k)))
    rows = []
    for bits in align_bits:
        rel, norm, exact = [], [], 0
        for codes, weights in cases:
            a, shift, nan = align_beats(codes, f, bits, lanes)
            wb = np.zeros(a.size, dtype=np.int64)
            wb[:k] = weights
            dots = (a.astype(object) * wb.reshape(a.shape).astype(object)).sum(axis=-1)
            total = sum(int(d) << int(s) for d, s in zip(dots.ravel(), shift.ravel()))
            got = to_fp32(total, lsb_exp(f, bits), bool(nan.any()))
            values = [fmt_value(f, c) * int(w) for c, w in zip(codes, weights)]
            ref = encode(FP32, sum(values, Fraction(0)))
            exact += got == ref
            error = abs(fp32_value(got) - fp32_value(ref))
            if fp32_value(ref) != 0:
                rel.append(error / abs(fp32_value(ref)))
            scale = float(sum(abs(v) for v in values))
            if scale:
                norm.append(error / scale)
        rows.append(dict(align_bits=bits, mean_rel=float(np.mean(rel)), max_rel=float(np.max(rel)),
                         mean_norm=float(np.mean(norm)), max_norm=float(np.max(norm)), exact=exact / len(cases)))
    return rows
