"""FpBitSerialPE: BitMoD-style bit-serial weights with FP16 (or BF16) activations.

The datapath is BitSerialPE's (imported, not copied): run-time weight precision 2..max_w_bits,
``k`` weight bits per cycle, the code->value table for INT and FP-like 3/4-bit weight codes,
per-group rescale by ``2**e_hi +/- 2**e_lo``. The activations are floating point; each beat of
``lanes`` of them is aligned to its largest exponent (block floating point) before it enters the
serial stage, and the finished dot product is shifted by the beat's exponent into a wide
fixed-point accumulator. Exactly (see :mod:`peforge.hw.pe.fpalign`; ``q = align_bits - 1``):

- lane ``i`` of a beat: ``a_i = (-1)**s_i * floor(sig_i * 2**(q - p) / 2**(emax - e_i))``
  (``p`` = 11 for fp16, 8 for bf16; Inf / NaN lanes count as 0 and flag the result);
- the beat's integer dot product ``D = sum(a_i * w_i)`` (the BitSerialPE datapath, ``w_i`` the
  weight values at the run-time precision) enters the group sum as ``D << (emax - 1)``;
- the accumulator (``acc_bits``, wrapping) is an integer in units of ``2**lsb_exp``,
  ``lsb_exp = 2 - bias - q`` (fp16, align_bits 12: 2**-24); a closed group is multiplied by its
  scale factor as in BitSerialPE (the factor is an integer, so the unit stays);
- output: ``acc`` (that integer), ``nan`` (an activation of the result was Inf or NaN) and, with
  ``fp32_out``, ``fp32``: the FP32 code of ``acc * 2**lsb_exp`` rounded to nearest even (the
  canonical NaN when ``nan``), combinational from the accumulator register: no extra cycle.

In a systolic array the results stay fixed point (``acc``, unit ``2**lsb_exp``) and partial sums
are integers; non-finite activations count as 0 there, unflagged (the array has no flag path).
Cycles are BitSerialPE's: the alignment sits before the serial registers (which then hold
align_bits, not 16, per lane) and the shift before the accumulator, both combinational. The
standalone PE thus splits the kind's cell (:class:`FpBitSerialCell`: the same FpAligner and
BitSerialCell, unregistered) around its serial registers. Each weight-stationary cell aligns its
own copy of the row's activations (the array has no per-row stage), which the cell area includes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden import wrap
from ..params import param
from .bitserial import BitSerialCell, BitSerialConfig, BitSerialPE, bitserial_weights
from .fpalign import FpActivationConfig, FpAligner, align_beats, fp32_from_fixed
from .protocol import PeKind, capacity


@dataclass(frozen=True, kw_only=True)
class FpBitSerialConfig(FpActivationConfig, BitSerialConfig):
    """Parameters of :class:`FpBitSerialPE` (those of BitSerialConfig, activations in a float format)."""

    a_bits: int = param(16, "activation code width (bits): one fp16 or bf16 code", choices=(16,))

    @property
    def cell_dot_bits(self) -> int:
        """A beat's dot product shifted by its exponent (bits, signed)."""
        return self.dot_bits + self.beat_shift

    @property
    def acc_bits(self) -> int:
        """BitSerialConfig's accumulator widened by the beat shift (bits)."""
        return super().acc_bits + self.beat_shift

    @property
    def max_reduction(self) -> int:
        """Products one result may sum without overflow, in whole dot products: the accumulator
        holds that many dot products of the largest aligned magnitude ``2**q - 1`` times
        ``-2**(max_w_bits-1)`` at the largest beat shift (times the largest group scale)."""
        scale = 1 << self.max_shift + 1 if self.rescale else 1
        worst = self.lanes * ((1 << self.align_bits - 1) - 1) * (1 << self.max_w_bits - 1) << self.beat_shift
        return self.lanes * capacity(self.acc_bits, worst * scale)

    def in_layout(self) -> data.StructLayout:
        fields = dict(super().in_layout().members)
        fields["a"] = data.ArrayLayout(unsigned(self.a_bits), self.lanes)
        return data.StructLayout(fields)

    def out_layout(self) -> data.StructLayout:
        fields = {"acc": signed(self.acc_bits), "nan": 1}
        if self.fp32_out:
            fields["fp32"] = unsigned(32)
        return data.StructLayout(fields)

    def golden_gemm(self, a, b, *, acc_bits: int | None, w_bits: int | None = None, meta=None,
                    rows: int | None = None, dataflow: str | None = None) -> np.ndarray:
        """``A · B`` with A as activation codes, aligned in beats of ``lanes`` consecutive k
        (:func:`~peforge.hw.pe.fpalign.align_beats`), each beat's dot product shifted by its
        exponent; fixed point in units of ``2**lsb_exp``, wrapped at ``acc_bits``."""
        w = bitserial_weights(b, self.effective_w_bits(w_bits))
        return fixed_gemm(a, w, self, acc_bits)


