"""The PE protocol: what a PE kind's module declares, so nothing outside it names the kind.

A PE kind is one module of ``peforge.hw.pe`` defining ``KIND = PeKind(...)``: its config class
(a frozen dataclass deriving from :class:`PeConfigBase`), its standalone component, and the
array cell component that both the standalone PE and the weight-stationary array instantiate.
The config answers everything else: the golden model, the cost-model figures
(:meth:`PeConfigBase.figures`) and the array hooks :class:`~peforge.hw.systolic.SystolicArray`
calls. :mod:`peforge.hw.pe` finds the kinds by importing its modules.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Module, Mux, Shape, Value, signed

from ...arith import ceil_div


@dataclass(frozen=True, kw_only=True)
class PeKind:
    """One PE kind, as the registry lists it.

    ``order`` sorts the registry (then ``name``): listings and ``peforge blocks`` follow it.
    ``cell`` is the arithmetic datapath (:class:`amaranth.lib.wiring.Component`) that the
    standalone ``component`` contains and the weight-stationary array puts in every cell.
    """

    name: str
    summary: str
    config: type
    component: type
    cell: type
    order: int = 100


@dataclass(frozen=True, kw_only=True)
class PeFigures:
    """The numbers of one PE config the cost model needs, free of the kind's name.

    lanes : k values a cell consumes per beat (1 for a scalar MAC)
    a_bits : activation width (bits, signed)
    max_w_bits : weight bits the datapath handles in one pass (bits)
    k_bits : weight bits consumed per cycle by a bit-serial datapath; 0: a parallel datapath,
        one beat per cycle whatever the precision
    ws_edge_stages : pipeline stages the PE adds at the bottom edge of a weight-stationary array
    os_latency_base : :meth:`PeConfigBase.os_latency` less the beat's own cycles (bit-serial:
        the beat is ``ceil(w_bits / k)`` cycles), so ``os_latency(w) = os_latency_base +
        (beat_cycles(w) if k_bits else 0)``
    max_reduction : products one result may sum without overflow
    a_format, w_format : the number formats of an activation and of a weight as the datapath
        computes them: ``int<N>`` (signed) or a :data:`peforge.hw.fp.FLOAT_FORMATS` name
    """

    lanes: int
    a_bits: int
    max_w_bits: int
    k_bits: int
    ws_edge_stages: int
    os_latency_base: int
    max_reduction: int
    a_format: str
    w_format: str

    def beat_cycles(self, w_bits) -> np.ndarray:
        """Cycles per beat at ``w_bits`` (numpy arrays broadcast): 1, or ceil(w_bits / k_bits)
        with ``w_bits`` outside 2..max_w_bits read as max_w_bits (as the RTL does)."""
        return beat_cycles(w_bits, k_bits=self.k_bits, max_w_bits=self.max_w_bits)

    def os_latency(self, w_bits) -> np.ndarray:
        """Cycles from a cell's last beat to its result in an output-stationary array."""
        extra = self.beat_cycles(w_bits) if self.k_bits else 0
        return self.os_latency_base + extra


def beat_cycles(w_bits, *, k_bits, max_w_bits):
    """ceil(w_bits / k_bits) for a bit-serial datapath (k_bits > 0), else 1; ``w_bits``
    outside 2..max_w_bits (or ``None``) counts as max_w_bits. All three broadcast as numpy
    arrays (e.g. one column per design from :class:`PeFigures`); scalars give ``int``."""
    if w_bits is None:
        w_bits = max_w_bits
    w, k, top = np.asarray(w_bits), np.asarray(k_bits), np.asarray(max_w_bits)
    effective = np.where((w >= 2) & (w <= top), w, top)
    cycles = np.where(k > 0, ceil_div(effective, np.maximum(k, 1)), 1)
    return int(cycles) if cycles.ndim == 0 else cycles


