"""FpMixedPE: MixPE-style low-bit integer weights x FP16 (or BF16) activations by shift-and-add.

The datapath is MixedPE's (imported, not copied): 2/3/4-bit weights, products as sums of shifted
activations (no multiplier cell), integer accumulation over a quantization group, one
dequantization per group ``(acc - zp * sum(a)) * scale`` by shift-and-add. The activations are
floating point; each beat of ``lanes`` of them is aligned to its largest exponent, and the beat's
sums are shifted by that exponent into the group's fixed-point sums. Exactly (see
:mod:`peforge.hw.pe.fpalign`; ``q = align_bits - 1``):

- lane ``i`` of a beat: ``a_i = (-1)**s_i * floor(sig_i * 2**(q - p) / 2**(emax - e_i))``
  (``p`` = 11 for fp16, 8 for bf16; Inf / NaN lanes count as 0 and flag the result);
- the MixedCell computes ``D = sum(a_i * w_i)`` (``w_i`` the unsigned code, or signed without a
  zero point) and the beat gives ``D << (emax - 1)`` and ``sum(a_i) << (emax - 1)`` to the group;
- a group closes as in MixedPE: ``corrected = acc - zp * sum_a``, times the unsigned fixed-point
  ``scale``, into the result accumulator (``acc_bits``, wrapping), an integer in units of
  ``2**(lsb_exp - scale_frac_bits)``, ``lsb_exp = 2 - bias - q`` (fp16, align_bits 12: 2**-24);
- output: ``acc`` = that integer floor-divided by ``2**scale_frac_bits`` (unit ``2**lsb_exp``,
  as MixedPE drops the scale's fraction), ``nan`` (an activation of the result was Inf or NaN)
  and, with ``fp32_out``, ``fp32``: the FP32 code of the undivided accumulator times
  ``2**(lsb_exp - scale_frac_bits)``, rounded to nearest even (the canonical NaN when ``nan``),
  combinational from the accumulator register: no extra cycle.

In a systolic array the results stay fixed point (``acc``, unit ``2**lsb_exp``) and partial sums
are integers; non-finite activations count as 0 there, unflagged. Cycles are MixedPE's: the
alignment and the shift sit in stage 1 (the kind's cell, :class:`FpMixedCell`, which the
standalone PE and every weight-stationary cell instantiate), combinational. Each
weight-stationary cell aligns its own copy of the row's activations, which the cell area includes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden import wrap
from .arith import tree_sum
from .fpalign import FpActivationConfig, FpAligner, align_beats, fp32_from_fixed
from .mixed import MixedCell, MixedConfig, MixedPE, mixed_weights
from .protocol import PeKind, capacity


@dataclass(frozen=True, kw_only=True)
class FpMixedConfig(FpActivationConfig, MixedConfig):
    """Parameters of :class:`FpMixedPE` (those of MixedConfig, activations in a float format)."""

    a_bits = 16  # one fp16 or bf16 code

    @property
    def max_reduction(self) -> int:
        """As MixedConfig's, the largest activation being ``(2**q - 1) << beat_shift``."""
        worst_w = (1 << self.w_bits) - 1 if self.zero_point else 1 << self.w_bits - 1
        worst = ((1 << self.align_bits - 1) - 1 << self.beat_shift) * worst_w * ((1 << self.scale_bits) - 1)
        return self.group * capacity(self.acc_bits, self.group * worst)

    def in_layout(self) -> data.StructLayout:
        fields = dict(super().in_layout().members)
        fields["a"] = data.ArrayLayout(unsigned(self.a_bits), self.lanes)
        return data.StructLayout(fields)

    def out_layout(self) -> data.StructLayout:
        fields = {"acc": signed(self.out_bits), "nan": 1}
        if self.fp32_out:
            fields["fp32"] = unsigned(32)
        return data.StructLayout(fields)

    def golden_gemm(self, a, b, *, acc_bits: int | None, w_bits: int | None = None, meta=None,
                    rows: int | None = None, dataflow: str | None = None) -> np.ndarray:
        """Per quantization group of ``group`` rows of B: the beats' ``(aligned · (W - zp)) <<
        shift`` summed, times the group's scale; summed, wrapped at ``acc_bits``, then
        floor-divided by ``2**scale_frac_bits``."""
        return self.golden_total(a, b, acc_bits=acc_bits, meta=meta) >> self.scale_frac_bits

    def golden_total(self, a, b, *, acc_bits: int | None, meta) -> np.ndarray:
        """The result accumulator before the scale's fraction is dropped (units of
        ``2**(lsb_exp - scale_frac_bits)``), wrapped at ``acc_bits``."""
        w = mixed_weights(b, self.w_bits, self.zero_point).astype(object)
        groups = np.arange(w.shape[0]) // self.group
        if self.zero_point:
            w = w - np.asarray(meta["zp"], dtype=object)[groups]
        aligned, shift, _ = align_beats(a, self.fmt, self.align_bits, self.lanes)
        beats, lanes = aligned.shape[1:]
        padded = np.zeros((beats * lanes, w.shape[1]), dtype=object)
        padded[:w.shape[0]] = w
        dots = np.einsum("mbl,bln->mbn", aligned.astype(object), padded.reshape(beats, lanes, -1))
        dots = dots * (np.ones_like(shift, dtype=object) << shift.astype(object))[:, :, None]
        scale = np.asarray(meta["scale"], dtype=object)
        beat_group = np.arange(beats) * lanes // self.group
        total = (dots * scale[beat_group][None]).sum(axis=1)
        return wrap(total, acc_bits)


