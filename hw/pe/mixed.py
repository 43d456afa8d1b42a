"""MixedPE: low-bit weights x INT8 activations by shift-and-add, one dequantization per group (MixPE, 2024).

Products are sums of shifted activations (a 2-4 bit weight selects 2-4 terms), summed across
lanes and over a quantization group of ``group`` products in integer arithmetic. Only when
the group is complete is it dequantized, once: ``(acc - zp * sum(a)) * scale``; the scale
multiply is shift-and-add too, so the netlist has no multiplier cell at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden import sign_extend, wrap
from ..ports import stream_ports
from ..params import param, validate
from .arith import shift_add_product, tree_sum
from .protocol import PeConfigBase, PeKind, capacity

A_BITS = 8  # MixPE's activations are INT8


def _clog2(n: int) -> int:
    return (n - 1).bit_length()


@dataclass(frozen=True, kw_only=True)
class MixedConfig(PeConfigBase):
    """Parameters of :class:`MixedPE`."""

    lanes: int = param(16, "weight x activation products per cycle", low=1, high=64)
    w_bits: int = param(4, "weight width (bits)", choices=(2, 3, 4))
    zero_point: bool = param(True, "unsigned weights with a per-group zero point (false: signed weights)")
    group: int = param(128, "products per quantization group (a multiple of lanes)", low=1, high=4096)
    scale_bits: int = param(16, "width of the unsigned fixed-point group scale (bits)", low=2, high=24)
    scale_frac_bits: int = param(12, "fraction bits of the scale, dropped from the output (bits)", low=0, high=24)
    max_groups: int = param(64, "groups one result may sum without overflow", low=1, high=1 << 16)

    def __post_init__(self) -> None:
        validate(self)
        if self.group % self.lanes:
            raise ValueError(f"MixedConfig.group={self.group!r} must be a multiple of lanes={self.lanes!r}")
        if self.scale_frac_bits > self.scale_bits:
            raise ValueError(f"MixedConfig.scale_frac_bits={self.scale_frac_bits!r} must not exceed "
                             f"scale_bits={self.scale_bits!r}")

    @property
    def ops_per_group(self) -> int:
        """Input beats (cycles) per quantization group."""
        return self.group // self.lanes

    @property
    def cell_a_bits(self) -> int:
        """Width of an activation in the datapath (bits, signed): INT8."""
        return A_BITS

    # Left shift of a beat's sums before they join the group (an FP-activation PE's beat
    # exponent, peforge.hw.pe.fpmixed): none.
    beat_shift = 0

    @property
    def product_bits(self) -> int:
        """|a*w| <= 128 * 2**w_bits for INT8 a and either weight format (bits, signed)."""
        return self.cell_a_bits + self.w_bits + 1

    @property
    def group_bits(self) -> int:
        return self.product_bits + _clog2(self.group) + self.beat_shift

    @property
    def sum_a_bits(self) -> int:
        return self.cell_a_bits + _clog2(self.group) + self.beat_shift

    @property
    def corrected_bits(self) -> int:
        """``acc - zp * sum(a)`` (bits, signed)."""
        zp_term = self.sum_a_bits + self.w_bits if self.zero_point else 0
        return max(self.group_bits, zp_term) + 1

    @property
    def acc_bits(self) -> int:
        """Accumulator of dequantized groups (bits, signed): ``max_groups`` products of a
        corrected sum and an unsigned scale."""
        return self.corrected_bits + self.scale_bits + _clog2(self.max_groups)

    @property
    def out_shift(self) -> int:
        """The scale's fraction bits, dropped from the accumulator on the way out (bits)."""
        return self.scale_frac_bits

    # From the last beat: products and lane sum (1), group sum and zero point (1), scale (1).
    latency = 3

    def interval(self, n_ops: int = 1) -> int:
        """One beat per cycle, never a stall."""
        return n_ops

    def cycles(self, n_ops: int) -> int:
        """Cycles from accepting the first of ``n_ops`` beats to the result: ``n_ops - 1 + latency``."""
        return n_ops - 1 + self.latency

    def in_layout(self) -> data.StructLayout:
        fields = {
            "a": data.ArrayLayout(signed(A_BITS), self.lanes),
            "w": data.ArrayLayout(unsigned(self.w_bits), self.lanes),
            "scale": unsigned(self.scale_bits),
            "first": 1,
            "last": 1,
        }
        if self.zero_point:
            fields["zp"] = unsigned(self.w_bits)
        return data.StructLayout(fields)

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": signed(self.out_bits)})

    # --- PE protocol (see peforge.hw.pe.protocol) ----------------------------------------------

    a_bits = A_BITS
    ws_edge_stages = 1  # the bottom edge dequantizes (x scale) in a register stage

    @property
    def cell_w_shape(self):
        """A weight in the datapath: ``w - zp`` (one bit wider) with a zero point, else signed."""
        return signed(self.w_bits + int(self.zero_point))

    @property
    def cell_dot_bits(self) -> int:
        return self.product_bits + _clog2(self.lanes)

    @property
    def max_reduction(self) -> int:
        """Products one result may sum without overflow, in whole quantization groups: the
        accumulator holds that many groups of the largest products (``-128 * -(2**w_bits - 1)``
        with a zero point, ``-128 * -2**(w_bits-1)`` without) times the largest scale — at
        least group x max_groups."""
        worst = (1 << self.cell_a_bits - 1) * ((1 << self.w_bits) - 1 if self.zero_point else 1 << self.w_bits - 1)
        return self.group * capacity(self.acc_bits, self.group * worst * ((1 << self.scale_bits) - 1))

    def golden_gemm(self, a, b, *, acc_bits: int | None, w_bits: int | None = None, meta=None,
                    rows: int | None = None, dataflow: str | None = None) -> np.ndarray:
        """Per quantization group of ``group`` rows of B (``meta['zp']``, ``meta['scale']``:
        ``ceil(K / group) x N``): ``(A_g · W_g - zp_g · sum(A_g)) · scale_g``, summed and wrapped
        at ``acc_bits``, then floor-divided by ``2**scale_frac_bits``."""
        a = np.asarray(a, dtype=object)
        w = mixed_weights(b, self.w_bits, self.zero_point).astype(object)
        total = np.zeros((a.shape[0], w.shape[1]), dtype=object)
        for g, k0 in enumerate(range(0, a.shape[1], self.group)):
            a_g, w_g = a[:, k0:k0 + self.group], w[k0:k0 + self.group]
            corrected = a_g.dot(w_g)
            if self.zero_point:
                corrected = corrected - np.outer(a_g.sum(axis=1), np.asarray(meta["zp"][g], dtype=object))
            total = total + corrected * np.asarray(meta["scale"][g], dtype=object)
        return wrap(total, acc_bits) >> self.scale_frac_bits

    def check_array(self, rows: int, dataflow: str) -> None:
        if dataflow == "ws" and self.group % (rows * self.lanes):
            raise ValueError(f"SystolicConfig.pe.group={self.group!r} must be a multiple of rows x pe.lanes = "
                             f"{rows * self.lanes} with dataflow=ws (a fold must lie in one group)")

    @property
    def weight_shape(self):
        return unsigned(self.w_bits)

    @property
    def int8_digit_bits(self) -> int | None:
        """The capability the tile compiler asks a PE with per-column metadata for: the bits of
        each unsigned digit an INT8 operand splits into (its weight codes, with a zero point to
        take the offset), or None where the weights are signed (no digit planes)."""
        return self.w_bits if self.zero_point else None

    def column_fields(self) -> dict:
        fields = {"scale": unsigned(self.scale_bits)}
        if self.zero_point:
            fields["zp"] = unsigned(self.w_bits)
        return fields

    @property
    def ws_stored_shape(self):
        return self.cell_w_shape

    def ws_store(self, m: Module, ctl: dict, code, meta: dict):
        """The zero point is subtracted once per stored weight, not per product."""
        return code - meta["zp"] if self.zero_point else code.as_signed()

    def ws_column_fields(self) -> dict:
        return {"scale": unsigned(self.scale_bits)}

    @property
    def ws_psum_bits(self) -> int:
        return self.corrected_bits

    def ws_edge(self, m: Module, ctl: dict, name: str, psum, meta: dict):
        """One dequantization per fold and column (a fold lies in one group): psum x scale."""
        scaled = Signal(signed(self.acc_bits), name=f"dequant_{name}")
        with m.If(ctl["step"]):
            m.d.sync += scaled.eq(shift_add_product(psum, meta["scale"], negate_msb=False))
        return scaled


