"""Shared helpers of the bit-exact golden models, and the golden models of PimBank / PimChannel.

``wrap`` and ``sign_extend`` are the integer helpers every golden model uses. Each PE kind's
golden model lives in its own module (``peforge.hw.pe.<kind>``: functions beside the RTL and
``<Config>.golden_gemm``); the systolic array's is ``peforge.hw.systolic.systolic_gemm``. Below
them here: :func:`pim_layout`, :func:`pim_gemv`, :class:`PimModel` and :func:`pim_schedule`.
Each takes integer arrays and returns what the RTL produces, wrapping at the block's register
widths exactly as the hardware does; tests (Amaranth and cocotb) and the cost model use these
functions, never a copy of the RTL's logic.
"""

from __future__ import annotations

import numpy as np

from ..arith import ceil_div


def wrap(values, bits: int | None) -> np.ndarray:
    """Two's-complement wrap of integers to ``bits`` (what a signed register of that width holds);
    ``bits=None``: no wrap (arbitrary precision, to check a width is sufficient)."""
    values = np.asarray(values, dtype=object)
    if bits is None:
        return values
    half = 1 << (bits - 1)
    return (values + half) % (1 << bits) - half


def sign_extend(codes, bits) -> np.ndarray:
    """Read the low ``bits`` of each code as a two's-complement number (``bits`` may be an array)."""
    codes = np.asarray(codes, dtype=np.int64)
    bits = np.asarray(bits, dtype=np.int64)
    low = codes & ((1 << bits) - 1)
    return np.where(low >> (bits - 1) & 1, low - (1 << bits), low)


# --- PimBank / PimChannel --------------------------------------------------------------------


