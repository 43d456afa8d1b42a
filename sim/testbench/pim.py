"""PimBank / PimChannel testbench: GEMVs checked against the golden GEMV and the exact
``cycles()``, every command and output checked cycle by cycle against ``PimModel``, illegal
command sequences, random command streams, reads during a GEMV (dual row buffer), reset.

:class:`PimDriver` is the command driver: it issues :class:`~peforge.hw.pim.PimCommand`\\ s in
order, each in the first cycle the block's ``ok`` port allows (the block's own timers decide
when; the model only checks), or at once to provoke a violation.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Sequence

import numpy as np

from ...hw.golden import PimModel, pim_gemv, pim_layout
from ...hw.pim import PimChannelConfig, PimCommand, PimError, PimOp, gemv_program, store_program
from ..layouts import pack
from . import Report

_KIND = {PimOp.ACT: "act", PimOp.PRE: "pre", PimOp.RD: "col", PimOp.WR: "col", PimOp.MAC: "col"}


class PimDriver:
    """Drives a PimBank or PimChannel through a :class:`~peforge.sim.bench.Bench` and checks it.

    Every command issued is also applied to a :class:`~peforge.hw.golden.PimModel`; what the
    model says must appear on ``o``, ``y`` and ``err`` (value and cycle) is compared with what
    the block puts out by :meth:`check`.
    """

    def __init__(self, bench, cfg, report: Report, *, timeout: int = 10_000):
        self.bench, self.cfg, self.report, self.timeout = bench, cfg, report, timeout
        self.channel = isinstance(cfg, PimChannelConfig)
        self.banks = cfg.banks if self.channel else 1
        bank = cfg.bank if self.channel else cfg
        self.cmd_layout = cfg.cmd_layout()
        self.layouts = {"o": bank.out_layout(), "y": bank.y_layout(), "err": cfg.err_layout()}
        self.ok_layout = cfg.ok_layout_channel() if self.channel else cfg.ok_layout()
        self.model = PimModel.of(cfg)
        self.cycle = 0
        self.expected: list[tuple] = []
        self.observed: list[tuple] = []
        self.ok: list[dict[str, int]] = []

    # --- the bench ---------------------------------------------------------------------------

    def _sample(self) -> None:
        for port, layout in self.layouts.items():
            if self.bench.get(f"{port}__valid"):
                view = layout.from_bits(self.bench.get(f"{port}__payload"))
                if port == "err":
                    value = (PimError(view.code).name, int(view.banks) if self.channel else 0)
                else:
                    words = view.data if port == "o" else view.acc
                    value = tuple(int(words[k]) for k in range(self.cfg.lanes))
                self.observed.append((self.cycle, port, value))
        ok = self.ok_layout.from_bits(self.bench.get("ok"))
        views = [ok[k] for k in range(self.banks)] if self.channel else [ok]
        self.ok = [{"act": int(v.act), "pre": int(v.pre), "col": int(v.col)} for v in views]

    async def reset(self) -> None:
        self.bench.set("i__valid", 0)
        await self.bench.reset()
        self.cycle += 1
        self.model.reset()
        self._sample()

    async def step(self, cmd: PimCommand | None = None) -> None:
        """One cycle, offering ``cmd`` (or nothing)."""
        self.bench.set("i__valid", int(cmd is not None))
        if cmd is not None:
            fields = cmd.fields(self.cfg.lanes)
            if not self.channel:
                fields = {k: v for k, v in fields.items() if k not in ("bank", "all_banks")}
            self.bench.set("i__payload", pack(self.cmd_layout, fields))
        await self.bench.tick()
        issued, self.cycle = self.cycle, self.cycle + 1
        if cmd is not None:
            reason, mask, output = self.model.command(
                issued, cmd.op.name, buf=cmd.buf, row=cmd.row, col=cmd.col, acc=cmd.acc, first=cmd.first,
                data=cmd.data, bank=cmd.bank, all_banks=cmd.all_banks)
            if reason is not None:
                self.expected.append((self.cycle, "err", (reason, mask if self.channel else 0)))
            if output is not None:
                self.expected.append((self.cycle, output[0], tuple(output[1])))
        self._sample()

    # --- issuing -----------------------------------------------------------------------------

    def allowed(self, cmd: PimCommand) -> bool:
        """Whether the block's ``ok`` port lets ``cmd`` issue in the current cycle."""
        kind = _KIND.get(cmd.op)
        if kind is None:
            return True
        buf = {"act": cmd.buf, "pre": cmd.buf}.get(kind, 0 if cmd.op in (PimOp.RD, PimOp.WR) else self.cfg.pim_buffer)
        banks = range(self.banks) if self.channel and cmd.all_banks else [cmd.bank if self.channel else 0]
        return all(self.ok[k][kind] >> buf & 1 for k in banks)

    async def issue(self, cmd: PimCommand, *, wait: bool = True) -> int:
        """Offer ``cmd`` in the first cycle its timing allows (``wait=False``: now); its cycle."""
        waited = 0
        while wait and not self.allowed(cmd):
            await self.step()
            waited += 1
            if waited > self.timeout:
                raise TimeoutError(f"{cmd} never allowed after {waited} cycles")
        cycle = self.cycle
        await self.step(cmd)
        return cycle

    async def run(self, commands: Iterable[PimCommand], background: Iterable[PimCommand] = ()) -> list[int]:
        """Issue ``commands`` in order as soon as allowed; in cycles where the next one must wait,
        issue the next of ``background`` if it is allowed. Returns the cycles of ``commands``."""
        main, extra = deque(commands), deque(background)
        cycles = []
        idle = 0
        while main:
            if self.allowed(main[0]):
                cycles.append(self.cycle)
                await self.step(main.popleft())
                idle = 0
            else:
                await self.step(extra.popleft() if extra and self.allowed(extra[0]) else None)
                idle += 1
                if idle > self.timeout:
                    raise TimeoutError(f"{main[0]} never allowed")
        for cmd in extra:
            await self.issue(cmd)
        return cycles

    async def settle(self) -> None:
        """Wait until every timer of every buffer has expired."""
        cfg = self.cfg
        for _ in range(max(cfg.t_rcd, cfg.t_ras, cfg.t_rp, cfg.t_ccd)):
            await self.step()

    async def close_all(self) -> None:
        for bank in range(self.banks):
            for buf in range(self.cfg.row_buffers):
                await self.issue(PimCommand(PimOp.PRE, buf=buf, bank=bank))

    # --- checking ----------------------------------------------------------------------------

    def outputs(self, port: str, since: int = 0) -> list[tuple]:
        return [(c, v) for c, p, v in self.observed if p == port and c > since]

    def check(self, label: str) -> None:
        """Compare what the block put out with the model since the last check, cycle by cycle."""
        key = lambda e: (e[0], e[1])
        expected, observed = sorted(self.expected, key=key), sorted(self.observed, key=key)
        if expected != observed:
            extra = [e for e in observed if e not in expected][:3]
            missing = [e for e in expected if e not in observed][:3]
            self.report.failures.append(f"{label}: block differs from model; unexpected {extra}, missing {missing}")
        self.report.ops += sum(1 for e in expected if e[1] in ("o", "y"))
        self.expected, self.observed = [], []


