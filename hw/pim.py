"""PimBank and PimChannel: DRAM banks with near-bank multiply-accumulate lanes for GEMV.

A :class:`PimBank` is one DRAM bank: ``rows`` × ``cols`` signed words, a row buffer, the
commands ACT / PRE / RD / WR with the timing constraints tRCD, tRAS, tRP and tCCD, and
``lanes`` multiply-accumulate lanes beside the bank that multiply one column burst of the open
row with a chunk of a broadcast input vector, reduce it with an adder tree and add it into one
of ``lanes`` accumulators (the near-bank MAC of SK hynix GDDR6-AiM, JSSC 2023; Samsung
HBM-PIM, ISSCC 2021, puts 16 lanes per two banks). With ``dual_row_buffer`` the bank has a
second row buffer for the lanes, so ordinary RD / WR traffic proceeds on buffer 0 while the
lanes compute on buffer 1 (NeuPIMs, ASPLOS 2024). A :class:`PimChannel` is ``banks`` banks
behind one command port; a command marked ``all_banks`` drives every bank at once (all-bank
mode), so one ACT / MAC stream computes ``banks`` slices of a GEMV in parallel.

Like a DRAM device, a bank never waits: the controller issues each command when its timing
allows. The block checks every command; one that breaks a timing constraint or the row-buffer
protocol is rejected (it changes nothing) and flagged on ``err``. Port ``ok`` tells the
controller, from registers, which command classes the timing allows in the current cycle.

GEMV ``y = W·x`` (``W`` of shape ``out_rows × in_cols``): :func:`gemv_program` lays W's rows
across DRAM rows and lists the commands; :func:`gemv_cycles` is the exact cycle count of that
program, vectorized over numpy arrays for the cost model; :meth:`PimBankConfig.cycles` and
:meth:`PimChannelConfig.cycles` evaluate it for one GEMV that fits the block. W rows shorter
than a DRAM row may be packed ``pack`` to a row (several KV vectors per row, NeuPIMs / AiM),
their MACs streamed back to back with no ACT / PRE between them.

The timing parameters are integer cycles of the command clock (the counters' widths); a
DRAM's timing is given in ns (:class:`DramTiming`, :data:`DRAM_TIMINGS`) and converted at the
clock that runs it by :func:`dram_cycles` (ceiling), which the cost model uses too
(:meth:`PimParams.at_clock`).

The parameters are declared once, in :class:`PimParams` (a bank) and :class:`PimChannelConfig`
(``banks`` more); their ranges admit real DRAM sizes, so the cost model's PIM group extends
:class:`PimChannelConfig` with its own keys. Configs are checked without elaboration; tests
simulate small banks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import param, validate
from .pe.arith import tree_sum
from ..arith import ceil_div


def _index_bits(n: int) -> int:
    """Width of a field that addresses ``n`` things (at least 1 bit)."""
    return max(1, (n - 1).bit_length())


class PimOp(enum.Enum, shape=3):
    """Command opcodes."""

    ACT = 0    #: open ``row`` in row buffer ``buf``
    PRE = 1    #: close row buffer ``buf`` (a no-op when it is closed, as in JEDEC DRAM)
    RD = 2     #: read burst ``col`` of row buffer 0: ``lanes`` words on ``o`` one cycle later
    WR = 3     #: write ``data`` to burst ``col`` of the row open in buffer 0 (and the array)
    LDX = 4    #: load ``data`` into chunk ``col`` of the input-vector buffer
    MAC = 5    #: accumulator ``acc`` (+)= burst ``col`` of the PIM row buffer · x chunk ``col``
    RDACC = 6  #: read all accumulators: on ``y`` one cycle later


class PimError(enum.Enum, shape=4):
    """Why a command was rejected, in the order the block checks."""

    NONE = 0
    RANGE = 1     #: row, column, accumulator, buffer or bank index outside the block, or bad opcode
    OPEN = 2      #: ACT to a row buffer that holds an open row
    CONFLICT = 3  #: ACT of a row already open in the other row buffer
    CLOSED = 4    #: RD / WR / MAC on a row buffer with no open row
    T_RP = 5      #: ACT sooner than t_rp after PRE
    T_RAS = 6     #: PRE sooner than t_ras after ACT
    T_RCD = 7     #: column command sooner than t_rcd after ACT
    T_CCD = 8     #: column command sooner than t_ccd after the previous one on the same buffer


def gemv_cycles(*, out_rows, in_cols, banks, lanes, cols, t_rcd, t_rp, t_ras, t_ccd, pack=1) -> np.ndarray:
    """Cycles of the GEMV program of :func:`gemv_program` for W of ``out_rows × in_cols`` on
    ``banks`` banks in all-bank mode (``banks = 1``: a :class:`PimBank`), from its first command
    to its last accumulator readout on ``y``; the banks start idle.

    Every argument broadcasts (numpy arrays or scalars, e.g. ``(designs, 1, 1)`` parameter
    columns against ``(steps, rows)`` shapes). Computed in float64 with exact integer
    arithmetic (floor division, no rounding) and returned as float64: exact while the counts
    stay below 2**53. The preconditions are those :class:`PimParams` checks: ``cols`` a
    multiple of ``lanes`` and ``t_ccd <= t_rcd + t_rp + 1``. The bank's row count does not
    enter: whether W fits is :meth:`PimParams.gemv_fits`.

    With ``b_s`` the bursts of segment ``s`` (``S = ceil(in_cols / cols)`` segments, ``b_s =
    cols / lanes`` but the last), ``M_b = ceil(out_rows / banks)`` W rows per bank, ``G =
    ceil(M_b / lanes)`` accumulator groups, ``R = banks`` readouts per group and ``P(b) =
    max(t_rcd + (b - 1)·t_ccd + 1, t_ras)`` cycles from ACT to PRE of a row::

        cycles = b_0 + M_b·Σ_s P(b_s) + (M_b - G)·S·t_rp
               + G·Σ_{s≥1} max(1 + b_s, t_rp)
               + (G - 1)·max(1 + R + [S > 1]·b_0, t_rp) + R + 1

    ``b_0`` loads x; each DRAM row costs ``P(b) + t_rp`` (the row cycle, tRC ≥ tRAS + tRP);
    the gaps between segments hold the next x chunks (one cycle per burst, then ACT), the gaps
    between groups the readouts (and the x reload when ``S > 1``); the last readout appears one
    cycle after it is issued.

    Packed rows (``pack = p > 1``, where a W row fits one DRAM row, ``S = 1``; ignored where
    ``S > 1``): each DRAM row holds ``p`` W rows of ``v = ceil(in_cols / lanes)`` bursts, and the
    MACs of a row's ``p`` vectors follow each other with no ACT / PRE between them (the layout of
    :func:`peforge.hw.golden.pim_layout`). A group holds ``q = (lanes // p)·p`` W rows, so a DRAM
    row never spans two groups: ``G = ceil(M_b / q)``, ``r = M_b - (G - 1)·q`` rows in the last
    group, ``F = (G - 1)·(lanes // p) + floor(r / p)`` full DRAM rows, ``e = r mod p`` vectors
    in a last partial one, ``D = F + [e > 0]`` DRAM rows per bank::

        cycles = p·v + F·P(p·v) + [e > 0]·P(e·v) + (D - G)·t_rp
               + (G - 1)·max(1 + R, t_rp) + R + 1

    (x is loaded into each of the ``p`` slots once). With ``p = 1`` this is the formula above
    with ``S = 1``. The caller keeps ``p <= lanes`` and ``p·v <= cols / lanes``
    (:func:`max_pack`).
    """
    out_rows, in_cols, banks, lanes, cols, t_rcd, t_rp, t_ras, t_ccd, pack = (
        np.asarray(v, dtype=np.float64)
        for v in (out_rows, in_cols, banks, lanes, cols, t_rcd, t_rp, t_ras, t_ccd, pack))

    def row_open(b):  # ACT to PRE of a DRAM row holding b bursts: its MACs, or tRAS
        return np.maximum(t_rcd + (b - 1) * t_ccd + 1, t_ras)

    def gap(b):  # PRE to ACT between segments: b LDX then ACT, or tRP
        return np.maximum(1 + b, t_rp)

    bursts = cols // lanes
    full, rest = np.divmod(in_cols, cols)
    segments = full + (rest > 0)
    last = np.where(rest > 0, ceil_div(rest, lanes), bursts)  # bursts of the last segment
    first = np.where(full >= 1, bursts, last)                 # b_0
    # S - 1 segments of a whole row and the last one
    sum_open = (segments - 1) * row_open(bursts) + row_open(last)
    sum_gaps = (segments - 1) * gap(bursts) + gap(last) - gap(first)
    rows_per_bank = ceil_div(out_rows, banks)
    groups = ceil_div(rows_per_bank, lanes)
    reload = np.where(segments > 1, first, 0.0)
    readouts = banks + 1
    unpacked = (first + rows_per_bank * sum_open + (rows_per_bank - groups) * segments * t_rp
                + groups * sum_gaps + (groups - 1) * np.maximum(1 + banks + reload, t_rp) + readouts)
    # Packed rows (S = 1): a group is lanes // p whole DRAM rows of p vectors of `last` bursts.
    p = np.where(segments > 1, 1.0, pack)
    rows_per_group = lanes // p
    per_group = rows_per_group * p
    p_groups = ceil_div(rows_per_bank, per_group)
    rest = rows_per_bank - (p_groups - 1) * per_group
    whole = (p_groups - 1) * rows_per_group + rest // p
    tail = rest % p
    dram_rows = whole + (tail > 0)
    packed = (p * last + whole * row_open(p * last) + np.where(tail > 0, row_open(tail * last), 0.0)
              + (dram_rows - p_groups) * t_rp + (p_groups - 1) * np.maximum(1 + banks, t_rp) + readouts)
    return np.where(segments > 1, unpacked, packed)


def max_pack(*, in_cols, lanes, cols) -> np.ndarray:
    """Most W rows of ``in_cols`` words one DRAM row of ``cols`` words holds for a packed GEMV
    (:func:`gemv_cycles`' ``pack``): ``min(lanes, (cols / lanes) // ceil(in_cols / lanes))``
    where a W row fits a DRAM row, else 1; vectorized. For head_dim a multiple of ``lanes``
    this is ``cols // head_dim`` (capped at ``lanes``: one accumulator per vector of a row)."""
    in_cols, lanes, cols = (np.asarray(v, dtype=np.float64) for v in (in_cols, lanes, cols))
    fits = (cols // lanes) // np.maximum(1.0, ceil_div(in_cols, lanes))
    return np.where(in_cols <= cols, np.maximum(1.0, np.minimum(lanes, fits)), 1.0)


def dram_cycles(ns, clock_mhz) -> np.ndarray:
    """Cycles of a ``clock_mhz`` clock that cover a DRAM timing of ``ns`` nanoseconds: the
    ceiling of ``ns · clock_mhz / 1000``, at least 1 (a constraint is never shortened; a
    product within 1e-9 of an integer counts as that integer, so 14 ns at 1000 MHz is 14
    cycles, not 15 from float rounding). Vectorized; returns int64. The one conversion both
    the RTL configs (:meth:`DramTiming.cycles`) and the cost model use."""
    exact = np.asarray(ns, dtype=np.float64) * np.asarray(clock_mhz, dtype=np.float64) / 1000.0
    return np.maximum(1, np.ceil(exact - 1e-9)).astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class DramTiming:
    """A DRAM device's row and column timing in nanoseconds (what datasheets and papers give),
    to be run by a PIM command clock: :meth:`cycles` converts it with :func:`dram_cycles`.

    Defaults are HBM2 as NeuPIMs (ASPLOS 2024) simulates it: tCK = 1 ns, tRCD = tRP = 14,
    tRAS = 34, tCCD_L = 2 cycles (:data:`DRAM_TIMINGS`).
    """

    t_rcd_ns: float = param(14.0, "ACT to RD/WR/MAC on the same row buffer (ns)", low=0.1, high=1000.0)
    t_rp_ns: float = param(14.0, "PRE to ACT on the same row buffer (ns)", low=0.1, high=1000.0)
    t_ras_ns: float = param(34.0, "ACT to PRE on the same row buffer (ns)", low=0.1, high=1000.0)
    t_ccd_ns: float = param(2.0, "column command to column command on the same row buffer (ns)",
                            low=0.1, high=1000.0)

    def __post_init__(self) -> None:
        validate(self)

    def cycles(self, clock_mhz: float, *, owner: str = "DramTiming") -> dict[str, int]:
        """``t_rcd``, ``t_rp``, ``t_ras``, ``t_ccd`` in cycles of ``clock_mhz``
        (:func:`dram_cycles`); ``ValueError`` naming ``owner``'s ns key when a count leaves the
        bank's counter range (:class:`PimParams`)."""
        out = {}
        for name in ("t_rcd", "t_rp", "t_ras", "t_ccd"):
            ns = getattr(self, f"{name}_ns")
            count = int(dram_cycles(ns, clock_mhz))
            spec = PimParams.__dataclass_fields__[name].metadata["spec"]
            if not spec.low <= count <= spec.high:
                raise ValueError(f"{owner}.{name}_ns={ns!r} is {count} cycles at clock_mhz={clock_mhz!r}; "
                                 f"the bank's counters allow {spec.allowed()} cycles")
            out[name] = count
        return out


#: Sourced DRAM timings (ns). NeuPIMs' HBM2 (ASPLOS 2024, Table 3 / its Ramulator config):
#: tCK 1 ns, CL = tRCD = tRP = 14, tRAS = 34, tCCD_S/L = 1/2 cycles. JEDEC-style HBM3 values
#: as Ramulator 2 ships them (``src/dram/impl/HBM3.cpp``, preset HBM3_2Gbps, tCK 1 ns: nRCD =
#: nRP = 7, nRAS = 17, nCCDL = 2), which Ramulator marks as still to be sourced: listed for
#: comparison, not used by the shipped design. DDR5-3200AN (Ramulator 2 preset, tCK 0.625 ns:
#: tRCD = tRP = 24, tRAS = 52, tCCD_L = 8 cycles).
DRAM_TIMINGS: dict[str, tuple[DramTiming, str]] = {
    "HBM2": (DramTiming(t_rcd_ns=14.0, t_rp_ns=14.0, t_ras_ns=34.0, t_ccd_ns=2.0),
             "NeuPIMs (ASPLOS 2024) HBM2 at tCK = 1 ns"),
    "HBM3": (DramTiming(t_rcd_ns=7.0, t_rp_ns=7.0, t_ras_ns=17.0, t_ccd_ns=2.0),
             "Ramulator 2 HBM3_2Gbps preset at tCK = 1 ns (marked unsourced there)"),
    "DDR5": (DramTiming(t_rcd_ns=15.0, t_rp_ns=15.0, t_ras_ns=32.5, t_ccd_ns=5.0),
             "Ramulator 2 DDR5-3200AN preset, 24 / 24 / 52 / 8 cycles at tCK = 0.625 ns"),
}


@dataclass(frozen=True, kw_only=True)
class PimParams:
    """The parameters of one bank, shared by :class:`PimBankConfig`, :class:`PimChannelConfig`
    and the cost model's PIM design group (which extends :class:`PimChannelConfig`).

    The ranges admit real DRAM banks (the generator is simulated at small sizes): HBM2 and
    HBM3 8 Gb dies have 32768 rows per bank, a DDR5 16 Gb die 65536; an HBM2 / HBM3 channel
    has 2 pseudo channels × 4 bank groups × 4 banks, a DDR5 die 8 × 4 (Ramulator 2 organization
    presets, ``src/dram/impl/{HBM2,HBM3,DDR5}.cpp``, after JESD235 / JESD238 / JESD79-5).
    Timing is in command-clock cycles, so it grows with the clock: DDR5-3200 has tRCD = tRP =
    24, tRAS = 52, tCCD_L = 8 and tCCD_L_WR = 16 (32 with a x4 read-modify-write) cycles
    (Ramulator 2 DDR5-3200AN preset); the same 32.5 ns of tRAS are ≈ 143 cycles at 8800 MT/s,
    hence 8-bit timers (up to 255) and tCCD up to 64. Defaults are a small bank with NeuPIMs'
    HBM2 timing at tCK = 1 ns (tRCD = tRP = 14, tRAS = 34, tCCD_L = 2 cycles; NeuPIMs,
    ASPLOS 2024, see :data:`DRAM_TIMINGS`); :meth:`at_clock` builds a config from a DRAM's ns
    timing at any clock.
    """

    rows: int = param(64, "DRAM rows in a bank (HBM2/3: 32768, DDR5 16 Gb: 65536)", low=2, high=1 << 16)
    cols: int = param(32, "words per DRAM row, a multiple of lanes (HBM: 1 KB = 512 16-bit words)",
                      low=1, high=1 << 16)
    word_bits: int = param(16, "word width, signed (bits)", low=2, high=32)
    lanes: int = param(16, "multiply-accumulate lanes = words per column burst (AiM, HBM-PIM: 16)",
                       choices=(1, 2, 4, 8, 16, 32, 64))
    dual_row_buffer: bool = param(False, "second row buffer for the MAC lanes, so RD/WR proceed during a GEMV (NeuPIMs)")
    t_rcd: int = param(14, "ACT to RD/WR/MAC on the same row buffer (cycles)", low=1, high=255)
    t_rp: int = param(14, "PRE to ACT on the same row buffer (cycles)", low=1, high=255)
    t_ras: int = param(34, "ACT to PRE on the same row buffer (cycles)", low=1, high=255)
    t_ccd: int = param(2, "column command to column command on the same row buffer (cycles); "
                       "at most t_rcd + t_rp + 1", low=1, high=64)

    def __post_init__(self) -> None:
        validate(self)
        name = type(self).__name__
        if self.cols % self.lanes:
            raise ValueError(f"{name}.cols={self.cols!r} must be a multiple of lanes={self.lanes!r}")
        if self.t_ccd > self.t_rcd + self.t_rp + 1:
            # Then tCCD alone would space MACs of consecutive rows, which no DRAM does, and
            # gemv_cycles() would not hold.
            raise ValueError(f"{name}.t_ccd={self.t_ccd!r} must not exceed t_rcd + t_rp + 1 = "
                             f"{self.t_rcd + self.t_rp + 1}")

    # --- derived sizes -------------------------------------------------------------------------

    @property
    def bursts(self) -> int:
        """Column bursts per DRAM row: the column address range."""
        return self.cols // self.lanes

    @property
    def row_buffers(self) -> int:
        return 2 if self.dual_row_buffer else 1

    @property
    def pim_buffer(self) -> int:
        """The row buffer MAC reads: 1 with ``dual_row_buffer``, else the one buffer 0."""
        return self.row_buffers - 1

    @property
    def accumulators(self) -> int:
        """Accumulators per bank: ``lanes``, so one RDACC returns them as one burst."""
        return self.lanes

    @property
    def acc_bits(self) -> int:
        """Accumulator width (bits): a GEMV reads each word of the bank at most once, so a sum
        of ``rows * cols`` products of two ``word_bits`` words fits without overflow."""
        return 2 * self.word_bits + (self.rows * self.cols - 1).bit_length()

    # --- layouts of the ports ------------------------------------------------------------------

    def burst_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.word_bits), self.lanes)

    def bank_cmd_fields(self) -> dict:
        return {
            "op": PimOp,
            "buf": 1,
            "row": _index_bits(self.rows),
            "col": _index_bits(self.bursts),
            "acc": _index_bits(self.accumulators),
            "first": 1,
            "data": self.burst_layout(),
        }

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"data": self.burst_layout()})

    def y_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": data.ArrayLayout(signed(self.acc_bits), self.accumulators)})

    def ok_layout(self) -> data.StructLayout:
        """Per row buffer, one bit each: ACT, PRE, column command allowed by timing now."""
        n = self.row_buffers
        return data.StructLayout({"act": n, "pre": n, "col": n})

    # --- GEMV geometry and schedule ------------------------------------------------------------

    def segments(self, in_cols: int) -> list[int]:
        """Bursts per DRAM row of one W row: W row ``i`` spans ``len(...)`` DRAM rows (segments)
        of ``cols`` words; the last one holds the rest, zero-padded to whole bursts."""
        full, rest = divmod(in_cols, self.cols)
        return [self.bursts] * full + ([ceil_div(rest, self.lanes)] if rest else [])

    def max_pack(self, in_cols: int) -> int:
        """Most W rows of ``in_cols`` words a DRAM row holds in the packed layout (:func:`max_pack`)."""
        return int(max_pack(in_cols=in_cols, lanes=self.lanes, cols=self.cols))

    def dram_rows(self, out_rows: int, in_cols: int, banks: int = 1, pack: int = 1) -> int:
        """DRAM rows per bank that W of ``out_rows × in_cols`` takes as
        :func:`peforge.hw.golden.pim_layout` lays it out: ``M_b·S``, or packed ``D`` (see
        :func:`gemv_cycles`); ``ValueError`` for a ``pack`` the layout cannot hold."""
        if not 1 <= pack <= self.max_pack(in_cols) and pack != 1:
            raise ValueError(f"pack={pack!r} W rows of {in_cols} words do not fit one DRAM row of {self.cols} "
                             f"words with {self.lanes} accumulators; allowed 1..{self.max_pack(in_cols)}")
        m_b = ceil_div(out_rows, banks)
        if pack == 1:
            return m_b * len(self.segments(in_cols))
        per_group = (self.lanes // pack) * pack
        groups = ceil_div(m_b, per_group)
        return (groups - 1) * (self.lanes // pack) + ceil_div(m_b - (groups - 1) * per_group, pack)

    def gemv_fits(self, out_rows: int, in_cols: int, banks: int = 1, pack: int = 1) -> bool:
        """Whether W of ``out_rows × in_cols`` fits ``banks`` banks of ``rows`` DRAM rows as
        :func:`peforge.hw.golden.pim_layout` lays it out (:meth:`dram_rows` per bank)."""
        return out_rows >= 1 and in_cols >= 1 and self.dram_rows(out_rows, in_cols, banks, pack) <= self.rows

    @classmethod
    def at_clock(cls, timing: DramTiming, clock_mhz: float, **params) -> "PimParams":
        """The block run at ``clock_mhz`` on a DRAM of ``timing``: its integer cycle parameters
        from :meth:`DramTiming.cycles`, the other parameters from ``params``."""
        return cls(**params, **timing.cycles(clock_mhz, owner=cls.__name__))

    def _gemv_cycles(self, out_rows: int, in_cols: int, banks: int, pack: int = 1) -> int:
        if not self.gemv_fits(out_rows, in_cols, banks, pack):
            raise ValueError(f"GEMV {out_rows}x{in_cols} does not fit {banks} bank(s) of "
                             f"{self.rows} rows x {self.cols} words")
        return int(gemv_cycles(out_rows=out_rows, in_cols=in_cols, banks=banks, lanes=self.lanes,
                               cols=self.cols, t_rcd=self.t_rcd, t_rp=self.t_rp, t_ras=self.t_ras,
                               t_ccd=self.t_ccd, pack=pack))


@dataclass(frozen=True, kw_only=True)
class PimBankConfig(PimParams):
    """Parameters of :class:`PimBank`."""

    def cmd_layout(self) -> data.StructLayout:
        return data.StructLayout(self.bank_cmd_fields())

    def err_layout(self) -> data.StructLayout:
        return data.StructLayout({"code": PimError})

    def cycles(self, out_rows: int, in_cols: int, pack: int = 1) -> int:
        """Cycles of the GEMV program of :func:`gemv_program` for W of ``out_rows × in_cols``
        (``pack`` W rows per DRAM row), from its first command to its last accumulator readout
        on ``y``; the bank starts idle: :func:`gemv_cycles` with ``banks = 1``. ``ValueError`` if
        W does not fit the bank."""
        return self._gemv_cycles(out_rows, in_cols, 1, pack)


@dataclass(frozen=True, kw_only=True)
class PimChannelConfig(PimParams):
    """Parameters of :class:`PimChannel`: ``banks`` plus the bank's."""

    banks: int = param(4, "banks in the channel, driven together in all-bank mode (HBM2/3: 32, NeuPIMs: 16)",
                       low=1, high=64)

    @property
    def bank(self) -> PimBankConfig:
        """The config of each bank."""
        return PimBankConfig(**{k: getattr(self, k) for k in PimBankConfig.__dataclass_fields__})

    @property
    def channel(self) -> PimChannelConfig:
        """These parameters as a plain :class:`PimChannelConfig` (the block's own config, its
        hash and Verilog), from a subclass that adds keys the block does not have."""
        return PimChannelConfig(**{k: getattr(self, k) for k in PimChannelConfig.__dataclass_fields__})

    def cmd_layout(self) -> data.StructLayout:
        return data.StructLayout({**self.bank_cmd_fields(), "bank": _index_bits(self.banks), "all_banks": 1})

    def err_layout(self) -> data.StructLayout:
        """``code``: the rejecting bank's reason (the lowest such bank), ``banks``: which banks rejected."""
        return data.StructLayout({"code": PimError, "banks": self.banks})

    def ok_layout_channel(self) -> data.ArrayLayout:
        return data.ArrayLayout(self.ok_layout(), self.banks)

    def cycles(self, out_rows: int, in_cols: int, pack: int = 1) -> int:
        """Cycles of a GEMV in all-bank mode: W's rows split into ``banks`` contiguous blocks of
        ``ceil(out_rows / banks)``, one per bank, all banks run the same ACT / MAC / PRE stream;
        each accumulator group is read out bank by bank: :func:`gemv_cycles` with ``R = banks``
        (``pack`` W rows per DRAM row). ``ValueError`` if W does not fit the banks."""
        return self._gemv_cycles(out_rows, in_cols, self.banks, pack)



# --- programs: the command lists a controller issues ------------------------------------------


@dataclass(frozen=True)
class PimCommand:
    """One command; fields a command does not use are ignored by the block."""

    op: PimOp
    buf: int = 0
    row: int = 0
    col: int = 0
    acc: int = 0
    first: bool = False
    data: tuple[int, ...] = ()
    bank: int = 0
    all_banks: bool = False

    def fields(self, lanes: int) -> dict:
        """Field values of the command port (``data`` padded to ``lanes`` words)."""
        words = list(self.data) + [0] * (lanes - len(self.data))
        return {"op": self.op, "buf": self.buf, "row": self.row, "col": self.col, "acc": self.acc,
                "first": int(self.first), "data": words, "bank": self.bank, "all_banks": int(self.all_banks)}


@dataclass
class GemvProgram:
    """Commands of a GEMV and where each readout's accumulators go: ``readouts[k][j]`` is the
    output row of accumulator ``j`` of the ``k``-th RDACC, or -1 (an unused accumulator)."""

    commands: list[PimCommand] = field(default_factory=list)
    readouts: list[list[int]] = field(default_factory=list)

    def gather(self, values: Sequence[Sequence[int]], out_rows: int) -> list[int]:
        """``y`` from the accumulator bursts read out, in RDACC order."""
        y = [0] * out_rows
        for rows, burst in zip(self.readouts, values):
            for row, value in zip(rows, burst):
                if row >= 0:
                    y[row] = int(value)
        return y


def gemv_program(cfg: PimParams, x: Sequence[int], out_rows: int, pack: int = 1) -> GemvProgram:
    """The command list of ``y = W·x`` with W stored as :func:`peforge.hw.golden.pim_layout` lays
    it out (bank ``k`` holds W rows ``k·M_b .. k·M_b + M_b - 1``; local row ``i``, segment
    ``s`` in DRAM row ``i·S + s``; packed: see :func:`_packed_program`).

    For each group of ``lanes`` local rows: for each segment, load its x chunks (once for the
    whole GEMV when ``S = 1``), then per row ACT, one MAC per burst (the first clears the
    accumulator), PRE; then RDACC of every bank. Commands are issued in order, each as soon as
    timing allows; ACT / PRE / MAC / LDX go to all banks of a channel.
    """
    if pack != 1:
        cfg.dram_rows(out_rows, len(x), getattr(cfg, "banks", 1), pack)  # checks pack
        return _packed_program(cfg, x, out_rows, pack)
    banks = getattr(cfg, "banks", 1)
    lanes, cols = cfg.lanes, cfg.cols
    b = cfg.segments(len(x))
    n_seg = len(b)
    m_b = ceil_div(out_rows, banks)
    xpad = np.zeros(n_seg * cols, dtype=np.int64)
    xpad[:len(x)] = np.asarray(x, dtype=np.int64)
    pim = cfg.pim_buffer
    program = GemvProgram()
    cmds = program.commands
    for g in range(ceil_div(m_b, cfg.accumulators)):
        local = range(g * cfg.accumulators, min(m_b, (g + 1) * cfg.accumulators))
        for s in range(n_seg):
            if g == 0 or n_seg > 1:
                for j in range(b[s]):
                    chunk = xpad[s * cols + j * lanes: s * cols + (j + 1) * lanes]
                    cmds.append(PimCommand(PimOp.LDX, col=j, data=tuple(int(v) for v in chunk), all_banks=True))
            for i in local:
                cmds.append(PimCommand(PimOp.ACT, buf=pim, row=i * n_seg + s, all_banks=True))
                for j in range(b[s]):
                    cmds.append(PimCommand(PimOp.MAC, buf=pim, col=j, acc=i - local.start,
                                           first=(s == 0 and j == 0), all_banks=True))
                cmds.append(PimCommand(PimOp.PRE, buf=pim, all_banks=True))
        for k in range(banks):
            cmds.append(PimCommand(PimOp.RDACC, bank=k))
            rows = [k * m_b + i if k * m_b + i < out_rows else -1 for i in local]
            program.readouts.append(rows + [-1] * (cfg.accumulators - len(rows)))
    return program


def _readout(program: GemvProgram, banks: int, m_b: int, out_rows: int, local: range, accumulators: int) -> None:
    for k in range(banks):
        program.commands.append(PimCommand(PimOp.RDACC, bank=k))
        rows = [k * m_b + i if k * m_b + i < out_rows else -1 for i in local]
        program.readouts.append(rows + [-1] * (accumulators - len(rows)))


def _packed_program(cfg: PimParams, x: Sequence[int], out_rows: int, pack: int) -> GemvProgram:
    """:func:`gemv_program` for ``pack`` W rows (vectors) per DRAM row: vector slot ``j`` of a
    row holds its ``v = ceil(in_cols / lanes)`` bursts from burst ``j·v``, and x is loaded into
    every slot once. A group is ``lanes // pack`` DRAM rows (``q = (lanes // pack)·pack``
    vectors, one accumulator each); per DRAM row ACT, the MACs of its vectors back to back (the
    first of each vector clears its accumulator), PRE; then RDACC of every bank."""
    banks = getattr(cfg, "banks", 1)
    lanes, v = cfg.lanes, ceil_div(len(x), cfg.lanes)
    xpad = np.zeros(v * lanes, dtype=np.int64)
    xpad[:len(x)] = np.asarray(x, dtype=np.int64)
    m_b = ceil_div(out_rows, banks)
    rows_per_group = lanes // pack
    per_group = rows_per_group * pack
    pim = cfg.pim_buffer
    program = GemvProgram()
    cmds = program.commands
    for slot in range(pack):
        for j in range(v):
            cmds.append(PimCommand(PimOp.LDX, col=slot * v + j, all_banks=True,
                                   data=tuple(int(w) for w in xpad[j * lanes:(j + 1) * lanes])))
    for g in range(ceil_div(m_b, per_group)):
        local = range(g * per_group, min(m_b, (g + 1) * per_group))
        for d in range(ceil_div(len(local), pack)):
            cmds.append(PimCommand(PimOp.ACT, buf=pim, row=g * rows_per_group + d, all_banks=True))
            for slot in range(min(pack, len(local) - d * pack)):
                for j in range(v):
                    cmds.append(PimCommand(PimOp.MAC, buf=pim, col=slot * v + j, acc=d * pack + slot,
                                           first=(j == 0), all_banks=True))
            cmds.append(PimCommand(PimOp.PRE, buf=pim, all_banks=True))
        _readout(program, banks, m_b, out_rows, local, cfg.accumulators)
    return program


def store_program(cfg: PimParams, image: np.ndarray, *, bank: int = 0, first_row: int = 0) -> list[PimCommand]:
    """Commands that write ``image`` (DRAM rows × ``cols`` words) into ``bank`` from ``first_row``
    through row buffer 0: per row ACT, one WR per burst, PRE."""
    cmds = []
    lanes = cfg.lanes
    for r, words in enumerate(np.asarray(image, dtype=np.int64)):
        cmds.append(PimCommand(PimOp.ACT, buf=0, row=first_row + r, bank=bank))
        for j in range(cfg.bursts):
            cmds.append(PimCommand(PimOp.WR, col=j, data=tuple(int(v) for v in words[j * lanes:(j + 1) * lanes]),
                                   bank=bank))
        cmds.append(PimCommand(PimOp.PRE, buf=0, bank=bank))
    return cmds


# --- RTL -------------------------------------------------------------------------------------


def _err_signature(layout) -> wiring.Signature:
    return wiring.Signature({"valid": Out(1), "payload": Out(layout)})


class PimBank(wiring.Component):
    """One DRAM bank with near-bank MAC lanes.

    Ports
    -----
    i : stream of commands ``{op, buf, row, col, acc, first, data}`` (:class:`PimOp`), one per
        cycle; ``ready`` is always 1. A command takes effect in the cycle it is offered, or is
        rejected.
    o : ``valid`` for one cycle with ``payload.data`` (``lanes`` words), one cycle after a RD.
    y : ``valid`` for one cycle with ``payload.acc`` (the ``lanes`` accumulators, ``acc_bits``
        each), one cycle after a RDACC; it includes every MAC issued before the RDACC.
    err : ``valid`` for one cycle with ``payload.code`` (:class:`PimError`), one cycle after a
        rejected command. A rejected command changes no state and produces no output.
    ok : per row buffer, whether the timing allows ACT (tRP), PRE (tRAS) and a column command
        (tRCD, tCCD) in the current cycle; from registers only.
    """

    def __init__(self, config: PimBankConfig):
        self.config = config
        super().__init__({
            "i": In(stream.Signature(config.cmd_layout())),
            "o": Out(_err_signature(config.out_layout())),
            "y": Out(_err_signature(config.y_layout())),
            "err": Out(_err_signature(config.err_layout())),
            "ok": Out(config.ok_layout()),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        nbuf, pim = cfg.row_buffers, cfg.pim_buffer
        burst_bits = cfg.lanes * cfg.word_bits
        burst = cfg.burst_layout()
        cmd = self.i.payload
        valid = self.i.valid
        m.d.comb += self.i.ready.eq(1)

        # The array; each row buffer is the data register of a read port, loaded by ACT.
        # Buffer 0's port is transparent to the write port, so a WR updates the array and the
        # open row together (write-through: the array holds what a PRE would restore).
        m.submodules.array = array = memory.Memory(shape=unsigned(cfg.cols * cfg.word_bits),
                                                    depth=cfg.rows, init=[])
        wport = array.write_port(granularity=burst_bits)
        rports = [array.read_port(transparent_for=[wport])]
        if nbuf == 2:
            rports.append(array.read_port())

        is_open = Signal(nbuf)
        open_row = [Signal(range(cfg.rows), name=f"open_row{b}") for b in range(nbuf)]
        timers = {}
        for b in range(nbuf):
            for name, limit in (("rcd", cfg.t_rcd), ("ras", cfg.t_ras), ("rp", cfg.t_rp), ("ccd", cfg.t_ccd)):
                timer = Signal(range(limit), name=f"{name}{b}")
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                timers[name, b] = timer
            m.d.comb += [
                self.ok.act[b].eq(timers["rp", b] == 0),
                self.ok.pre[b].eq(timers["ras", b] == 0),
                self.ok.col[b].eq((timers["rcd", b] == 0) & (timers["ccd", b] == 0)),
            ]

        op = cmd.op
        is_act, is_pre = op == PimOp.ACT, op == PimOp.PRE
        is_rd, is_wr, is_mac = op == PimOp.RD, op == PimOp.WR, op == PimOp.MAC
        is_ldx, is_rdacc = op == PimOp.LDX, op == PimOp.RDACC
        is_col = is_rd | is_wr | is_mac
        # The row buffer a command addresses: ACT / PRE name it, RD / WR use 0, MAC the PIM buffer.
        target = [Signal(name=f"target{b}") for b in range(nbuf)]
        for b in range(nbuf):
            m.d.comb += target[b].eq(Mux(is_act | is_pre, cmd.buf == b,
                                         (is_rd | is_wr) & (b == 0) | is_mac & (b == pim)))

        def any_target(cond):
            return Cat(target[b] & cond(b) for b in range(nbuf)).any()

        bad_op = ~(is_act | is_pre | is_col | is_ldx | is_rdacc)
        out_of_range = (bad_op
                        | (is_act | is_pre) & (cmd.buf >= nbuf)
                        | is_act & (cmd.row >= cfg.rows)
                        | (is_col | is_ldx) & (cmd.col >= cfg.bursts)
                        | is_mac & (cmd.acc >= cfg.accumulators))
        conflict = Signal()
        if nbuf == 2:
            m.d.comb += conflict.eq(is_act & Cat(
                (cmd.buf == b) & is_open[1 - b] & (open_row[1 - b] == cmd.row) for b in range(2)).any())
        checks = [
            (PimError.RANGE, out_of_range),
            (PimError.OPEN, is_act & any_target(lambda b: is_open[b])),
            (PimError.CONFLICT, conflict),
            (PimError.CLOSED, is_col & any_target(lambda b: ~is_open[b])),
            (PimError.T_RP, is_act & any_target(lambda b: timers["rp", b] != 0)),
            (PimError.T_RAS, is_pre & any_target(lambda b: is_open[b] & (timers["ras", b] != 0))),
            (PimError.T_RCD, is_col & any_target(lambda b: timers["rcd", b] != 0)),
            (PimError.T_CCD, is_col & any_target(lambda b: timers["ccd", b] != 0)),
        ]
        code = Signal(PimError)
        with m.If(valid):
            for i, (reason, cond) in enumerate(checks):
                with (m.If if i == 0 else m.Elif)(cond):
                    m.d.comb += code.eq(reason)
        issue = Signal()
        m.d.comb += issue.eq(valid & (code == PimError.NONE))
        m.d.sync += [self.err.valid.eq(code != PimError.NONE), self.err.payload.code.eq(code)]

        # Row buffers: ACT opens, PRE closes; both start their timers.
        for b in range(nbuf):
            rport = rports[b]
            refresh = issue & target[b] & (is_act | is_wr)
            m.d.comb += [rport.en.eq(refresh), rport.addr.eq(Mux(is_act, cmd.row, open_row[b]))]
            with m.If(issue & target[b] & is_act):
                m.d.sync += [is_open[b].eq(1), open_row[b].eq(cmd.row),
                             timers["rcd", b].eq(cfg.t_rcd - 1), timers["ras", b].eq(cfg.t_ras - 1)]
            with m.If(issue & target[b] & is_pre & is_open[b]):
                m.d.sync += [is_open[b].eq(0), timers["rp", b].eq(cfg.t_rp - 1)]
            with m.If(issue & target[b] & is_col):
                m.d.sync += timers["ccd", b].eq(cfg.t_ccd - 1)

        def burst_of(value):
            return burst(value.word_select(cmd.col, burst_bits))

        # RD and WR through row buffer 0.
        m.d.sync += self.o.valid.eq(issue & is_rd)
        with m.If(issue & is_rd):
            m.d.sync += self.o.payload.data.eq(burst_of(rports[0].data))
        m.d.comb += [
            wport.addr.eq(open_row[0]),
            wport.data.eq(Cat([cmd.data.as_value()] * cfg.bursts)),
            wport.en.eq(Cat((issue & is_wr & (cmd.col == j)) for j in range(cfg.bursts))),
        ]

        # The input-vector buffer and the MAC lanes.
        xbuf = Signal(cfg.cols * cfg.word_bits)
        with m.If(issue & is_ldx):
            m.d.sync += xbuf.word_select(cmd.col, burst_bits).eq(cmd.data.as_value())
        w_burst, x_burst = burst_of(rports[pim].data), burst_of(xbuf)
        dot = Signal(signed(2 * cfg.word_bits + cfg.lanes.bit_length()))
        m.d.comb += dot.eq(tree_sum([w_burst[k] * x_burst[k] for k in range(cfg.lanes)]))
        accs = Signal(data.ArrayLayout(signed(cfg.acc_bits), cfg.accumulators))
        for k in range(cfg.accumulators):
            with m.If(issue & is_mac & (cmd.acc == k)):
                m.d.sync += accs[k].eq(Mux(cmd.first, 0, accs[k]) + dot)
        m.d.sync += self.y.valid.eq(issue & is_rdacc)
        with m.If(issue & is_rdacc):
            m.d.sync += self.y.payload.acc.eq(accs)
        return m


class PimChannel(wiring.Component):
    """``banks`` :class:`PimBank` behind one command port (all-bank mode).

    Ports
    -----
    i : stream of bank commands plus ``bank`` and ``all_banks``; with ``all_banks`` the command
        goes to every bank (RD and RDACC may not: RANGE), else to bank ``bank``. ``ready`` is 1.
    o, y : the addressed bank's RD / RDACC output, one cycle after the command.
    err : ``valid`` one cycle after a command any bank rejected: ``payload.banks`` marks the
        rejecting banks, ``payload.code`` gives the reason of the lowest one (RANGE with no
        bank marked: the channel rejected the bank field itself). The other banks execute it.
    ok : the banks' ``ok``, bank 0 in the lowest bits.
    """

    def __init__(self, config: PimChannelConfig):
        self.config = config
        bank = config.bank
        super().__init__({
            "i": In(stream.Signature(config.cmd_layout())),
            "o": Out(_err_signature(bank.out_layout())),
            "y": Out(_err_signature(bank.y_layout())),
            "err": Out(_err_signature(config.err_layout())),
            "ok": Out(config.ok_layout_channel()),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        cmd = self.i.payload
        m.d.comb += self.i.ready.eq(1)
        single_only = (cmd.op == PimOp.RD) | (cmd.op == PimOp.RDACC)
        reject = Signal()
        m.d.comb += reject.eq(Mux(cmd.all_banks, single_only, cmd.bank >= cfg.banks))
        rejected = Signal()
        m.d.sync += rejected.eq(self.i.valid & reject)
        bank_bits = cfg.bank.cmd_layout().size

        banks = []
        for k in range(cfg.banks):
            bank = PimBank(cfg.bank)
            m.submodules[f"bank{k}"] = bank
            banks.append(bank)
            m.d.comb += [
                bank.i.valid.eq(self.i.valid & ~reject & (cmd.all_banks | (cmd.bank == k))),
                bank.i.payload.eq(cmd.as_value()[:bank_bits]),
                self.ok[k].eq(bank.ok),
            ]
        # Only the addressed bank answers RD / RDACC, so at most one output is valid.
        for port in ("o", "y"):
            out = getattr(self, port)
            m.d.comb += out.valid.eq(Cat(getattr(b, port).valid for b in banks).any())
            for b in banks:
                with m.If(getattr(b, port).valid):
                    m.d.comb += out.payload.eq(getattr(b, port).payload)
        m.d.comb += [
            self.err.valid.eq(rejected | Cat(b.err.valid for b in banks).any()),
            self.err.payload.banks.eq(Cat(b.err.valid for b in banks)),
        ]
        with m.If(rejected):
            m.d.comb += self.err.payload.code.eq(PimError.RANGE)
        # Lowest rejecting bank wins: assign in reverse so the lowest is the last assignment.
        for b in reversed(banks):
            with m.If(~rejected & b.err.valid):
                m.d.comb += self.err.payload.code.eq(b.err.payload.code)
        return m