def pim_layout(W, *, cols: int, banks: int = 1, pack: int = 1, lanes: int = 1) -> np.ndarray:
    """W (``out_rows × in_cols``) as stored for a PIM GEMV: ``(banks, M_b·S, cols)`` words.

    Bank ``k`` holds W rows ``k·M_b ..`` (``M_b = ceil(out_rows / banks)``); local row ``i``,
    segment ``s`` (words ``s·cols .. s·cols + cols - 1``) sits in DRAM row ``i·S + s``
    (``S = ceil(in_cols / cols)``). Missing rows and words are zeros.

    Packed (``pack = p > 1``, W rows of at most ``cols`` words, ``lanes`` accumulators): local
    row ``i`` of group ``g = i // q`` (``q = (lanes // p)·p``), ``w = i mod q``, sits in DRAM
    row ``g·(lanes // p) + w // p`` from word ``(w mod p)·v·lanes`` (``v = ceil(in_cols /
    lanes)`` bursts per vector): ``(banks, D, cols)`` words.
    """
    W = np.asarray(W, dtype=np.int64)
    out_rows, in_cols = W.shape
    if pack > 1:
        slot = ceil_div(in_cols, lanes) * lanes
        rows_per_bank = ceil_div(out_rows, banks)
        per_group = (lanes // pack) * pack
        groups = ceil_div(rows_per_bank, per_group)
        depth = (groups - 1) * (lanes // pack) + ceil_div(rows_per_bank - (groups - 1) * per_group, pack)
        image = np.zeros((banks, depth, cols), dtype=np.int64)
        for r in range(out_rows):
            k, i = divmod(r, rows_per_bank)
            g, w = divmod(i, per_group)
            start = (w % pack) * slot
            image[k, g * (lanes // pack) + w // pack, start:start + in_cols] = W[r]
        return image
    segments = ceil_div(in_cols, cols)
    rows_per_bank = ceil_div(out_rows, banks)
    padded = np.zeros((banks * rows_per_bank, segments * cols), dtype=np.int64)
    padded[:out_rows, :in_cols] = W
    return padded.reshape(banks, rows_per_bank * segments, cols)


def pim_gemv(W, x, acc_bits: int) -> list[int]:
    """PimBank / PimChannel GEMV: ``W·x`` summed in signed accumulators of ``acc_bits``."""
    y = np.dot(np.asarray(W, dtype=object), np.asarray(x, dtype=object))
    return [int(v) for v in wrap(y, acc_bits)]


class PimModel:
    """Command-level reference of PimBank / PimChannel: array contents, row buffers, timing
    rules, input-vector buffer and accumulators, command by command.

    :meth:`command` says what the block does with a command issued in a given cycle: the
    rejection reason (``None``: executed; the names of ``peforge.hw.pim.PimError``), the mask
    of rejecting banks, and the output (``("o", words)`` or ``("y", accumulators)``) that
    appears one cycle later. Timing rules, per bank and row buffer: ACT needs ``t_rp`` cycles
    after PRE, PRE (of an open buffer) ``t_ras`` after ACT, a column command (RD, WR, MAC)
    ``t_rcd`` after ACT and ``t_ccd`` after the previous column command. Checks run in the
    order RANGE, OPEN, CONFLICT, CLOSED, T_RP, T_RAS, T_RCD, T_CCD.
    """

    NEVER = -(1 << 40)

    def __init__(self, *, rows: int, cols: int, word_bits: int, lanes: int, dual_row_buffer: bool,
                 t_rcd: int, t_rp: int, t_ras: int, t_ccd: int, banks: int = 1, channel: bool = False):
        self.rows, self.cols, self.lanes = rows, cols, lanes
        self.bursts = cols // lanes
        self.t_rcd, self.t_rp, self.t_ras, self.t_ccd = t_rcd, t_rp, t_ras, t_ccd
        self.banks, self.channel = banks, channel
        self.buffers = 2 if dual_row_buffer else 1
        self.acc_bits = 2 * word_bits + (rows * cols - 1).bit_length()
        self.array = np.zeros((banks, rows, cols), dtype=np.int64)
        self.reset()

    @classmethod
    def of(cls, cfg) -> "PimModel":
        """The model of a ``PimBankConfig`` or ``PimChannelConfig``."""
        names = ("rows", "cols", "word_bits", "lanes", "dual_row_buffer", "t_rcd", "t_rp", "t_ras", "t_ccd")
        banks = getattr(cfg, "banks", None)
        return cls(**{n: getattr(cfg, n) for n in names}, banks=banks or 1, channel=banks is not None)

    def reset(self) -> None:
        """Synchronous reset: row buffers closed, timers expired, x and accumulators zero;
        the array keeps its contents."""
        banks, buffers = self.banks, self.buffers
        self.x = np.zeros((banks, self.cols), dtype=np.int64)
        self.acc = [[0] * self.lanes for _ in range(banks)]
        self.open: list[list[int | None]] = [[None] * buffers for _ in range(banks)]
        self.act_at = [[self.NEVER] * buffers for _ in range(banks)]
        self.pre_at = [[self.NEVER] * buffers for _ in range(banks)]
        self.col_at = [[self.NEVER] * buffers for _ in range(banks)]

    def _buffer(self, op: str, buf: int) -> int | None:
        if op in ("ACT", "PRE"):
            return buf
        if op in ("RD", "WR"):
            return 0
        if op == "MAC":
            return self.buffers - 1
        return None

    def check(self, bank: int, cycle: int, op: str, *, buf=0, row=0, col=0, acc=0, **_) -> str | None:
        """Why bank ``bank`` rejects the command in ``cycle``, or ``None``."""
        column = op in ("RD", "WR", "MAC")
        if (op in ("ACT", "PRE") and buf >= self.buffers or op == "ACT" and row >= self.rows
                or (column or op == "LDX") and col >= self.bursts or op == "MAC" and acc >= self.lanes):
            return "RANGE"
        b = self._buffer(op, buf)
        if b is None:
            return None
        is_open = self.open[bank][b] is not None
        if op == "ACT" and is_open:
            return "OPEN"
        if op == "ACT" and self.buffers == 2 and self.open[bank][1 - b] == row:
            return "CONFLICT"
        if column and not is_open:
            return "CLOSED"
        if op == "ACT" and cycle < self.pre_at[bank][b] + self.t_rp:
            return "T_RP"
        if op == "PRE" and is_open and cycle < self.act_at[bank][b] + self.t_ras:
            return "T_RAS"
        if column and cycle < self.act_at[bank][b] + self.t_rcd:
            return "T_RCD"
        if column and cycle < self.col_at[bank][b] + self.t_ccd:
            return "T_CCD"
        return None

    def _execute(self, bank: int, cycle: int, op: str, *, buf=0, row=0, col=0, acc=0, first=False,
                 data=(), **_):
        b = self._buffer(op, buf)
        span = slice(col * self.lanes, (col + 1) * self.lanes)
        words = np.zeros(self.lanes, dtype=np.int64)
        words[:len(data)] = data
        if op == "ACT":
            self.open[bank][b], self.act_at[bank][b] = row, cycle
        elif op == "PRE" and self.open[bank][b] is not None:
            self.open[bank][b], self.pre_at[bank][b] = None, cycle
        elif op == "LDX":
            self.x[bank, span] = words
        elif op == "RDACC":
            return "y", list(self.acc[bank])
        if op in ("RD", "WR", "MAC"):
            self.col_at[bank][b] = cycle
            stored = self.array[bank, self.open[bank][b], span]
            if op == "RD":
                return "o", [int(v) for v in stored]
            if op == "WR":
                self.array[bank, self.open[bank][b], span] = words
            else:
                dot = int(np.dot(stored.astype(object), self.x[bank, span].astype(object)))
                self.acc[bank][acc] = int(wrap((0 if first else self.acc[bank][acc]) + dot, self.acc_bits))
        return None

    def command(self, cycle: int, op: str, *, bank: int = 0, all_banks: bool = False, **fields):
        """Apply one command issued in ``cycle``: returns ``(reason, rejecting-bank mask, output)``."""
        if self.channel:
            if all_banks and op in ("RD", "RDACC") or not all_banks and bank >= self.banks:
                return "RANGE", 0, None
            targets = range(self.banks) if all_banks else [bank]
        else:
            targets = [0]
        reasons = {k: self.check(k, cycle, op, **fields) for k in targets}
        rejected = [k for k in targets if reasons[k] is not None]
        output = None
        for k in targets:
            if reasons[k] is None:
                output = self._execute(k, cycle, op, **fields) or output
        mask = sum(1 << k for k in rejected)
        return (reasons[rejected[0]] if rejected else None), mask, output


def pim_schedule(model: PimModel, commands, start: int = 0) -> list[int]:
    """Issue cycles of ``commands`` (dicts of :meth:`PimModel.command` arguments) issued in
    order, each in the earliest cycle after the previous one that the timing allows; applies
    them to ``model``. The GEMV cycle count is the last RDACC's cycle + 1 - the first's."""
    cycles, cycle = [], start - 1
    for cmd in commands:
        cycle += 1
        fields = {k: v for k, v in cmd.items() if k not in ("bank", "all_banks")}
        targets = range(model.banks) if cmd.get("all_banks") and model.channel else [cmd.get("bank", 0)]
        while any((model.check(k, cycle, **fields) or "").startswith("T_") for k in targets):
            cycle += 1
        model.command(cycle, **cmd)
        cycles.append(cycle)
    return cycles
