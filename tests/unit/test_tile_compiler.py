"""The tile compiler against the integer layer: the interpreted program of the tiny layer's
prefill, then of a decode step against the KV cache the prefill wrote, gives every named tensor of
``IntLayer.execute`` bit for bit; mappings of the cost model and by hand; predicted phases against
hand counts; a broken pitch, wait or tile offset is caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from peforge.dse.cost import mapper
from peforge.dse.cost.api import load_design, prepare
from peforge.dse.cost.model import CostModel
from peforge.dse.cost.units import UnitCosts
from peforge.dse.design.point import Compute
from peforge.dse.tile.compiler import compile_layer
from peforge.dse.tile.design_tile import design_tile
from peforge.dse.tile.interpret import RaceError, interpret
from peforge.dse.tile.intlayer import IntLayer, KVCache
from peforge.dse.tile.mapping import OperatorMapping, cost_model_mappings
from peforge.dse.tile.predict import cycle_table, predict
from peforge.dse.tile.program import ProgramBuilder, Region
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.systolic import SystolicConfig
from peforge.hw.tile.config import TileConfig
from peforge.hw.tile.dma import DmaCommand, MemoryModel
from peforge.hw.tile.gemm import GemmCommand
from peforge.hw.tile.isa import Issue, Wait
from peforge.hw.tile.rules import check_program

DESIGN = Path(__file__).parent.parent / "designs" / "tile-tiny.toml"
TOKENS = 16
GEMMS = ("q_proj", "k_proj", "v_proj", "attn.score", "attn.context", "o_proj", "mlp.gate_proj", "mlp.up_proj",
         "mlp.down_proj")
# Unit costs as figures, not characterized (the mapper's choice is by time first; these only break ties)
COSTS = UnitCosts(pe_area_um2=100.0, pj_per_mac=0.5, fmax_mhz=5000.0, memory_gb_per_s=2.0, memory_peak_gb_per_s=2.0,
                  memory_efficiency=1.0, memory_capacity_gib=64.0, memory_pj_per_bit=4.0, weight_sram_pj_per_bit=0.2,
                  act_sram_pj_per_bit=0.15, out_sram_pj_per_bit=0.1, weight_sram_area_um2=1.0,
                  act_sram_area_um2=1.0, out_sram_area_um2=1.0, pim_pj_per_bit=0.0, pim_pj_per_mac=0.0,
                  pim_lane_area_um2=0.0, vector_pj_per_op=0.3)
MEMORY = MemoryModel(read_latency=8, period=1)


@pytest.fixture(scope="module")
def layer() -> IntLayer:
    return IntLayer()


@pytest.fixture(scope="module")
def x(layer) -> np.ndarray:
    """Prefill rows, then the decode row."""
    return layer.embed(np.random.default_rng(7).integers(0, layer.config.model.vocab_size, TOKENS + 1))


def design(**compute):
    base = load_design(DESIGN)
    return dataclasses.replace(base, compute=dataclasses.replace(base.compute, **compute))


def tile_of(d) -> TileConfig:
    """The design's tile at its own buffer sizes, GEMMs up to 32 x 256 x 64."""
    return design_tile(d, max_m=32, max_k=256, max_n=64, imem_depth=1 << 15)


def model_mappings(d):
    workload = prepare("tiny-llama", batch=1, seq=TOKENS, gen=2, quant="w8a8kv8")
    return cost_model_mappings(CostModel([d], [COSTS]), workload)


def run(layer, tile, mappings, x_rows, cache=None, position=0):
    compiled = compile_layer(layer, len(x_rows), position, tile, mappings)
    return compiled, interpret(compiled, compiled.image(x_rows, cache), MEMORY)


def assert_every_tensor(compiled, dram, expected):
    checked = [name for name in expected if name in compiled.symbols]
    assert {"x", "q_acc", "scores", "probs", "context", "attn", "h", "gate_up", "out", "k_cache",
            "v_cache_t"} <= set(checked)
    for name in checked:
        np.testing.assert_array_equal(compiled.read(dram, name), expected[name], err_msg=name)


