"""Logic of the tile's parts beside its arrays and buffers, measured by Yosys and fitted in closed
form: the vector unit over its lanes, the DMA over its bus width, the sequencer's logic (its
instruction memory is a macro, priced by the technology's SRAM model where it is used).

Each part is synthesized with its memories cut out (:func:`peforge.sim.macros.tile_figures`,
cached like every synthesis) at the sizes of :data:`LANES` and :data:`BUS_BYTES`, the rest of
its configuration that of the tile ``benchmarks/tile_figures.py`` measures whole (the
:func:`~peforge.dse.tile.design_tile.design_tile` of :data:`REFERENCE`, ``tests/designs/tile-tiny``:
a 4 x 4 INT8 MAC array, 4 lanes, a 4-byte bus, 2048 instructions). The NAND2-equivalent gates are fitted by least squares
(:func:`peforge.sim.scaling.fit_linear`): ``vector = fixed + per_lane x lanes``, ``dma = fixed +
per_byte x bus_bytes``; the sequencer is one measured figure (its logic hardly depends on the
program's width). The fits are data: ``python -m peforge.sim.tile_parts`` measures and writes
:data:`DATA` (points, coefficients, R², tools), which the cost model reads
(:mod:`peforge.dse.cost.tile_parts`); nothing is tuned.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from ..files import write_atomic
from .scaling import fit_linear

__all__ = ["BUS_BYTES", "DATA", "LANES", "REFERENCE", "load", "measure"]

DATA = Path(__file__).resolve().parent / "data" / "tile_parts.json"
LANES = (1, 2, 4)
BUS_BYTES = (4, 8, 16)
REFERENCE = {
    "name": "tile-parts-reference", "tech": "7nm", "quant": "w8a8kv8",
    "compute": {"pe": "mac", "rows": 4, "cols": 4, "dataflow": "ws", "arrays": 1, "clock_mhz": 500.0,
                "vector_lanes": 4},
    "sram": {"weight_kib": 2, "activation_kib": 2, "output_kib": 4},
    "memory": {"technology": "LPDDR5", "units": 1}}


def _reference_tile():
    """The tile of :data:`REFERENCE` that ``benchmarks/tile_figures.py`` measures whole."""
    from ..dse.design.point import design_from_dict
    from ..dse.tile.design_tile import design_tile

    return design_tile(design_from_dict(REFERENCE), max_m=32, max_k=256, max_n=64, imem_depth=2048)


def _logic_nand2(component, top: str, cache_dir: Path | None) -> float:
    from .macros import tile_figures

    return tile_figures(component, REFERENCE["tech"], top=top, cache_dir=cache_dir).synth.logic.nand2_eq


def measure(*, cache_dir: Path | None = None, lanes=LANES, bus_bytes=BUS_BYTES, progress=None) -> dict:
    """Synthesize every size and fit (see the module docstring); the payload :data:`DATA` holds."""
    from ..hw.tile.dma import Dma
    from ..hw.tile.sequencer import Sequencer
    from ..hw.tile.vector import VectorUnit
    from .characterize import tool_versions

    tile = _reference_tile()
    say = progress or (lambda text: None)
    vector = []
    for v in lanes:
        say(f"vector unit, {v} lanes")
        vector.append((v, _logic_nand2(VectorUnit(replace(tile.vector, lanes=v)), f"vector{v}", cache_dir)))
    dma = []
    for b in bus_bytes:
        say(f"DMA, {b}-byte bus")
        dma.append((b, _logic_nand2(Dma(replace(tile.dma, bus_bytes=b)), f"dma{b}", cache_dir)))
    say("sequencer")
    sequencer = _logic_nand2(Sequencer(tile.sequencer), "sequencer", cache_dir)
    fits = {"vector": fit_linear(vector), "dma": fit_linear(dma)}
    return {"unit": "NAND2-equivalent gates of logic (memories cut out as macros)",
            "reference": REFERENCE, "tools": tool_versions(),
            "vector": {"size": "lanes", **fits["vector"].to_dict()},
            "dma": {"size": "bus_bytes", **fits["dma"].to_dict()},
            "sequencer": {"nand2_eq": sequencer, "imem_width_bits": tile.sequencer.width,
                          "imem_depth": tile.sequencer.depth}}


def load(path: Path = DATA) -> dict:
    """The stored fits (:func:`measure`'s payload)."""
    return json.loads(Path(path).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="measure the tile parts' logic and store the fits")
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args(argv)
    payload = measure(progress=lambda text: print(f"synthesizing the {text}", file=sys.stderr, flush=True))
    write_atomic(args.out, json.dumps(payload, indent=1) + "\n")
    for part in ("vector", "dma"):
        f = payload[part]
        print(f"{part}: {f['fixed']:.0f} + {f['per_unit']:.0f} x {f['size']} NAND2 eq (R2 {f['r2']:.4f}, "
              f"worst point {100 * f['max_rel_error']:.1f} %)")
    print(f"sequencer: {payload['sequencer']['nand2_eq']:.0f} NAND2 eq")
    return 0


if __name__ == "__main__":
    sys.exit(main())
