"""MacPE: a signed multiply-accumulate processing element, the baseline of every accelerator paper."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring

from ..ports import stream_ports
from ..params import param, validate


@dataclass(frozen=True, kw_only=True)
class MacConfig:
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

    def interval(self, n: int) -> int:
        """Cycles between the starts of consecutive dot products of ``n`` pairs (no stall)."""
        return n

    def cycles(self, n: int) -> int:
        """Cycles from accepting the first of ``n`` pairs to the result: one pair per cycle,
        then :attr:`latency`: ``n - 1 + latency``."""
        return n - 1 + self.latency

    def in_layout(self) -> data.StructLayout:
        return data.StructLayout({"a": signed(self.a_bits), "w": signed(self.w_bits), "first": 1, "last": 1})

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": signed(self.acc_bits)})


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
        product = self.i.payload.a * self.i.payload.w

        m.d.comb += self.i.ready.eq(1)
        m.d.sync += done.eq(self.i.valid & self.i.payload.last)
        with m.If(self.i.valid):
            m.d.sync += acc.eq(Mux(self.i.payload.first, 0, acc) + product)

        if cfg.output_register:
            m.d.sync += [self.o.valid.eq(done), self.o.payload.acc.eq(acc)]
        else:
            m.d.comb += [self.o.valid.eq(done), self.o.payload.acc.eq(acc)]
        return m
