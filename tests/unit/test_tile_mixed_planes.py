"""INT8 weights as digit planes of the mixed PE's codes (:mod:`peforge.dse.tile.lower_mixed`): the
planes' GEMMs, by the PE's own golden (the model its RTL matches bit for bit), accumulated as the
tile engine accumulates, equal the integer product ``A W^T``."""

from __future__ import annotations

import numpy as np
import pytest

from peforge.dse.tile.lower_mixed import int8_planes
from peforge.hw.golden import wrap
from peforge.hw.pe.mixed import MixedConfig

OUT_BITS = 32  # the output scratchpad's elements


def planes_product(a, weights, pe):
    total = np.zeros((a.shape[0], weights.shape[0]), dtype=object)
    for plane in int8_planes(weights, pe):
        for _ in range(plane.repeats):
            total = wrap(total + pe.golden_gemm(a, plane.codes.T, acc_bits=pe.acc_bits, meta=plane.meta), OUT_BITS)
    return total


@pytest.mark.parametrize("params", [dict(lanes=4, w_bits=4, group=32), dict(lanes=4, w_bits=3, group=8),
                                    dict(lanes=2, w_bits=2, group=4, scale_frac_bits=0),
                                    dict(lanes=4, w_bits=4, group=16, scale_bits=20)],
                         ids=["default-4bit", "3bit", "2bit-frac0", "4bit-wide-scale"])
def test_planes_give_the_integer_product(params):
    pe = MixedConfig(**params)
    rng = np.random.default_rng(params["w_bits"])
    k = 3 * pe.group + 5  # a partial last group
    a = rng.integers(-128, 128, (7, k))
    w = rng.integers(-128, 128, (9, k))
    w[0, :] = -128
    w[1, :] = 127
    a[0, :] = -128
    got = planes_product(a, w, pe)
    assert np.array_equal(got.astype(np.int64), a @ w.T)


def test_default_pe_plans_a_low_plane_and_a_high_plane_run_twice():
    pe = MixedConfig(lanes=4, w_bits=4, group=32)  # 16-bit scales, 12 fraction bits
    low, high = int8_planes(np.array([[-128, -1, 0, 127]]), pe)
    assert (low.repeats, int(low.meta["scale"][0, 0]), int(low.meta["zp"][0, 0])) == (1, 4096, 0)
    assert (high.repeats, int(high.meta["scale"][0, 0]), int(high.meta["zp"][0, 0])) == (2, 32768, 8)
    assert low.codes.tolist() == [[0, 15, 0, 15]] and high.codes.tolist() == [[0, 7, 8, 15]]


def test_refusals():
    with pytest.raises(ValueError, match="zero_point"):
        int8_planes(np.zeros((2, 4)), MixedConfig(lanes=4, w_bits=4, group=4, zero_point=False))
    with pytest.raises(ValueError, match="no exact scale"):
        int8_planes(np.zeros((2, 4)), MixedConfig(lanes=4, w_bits=4, group=4, scale_bits=8, scale_frac_bits=8))
    with pytest.raises(ValueError, match="INT8"):
        int8_planes(np.full((2, 4), 128), MixedConfig(lanes=4, w_bits=4, group=4))


# --- the tiny layer on the mixed PE, through the compiler and the interpreter -------------------

MIXED = (("lanes", 4), ("w_bits", 4), ("group", 32))


def _compiled_layer(dataflow: str):
    """Prefill, then decode, of the tiny layer on a 4 x 4 mixed-PE tile with the cost model's mappings."""
    from test_tile_compiler import TOKENS, design, model_mappings, run, tile_of

    from peforge.dse.tile.intlayer import IntLayer, KVCache

    layer = IntLayer()
    x = layer.embed(np.random.default_rng(7).integers(0, layer.config.model.vocab_size, TOKENS + 1))
    d = design(pe="mixed", dataflow=dataflow, pe_params=MIXED)
    maps, tile = model_mappings(d), tile_of(d)
    golden = layer.execute(x[:TOKENS])
    prefill, dram = run(layer, tile, maps["prefill"], x[:TOKENS])
    cache = KVCache(k=golden["k_cache"], v_t=golden["v_cache_t"], length=TOKENS)
    decode, decode_dram = run(layer, tile, maps["decode"], x[TOKENS:], cache, position=TOKENS)
    return tile, (prefill, dram, golden), (decode, decode_dram, layer.execute(x[TOKENS:], cache))


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_tiny_layer_on_the_mixed_pe_is_bit_exact(dataflow):
    from test_tile_compiler import MEMORY, assert_every_tensor

    from peforge.hw.tile.isa import Issue
    from peforge.hw.tile.rules import check_program

    tile, *phases = _compiled_layer(dataflow)
    for compiled, dram, expected in phases:
        assert_every_tensor(compiled, dram, expected)
        check_program(tile, compiled.program, MEMORY)
        assert len(tile.encode(compiled.program)) == len(compiled.program)  # every command fits its unit
        gemms = [ins.command for ins in compiled.program if isinstance(ins, Issue) and ins.slot.startswith("gemm")]
        # each GEMM tile: the low plane, then the high plane twice, accumulated onto it
        assert [cmd.accumulate for cmd in gemms[:3]] == [False, True, True]
        assert len({cmd.meta_base for cmd in gemms[:3]}) == 2
