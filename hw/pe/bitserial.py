"""BitSerialPE: weights bit-serial, activations parallel (Stripes, MICRO 2016; BitMoD, HPCA 2025).

Run time scales with weight precision, chosen per operation: a dot product of ``lanes``
pairs takes ceil(w_bits / k) cycles. Optional per-group rescale by a power-of-two-plus-offset
factor (shift-and-add, no multiplier) and an optional code->value table so one datapath
serves INT and FP-like 3/4-bit weight codes (BitMoD's mixture of datatypes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden import sign_extend, wrap
from ..ports import stream_ports
from ..params import param, validate
from .arith import shift_add_product, tree_sum
from .protocol import PeConfigBase, PeKind, capacity
from ...arith import ceil_div


# Group scale factor = 2**e_hi + LO_SIGN[lo_mode] * 2**e_lo.
LO_NONE, LO_ADD, LO_SUB = 0, 1, 2


@dataclass(frozen=True, kw_only=True)
class BitSerialConfig(PeConfigBase):
    """Parameters of :class:`BitSerialPE`."""

    lanes: int = param(16, "weight/activation pairs per dot product", low=1, high=64)
    k: int = param(2, "weight bits consumed per lane per cycle", choices=(1, 2, 4))
    a_bits: int = param(8, "activation width, signed (bits)", low=2, high=16)
    max_w_bits: int = param(8, "widest run-time weight precision, signed (bits)", low=2, high=8)
    max_accumulations: int = param(256, "dot products one result may sum without overflow", low=1, high=1 << 20)
    rescale: bool = param(False, "per-group rescale by 2**e_hi +/- 2**e_lo (shift-and-add dequantization)")
    max_shift: int = param(7, "largest scale exponent e_hi / e_lo when rescale is on", low=0, high=15)
    lut_entries: int = param(0, "code->value table entries; 0: weights are two's-complement codes",
                             choices=(0, 4, 8, 16))

    def __post_init__(self) -> None:
        validate(self)

    @property
    def code_bits(self) -> int:
        """Width of one weight on the input port: a table index, or the weight itself (bits)."""
        return (self.lut_entries - 1).bit_length() if self.lut_entries else self.max_w_bits

    @property
    def cell_a_bits(self) -> int:
        """Width of an activation in the datapath (bits, signed): ``a_bits``."""
        return self.a_bits

    @property
    def serial_bits(self) -> int:
        """Width of the weight shift register: max_w_bits rounded up to a multiple of k (bits)."""
        return ceil_div(self.max_w_bits, self.k) * self.k

    @property
    def dot_bits(self) -> int:
        """|a*w| <= 2**(a_bits+max_w_bits-2), so a dot product of ``lanes`` fits in this (bits)."""
        return self.cell_a_bits + self.max_w_bits + (self.lanes - 1).bit_length()

    @property
    def acc_bits(self) -> int:
        """Accumulator width (bits): ``max_accumulations`` dot products, times a scale factor
        of at most 2**(max_shift+1) when rescale is on."""
        scale_bits = self.max_shift + 1 if self.rescale else 0
        return self.dot_bits + (self.max_accumulations - 1).bit_length() + scale_bits

    # Stage after the serial unit: accumulate (1 cycle), then the registered output (1 cycle).
    latency = 2

    def effective_w_bits(self, w_bits: int | None) -> int:
        """The precision the PE uses: ``w_bits`` outside 2..max_w_bits (or ``None``) acts as max_w_bits."""
        return w_bits if w_bits is not None and 2 <= w_bits <= self.max_w_bits else self.max_w_bits

    def interval(self, w_bits: int) -> int:
        """Cycles one dot product occupies the serial unit: ceil(w_bits / k) (:meth:`beat_cycles`)."""
        return self.beat_cycles(w_bits)

    def cycles(self, w_bits: int | list[int], n_ops: int = 1) -> int:
        """Cycles from accepting the first dot product to the result, with ``n_ops`` dot
        products of ``w_bits`` (or one per entry of a list) issued back to back:
        ``sum(ceil(w_bits / k)) + latency``."""
        precisions = w_bits if isinstance(w_bits, list) else [w_bits] * n_ops
        return sum(self.interval(w) for w in precisions) + self.latency

    def in_layout(self) -> data.StructLayout:
        fields = {
            "a": data.ArrayLayout(signed(self.a_bits), self.lanes),
            "w": data.ArrayLayout(unsigned(self.code_bits), self.lanes),
            "w_bits": unsigned(4),
            "first": 1,
            "last": 1,
        }
        if self.rescale:
            shift = unsigned(max(1, self.max_shift.bit_length()))
            fields.update({"group_last": 1, "e_hi": shift, "e_lo": shift, "lo_mode": unsigned(2)})
        return data.StructLayout(fields)

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": signed(self.acc_bits)})

    # --- PE protocol (see peforge.hw.pe.protocol) ----------------------------------------------

    @property
    def k_bits(self) -> int:
        return self.k

    @property
    def slices(self) -> int:
        """k-bit slices of a weight at max_w_bits: the longest beat (cycles)."""
        return self.serial_bits // self.k

    @property
    def max_reduction(self) -> int:
        """Products one result may sum without overflow, in whole dot products of ``lanes``
        terms: the accumulator holds that many dot products of most-negative squares
        ``lanes * 2**(a_bits+max_w_bits-2)`` (times the largest group scale ``2**(max_shift+1)``
        with rescale) — at least max_accumulations dot products, i.e. max_accumulations x lanes
        products."""
        scale = 1 << self.max_shift + 1 if self.rescale else 1
        return self.lanes * capacity(self.acc_bits, self.lanes * (1 << self.a_bits + self.max_w_bits - 2) * scale)

    def _os_latency_base(self) -> int:
        return self.latency

    def golden_gemm(self, a, b, *, acc_bits: int | None, w_bits: int | None = None, meta=None,
                    rows: int | None = None, dataflow: str | None = None) -> np.ndarray:
        w = bitserial_weights(b, self.effective_w_bits(w_bits)).astype(object)
        return wrap(np.asarray(a, dtype=object).dot(w), acc_bits)

    def check_array(self, rows: int, dataflow: str) -> None:
        if self.rescale:
            raise ValueError("SystolicConfig.pe.rescale=True is not supported in the array; allowed false")
        if self.lut_entries:
            raise ValueError(f"SystolicConfig.pe.lut_entries={self.lut_entries!r} is not supported in the array; "
                             "allowed 0")

    @property
    def weight_shape(self):
        return unsigned(self.code_bits)

    def array_fields(self) -> dict:
        return {"w_bits": unsigned(4)}

    def array_start(self, m: Module, payload, ctl: dict) -> dict:
        """The GEMM's precision, read from its first beat, sets the beat length; the slice a
        ws cell works on counts down from the MSB slice (negative) over the beat."""
        wb = Signal(4)  # effective precision of the running GEMM
        wb_cur = Signal(4)  # ... of the beat on the port (the first one's while idle)
        with m.Switch(payload.w_bits):
            for w_bits in range(16):
                with m.Case(w_bits):
                    m.d.comb += wb_cur.eq(Mux(ctl["busy"], wb, self.effective_w_bits(w_bits)))
                    with m.If(ctl["start"]):
                        m.d.sync += [wb.eq(self.effective_w_bits(w_bits)), ctl["ii"].eq(self.beat_cycles(w_bits))]
        position = Signal(range(max(2, self.slices)))
        m.d.comb += position.eq(ctl["ii"] - 1 - ctl["phase"])
        return {"wb": wb, "wb_cur": wb_cur, "slice": position, "top_slice": ctl["phase"] == 0}

    @property
    def ws_stored_shape(self):
        """Sign-extended from the run-time precision to whole k-bit slices."""
        return signed(self.serial_bits)

    def ws_store(self, m: Module, ctl: dict, code, meta: dict):
        value = Signal(signed(self.serial_bits))
        with m.Switch(ctl["wb_cur"]):
            for w_bits in range(2, self.max_w_bits + 1):
                with m.Case(w_bits):
                    m.d.comb += value.eq(code[:w_bits].as_signed())
        return value

    def ws_cell(self, m: Module, ctl: dict, name: str):
        cell = super().ws_cell(m, ctl, name)
        # Every cell of the array works on the same slice; the partial sum advances every cycle.
        m.d.comb += [cell.position.eq(ctl["slice"]), cell.top.eq(ctl["top_slice"]), cell.en.eq(1)]
        return cell

    def os_feed(self, m: Module, payload, a, w, meta: dict, ctl: dict) -> None:
        m.d.comb += [payload.a.eq(a), payload.w.eq(w), payload.w_bits.eq(ctl["wb"])]


def bitserial_weights(codes, w_bits, lut=None) -> np.ndarray:
    """Golden BitSerialPE weight values: codes looked up in the code->value table when there is
    one, then read as ``w_bits``-bit two's complement (the precision the PE serializes)."""
    codes = np.asarray(codes, dtype=np.int64)
    if lut is not None:
        lut = np.asarray(lut, dtype=np.int64)
        codes = lut[codes % len(lut)]
    return sign_extend(codes, w_bits)