@pytest.mark.parametrize("arrays, dataflow", [(1, "ws"), (2, "ws"), (1, "os"), (2, "os")])
def test_prefill_then_decode_bit_exact_with_the_cost_models_mappings(layer, x, arrays, dataflow):
    d = design(arrays=arrays, dataflow=dataflow)
    maps, tile = model_mappings(d), tile_of(d)
    if arrays == 2:  # the projections split over both arrays (ws: N, os: M), the KV heads side by side
        q, score = maps["prefill"]["q_proj"], maps["prefill"]["attn.score"]
        assert q.split == {"ws": "N", "os": "M"}[dataflow] and q.arrays == 2
        assert score.side_by_side and score.arrays == 1
    prefill, dram = run(layer, tile, maps["prefill"], x[:TOKENS])
    golden = layer.execute(x[:TOKENS])
    assert_every_tensor(prefill, dram, golden)
    # the weights packed in the tiles the GEMMs load, read back whole; lifetimes by step
    assert prefill.symbols["w_gate"].layout == "tiles" and len(prefill.symbols["w_gate"].tiles) > 1
    for name in ("w_q", "w_gate", "w_down"):
        np.testing.assert_array_equal(prefill.read(dram, name), layer.constants[name])
    assert prefill.lifetimes["x"] == (-1, 20) and prefill.lifetimes["q_acc"] == (2, 3)
    # decode against the cache the prefill wrote: same cache addresses in both images
    cache = KVCache(k=prefill.read(dram, "k_cache"), v_t=prefill.read(dram, "v_cache_t"), length=TOKENS)
    decode, dram = run(layer, tile, maps["decode"], x[TOKENS:], cache, position=TOKENS)
    for name in ("k_cache", "v_cache_t"):
        assert decode.symbols[name].addr == prefill.symbols[name].addr
    golden_cache = KVCache(k=golden["k_cache"], v_t=golden["v_cache_t"], length=TOKENS)
    assert_every_tensor(decode, dram, layer.execute(x[TOKENS:], golden_cache))
    # every command packs into its unit's fields, the program into the sequencer's memory; the
    # tile's own program rules (shared ports, data hazards) hold on the exact timeline
    for compiled in (decode, prefill) if (arrays, dataflow) == (2, "os") else (decode,):
        assert len(tile.encode(compiled.program)) == len(compiled.program)
    for compiled in (prefill, decode):
        check_program(tile, compiled.program, MEMORY)


def test_chunked_prefill_bit_exact(layer, x):
    """5 tokens, then 7 more at position 5 against the cache of the first: causal rows of keys
    beyond a block of tokens, RoPE's table rows from the position on."""
    d = design(arrays=2, dataflow="os")
    maps, tile = model_mappings(d)["prefill"], tile_of(d)
    first, dram = run(layer, tile, maps, x[:5])
    golden = layer.execute(x[:5])
    assert_every_tensor(first, dram, golden)
    cache = KVCache(k=first.read(dram, "k_cache"), v_t=first.read(dram, "v_cache_t"), length=5)
    second, dram = run(layer, tile, maps, x[5:12], cache, position=5)
    golden_cache = KVCache(k=golden["k_cache"], v_t=golden["v_cache_t"], length=5)
    assert_every_tensor(second, dram, layer.execute(x[5:12], golden_cache))


def test_decode_on_the_designs_scaled_tile(layer, x):
    """``TileConfig.from_design(scaled=True)``: the simulable tile (scratchpads of 256 elements, GEMMs
    up to 16 x 64 x 32), far smaller than the design's buffers: the mappings' tiles shrink, a K of
    176 is K-blocked; still every tensor bit for bit."""
    d = design(arrays=2)
    tile = dataclasses.replace(TileConfig.from_design(d, scaled=True), imem_depth=1 << 15)
    golden = layer.execute(x[:TOKENS])
    cache = KVCache(k=golden["k_cache"], v_t=golden["v_cache_t"], length=TOKENS)
    decode, dram = run(layer, tile, model_mappings(d)["decode"], x[TOKENS:], cache, position=TOKENS)
    assert "K-blocked" in decode.plans["30 mlp.down_proj"]
    assert_every_tensor(decode, dram, layer.execute(x[TOKENS:], cache))


