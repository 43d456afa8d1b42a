"""PimBank and PimChannel against the golden GEMV, the command-level model and the exact
``cycles()`` in the Amaranth simulator: single and dual row buffer, 1-, 2- and 4-bank channels."""

import pytest

from peforge.hw.pim import PimBankConfig, PimChannelConfig
from peforge.sim.runners import simulate

FAST = dict(t_rcd=3, t_rp=2, t_ras=6, t_ccd=2)

BANKS = [
    PimBankConfig(rows=8, cols=8, lanes=4, word_bits=8, **FAST),
    PimBankConfig(rows=5, cols=12, lanes=4, word_bits=8, t_rcd=2, t_rp=3, t_ras=5, t_ccd=2, dual_row_buffer=True),
    PimBankConfig(rows=8, cols=3, lanes=1, word_bits=4, t_rcd=1, t_rp=1, t_ras=1, t_ccd=1),
    PimBankConfig(rows=6, cols=64, lanes=32, word_bits=32, t_rcd=2, t_rp=4, t_ras=3, t_ccd=1),
    PimBankConfig(dual_row_buffer=True),  # defaults: 64 x 32 words of 16 bits, 16 lanes, HBM2 timing
]

CHANNELS = [
    PimChannelConfig(banks=1, rows=8, cols=8, lanes=4, word_bits=8, **FAST),
    PimChannelConfig(banks=2, rows=6, cols=8, lanes=2, word_bits=8, dual_row_buffer=True, **FAST),
    PimChannelConfig(banks=3, rows=7, cols=12, lanes=4, word_bits=6, t_rcd=2, t_rp=5, t_ras=4, t_ccd=3),
    PimChannelConfig(banks=4, rows=16, cols=16, lanes=8, word_bits=16, t_rcd=4, t_rp=4, t_ras=9, t_ccd=2),
]


def _check(report, config):
    assert report.passed, report.failures[:5]
    assert report.cycles_checked >= 12  # every GEMV's cycle count, against config.cycles()
    assert report.ops > 0
    assert report.cases >= 14 + config.dual_row_buffer


@pytest.mark.parametrize("config", BANKS, ids=repr)
def test_pim_bank_matches_model_and_cycles(config):
    _check(simulate(config, seed=0), config)


@pytest.mark.parametrize("config", CHANNELS, ids=repr)
def test_pim_channel_matches_model_and_cycles(config):
    _check(simulate(config, seed=0), config)


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds(seed):
    _check(simulate(BANKS[1], seed=seed), BANKS[1])
    _check(simulate(CHANNELS[1], seed=seed), CHANNELS[1])


# The activity workload stores one W row per DRAM row, min(rows, lanes) rows per bank, and runs
# n_ops = 2 GEMVs; lane MACs = rows used x bursts per row x lanes x banks x n_ops.
ACTIVITY = [
    (BANKS[0], 4 * 2 * 4 * 1 * 2),     # 8 rows, 4 lanes: 4 rows; 8 words = 2 bursts of 4
    (CHANNELS[1], 2 * 4 * 2 * 2 * 2),  # 6 rows, 2 lanes: 2 rows per bank; 8 words = 4 bursts of 2; 2 banks
    (CHANNELS[2], 4 * 3 * 4 * 3 * 2),  # 7 rows, 4 lanes: 4 rows per bank; 12 words = 3 bursts of 4; 3 banks
]


@pytest.mark.parametrize("config, macs", ACTIVITY, ids=repr)
def test_activity_workload_counts_lane_macs(config, macs):
    from peforge.sim.runners import simulate_with
    from peforge.sim.testbench import activity_for

    assert simulate_with(config, lambda bench: activity_for("pim-bank")(bench, config, 0, 2)) == macs