def scale_factor(e_hi: int, e_lo: int, lo_mode: int) -> int:
    """Power-of-two-plus-offset group scale: ``2**e_hi`` plus (mode 1) or minus (mode 2) ``2**e_lo``."""
    offset = {LO_NONE: 0, LO_ADD: 1, LO_SUB: -1}[lo_mode] << e_lo
    return (1 << e_hi) + offset


def bitserial_result(dots, group_ends, scales, acc_bits: int | None) -> int:
    """Golden BitSerialPE accumulation: dot products summed per group, each group times its
    scale factor (1 without rescale), wrapped at the accumulator width (``None``: unwrapped).

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


class BitSerialCell(wiring.Component):
    """The bit-serial datapath: one k-bit slice of ``lanes`` weights times their activations
    per cycle, summed by an adder tree and shift-accumulated over the slices of a beat.

    Ports
    -----
    a : ``lanes`` activations; w : ``lanes`` weights, sign-extended to ``serial_bits``.
    position : the slice of this cycle (MSB slice first); top : this is the MSB slice, which
        weighs negative (two's complement) and starts a new dot product.
    en : advance ``held``.
    dot : the running dot product including this cycle's slice (combinational, ``dot_bits``);
        after the last slice of a beat it is the full dot product.
    held : ``dot`` as registered in the last cycle ``en`` was high.
    """

    def __init__(self, config: BitSerialConfig):
        self.config = config
        super().__init__({
            "a": In(data.ArrayLayout(signed(config.cell_a_bits), config.lanes)),
            "w": In(data.ArrayLayout(signed(config.serial_bits), config.lanes)),
            "position": In(range(max(2, config.slices))),
            "top": In(1),
            "en": In(1),
            "dot": Out(signed(config.dot_bits)),
            "held": Out(signed(config.dot_bits)),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        products = [shift_add_product(self.a[lane], self.w[lane].word_select(self.position, cfg.k),
                                      negate_msb=self.top) for lane in range(cfg.lanes)]
        m.d.comb += self.dot.eq(Mux(self.top, 0, self.held << cfg.k) + tree_sum(products))
        with m.If(self.en):
            m.d.sync += self.held.eq(self.dot)
        return m


class BitSerialPE(wiring.Component):
    """Bit-serial dot-product PE: ``lanes`` activations in parallel, weights ``k`` bits per cycle.

    A weight is sign-extended from its run-time precision ``w_bits`` and consumed MSB slice
    first; the top slice weighs negative (two's complement), the rest positive, and the
    partial sum shifts left by ``k`` each cycle. The slice x activation products are
    shift-and-add (k <= 4 terms) and summed by an adder tree across lanes.

    Ports
    -----
    i : stream of ``{a[lanes], w[lanes], w_bits, first, last}`` (+ ``group_last, e_hi, e_lo,
        lo_mode`` with rescale). ``first`` starts a new sum, ``last`` ends it; with rescale,
        ``group_last`` closes a quantization group, whose integer sum is multiplied by
        ``2**e_hi + {0, +1, -1}[lo_mode] * 2**e_lo`` (``last`` also closes the group).
        ``ready`` is high when the serial unit can take a dot product next cycle.
    lut : code->value table writes (``en``, ``addr``, ``data``), when ``lut_entries`` > 0:
        weights then are table indices.
    o : ``valid`` for one cycle with ``payload.acc``, :meth:`BitSerialConfig.cycles` after
        the first dot product was accepted.
    """

    def __init__(self, config: BitSerialConfig):
        self.config = config
        members = stream_ports(config)
        if config.lut_entries:
            members["lut"] = In(wiring.Signature({
                "en": Out(1), "addr": Out(config.code_bits), "data": Out(signed(config.max_w_bits)),
            }))
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        payload = self.i.payload
        accept = self.i.valid & self.i.ready

        # Weight values: table lookup (BitMoD datatypes) or the codes themselves.
        if cfg.lut_entries:
            # Table contents are configuration: a reset of the datapath leaves them alone.
            table = Array(Signal(signed(cfg.max_w_bits), name=f"lut_{i}", reset_less=True)
                          for i in range(cfg.lut_entries))
            with m.If(self.lut.en):
                m.d.sync += table[self.lut.addr].eq(self.lut.data)
            values = [table[payload.w[lane]] for lane in range(cfg.lanes)]
        else:
            values = [payload.w[lane] for lane in range(cfg.lanes)]

        # Serial stage: one k-bit slice of every weight per cycle, MSB slice first.
        remaining = Signal(range(cfg.serial_bits // cfg.k + 1))  # slices left, including this cycle's
        top = Signal()  # this cycle's slice is the (negative-weighted) top slice
        a_in, side_in = self._activations(m, payload)
        a_reg = [Signal(signed(cfg.cell_a_bits), name=f"a_{lane}") for lane in range(cfg.lanes)]
        w_reg = [Signal(signed(cfg.serial_bits), name=f"w_{lane}") for lane in range(cfg.lanes)]
        op = Signal(cfg.in_layout())  # flags and scale of the dot product in the serial stage

        m.d.comb += self.i.ready.eq(remaining <= 1)
        busy = remaining != 0
        with m.If(busy):
            m.d.sync += [remaining.eq(remaining - 1), top.eq(0)]

        side = {key: Signal.like(value, name=f"{key}_op") for key, value in side_in.items()}
        with m.If(accept):
            m.d.sync += [op.eq(payload), top.eq(1)]
            m.d.sync += [a_reg[lane].eq(a_in[lane]) for lane in range(cfg.lanes)]
            m.d.sync += [side[key].eq(value) for key, value in side_in.items()]
            with m.Switch(payload.w_bits):
                for w_bits in range(2, cfg.max_w_bits + 1):
                    with m.Case(w_bits) if w_bits < cfg.max_w_bits else m.Default():
                        m.d.sync += remaining.eq(cfg.interval(w_bits))
                        m.d.sync += [w_reg[lane].eq(values[lane][:w_bits].as_signed())
                                     for lane in range(cfg.lanes)]

        m.submodules.cell = cell = BitSerialCell(cfg)
        m.d.comb += [cell.a[lane].eq(a_reg[lane]) for lane in range(cfg.lanes)]
        m.d.comb += [cell.w[lane].eq(w_reg[lane]) for lane in range(cfg.lanes)]
        m.d.comb += [cell.position.eq(remaining - 1),  # slice index, MSB slice first
                     cell.top.eq(top), cell.en.eq(busy)]

        # Accumulate stage: the finished dot product joins its group and the running total.
        done = Signal()
        done_op = Signal(cfg.in_layout())
        done_side = {key: Signal.like(value, name=f"{key}_done") for key, value in side.items()}
        m.d.sync += done.eq(remaining == 1)
        with m.If(remaining == 1):
            m.d.sync += done_op.eq(op)
            m.d.sync += [done_side[key].eq(value) for key, value in side.items()]
        dot = self._dot(m, cell.held, done_side)

        total = Signal(signed(cfg.acc_bits))
        base = Mux(done_op.first, 0, total)
        if cfg.rescale:
            group = Signal(signed(cfg.acc_bits))
            group_fresh = Signal(init=1)  # the next dot product opens a new group
            closes = done_op.group_last | done_op.last
            group_sum = Mux(done_op.first | group_fresh, 0, group) + dot
            hi = group_sum << done_op.e_hi
            lo = group_sum << done_op.e_lo
            scaled = hi + Mux(done_op.lo_mode == LO_ADD, lo, Mux(done_op.lo_mode == LO_SUB, -lo, 0))
            with m.If(done):
                m.d.sync += [group.eq(group_sum), group_fresh.eq(closes)]
                m.d.sync += total.eq(base + Mux(closes, scaled, 0))
        else:
            with m.If(done):
                m.d.sync += total.eq(base + dot)

        m.d.sync += self.o.valid.eq(done & done_op.last)
        self._output(m, total, done, done_op, done_side)
        return m

    # Hooks of the FP-activation PE (peforge.hw.pe.fpbitserial), which derives from this one.

    def _activations(self, m: Module, payload) -> tuple[list, dict]:
        """The ``lanes`` values entering the serial stage, and side values (name: Value) that
        travel with the dot product to the accumulate stage: the activations as they are."""
        return [payload.a[lane] for lane in range(self.config.lanes)], {}

    def _dot(self, m: Module, dot, side: dict):
        """The finished dot product as it enters the group and total: as it is."""
        return dot

    def _output(self, m: Module, total, done, done_op, side: dict) -> None:
        m.d.comb += self.o.payload.acc.eq(total)


KIND = PeKind(name="bitserial", summary="bit-serial dot-product PE, run-time weight precision (Stripes / BitMoD)",
              config=BitSerialConfig, component=BitSerialPE, cell=BitSerialCell, order=1)