@pytest.mark.slow
@pytest.mark.parametrize("pe", ["mac", "bitserial"])
@pytest.mark.parametrize("arrays", [1, 2, 4])
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_matrix_of_designs_bit_exact(layer, x, pe, arrays, dataflow):
    """The cost model's mappings on every PE the compiler runs, 1, 2 and 4 arrays, both dataflows."""
    params = (("lanes", 4), ("k", 2)) if pe == "bitserial" else ()
    d = design()
    d = dataclasses.replace(d, compute=Compute(pe=pe, rows=4, cols=4, dataflow=dataflow, arrays=arrays,
                                               vector_lanes=4, pe_params=params))
    maps, tile = model_mappings(d), tile_of(d)
    prefill, dram = run(layer, tile, maps["prefill"], x[:TOKENS])
    golden = layer.execute(x[:TOKENS])
    assert_every_tensor(prefill, dram, golden)
    cache = KVCache(k=golden["k_cache"], v_t=golden["v_cache_t"], length=TOKENS)
    decode, dram = run(layer, tile, maps["decode"], x[TOKENS:], cache, position=TOKENS)
    assert_every_tensor(decode, dram, layer.execute(x[TOKENS:], cache))


FAMILY_CASES = {
    "activations resident, single-buffered": OperatorMapping(family=mapper.ACT_RESIDENT, tile_m=8, double=False),
    "weights resident": OperatorMapping(family=mapper.WEIGHT_RESIDENT, tile_n=16),
    "K-blocked": OperatorMapping(family=mapper.K_BLOCKED, tile_m=8, tile_n=8),
    "K-blocked, single-buffered": OperatorMapping(family=mapper.K_BLOCKED, tile_m=16, tile_n=8, double=False),
    "two accumulation passes": OperatorMapping(family=mapper.ACT_RESIDENT, tile_m=16, k_passes=2),
}


@pytest.mark.parametrize("case", FAMILY_CASES)
def test_tiling_families_bit_exact(layer, x, case):
    mapping = FAMILY_CASES[case]
    prefill, dram = run(layer, tile_of(design()), {name: mapping for name in GEMMS}, x[:TOKENS])
    assert mapper.FAMILIES[mapping.family] in prefill.plans["2 q_proj"]
    if mapping.k_passes > 1:  # K-blocked a fold (4 of K) at a time, whatever the family
        assert "K blocks of 4" in prefill.plans["2 q_proj"]
    assert_every_tensor(prefill, dram, layer.execute(x[:TOKENS]))


# (split, arrays, whether q_proj's K is cut): the mapper shares 4 arrays of a KN split as 4 parts
# of q_proj's 16 column folds (fewest folds per array, the fewest folds per part on ties)
@pytest.mark.parametrize("split, arrays, k_parts", [("M", 2, False), ("K", 2, True), ("MN", 2, False),
                                                    ("KN", 4, False)])
def test_splits_and_products_one_at_a_time_bit_exact(layer, x, split, arrays, k_parts):
    spread = OperatorMapping(candidate=mapper.CANDIDATES.index((True, split)), arrays=arrays)
    one_at_a_time = OperatorMapping(candidate=mapper.CANDIDATES.index((False, "N")), arrays=arrays)
    maps = {name: one_at_a_time if name.startswith("attn") else spread for name in GEMMS}
    prefill, dram = run(layer, tile_of(design(arrays=arrays)), maps, x[:TOKENS])
    every = str(list(range(arrays)))
    assert f"slices {every}" in prefill.plans["2 q_proj"] and f"slices {every}" in prefill.plans["13 attn.score"]
    adds = [ins.command for i, ins in enumerate(prefill.program) if isinstance(ins, Issue) and ins.slot == "vec"
            and prefill.tags[i] == "q_proj" and ins.command.op.name == "ADD"]
    assert bool(adds) == k_parts  # partial sums of the parts of K added
    check_program(prefill.tile, prefill.program, MEMORY)
    assert_every_tensor(prefill, dram, layer.execute(x[:TOKENS]))


