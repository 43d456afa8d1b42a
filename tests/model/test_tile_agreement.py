"""The cost model and the tile describe one machine: for the tiny layer (prefill of 16 tokens,
then one decode step) every GEMM operator's array cycles in the model equal the compiled
program's, command by command (the busiest slice's GEMM commands, each the array's cycles plus
the engine's overhead), and every operator's vector cycles equal the vector unit's commands the
program issues (an elementwise operator's, a GEMM's requantization epilogue: the shared lowering
of :mod:`peforge.dse.tile.vector_lowering`), on the tile built at the design's own buffer sizes;
at a compute-bound and a memory-bound bandwidth, on one and two arrays, ws and os, MAC,
bit-serial and mixed PEs (the mixed PE's INT8 operands as digit-plane GEMMs and the vector steps
making the high plane: the model takes its operators' programs' phases and DRAM bytes).

Every operator's DRAM bytes in the model equal the bytes its DMA commands move (the program
round-trips every tensor through DRAM; the model, under ``tile_commands``, charges what it moves),
and the model's DRAM runs at the tile's DMA rate (whole bus beats at the memory's bandwidth).

End to end, the model's layer (its operators' times added) is the program's cycles within 2 %
(:func:`test_end_to_end_within_two_percent`; in fact within the program's start and done
latencies, 2 cycles: each operator is its own program's timeline,
:mod:`peforge.dse.tile.operator_program`). Per operator the two differ by where a stall is
charged: the tile charges the wait for one operator's last store to the next operator's first
instruction, the model to the operator whose store it is (``benchmarks/tile_cycles.py --matrix``
lists every operator)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pytest

from peforge.dse.cost import mapper
from peforge.dse.cost.api import load_design, prepare
from peforge.dse.cost.gemm_tiles import design_tile, gemm_work, tile_sides
from peforge.dse.cost.model import CostModel
from peforge.dse.cost.units import UnitCosts
from peforge.dse.tile.lower_gemm import _tiling
from peforge.dse.tile.intlayer import Gemm, IntLayer
from peforge.dse.tile.mapping import OperatorMapping, cost_model_mappings
from peforge.dse.tile.predict import cost_model_bytes, cost_model_compute, predict_layer
from peforge.hw.tile.dma import MemoryModel
from peforge.hw.tile.gemm import GemmCommand

DESIGN = Path(__file__).parent.parent / "designs" / "tile-tiny.toml"
SEQ = 16
GEMMS = ("q_proj", "k_proj", "v_proj", "attn.score", "attn.context", "o_proj", "mlp.gate_proj", "mlp.up_proj",
         "mlp.down_proj")
MEMORY = MemoryModel(read_latency=8, period=1)
BIT_SERIAL = (("lanes", 4), ("k", 2))  # 4 lanes, 2 weight bits per cycle: 4 cycles per INT8 beat


def costs(gb_per_s: float) -> UnitCosts:
    """Unit costs as figures (no characterization); ``gb_per_s``: the sustained DRAM bandwidth."""
    return UnitCosts(pe_area_um2=100.0, pj_per_mac=0.5, fmax_mhz=5000.0, memory_gb_per_s=gb_per_s,
                     memory_peak_gb_per_s=gb_per_s, memory_efficiency=1.0, memory_capacity_gib=64.0,
                     memory_pj_per_bit=4.0, weight_sram_pj_per_bit=0.2, act_sram_pj_per_bit=0.15,
                     out_sram_pj_per_bit=0.1, weight_sram_area_um2=1.0, act_sram_area_um2=1.0,
                     out_sram_area_um2=1.0, pim_pj_per_bit=0.0, pim_pj_per_mac=0.0, pim_lane_area_um2=0.0,
                     vector_pj_per_op=0.3)


# (compute fields, bandwidth GB/s): 64 GB/s is compute-bound at 500 MHz for every GEMM here, 0.25 GB/s
# memory-bound for every one
CASES = {"1 ws compute-bound": ({}, 64.0), "1 ws memory-bound": ({}, 0.25), "2 ws": ({"arrays": 2}, 64.0),
         "2 os memory-bound": ({"arrays": 2, "dataflow": "os"}, 0.25),
         "bit-serial 1 ws": ({"pe": "bitserial", "pe_params": BIT_SERIAL}, 64.0),
         "bit-serial 2 os": ({"pe": "bitserial", "pe_params": BIT_SERIAL, "arrays": 2, "dataflow": "os"}, 0.25)}
# The mixed PE: each INT8 weight / KV operand runs as accumulated digit-plane GEMMs, its high plane
# made by vector steps; the model's phases and DRAM bytes are its operators' programs' (the planes'
# loads and stores, which the closed forms do not price).
MIXED = {"mixed 1 ws": ({"pe": "mixed"}, 64.0), "mixed 2 os memory-bound": ({"pe": "mixed", "arrays": 2,
                                                                            "dataflow": "os"}, 0.25)}


@pytest.fixture(scope="module")
def layer() -> IntLayer:
    return IntLayer()


@functools.lru_cache(maxsize=None)
def _agreement(case: str):
    """(case, the tile's predictions, the model's array and vector cycles and DRAM bytes per operator)."""
    compute, gb_per_s = {**CASES, **MIXED}[case]
    layer = IntLayer()
    base = load_design(DESIGN)
    design = dataclasses.replace(base, compute=dataclasses.replace(base.compute, **compute))
    workload = prepare("tiny-llama", batch=1, seq=SEQ, gen=2, quant="w8a8kv8")
    model = CostModel([design], [costs(gb_per_s)], tile_commands=True)
    predictions = predict_layer(layer, design_tile(design), cost_model_mappings(model, workload), seq=SEQ,
                                memory=MEMORY)
    return (case, predictions, cost_model_compute(model, workload, "array"),
            cost_model_compute(model, workload, "vector"), cost_model_bytes(model.evaluate(workload)))


@pytest.fixture(scope="module", params=[*CASES, *MIXED])
def agreement(request):
    """:func:`_agreement` of every case, the mixed PE's too."""
    return _agreement(request.param)


