"""MacPE: a signed multiply-accumulate processing element, the baseline of every accelerator paper."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden import wrap
from ..ports import stream_ports
from ..params import param, validate
from .protocol import PeConfigBase, PeKind, capacity


@dataclass(frozen=True, kw_only=True)
class MacConfig(PeConfigBase):
    """Parameters of :class:`MacPE`."""

    a_bits: int = param(8, "activation width, signed (bits)", low=2, high=16)
    w_bits: int = param(8, "weight width, signed (bits)", low=2, high=16)
    max_accumulations: int = param(4096, "products one result may sum without overflow", low=1, high=1 << 24)
    output_register: bool = param(False, "register the result (one more cycle of latency, shorter path)")

    def __post_init__(self) -> None:
        validate(self)

    @property
    def acc_bits(self) -> int:
        """Accumulator width (bits): |a·w| ≤ 2**(a_bits+w_bits-2), so N products fit in
        a_bits + w_bits + ceil(log2 N) signed bits."""
        return self.a_bits + self.w_bits + (self.max_accumulations - 1).bit_length()

    @property
    def latency(self) -> int:
        """Cycles from accepting the last pair of a dot product to its result being valid."""
        return 1 + int(self.output_register)

    def cycles(self, n: int) -> int:
        """Cycles from accepting the first of ``n`` pairs to the result: one pair per cycle,
        then :attr:`latency`: ``n - 1 + latency``."""
        return n - 1 + self.latency

    def in_layout(self) -> data.StructLayout:
        return data.StructLayout({"a": signed(self.a_bits), "w": signed(self.w_bits), "first": 1, "last": 1})

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": signed(self.acc_bits)})

    # --- PE protocol (see peforge.hw.pe.protocol) ----------------------------------------------

    @property
    def max_reduction(self) -> int:
        """Products one result may sum without overflow: as many most-negative squares
        ``2**(a_bits+w_bits-2)`` as the accumulator holds (at least max_accumulations; the
        accumulator width rounds it up)."""
        return capacity(self.acc_bits, 1 << self.a_bits + self.w_bits - 2)

    def golden_gemm(self, a, b, *, acc_bits: int | None, w_bits: int | None = None, meta=None,
                    rows: int | None = None, dataflow: str | None = None) -> np.ndarray:
        return wrap(np.asarray(a, dtype=object).dot(np.asarray(b, dtype=object)), acc_bits)

    def check_array(self, rows: int, dataflow: str) -> None:
        if dataflow == "ws" and self.output_register:
            raise ValueError("SystolicConfig.pe.output_register=True needs dataflow=os; allowed false with ws")

    @property
    def weight_shape(self):
        return signed(self.w_bits)

    def os_feed(self, m: Module, payload, a, w, meta: dict, ctl: dict) -> None:
        m.d.comb += [payload.a.eq(a[0]), payload.w.eq(w[0])]


def mac_dot(a, w, acc_bits: int | None) -> int:
    """Golden MacPE: sum of ``a[i] * w[i]`` in a signed accumulator of ``acc_bits`` (``None``: unwrapped)."""
    total = int(np.dot(np.asarray(a, dtype=object), np.asarray(w, dtype=object)))
    return int(wrap(total, acc_bits))


class MacCell(wiring.Component):
    """The MAC datapath: ``dot = a[0] × w[0]``, combinational (a signed multiplier).

    Ports: ``a`` (1 activation), ``w`` (1 weight), ``dot`` (a_bits + w_bits, signed).
    """

    def __init__(self, config: MacConfig):
        self.config = config
        super().__init__({
            "a": In(data.ArrayLayout(signed(config.a_bits), 1)),
            "w": In(data.ArrayLayout(signed(config.w_bits), 1)),
            "dot": Out(signed(config.a_bits + config.w_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.dot.eq(self.a[0] * self.w[0])
        return m


class MacPE(wiring.Component):
    """Signed multiply-accumulate: one ``a × w`` per cycle into a wrapping accumulator.

    Ports
    -----
    i : stream of ``{a, w, first, last}``; ``first`` starts a new sum, ``last`` ends it.
        ``ready`` is always 1.
    o : ``valid`` for one cycle with ``payload.acc``, the sum of the pairs from ``first`` to
        ``last``, :meth:`MacConfig.cycles` after the first pair was accepted.
    """

    def __init__(self, config: MacConfig):
        self.config = config
        super().__init__(stream_ports(config))

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        acc = Signal(signed(cfg.acc_bits))
        done = Signal()
        m.submodules.cell = cell = MacCell(cfg)
        m.d.comb += [cell.a[0].eq(self.i.payload.a), cell.w[0].eq(self.i.payload.w)]
        product = cell.dot

        m.d.comb += self.i.ready.eq(1)
        m.d.sync += done.eq(self.i.valid & self.i.payload.last)
        with m.If(self.i.valid):
            m.d.sync += acc.eq(Mux(self.i.payload.first, 0, acc) + product)

        if cfg.output_register:
            m.d.sync += [self.o.valid.eq(done), self.o.payload.acc.eq(acc)]
        else:
            m.d.comb += [self.o.valid.eq(done), self.o.payload.acc.eq(acc)]
        return m


KIND = PeKind(name="mac", summary="signed a_bits x w_bits multiply-accumulate PE", config=MacConfig,
              component=MacPE, cell=MacCell, order=0)