def test_bit_serial_pe_bit_exact(layer, x):
    d = design()
    d = dataclasses.replace(d, compute=Compute(pe="bitserial", rows=4, cols=4, dataflow="ws", vector_lanes=4,
                                               pe_params=(("lanes", 4), ("k", 2))))
    prefill, dram = run(layer, tile_of(d), model_mappings(d)["prefill"], x[:TOKENS])
    gemms = [ins.command for ins in prefill.program if isinstance(ins, Issue) and ins.slot == "gemm0"]
    assert gemms and all(cmd.pe_fields == {"w_bits": 8} for cmd in gemms)
    assert_every_tensor(prefill, dram, layer.execute(x[:TOKENS]))


def test_mappings_the_tile_cannot_run_name_the_operator(layer):
    tile = tile_of(design(arrays=2))
    fused = {name: OperatorMapping(family=mapper.FUSED) if name.startswith("attn") else OperatorMapping()
             for name in GEMMS}
    with pytest.raises(ValueError, match=r"^attn.score: fused attention"):
        compile_layer(layer, TOKENS, 0, tile, fused)
    with pytest.raises(ValueError, match=r"^mlp.up_proj: no mapping given"):
        compile_layer(layer, TOKENS, 0, tile, {name: OperatorMapping() for name in GEMMS if name != "mlp.up_proj"})
    mixed = SystolicConfig(rows=4, cols=4, pe="mixed", pe_config=MixedConfig(w_bits=3), max_m=32, max_k=256, max_n=64)
    with pytest.raises(ValueError, match=r"^q_proj: the mixed PE \(w_bits=3\) takes per-column metadata"):
        compile_layer(layer, TOKENS, 0, TileConfig(array=mixed, vector_lanes=4, bus_bytes=4, act_depth=512,
                                                   weight_depth=512, out_depth=128),
                      {name: OperatorMapping() for name in GEMMS})
    with pytest.raises(ValueError, match=r"^the layer's program of \d+ instructions exceeds the sequencer's "
                                         r"imem_depth=256"):
        compile_layer(layer, TOKENS, 0, dataclasses.replace(tile, imem_depth=256),
                      model_mappings(design(arrays=2))["prefill"])


def test_waits_only_on_conflicts():
    b = ProgramBuilder()
    a0, a1 = Region(0, "act", 0, 16), Region(0, "act", 16, 32)
    b.issue("dma", "load a0", writes=[a0], tag="t")
    b.issue("gemm0", "read a0", reads=[a0], tag="t")  # needs the load: WAIT dma
    b.issue("dma", "load a1", writes=[a1], tag="t")  # elsewhere: no wait
    b.issue("dma", "load a0 again", writes=[a0], tag="t")  # the GEMM may still read a0: WAIT gemm0
    b.issue("gemm0", "read a1", reads=[a1], tag="t")  # a1's load is done: the DMA took the next command
    b.issue("gemm0", "read a1 again", reads=[a1], tag="t")  # nothing new
    b.issue("dma", "load elsewhere", writes=[Region(1, "act", 0, 16)], ports=[(1, "act")], tag="t")  # no wait
    # the vector unit writes slice 1's act scratchpad elsewhere: the DMA's port there is busy: WAIT dma
    b.issue("vec", "write beside", reads=[a0], writes=[Region(1, "act", 64, 80)], ports=[(1, "act")], tag="t")
    b.issue("dma", "store a1", reads=[a1], ports=[(0, "act")], tag="t")  # another port, only reads: no wait
    b.end()
    kinds = [ins.slots if isinstance(ins, Wait) else ins.command if isinstance(ins, Issue) else "end"
             for ins in b.instructions]
    assert kinds == ["load a0", ("dma",), "read a0", "load a1", ("gemm0",), "load a0 again", "read a1",
                     "read a1 again", "load elsewhere", ("dma",), "write beside", "store a1", "end"]


