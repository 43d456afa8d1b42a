"""FpMacPE: a floating-point multiply-accumulate PE (BF16 / FP16 / FP8 / FP32 inputs, FP32 / BF16 /
FP16 accumulator), one beat of ``lanes`` products per cycle, one rounding per beat.

Arithmetic (the RTL and :func:`fp_sum` implement exactly this; formats are those of
:data:`peforge.hw.fp.FLOAT_FORMATS`)
------------------------------------------------------------------------------------------------
One beat computes ``round(c + a[0]·w[0] + ... + a[L-1]·w[L-1])``: ``c`` is the accumulator
operand (the running sum, a code of format ``acc``; +0 on a dot product's first beat and at the
top of a weight-stationary column, as a cleared register holds), ``a``/``w`` codes of format ``fmt``.

1. Decoding. A finite code is ``(-1)**s · sig · 2**(E - man)``, ``E = max(exponent field, 1) −
   bias``, ``sig`` the significand with its hidden bit (0 for exponent field 0). With
   ``subnormals=False`` an input whose exponent field is 0 is a zero of its sign (flushed).
2. Terms. Each product is exact: ``sig_a·sig_w`` (2·p_in bits) with *top* ``E_a + E_w + 2``
   (its magnitude is below ``2**top``); ``c`` is a term with top ``E_c + 1``. Zero terms
   (significand 0) take no part in the alignment.
3. Alignment. With ``T`` the largest top of the nonzero terms, every term becomes the integer
   ``floor(|term| · 2**(W − T))`` (magnitudes truncated toward zero, no sticky bit; a term more
   than ``W`` bits below ``T`` vanishes), signed, ``W = Wt + D`` bits: ``Wt = max(2·p_in,
   p_acc)`` holds any term whole, ``D = p_acc + 3`` (:data:`GUARD_BITS` more than the
   accumulator precision) is the exponent spread a term may lie below ``T`` and still be kept
   exactly. Within that spread the window holds every term whole, the sum below is exact and the
   result is the correctly rounded exact sum.
4. Sum. The signed integers are added exactly (``Ws = W + bit_length(L)`` bits hold L + 1 terms).
5. Rounding. The sum ``S · 2**(T − W)`` is rounded once to ``acc``, to nearest, ties to even,
   with subnormal results (``subnormals=True``) or flushed to a zero of the sum's sign
   (``subnormals=False``, a result rounded below the smallest normal), both as
   :func:`peforge.hw.fp.encode` does. A result beyond the largest finite value is ±Inf.
6. Zeros. ``S = 0``: −0 when every term is a zero of sign 1 (IEEE: −0 + −0 = −0), else +0;
   a nonzero sum rounded to zero keeps its sign. (A dot product starts from ``c = +0``, so
   products that are all −0 give +0.)
7. Specials. Any NaN input, Inf × 0, or +Inf and −Inf among the terms: the canonical NaN of
   ``acc`` (positive, quiet). Else any Inf: Inf of that sign. E4M3 inputs have no Inf; their NaN
   is S.1111.111.

``approx_norm=True`` (needs ``subnormals=False``) replaces step 5's normalization by an
approximate one, after Alexandridis, Peltekis, Filippas and Dimitrakopoulos, "Floating-Point
Multiply-Add with Approximate Normalization for Low-Cost Matrix Engines" (arXiv 2408.11997,
2024), whose point is that the wide leading-zero count and normalizing shift of the multiply-add
are costly and that their exactness buys little accuracy in matrix engines: without cancellation
the sum's leading one lies within a few bits of the top. Here the leading one is searched exactly
only in the top ``F = Ws − W + 4`` bits of the ``Ws``-bit sum (the carry headroom and the 4 bits
below it, where it lies unless terms cancel); there the sum is normalized exactly. Below them the
search works on groups of :data:`APPROX_GROUP` = 4 bits: with ``g`` all-zero groups under the
top ``F`` bits, the sum is shifted left by ``F + 4·g`` (a shifter of whole groups) and rounded,
to nearest even, at a fixed position: ``p_acc`` bits below the top. A cancelled result whose
leading one so lies ``r`` (0..3) bits below the top keeps ``p_acc − r`` significant bits; the
rounded significand is then renormalized exactly (a shift of at most 3 places) into the code.
Results below the smallest normal flush to zero, beyond the largest finite go to ±Inf.
:func:`approx_error_stats` measures the error this costs against the exact mode.

Timing: one beat per cycle into a registered accumulator, ``cycles(n) = n - 1 + latency``, as
:class:`~peforge.hw.pe.mac.MacPE` (a real FMA would be pipelined; the accumulator feedback
makes a one-cycle accumulate the simple honest choice, and characterization reports its depth).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..fp import FloatFormat, float_format
from ..params import param, validate
from ..ports import stream_ports
from .arith import tree_sum
from .protocol import PeConfigBase, PeKind

GUARD_BITS = 3  # D = p_acc + GUARD_BITS: exponent spread (bits) kept exactly below the largest term
APPROX_GROUP = 4  # bits per group of the approximate leading-one search
INPUT_FORMATS = ("bf16", "fp16", "e4m3", "e5m2", "fp32")
ACC_FORMATS = ("fp32", "bf16", "fp16")
UNBOUNDED_REDUCTION = 1 << 62  # a float accumulator never wraps


@dataclass(frozen=True)
class SumSpec:
    """The datapath of one rounded sum (a PE beat, or the array's fold adder): how terms are
    aligned and which format the result takes. ``top_base``: a key 0 is a top of ``2**top_base``."""

    acc: FloatFormat
    term_bits: int  # Wt
    guard: int  # D
    terms: int  # terms summed at once
    top_base: int
    subnormals: bool
    approx: bool

    @property
    def window(self) -> int:
        """W = Wt + D (bits)."""
        return self.term_bits + self.guard

    @property
    def sum_bits(self) -> int:
        """Ws: the magnitude of a sum of ``terms`` window integers (bits)."""
        return self.window + (self.terms - 1).bit_length()

    @property
    def approx_fine_bits(self) -> int:
        """F = Ws − W + 4: top bits of the sum where approximate normalization is exact."""
        return self.sum_bits - self.window + APPROX_GROUP


@dataclass(frozen=True, kw_only=True)
class FpMacConfig(PeConfigBase):
    """Parameters of :class:`FpMacPE`."""

    fmt: str = param("bf16", "format of activations and weights", choices=INPUT_FORMATS)
    acc: str = param("fp32", "format of the accumulator and the result", choices=ACC_FORMATS)
    lanes: int = param(1, "products per beat (a dot product of `lanes` pairs per cycle)", low=1, high=16)
    subnormals: bool = param(True, "true: subnormal inputs and results; false: flushed to zero")
    approx_norm: bool = param(False, "approximate normalization (exact near the top, else in groups of 4 bits; "
                                     "needs subnormals=false)")
    output_register: bool = param(False, "register the result (one more cycle of latency, shorter path)")

    def __post_init__(self) -> None:
        validate(self)
        if self.approx_norm and self.subnormals:
            raise ValueError("FpMacConfig.approx_norm=True needs subnormals=false; got subnormals=True")

    # --- formats and widths --------------------------------------------------------------------

    @property
    def in_format(self) -> FloatFormat:
        return float_format(self.fmt)

    @property
    def acc_format(self) -> FloatFormat:
        return float_format(self.acc)

    @property
    def a_bits(self) -> int:
        """Width of an activation code (bits)."""
        return self.in_format.bits

    @property
    def w_bits(self) -> int:
        return self.in_format.bits

    @property
    def a_format(self) -> str:
        return self.fmt

    @property
    def w_format(self) -> str:
        return self.fmt

    @property
    def acc_bits(self) -> int:
        """Width of an accumulator code (bits)."""
        return self.acc_format.bits

    def beat_spec(self) -> SumSpec:
        """The beat's sum: ``lanes`` products and the accumulator operand."""
        i, c = self.in_format, self.acc_format
        return SumSpec(acc=c, term_bits=max(2 * i.precision, c.precision), guard=c.precision + GUARD_BITS,
                       terms=self.lanes + 1, top_base=min(2 * i.emin + 2, c.emin + 1),
                       subnormals=self.subnormals, approx=self.approx_norm)

    def fold_spec(self) -> SumSpec:
        """The weight-stationary array's fold adder: two accumulator codes."""
        c = self.acc_format
        return SumSpec(acc=c, term_bits=c.precision, guard=c.precision + GUARD_BITS, terms=2, top_base=c.emin + 1,
                       subnormals=self.subnormals, approx=self.approx_norm)

    @property
    def latency(self) -> int:
        """Cycles from accepting the last beat of a dot product to its result being valid."""
        return 1 + int(self.output_register)

    def cycles(self, n: int) -> int:
        """Cycles from accepting the first of ``n`` beats to the result: ``n - 1 + latency``."""
        return n - 1 + self.latency

    def in_layout(self) -> data.StructLayout:
        code = data.ArrayLayout(unsigned(self.a_bits), self.lanes)
        return data.StructLayout({"a": code, "w": code, "first": 1, "last": 1})

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": unsigned(self.acc_bits)})

    # --- PE protocol (see peforge.hw.pe.protocol) ----------------------------------------------

    @property
    def max_reduction(self) -> int:
        """Products one result may sum: unbounded (a float accumulator saturates to Inf, it
        never wraps), reported as the very large :data:`UNBOUNDED_REDUCTION` (2**62)."""
        return UNBOUNDED_REDUCTION

    @property
    def a_shape(self):
        return unsigned(self.a_bits)

    @property
    def out_shape(self):
        return unsigned(self.acc_bits)

    @property
    def weight_shape(self):
        return unsigned(self.w_bits)

    def golden_gemm(self, a, b, *, acc_bits: int | None, w_bits: int | None = None, meta=None,
                    rows: int | None = None, dataflow: str | None = None) -> np.ndarray:
        """``A · B`` as result codes, in the order of the hardware: a standalone PE or an
        output-stationary cell (``dataflow`` None or ``os``) sums K in beats of ``lanes``
        (lanes past K hold +0); weight-stationary (``ws``) sums each fold of ``rows·lanes`` k
        down the column (one beat per row, from +0), then adds the folds with the fold adder
        (:meth:`fold_spec`, from +0)."""
        a, b = np.asarray(a), np.asarray(b)
        M, K = a.shape
        N = b.shape[1]
        L = self.lanes
        step = L if dataflow != "ws" else L * rows
        padded = -(-K // step) * step
        ap = np.zeros((M, padded), dtype=np.int64)
        bp = np.zeros((padded, N), dtype=np.int64)
        ap[:, :K], bp[:K] = a, b
        beat, fold = self.beat_spec(), self.fold_spec()
        out = np.empty((M, N), dtype=object)
        for i in range(M):
            for j in range(N):
                if dataflow != "ws":
                    out[i, j] = fp_dot(self, ap[i].tolist(), bp[:, j].tolist())
                    continue
                total = 0
                for k0 in range(0, padded, step):
                    psum = 0
                    for r in range(rows):
                        ks = slice(k0 + r * L, k0 + (r + 1) * L)
                        psum = fp_beat(self, psum, ap[i, ks].tolist(), bp[ks, j].tolist(), beat)
                    total = fp_sum(fold, [acc_term(fold, total), acc_term(fold, psum)])
                out[i, j] = total
        return out

    def check_array(self, rows: int, dataflow: str) -> None:
        if dataflow == "ws" and self.output_register:
            raise ValueError("SystolicConfig.pe.output_register=True needs dataflow=os; allowed false with ws")

    def ws_accumulate(self, m: Module, above, cell):
        m.d.comb += cell.acc.eq(above if above is not None else 0)
        return cell.dot

    def fold_accumulate(self, m: Module, name: str, bottom, before, kfirst):
        adder = FpAdd(self)
        m.submodules[f"fold_add_{name}"] = adder
        m.d.comb += [adder.x.eq(bottom), adder.y.eq(Mux(kfirst, 0, before))]
        return adder.sum


# --- golden model: integers and bit fields ------------------------------------------------------

# A term: (sign, key, significand aligned to term_bits, kind) with kind 0 finite, 1 Inf, 2 NaN;
# its magnitude is sig · 2**(key + top_base - term_bits).
FINITE, INF, NAN = 0, 1, 2


def _operand(f: FloatFormat, code: int, subnormals: bool) -> tuple[int, int, int, int]:
    """(sign, effective exponent field, significand, kind) of an input code."""
    sign, exp, man = code >> f.bits - 1 & 1, code >> f.man_bits & (1 << f.exp_bits) - 1, code & (1 << f.man_bits) - 1
    if f.is_nan(code):
        return sign, 1, 0, NAN
    if f.is_inf(code):
        return sign, 1, 0, INF
    if exp == 0:
        return sign, 1, man if subnormals else 0, FINITE
    return sign, exp, man | 1 << f.man_bits, FINITE


def product_terms(cfg: FpMacConfig, spec: SumSpec, a, w) -> list[tuple[int, int, int, int]]:
    """The exact products ``a[i] · w[i]`` as terms of ``spec``."""
    f = cfg.in_format
    offset = 2 - 2 * f.bias - spec.top_base
    shift = spec.term_bits - 2 * f.precision
    terms = []
    for x, y in zip(a, w):
        sa, ea, ma, ka = _operand(f, int(x), cfg.subnormals)
        sw, ew, mw, kw = _operand(f, int(y), cfg.subnormals)
        if NAN in (ka, kw) or (ka == INF and kw == FINITE and mw == 0) or (kw == INF and ka == FINITE and ma == 0):
            kind = NAN
        else:
            kind = INF if INF in (ka, kw) else FINITE
        sig = ma * mw << shift if kind == FINITE else 0
        terms.append((sa ^ sw, ea + ew + offset if sig else 0, sig, kind))
    return terms


def acc_term(spec: SumSpec, code: int) -> tuple[int, int, int, int]:
    """An accumulator code as a term of ``spec``."""
    c = spec.acc
    sign, exp, sig, kind = _operand(c, int(code), spec.subnormals)
    return sign, exp + 1 - c.bias - spec.top_base if sig else 0, sig << spec.term_bits - c.precision, kind


def _round_half_even(value: int, drop: int) -> int:
    """``value / 2**drop`` rounded to nearest, ties to even (``drop`` ≤ 0: exact shift left)."""
    if drop <= 0:
        return value << -drop
    units = value >> drop
    guard = value >> drop - 1 & 1
    sticky = value & (1 << drop - 1) - 1
    return units + (guard & (1 if sticky else units & 1))


def fp_sum(spec: SumSpec, terms) -> int:
    """The code of the rounded sum of ``terms`` (the module docstring, steps 3-7)."""
    c = spec.acc
    sign_bit = 1 << c.bits - 1
    pos_inf = any(k == INF and not s for s, _, _, k in terms)
    neg_inf = any(k == INF and s for s, _, _, k in terms)
    if any(k == NAN for *_, k in terms) or (pos_inf and neg_inf):
        return c.nan_code
    if pos_inf or neg_inf:
        return c.inf_code(neg_inf)
    live = [t for t in terms if t[2]]
    top = max((t[1] for t in live), default=0)
    total = sum((-1 if s else 1) * ((sig << spec.guard) >> (top - key)) for s, key, sig, _ in live)
    if total == 0:
        return sign_bit if all(s and not sig for s, _, sig, _ in terms) else 0
    sign = sign_bit if total < 0 else 0
    mag = abs(total)
    q = top + spec.top_base - spec.window  # weight of the sum's bit 0: 2**q
    man = c.man_bits
    if spec.approx:
        zeros, fine = spec.sum_bits - mag.bit_length(), spec.approx_fine_bits
        shift = zeros if zeros < fine else fine + (zeros - fine) // APPROX_GROUP * APPROX_GROUP
        drop = spec.sum_bits - shift - c.precision
        units = _round_half_even(mag, drop)
        size = units.bit_length()
        e_top = size - 1 + drop + q
        if e_top < c.emin:
            return sign
        if e_top > c.emax:
            return c.inf_code(bool(sign))
        mant = units << c.precision - size if size <= c.precision else units >> 1
        return sign | (e_top + c.bias) << man | mant - (1 << man)
    j = max(mag.bit_length() - 1, c.emin - q)  # position of the result's leading bit (its exponent - q)
    units = _round_half_even(mag, j - man)
    code = (j + q - c.emin) * (1 << man) + units  # biased exponent - 1 times 2**man, plus the hidden bit
    if code >= (c.exp_max_field + 1) << man:
        return c.inf_code(bool(sign))
    if not spec.subnormals and code < 1 << man:
        return sign
    return sign | code


def fp_beat(cfg: FpMacConfig, acc_code: int, a, w, spec: SumSpec | None = None) -> int:
    """One beat: ``round(acc + Σ a[i]·w[i])`` as an ``acc`` code (``a``, ``w``: ``lanes`` codes)."""
    spec = spec or cfg.beat_spec()
    return fp_sum(spec, [acc_term(spec, acc_code)] + product_terms(cfg, spec, a, w))


def fp_dot(cfg: FpMacConfig, a, w) -> int:
    """Golden FpMacPE: the dot product of code sequences ``a``, ``w`` (length a multiple of
    ``lanes``, or padded with +0), one beat of ``lanes`` pairs at a time from the accumulator +0."""
    L = cfg.lanes
    a, w = list(a), list(w)
    pad = -len(a) % L
    a, w = a + [0] * pad, w + [0] * pad
    spec = cfg.beat_spec()
    acc = 0
    for k in range(0, len(a), L):
        acc = fp_beat(cfg, acc, a[k:k + L], w[k:k + L], spec)
    return acc


# --- approximate normalization: its error against the exact mode -------------------------------


def approx_error_stats(fmt: str = "bf16", acc: str = "fp32", *, lanes: int = 1, length: int = 64,
                       cases: int = 2000, seed: int = 0) -> dict[str, float]:
    """Error of ``approx_norm=True`` against the exact mode on random dot products.

    ``cases`` dot products of ``length`` pairs of normal(0, 1) values rounded to ``fmt`` (both
    modes flush subnormals); relative error ``|approx − exact| / |exact|`` and the difference in
    units in the last place of ``acc`` (at the exact result's exponent). Returns ``mean_rel``,
    ``max_rel``, ``mean_ulps``, ``max_ulps``, ``exact_fraction`` (results equal to the exact
    mode's) and ``cases``.
    """
    from ..fp import decode

    rng = np.random.default_rng(seed)
    exact = FpMacConfig(fmt=fmt, acc=acc, lanes=lanes, subnormals=False)
    approx = FpMacConfig(fmt=fmt, acc=acc, lanes=lanes, subnormals=False, approx_norm=True)
    f, c = exact.in_format, exact.acc_format
    a = value_codes(f, rng.standard_normal((cases, length)))
    w = value_codes(f, rng.standard_normal((cases, length)))
    rel, ulps, same = [], [], 0
    for i in range(cases):
        x, y = fp_dot(exact, a[i], w[i]), fp_dot(approx, a[i], w[i])
        same += x == y
        vx, vy = decode(c, x), decode(c, y)
        if not isinstance(vx, Fraction) or not isinstance(vy, Fraction) or vx == 0:
            continue
        rel.append(float(abs(vy - vx) / abs(vx)))
        quantum = Fraction(2) ** (max(_floor_log2(abs(vx)), c.emin) - c.man_bits)
        ulps.append(float(abs(vy - vx) / quantum))
    return {"cases": cases, "mean_rel": float(np.mean(rel)), "max_rel": float(np.max(rel)),
            "mean_ulps": float(np.mean(ulps)), "max_ulps": float(np.max(ulps)), "exact_fraction": same / cases}


def _floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e if Fraction(2) ** e <= x else e - 1


def value_codes(f: FloatFormat, values) -> np.ndarray:
    """Codes of format ``f`` nearest to float ``values`` (any array shape; NaN/Inf pass through)."""
    from ..fp import encode

    values = np.asarray(values, dtype=np.float64)
    flat = [encode(f, float(v) if not np.isfinite(v) else Fraction(float(v)),
                   overflow="saturate" if f.special == "e4m3" else "inf") for v in values.ravel()]
    return np.array(flat, dtype=np.int64).reshape(values.shape)


# --- RTL -----------------------------------------------------------------------------------------


def _leading_zeros(v) -> tuple:
    """(v == 0, leading zeros of v; len(v) when v == 0): a balanced tree of 2:1 muxes."""
    n = len(v)
    if n == 1:
        return ~v[0], ~v[0]
    h = (n + 1) // 2
    z_hi, c_hi = _leading_zeros(v[n - h:])
    z_lo, c_lo = _leading_zeros(v[:n - h])
    return z_hi & z_lo, Mux(z_hi, h + c_lo, c_hi)


def _decode_rtl(m: Module, f: FloatFormat, code, subnormals: bool, name: str) -> dict:
    """Fields of an input code: sign, effective exponent, significand (0 for specials), NaN, Inf, zero."""
    exp = code[f.man_bits:f.man_bits + f.exp_bits]
    man = code[:f.man_bits]
    top = exp == (1 << f.exp_bits) - 1
    if f.special == "ieee":
        nan, inf = top & (man != 0), top & (man == 0)
    else:  # e4m3: only S.1111.111 is special
        nan, inf = top & (man == (1 << f.man_bits) - 1), Const(0)
    normal = exp != 0
    sig = Signal(f.precision, name=f"{name}_sig")
    if subnormals:
        m.d.comb += sig.eq(Mux(nan | inf, 0, Cat(man, normal)))
    else:
        m.d.comb += sig.eq(Mux(nan | inf | ~normal, 0, Cat(man, normal)))
    return dict(sign=code[f.bits - 1], exp=Mux(normal, exp, 1), sig=sig, nan=nan, inf=inf,
                zero=~nan & ~inf & (sig == 0))


def _sum_rtl(m: Module, spec: SumSpec, terms: list[dict], name: str):
    """The code of the rounded sum of ``terms`` (dicts of sign, key, sig (term_bits), nan, inf,
    zero), the RTL of :func:`fp_sum`."""
    c = spec.acc
    W, Ws, D = spec.window, spec.sum_bits, spec.guard
    keys = [Mux(t["sig"] == 0, 0, t["key"]) for t in terms]
    key_bits = max(len(k) for k in keys)
    top = Signal(key_bits, name=f"{name}_top")
    best = keys[0]
    for k in keys[1:]:
        best = Mux(k > best, k, best)
    m.d.comb += top.eq(best)
    dist_bits = W.bit_length()
    aligned = []
    for i, (t, k) in enumerate(zip(terms, keys)):
        d = Signal(dist_bits, name=f"{name}_d{i}")
        m.d.comb += d.eq(Mux(top - k > W, W, top - k))
        mag = Signal(W, name=f"{name}_al{i}")
        m.d.comb += mag.eq(Cat(Const(0, D), t["sig"]) >> d)
        value = Cat(mag, Const(0, 1)).as_signed()
        aligned.append(Mux(t["sign"], -value, value))
    total = Signal(signed(Ws + 1), name=f"{name}_total")
    m.d.comb += total.eq(tree_sum(aligned))
    mag = Signal(Ws, name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(total < 0, -total, total))
    negative = total < 0

    # Exponent arithmetic, signed and wide enough for every case.
    ebits = (4 * (1 << c.exp_bits) + 4 * Ws + 8 * (abs(spec.top_base) + 1) + (1 << key_bits)).bit_length() + 2
    q = Signal(signed(ebits), name=f"{name}_q")  # weight of bit 0 of the sum: 2**q
    m.d.comb += q.eq(top + (spec.top_base - W))
    man, p = c.man_bits, c.precision
    code = Signal(c.bits - 1, name=f"{name}_mag_code")
    inf_mag = ((1 << c.exp_bits) - 1) << man
    zero_all, lz = _leading_zeros(mag)
    if spec.approx:
        G, F = APPROX_GROUP, spec.approx_fine_bits
        below = Ws - F
        coarse, lz_top = _leading_zeros(mag[below:])  # exact in the top F bits
        flags = [mag[max(0, below - G * (g + 1)):below - G * g].any() for g in range(-(-below // G))]
        _, g = _leading_zeros(Cat(*reversed(flags)))  # whole groups below them
        amount = Signal(range(Ws + G), name=f"{name}_nshift")
        m.d.comb += amount.eq(Mux(coarse, F + g * G, lz_top))
        shifted = Signal(Ws, name=f"{name}_coarse")
        m.d.comb += shifted.eq(Mux(coarse, mag << (F + g * G), mag << lz_top))
        units = Signal(p + 1, name=f"{name}_units")
        guard, sticky = shifted[Ws - p - 1], shifted[:Ws - p - 1].any()
        kept = shifted[Ws - p:]
        m.d.comb += units.eq(kept + (guard & (sticky | kept[0])))
        # The leading one lies in the top G + 1 bits of units (r = 0: a carry to 2**p), so a
        # (G + 1)-bit count and a shift of at most G places renormalize it.
        _, r = _leading_zeros(units[p - G:])
        mant = Signal(p, name=f"{name}_mant")
        m.d.comb += mant.eq((units << r)[1:p + 1])
        e_top = Signal(signed(ebits), name=f"{name}_etop")  # size - 1 + drop + q, size = p + 1 - r
        m.d.comb += e_top.eq(q + Ws - amount - r)
        with m.If(e_top < c.emin):
            m.d.comb += code.eq(0)
        with m.Elif(e_top > c.emax):
            m.d.comb += code.eq(inf_mag)
        with m.Else():
            m.d.comb += code.eq(Cat(mant[:man], (e_top + c.bias)[:c.exp_bits]))
    else:
        e_top = Signal(signed(ebits), name=f"{name}_etop")
        m.d.comb += e_top.eq(q + (Ws - 1) - lz)
        biased = Signal(signed(ebits), name=f"{name}_be")  # the result's exponent - emin
        m.d.comb += biased.eq(Mux(e_top > c.emin, e_top - c.emin, 0))
        j = Signal(signed(ebits), name=f"{name}_j")  # the result's leading bit position in the sum
        m.d.comb += j.eq(biased + c.emin - q)
        limit = Ws + man + 1  # a shift this far leaves only the sticky bit
        amount = Signal(range(limit + 1), name=f"{name}_shift")
        m.d.comb += amount.eq(Mux(j > limit, limit, j))
        wide = Cat(Const(0, man + 1), mag)  # mag · 2**(man + 1)
        t = Signal(Ws + man + 1, name=f"{name}_t")  # units · 2 + guard
        m.d.comb += t.eq(wide >> amount)
        sticky = (wide & ((Const(1, len(wide) + 1) << amount) - 1)[:len(wide)]).any()
        units = Signal(p + 1, name=f"{name}_units")
        m.d.comb += units.eq(t[1:] + (t[0] & (sticky | t[1])))
        full = Signal(ebits + man + 1, name=f"{name}_full")
        m.d.comb += full.eq((biased << man) + units)
        flushed = Const(0) if spec.subnormals else full < 1 << man  # rounded below the smallest normal
        with m.If(full >= inf_mag):
            m.d.comb += code.eq(inf_mag)
        with m.Elif(flushed):
            m.d.comb += code.eq(0)
        with m.Else():
            m.d.comb += code.eq(full)

    nan = Cat(*[t["nan"] for t in terms]).any()
    pos_inf = Cat(*[t["inf"] & ~t["sign"] for t in terms]).any()
    neg_inf = Cat(*[t["inf"] & t["sign"] for t in terms]).any()
    all_neg_zero = Cat(*[t["zero"] & t["sign"] for t in terms]).all()
    out = Signal(c.bits, name=f"{name}_out")
    with m.If(nan | (pos_inf & neg_inf)):
        m.d.comb += out.eq(c.nan_code)
    with m.Elif(pos_inf | neg_inf):
        m.d.comb += out.eq(Cat(Const(inf_mag, c.bits - 1), neg_inf))
    with m.Elif(zero_all):
        m.d.comb += out.eq(Cat(Const(0, c.bits - 1), all_neg_zero))
    with m.Else():
        m.d.comb += out.eq(Cat(code, negative))
    return out


def _acc_term_rtl(m: Module, spec: SumSpec, code, name: str) -> dict:
    c = spec.acc
    op = _decode_rtl(m, c, code, spec.subnormals, name)
    return dict(sign=op["sign"], key=op["exp"] + (1 - c.bias - spec.top_base),
                sig=Cat(Const(0, spec.term_bits - c.precision), op["sig"]), nan=op["nan"], inf=op["inf"],
                zero=op["zero"])


class FpMacCell(wiring.Component):
    """The float datapath of one beat, combinational: ``dot = round(acc + Σ a[i] × w[i])``.

    Ports: ``a``, ``w`` (``lanes`` codes of ``fmt``), ``acc`` (the accumulator operand, a code of
    ``acc``), ``dot`` (a code of ``acc``).
    """

    def __init__(self, config: FpMacConfig):
        self.config = config
        code = data.ArrayLayout(unsigned(config.a_bits), config.lanes)
        super().__init__({"a": In(code), "w": In(code), "acc": In(config.acc_bits),
                          "dot": Out(unsigned(config.acc_bits))})

    def elaborate(self, platform):
        cfg = self.config
        spec = cfg.beat_spec()
        f = cfg.in_format
        m = Module()
        terms = [_acc_term_rtl(m, spec, self.acc, "c")]
        for lane in range(cfg.lanes):
            x = _decode_rtl(m, f, self.a[lane], cfg.subnormals, f"a{lane}")
            y = _decode_rtl(m, f, self.w[lane], cfg.subnormals, f"w{lane}")
            nan = x["nan"] | y["nan"] | (x["inf"] & y["zero"]) | (x["zero"] & y["inf"])
            sig = Signal(spec.term_bits, name=f"p{lane}_sig")
            m.d.comb += sig.eq((x["sig"] * y["sig"]) << (spec.term_bits - 2 * f.precision))
            terms.append(dict(sign=x["sign"] ^ y["sign"], key=x["exp"] + y["exp"] + (2 - 2 * f.bias - spec.top_base),
                              sig=sig, nan=nan, inf=(x["inf"] | y["inf"]) & ~nan,
                              zero=~nan & ~x["inf"] & ~y["inf"] & (sig == 0)))
        m.d.comb += self.dot.eq(_sum_rtl(m, spec, terms, "s"))
        return m


class FpAdd(wiring.Component):
    """The weight-stationary array's fold adder: ``sum = round(x + y)``, codes of ``acc``
    (:meth:`FpMacConfig.fold_spec`), combinational."""

    def __init__(self, config: FpMacConfig):
        self.config = config
        super().__init__({"x": In(config.acc_bits), "y": In(config.acc_bits), "sum": Out(config.acc_bits)})

    def elaborate(self, platform):
        spec = self.config.fold_spec()
        m = Module()
        terms = [_acc_term_rtl(m, spec, self.x, "x"), _acc_term_rtl(m, spec, self.y, "y")]
        m.d.comb += self.sum.eq(_sum_rtl(m, spec, terms, "f"))
        return m


class FpMacPE(wiring.Component):
    """Floating-point multiply-accumulate: one beat of ``lanes`` products per cycle, each beat
    rounded once into the accumulator (the arithmetic of the module docstring).

    Ports
    -----
    i : stream of ``{a[lanes], w[lanes], first, last}`` (codes of ``fmt``); ``first`` starts a new
        sum, ``last`` ends it. ``ready`` is always 1.
    o : ``valid`` for one cycle with ``payload.acc``, the code (format ``acc``) of the sum of the
        beats from ``first`` to ``last``, :meth:`FpMacConfig.cycles` after the first beat was accepted.
    """

    def __init__(self, config: FpMacConfig):
        self.config = config
        super().__init__(stream_ports(config))

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        acc = Signal(cfg.acc_bits)
        done = Signal()
        m.submodules.cell = cell = FpMacCell(cfg)
        m.d.comb += [cell.a.eq(self.i.payload.a), cell.w.eq(self.i.payload.w),
                     cell.acc.eq(Mux(self.i.payload.first, 0, acc))]
        m.d.comb += self.i.ready.eq(1)
        m.d.sync += done.eq(self.i.valid & self.i.payload.last)
        with m.If(self.i.valid):
            m.d.sync += acc.eq(cell.dot)
        if cfg.output_register:
            m.d.sync += [self.o.valid.eq(done), self.o.payload.acc.eq(acc)]
        else:
            m.d.comb += [self.o.valid.eq(done), self.o.payload.acc.eq(acc)]
        return m


KIND = PeKind(name="fpmac", summary="floating-point multiply-accumulate PE (bf16/fp16/fp8/fp32 in, fp32/bf16/fp16 acc)",
              config=FpMacConfig, component=FpMacPE, cell=FpMacCell, order=10)
