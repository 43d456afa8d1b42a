"""Every term of the PIM GEMV cycle formula, measured: GEMVs on a simulated PimBank / PimChannel
take exactly ``gemv_cycles`` cycles, and for the hand-counted shapes exactly the count worked
out from the command schedule.

The shapes are chosen so each term of the formula changes the count of some case (checked by
``test_cases_exercise_every_term``): several accumulator groups, several segments with a
partial last one, the x reload between groups, several banks, tRAS binding and not, tRP
binding in the segment and group gaps and not, tCCD > 1.
"""

import numpy as np
import pytest

from peforge.hw.pim import PimBankConfig, PimChannelConfig, gemv_cycles
from peforge.sim.runners import simulate_with
from peforge.sim.testbench import Report
from peforge.sim.testbench.pim import PimDriver, gemv_case

# The hand-counted schedules of tests/unit/test_pim.py: 1 bank, lanes = 1, cols = 2.
H = dict(cols=2, lanes=1, word_bits=8, t_rcd=2, t_rp=3, t_ras=4, t_ccd=2)

# A: 2 banks, 2 lanes, rows of 8 words = 4 bursts. ACT to PRE of a 4-burst row: 2 + 3 * 2 + 1 =
# 9 > t_ras (MAC-bound); of a 1-burst row: t_ras = 5 (tRAS-bound). Gap before a 4-burst
# segment: 4 LDX + ACT = 5 > t_rp; before a 1-burst one: t_rp = 4 > 1 + 1.
A = PimChannelConfig(banks=2, rows=16, cols=8, lanes=2, word_bits=8, t_rcd=2, t_rp=4, t_ras=5, t_ccd=2)
# B: one bank with a second row buffer, tRP long enough to bind every gap.
B = PimBankConfig(rows=12, cols=6, lanes=2, word_bits=8, t_rcd=3, t_rp=6, t_ras=8, t_ccd=3, dual_row_buffer=True)
# C: 3 banks (W rows not a multiple of banks), one lane, tCCD = 1.
C = PimChannelConfig(banks=3, rows=9, cols=4, lanes=1, word_bits=6, t_rcd=1, t_rp=2, t_ras=3, t_ccd=1)

# (config, [(out_rows, in_cols, hand-counted cycles or None)])
CASES = [
    (PimBankConfig(rows=8, **H), [
        (1, 1, 7),    # LDX@0, ACT@1, MAC@3, PRE@5, RDACC@6, y@7
        (2, 1, 14),   # 2 groups: ... PRE@5, RDACC@6, ACT@8 (tRP), MAC@10, PRE@12, RDACC@13, y@14
        (1, 3, 16),   # segments of 2 and 1 bursts, see test_cycles_hand_counted_schedules
        (2, 3, 32),   # the same with a second group and the x reload
    ]),
    (PimChannelConfig(banks=2, rows=8, **H), [
        (4, 1, 15),   # 2 rows per bank, 2 groups, 2 readouts each
    ]),
    (A, [
        # W 10 x 17: 5 rows per bank in groups of 2, 2, 1; segments of 4, 4, 1 bursts (the
        # last word padded to a burst of 2). LDX x 4, then per group of 2 rows: segment of 4
        # bursts 9 + tRP 4 + 9 = 22, gap 5, 22, gap tRP 4, segment of 1 burst 5 + 4 + 5 = 14:
        # 67 cycles; the 1-row group 9 + 5 + 9 + 4 + 5 = 32. Group gaps: PRE, RDACC x 2,
        # LDX x 4 (reload), ACT: 7 > tRP. Last PRE, RDACC x 2, y: 3.
        (10, 17, 4 + 67 + 7 + 67 + 7 + 32 + 3),
        # W 8 x 8: 4 rows per bank in 2 groups of 2, one segment. LDX x 4, 9 + 4 + 9, group
        # gap PRE, RDACC x 2, ACT = 3 < tRP 4, 9 + 4 + 9, 3.
        (8, 8, 4 + 22 + 4 + 22 + 3),
        (3, 20, None),
        (16, 1, None),
    ]),
    (B, [(4, 13, None), (5, 6, None), (1, 12, None)]),
    (C, [(7, 5, None), (9, 9, None), (2, 3, None)]),
]


def _formula(cfg, m, k, pack=1):
    return gemv_cycles(out_rows=m, in_cols=k, banks=getattr(cfg, "banks", 1), lanes=cfg.lanes, cols=cfg.cols,
                       t_rcd=cfg.t_rcd, t_rp=cfg.t_rp, t_ras=cfg.t_ras, t_ccd=cfg.t_ccd, pack=pack)