# --- stimulus ------------------------------------------------------------------------------------


def _capacity(cfg) -> int:
    """Most W rows a single-segment GEMV can have."""
    return cfg.rows * getattr(cfg, "banks", 1)


def gemv_cases(cfg, rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Labelled ``(W, x)``: corners first, then random shapes (non-multiples of lanes and cols,
    several segments and accumulator groups where the bank holds them)."""
    lo, hi = -(1 << cfg.word_bits - 1), (1 << cfg.word_bits - 1) - 1
    banks = getattr(cfg, "banks", 1)
    cap = _capacity(cfg)
    cols = cfg.cols
    m_small = min(cap, cfg.lanes * banks + 1)

    def full(m, k, w, x):
        return np.full((m, k), w, dtype=np.int64), np.full(k, x, dtype=np.int64)

    cases = [
        ("zeros", *full(min(cap, 3), cols, 0, 0)),
        ("most negative squared", *full(m_small, cols, lo, lo)),
        ("max times min", *full(m_small, cols, hi, lo)),
        ("all max", *full(m_small, cols, hi, hi)),
        ("one word", *full(1, 1, lo, hi)),
    ]
    corners = np.array([lo, hi, 0, -1, 1], dtype=np.int64)
    m = min(cap, 2 * cfg.lanes * banks + 3)
    cases.append(("corner mix", corners[rng.integers(0, 5, (m, cols))], corners[rng.integers(0, 5, cols)]))
    cases.append(("whole bank", rng.integers(lo, hi + 1, (cap, cols)), rng.integers(lo, hi + 1, cols)))
    shapes = []
    if cfg.rows >= 3:
        k = 2 * cols + max(1, cfg.lanes // 2 + 1) if cfg.lanes > 1 else 2 * cols + 1
        shapes.append(("three segments", (cfg.rows // 3) * banks, k))
    while len(shapes) < 5:
        k = int(rng.integers(1, 3 * cols + 1))
        segs = len(cfg.segments(k))
        max_m = (cfg.rows // segs) * banks
        if max_m >= 1:
            shapes.append((f"random {len(shapes)}", int(rng.integers(1, max_m + 1)), k))
    for label, m, k in shapes:
        cases.append((f"{label} {m}x{k}", rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, k)))
    return cases


def packed_cases(cfg, rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """Labelled ``(W, x, pack)`` for the packed-row layout, where a DRAM row holds two or more W
    rows: the most vectors per row and fewer, a partial last DRAM row and several accumulator
    groups where the bank holds them, corner values. Empty when no W row packs."""
    lo, hi = -(1 << cfg.word_bits - 1), (1 << cfg.word_bits - 1) - 1
    banks = getattr(cfg, "banks", 1)
    cases = []
    shapes = [("one burst per vector", cfg.lanes)]
    if cfg.cols >= 2:
        shapes.append(("random width", int(rng.integers(1, cfg.cols // 2 + 1))))
    for label, k in shapes:
        top = cfg.max_pack(k)
        for pack in sorted({top, 2} & set(range(2, top + 1))):
            per_group = (cfg.lanes // pack) * pack
            m = banks * (per_group + pack + 1)  # a second group with a partial last DRAM row
            while m > 1 and not cfg.gemv_fits(m, k, banks, pack):
                m -= 1
            cases.append((f"packed {label} {m}x{k} pack {pack}", rng.integers(lo, hi + 1, (m, k)),
                          rng.integers(lo, hi + 1, k), pack))
        if top >= 2:
            m = min(banks * top, banks * cfg.rows)
            cases.append((f"packed most negative squared {m}x{k}", np.full((m, k), lo, dtype=np.int64),
                          np.full(k, lo, dtype=np.int64), top))
    return cases


def _mac_commands(program) -> int:
    """MAC commands of a program (each one burst in every bank it drives)."""
    return sum(1 for c in program.commands if c.op == PimOp.MAC)


async def store(drv: PimDriver, W: np.ndarray, pack: int = 1) -> None:
    image = pim_layout(W, cols=drv.cfg.cols, banks=drv.banks, pack=pack, lanes=drv.cfg.lanes)
    for k in range(drv.banks):
        await drv.run(store_program(drv.cfg, image[k], bank=k))


async def gemv_case(drv: PimDriver, label: str, W, x, *, stored: bool = False,
                    background: Sequence[PimCommand] = (), pack: int = 1) -> tuple[int, int, list[int]]:
    """Store W (unless ``stored``; ``pack`` W rows per DRAM row), run the GEMV program, compare
    ``y`` and its cycle count. Returns the GEMV's first cycle, the cycle of its last output and
    the cycles of RD outputs."""
    cfg, report = drv.cfg, drv.report
    W = np.asarray(W)
    m, k = W.shape
    if not stored:
        await store(drv, W, pack)
    await drv.settle()  # cycles() counts from an idle bank
    program = gemv_program(cfg, x, m, pack)
    start = drv.cycle
    cycles = await drv.run(program.commands, background)
    gemv_end = cycles[-1] + 1
    ys = [(c, v) for c, v in drv.outputs("y", start) if c <= gemv_end]
    report.cases += 1
    report.expect(f"{label}: readouts", len(ys), len(program.readouts))
    report.expect(f"{label}: y", program.gather([v for _, v in ys], m), pim_gemv(W, x, cfg.acc_bits))
    if ys:
        report.expect_cycles(f"{label} ({m}x{k})", ys[-1][0] - cycles[0], cfg.cycles(m, k, pack))
        report.cycles_per_op.append((ys[-1][0] - cycles[0]) / max(1, _mac_commands(program) * drv.banks))
    report.expect(f"{label}: errors", [v for _, v in drv.outputs("err", start)], [])
    reads = [c for c, _ in drv.outputs("o", start)]
    drv.check(label)
    return cycles[0], ys[-1][0] if ys else gemv_end, reads


async def illegal_sequences(drv: PimDriver, rng: np.random.Generator) -> None:
    """The violations a controller can commit, each at least once where the timing makes it
    possible; each must be flagged with its reason and change nothing (the model, which
    ignores rejected commands, keeps predicting every later output)."""
    cfg, report = drv.cfg, drv.report
    lo = -(1 << cfg.word_bits - 1)
    bank = drv.banks - 1
    pim = cfg.pim_buffer
    junk = tuple([lo] * cfg.lanes)
    seen: list[str] = []
    wanted: list[str] = []

    def cmd(op, **kw):
        return PimCommand(op, bank=bank, **kw)

    async def violate(reason: str, command: PimCommand, possible: bool = True) -> None:
        start = drv.cycle
        await drv.issue(command, wait=False)
        errs = [v[0] for _, v in drv.outputs("err", start)]
        if possible:
            wanted.append(reason)
            report.expect(f"illegal: {reason} flagged for {command.op.name}", errs, [reason])
        seen.extend(errs)

    await drv.close_all()
    await drv.settle()
    r1, r2 = 0, cfg.rows - 1
    await drv.issue(cmd(PimOp.ACT, row=r1))
    for j in range(cfg.bursts):  # known data in r1, then close it
        await drv.issue(cmd(PimOp.WR, col=j, data=tuple(int(v) for v in rng.integers(lo, -lo, cfg.lanes))))
    await drv.issue(cmd(PimOp.PRE))
    await drv.settle()
    await violate("CLOSED", cmd(PimOp.RD, col=0))
    await violate("CLOSED", cmd(PimOp.WR, col=0, data=junk))
    await violate("CLOSED", cmd(PimOp.MAC, col=0, buf=pim, first=True))
    await drv.issue(cmd(PimOp.RDACC))
    await drv.issue(cmd(PimOp.ACT, row=r1))
    await violate("T_RCD", cmd(PimOp.RD, col=0), cfg.t_rcd > 1)
    await violate("OPEN", cmd(PimOp.ACT, row=r2))
    await violate("T_RAS", cmd(PimOp.PRE), cfg.t_ras > 3)
    if drv.model.open[bank][0] is None:  # t_ras <= 3: that PRE was legal
        await drv.issue(cmd(PimOp.ACT, row=r1))
    await drv.issue(cmd(PimOp.RD, col=0))
    await violate("T_CCD", cmd(PimOp.WR, col=cfg.bursts - 1, data=junk), cfg.t_ccd > 1)
    await drv.issue(cmd(PimOp.RD, col=cfg.bursts - 1))
    if cfg.dual_row_buffer:
        await violate("CONFLICT", cmd(PimOp.ACT, buf=1, row=r1))
    await drv.issue(cmd(PimOp.PRE))
    await violate("T_RP", cmd(PimOp.ACT, row=r2), cfg.t_rp > 1)
    # Out of range, where the field can hold a value past the end.
    if not cfg.dual_row_buffer:
        await violate("RANGE", cmd(PimOp.ACT, buf=1, row=r2))
    if cfg.rows & (cfg.rows - 1):
        await violate("RANGE", cmd(PimOp.ACT, row=(1 << (cfg.rows - 1).bit_length()) - 1))
    await drv.issue(cmd(PimOp.ACT, row=r1))
    if cfg.bursts & (cfg.bursts - 1) or cfg.bursts == 1:
        await violate("RANGE", cmd(PimOp.RD, col=(1 << max(1, (cfg.bursts - 1).bit_length())) - 1))
    if drv.channel:
        await violate("RANGE", PimCommand(PimOp.RD, all_banks=True))
        await violate("RANGE", PimCommand(PimOp.RDACC, all_banks=True))
        if drv.banks & (drv.banks - 1) or drv.banks == 1:
            await violate("RANGE", PimCommand(PimOp.PRE, bank=(1 << max(1, (drv.banks - 1).bit_length())) - 1))
    for j in range(cfg.bursts):  # the data survived every rejected write
        await drv.issue(cmd(PimOp.RD, col=j))
    await drv.close_all()
    report.cases += 1
    report.expect("illegal: every wanted violation seen", sorted(set(wanted) - set(seen)), [])
    drv.check("illegal sequences")


async def random_commands(drv: PimDriver, rng: np.random.Generator, n: int) -> None:
    """``n`` random commands, half of them offered before their timing allows, on a few rows."""
    cfg = drv.cfg
    lo, hi = -(1 << cfg.word_bits - 1), (1 << cfg.word_bits - 1) - 1
    fields = cfg.bank_cmd_fields()
    rows = rng.integers(0, cfg.rows, 3)
    ops = [PimOp.ACT, PimOp.PRE, PimOp.RD, PimOp.WR, PimOp.LDX, PimOp.MAC, PimOp.RDACC]
    for _ in range(n):
        op = ops[int(rng.choice(len(ops), p=[0.2, 0.1, 0.2, 0.2, 0.1, 0.15, 0.05]))]
        row = int(rows[rng.integers(0, 3)]) if rng.random() < 0.9 else int(rng.integers(0, 1 << fields["row"]))
        buf = int(rng.integers(0, cfg.row_buffers)) if rng.random() < 0.9 else 1
        command = PimCommand(op, buf=buf, row=row,
                             col=int(rng.integers(0, 1 << fields["col"])), acc=int(rng.integers(0, 1 << fields["acc"])),
                             first=bool(rng.integers(0, 2)), data=tuple(int(v) for v in rng.integers(lo, hi + 1, cfg.lanes)),
                             bank=int(rng.integers(0, drv.banks)), all_banks=drv.channel and rng.random() < 0.5)
        wait = rng.random() < 0.5 and (command.op not in (PimOp.ACT, PimOp.PRE) or command.buf < cfg.row_buffers)
        await drv.issue(command, wait=wait)
        for _ in range(int(rng.integers(0, 3))):
            await drv.step()
    drv.report.cases += 1
    drv.check("random commands")


def background_traffic(cfg, rng, rows: Sequence[int], bank: int = 0) -> list[PimCommand]:
    """Ordinary accesses on row buffer 0: per row ACT, WR and RD of every burst, PRE."""
    lo = -(1 << cfg.word_bits - 1)
    cmds = []
    for r in rows:
        cmds.append(PimCommand(PimOp.ACT, buf=0, row=int(r), bank=bank))
        for j in range(cfg.bursts):
            cmds.append(PimCommand(PimOp.WR, col=j, bank=bank,
                                   data=tuple(int(v) for v in rng.integers(lo, -lo, cfg.lanes))))
            cmds.append(PimCommand(PimOp.RD, col=j, bank=bank))
        cmds.append(PimCommand(PimOp.PRE, buf=0, bank=bank))
    return cmds


async def reads_during_gemv(drv: PimDriver, rng: np.random.Generator) -> None:
    """Dual row buffer: WR / RD traffic on rows the GEMV does not use, in the cycles the GEMV's
    commands wait; the GEMV keeps its exact cycle count and both results are right."""
    cfg, report = drv.cfg, drv.report
    lo, hi = -(1 << cfg.word_bits - 1), (1 << cfg.word_bits - 1) - 1
    m_rows = max(1, cfg.rows // 2) * drv.banks
    k = cfg.cols
    W, x = rng.integers(lo, hi + 1, (m_rows, k)), rng.integers(lo, hi + 1, k)
    await store(drv, W)
    free = range(cfg.rows // 2 if cfg.rows // 2 >= 1 else 1, cfg.rows)
    traffic = background_traffic(cfg, rng, list(free)[:4], bank=drv.banks - 1)
    first, last, reads = await gemv_case(drv, "GEMV with reads on buffer 0", W, x, stored=True,
                                         background=traffic)
    n_reads = sum(1 for c in traffic if c.op == PimOp.RD)
    report.expect("reads completed", len(reads), n_reads)
    if cfg.t_rcd + cfg.t_rp > 2:  # the GEMV leaves idle command slots
        report.expect("reads completed during the GEMV", any(first < c < last for c in reads), True)


async def run(bench, cfg, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    report = Report("pim-channel" if isinstance(cfg, PimChannelConfig) else "pim-bank")
    drv = PimDriver(bench, cfg, report)
    await drv.reset()
    for label, W, x in gemv_cases(cfg, rng):
        await gemv_case(drv, label, W, x)
    for label, W, x, pack in packed_cases(cfg, rng):
        await gemv_case(drv, label, W, x, pack=pack)
    await illegal_sequences(drv, rng)
    await random_commands(drv, rng, 200)
    await drv.close_all()
    await drv.settle()
    if cfg.dual_row_buffer:
        await reads_during_gemv(drv, rng)

    # Reset in the middle of a GEMV: the stored W survives, the next GEMV starts clean.
    lo, hi = -(1 << cfg.word_bits - 1), (1 << cfg.word_bits - 1) - 1
    m = min(_capacity(cfg), cfg.lanes + 1)
    W, x = rng.integers(lo, hi + 1, (m, cfg.cols)), rng.integers(lo, hi + 1, cfg.cols)
    await store(drv, W)
    program = gemv_program(cfg, x, m)
    await drv.run(program.commands[:len(program.commands) // 2])
    drv.check("before reset")
    await drv.reset()
    await gemv_case(drv, "after reset", W, x, stored=True)
    return report


async def activity(bench, cfg, seed: int, n_ops: int) -> int:
    """``n_ops`` GEMVs of random x against one random W filling a row per W row (up to
    ``lanes`` rows per bank); returns the lane MACs performed, counted from the MAC commands
    issued (each drives ``lanes`` lanes of every bank: all-bank mode)."""
    rng = np.random.default_rng(seed)
    drv = PimDriver(bench, cfg, Report("activity"))
    await drv.reset()
    lo, hi = -(1 << cfg.word_bits - 1), (1 << cfg.word_bits - 1) - 1
    m = min(cfg.rows, cfg.lanes) * drv.banks
    W = rng.integers(lo, hi + 1, (m, cfg.cols))
    await store(drv, W)
    macs = 0
    for _ in range(n_ops):
        program = gemv_program(cfg, rng.integers(lo, hi + 1, cfg.cols), m)
        await drv.run(program.commands)
        macs += _mac_commands(program) * cfg.lanes * drv.banks
    return macs
