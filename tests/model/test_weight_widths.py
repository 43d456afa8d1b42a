"""Every integer weight width 2..8 reaches the bit-serial PE's price: ceil(w / k) cycles per beat."""

import pytest

from peforge.dse.cost.api import evaluate, prepare
from peforge.dse.design.point import Compute, DesignPoint, Memory, Sram


def bitserial(k: int) -> DesignPoint:
    return DesignPoint(name=f"bitserial-k{k}", tech="7nm",
                       compute=Compute(pe="bitserial", rows=16, cols=16, clock_mhz=500.0,
                                       pe_params=(("lanes", 8), ("k", k), ("a_bits", 8), ("max_w_bits", 8))),
                       sram=Sram(weight_kib=512, activation_kib=512, output_kib=256),
                       memory=Memory(technology="HBM3", units=4))


def array_seconds(design: DesignPoint, bits: int) -> float:
    """Prefill time of GPT-2's MLP up projection (256 x 768 x 3072: compute-bound on 16 x 16)."""
    result = evaluate(design, prepare("gpt2", seq=256, gen=1, quant=f"w{bits}a8kv8-g64"), phases=("prefill",))
    ops = result.operators
    row = ops[ops.operator == "mlp.up_proj"]
    assert list(row.bound) == ["compute"]
    return float(row.time_s.iloc[0])


def test_one_bit_per_cycle_prices_every_width_apart():
    design = bitserial(1)
    times = [array_seconds(design, bits) for bits in range(2, 9)]
    assert times == sorted(times) and len(set(times)) == len(times)  # w2 < w3 < ... < w8
    w4, w5, w6 = times[2:5]
    assert w4 < w5 < w6
    # the product streams w beats per dot product: doubling the width nearly doubles the time
    assert times[6] / times[2] == pytest.approx(8 / 4, rel=0.05)


def test_two_bits_per_cycle_rounds_up_to_whole_slices():
    """k = 2: ceil(5/2) = ceil(6/2) = 3 beats, ceil(4/2) = 2, ceil(7/2) = 4."""
    design = bitserial(2)
    w4, w5, w6, w7 = (array_seconds(design, bits) for bits in (4, 5, 6, 7))
    assert w5 == w6
    assert w4 < w5 < w7
