"""The cost model's vectorized PIM GEMV cycles equal the RTL block's own formula."""

import numpy as np
import pytest

from peforge.dse.design.point import Pim
from peforge.dse.cost.pim import pim_gemv_cycles
from peforge.hw.pim import PimChannelConfig


@pytest.mark.parametrize("seed", range(4))
def test_vectorized_equals_block_formula(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    while checked < 40:
        lanes = int(rng.choice([4, 8, 16]))
        cols = int(rng.choice([16, 32, 64]))
        banks = int(rng.choice([1, 2, 4]))
        timing = dict(t_rcd=int(rng.integers(1, 20)), t_rp=int(rng.integers(1, 20)),
                      t_ras=int(rng.integers(1, 40)), t_ccd=int(rng.integers(1, 4)))
        block = PimChannelConfig(lanes=lanes, cols=cols, banks=banks, rows=64, **timing)
        out_rows, in_cols = int(rng.integers(1, 80)), int(rng.integers(1, 200))
        if not block.gemv_fits(out_rows, in_cols, banks):
            continue
        model = Pim(lanes=lanes, row_words=cols, banks=banks, **timing)
        assert float(pim_gemv_cycles(model, out_rows, in_cols)) == block.cycles(out_rows, in_cols)
        checked += 1


def test_longer_rows_amortize_activation():
    pim = Pim()
    short = pim_gemv_cycles(pim, 1024, 128) / (1024 * 128)
    long = pim_gemv_cycles(pim, 128, 1024) / (1024 * 128)
    assert long < short
