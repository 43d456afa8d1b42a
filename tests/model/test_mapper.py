"""The mapper against a brute-force enumeration of its declared mapping space, and its hand checks.

The brute force here re-derives every mapping's time and energy from the declared rules
(:mod:`peforge.dse.cost.mapper`'s docstring) one scalar at a time: only the RTL array's
cycle formula (``peforge.hw.systolic.gemm_cycles``, checked against the RTL elsewhere) is shared.
Unit costs are given numbers (no characterization): the mapper's choice depends on them only
through the arithmetic checked here.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from tools import FPMAC_CELL_FIT

from peforge.dse.cost import mapper
from peforge.dse.cost import model as cost_model
from peforge.dse.cost.api import evaluate
from peforge.dse.cost.model import CostModel, _rows
from peforge.dse.cost.units import UnitCosts
from peforge.dse.cost.workload import Workload
from peforge.dse.design.point import Compute, DesignPoint, Memory, Sram
from peforge.hw.systolic import gemm_cycles

COSTS = UnitCosts(pe_area_um2=100.0, pj_per_mac=0.5, fmax_mhz=5000.0, memory_gb_per_s=10.0, memory_peak_gb_per_s=10.0,
                  memory_efficiency=1.0, memory_capacity_gib=64.0, memory_pj_per_bit=4.0,
                  weight_sram_pj_per_bit=0.2, act_sram_pj_per_bit=0.15, out_sram_pj_per_bit=0.1,
                  weight_sram_area_um2=1.0, act_sram_area_um2=1.0, out_sram_area_um2=1.0, pim_pj_per_bit=0.0,
                  pim_pj_per_mac=0.0, pim_lane_area_um2=0.0, vector_pj_per_op=0.3)
INT8 = Workload(model="shapes", quant="w8a8kv8", batch=1, seq=1, gen=1, prefill=None, decode_run=None, params=0,
                layers=1, weight_bits=8, act_bits=8, kv_bits=8, weight_format="int8", act_format="int8",
                kv_format="int8", max_positions=1, footprint=None)
GEMM = 0


def random_design(rng: random.Random, i: int) -> DesignPoint:
    rows, cols = rng.randint(1, 8), rng.randint(1, 8)
    return DesignPoint(
        name=f"d{i}", compute=Compute(pe="mac", rows=rows, cols=cols, dataflow=rng.choice(("ws", "os")),
                                      arrays=rng.randint(1, 12), clock_mhz=float(rng.choice((100, 250, 1000))),
                                      vector_lanes=rng.choice((0, 1, 3)),
                                      pe_params=(("max_accumulations", rng.choice((16, 4096))),)),
        sram=Sram(weight_kib=rng.randint(1, 6), activation_kib=rng.randint(1, 6), output_kib=rng.randint(1, 4)),
        memory=Memory(technology="HBM2", units=1))


def gemm_rows(shapes: list[tuple[int, int, int, int, int]]):
    """Rows of GEMMs ``(m, k, n, products per layer, layers)`` at INT8 (1 byte per element)."""
    m, k, n, p, layers = (np.array(col, dtype=np.float64) for col in zip(*shapes))
    count = p * layers
    cols = dict(m=m, k=k, n=n, count=count, repeat=layers, macs=count * m * k * n, ops=2 * count * m * k * n,
                weight_bytes=count * k * n, act_bytes=count * (m * k + m * n), kv_bytes=0 * m, elements=0 * m)
    return _rows({c: v[None, :] for c, v in cols.items()}, np.full(len(shapes), GEMM), np.zeros(len(shapes), int),
                 INT8, 1.0)


def p2(dim: int) -> list[int]:
    """Tile sizes of a ``dim``-long dimension: powers of two below it, and ``dim``."""
    return sorted({2 ** j for j in range(int(math.log2(dim)) + 1) if 2 ** j < dim} | {dim})


def brute_force(design: DesignPoint, m: int, k: int, n: int, products: int):
    """(time, energy) per layer of the best mapping, enumerating every mapping of the declared space."""
    c, pe = design.compute, design.compute.pe_config.figures()
    arrays, rows, cols, lanes, ws = c.arrays, c.rows, c.cols, pe.lanes, c.dataflow == "ws"
    lanes_v = c.vector_lanes or cols * arrays
    clock, bandwidth = c.clock_mhz * 1e6, COSTS.memory_gb_per_s * 1e9
    act, weight, out = (kib * 1024 for kib in (design.sram.activation_kib, design.sram.weight_kib,
                                              design.sram.output_kib))
    A, B, C = m * k, k * n, m * n  # bytes of one product's operands and result at INT8
    fold = min(k, rows * lanes)
    best = (math.inf, math.inf)
    for side in (True, False):
        in_flight = min(products, arrays) if side else 1
        per_product = arrays // in_flight
        rounds = -(-products // in_flight)
        for dim in ("M", "N", "K", "MN", "KN"):
            parts = {"M": 1, "N": 1, "K": 1}
            if len(dim) == 2:  # N's column folds j per array, the rest over M (or K's row folds)
                folds, other_dim = -(-n // cols), (m if dim[0] == "M" else -(-k // (rows * lanes)))
                work = []
                for j in (1, 2, 4, 8, 16):
                    n_parts = min(per_product, -(-folds // j))
                    work.append((-(-folds // n_parts) * -(-other_dim // (per_product // n_parts)), n_parts))
                parts["N"] = min(work, key=lambda w: w[0])[1]  # the first of equal ones
                parts[dim[0]] = per_product // parts["N"]
            else:
                parts[dim] = per_product
            mp, kp, np_ = (-(-v // parts[d]) for d, v in (("M", m), ("K", k), ("N", n)))
            passes = max(1, -(-kp // pe.max_reduction))
            array_cycles = int(gemm_cycles(rows=rows, cols=cols, ws=ws, lanes=lanes, beat_cycles=1,
                                           edge=pe.ws_edge_stages, os_latency=pe.os_latency_base, m=mp,
                                           k=-(-kp // passes), n=np_))
            adds = products * m * n * (parts["K"] - 1 + passes - 1)
            cycles = rounds * array_cycles * passes + -(-adds // lanes_v)
            copies = products * parts["M"] * parts["N"] * parts["K"]
            sram_bits = 8 * copies * (
                mp * kp * -(-np_ // cols) * COSTS.act_sram_pj_per_bit
                + kp * np_ * (1 if ws else -(-mp // rows)) * COSTS.weight_sram_pj_per_bit
                + mp * np_ * (1 + (2 * 4 * max(-(-kp // (rows * lanes)) - 1, 0) if ws else 0))
                * COSTS.out_sram_pj_per_bit)
            spread_pj = sram_bits + adds * (COSTS.vector_pj_per_op + 2 * 4 * 8 * COSTS.out_sram_pj_per_bit)
            for db in (2, 1):
                traffic = [B] if products * (A + C) <= act + out else []
                a_share, w_share, o_share = act / in_flight, weight / in_flight, out / in_flight
                for tm in p2(m):
                    for tn in p2(n):
                        if not (db * tm * tn * 4 <= o_share and db * tm * fold <= a_share
                                and db * fold * tn <= w_share):
                            continue
                        traffic.append(A * -(-n // tn) + B * -(-m // tm) + C)
                        if db * tm * k <= a_share:
                            traffic.append(A + B * -(-m // tm) + C)
                        if db * k * tn <= w_share:
                            traffic.append(B + A * -(-n // tn) + C)
                for moved in traffic:
                    dram = products * moved
                    time = max(cycles / clock, dram / bandwidth) if db == 2 else cycles / clock + dram / bandwidth
                    energy = spread_pj + dram * 8 * COSTS.memory_pj_per_bit
                    if time < best[0] * (1 - 1e-12) or (time <= best[0] * (1 + 1e-12) and energy < best[1]):
                        best = (time, energy)
    return best


@pytest.mark.parametrize("products", [(1, 1, 2, 3, 5, 16), (12, 16, 40)])
def test_mapper_picks_the_brute_force_best_on_random_shapes_and_designs(products):
    """Through the cost model's own grouping of rows (one product per layer; more products than
    any design has arrays; the rest), whose pruned candidates must lose nothing."""
    rng = random.Random(13 + len(products))
    designs = [random_design(rng, i) for i in range(20)]
    shapes = [(rng.randint(1, 300), rng.randint(1, 80), rng.randint(1, 80), rng.choice(products), 1)
              for _ in range(12)]
    model = CostModel(designs, [COSTS] * len(designs))
    r = gemm_rows(shapes)
    plan, layer = model._map_matrix_rows(r)
    time = np.where(plan.double, np.maximum(layer["cycles"] / model.clock_hz, layer["dram_bytes"] / model.dram_bytes_per_s),
                    layer["cycles"] / model.clock_hz + layer["dram_bytes"] / model.dram_bytes_per_s)
    energy = (sum(layer["sram_pj"].values()) + layer["adds"] * (COSTS.vector_pj_per_op + 2 * 4 * 8 * COSTS.out_sram_pj_per_bit)
              + layer["dram_bytes"] * 8 * COSTS.memory_pj_per_bit)
    checked = 0
    for d, design in enumerate(designs):
        for j, (m, k, n, products, _) in enumerate(shapes):
            best_time, best_energy = brute_force(design, m, k, n, products)
            assert time[d, 0, j] == pytest.approx(best_time, rel=1e-9), (design.compute, design.sram, shapes[j])
            assert energy[d, 0, j] == pytest.approx(best_energy, rel=1e-9), (design.compute, design.sram, shapes[j])
            checked += 1
    assert checked >= 200



@pytest.mark.parametrize("products", [(1, 1, 2, 3, 5, 16), (12, 16, 40), (1, 40)])
def test_one_mapper_call_with_every_candidate_maps_as_the_pruned_groups_do(products, monkeypatch):
    """Few cells go through the mapper in one call with every candidate, many in groups with
    pruned candidates (the speed of each differs): both must choose the same mapping, bit for bit."""
    rng = random.Random(29 + len(products))
    designs = [random_design(rng, i) for i in range(20)]
    shapes = [(rng.randint(1, 300), rng.randint(1, 80), rng.randint(1, 80), rng.choice(products), 1)
              for _ in range(12)]
    model = CostModel(designs, [COSTS] * len(designs))
    one = model._map_matrix_rows(gemm_rows(shapes))
    monkeypatch.setattr(cost_model, "_ONE_CALL_CELLS", 0)
    grouped = model._map_matrix_rows(gemm_rows(shapes))
    flat = lambda plan, layer: {**vars(plan), **{k: v for k, v in layer.items() if k != "sram_pj"},  # noqa: E731
                                **layer["sram_pj"]}
    one, grouped = flat(*one), flat(*grouped)
    assert one.keys() == grouped.keys()
    for name in one:
        np.testing.assert_array_equal(one[name], grouped[name], err_msg=name, strict=True)


def test_k_blocking_cuts_the_bytes_of_a_large_k_gemm_by_the_hand_counted_amount():
    """GPT-3's down_proj at a 2048-token prompt, FP16: M 2048, K 49,152, N 12,288, with 8 MiB
    activation and weight buffers and a 4 MiB output buffer, double-buffered, one fold 128 deep."""
    m, k, n, a = 2048, 49152, 12288, 2
    A, B, C = m * k * a, k * n * a, m * n * a
    mib = 1 << 20
    tiling = mapper.tile(m, k, n, A, B, C, a, a, 8 * mib, 8 * mib, 4 * mib, 128, 2, on_chip_ok=False)
    # Output tiles hold 4 MiB / (2 copies x 4 bytes) = 2^19 partial sums; 1024 x 512 outputs:
    # activations read 24 times (N / 512), weights twice (M / 1024) (512 x 1024 ties).
    assert tiling.bytes == 24 * A + 2 * B + C
    # The old rule kept all of K on chip: 8 MiB / (49,152 x 2 B) = 85 activation rows or weight
    # columns per block, so either the weights are read ceil(2048 / 85) = 25 times or the
    # activations ceil(12288 / 85) = 145 times.
    old = min(A + 25 * B, 145 * A + B) + C
    assert (tiling.bytes, old) == (7_298_088_960, 30_450_647_040)
    assert old - tiling.bytes == 23_152_558_080  # 4.17x fewer bytes


def test_splitting_m_beats_splitting_n_when_n_is_narrower_than_the_arrays():
    """8 arrays of 32 x 32 on a 1024 x 256 @ 256 x 64 product: N = 64 < 8 x 32 columns."""
    design = DesignPoint(compute=Compute(pe="mac", rows=32, cols=32, arrays=8, clock_mhz=500.0),
                         sram=Sram(weight_kib=1 << 12, activation_kib=1 << 12, output_kib=1 << 12))
    model = CostModel([design], [COSTS])
    r = gemm_rows([(1024, 256, 64, 1, 1)])
    cycles = mapper.spreads(model.shape, model.arrays, model.vector_lanes, r.m, r.k, r.n, r.products, 8.0,
                            1.0).cycles[:, 0, 0, 0]
    by_dim = {dim: cycles[mapper.CANDIDATES.index((True, dim))] for dim in mapper.SPLITS}
    # ws: 8 folds of K (256 / 32) x 2 of N per array otherwise; N split: 8 x 1 folds of 1024 rows
    assert by_dim["M"] < by_dim["N"]
    plan, _ = model.mapping(r, 1.0, 8.0)
    assert mapper.CANDIDATES[int(plan.candidate[0, 0, 0])][1] in ("M", "MN")  # (M, N into 2 x 4: a tie)


def fused_design(fused: bool) -> DesignPoint:
    return DesignPoint(name="fused" if fused else "unfused", tech="7nm",
                       compute=Compute(pe="fpmac", rows=32, cols=32, arrays=4, clock_mhz=400.0,
                                       vector_lanes=1 << 16, fused_attention=fused, pe_params=(("fmt", "fp16"),)),
                       sram=Sram(weight_kib=8192, activation_kib=8192, output_kib=16384),
                       memory=Memory(technology="LPDDR5", units=1))


@pytest.fixture
def small_llama(tmp_path):
    """A two-layer Llama of hidden 256, 4 heads of 64 (no GQA)."""
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
        "intermediate_size": 688, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
        "vocab_size": 1000, "max_position_embeddings": 4096, "hidden_act": "silu", "rms_norm_eps": 1e-5}))
    return str(path)


@FPMAC_CELL_FIT
def test_fused_attention_moves_four_score_matrices_less_on_a_long_prompt(small_llama):
    """A 2048-token prefill: unfused, each head's 2048 x 2048 FP16 scores are written, read and
    written by the softmax, and read by the context product; fused, they never leave the chip,
    and with query tiles of all 2048 rows K and V are still read once."""
    from peforge.dse.cost.api import prepare

    workload = prepare(small_llama, batch=1, seq=2048, gen=1, quant="w16a16kv16")
    moved = {}
    for fused in (False, True):
        ops = evaluate(fused_design(fused), workload, phases=("prefill",)).operators
        moved[fused] = ops.dram_bytes.sum()
        attention = ops[ops.operator.str.startswith("attn")]
        assert all(("fused" in m) == fused for m in attention.mapping if m != "vector unit")
    layers, heads, seq = 2, 4, 2048
    assert moved[False] - moved[True] == 4 * layers * heads * seq * seq * 2