class FpMixedCell(wiring.Component):
    """MixedCell behind an aligner: ``a`` takes ``lanes`` activation codes, ``w`` as MixedCell's,
    ``dot`` is the beat's dot product shifted by its exponent (``cell_dot_bits + beat_shift``,
    signed), ``sum_a`` the sum of the aligned activations shifted alike (for the zero point; the
    array leaves it unused); ``nan``: a lane is Inf or NaN. Combinational."""

    def __init__(self, config: FpMixedConfig):
        self.config = config
        super().__init__({
            "a": In(data.ArrayLayout(unsigned(config.a_bits), config.lanes)),
            "w": In(data.ArrayLayout(config.cell_w_shape, config.lanes)),
            "dot": Out(signed(config.cell_dot_bits + config.beat_shift)),
            "sum_a": Out(signed(config.cell_a_bits + (config.lanes - 1).bit_length() + config.beat_shift)),
            "nan": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.submodules.align = align = FpAligner(cfg.fmt, cfg.align_bits, cfg.lanes)
        m.submodules.cell = cell = MixedCell(cfg)
        aligned = [align.aligned[lane] for lane in range(cfg.lanes)]
        m.d.comb += [align.a.eq(self.a), cell.a.eq(align.aligned), cell.w.eq(self.w),
                     self.dot.eq(cell.dot << align.shift), self.sum_a.eq(tree_sum(aligned) << align.shift),
                     self.nan.eq(align.nan)]
        return m


class FpMixedPE(MixedPE):
    """Mixed-precision PE with floating-point activations (MixPE with FP16 activations).

    Ports as :class:`~peforge.hw.pe.mixed.MixedPE` with ``a`` holding activation codes;
    ``o.payload``: ``acc`` (fixed point, unit ``2**lsb_exp``), ``nan`` and (``fp32_out``)
    ``fp32``, at :meth:`MixedConfig.cycles`.
    """

    def _lane_sums(self, m: Module, beat):
        """The array's cell (FpMixedCell) gives the shifted sums; the NaN flag is kept here."""
        cfg = self.config
        m.submodules.cell = cell = FpMixedCell(cfg)
        m.d.comb += [cell.a.eq(beat.a)] + [cell.w[lane].eq(beat.w[lane]) for lane in range(cfg.lanes)]
        # The result's NaN flag: sticky over its beats, then delayed as the result is (latency).
        running = Signal()
        flag = Mux(beat.first, 0, running) | cell.nan
        with m.If(self.i.valid):
            m.d.sync += running.eq(flag)
        self._nan = flag
        for stage in range(cfg.latency):
            delayed = Signal(name=f"nan_{stage}")
            m.d.sync += delayed.eq(self._nan)
            self._nan = delayed
        return cell.dot, cell.sum_a

    def _output(self, m: Module, total) -> None:
        cfg = self.config
        m.d.comb += [self.o.payload.acc.eq(total >> cfg.scale_frac_bits), self.o.payload.nan.eq(self._nan)]
        if cfg.fp32_out:
            m.d.comb += self.o.payload.fp32.eq(fp32_from_fixed(m, total, cfg.lsb_exp - cfg.scale_frac_bits, self._nan))


KIND = PeKind(name="fpmixed",
              summary="low-bit weight x FP16/BF16 activation shift-and-add PE, block-aligned per beat (MixPE)",
              config=FpMixedConfig, component=FpMixedPE, cell=FpMixedCell, order=4)
