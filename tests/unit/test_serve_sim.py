"""The serving simulator against the cost model it is priced by, and its queueing invariants.

Unit costs are fixed figures (no characterization): the simulator's claims are about how it uses
the cost model, whatever the cells cost.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from peforge.dse.cost.model import CostModel
from peforge.dse.cost.units import UnitCosts
from peforge.dse.cost.workload import prepare
from peforge.dse.design.point import design_named
from peforge.dse.serve.cost import Composition, PoolCost
from peforge.dse.serve.metrics import SLO, max_rate, meets, percentile, summarize
from peforge.dse.serve.sim import Link, Scheduler, simulate, simulate_disaggregated, simulate_pool
from peforge.dse.serve.trace import Trace, synthetic
from peforge.models import load_config, parse_scheme
from peforge.models.graph import kv_cache_bytes

MODEL = "llama-2-7b"
COSTS = UnitCosts(pe_area_um2=60.0, pj_per_mac=0.3, fmax_mhz=2000.0, memory_gb_per_s=12.8,
                  memory_peak_gb_per_s=12.8, memory_efficiency=1.0, memory_capacity_gib=2.0, memory_pj_per_bit=4.0,
                  weight_sram_pj_per_bit=0.1, act_sram_pj_per_bit=0.1, out_sram_pj_per_bit=0.1,
                  weight_sram_area_um2=4e5, act_sram_area_um2=4e5, out_sram_area_um2=2e5, pim_pj_per_bit=0.0,
                  pim_pj_per_mac=0.0, pim_lane_area_um2=0.0, vector_pj_per_op=0.5)
CONTEXT = 1024


@pytest.fixture(scope="module")
def edge():
    return design_named("edge")


@pytest.fixture(scope="module")
def pool(edge):
    return PoolCost(edge, MODEL, prompt_lengths=[64, 100, 128, 300, 500], max_context=CONTEXT, max_batch=16,
                    costs=COSTS)


def exact(design, *, batch: int, seq: int, gen: int, phases=("prefill", "decode")) -> dict[str, float]:
    workload = prepare(MODEL, batch=batch, seq=seq, gen=gen, quant=design.run_quant(), phases=phases)
    return {k: float(v[0]) for k, v in CostModel([design], [COSTS]).metrics(workload, phases=phases).items()}


def requests(n: int, *, prompt: int, output: int, gap: float = 0.0) -> Trace:
    return Trace(arrival_s=np.arange(n) * gap, prompt=np.full(n, prompt), output=np.full(n, output), name="t")


def test_a_request_alone_is_the_cost_model(edge, pool):
    prompts, outputs = np.array([300, 64, 500]), np.array([40, 2, 200])
    trace = Trace(arrival_s=np.array([0.0, 1e4, 2e4]), prompt=prompts, output=outputs, name="alone")
    result = simulate(pool, trace)
    assert result.peak_running == 1
    for i, (s, g) in enumerate(zip(prompts, outputs)):
        m = exact(edge, batch=1, seq=int(s), gen=int(g))
        assert result.ttft_s[i] == pytest.approx(m["ttft_s"], rel=1e-9)
        assert result.tpot_s[i] == pytest.approx(m["tpot_s"], rel=1e-9)


def test_table_error_against_the_cost_model_is_bounded(edge, pool):
    # decode at batches between the grid's points and contexts between the priced chunks
    for batch in (3, 5, 12):
        for context in (37, 511, 1000):
            m = exact(edge, batch=batch, seq=context, gen=2, phases=("decode",))
            assert pool.decode_step_seconds(batch, context) == pytest.approx(m["tpot_s"], rel=0.01)
    # a prefill length the trace does not have (interpolated) and equal prefills batched together
    for seq in (77, 250, 900):
        m = exact(edge, batch=1, seq=seq, gen=1, phases=("prefill",))
        assert pool.prefill_seconds(seq) == pytest.approx(m["ttft_s"], rel=0.01)
    for batch, seq in ((2, 100), (4, 128)):
        m = exact(edge, batch=batch, seq=seq, gen=1, phases=("prefill",))
        comp = Composition(prefill_tokens=batch * seq, prefill_spans=((0, seq),) * batch)
        assert pool.iteration_seconds(comp) == pytest.approx(m["ttft_s"], rel=0.01)


def test_kv_budget_of_n_requests_holds_n(pool):
    n, prompt, output = 3, 64, 200
    per_request = math.ceil((prompt + output - 1) / 16)
    trace = requests(12, prompt=prompt, output=output)
    full = simulate(pool, trace, Scheduler(kv_blocks=n * per_request, reserve="full"))
    assert full.peak_running == n
    assert full.peak_kv_blocks <= n * per_request
    assert full.preemptions == 0
    lazy = simulate(pool, trace, Scheduler(kv_blocks=n * per_request))
    assert lazy.peak_kv_blocks <= n * per_request
    assert lazy.preemptions > 0  # admitted on their prompts, they outgrow the budget
    assert not np.isnan(lazy.finish_s).any()
    assert lazy.peak_running > n


@pytest.mark.parametrize("reserve", ["prompt", "full"])
def test_kv_blocks_round_up_and_count_the_tail(pool, reserve):
    # 17 prompt tokens + 40 generated: 56 positions cached at the end, in four 16-token blocks
    result = simulate(pool, requests(1, prompt=17, output=40), Scheduler(reserve=reserve))
    assert result.peak_kv_blocks == 4
    assert summarize(result)["kv_fragmentation"] == pytest.approx(1 - 56 / 64)
    eight = simulate(pool, requests(1, prompt=17, output=40), Scheduler(reserve=reserve, block_tokens=8))
    assert eight.peak_kv_blocks == 7  # ceil(56 / 8)


def test_more_kv_capacity_never_lowers_goodput(pool):
    trace = synthetic(n=120, rate_rps=3.0, arrivals="gamma", cv=2.0, prompt_median=150, output_median=60,
                      max_positions=CONTEXT, seed=3)
    slo = SLO(ttft_p99_s=30.0, tpot_p99_s=5.0)
    goodput = [summarize(simulate(pool, trace, Scheduler(kv_blocks=blocks)), slo)["goodput_rps"]
               for blocks in (64, 128, 256, 512, 1024)]
    assert all(b >= a for a, b in zip(goodput, goodput[1:])), goodput
    assert goodput[-1] > goodput[0]


def test_littles_law_on_a_long_run(pool):
    trace = synthetic(n=3000, rate_rps=1.0, prompt_median=120, output_median=40, max_positions=CONTEXT, seed=7)
    result = simulate(pool, trace)
    m = summarize(result)
    assert m["peak_running"] > 1 and m["ttft_p99_s"] > 1.0  # requests overlap and queue
    # the issue asks for 2 %; 0.5 % also catches arrivals' time within an iteration left uncounted (-1.7 %)
    assert m["mean_in_system"] == pytest.approx(trace.rate_rps * m["e2e_mean_s"], rel=0.005)


def test_percentiles_are_nearest_rank_and_ordered(pool):
    values = np.arange(1.0, 101.0)
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert percentile(np.array([3.0, 1.0, 2.0]), 99) == 3.0
    assert percentile(np.array([3.0, 1.0, 2.0]), 50) == 2.0
    trace = synthetic(n=200, rate_rps=1.0, prompt_median=200, output_median=50, max_positions=CONTEXT, seed=1)
    m = summarize(simulate(pool, trace))
    for name in ("ttft", "tpot", "e2e"):
        assert m[f"{name}_p99_s"] >= m[f"{name}_p90_s"] >= m[f"{name}_p50_s"] > 0


def test_max_rate_meets_the_slo_and_five_percent_more_does_not(pool):
    trace = synthetic(n=150, rate_rps=1.0, prompt_median=200, output_median=50, max_positions=CONTEXT, seed=2)
    slo = SLO(ttft_p99_s=3.0, tpot_p99_s=0.5)
    run = lambda t: simulate(pool, t)  # noqa: E731
    rate, metrics = max_rate(run, trace, slo)
    assert rate > 0 and metrics["slo_met"] == 1.0
    assert meets(summarize(run(trace.at_rate(rate)), slo), slo)
    assert not meets(summarize(run(trace.at_rate(rate * 1.05)), slo), slo)


def test_chunked_prefill_serves_every_request(pool):
    trace = synthetic(n=60, rate_rps=2.0, prompt_median=400, output_median=30, max_positions=CONTEXT, seed=4)
    plain = simulate(pool, trace)
    chunked = simulate(pool, trace, Scheduler(chunk_tokens=128))
    assert not np.isnan(chunked.finish_s).any()
    alone = requests(1, prompt=500, output=5)
    # a prompt in four chunks reads the weights four times: never faster than in one
    assert simulate(pool, alone, Scheduler(chunk_tokens=128)).ttft_s[0] > simulate(pool, alone).ttft_s[0]
    assert summarize(chunked)["requests"] == summarize(plain)["requests"]


def test_disaggregated_routes_through_both_pools_and_the_link(edge, pool):
    trace = Trace(arrival_s=np.array([0.0, 1e4]), prompt=np.array([300, 500]), output=np.array([20, 8]), name="d")
    fast = simulate_disaggregated(pool, pool, trace, link=Link(bandwidth_bytes_per_s=1e12, latency_s=0.0))
    slow = simulate_disaggregated(pool, pool, trace, link=Link(bandwidth_bytes_per_s=1e8, latency_s=1e-3))
    alone = simulate(pool, trace)
    assert fast.ttft_s == pytest.approx(alone.ttft_s, rel=1e-12)  # the prefill pool makes the first token
    config, scheme = load_config(MODEL), parse_scheme(edge.run_quant())
    transfer = np.array([kv_cache_bytes(config, scheme, int(s)) for s in trace.prompt])
    extra = (transfer / 1e8 + 1e-3) - transfer / 1e12
    assert slow.e2e_s - fast.e2e_s == pytest.approx(extra, rel=1e-6)
    assert slow.area_mm2 == pytest.approx(2 * pool.area_mm2)


def test_pools_of_several_chips_share_the_load(pool):
    trace = synthetic(n=80, rate_rps=4.0, prompt_median=200, output_median=40, max_positions=CONTEXT, seed=5)
    one, two = simulate_pool(pool, trace), simulate_pool(pool, trace, count=2)
    assert summarize(two)["e2e_mean_s"] < summarize(one)["e2e_mean_s"]
    assert two.area_mm2 == pytest.approx(2 * one.area_mm2)