def mixed_weights(codes, w_bits: int, zero_point: bool) -> np.ndarray:
    """Golden MixedPE weights: unsigned codes (with a zero point) or two's complement."""
    codes = np.asarray(codes, dtype=np.int64) & ((1 << w_bits) - 1)
    return codes if zero_point else sign_extend(codes, w_bits)


def mixed_group(a, codes, *, w_bits: int, zero_point: bool, zp: int, scale: int) -> int:
    """Golden MixedPE group, dequantized once: ``(sum(a*w) - zp*sum(a)) * scale``."""
    a = np.asarray(a, dtype=object)
    w = mixed_weights(codes, w_bits, zero_point).astype(object)
    acc = int(np.dot(a, w)) - (zp * int(a.sum()) if zero_point else 0)
    return acc * scale


def mixed_result(groups, acc_bits: int | None, frac_bits: int) -> int:
    """Golden MixedPE output: dequantized groups summed in ``acc_bits`` (``None``: unwrapped),
    then the scale's ``frac_bits`` dropped by an arithmetic shift (floor)."""
    return int(wrap(sum(int(g) for g in groups), acc_bits)) >> frac_bits


class MixedCell(wiring.Component):
    """The MixPE datapath: ``lanes`` products by shift-and-add (a w-bit weight selects w shifted
    copies of its activation, the top one negative), summed by an adder tree; combinational.

    Ports: ``a`` (``lanes`` activations of :attr:`MixedConfig.cell_a_bits`, INT8), ``w`` (``lanes`` weights of
    :attr:`MixedConfig.cell_w_shape`), ``dot`` (:attr:`MixedConfig.cell_dot_bits`, signed).
    """

    def __init__(self, config: MixedConfig):
        self.config = config
        super().__init__({
            "a": In(data.ArrayLayout(signed(config.cell_a_bits), config.lanes)),
            "w": In(data.ArrayLayout(config.cell_w_shape, config.lanes)),
            "dot": Out(signed(config.cell_dot_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        products = [shift_add_product(self.a[lane], self.w[lane], negate_msb=True)
                    for lane in range(self.config.lanes)]
        m.d.comb += self.dot.eq(tree_sum(products))
        return m


class MixedPE(wiring.Component):
    """Mixed-precision PE: ``lanes`` low-bit weight x INT8 products per cycle, dequantized per group.

    Ports
    -----
    i : stream of ``{a[lanes], w[lanes], scale, zp, first, last}`` (``zp`` only with
        ``zero_point``). ``first`` starts a result; every ``group // lanes`` beats close a
        quantization group, dequantized with the ``scale`` (and ``zp``) of its closing beat;
        ``last`` closes the group early and ends the result. ``ready`` is always 1.
    o : ``valid`` for one cycle with ``payload.acc`` = floor(sum of dequantized groups /
        2**scale_frac_bits), :meth:`MixedConfig.cycles` after the first beat was accepted.
    """

    def __init__(self, config: MixedConfig):
        self.config = config
        super().__init__(stream_ports(config))

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        beat = self.i.payload
        m.d.comb += self.i.ready.eq(1)

        # Stage 1: shift-and-add products, summed across lanes; sum of activations for the zero point.
        # Codes widen to the cell's weight: zero-extended (unsigned, with a zero point) or as is.
        dot, sum_a = self._lane_sums(m, beat)
        s1_valid = Signal()
        s1 = Signal(cfg.in_layout())
        s1_dot = Signal(signed(cfg.cell_dot_bits + cfg.beat_shift))
        s1_sum_a = Signal(signed(cfg.cell_a_bits + _clog2(cfg.lanes) + cfg.beat_shift))
        m.d.sync += [s1_valid.eq(self.i.valid), s1.eq(beat), s1_dot.eq(dot), s1_sum_a.eq(sum_a)]

        # Stage 2: integer accumulation over the group; at its end, subtract zp * sum(a) once.
        count = Signal(range(cfg.ops_per_group))  # beats of the open group seen so far
        group_acc = Signal(signed(cfg.group_bits))
        group_sum_a = Signal(signed(cfg.sum_a_bits))
        result_fresh = Signal()  # no group of the current result has been closed yet
        position = Mux(s1.first, 0, count)  # of this beat within its group
        opens = position == 0
        closes = s1.last | (position == cfg.ops_per_group - 1)
        acc_next = Mux(opens, 0, group_acc) + s1_dot
        sum_a_next = Mux(opens, 0, group_sum_a) + s1_sum_a
        s2_valid = Signal()
        s2_first = Signal()
        s2_last = Signal()
        s2_scale = Signal(cfg.scale_bits)
        s2_corrected = Signal(signed(cfg.corrected_bits))
        m.d.sync += s2_valid.eq(s1_valid & closes)
        with m.If(s1_valid):
            m.d.sync += [group_acc.eq(acc_next), group_sum_a.eq(sum_a_next),
                         count.eq(Mux(closes, 0, position + 1)),
                         result_fresh.eq(Mux(closes, 0, s1.first | result_fresh))]
            with m.If(closes):
                if cfg.zero_point:
                    zp_term = shift_add_product(sum_a_next, s1.zp, negate_msb=False)
                    m.d.sync += s2_corrected.eq(acc_next - zp_term)
                else:
                    m.d.sync += s2_corrected.eq(acc_next)
                m.d.sync += [s2_scale.eq(s1.scale), s2_first.eq(s1.first | result_fresh), s2_last.eq(s1.last)]

        # Stage 3: one dequantization per group (shift-and-add over the scale bits) into the result.
        total = Signal(signed(cfg.acc_bits))
        dequantized = shift_add_product(s2_corrected, s2_scale, negate_msb=False)
        with m.If(s2_valid):
            m.d.sync += total.eq(Mux(s2_first, 0, total) + dequantized)
        m.d.sync += self.o.valid.eq(s2_valid & s2_last)
        self._output(m, total)
        return m

    # Hooks of the FP-activation PE (peforge.hw.pe.fpmixed), which derives from this one.

    def _lane_sums(self, m: Module, beat):
        """The beat's dot product (the MixedCell) and sum of activations, as they enter stage 1."""
        cfg = self.config
        m.submodules.cell = cell = MixedCell(cfg)
        m.d.comb += [cell.a.eq(beat.a)] + [cell.w[lane].eq(beat.w[lane]) for lane in range(cfg.lanes)]
        return cell.dot, tree_sum([beat.a[lane] for lane in range(cfg.lanes)])

    def _output(self, m: Module, total) -> None:
        m.d.comb += self.o.payload.acc.eq(total >> self.config.scale_frac_bits)


KIND = PeKind(name="mixed", summary="low-bit weight x INT8 shift-and-add PE, one dequantization per group (MixPE)",
              config=MixedConfig, component=MixedPE, cell=MixedCell, order=2)
