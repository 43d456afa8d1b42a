"""Run GEMMs through SCALE-Sim's Python class and print their cycles as JSON.

Executed by ``bench_costmodel.py`` with the python of a separate venv that holds SCALE-Sim
(it needs numpy < 2, the project runs numpy 2), so this file imports nothing of peforge.

stdin: ``{"cases": [{"rows": R, "cols": C, "dataflow": "ws"|"os", "m": M, "k": K, "n": N}, ...]}``
with our convention, ``(M x K) @ (K x N)``.
stdout: ``{"results": [{"total": .., "stalls": .., "compute": .., "seconds": ..}, ...]}``.

SCALE-Sim is run with huge SRAMs and in CALC bandwidth mode (it estimates the DRAM bandwidth
that never stalls), traces not written (``save_disk_space``), so its cycles are compute only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time



def sram_kb(elements: int) -> int:
    """A buffer (1-byte words) twice the operand: it never refetches. Not bigger: SCALE-Sim's
    CALC-mode bookkeeping pads its prefetch trace to the buffer size, slow for huge buffers."""
    return max(64, 2 * -(-elements // 1024))

CONFIG = """[general]
run_name = bench

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = {ifmap}
filtersramszkB = {filter}
ofmapsramszkB = {ofmap}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40
"""


def run_case(case: dict, where: str) -> dict:
    from scalesim.scale_sim import scalesim

    config = os.path.join(where, "bench.cfg")
    topology = os.path.join(where, "gemm.csv")
    layout = os.path.join(where, "layout.csv")
    with open(config, "w") as f:
        m, k, n = case["m"], case["k"], case["n"]
        f.write(CONFIG.format(rows=case["rows"], cols=case["cols"], dataflow=case["dataflow"],
                              ifmap=sram_kb(m * k), filter=sram_kb(k * n), ofmap=sram_kb(m * n)))
    # GEMM topology rows are "name, M, N, K," (trailing comma): the input is M x K, the filter
    # K x N, the output M x N, i.e. the same product as ours, only the columns reordered.
    with open(topology, "w") as f:
        f.write("Layer, M, N, K,\n")
        f.write(f"gemm, {m}, {n}, {k},\n")
    # A layout file must exist even when custom layouts are off; only its header is read then.
    with open(layout, "w") as f:
        f.write("Layer,\n")
    start = time.perf_counter()
    sim = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology, layout=layout,
                   input_type_gemm=True)
    sim.run_scale(top_path=where)
    seconds = time.perf_counter() - start
    layer = sim.runner.single_layer_sim_object_list[0]
    _, total, stalls, *_ = layer.get_compute_report_items()
    return {"total": int(total), "stalls": int(stalls), "compute": int(total) - int(stalls), "seconds": seconds}


def main() -> int:
    request = json.load(sys.stdin)
    results = []
    # SCALE-Sim prints progress to stdout; keep stdout for the JSON answer.
    with contextlib.redirect_stdout(sys.stderr):
        for case in request["cases"]:
            with tempfile.TemporaryDirectory(prefix="peforge-scalesim-") as where:
                results.append(run_case(case, where))
    json.dump({"results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
