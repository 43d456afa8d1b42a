"""The PE registry and protocol: discovery, lookups, figures, accumulation bounds, and the
vectorized GEMM cycle formula against the cost model's copy and the per-row schedule."""

import numpy as np
import pytest

from peforge.dse.accelerator import Compute
from peforge.dse.arraymodel import array_shapes
from peforge.dse.arraymodel import gemm_cycles as model_gemm_cycles
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


def _random_pe(name, rng):
    if name == "mac":
        return MacConfig(a_bits=int(rng.integers(2, 17)), w_bits=int(rng.integers(2, 17)),
                         output_register=bool(rng.integers(2)))
    if name == "bitserial":
        return BitSerialConfig(lanes=int(rng.integers(1, 65)), k=int(rng.choice([1, 2, 4])),
                               max_w_bits=int(rng.integers(2, 9)))
    lanes = int(rng.integers(1, 65))
    return MixedConfig(lanes=lanes, group=lanes * int(rng.integers(1, 4096 // lanes + 1)),
                       w_bits=int(rng.choice([2, 3, 4])))


def test_gemm_cycles_equals_the_cost_models_copy():
    """A few thousand random designs and shapes of every kind and dataflow, arrays up to 256 x
    256, K up to 50,000 (reference: today's ``dse.arraymodel.gemm_cycles``)."""
    rng = np.random.default_rng(5)
    computes, figures = [], []
    for _ in range(3000):
        name = str(rng.choice(["mac", "bitserial", "mixed"]))
        pe = _random_pe(name, rng)
        computes.append(Compute(pe=name, rows=int(rng.integers(1, 257)), cols=int(rng.integers(1, 257)),
                                dataflow=str(rng.choice(["ws", "os"])), pe_params=tuple(params.as_dict(pe).items())))
        figures.append(pe.figures())
    n = len(computes)
    m, k, nn = rng.integers(1, 5000, n), rng.integers(1, 50_001, n), rng.integers(1, 50_001, n)
    w_bits = rng.integers(2, 17, n)
    reference = model_gemm_cycles(array_shapes(computes), m[:, None, None], k[:, None, None], nn[:, None, None],
                                  w_bits[:, None, None])[:, 0, 0]
    col = lambda f: np.array([f(c, fig) for c, fig in zip(computes, figures)])  # noqa: E731
    ours = gemm_cycles(rows=col(lambda c, f: c.rows), cols=col(lambda c, f: c.cols),
                       ws=col(lambda c, f: c.dataflow == "ws"), lanes=col(lambda c, f: f.lanes),
                       beat_cycles=np.array([f.beat_cycles(int(w)) for f, w in zip(figures, w_bits)]),
                       edge=col(lambda c, f: f.ws_edge_stages),
                       os_latency=np.array([f.os_latency(int(w)) for f, w in zip(figures, w_bits)]),
                       m=m, k=k, n=nn)
    assert np.array_equal(ours, reference.astype(np.int64))
    # figures vectorize too: one call over all precisions, or over columns of designs
    fig = figures[0]
    assert np.array_equal(fig.beat_cycles(w_bits), [fig.beat_cycles(int(w)) for w in w_bits])
    columns = beat_cycles(w_bits, k_bits=col(lambda c, f: f.k_bits), max_w_bits=col(lambda c, f: f.max_w_bits))
    assert np.array_equal(columns, [f.beat_cycles(int(w)) for f, w in zip(figures, w_bits)])
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
