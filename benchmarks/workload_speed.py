"""Speed of `peforge workload show`, and where Llama-2-7B decode sits on the roofline.

Prints
- the wall time of the CLI command (a fresh process, as a user runs it) and of building the
  graph alone in this process, seconds;
- the decode arithmetic intensity (ops/byte, 2 ops per MAC; bytes = weights + activations +
  KV cache) of Llama-2-7B at batch 1, 16, 64 with 2048 cached tokens, for FP16 and for
  w4a8kv8-g128. Values near 1-20 ops/byte are memory bound on any accelerator, which is
  where processing-in-memory should help.

Run: python benchmarks/workload_speed.py
"""

from __future__ import annotations

import subprocess
import sys
import time

from peforge.models.config import load_config
from peforge.models.graph import build_graph

COMMAND = ["workload", "show", "llama-2-7b", "--phase", "decode", "--batch", "16", "--kv", "2048",
           "--quant", "w4a8kv8-g128"]
REPEATS = 5


def main() -> int:
    walls = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "peforge", *COMMAND], check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    print(f"peforge {' '.join(COMMAND)}")
    print(f"  CLI wall time: best {min(walls):.3f} s, median {sorted(walls)[REPEATS // 2]:.3f} s "
          f"over {REPEATS} runs (includes Python start-up)")

    cfg = load_config("llama-2-7b")
    start = time.perf_counter()
    for _ in range(REPEATS):
        graph = build_graph(cfg, "decode", batch=16, kv_len=2048, quant="w4a8kv8-g128")
    build = (time.perf_counter() - start) / REPEATS
    graph.summary()  # first call imports pandas
    start = time.perf_counter()
    rows = len(graph.summary())
    summary = time.perf_counter() - start
    print(f"  graph build in-process: {build * 1e3:.2f} ms ({len(graph.operators)} operators); "
          f"vectorized summary {summary * 1e3:.1f} ms ({rows} unique shapes)")
    print()
    print("Llama-2-7B decode arithmetic intensity, ops/byte, 2048 cached tokens")
    print(f"{'quant':<14} {'batch 1':>8} {'batch 16':>9} {'batch 64':>9}   at batch 64: {'gemm':>6} {'attention':>9}")
    for quant in ("w16a16kv16", "w4a8kv8-g128"):
        values = []
        for batch in (1, 16, 64):
            graph = build_graph(cfg, "decode", batch=batch, kv_len=2048, quant=quant)
            values.append(graph.totals()["intensity"])
        kinds = graph.by_kind()
        print(f"{quant:<14} {values[0]:>8.2f} {values[1]:>9.2f} {values[2]:>9.2f}   {'':>12}"
              f"{kinds['gemm']['intensity']:>6.1f} {kinds['attention']['intensity']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
