"""The PE registry and protocol: discovery, lookups, figures, accumulation bounds, and the
vectorized GEMM cycle formula against hand-evaluated cases and the per-row schedule."""

import numpy as np
import pytest

from peforge.dse.design.point import Compute
from peforge.hw import params
from peforge.hw.blocks import BLOCKS
from peforge.hw.pe import PE_KINDS, PeFigures, kind_of, pe_kind
from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.pe.protocol import beat_cycles
from peforge.hw.systolic import SystolicConfig, gemm_cycles


def test_registry_discovers_kinds_in_order():
    assert list(PE_KINDS)[:3] == ["mac", "bitserial", "mixed"]
    assert list(BLOCKS)[:len(PE_KINDS)] == list(PE_KINDS)
    for name, kind in PE_KINDS.items():
        assert kind.name == name and kind_of(kind.config()) is kind and pe_kind(name) is kind
        assert BLOCKS[name].config is kind.config and BLOCKS[name].component is kind.component
    assert params.describe(SystolicConfig)[2]["allowed"] == " | ".join(PE_KINDS)


def test_unknown_kind_one_line():
    with pytest.raises(ValueError, match=r"^unknown PE kind 'fpu'; known: mac, bitserial, mixed"):
        pe_kind("fpu")
    with pytest.raises(TypeError, match="not a PE config"):
        kind_of(SystolicConfig())


@pytest.mark.parametrize("name", list(PE_KINDS))
def test_figures_are_the_configs_own(name):
    cfg = PE_KINDS[name].config()
    fig = cfg.figures()
    assert isinstance(fig, PeFigures)
    assert (fig.lanes, fig.a_bits, fig.max_w_bits) == (cfg.lanes, cfg.a_bits, cfg.max_w_bits)
    assert fig.max_reduction == cfg.max_reduction
    w = np.arange(0, 17)
    assert np.array_equal(fig.beat_cycles(w), cfg.beat_cycles(w))
    assert np.array_equal(fig.os_latency(w), cfg.os_latency(w))


def test_figures_by_hand():
    mac = MacConfig(output_register=True)
    assert (mac.lanes, mac.a_bits, mac.max_w_bits, mac.ws_edge_stages) == (1, 8, 8, 0)
    assert mac.beat_cycles(8) == 1 and mac.os_latency(8) == 2  # product + accumulate, output register
    bs = BitSerialConfig(lanes=4, k=2, max_w_bits=6)
    # ceil(w / 2), out-of-range precisions (0, 1, 7, 15) run as max_w_bits = 6: 3 cycles
    assert list(bs.beat_cycles(np.array([0, 1, 2, 3, 4, 5, 6, 7, 15]))) == [3, 3, 1, 2, 2, 3, 3, 3, 3]
    assert bs.beat_cycles(None) == 3 and bs.os_latency(5) == 3 + 2  # the beat, accumulate, output register
    mixed = MixedConfig(lanes=2, group=8)
    assert (mixed.lanes, mixed.a_bits, mixed.max_w_bits, mixed.ws_edge_stages, mixed.out_shift) == (2, 8, 4, 1, 12)
    assert mixed.beat_cycles(np.array([2, 4])).tolist() == [1, 1] and mixed.os_latency() == 3


def test_max_reduction_by_hand():
    # mac 4 x 4 bits, 3 accumulations: acc 4 + 4 + 2 = 10 bits holds 511 = 7 x (-8 x -8) + 63
    mac = MacConfig(a_bits=4, w_bits=4, max_accumulations=3)
    assert mac.acc_bits == 10 and mac.max_reduction == 7
    # bit-serial 3 lanes, 2-bit a and w, 3 accumulations: dot 2 + 2 + 2 = 6, acc 8 bits holds
    # 127 = 10 dot products of 3 x (-2 x -2) = 12, + 7: 30 products
    bs = BitSerialConfig(lanes=3, k=1, a_bits=2, max_w_bits=2, max_accumulations=3)
    assert bs.acc_bits == 8 and bs.max_reduction == 30
    # mixed 1 lane, group 1, signed 4-bit w, 2-bit scale: product 13, group 13, corrected 14,
    # acc 14 + 2 + 2 = 18 bits holds 131071 = 42 groups of -128 x -8 x 3 = 3072, + 2047
    mixed = MixedConfig(lanes=1, group=1, w_bits=4, zero_point=False, scale_bits=2, scale_frac_bits=0, max_groups=3)
    assert mixed.acc_bits == 18 and mixed.max_reduction == 42
    for kind in PE_KINDS.values():  # the parameter is a floor the widths guarantee
        cfg = kind.config()
        floor = {"mac": lambda c: c.max_accumulations, "bitserial": lambda c: c.max_accumulations * c.lanes,
                 "mixed": lambda c: c.group * c.max_groups}.get(kind.name)
        if floor:
            assert floor(cfg) <= cfg.max_reduction < 8 * floor(cfg)