def _measured(config, gemvs, seed) -> list[int]:
    """Cycles of each GEMV ``(m, k, pack)`` on the RTL, random operands; its values checked."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << config.word_bits - 1), (1 << config.word_bits - 1) - 1

    async def measure(bench):
        report = Report("pim")
        driver = PimDriver(bench, config, report)
        await driver.reset()
        measured = []
        for m, k, pack in gemvs:
            first, last, _ = await gemv_case(driver, f"{m}x{k}/{pack}", rng.integers(lo, hi + 1, (m, k)),
                                             rng.integers(lo, hi + 1, k), pack=pack)
            measured.append(last - first)
        return report, measured

    report, measured = simulate_with(config, measure)
    assert report.passed, report.failures[:5]  # values right, no command rejected
    return measured


def _terms(cfg, m, k) -> dict[str, bool]:
    """Whether each term changes the count of GEMV m x k, from its geometry alone."""
    banks = getattr(cfg, "banks", 1)
    bursts = cfg.cols // cfg.lanes
    segs = [bursts] * (k // cfg.cols) + ([-(-(k % cfg.cols) // cfg.lanes)] if k % cfg.cols else [])
    m_b = -(-m // banks)
    groups = -(-m_b // cfg.lanes)
    reload = segs[0] if len(segs) > 1 else 0
    mac_bound = [cfg.t_rcd + (b - 1) * cfg.t_ccd + 1 for b in segs]
    return {
        "groups": groups > 1,
        "partial last segment": len(segs) > 1 and k % cfg.cols > 0,
        "rows within a group (t_rp)": m_b > groups,
        "x reload": groups > 1 and reload > 0 and 1 + banks + reload > cfg.t_rp,
        "banks > 1": banks > 1,
        "t_ras binds": any(cfg.t_ras > p for p in mac_bound),
        "t_ccd counts": any(p > cfg.t_ras and b > 1 for p, b in zip(mac_bound, segs)) and cfg.t_ccd > 1,
        "t_rp binds a segment gap": any(cfg.t_rp > 1 + b for b in segs[1:]),
        "LDX binds a segment gap": any(1 + b > cfg.t_rp for b in segs[1:]),
        "t_rp binds a group gap": groups > 1 and cfg.t_rp > 1 + banks + reload,
        "readouts bind a group gap": groups > 1 and 1 + banks + reload > cfg.t_rp,
    }


def test_cases_exercise_every_term():
    every = _terms(A, 1, 1).keys()
    covered = {name for cfg, shapes in CASES for m, k, _ in shapes for name, holds in _terms(cfg, m, k).items() if holds}
    assert sorted(every - covered) == []
    for cfg, shapes in CASES:
        for m, k, _ in shapes:
            assert cfg.gemv_fits(m, k, getattr(cfg, "banks", 1)), (cfg, m, k)


@pytest.mark.parametrize("config, shapes", CASES, ids=[repr(c) for c, _ in CASES])
def test_measured_cycles_equal_formula_and_hand_counts(config, shapes):
    measured = _measured(config, [(m, k, 1) for m, k, _ in shapes], seed=5)
    assert measured == [_formula(config, m, k) for m, k, _ in shapes]
    hand = [(got, cycles) for got, (_, _, cycles) in zip(measured, shapes) if cycles is not None]
    assert [got for got, _ in hand] == [cycles for _, cycles in hand]


# Packed rows: ``pack`` W rows per DRAM row, their MACs back to back with no ACT / PRE between.
# P1: 1 bank, 2 lanes, rows of 2 bursts; W rows of 2 words = 1 burst, so 2 per DRAM row and one
# DRAM row per accumulator group. P2: 2 banks, rows of 4 bursts; tRP binds the group gap. P3:
# dual row buffer, 8 lanes, a pack of 3 (groups of 6 W rows in 2 DRAM rows), tRAS binds, the
# readouts bind the group gap.
P1 = PimBankConfig(rows=8, cols=4, lanes=2, word_bits=8, t_rcd=2, t_rp=3, t_ras=4, t_ccd=2)
P2 = PimChannelConfig(banks=2, rows=16, cols=16, lanes=4, word_bits=8, t_rcd=2, t_rp=5, t_ras=6, t_ccd=2)
P3 = PimBankConfig(rows=8, cols=32, lanes=8, word_bits=8, t_rcd=1, t_rp=1, t_ras=9, t_ccd=1, dual_row_buffer=True)

# (config, [(out_rows, in_cols, pack, hand-counted cycles or None)])
PACKED = [
    (P1, [
        # LDX@0,1 (x into both slots); ACT@2, MAC@4, MAC@6, PRE@7 (P = 2 + 2 + 1 = 5 > tRAS 4);
        # RDACC@8, ACT@10 (tRP 3 > 1 + 1); the last DRAM row holds one W row: MAC@12, PRE@14
        # (tRAS binds); RDACC@15, y@16.
        (3, 2, 2, 16),
        (4, 1, 2, None),
    ]),
    (P2, [
        # 8 W rows per bank of 1 burst, 4 per DRAM row: LDX x 4, then 2 groups of one DRAM row
        # each, P = 2 + 3 * 2 + 1 = 9, group gap max(1 + 2, tRP 5) = 5, RDACC x 2, y: 4 + 9 + 5
        # + 9 + 3.
        (16, 4, 4, 4 + 9 + 5 + 9 + 3),
        (13, 3, 2, None),   # 2 DRAM rows per group: tRP between them; a partial last row
        (7, 8, 2, None),    # vectors of 2 bursts
    ]),
    (P3, [(13, 5, 3, None), (20, 8, 4, None), (5, 16, 2, None)]),
]


def _packed_terms(cfg, m, k, pack) -> dict[str, bool]:
    """Whether each term of the packed formula changes the count of GEMV m x k, from its geometry."""
    banks = getattr(cfg, "banks", 1)
    v = -(-k // cfg.lanes)
    m_b = -(-m // banks)
    per_row = cfg.lanes // pack
    per_group = per_row * pack
    groups = -(-m_b // per_group)
    rest = m_b - (groups - 1) * per_group
    whole, tail = (groups - 1) * per_row + rest // pack, rest % pack
    bound = lambda b: cfg.t_rcd + (b - 1) * cfg.t_ccd + 1  # noqa: E731
    return {
        "several vectors per DRAM row": pack > 1 and whole > 0,
        "partial last DRAM row": tail > 0,
        "DRAM rows within a group (t_rp)": whole + (tail > 0) > groups,
        "groups": groups > 1,
        "banks > 1": banks > 1,
        "vectors of several bursts": v > 1,
        "pack does not divide lanes": cfg.lanes % pack > 0 and groups > 1,
        "t_ras binds a row": cfg.t_ras > bound(pack * v) or tail > 0 and cfg.t_ras > bound(tail * v),
        "MACs bind a row": bound(pack * v) > cfg.t_ras,
        "t_rp binds a group gap": groups > 1 and cfg.t_rp > 1 + banks,
        "readouts bind a group gap": groups > 1 and 1 + banks > cfg.t_rp,
    }


def test_packed_cases_exercise_every_term():
    every = _packed_terms(P1, 1, 1, 1).keys()
    covered = {name for cfg, shapes in PACKED for m, k, p, _ in shapes for name, holds in _packed_terms(cfg, m, k, p).items()
               if holds}
    assert sorted(every - covered) == []
    for cfg, shapes in PACKED:
        for m, k, pack, _ in shapes:
            assert 2 <= pack <= cfg.max_pack(k) and cfg.gemv_fits(m, k, getattr(cfg, "banks", 1), pack), (cfg, m, k)


def test_packed_rows_take_fewer_cycles_and_rows():
    # 4 W rows of one burst per DRAM row: one ACT/PRE per 4 rows instead of per row.
    assert P2.cycles(16, 4, 4) < P2.cycles(16, 4)
    assert P2.dram_rows(16, 4, 2, 4) == 2 and P2.dram_rows(16, 4, 2) == 8
    with pytest.raises(ValueError, match="pack=5 W rows of 4 words do not fit one DRAM row of 16 words"):
        P2.cycles(16, 4, 5)
    with pytest.raises(ValueError, match="allowed 1..2"):
        P2.cycles(4, 8, 3)


@pytest.mark.parametrize("config, shapes", PACKED, ids=[repr(c) for c, _ in PACKED])
def test_packed_measured_cycles_equal_formula_and_hand_counts(config, shapes):
    measured = _measured(config, [(m, k, pack) for m, k, pack, _ in shapes], seed=7)
    assert measured == [_formula(config, m, k, pack) for m, k, pack, _ in shapes]
    hand = [(got, cycles) for got, (_, _, _, cycles) in zip(measured, shapes) if cycles is not None]
    assert [got for got, _ in hand] == [cycles for _, cycles in hand]