def test_gemm_array_cycles_exact(agreement):
    case, predictions, model, *_ = agreement
    for phase, prediction in predictions.items():
        for name in GEMMS:
            tile = prediction.operators[name].array_work
            assert tile > 0, f"{case} {phase} {name}: no GEMM commands"
            assert model[phase][name] == tile, f"{case} {phase} {name}: model {model[phase][name]}, tile {tile}"


def test_gemm_array_cycles_by_hand(layer):
    """One operator by hand: decode k_proj (1 x 64 @ 64 x 32) on the 4x4 ws MAC array, tiles of 1 x 12
    (two copies of 12 skewed weight rows of 65 elements fill the 2048-element weight scratchpad):
    columns 12, 12, 8, each command 4 + 64 + ... cycles of ``SystolicConfig.cycles`` plus 4."""
    base = load_design(DESIGN)
    tile = design_tile(base)
    array = tile.array
    by_hand = 2 * (array.cycles(1, 64, 12) + 4) + (array.cycles(1, 64, 8) + 4)
    workload = prepare("tiny-llama", batch=1, seq=SEQ, gen=2, quant="w8a8kv8")
    model = CostModel([base], [costs(64.0)], tile_commands=True)
    assert cost_model_compute(model, workload, "array")["decode"]["k_proj"] == by_hand == 551


def test_vector_cycles_exact(agreement):
    """Every operator's vector commands: the elementwise ones' and the GEMMs' requantization
    epilogues (the tile's vector unit busy summed command by command)."""
    case, predictions, _, model, _ = agreement
    for phase, prediction in predictions.items():
        for name, o in prediction.operators.items():
            assert model[phase].get(name, 0.0) == o.vector_work, f"{case} {phase} {name}"