class PeConfigBase:
    """Defaults of the PE protocol; each PE config derives from it and overrides what differs.

    Figures (also collected by :meth:`figures`, see :class:`PeFigures` for their units):
    ``lanes`` (k values per cell and beat), ``a_bits`` (bits), ``max_w_bits`` (bits),
    ``k_bits`` (weight bits per cycle, 0: parallel), ``ws_edge_stages`` (beats),
    :meth:`beat_cycles` (cycles), :meth:`os_latency` (cycles), :attr:`max_reduction` (products),
    ``acc_bits`` / :attr:`out_bits` (bits), ``out_shift`` (bits). Golden model: :meth:`golden_gemm`.
    Array hooks: :meth:`check_array`, :attr:`weight_shape` and the ``array_*``, ``column_*``,
    ``ws_*`` and ``os_*`` members, called by :class:`~peforge.hw.systolic.SystolicArray` with a
    ``ctl`` dict of its control signals (``step``: a beat ends this cycle; ``phase``: cycle
    within the beat; ``ii``: cycles of this beat; ``busy``; ``start``: the GEMM's first beat is
    taken) plus what :meth:`array_start` returned.
    """

    lanes = 1
    k_bits = 0  # bit-serial weight bits per cycle; 0: parallel datapath
    ws_edge_stages = 0
    out_shift = 0  # bits dropped (arithmetic shift) from the accumulator on the way out

    # --- figures ---------------------------------------------------------------------------------

    @property
    def max_w_bits(self) -> int:
        """Weight bits the datapath handles in one pass (bits)."""
        return self.w_bits

    @property
    def a_format(self) -> str:
        """The activations' number format (``int<N>`` or a :data:`peforge.hw.fp.FLOAT_FORMATS` name)."""
        return f"int{self.a_bits}"

    @property
    def w_format(self) -> str:
        """The weights' number format at max_w_bits (``int<N>`` or a float format name)."""
        return f"int{self.max_w_bits}"

    def beat_cycles(self, w_bits=None):
        """Cycles one beat (``lanes`` k values per cell) takes at weight precision ``w_bits``
        (``None``: max_w_bits); numpy arrays broadcast."""
        return beat_cycles(w_bits, k_bits=self.k_bits, max_w_bits=self.max_w_bits)

    def os_latency(self, w_bits=None):
        """Cycles from a cell accepting its last beat to its result, in an output-stationary array."""
        return self.figures().os_latency(w_bits)

    @property
    def max_reduction(self) -> int:
        """Products one result may sum without overflow (see the PE's override)."""
        raise NotImplementedError

    @property
    def out_bits(self) -> int:
        """Width of a result on the output port (bits, signed)."""
        return self.acc_bits - self.out_shift

    @property
    def a_shape(self) -> Shape:
        """One activation on the array's input port: a signed integer (a float PE: a code)."""
        return signed(self.a_bits)

    @property
    def out_shape(self) -> Shape:
        """One result on the array's output port: a signed integer (a float PE: a code)."""
        return signed(self.out_bits)

    def figures(self) -> PeFigures:
        """The figures of this (frozen, hashable) config; cached: the cost model asks per design point."""
        return _figures(self)

    def _figures(self) -> PeFigures:
        return PeFigures(lanes=self.lanes, a_bits=self.a_bits, max_w_bits=self.max_w_bits, k_bits=self.k_bits,
                         ws_edge_stages=self.ws_edge_stages, os_latency_base=self._os_latency_base(),
                         max_reduction=self.max_reduction, a_format=self.a_format, w_format=self.w_format)

    def _os_latency_base(self) -> int:
        return self.cycles(1)

    # --- golden ----------------------------------------------------------------------------------

    def golden_gemm(self, a, b, *, acc_bits: int | None, w_bits: int | None = None, meta=None,
                    rows: int | None = None, dataflow: str | None = None) -> np.ndarray:
        """``A · B`` (A: M × K activations, B: K × N weight codes as on the array port) with this
        PE's arithmetic, accumulators wrapped at ``acc_bits`` (``None``: unwrapped). ``w_bits``:
        the run-time precision; ``meta``: per-column metadata arrays (:meth:`column_fields`).
        ``rows``, ``dataflow``: the array whose summation order to follow (``None``: a standalone
        PE's); integer arithmetic is exact in any order and ignores them."""
        raise NotImplementedError

    # --- array hooks -----------------------------------------------------------------------------

    def check_array(self, rows: int, dataflow: str) -> None:
        """Raise ``ValueError`` (messages name ``SystolicConfig.pe.<field>``) where this config
        cannot sit in an array of ``rows`` rows with ``dataflow``."""

    @property
    def weight_shape(self) -> Shape:
        """One weight code on the array's input port."""
        raise NotImplementedError

    def array_fields(self) -> dict[str, Any]:
        """Extra per-GEMM fields of the array's input beat, read on its first beat (name: shape)."""
        return {}

    def column_fields(self) -> dict[str, Any]:
        """Per-column metadata on the array's input beat, with each weight column (name: shape)."""
        return {}

    def array_start(self, m: Module, payload, ctl: dict) -> dict:
        """Latch run-time state at a GEMM's first beat (and set ``ctl['ii']``); extra ``ctl`` entries."""
        return {}

    # ws

    @property
    def ws_stored_shape(self) -> Shape:
        """A weight as a weight-stationary cell stores it."""
        return self.weight_shape

    def ws_store(self, m: Module, ctl: dict, code: Value, meta: dict) -> Value:
        """The stored form of a port weight ``code`` of a column with metadata ``meta``."""
        return code

    def ws_column_fields(self) -> dict[str, Any]:
        """Column metadata that travels down with a fold's weights to the bottom edge."""
        return {}

    @property
    def ws_psum_bits(self) -> int:
        """Width of the partial sums flowing down a weight-stationary column (bits, signed)."""
        return self.acc_bits

    def ws_cell(self, m: Module, ctl: dict, name: str):
        """A new array cell (with ``a``, ``w`` inputs and a ``dot`` output), its control wired."""
        from . import kind_of  # the registry imports this module

        cell = kind_of(self).cell(self)
        m.submodules[f"cell_{name}"] = cell
        return cell

    def ws_accumulate(self, m: Module, above: Value | None, cell) -> Value:
        """A weight-stationary cell's partial sum: the one from the row above (``None`` in the
        top row) plus the cell's ``dot``."""
        return cell.dot if above is None else above + cell.dot

    def fold_accumulate(self, m: Module, name: str, bottom: Value, before: Value, kfirst: Value) -> Value:
        """Column ``name``'s running sum over K folds: this fold's ``bottom`` edge value plus the
        sum of the folds ``before`` (none on the first fold, ``kfirst``); ``acc_bits`` wide."""
        return bottom + Mux(kfirst, 0, before)

    def ws_edge(self, m: Module, ctl: dict, name: str, psum: Value, meta: dict) -> Value:
        """The bottom edge stage (``ws_edge_stages`` registers, advancing on ``ctl['step']``) from
        a column's partial sum to the value accumulated over K folds, ``acc_bits`` wide."""
        return psum

    # os

    def os_feed(self, m: Module, payload, a, w, meta: dict, ctl: dict) -> None:
        """Drive a cell PE's ``payload`` data fields from one beat's ``a``, ``w`` (``lanes`` each)
        and column metadata (``first``, ``last`` and ``valid`` are the array's)."""
        m.d.comb += [payload.a.eq(a), payload.w.eq(w)]
        for key, value in meta.items():
            m.d.comb += getattr(payload, key).eq(value)


def capacity(acc_bits: int, worst: int) -> int:
    """How many terms of magnitude ``worst`` (all of one sign) a signed ``acc_bits`` register
    sums before it wraps."""
    return ((1 << acc_bits - 1) - 1) // worst


@functools.lru_cache(maxsize=4096)
def _figures(config: PeConfigBase) -> PeFigures:
    return config._figures()
