"""GEMV cycles of the PIM channel, vectorized: the same schedule as ``PimChannelConfig.cycles``.

The RTL's formula (``peforge.hw.pim``) is evaluated here on numpy arrays of shapes so the
cost model can price every attention GEMV of a decode run at once; a unit test checks both
agree on random shapes.
"""

from __future__ import annotations

import numpy as np

from ..design.point import Pim


def pim_gemv_cycles(pim: Pim, out_rows, in_cols) -> np.ndarray:
    """Cycles of a GEMV with W of ``out_rows x in_cols`` words on one channel of ``pim.banks``
    banks in all-bank mode (rows of ``pim.row_words`` words, ``pim.lanes`` MAC lanes)."""
    out_rows = np.asarray(out_rows, dtype=np.float64)
    in_cols = np.asarray(in_cols, dtype=np.float64)
    lanes, cols, banks = pim.lanes, pim.row_words, pim.banks
    bursts = -(-cols // lanes)
    t_rcd, t_rp, t_ras, t_ccd = pim.t_rcd, pim.t_rp, pim.t_ras, pim.t_ccd

    def row_open(b):  # ACT to PRE of one DRAM row holding b bursts
        return np.maximum(t_rcd + (b - 1) * t_ccd + 1, t_ras)

    full, rest = np.divmod(in_cols, cols)
    has_rest = rest > 0
    last = np.where(has_rest, np.ceil(rest / lanes), bursts)
    segments = full + has_rest
    first = np.where(full >= 1, bursts, last)
    sum_open = full * row_open(bursts) + has_rest * row_open(last)

    def gap(b):
        return np.maximum(1 + b, t_rp)

    sum_gaps = full * gap(bursts) + has_rest * gap(last) - gap(first)  # segments after the first
    rows_per_bank = np.ceil(out_rows / banks)
    groups = np.ceil(rows_per_bank / lanes)
    reload = np.where(segments > 1, first, 0)
    return (first + rows_per_bank * sum_open + (rows_per_bank - groups) * segments * t_rp
            + groups * sum_gaps + (groups - 1) * np.maximum(1 + banks + reload, t_rp) + banks + 1)