# --- predicted cycles ---------------------------------------------------------------------


def ws_gemm(m, k, n):
    """A 4x4 MAC ws array's GEMM command by hand: F = ceil(K / 4) ceil(N / 4) folds of P = max(M, 4)
    beats, (R + (F - 1) P + M - 1 + R + C + 0 edge stages) + 1, plus the engine's 4."""
    folds = -(-k // 4) * -(-n // 4)
    return (4 + (folds - 1) * max(m, 4) + m - 1 + 4 + 4) + 1 + 4


def elementwise(length, rows=1, depth=3):
    """A vector command of 4 lanes: rows x ceil(length / 4) beats, the pipeline's depth, 1."""
    return rows * -(-length // 4) + depth + 1


def test_predicted_phases_against_a_hand_count(layer):
    """One decode step at position 16 (17 keys), each GEMM one command (whole tiles on a tile with
    large scratchpads), one 4x4 MAC array (ws, no edge stages, a beat per cycle), 4 vector lanes:
    every operator's array and vector cycles (the union of its commands' busy cycles; one array
    and one vector unit, so the sum of its commands') by hand."""
    array = SystolicConfig(rows=4, cols=4, pe="mac", max_m=32, max_k=256, max_n=256)
    tile = TileConfig(array=array, act_depth=1024, weight_depth=8192, out_depth=256, out_banks=2, vector_lanes=4,
                      bus_bytes=4, imem_depth=1024)
    compiled = compile_layer(layer, 1, TOKENS, tile, {name: OperatorMapping() for name in GEMMS})
    prediction = predict(compiled, MEMORY)
    assert ws_gemm(1, 64, 64) == (4 + 255 * 4 + 0 + 8) + 1 + 4 == 1037  # q_proj: 16 x 16 folds
    # rmsnorm: RSUMSQ with its RSQRT tail 1 + (16 beats + 4 + (64 + 1 + 32 + 1 + 41) + 1) = 161, the
    # MULSHIFT by the row's reciprocal, then the gain's requantization
    norm = 161 + elementwise(64) + elementwise(64)
    # RoPE per head: MUL of 16, two MUL of 8, ADD of 16, MULSHIFT of 16; 4 query and 2 key heads
    rope = 6 * (elementwise(16) + 2 * elementwise(8) + elementwise(16) + elementwise(16))
    # softmax of 2 KV heads x 2 query heads = 4 rows of 17 keys in one group (one token): RMAX
    # (4 x 5 beats + 4 + 1), EXP (depth 7), RSUM with its RECIP tail of 60 steps 1 + 4 (5 + 4 + 60 +
    # 1), MULSHIFT by the row's reciprocal
    softmax = (4 * 5 + 4 + 1) + elementwise(17, 4, depth=7) + (1 + 4 * (5 + 4 + 60 + 1)) + elementwise(17, 4)
    silu = elementwise(176, depth=7 - 1 + 15 + 1 + 2)  # SiLU: exp's first 6 stages, 16 divider steps, 2
    expected = {  # operator: (array, vector)
        "input_norm": (0, norm), "post_attention_norm": (0, norm),
        "q_proj": (ws_gemm(1, 64, 64), elementwise(64)), "o_proj": (ws_gemm(1, 64, 64), elementwise(64)),
        "k_proj": (ws_gemm(1, 64, 32), elementwise(32)), "v_proj": (ws_gemm(1, 64, 32), elementwise(32)),
        "rope": (0, rope),
        "attn.score": (2 * ws_gemm(2, 16, 17), 0),  # the KV heads one after the other
        "attn.softmax": (0, softmax),
        "attn.context": (2 * ws_gemm(2, 17, 16), elementwise(16, 4)),
        "residual_add": (0, 2 * elementwise(64)),  # both residual additions
        "mlp.gate_proj": (ws_gemm(1, 64, 176), elementwise(176)),
        "mlp.up_proj": (ws_gemm(1, 64, 176), elementwise(176)),
        "mlp.silu_mul": (0, silu + elementwise(176) + elementwise(176)),  # SiLU, times up, requantization
        "mlp.down_proj": (ws_gemm(1, 176, 64), elementwise(64)),
    }
    got = {name: (o.array, o.vector) for name, o in prediction.operators.items()}
    assert got == expected
    assert all(o.dma > 0 for o in prediction.operators.values())
    assert sum(o.total for o in prediction.operators.values()) == prediction.cycles == \
        tile.program_cycles(compiled.program, MEMORY)
    table = cycle_table({"decode": prediction}, {"decode": {"q_proj": 1000.0}})
    assert "q_proj" in table and "(layer)" in table


# --- the tests can fail ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def decode(layer, x):
    d = design()
    compiled = compile_layer(layer, 1, TOKENS, tile_of(d), model_mappings(d)["decode"])
    cache = KVCache(k=np.zeros((2, 128, 16), np.int64), v_t=np.zeros((2, 16, 128), np.int64), length=TOKENS)
    expected = layer.execute(x[TOKENS:], cache)
    return compiled, compiled.image(x[TOKENS:], cache), expected


def _broken(compiled, index, instruction=None):
    program = list(compiled.program)
    if instruction is None:
        del program[index]
    else:
        program[index] = instruction
    return dataclasses.replace(compiled, program=tuple(program),
                               tags=compiled.tags[:index] + compiled.tags[index + (instruction is None):])


def test_the_decode_step_is_bit_exact_before_breaking_it(decode):
    compiled, image, expected = decode
    assert_every_tensor(compiled, interpret(compiled, image, MEMORY), expected)


def test_a_wrong_pitch_is_caught(decode):
    compiled, image, expected = decode
    i, ins = next((i, ins) for i, ins in enumerate(compiled.program)  # the scores' GEMM: 2 rows of A
                  if isinstance(ins, Issue) and isinstance(ins.command, GemmCommand) and ins.command.m > 1)
    banks = compiled.tile.gemm.act.banks  # still skewed, but not the pitch the rows were loaded at
    wrong = dataclasses.replace(ins.command, a_pitch=ins.command.a_pitch + banks)
    broken = _broken(compiled, i, Issue(ins.slot, wrong))
    dram = interpret(broken, image, MEMORY)
    assert compiled.tags[i] == "attn.score"
    assert not np.array_equal(broken.read(dram, "scores"), expected["scores"])


def test_a_missing_wait_is_caught(decode):
    compiled, image, _ = decode
    i = next(i for i, ins in enumerate(compiled.program) if isinstance(ins, Wait))
    with pytest.raises(RaceError, match="runs while instruction"):
        interpret(_broken(compiled, i), image, MEMORY)


def test_a_wrong_tile_offset_is_caught(decode):
    compiled, image, expected = decode
    i, ins = next((i, ins) for i, ins in enumerate(compiled.program) if isinstance(ins, Issue) and
                  isinstance(ins.command, DmaCommand) and compiled.tags[i] == "q_proj" and ins.command.dir == "load")
    word = compiled.tile.gemm.act.word_elements
    wrong = dataclasses.replace(ins.command, spad_addr=ins.command.spad_addr + word)
    broken = _broken(compiled, i, Issue("dma", wrong))
    dram = interpret(broken, image, MEMORY)
    assert not np.array_equal(broken.read(dram, "q_acc"), expected["q_acc"])


def test_a_store_racing_the_vector_command_it_waits_for_is_caught(decode):
    # the wait between a vector command and the DMA store of its result: without it the store
    # reads elements the vector unit is still writing
    compiled, image, _ = decode
    program = compiled.program
    i = next(i for i in range(1, len(program) - 1) if isinstance(program[i], Wait)
             and isinstance(program[i - 1], Issue) and program[i - 1].slot == "vec"
             and isinstance(program[i + 1], Issue) and isinstance(program[i + 1].command, DmaCommand)
             and program[i + 1].command.dir == "store")
    with pytest.raises(RaceError, match="runs while instruction"):
        interpret(_broken(compiled, i), image, MEMORY)
