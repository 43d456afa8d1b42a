"""Config checks and cycle formulas of the PEs, against independent arithmetic."""

import math

import pytest

from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.mixed import MixedConfig


@pytest.mark.parametrize("k", [1, 2, 4])
def test_bitserial_cycles_scale_with_precision(k):
    cfg = BitSerialConfig(k=k)
    for w in range(2, 9):
        assert cfg.interval(w) == math.ceil(w / k)
        # latency: accumulate (1 cycle) and the registered output (1 cycle) after the serial unit
        assert cfg.cycles(w, n_ops=5) == 5 * math.ceil(w / k) + 2
    assert cfg.cycles([2, 8]) == math.ceil(2 / k) + math.ceil(8 / k) + 2


def test_bitserial_accumulator_holds_worst_case_with_rescale():
    cfg = BitSerialConfig(lanes=64, a_bits=16, max_w_bits=8, rescale=True, max_shift=15, max_accumulations=1000)
    worst = 1000 * 64 * (1 << 15) * (1 << 7) * ((1 << 15) + (1 << 15))
    assert worst <= (1 << cfg.acc_bits - 1) - 1


def test_bitserial_code_bits_follow_table():
    assert BitSerialConfig(lut_entries=16).code_bits == 4
    assert BitSerialConfig(lut_entries=4).code_bits == 2
    assert BitSerialConfig(max_w_bits=6).code_bits == 6


def test_mixed_group_must_divide_by_lanes():
    with pytest.raises(ValueError, match=r"group=100 must be a multiple of lanes=16"):
        MixedConfig(group=100)
    with pytest.raises(ValueError, match=r"scale_frac_bits=9 must not exceed scale_bits=8"):
        MixedConfig(scale_bits=8, scale_frac_bits=9)
    with pytest.raises(ValueError, match=r"w_bits=8 is not allowed; choose one of 2 \| 3 \| 4"):
        MixedConfig(w_bits=8)


def test_mixed_accumulator_holds_worst_case():
    for zero_point in (False, True):
        cfg = MixedConfig(lanes=16, group=128, zero_point=zero_point, scale_bits=16, max_groups=64)
        # worst |acc - zp*sum(a)| per group: 128 products of 128*15 plus 15*128*128 (zp term)
        per_group = 128 * 128 * 15 + (15 * 128 * 128 if zero_point else 0)
        worst = 64 * per_group * ((1 << 16) - 1)
        assert worst <= (1 << cfg.acc_bits - 1) - 1
    assert MixedConfig(lanes=16, group=128).cycles(8) == 8 - 1 + 3
