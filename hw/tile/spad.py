"""Scratchpad: banked on-chip SRAM of the accelerator tile (activations, weights, outputs).

A scratchpad is ``banks`` (B) banks, one :class:`amaranth.lib.memory.Memory` each (synchronous
read, one cycle of latency), of ``depth`` words of ``word_elements`` (W) elements of
``element_bits`` bits.

Linear element space
    Element address ``e`` is word ``e // W``, lane ``e % W``; word ``x`` is bank ``x % B``,
    bank address ``x // B``. Everyone (DMA, vector unit, GEMM engine, compiler) addresses data
    by linear element address.
Skewed matrices
    A matrix is stored row-major with a row pitch of ``row_words`` words, ``row_words % B == 1``
    (:meth:`ScratchpadConfig.row_pitch`). Then the same word of B consecutive rows lies in B
    distinct banks (word ``x + r·pitch`` is bank ``(x + r) % B``), and so do any B consecutive
    words of one row: either is one parallel read, one address per bank.

Ports (each bank has one read and one write port per user):

``access`` (DMA, vector unit; ``access_ports`` of them: ``access``, ``access1``, ...)
    one cycle reads or writes a *run* of ``run_elements`` consecutive elements starting at any
    element address; a run spans at most B words, so all in distinct banks. ``mask`` selects
    the elements written; read data arrives on ``rdata`` the next cycle (and holds until the
    next read). Each access port has its own read and write port on every bank, so several
    runs proceed in one cycle (writes of two ports to one element in one cycle: undefined).
``feed`` (GEMM engine, reads)
    one word per bank at its own bank address; data the next cycle, held while ``en`` is low.
``store`` (GEMM engine, writes)
    one word per bank at its own bank address, a lane mask per bank.

With power-of-two W and B every address split (:func:`divmod_const`) is wiring; otherwise it
divides by a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden import sign_extend
from ..params import param, validate
from ...arith import ceil_div


def divmod_const(value, divisor: int) -> tuple:
    """``(value // divisor, value % divisor)`` of an unsigned Amaranth value by a constant: a bit
    split when ``divisor`` is a power of two (wiring), else a constant division."""
    if divisor & (divisor - 1) == 0:
        bits = divisor.bit_length() - 1
        return value >> bits, value[:bits] if bits else 0
    return value // divisor, value % divisor


def rotate(m: Module, items: list, by, name: str) -> list:
    """``items`` (values of one width) rotated so that entry ``i`` is ``items[(i + by) % len(items)]``,
    ``by`` a signal below ``len(items)``: a barrel shifter of log2(len) stages, not a crossbar."""
    width = len(items[0])
    out = Signal(width * len(items), name=name)
    m.d.comb += out.eq(Cat(*items, *items).bit_select(by * width, width * len(items)))
    return [out[i * width:(i + 1) * width] for i in range(len(items))]


def access_name(index: int) -> str:
    """The name of access port ``index`` of a scratchpad: ``access``, ``access1``, ``access2``, ..."""
    return f"access{index}" if index else "access"


def skewed_pitch(words: int, banks: int) -> int:
    """The smallest row pitch (words) of at least ``words`` with ``pitch % banks == 1 % banks``."""
    if words < 1:
        raise ValueError(f"row of {words!r} words; need at least 1")
    return words + (1 - words) % banks


@dataclass(frozen=True, kw_only=True)
class ScratchpadConfig:
    """Parameters of :class:`Scratchpad`."""

    banks: int = param(4, "banks B, one memory each", low=1, high=64)
    word_elements: int = param(4, "elements W per word", low=1, high=256)
    element_bits: int = param(8, "width of one element (bits)", low=1, high=64)
    signed: bool = param(True, "elements are two's complement (else unsigned)")
    depth: int = param(64, "words per bank", low=2, high=1 << 20)
    run: int = param(0, "elements per access-port run; 0: the most, (B - 1)·W + 1", low=0, high=1 << 14)

    def __post_init__(self) -> None:
        validate(self)
        if self.run > self.max_run:
            raise ValueError(f"ScratchpadConfig.run={self.run!r} spans more than banks={self.banks!r} words; "
                             f"allowed 0..{self.max_run}")

    @classmethod
    def sized(cls, kib: float, **fields) -> ScratchpadConfig:
        """The scratchpad of ``fields`` (banks, word_elements, element_bits, ...) with the most
        words per bank that fit in ``kib`` KiB (e.g. a design's ``sram.*_kib`` share)."""
        probe = cls(**{**fields, "depth": 2})
        depth = int(kib * 8192) // (probe.banks * probe.word_bits)
        if depth < 2:
            raise ValueError(f"{kib!r} KiB holds {depth} words per bank of {probe.banks} banks x "
                             f"{probe.word_bits} bits; need at least 2")
        return cls(**{**fields, "depth": depth})

    @property
    def max_run(self) -> int:
        """The longest run that spans at most B words from any start: (B - 1)·W + 1 elements."""
        return (self.banks - 1) * self.word_elements + 1

    @property
    def run_elements(self) -> int:
        """Elements of one access-port run."""
        return self.run or self.max_run

    @property
    def element_shape(self):
        return signed(self.element_bits) if self.signed else unsigned(self.element_bits)

    @property
    def word_bits(self) -> int:
        return self.word_elements * self.element_bits

    @property
    def words(self) -> int:
        """Words of the whole scratchpad (B · depth)."""
        return self.banks * self.depth

    @property
    def elements(self) -> int:
        """Elements of the whole scratchpad (the linear element space)."""
        return self.words * self.word_elements

    @property
    def kib(self) -> float:
        """Capacity (KiB)."""
        return self.elements * self.element_bits / 8192

    # --- layout helpers (compiler, DMA, tests) ---------------------------------------------------

    def row_pitch(self, cols: int) -> int:
        """Skewed row pitch (words) of a row of ``cols`` elements: at least ceil(cols / W) words,
        ``pitch % B == 1`` (any pitch when B = 1)."""
        return skewed_pitch(ceil_div(cols, self.word_elements), self.banks)

    def is_skewed(self, pitch: int) -> bool:
        return pitch % self.banks == 1 % self.banks

    def element_address(self, base: int, pitch: int, row: int, col: int) -> int:
        """Linear element address of ``(row, col)`` of a matrix at element ``base`` with a row
        pitch of ``pitch`` words."""
        return base + row * pitch * self.word_elements + col

    def check_matrix(self, name: str, base: int, pitch: int, rows: int, cols: int, *, skewed: bool = True) -> None:
        """Raise ``ValueError`` unless a ``rows x cols`` matrix at ``base`` (word-aligned) with a
        ``pitch`` of at least its row's words (skewed, unless ``skewed`` is false) fits."""
        W = self.word_elements
        if base % W:
            raise ValueError(f"{name} base={base!r} is not word-aligned; a multiple of {W} elements")
        if (skewed and not self.is_skewed(pitch)) or pitch < ceil_div(cols, W):
            raise ValueError(f"{name} pitch={pitch!r} words; need >= {ceil_div(cols, W)} and "
                             f"pitch % {self.banks} == {1 % self.banks} (e.g. {self.row_pitch(cols)})")
        end = self.element_address(base, pitch, rows - 1, cols)
        if base < 0 or end > self.elements:
            raise ValueError(f"{name} at base={base!r} ends at element {end}, beyond {self.elements}")

    def pack(self, image: np.ndarray, matrix, base: int, pitch: int) -> np.ndarray:
        """Write ``matrix`` (rows x cols) into ``image`` (the linear element space, a numpy
        array of ``elements`` integers) at ``base`` with ``pitch``; returns ``image``."""
        matrix = np.asarray(matrix)
        self._check_fits(image, base, pitch, *matrix.shape)
        for row in range(matrix.shape[0]):
            start = self.element_address(base, pitch, row, 0)
            image[start:start + matrix.shape[1]] = matrix[row]
        return image

    def unpack(self, image: np.ndarray, base: int, pitch: int, rows: int, cols: int) -> np.ndarray:
        """The ``rows x cols`` matrix at ``base`` with ``pitch`` in ``image``."""
        self._check_fits(image, base, pitch, rows, cols)
        return np.stack([image[self.element_address(base, pitch, r, 0):][:cols] for r in range(rows)])

    def _check_fits(self, image: np.ndarray, base: int, pitch: int, rows: int, cols: int) -> None:
        end = self.element_address(base, pitch, rows - 1, cols)
        if base < 0 or end > len(image):
            raise ValueError(f"a {rows}x{cols} matrix at base={base!r} with pitch={pitch!r} "
                             f"ends at element {end}, beyond {len(image)}")

    def blank(self) -> np.ndarray:
        """An all-zero linear element space (``int64``)."""
        return np.zeros(self.elements, dtype=np.int64)

    def bank_words(self, image: np.ndarray) -> list[list[int]]:
        """``image`` as each bank's words (the ``init`` of its memory)."""
        W, B, bits = self.word_elements, self.banks, self.element_bits
        codes = np.asarray(image, dtype=object).reshape(self.words, W) % (1 << bits)
        words = [sum(int(code) << (lane * bits) for lane, code in enumerate(row)) for row in codes]
        return [words[b::B] for b in range(B)]

    def from_bank_words(self, banks: list[list[int]]) -> np.ndarray:
        """The linear element space held by each bank's words (inverse of :meth:`bank_words`)."""
        W, B, bits = self.word_elements, self.banks, self.element_bits
        words = [banks[x % B][x // B] for x in range(self.words)]
        codes = np.array([(word >> (lane * bits)) & ((1 << bits) - 1) for word in words for lane in range(W)],
                         dtype=np.int64)
        return sign_extend(codes, bits) if self.signed else codes

    # --- port signatures -------------------------------------------------------------------------

    def word_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(self.element_shape, self.word_elements)

    def access_signature(self) -> wiring.Signature:
        """The run port, from the user's side: ``en`` (an access this cycle), ``we`` (it writes),
        ``addr`` (element address of the run's first element), ``mask`` / ``wdata`` (elements
        written), ``rdata`` (the run read in the previous access, one cycle later)."""
        P = self.run_elements
        return wiring.Signature({
            "en": Out(1), "we": Out(1), "addr": Out(range(self.elements)), "mask": Out(P),
            "wdata": Out(data.ArrayLayout(self.element_shape, P)),
            "rdata": In(data.ArrayLayout(self.element_shape, P)),
        })

    def feed_signature(self) -> wiring.Signature:
        """Per-bank read port, from the user's side: ``en``, one ``addr`` per bank, ``data``
        (each bank's word, one cycle later, held while ``en`` is low)."""
        B = self.banks
        return wiring.Signature({
            "en": Out(1), "addr": Out(data.ArrayLayout(range(self.depth), B)),
            "data": In(data.ArrayLayout(self.word_layout(), B)),
        })

    def store_signature(self) -> wiring.Signature:
        """Per-bank write port, from the user's side: ``en`` (a lane mask per bank), ``addr``
        and ``data`` per bank."""
        B = self.banks
        return wiring.Signature({
            "en": Out(data.ArrayLayout(self.word_elements, B)), "addr": Out(data.ArrayLayout(range(self.depth), B)),
            "data": Out(data.ArrayLayout(self.word_layout(), B)),
        })


class Scratchpad(wiring.Component):
    """Banked scratchpad (see the module docstring for addressing and ports).

    Parameters
    ----------
    config : the geometry.
    init : optional linear element space to start from (:meth:`ScratchpadConfig.blank` shape),
        e.g. what a test would have the DMA write.
    access_ports : run ports (:func:`access_name` names them), 1 to 8.
    """

    def __init__(self, config: ScratchpadConfig, *, init: np.ndarray | None = None, access_ports: int = 1):
        if not isinstance(access_ports, int) or not 1 <= access_ports <= 8:
            raise ValueError(f"access_ports={access_ports!r}: choose 1 to 8 run ports")
        self.config = config
        self._init = config.bank_words(init) if init is not None else [[] for _ in range(config.banks)]
        super().__init__({
            **{access_name(k): In(config.access_signature()) for k in range(access_ports)},
            "feed": In(config.feed_signature()),
            "store": In(config.store_signature()),
        })
        self.access_ports = access_ports
        self.banks = [Memory(shape=unsigned(config.word_bits), depth=config.depth, init=self._init[b])
                      for b in range(config.banks)]

    def contents(self, get) -> np.ndarray:
        """The linear element space now, read in a testbench with ``get`` (e.g. ``ctx.get``)."""
        cfg = self.config
        return cfg.from_bank_words([[int(get(mem.data[i])) for i in range(cfg.depth)] for mem in self.banks])

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        for b, mem in enumerate(self.banks):
            m.submodules[f"bank{b}"] = mem
            feed_rd = mem.read_port()
            store_wr = mem.write_port(granularity=cfg.element_bits)
            m.d.comb += [feed_rd.addr.eq(self.feed.addr[b]), feed_rd.en.eq(self.feed.en),
                         self.feed.data[b].eq(feed_rd.data),
                         store_wr.addr.eq(self.store.addr[b]), store_wr.data.eq(self.store.data[b]),
                         store_wr.en.eq(self.store.en[b])]
        for k in range(self.access_ports):
            self._run_port(m, getattr(self, access_name(k)), f"run{k}" if k else "run")
        return m

    def _run_port(self, m: Module, acc, name: str) -> None:
        """One access port: a read and a write port on every bank, placed by the run geometry."""
        cfg = self.config
        B, W, P = cfg.banks, cfg.word_elements, cfg.run_elements

        # Run geometry: the banks' words side by side (bank 0 first) are B·W lanes; the run
        # starts at lane `off` = addr mod B·W and wraps around; bank b is read at q0 + 1 if its
        # whole word lies before the start (it holds the run's wrapped tail), else at q0.
        BW = B * W
        q0, off = divmod_const(acc.addr, BW)
        off_read = Signal(range(BW), name=f"{name}_off_read")
        reading = acc.en & ~acc.we
        with m.If(reading):
            m.d.sync += off_read.eq(off)
        to_lanes = Signal(range(BW), name=f"{name}_to_lanes")  # rotation from run elements to lanes
        m.d.comb += to_lanes.eq(Mux(off == 0, 0, BW - off))
        pad = BW - P
        bits = cfg.element_bits
        written = [acc.wdata.as_value()[i * bits:(i + 1) * bits] for i in range(P)]
        wdata = rotate(m, written + [C(0, bits)] * pad, to_lanes, f"{name}_wdata")
        mask = rotate(m, [acc.mask[i] for i in range(P)] + [C(0, 1)] * pad, to_lanes, f"{name}_mask")

        bank_data = []
        for b, mem in enumerate(self.banks):
            run_rd = mem.read_port()
            run_wr = mem.write_port(granularity=cfg.element_bits)
            address = q0 + ((b + 1) * W <= off)
            lanes = range(b * W, (b + 1) * W)
            m.d.comb += [run_rd.addr.eq(address), run_rd.en.eq(reading), run_wr.addr.eq(address),
                         run_wr.data.eq(Cat(*(wdata[j] for j in lanes))),
                         run_wr.en.eq(Mux(acc.en & acc.we, Cat(*(mask[j] for j in lanes)), 0))]
            bank_data += [run_rd.data[lane * bits:(lane + 1) * bits] for lane in range(W)]

        # Read data: run element i is lane (off + i) mod B·W of the previous read.
        for i, element in enumerate(rotate(m, bank_data, off_read, f"{name}_rdata")[:P]):
            m.d.comb += acc.rdata[i].eq(element)
