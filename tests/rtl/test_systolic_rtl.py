"""SystolicArray against the golden GEMM in the Amaranth simulator: every PE, both dataflows,
odd array shapes, exact cycles for every output row (each run: corner GEMMs plus 8 random shapes)."""

import pytest

from peforge.hw.pe import PE_KINDS
from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.fpmac import FpMacConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.systolic import SystolicConfig
from peforge.sim.runners import simulate

SMALL = dict(max_m=12, max_k=64, max_n=32)

# Per PE, three configs per dataflow: 3 x 8 = 24 random GEMM shapes per PE and dataflow.
ARRAYS = {
    "mac": [
        dict(rows=4, cols=4, pe_config=MacConfig()),
        dict(rows=1, cols=1, pe_config=MacConfig(a_bits=4, w_bits=6, max_accumulations=3)),  # sums wrap
        dict(rows=3, cols=5, pe_config=MacConfig(a_bits=2, w_bits=16)),
    ],
    "bitserial": [
        dict(rows=2, cols=3, pe_config=BitSerialConfig(lanes=2, k=1, max_w_bits=4)),
        dict(rows=3, cols=1, pe_config=BitSerialConfig(lanes=1, k=4, max_w_bits=8, a_bits=5)),
        dict(rows=1, cols=4, pe_config=BitSerialConfig(lanes=3, k=2, max_w_bits=7, max_accumulations=2)),
    ],
    "mixed": [
        dict(rows=2, cols=3, pe_config=MixedConfig(lanes=2, group=8)),
        dict(rows=3, cols=2, pe_config=MixedConfig(lanes=1, group=3, w_bits=3, zero_point=False)),
        dict(rows=1, cols=1, pe_config=MixedConfig(lanes=4, group=8, w_bits=2, scale_bits=4,
                                                    scale_frac_bits=2, max_groups=2)),
    ],
    "fpmac": [
        dict(rows=2, cols=3, pe_config=FpMacConfig(fmt="e4m3", acc="fp16", lanes=2)),
        dict(rows=3, cols=1, pe_config=FpMacConfig(fmt="bf16", acc="bf16", subnormals=False)),  # roundings show
        dict(rows=1, cols=2, pe_config=FpMacConfig(fmt="e5m2", lanes=3, subnormals=False, approx_norm=True)),
    ],
}
CASES = [(pe, df, i) for pe in ARRAYS for df in ("ws", "os") for i in range(3)]


@pytest.mark.parametrize("pe, dataflow, index", CASES, ids=[f"{pe}-{df}-{i}" for pe, df, i in CASES])
def test_systolic_matches_golden_and_cycles(pe, dataflow, index):
    config = SystolicConfig(pe=pe, dataflow=dataflow, **SMALL, **ARRAYS[pe][index])
    report = simulate(config, seed=index)
    assert report.passed, report.failures[:5]
    assert report.cycles_checked == report.ops > 0


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("pe", list(PE_KINDS))
def test_every_registered_kind_with_its_defaults(pe, dataflow):
    """Any PE the registry lists works in both dataflows with its default parameters."""
    config = SystolicConfig(pe=pe, dataflow=dataflow, rows=2, cols=2, max_m=6, max_k=40, max_n=6)
    report = simulate(config, seed=3)
    assert report.passed, report.failures[:5]
    assert report.cycles_checked == report.ops > 0


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_mac_output_register_and_tiny_buffers(dataflow):
    pe = MacConfig(output_register=dataflow == "os")
    config = SystolicConfig(pe="mac", dataflow=dataflow, rows=2, cols=2, max_m=3, max_k=5, max_n=3, pe_config=pe)
    report = simulate(config, seed=5)
    assert report.passed, report.failures[:5]


@pytest.mark.parametrize("pe", list(ARRAYS))
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_input_bubbles_delay_but_never_corrupt(pe, dataflow):
    """With ``valid`` dropped at random, results stay exact (only their timing moves)."""
    import numpy as np

    from peforge.sim.runners import simulate_with
    from peforge.sim.testbench import systolic as tb

    config = SystolicConfig(pe=pe, dataflow=dataflow, **SMALL, **ARRAYS[pe][0])
    rng = np.random.default_rng(11)
    stim = tb.Stimulus(config, rng)
    gemms = [stim.random(*stim.random_shape()) for _ in range(3)]
    job = tb.make_job(config, "bubbles", gemms, rng, stim)
    decode = tb.decoder(config)

    async def drive(bench):
        await bench.reset()
        outputs, index, ready = [], 0, bench.get("i__ready")
        for _ in range(20_000):
            offer = index < len(job.beats) and rng.random() < 0.6
            bench.set("i__valid", int(offer))
            if offer:
                bench.set("i__payload", job.beats[index])
            await bench.tick()
            index += int(offer and ready)
            if bench.get("o__valid"):
                outputs.append(decode(bench.get("o__payload")))
            ready = bench.get("i__ready")
            if len(outputs) == len(job.results):
                break
        return outputs

    assert simulate_with(config, drive) == job.results