@pytest.mark.parametrize("family", [mapper.ON_CHIP, mapper.ACT_RESIDENT, mapper.WEIGHT_RESIDENT, mapper.K_BLOCKED])
@pytest.mark.parametrize("double", [True, False])
def test_tile_sides_are_the_compilers(family, double):
    """Every tiling family the compiler runs: the model's tile sides and summed command cycles
    are the compiler's for the tiny layer's GEMM shapes on the design's tile (which these
    families the mapper picks for the tiny layer: only *on chip*)."""
    design = load_design(DESIGN)
    tile = design_tile(design)
    model = CostModel([design], [costs(64.0)], tile_commands=True)
    for m, k, n in ((16, 64, 64), (16, 64, 176), (16, 176, 64), (1, 176, 64), (32, 16, 16), (2, 17, 16)):
        for tile_m, tile_n in ((m, n), (4, 8), (8, 32), (1, 1)):
            mapping = OperatorMapping(family=family, tile_m=tile_m, tile_n=tile_n, double=double)
            step = Gemm(name="probe", a="a", b_t="b", out="c", m=m, k=k, n=n)
            want, _ = _tiling(tile, step, mapping, m, n, k)
            tm, tn, kb = (float(np.ravel(v)[0]) for v in tile_sides(
                model.tile, model.shape, np.float64(m), np.float64(k), np.float64(n), np.int64(family),
                np.float64(tile_m), np.float64(tile_n), np.bool_(double), np.float64(1)))
            assert (tm, tn, kb) == (want.tm, want.tn, want.kb), (m, k, n, tile_m, tile_n)
            by_commands = sum(tile.gemm.cycles(GemmCommand(m=min(want.tm, m - m0), k=min(want.kb, k - k0),
                                                           n=min(want.tn, n - n0)))
                              for m0 in range(0, m, want.tm) for n0 in range(0, n, want.tn)
                              for k0 in range(0, k, want.kb))
            work = gemm_work(model.shape, m, k, n, tm, tn, kb, 8)
            assert float(np.ravel(work)[0]) == by_commands, (m, k, n, tile_m, tile_n)


def test_vector_cycles_by_hand():
    """Decode on the 4-lane vector unit of the tiny design, by hand: RMSNorm of one row of 64 is
    RSUMSQ with the RSQRT tail (1 + 16 beats + 4 wait + 139 tail + 1 write = 161), MULSHIFT by the
    row's root (16 + 3 + 1 = 20), then the gains' MULSHIFT (20): 201; the two residual adds
    20 each: 40."""
    base = load_design(DESIGN)
    workload = prepare("tiny-llama", batch=1, seq=SEQ, gen=2, quant="w8a8kv8")
    model = CostModel([base], [costs(64.0)], tile_commands=True)
    vector = cost_model_compute(model, workload, "vector")["decode"]
    assert (vector["input_norm"], vector["residual_add"]) == (161 + 20 + 20, 2 * 20)


def test_softmax_templates_are_its_commands():
    """The model's softmax over many blocks (token groups as templates over arrays) sums the same
    cycles as the compiler's commands one by one, prefill (causal, a zeroing command per block)
    and decode."""
    from peforge.dse.tile.vector_lowering import VECTOR_KINDS, row_commands, row_cycles

    tile = design_tile(load_design(DESIGN))
    for rows, keys, tokens in ((4 * 48, 48, 48), (4 * 16, 16, 16), (4, 33, 1)):
        commands = row_commands(tile, VECTOR_KINDS["softmax"], rows, keys, tokens, 0)
        assert tokens == 1 or len(commands) > 4 * tokens + 1  # the prompts' in several blocks
        assert row_cycles(tile, VECTOR_KINDS["softmax"], rows, keys, tokens, 0) == sum(
            tile.vector.cycles(cmd) for cmd in commands)


def test_dram_bytes_exact(agreement):
    """Every operator's DRAM bytes: the model's are the bytes of the program's DMA commands
    (GEMM operands as their tiles are loaded, 32-bit outputs stored, epilogues, vector steps,
    the cache writes and head moves; the mixed PE's digit planes' loads and stores)."""
    case, predictions, *_, moved = agreement
    for phase, prediction in predictions.items():
        for name, o in prediction.operators.items():
            assert o.dma_bytes > 0, f"{case} {phase} {name}: no DMA"
            assert moved[phase].get(name, 0.0) == o.dma_bytes, f"{case} {phase} {name}"