# Hand evaluations of the documented closed form (SystolicConfig.cycles), at sizes where every term counts.
HAND = [
    # ws, R = C = 128, lanes 1, T = 1, e = 0, M = 1, K = N = 4096:
    # F = 32·32 = 1024 folds, P = max(1, 128) = 128 → (128 + 1023·128 + 0 + 128 + 128 + 0)·1 + 1 = 131329
    (dict(rows=128, cols=128, ws=True, lanes=1, beat_cycles=1, edge=0, os_latency=0), (1, 4096, 4096), 131329),
    # ws, R = 8, C = 16, lanes 4, T = 2, e = 1, M = 64, K = 1000, N = 40:
    # F = ceil(1000/32)·ceil(40/16) = 32·3 = 96, P = max(64, 8) = 64
    # → (8 + 95·64 + 63 + 8 + 16 + 1)·2 + 1 = (8 + 6080 + 88)·2 + 1 = 12353
    (dict(rows=8, cols=16, ws=True, lanes=4, beat_cycles=2, edge=1, os_latency=0), (64, 1000, 40), 12353),
    # os, R = 4, C = 8, lanes 2, T = 3, L_pe = 5, M = 10, K = 7, N = 9:
    # F = 3·2 = 6, Kb = 4, r = 10 - 2·4 = 2, P = max(4, 4, 7) = 7 (the C - 1 term binds)
    # → (5·7 + 4 + 2 + 8 - 3)·3 + 2 + 5 = 46·3 + 7 = 145
    (dict(rows=4, cols=8, ws=False, lanes=2, beat_cycles=3, edge=0, os_latency=5), (10, 7, 9), 145),
    # os, R = C = 16, lanes 1, T = 1, L_pe = 1, M = 64, K = 3000, N = 48:
    # F = 4·3 = 12, Kb = 3000, r = 16, P = 3000 → (11·3000 + 3000 + 16 + 16 - 3)·1 + 2 + 1 = 36032
    (dict(rows=16, cols=16, ws=False, lanes=1, beat_cycles=1, edge=0, os_latency=1), (64, 3000, 48), 36032),
]


@pytest.mark.parametrize("array, shape, expected", HAND)
def test_gemm_cycles_by_hand(array, shape, expected):
    m, k, n = shape
    assert int(gemm_cycles(**array, m=m, k=k, n=n)) == expected


def test_cost_model_prices_the_rtl_formula():
    """The cost model's array columns give the same cycles as the formula for each design's PE,
    vectorized over designs (a mac ws and a bit-serial os design; hand values as above)."""
    from peforge.dse.cost.array import array_shapes, gemm_cycles as priced

    mac = Compute(pe="mac", rows=128, cols=128, dataflow="ws")
    serial = Compute(pe="bitserial", rows=4, cols=8, dataflow="os", pe_params=(("k", 2), ("lanes", 2)))
    shape = array_shapes([mac, serial])
    # bit-serial os at 6-bit weights: T = ceil(6/2) = 3, L_pe = latency 2 + T = 5 (the case above)
    assert serial.pe_config.os_latency(6) == 5 and serial.pe_config.beat_cycles(6) == 3
    cycles = priced(shape, np.array([1, 10])[:, None, None], np.array([4096, 7])[:, None, None],
                    np.array([4096, 9])[:, None, None], 6)
    assert cycles[:, 0, 0].tolist() == [131329, 145]


def test_figures_vectorize():
    rng = np.random.default_rng(5)
    w_bits = rng.integers(2, 17, 200)
    figures = [PE_KINDS[name].config().figures() for name in PE_KINDS]
    for fig in figures:  # one call over all precisions
        assert np.array_equal(fig.beat_cycles(w_bits), [fig.beat_cycles(int(w)) for w in w_bits])
    k_bits = np.array([f.k_bits for f in figures])[:, None]  # or over columns of designs
    top = np.array([f.max_w_bits for f in figures])[:, None]
    assert np.array_equal(beat_cycles(w_bits, k_bits=k_bits, max_w_bits=top),
                          [[f.beat_cycles(int(w)) for w in w_bits] for f in figures])
    assert np.array_equal(beat_cycles(w_bits.astype(float), k_bits=2, max_w_bits=6),
                          beat_cycles(w_bits, k_bits=2, max_w_bits=6))


@pytest.mark.parametrize("name", list(PE_KINDS))
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_cycles_is_the_last_output_row(name, dataflow):
    """The closed form and the per-row schedule agree, for many shapes and both dataflows."""
    rng = np.random.default_rng(len(name))
    for _ in range(150):
        rows, cols = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        pe = PE_KINDS[name].config()
        if hasattr(pe, "group"):  # a ws fold must lie in one quantization group
            pe = type(pe)(**{**params.as_dict(pe), "lanes": 2, "group": 2 * rows * int(rng.integers(1, 4))})
        if hasattr(pe, "output_register") and dataflow == "ws":
            pe = type(pe)(**{**params.as_dict(pe), "output_register": False})
        cfg = SystolicConfig(pe=name, dataflow=dataflow, rows=rows, cols=cols, pe_config=pe, max_m=64, max_k=512,
                             max_n=64)
        M, K, N = int(rng.integers(1, 65)), int(rng.integers(1, 513)), int(rng.integers(1, 65))
        w_bits = int(rng.integers(0, 16))
        outs = cfg.outputs(M, K, N, w_bits)
        assert [o.cycle for o in outs] == sorted(o.cycle for o in outs)
        assert cfg.cycles(M, K, N, w_bits) == max(o.cycle for o in outs) == outs[-1].cycle
        assert len(outs) == M * -(-N // cols)
