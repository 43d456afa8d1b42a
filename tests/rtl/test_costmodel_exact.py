"""The cost model's GEMM cycles equal the RTL systolic array's, measured in simulation: a smoke test.

For every PE and dataflow, 20 random GEMM shapes (not multiples of the array, K = 1 and M = 1
included by chance) run one by one through a simulated 3 x 2 array; the cycle of the last output
row, counted from the first accepted beat, must equal ``peforge.dse.cost.array.gemm_cycles``.
Random shapes on one small square-ish array leave terms of the formula that never bind (the
output-stationary period's C - 1 needs C > R + 1), so this test alone does not pin the formula:
``tests/rtl/test_cycles_property_rtl.py`` (Amaranth) and ``tests/cocotb/test_cycles_property.py``
(Verilator, arrays up to 16 x 16, K above 2000) choose shapes where every term binds.
"""

import numpy as np
import pytest

from peforge.dse.design.point import Compute
from peforge.dse.cost.array import array_shapes, gemm_cycles
from peforge.hw import params
from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.systolic import SystolicConfig
from peforge.sim.runners import simulate_with
from peforge.sim.testbench import Report, run_job
from peforge.sim.testbench.systolic import Stimulus, decoder, make_job

SHAPES_PER_CASE = 20
PES = {
    "mac": MacConfig(a_bits=6, w_bits=5),
    "bitserial": BitSerialConfig(lanes=2, k=2, max_w_bits=6),
    "mixed": MixedConfig(lanes=2, group=12, w_bits=3),
}


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("pe", list(PES))
def test_model_cycles_equal_rtl(pe, dataflow):
    config = SystolicConfig(rows=3, cols=2, pe=pe, dataflow=dataflow, pe_config=PES[pe],
                            max_m=10, max_k=30, max_n=7)
    shape = array_shapes([Compute(pe=pe, rows=3, cols=2, dataflow=dataflow,
                                  pe_params=tuple(params.as_dict(PES[pe]).items()))])
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(SHAPES_PER_CASE):
        m, k, n = int(rng.integers(1, 11)), int(rng.integers(1, 31)), int(rng.integers(1, 8))
        if pe == "mixed":
            k = int(rng.integers(1, 3)) * 12  # whole quantization groups along K
        w_bits = int(rng.integers(2, 7)) if pe == "bitserial" else None
        model = float(gemm_cycles(shape, m, k, n, w_bits or 8)[0, 0, 0])
        cases.append(((m, k, n), w_bits, model))

    async def measure(bench):
        report = Report("systolic")
        stim = Stimulus(config, rng)
        decode = decoder(config)
        await bench.reset()
        for (m, k, n), w_bits, model in cases:
            job = make_job(config, f"{m}x{k}x{n}", [stim.random(m, k, n, w_bits)], rng, stim)
            job.cycles[-1] = model  # the last row: the GEMM's total, as the cost model prices it
            await run_job(bench, report, job, decode)
        return report

    report = simulate_with(config, measure)
    assert report.cases == SHAPES_PER_CASE
    assert report.passed, report.failures[:5]


@pytest.mark.parametrize("banks", [1, 2, 4])
def test_model_pim_gemv_cycles_equal_rtl(banks):
    """GEMVs of random shapes on a simulated PIM channel take exactly the cost model's cycles."""
    from peforge.dse.cost.model import _PimArrays
    from peforge.dse.design.point import DesignPoint, Pim
    from peforge.hw.pim import PimChannelConfig
    from peforge.sim.testbench.pim import PimDriver, gemv_case

    # the design's timing in ns at 500 MHz: 3, 4, 7 and 2 cycles
    design = DesignPoint(pim=Pim(mode="blocked", banks=banks, rows=16, cols=16, lanes=4, clock_mhz=500.0,
                                 t_rcd_ns=6.0, t_rp_ns=7.5, t_ras_ns=13.0, t_ccd_ns=4.0))
    config = PimChannelConfig(banks=banks, rows=16, cols=16, lanes=4, t_rcd=3, t_rp=4, t_ras=7, t_ccd=2)
    assert design.pim.channel == config
    priced = _PimArrays([design])  # the cost model's view of the design's PIM channels
    rng = np.random.default_rng(banks)
    shapes = []
    while len(shapes) < 8:
        m, k = int(rng.integers(1, 4 * banks + 1)), int(rng.integers(1, 40))
        if config.gemv_fits(m, k, banks):
            shapes.append((m, k))

    async def measure(bench):
        report = Report("pim-channel")
        driver = PimDriver(bench, config, report)
        await driver.reset()
        measured = []
        for m, k in shapes:
            W = rng.integers(-100, 100, (m, k))
            x = rng.integers(-100, 100, k)
            # the layout the model prices: as many W rows per DRAM row as fit
            first, last, _ = await gemv_case(driver, f"{m}x{k}", W, x, pack=config.max_pack(k))
            measured.append(last - first)
        return report, measured

    report, measured = simulate_with(config, measure)
    assert report.passed, report.failures[:5]
    assert any(config.max_pack(k) > 1 for _, k in shapes)
    assert measured == [float(priced.gemv_cycles(m, k)[0, 0, 0]) for m, k in shapes]
