"""SystolicArray: an R x C grid of any PE of ``hw/pe``, weight- or output-stationary (TPU, Gemmini, SCALE-Sim).

The block computes a whole GEMM ``C[M×N] = A[M×K] · B[K×N]`` by tiling it onto the grid
itself: the caller streams plain row vectors of A and B in the order of :meth:`SystolicConfig.plan`
and receives rows of C; skew, deskew, padding of partial tiles and weight preload are inside.

Time is counted in *beats*: one input beat, one hop of every systolic register. A beat takes
the PE's ``beat_cycles(w_bits)`` cycles: one for a parallel datapath, ceil(w_bits / k) for a
bit-serial one (every cell consumes its weights k bits per cycle, all cells in lockstep).

Everything that differs by PE comes from the PE's config (the protocol of
:mod:`peforge.hw.pe.protocol`): port fields, how a weight is stored, the cell datapath, the
bottom-edge stage, latencies; this module names no PE kind.

Weight-stationary (``ws``)
    Array row ``r`` holds ``lanes`` consecutive k of B (a fold covers ``R·lanes`` k and ``C``
    columns of N). Each fold's weights are preloaded bottom row first down the columns into
    shadow registers while the previous fold computes, and switch to active as the fold's first
    activation row passes (a swap flag travels with it). Activations (one row of A per beat)
    enter from the left with one beat of skew per array row, partial sums flow down, the bottom
    edge passes them through the PE's edge stage (e.g. one dequantization per fold and column),
    deskews them and adds them into an ``max_m × C`` accumulator buffer over the K folds.
Output-stationary (``os``)
    Every cell is the PE's own component (the block ``peforge verify`` checks) that
    accumulates one element of C. Each beat carries ``lanes`` k of R rows of A (left edge) and of
    C columns of B with their per-column metadata (top edge), skewed one beat per row and column.
    A cell holds its finished result until its row is read out, one row per beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from .ports import stream_ports
from .params import nested, param, validate
from .pe import PE_KINDS, kind_of
from ..arith import ceil_div


def gemm_cycles(*, rows, cols, ws, lanes, beat_cycles, edge, os_latency, m, k, n):
    """Exact cycles of a GEMM ``(m × k) · (k × n)`` on a ``rows × cols`` array, from its first
    accepted input beat to its last output row: the closed form of :meth:`SystolicConfig.cycles`,
    on numpy arrays that broadcast (any sizes: no RTL generator limits).

    Parameters
    ----------
    rows, cols : array size R, C (cells)
    ws : true for weight-stationary, false for output-stationary
    lanes : k values a cell consumes per beat
    beat_cycles : T, cycles per beat at the GEMM's weight precision (:meth:`PeConfigBase.beat_cycles`)
    edge : e, the PE's bottom-edge stages in ws (:attr:`PeConfigBase.ws_edge_stages`)
    os_latency : L_pe, cycles from a cell's last beat to its result in os, at the GEMM's
        precision (:meth:`PeConfigBase.os_latency`; a bit-serial PE's includes T)
    m, k, n : GEMM shape

    ws: F = ceil(k / (R·lanes)) · ceil(n / C) folds, P = max(m, R)::

        cycles = (R + (F - 1)·P + m - 1 + R + C + e) · T + 1

    os: F = ceil(m / R) · ceil(n / C), Kb = ceil(k / lanes), r = m - (ceil(m / R) - 1)·R,
    P = max(Kb, R, C - 1)::

        cycles = ((F - 1)·P + Kb + r + C - 3) · T + 2 + L_pe
    """
    r, c = rows, cols
    ws_folds = ceil_div(k, r * lanes) * ceil_div(n, c)
    ws_cycles = (r + (ws_folds - 1) * np.maximum(m, r) + m - 1 + r + c + edge) * beat_cycles + 1
    row_blocks = ceil_div(m, r)
    os_folds = row_blocks * ceil_div(n, c)
    beats = ceil_div(k, lanes)
    last_rows = m - (row_blocks - 1) * r
    period = np.maximum(np.maximum(beats, r), c - 1)
    os_cycles = ((os_folds - 1) * period + beats + last_rows + c - 3) * beat_cycles + 2 + os_latency
    return np.where(ws, ws_cycles, os_cycles)


def systolic_gemm(a, b, pe_config, *, acc_bits: int | None, w_bits: int | None = None, meta=None,
                  rows: int | None = None, dataflow: str | None = None) -> np.ndarray:
    """Golden SystolicArray: ``C = A · B`` (``A``: M × K activations, ``B``: K × N weight codes as
    on the port) with the arithmetic of the array's PE (:meth:`PeConfigBase.golden_gemm`), as an
    object array of Python ints (a float PE: result codes); ``acc_bits=None``: unwrapped.
    ``meta``: the per-column metadata of :meth:`PeConfigBase.column_fields` (e.g. one row per
    quantization group). ``rows``, ``dataflow``: the array's, whose summation order a float PE
    follows (``None``: a standalone PE's order)."""
    return pe_config.golden_gemm(a, b, acc_bits=acc_bits, w_bits=w_bits, meta=meta, rows=rows, dataflow=dataflow)


@dataclass(frozen=True)
class PlanBeat:
    """What one input beat carries, as indices into A and B (out-of-range ones are padding).

    ``a`` : ``(rows, cols)`` index arrays of shape ``(R, lanes)`` into A, or None (no activations).
    ``w`` : ``(rows, cols)`` index arrays of shape ``(C, lanes)`` into B, or None (no weights).
    ``beat`` : the beat (time step) at which it is accepted, counted from the GEMM's first.
    """

    beat: int
    a: tuple[np.ndarray, np.ndarray] | None
    w: tuple[np.ndarray, np.ndarray] | None


@dataclass(frozen=True)
class PlanOutput:
    """One output row: ``C[row, col0 : col0 + C]`` valid at ``cycle`` (from the first accepted beat)."""

    cycle: int
    row: int
    col0: int


@dataclass(frozen=True, kw_only=True)
class SystolicConfig:
    """Parameters of :class:`SystolicArray`."""

    rows: int = param(4, "PE rows R", low=1, high=64)
    cols: int = param(4, "PE columns C", low=1, high=64)
    pe: str = param(next(iter(PE_KINDS)), "processing element in every cell", choices=tuple(PE_KINDS))
    dataflow: str = param("ws", "ws: weight-stationary; os: output-stationary", choices=("ws", "os"))
    max_m: int = param(64, "largest M (rows of A) of one GEMM; ws: depth of the accumulator buffer",
                       low=1, high=4096)
    max_k: int = param(1024, "largest K (columns of A, rows of B) of one GEMM", low=1, high=1 << 16)
    max_n: int = param(1024, "largest N (columns of B) of one GEMM", low=1, high=1 << 16)
    pe_config: Any = nested("pe", {name: kind.config for name, kind in PE_KINDS.items()},
                            "parameters of the PE chosen by `pe`")

    def __post_init__(self) -> None:
        validate(self)
        self.pe_config.check_array(self.rows, self.dataflow)

    # --- sizes ------------------------------------------------------------------------------

    @property
    def lanes(self) -> int:
        """k values a cell consumes per beat (the PE's lanes)."""
        return self.pe_config.lanes

    @property
    def a_bits(self) -> int:
        return self.pe_config.a_bits

    @property
    def out_bits(self) -> int:
        """Width of one element of C on the output port (bits, signed)."""
        return self.pe_config.out_bits

    @property
    def acc_bits(self) -> int:
        """Width of the running sum of one element of C (bits, signed): the PE's accumulator."""
        return self.pe_config.acc_bits

    @property
    def max_beat_cycles(self) -> int:
        return self.beat_cycles(None)

    def beat_cycles(self, w_bits: int | None = None) -> int:
        """Cycles per beat at weight precision ``w_bits`` (``None``: the widest): the PE's
        :meth:`~peforge.hw.pe.PeConfigBase.beat_cycles` (ceil(w_bits / k) bit-serial, else 1)."""
        return self.pe_config.beat_cycles(w_bits)

    @property
    def k_per_fold(self) -> int:
        """ws: k values a fold covers (R · lanes); os: k values per beat (lanes)."""
        return self.rows * self.lanes if self.dataflow == "ws" else self.lanes

    # --- schedule ---------------------------------------------------------------------------

    def _check_shape(self, M: int, K: int, N: int) -> None:
        for name, value, top in (("M", M, self.max_m), ("K", K, self.max_k), ("N", N, self.max_n)):
            if not 1 <= value <= top:
                raise ValueError(f"GEMM {name}={value!r} is out of range; allowed 1..{top}")

    def folds(self, M: int, K: int, N: int) -> list[tuple[int, int, int]]:
        """Tiles in the order the array computes them, as ``(m0, k0, n0)`` offsets.

        ws: for each C-wide column block of N, the K folds of ``R·lanes`` (M streams through).
        os: for each R-high row block of M, each C-wide column block of N (K streams through).
        """
        self._check_shape(M, K, N)
        R, C = self.rows, self.cols
        if self.dataflow == "ws":
            return [(0, k0, n0) for n0 in range(0, N, C) for k0 in range(0, K, self.k_per_fold)]
        return [(m0, 0, n0) for m0 in range(0, M, R) for n0 in range(0, N, C)]

    def fold_beats(self, M: int, K: int, N: int) -> int:
        """Beats between the starts of consecutive folds (the period P).

        ws: ``max(M, R)``: a fold streams M rows of A, and the next fold's R weight rows are
        preloaded meanwhile; with M < R the preload sets the pace.
        os: ``max(ceil(K / lanes), R, C - 1)``: K beats stream through; the fold's R result
        rows leave one per beat, and a cell's result register must hold until its row leaves
        (C - 1 beats after the row's first cell finishes).
        """
        R, C = self.rows, self.cols
        if self.dataflow == "ws":
            return max(M, R)
        return max(ceil_div(K, self.lanes), R, C - 1)

    def plan(self, M: int, K: int, N: int) -> list[PlanBeat]:
        """The input beats of one GEMM, in order, with the beat at which each is accepted
        when the caller keeps ``valid`` high."""
        R, C, L = self.rows, self.cols, self.lanes
        folds = self.folds(M, K, N)
        beats: list[PlanBeat] = []
        lanes = np.arange(L)
        if self.dataflow == "ws":
            def weights(fold, q):  # preload beat q carries array row R-1-q (bottom row first)
                _, k0, n0 = fold
                k = k0 + (R - 1 - q) * L + lanes
                return np.broadcast_to(k, (C, L)), np.broadcast_to((n0 + np.arange(C))[:, None], (C, L))

            def acts(fold, row):
                k = fold[1] + np.arange(R * L).reshape(R, L)
                return np.full((R, L), row), k

            beats += [PlanBeat(q, None, weights(folds[0], q)) for q in range(R)]
            start = R
            period = self.fold_beats(M, K, N)
            for f, fold in enumerate(folds):
                more = f + 1 < len(folds)
                for j in range(period if more else M):
                    beats.append(PlanBeat(start + j, acts(fold, j) if j < M else None,
                                          weights(folds[f + 1], j) if more and j < R else None))
                start += period
            return beats
        period = self.fold_beats(M, K, N)
        for f, (m0, _, n0) in enumerate(folds):
            for j in range(ceil_div(K, L)):
                k = j * L + lanes
                a = (np.broadcast_to((m0 + np.arange(R))[:, None], (R, L)), np.broadcast_to(k, (R, L)))
                w = (np.broadcast_to(k, (C, L)), np.broadcast_to((n0 + np.arange(C))[:, None], (C, L)))
                beats.append(PlanBeat(f * period + j, a, w))
        return beats

    def outputs(self, M: int, K: int, N: int, w_bits: int | None = None) -> list[PlanOutput]:
        """Every output row in order with the cycle it is valid, counted from the first accepted beat.

        ws: row m of the last K fold of a column block whose activations enter at beat b leaves at
        ``(b + R + C + e) · T + 1``; os: row i of a fold whose last K beat enters at beat b leaves at
        ``(b + i + C - 1) · T + 2 + L_pe`` (T: :meth:`beat_cycles`; e: the PE's ``ws_edge_stages``;
        L_pe: the PE's ``os_latency``, cycles from its last input to its result).
        """
        R, C = self.rows, self.cols
        T = self.beat_cycles(w_bits)
        folds = self.folds(M, K, N)
        period = self.fold_beats(M, K, N)
        out = []
        if self.dataflow == "ws":
            edge = self.pe_config.ws_edge_stages
            for f, (_, k0, n0) in enumerate(folds):
                if k0 + self.k_per_fold >= K:  # last K fold of this column block
                    out += [PlanOutput((R + f * period + m + R + C + edge) * T + 1, m, n0) for m in range(M)]
            return out
        kb = ceil_div(K, self.lanes)
        latency = int(self.pe_config.os_latency(w_bits))
        for f, (m0, _, n0) in enumerate(folds):
            last = f * period + kb - 1
            out += [PlanOutput((last + i + C - 1) * T + 2 + latency, m0 + i, n0)
                    for i in range(min(R, M - m0))]
        return out

    def cycles(self, M: int, K: int, N: int, w_bits: int | None = None) -> int:
        """Exact cycles from accepting the first input beat of a GEMM to its last output row.

        With T = :meth:`beat_cycles` (1, or ceil(w_bits / k) for a bit-serial PE) and
        P = :meth:`fold_beats`:

        ws: F = ceil(K / (R·lanes)) · ceil(N / C) folds, e = the PE's ``ws_edge_stages``::

            cycles = (R + (F - 1)·P + M - 1 + R + C + e) · T + 1,   P = max(M, R)

        (R beats of first preload, F folds of P beats each overlapping the next fold's preload,
        the last fold's M rows, then R + C beats of fill and deskew and the output register).

        os: F = ceil(M / R) · ceil(N / C) folds, Kb = ceil(K / lanes), r = M - (ceil(M/R) - 1)·R
        rows in the last fold, L_pe = the PE's ``os_latency``::

            cycles = ((F - 1)·P + Kb + r + C - 3) · T + 2 + L_pe,   P = max(Kb, R, C - 1)

        Evaluated by :func:`gemm_cycles`, the expression the cost model uses.
        """
        self._check_shape(M, K, N)
        pe = self.pe_config
        return int(gemm_cycles(rows=self.rows, cols=self.cols, ws=self.dataflow == "ws", lanes=self.lanes,
                               beat_cycles=self.beat_cycles(w_bits), edge=pe.ws_edge_stages,
                               os_latency=pe.os_latency(w_bits), m=M, k=K, n=N))

    def peak_macs_per_cycle(self, w_bits: int | None = None) -> float:
        """Multiply-accumulates per cycle with every cell busy: R · C · lanes / T."""
        return self.rows * self.cols * self.lanes / self.beat_cycles(w_bits)

    def utilization(self, M: int, K: int, N: int, w_bits: int | None = None) -> float:
        """Useful MACs over peak MACs during :meth:`cycles`."""
        return M * K * N / (self.cycles(M, K, N, w_bits) * self.peak_macs_per_cycle(w_bits))

    # --- ports ------------------------------------------------------------------------------

    def in_layout(self) -> data.StructLayout:
        L, pe = self.lanes, self.pe_config
        fields: dict[str, Any] = {
            "a": data.ArrayLayout(data.ArrayLayout(pe.a_shape, L), self.rows),
            "w": data.ArrayLayout(data.ArrayLayout(pe.weight_shape, L), self.cols),
        }
        fields.update({key: data.ArrayLayout(shape, self.cols) for key, shape in pe.column_fields().items()})
        fields.update(pe.array_fields())
        fields.update(m=unsigned(self.max_m.bit_length()), k=unsigned(self.max_k.bit_length()),
                      n=unsigned(self.max_n.bit_length()))
        return data.StructLayout(fields)

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": data.ArrayLayout(self.pe_config.out_shape, self.cols), "last": 1})


def _chain(m: Module, value, shape, n: int, enable, name: str) -> list:
    """``n`` registers in series after ``value``, advancing when ``enable``; item d is ``value``
    delayed by d + 1 beats."""
    regs = []
    for d in range(n):
        reg = Signal(shape, name=f"{name}_{d}")
        with m.If(enable):
            m.d.sync += reg.eq(value)
        regs.append(reg)
        value = reg
    return regs


def _delayed(m: Module, value, shape, n: int, enable, name: str):
    return _chain(m, value, shape, n, enable, name)[-1] if n else value


class SystolicArray(wiring.Component):
    """R × C systolic array computing ``C = A · B`` for a whole GEMM, tiled inside.

    Ports
    -----
    i : stream of beats ``{a[R][lanes], w[C][lanes], (scale[C], zp[C] | w_bits), m, k, n}``, in the
        order of :meth:`SystolicConfig.plan`. The first beat accepted while idle starts a GEMM
        and its ``m, k, n`` (and ``w_bits``) are the GEMM's shape (and weight precision); later
        beats' are ignored. ws: ``a`` is ``A[m, k0 : k0 + R·lanes]`` (row r, lane l: k0 + r·lanes + l),
        ``w`` one array row of weights ``B[kr : kr + lanes, n0 : n0 + C]`` (column c, lane l).
        os: ``a`` is ``A[m0 : m0 + R, k0 : k0 + lanes]``, ``w`` is ``B[k0 : k0 + lanes, n0 : n0 + C]``.
        Per-column metadata fields of the PE (``column_fields``, e.g. a quantization group's scale
        and zero point) belong to each weight column; ``array_fields`` (e.g. ``w_bits``) to the GEMM.
        Values beyond M, K or N are ignored (padding is inside). ``ready`` is high when a beat
        can be taken this cycle: one per beat (:meth:`SystolicConfig.beat_cycles` cycles), low
        in os idle beats and from a GEMM's last input beat until its last output.
    o : ``valid`` for one cycle per output row with ``payload.acc`` = ``C[row, n0 : n0 + C]``
        (columns beyond N read 0) and ``payload.last`` on the GEMM's final row, in the order
        and at the cycles of :meth:`SystolicConfig.outputs`.
    """

    def __init__(self, config: SystolicConfig):
        self.config = config
        super().__init__(stream_ports(config))

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        p = self.i.payload

        # Beat clock: `step` ends a beat; a beat lasts `ii` cycles (set by the PE's array_start), else 1.
        max_ii = cfg.max_beat_cycles
        ii = Signal(range(max_ii + 1), init=1)
        phase = Signal(range(max(2, max_ii)))
        step = Signal()
        m.d.comb += step.eq(phase == ii - 1)
        m.d.sync += phase.eq(Mux(step, 0, phase + 1))

        busy = Signal()  # a GEMM runs: from its first beat to its last output row
        feeding = Signal()  # it still takes input beats
        accept = Signal()
        start = Signal()
        finish = Signal()  # set by the output stage on the GEMM's last row
        m.d.comb += [accept.eq(self.i.valid & self.i.ready), start.eq(accept & ~busy)]

        shape = {key: Signal(len(getattr(p, key)), name=f"{key}_reg") for key in ("m", "k", "n")}
        cur = {key: Mux(busy, reg, getattr(p, key)) for key, reg in shape.items()}
        with m.If(start):
            m.d.sync += [busy.eq(1), feeding.eq(1)] + [reg.eq(getattr(p, key)) for key, reg in shape.items()]
        ctl = dict(step=step, phase=phase, ii=ii, busy=busy, feeding=feeding, accept=accept, start=start,
                   finish=finish, cur=cur, shape=shape)
        ctl.update(cfg.pe_config.array_start(m, p, ctl))  # run-time PE state, e.g. the beat length
        with m.If(finish):
            m.d.sync += [busy.eq(0), ii.eq(1), phase.eq(0)]  # os may finish mid-beat
        if cfg.dataflow == "ws":
            self._weight_stationary(m, ctl)
        else:
            self._output_stationary(m, ctl)
        return m

    # --- weight-stationary ----------------------------------------------------------------------

    def _weight_stationary(self, m: Module, ctl: dict) -> None:
        cfg = self.config
        pe = cfg.pe_config
        R, C, L = cfg.rows, cfg.cols, cfg.lanes
        Kc = R * L
        p = self.i.payload
        step, busy, accept, cur = ctl["step"], ctl["busy"], ctl["accept"], ctl["cur"]

        # Input sequencer: an initial preload window of R beats, then one window per fold.
        init = Signal()
        j = Signal(range(max(cfg.max_m, R) + 1))
        rem_k = Signal(range(cfg.max_k + 1))  # K - k0 of the current fold
        rem_n = Signal(range(cfg.max_n + 1))  # N - n0 of the current fold
        kfirst = Signal()
        cur_init, cur_j = Mux(busy, init, 1), Mux(busy, j, 0)
        cur_rk, cur_rn, cur_kfirst = Mux(busy, rem_k, cur["k"]), Mux(busy, rem_n, cur["n"]), Mux(busy, kfirst, 1)
        M = cur["m"]
        klast = Signal()
        last_fold = Signal()
        m.d.comb += [klast.eq(cur_rk <= Kc), last_fold.eq(klast & (cur_rn <= C))]
        act = ~cur_init & (cur_j < M)
        preload = (cur_j < R) & (cur_init | ~last_fold)
        # The fold this beat preloads: the current one in the initial window, else the next.
        pk = Signal.like(rem_k)
        pn = Signal.like(rem_n)
        m.d.comb += [pk.eq(Mux(cur_init, cur_rk, Mux(klast, cur["k"], cur_rk - Kc))),
                     pn.eq(Mux(cur_init | ~klast, cur_rn, cur_rn - C))]
        window_end = Mux(cur_init, cur_j == R - 1,
                         Mux(last_fold, cur_j + 1 == M, (cur_j + 1 >= M) & (cur_j >= R - 1)))
        with m.If(accept):
            m.d.sync += [j.eq(cur_j + 1), init.eq(cur_init), rem_k.eq(cur_rk), rem_n.eq(cur_rn),
                         kfirst.eq(cur_kfirst)]
            with m.If(window_end):
                m.d.sync += [j.eq(0), init.eq(0)]
                with m.If(~cur_init):
                    m.d.sync += [rem_k.eq(pk), rem_n.eq(pn), kfirst.eq(klast)]
                    with m.If(last_fold):
                        m.d.sync += ctl["feeding"].eq(0)
        m.d.comb += self.i.ready.eq(step & (~busy | ctl["feeding"]))

        # Left edge: the activation row, lanes beyond K zeroed, skewed one beat per array row.
        left = data.StructLayout({"a": data.ArrayLayout(pe.a_shape, L), "swap": 1})
        row_regs = []
        for r in range(R):
            beat = Signal(left, name=f"left_{r}")
            for lane in range(L):
                m.d.comb += beat.a[lane].eq(Mux(accept & act & (cur_rk > r * L + lane), p.a[r][lane], 0))
            m.d.comb += beat.swap.eq(accept & act & (cur_j == 0))
            row_regs.append(_chain(m, beat, left, r + C, step, f"arow{r}"))  # cell (r, c) reads item r + c

        # Top edge: one array row of weights per preload beat, bottom row first, skewed one beat
        # per column, with the column metadata the bottom edge needs; `commit` marks a fold's
        # last preload beat. Weights enter in the form the cells store (the PE's `ws_store`).
        stored = pe.ws_stored_shape
        travelling = pe.ws_column_fields()
        top = data.StructLayout({"w": data.ArrayLayout(stored, L), "load": 1, "commit": 1, **travelling})
        row_base = Signal(range(R * L + 1))
        m.d.comb += row_base.eq(Mux(cur_j < R, (R - 1 - cur_j) * L, 0))
        load = accept & preload
        top_in = []
        for c in range(C):
            beat = Signal(top, name=f"top_{c}")
            meta = {key: getattr(p, key)[c] for key in pe.column_fields()}
            for lane in range(L):
                keep = load & (pk > row_base + lane) & (pn > c)
                m.d.comb += beat.w[lane].eq(Mux(keep, pe.ws_store(m, ctl, p.w[c][lane], meta), 0))
            m.d.comb += [beat.load.eq(load), beat.commit.eq(load & (cur_j == R - 1))]
            m.d.comb += [getattr(beat, key).eq(Mux(pn > c, meta[key], 0)) for key in travelling]
            top_in.append(_chain(m, beat, top, c + 1, step, f"wcol{c}")[-1])

        # Cells: preload pipeline, shadow and active weights; the PE's cell computes each beat's
        # dot product; partial sums flow down. Column metadata switches with the fold's weights.
        psum_shape = signed(pe.ws_psum_bits)
        psum = [[Signal(psum_shape, name=f"psum_{r}_{c}") for c in range(C)] for r in range(R)]
        meta_active = [{key: Signal(shape, name=f"{key}_{c}") for key, shape in travelling.items()} for c in range(C)]
        for c in range(C):
            feed = top_in[c]
            pipe = _chain(m, feed.w, data.ArrayLayout(stored, L), R - 1, step & feed.load, f"wpipe{c}")
            arriving = [feed.w] + pipe  # what each row's pipeline stage holds after this beat
            for r in range(R):
                shadow = Signal(data.ArrayLayout(stored, L), name=f"shadow_{r}_{c}")
                active = Signal(data.ArrayLayout(stored, L), name=f"active_{r}_{c}")
                with m.If(step & feed.commit):
                    m.d.sync += shadow.eq(arriving[r])
                left_in = row_regs[r][r + c]
                weights = Signal(data.ArrayLayout(stored, L), name=f"w_{r}_{c}")
                m.d.comb += weights.eq(Mux(left_in.swap, shadow.as_value(), active.as_value()))
                above = psum[r - 1][c] if r else None
                cell = pe.ws_cell(m, ctl, f"{r}_{c}")
                m.d.comb += [cell.a.eq(left_in.a), cell.w.eq(weights)]
                with m.If(step):
                    m.d.sync += [active.eq(weights), psum[r][c].eq(pe.ws_accumulate(m, above, cell))]
            for key, shape in travelling.items():
                shadow_meta = Signal(shape, name=f"shadow_{key}_{c}")
                with m.If(step & feed.commit):
                    m.d.sync += shadow_meta.eq(getattr(feed, key))
                with m.If(step):
                    m.d.sync += meta_active[c][key].eq(Mux(row_regs[R - 1][R - 1 + c].swap, shadow_meta,
                                                           meta_active[c][key]))

        # Bottom edge: the PE's edge stage, deskew, accumulate over K folds.
        acc_bits = cfg.acc_bits
        bottom = []
        for c in range(C):
            value = pe.ws_edge(m, ctl, str(c), psum[R - 1][c], meta_active[c])
            bottom.append(_delayed(m, value, signed(acc_bits), C - 1 - c, step, f"deskew{c}"))

        edge = pe.ws_edge_stages
        tag_shape = data.StructLayout({"valid": 1, "kfirst": 1, "klast": 1, "last": 1,
                                       "row": range(max(2, cfg.max_m))})
        tag_in = Signal(tag_shape)
        m.d.comb += [tag_in.valid.eq(accept & act), tag_in.kfirst.eq(cur_kfirst), tag_in.klast.eq(klast),
                     tag_in.last.eq(last_fold & (cur_j + 1 == M)), tag_in.row.eq(cur_j)]
        tags = _chain(m, tag_in, tag_shape, R + C + edge, step, "tag")
        tag, upcoming = tags[-1], tags[-2]  # R + C >= 2 stages

        # A synchronous read, as an SRAM macro has: the row of the tag arriving at the next step is
        # read in this one (only if a fold before it wrote it), seeing this step's write to it.
        m.submodules.acc = buffer = Memory(shape=unsigned(C * acc_bits), depth=cfg.max_m, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port(transparent_for=[wr])
        totals = []
        for c in range(C):
            before = rd.data[c * acc_bits:(c + 1) * acc_bits].as_signed()
            total = Signal(signed(acc_bits), name=f"total_{c}")
            m.d.comb += total.eq(pe.fold_accumulate(m, str(c), bottom[c], before, tag.kfirst))
            totals.append(total)
        m.d.comb += [rd.addr.eq(upcoming.row), rd.en.eq(step & upcoming.valid & ~upcoming.kfirst),
                     wr.addr.eq(tag.row), wr.data.eq(Cat(*totals)),
                     wr.en.eq(step & tag.valid & ~tag.klast)]
        emit = step & tag.valid & tag.klast
        m.d.sync += self.o.valid.eq(emit)
        shift = pe.out_shift
        with m.If(emit):
            m.d.sync += [self.o.payload.acc[c].eq(totals[c] >> shift) for c in range(C)]
            m.d.sync += self.o.payload.last.eq(tag.last)
        m.d.comb += ctl["finish"].eq(emit & tag.last)

    # --- output-stationary ----------------------------------------------------------------------

    def _output_stationary(self, m: Module, ctl: dict) -> None:
        cfg = self.config
        pe = cfg.pe_config
        R, C, L = cfg.rows, cfg.cols, cfg.lanes
        p = self.i.payload
        step, busy, accept, cur, feeding = ctl["step"], ctl["busy"], ctl["accept"], ctl["cur"], ctl["feeding"]
        hold = max(R, C - 1)  # beats a fold lasts at least

        # Input sequencer: ceil(K / lanes) data beats per fold, then idle beats up to the period.
        kb_max = ceil_div(cfg.max_k, L)
        j = Signal(range(max(kb_max, hold) + 1))
        rem_k = Signal(range(cfg.max_k + 1))  # K - k0 of the next beat
        rem_m = Signal(range(cfg.max_m + 1))
        rem_n = Signal(range(cfg.max_n + 1))
        data_slot = Signal()  # the next beat takes data (else it is idle)
        cur_j = Mux(busy, j, 0)
        cur_rk, cur_rm, cur_rn = Mux(busy, rem_k, cur["k"]), Mux(busy, rem_m, cur["m"]), Mux(busy, rem_n, cur["n"])
        klast = cur_rk <= L
        mlast, nlast = cur_rm <= R, cur_rn <= C
        last_fold = mlast & nlast

        def next_fold(rm, rn):
            return [j.eq(0), data_slot.eq(1), rem_k.eq(cur["k"]),
                    rem_n.eq(Mux(rn <= C, cur["n"], rn - C)), rem_m.eq(Mux(rn <= C, rm - R, rm))]

        with m.If(accept):
            m.d.sync += [j.eq(cur_j + 1), data_slot.eq(1), rem_k.eq(cur_rk - L), rem_m.eq(cur_rm), rem_n.eq(cur_rn)]
            with m.If(klast):
                with m.If(last_fold):
                    m.d.sync += feeding.eq(0)
                with m.Elif(cur_j >= hold - 1):
                    m.d.sync += next_fold(cur_rm, cur_rn)
                with m.Else():
                    m.d.sync += data_slot.eq(0)
        with m.Elif(step & busy & feeding & ~data_slot):
            with m.If(j >= hold - 1):
                m.d.sync += next_fold(rem_m, rem_n)
            with m.Else():
                m.d.sync += j.eq(j + 1)
        m.d.comb += self.i.ready.eq(step & (~busy | (feeding & data_slot)))

        # Left edge: R rows of lanes activations with flags, skewed one beat per row.
        left = data.StructLayout({"a": data.ArrayLayout(pe.a_shape, L), "valid": 1, "first": 1, "last": 1})
        row_regs = []
        for r in range(R):
            beat = Signal(left, name=f"left_{r}")
            for lane in range(L):
                m.d.comb += beat.a[lane].eq(Mux(cur_rk > lane, p.a[r][lane], 0))
            m.d.comb += [beat.valid.eq(accept & (cur_rm > r)), beat.first.eq(cur_j == 0), beat.last.eq(klast)]
            row_regs.append(_chain(m, beat, left, r + C, step, f"arow{r}"))

        # Top edge: C columns of lanes weights with their metadata, skewed one beat per column.
        column = pe.column_fields()
        top = data.StructLayout({"w": data.ArrayLayout(pe.weight_shape, L), **column})
        col_regs = []
        for c in range(C):
            beat = Signal(top, name=f"top_{c}")
            keep = cur_rn > c
            for lane in range(L):
                m.d.comb += beat.w[lane].eq(Mux(keep & (cur_rk > lane), p.w[c][lane], 0))
            m.d.comb += [getattr(beat, key).eq(Mux(keep, getattr(p, key)[c], 0)) for key in column]
            col_regs.append(_chain(m, beat, top, c + R, step, f"wcol{c}"))  # cell (r, c) reads item c + r

        # Cells: the PE components, fed one beat per beat (its first cycle), results held.
        component = kind_of(pe).component
        first_cycle = ctl["phase"] == 0
        held = [[None] * C for _ in range(R)]
        ends = []
        for r in range(R):
            for c in range(C):
                cell = component(pe)
                m.submodules[f"pe_{r}_{c}"] = cell
                west, north = row_regs[r][r + c], col_regs[c][c + r]
                beat = cell.i.payload
                m.d.comb += [cell.i.valid.eq(west.valid & first_cycle), beat.first.eq(west.first),
                             beat.last.eq(west.last)]
                pe.os_feed(m, beat, west.a, north.w, {key: getattr(north, key) for key in column}, ctl)
                if c == C - 1:
                    held[r][c] = cell.o.payload.acc
                    ends.append(cell.o.valid)
                else:
                    held[r][c] = Signal(pe.out_shape, name=f"held_{r}_{c}")
                    with m.If(cell.o.valid):
                        m.d.sync += held[r][c].eq(cell.o.payload.acc)

        # Output: a row leaves when its last cell finishes. Rows still to come are counted:
        # added when a fold's last beat is taken, so the GEMM's last row is known when it leaves.
        rows_total = cfg.max_m * ceil_div(cfg.max_n, C)
        pending = Signal(range(rows_total + 1))
        issue = Mux(accept & klast, Mux(mlast, cur_rm, R), 0)
        out_now = Signal()
        m.d.comb += out_now.eq(Cat(*ends).any())
        m.d.sync += [pending.eq(pending + issue - out_now), self.o.valid.eq(out_now)]
        is_last = ~feeding & (pending == 1)
        for r in range(R):
            with m.If(ends[r]):
                m.d.sync += [self.o.payload.acc[c].eq(held[r][c]) for c in range(C)]
        with m.If(out_now):
            m.d.sync += self.o.payload.last.eq(is_last)
        m.d.comb += ctl["finish"].eq(out_now & is_last)
