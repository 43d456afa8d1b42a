"""Cold characterization time of a PE (simulation + Yosys) and the cached lookup time.

Run: ``python benchmarks/characterize_speed.py [BLOCK KEY=VALUE ...]`` (default: mac).
Uses a fresh temporary cache, so the first call is always cold (Yosys itself should be
warmed once on a new machine: its first start compiles the WebAssembly, ~30 s).
"""

from __future__ import annotations

import sys
import tempfile
import time

from peforge.hw.blocks import block_named
from peforge.sim.characterize import characterize


def main(argv: list[str]) -> int:
    name, *assignments = argv or ["mac"]
    config = block_named(name).configure(assignments)
    with tempfile.TemporaryDirectory(prefix="peforge-bench-") as cache:
        start = time.perf_counter()
        cold = characterize(config, cache_dir=cache)
        cold_s = time.perf_counter() - start
        lookups = []
        for _ in range(20):
            start = time.perf_counter()
            warm = characterize(config, cache_dir=cache)
            lookups.append(time.perf_counter() - start)
    assert warm.cached and warm.gates == cold.gates
    best, median = min(lookups), sorted(lookups)[len(lookups) // 2]
    print(f"{name} {' '.join(assignments)}: cold {cold_s:.2f} s, cached median {median * 1e3:.2f} ms "
          f"(best {best * 1e3:.2f} ms), ratio {cold_s / median:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