def test_dram_bytes_by_hand():
    """The two residual adds of the tiny layer (hidden 64) by hand: each loads the INT8 stream and
    the 16-bit projection (4-byte elements in DRAM) and stores INT8: 16 tokens x 64 x (1 + 4 + 1)
    bytes each at prefill, one token at decode."""
    base = load_design(DESIGN)
    workload = prepare("tiny-llama", batch=1, seq=SEQ, gen=2, quant="w8a8kv8")
    model = CostModel([base], [costs(64.0)], tile_commands=True)
    moved = cost_model_bytes(model.evaluate(workload))
    assert moved["prefill"]["residual_add"] == 2 * SEQ * 64 * 6 == 12288
    assert moved["decode"]["residual_add"] == 2 * 64 * 6


@pytest.mark.parametrize("gb_per_s, per_s", [(64.0, 4 * 500e6), (1.0, 4 / 2 * 500e6), (0.25, 4 / 8 * 500e6)])
def test_dram_at_the_dmas_rate(gb_per_s, per_s):
    """The tiny design's DMA bus is 4 bytes at 500 MHz: at 64 GB/s a beat every cycle (2 GB/s),
    at 1 GB/s (2 bytes a cycle) one every 2, at 0.25 GB/s (0.5 bytes a cycle) one every 8."""
    base = load_design(DESIGN)
    assert design_tile(base).bus_bytes == 4
    model = CostModel([base], [costs(gb_per_s)], tile_commands=True)
    assert float(model.dram_bytes_per_s[0, 0, 0]) == per_s
    assert float(CostModel([base], [costs(gb_per_s)]).dram_bytes_per_s[0, 0, 0]) == gb_per_s * 1e9


# (compute fields, bandwidth GB/s, DMA read latency): one and two arrays, compute- and memory-bound
END_TO_END = {"1 ws compute-bound": ({}, 64.0, 8), "2 ws memory-bound": ({"arrays": 2}, 0.25, 8),
              "bit-serial 2 os": ({"pe": "bitserial", "pe_params": BIT_SERIAL, "arrays": 2, "dataflow": "os"},
                                  64.0, 20)}


@pytest.fixture(scope="module", params=list(END_TO_END))
def end_to_end(request, layer):
    """(case, the tile's predictions, the model's cycles per operator) for a case of END_TO_END."""
    from peforge.dse.cost.gemm_tiles import dma_period
    from peforge.dse.tile.predict import cost_model_cycles

    case = request.param
    compute, gb_per_s, latency = END_TO_END[case]
    base = load_design(DESIGN)
    design = dataclasses.replace(base, compute=dataclasses.replace(base.compute, **compute))
    workload = prepare("tiny-llama", batch=1, seq=SEQ, gen=2, quant="w8a8kv8")
    model = CostModel([design], [costs(gb_per_s)], tile_commands=True, tile_memory=MemoryModel(read_latency=latency))
    tile = design_tile(design)
    clock = design.compute.clock_mhz
    period = int(dma_period(tile.bus_bytes, gb_per_s * 1e3 / clock))
    predictions = predict_layer(layer, tile, cost_model_mappings(model, workload), seq=SEQ,
                                memory=MemoryModel(read_latency=latency, period=period))
    return case, predictions, cost_model_cycles(model.evaluate(workload), clock)


def test_end_to_end_within_two_percent(end_to_end):
    """The model's per-operator times added over the layer are the tile's program cycles
    (``predict_layer``: the exact timeline, Verilator's measured cycles) within 2 %, prefill and
    decode, the DMA's latency and the memory's rate the same on both sides."""
    case, predictions, times = end_to_end
    for phase, prediction in predictions.items():
        total = sum(times[phase][name] for name in prediction.operators)
        assert abs(total / prediction.cycles - 1) <= 0.02, \
            f"{case} {phase}: model {total:.0f}, tile {prediction.cycles}"


def test_end_to_end_exact_but_the_programs_ends(end_to_end):
    """Closer: the layer's cycles are the operators' own programs added, and the program's start
    and done latencies (each operator ends with every unit idle; the next one's first transfer
    queues behind its last store on the one DMA, so nothing overlaps across operators here)."""
    from peforge.hw.tile.isa import DONE_LATENCY, FETCH_LATENCY

    case, predictions, times = end_to_end
    for phase, prediction in predictions.items():
        total = sum(times[phase][name] for name in prediction.operators)
        assert round(total) + FETCH_LATENCY + DONE_LATENCY == prediction.cycles, f"{case} {phase}"