def fixed_gemm(a, w, cfg, acc_bits: int | None) -> np.ndarray:
    """Golden fixed-point GEMM of activation codes ``a`` (M x K) and integer weights ``w``
    (K x N) in beats of ``cfg.lanes``: ``sum over beats of (aligned · w) << shift``, wrapped."""
    aligned, shift, _ = align_beats(a, cfg.fmt, cfg.align_bits, cfg.lanes)
    beats, lanes = aligned.shape[1:]
    padded = np.zeros((beats * lanes, w.shape[1]), dtype=object)
    padded[:w.shape[0]] = np.asarray(w, dtype=object)
    dots = np.einsum("mbl,bln->mbn", aligned.astype(object), padded.reshape(beats, lanes, -1))
    total = (dots * (np.ones_like(shift, dtype=object) << shift.astype(object))[:, :, None]).sum(axis=1)
    return wrap(total, acc_bits)


class FpBitSerialCell(wiring.Component):
    """BitSerialCell behind an aligner: ports as BitSerialCell's, but ``a`` takes ``lanes``
    activation codes and ``dot`` is the running dot product shifted by the beat's exponent
    (:attr:`FpBitSerialConfig.cell_dot_bits`); ``nan``: a lane is Inf or NaN."""

    def __init__(self, config: FpBitSerialConfig):
        self.config = config
        super().__init__({
            "a": In(data.ArrayLayout(unsigned(config.a_bits), config.lanes)),
            "w": In(data.ArrayLayout(signed(config.serial_bits), config.lanes)),
            "position": In(range(max(2, config.slices))),
            "top": In(1),
            "en": In(1),
            "dot": Out(signed(config.cell_dot_bits)),
            "nan": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.submodules.align = align = FpAligner(cfg.fmt, cfg.align_bits, cfg.lanes)
        m.submodules.cell = cell = BitSerialCell(cfg)
        m.d.comb += [align.a.eq(self.a), cell.a.eq(align.aligned), cell.w.eq(self.w),
                     cell.position.eq(self.position), cell.top.eq(self.top), cell.en.eq(self.en),
                     self.dot.eq(cell.dot << align.shift), self.nan.eq(align.nan)]
        return m


class FpBitSerialPE(BitSerialPE):
    """Bit-serial dot-product PE with floating-point activations (BitMoD with FP16 activations).

    Ports as :class:`~peforge.hw.pe.bitserial.BitSerialPE` (stream ``i``, table ``lut``), with
    ``a`` holding activation codes; ``o.payload``: ``acc`` (fixed point, unit ``2**lsb_exp``),
    ``nan`` and (``fp32_out``) ``fp32``, at :meth:`BitSerialConfig.cycles`.
    """

    def _activations(self, m: Module, payload):
        cfg = self.config
        m.submodules.align = align = FpAligner(cfg.fmt, cfg.align_bits, cfg.lanes)
        m.d.comb += align.a.eq(payload.a)
        return [align.aligned[lane] for lane in range(cfg.lanes)], {"shift": align.shift, "nan": align.nan}

    def _dot(self, m: Module, dot, side: dict):
        return dot << side["shift"]

    def _output(self, m: Module, total, done, done_op, side: dict) -> None:
        cfg = self.config
        nan = Signal()  # sticky over the result's dot products
        with m.If(done):
            m.d.sync += nan.eq(Mux(done_op.first, 0, nan) | side["nan"])
        m.d.comb += [self.o.payload.acc.eq(total), self.o.payload.nan.eq(nan)]
        if cfg.fp32_out:
            m.d.comb += self.o.payload.fp32.eq(fp32_from_fixed(m, total, cfg.lsb_exp, nan))


KIND = PeKind(name="fpbitserial", summary="bit-serial weights x FP16/BF16 activations, block-aligned per beat (BitMoD)",
              config=FpBitSerialConfig, component=FpBitSerialPE, cell=FpBitSerialCell, order=3)
