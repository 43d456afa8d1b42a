"""A design's whole accelerator tile in an export folder, with the tiny layer's testbench files, and
the check that runs them (``peforge verify-design``).

:func:`export_tile_files` adds to a design's RTL folder (:mod:`peforge.dse.report.rtl`)::

    tile/accelerator_tile.v        the tile at a simulable size (peforge.dse.tile.bench.layer_tile):
                                   the same structure, small arrays and scratchpads
    tile_full/accelerator_tile.v   the tile at the design's sizes (when generated)
    layer/manifest.json            the tile's parameters, the memory model, the layer (model, seed,
                                   token ids) and per phase: files, carried KV-cache ranges, the
                                   symbol table (every tensor's DRAM bytes), the tensors to
                                   compare, predicted cycles (per instruction and operator)
    layer/<phase>.program.hex      the compiled program of the simulable tile, one instruction word
                                   per line (hex), for the prefill and the decode step
    layer/<phase>.dram.bin         the DRAM image each phase starts from (weights, inputs, tables)
    run_tile.py                    runs the testbench on these files (as `peforge verify-design`)

:func:`verify_folder` runs the testbench on the files of a folder (not regenerated ones): the
program words and DRAM images as they are, the golden tensors recomputed from the manifest's
layer and tokens by :class:`~peforge.dse.tile.intlayer.IntLayer`, the cycles against the
manifest's prediction.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from ...files import write_atomic
from ...hw.blocks import block_named
from ...hw.tile.config import TileConfig
from ...hw.tile.dma import MemoryModel

__all__ = ["TILE_FOLDER", "FULL_TILE_FOLDER", "LAYER_FOLDER", "TileExport", "export_tile_files", "load_plan",
           "verify_folder", "tile_to_dict", "tile_from_dict"]

TILE_FOLDER = "tile"
FULL_TILE_FOLDER = "tile_full"
LAYER_FOLDER = "layer"
MANIFEST = "manifest.json"
# The full-size tile by default up to this many PEs over all arrays: one of 16 x 16 bit-serial
# PEs with 512 KiB scratchpads takes ~95 s to generate (12 MB of Verilog), an array ~30 s.
FULL_TILE_AUTO_PES = 64


@dataclass
class TileExport:
    """What :func:`export_tile_files` wrote: ``files``, README ``rows`` (file, what), ``notes``
    (what it could not write, and why)."""

    files: list[Path] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_layer(self) -> bool:
        return any(path.name == MANIFEST for path in self.files)


def tile_to_dict(tile: TileConfig) -> dict[str, Any]:
    """The tile's parameters as JSON: its array as ``KEY=VALUE`` assignments (``peforge verify systolic``'s)."""
    from .rtl import assignments

    out = {f.name: getattr(tile, f.name) for f in fields(tile) if f.name != "array"}
    return {"array": assignments(tile.array), **out}


def tile_from_dict(data: dict[str, Any]) -> TileConfig:
    """The :class:`TileConfig` of :func:`tile_to_dict`'s output."""
    data = dict(data)
    array = block_named("systolic").configure(data.pop("array"))
    return TileConfig(array=array, **data)


def _hex_words(words: tuple[int, ...], width: int) -> str:
    digits = -(-width // 4)
    return "".join(f"{word:0{digits}x}\n" for word in words)


def read_words(path: Path) -> list[int]:
    """The instruction words of a ``.program.hex`` file."""
    words = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if line:
            try:
                words.append(int(line, 16))
            except ValueError:
                raise ValueError(f"{path}:{number}: {line[:40]!r} is not a hex instruction word") from None
    return words


def export_tile_files(design: Any, out: Path, *, full_size: bool | None = None, mappings: dict | None = None,
                      say: Callable[[str], None] = lambda text: None) -> TileExport:
    """Write the tile Verilog and the tiny layer's testbench files of ``design`` under ``out``
    (see the module docstring). ``full_size``: True always generates the full-size tile, False
    never, None up to :data:`FULL_TILE_AUTO_PES` PEs over all arrays.
    ``mappings``: the GEMM mappings by phase (default: the cost model's,
    :func:`peforge.dse.tile.bench.tile_mappings`). A design the tile or the compiler cannot take
    gets a note, not an error."""
    from ...sim.tile_layer import export_tile
    from ..tile.bench import layer_tile, plan_layer, tile_mappings

    out = Path(out)
    result = TileExport()
    try:
        small = layer_tile(design)
    except ValueError as error:
        result.notes.append(f"no accelerator tile: {error}")
        return result
    say("compiling the tiny layer for the simulable tile ...")
    plan = None
    try:
        plan = plan_layer(design, small, mappings if mappings is not None else tile_mappings(design))
        small = plan.tile  # its instruction memory holds the programs
    except ValueError as error:
        result.notes.append(f"the tiny layer does not compile for this tile, so there is no tile testbench: {error}")
    say("exporting the accelerator tile (simulable size) ...")
    path = export_tile(small, out / TILE_FOLDER)
    result.files.append(path)
    result.rows.append((f"{TILE_FOLDER}/{path.name}", f"the accelerator tile, simulable: {_describe(small)}"))
    compute = design.compute
    pes = compute.rows * compute.cols * compute.arrays
    if full_size is True or (full_size is None and pes <= FULL_TILE_AUTO_PES):
        try:
            full = TileConfig.from_design(design, scaled=False)
        except ValueError as error:
            result.notes.append(f"the full-size tile cannot be built: {error}")
        else:
            say("exporting the accelerator tile (the design's sizes) ...")
            path = export_tile(full, out / FULL_TILE_FOLDER)
            result.files.append(path)
            result.rows.append((f"{FULL_TILE_FOLDER}/{path.name}", f"the accelerator tile at the design's sizes: "
                                                                    f"{_describe(full)}"))
    elif full_size is False:
        result.notes.append("the full-size tile was not asked for (--no-full-size)")
    else:
        result.notes.append(f"the full-size tile ({pes} PEs) was not generated (slow beyond {FULL_TILE_AUTO_PES} "
                            f"PEs); `--full-size` generates it")
    if plan is None:
        return result
    layer_dir = out / LAYER_FOLDER
    phases = []
    for p in plan.phases:
        program = write_atomic(layer_dir / f"{p.name}.program.hex", _hex_words(p.words, small.sequencer.width))
        image = write_atomic(layer_dir / f"{p.name}.dram.bin", p.image)
        result.files += [program, image]
        result.rows += [(f"{LAYER_FOLDER}/{program.name}", f"the {p.name} program: {len(p.words)} instruction words "
                                                           f"of {small.sequencer.width} bits (hex, one per line)"),
                        (f"{LAYER_FOLDER}/{image.name}", f"the DRAM image the {p.name} starts from "
                                                         f"({len(p.image)} bytes)")]
        phases.append({"name": p.name, "program": program.name, "image": image.name,
                       "carry": [list(c) for c in p.carry], "tags": list(p.tags), "limit": p.limit,
                       "tensors": {name: {"addr": s.addr, "shape": list(s.shape), "elem_bytes": s.elem_bytes}
                                   for name, s in p.tensors.items()},
                       "symbols": {name: {"addr": s.addr, "bytes": s.size, "layout": s.layout}
                                   for name, s in p.symbols.items()},
                       "predicted": {"cycles": p.predicted_cycles, "issued": list(p.predicted_issued),
                                     "operators": p.predicted_operators}})
    manifest = {"tile": tile_to_dict(small), "memory": asdict(plan.memory),
                "layer": {"model": plan.layer.model.name, "seed": plan.layer.seed}, "tokens": list(plan.tokens),
                "phases": phases}
    result.files.append(write_atomic(layer_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n"))
    result.rows.append((f"{LAYER_FOLDER}/{MANIFEST}", "the testbench's inputs: tile parameters, memory model, layer, "
                                                      "token ids, per phase the tensors checked and predicted cycles"))
    result.files.append(write_atomic(out / "run_tile.py", _RUNNER))
    result.rows.append(("run_tile.py", "runs the tile testbench on these files (as `peforge verify-design` does)"))
    return result


def _describe(tile: TileConfig) -> str:
    a = tile.array
    return (f"{tile.arrays} x ({a.rows} x {a.cols}) {a.pe} {a.dataflow.upper()}, scratchpads of {tile.act_depth} / "
            f"{tile.weight_depth} / {tile.out_depth} words per bank (activation / weight / output), "
            f"{tile.vector_lanes} vector lanes, {tile.bus_bytes}-byte AXI4 bus, {tile.imem_depth} instructions")


def load_plan(folder: Path):
    """The :class:`~peforge.dse.tile.bench.LayerPlan` of an exported folder's ``layer/`` files.
    Raises ``ValueError`` naming the file for a folder without them or a damaged manifest."""
    from ..tile.bench import LayerPlan, PhasePlan
    from ..tile.dram import Symbol
    from ..tile.intlayer import IntLayerConfig

    folder = Path(folder)
    path = folder / LAYER_FOLDER / MANIFEST
    if not path.is_file():
        raise ValueError(f"{folder}: no {LAYER_FOLDER}/{MANIFEST}, so no tile testbench here (see its README)")
    try:
        manifest = json.loads(path.read_text())
        tile = tile_from_dict(manifest["tile"])
        phases = []
        for p in manifest["phases"]:
            tensors = {name: Symbol(name=name, addr=s["addr"], shape=tuple(s["shape"]), elem_bytes=s["elem_bytes"])
                       for name, s in p["tensors"].items()}
            predicted = p["predicted"]
            phases.append(PhasePlan(
                name=p["name"], words=tuple(read_words(folder / LAYER_FOLDER / p["program"])), tags=tuple(p["tags"]),
                image=(folder / LAYER_FOLDER / p["image"]).read_bytes(), carry=tuple(tuple(c) for c in p["carry"]),
                tensors=tensors, symbols={}, predicted_cycles=predicted["cycles"],
                predicted_issued=tuple(predicted["issued"]), predicted_operators=predicted["operators"]))
        return LayerPlan(tile=tile, memory=MemoryModel(**manifest["memory"]),
                         layer=IntLayerConfig(model=manifest["layer"]["model"], seed=manifest["layer"]["seed"]),
                         tokens=tuple(manifest["tokens"]), phases=tuple(phases))
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a tile testbench manifest (missing or bad {error})") from None


def verify_folder(folder: Path, simulator: str, build_dir: Path, *, quick_build: bool = True,
                  only: tuple[str, ...] | None = None):
    """Run the tile testbench on an exported folder's files (:func:`load_plan`) under
    ``simulator`` (``only``: these phases, see :func:`~peforge.dse.tile.bench.run_plan`); returns
    the :class:`~peforge.dse.tile.bench.LayerReport`."""
    from ..tile.bench import run_plan

    folder = Path(folder)
    plan = load_plan(folder)
    source = folder / TILE_FOLDER / "accelerator_tile.v"
    if not source.is_file():
        raise ValueError(f"{folder}: no {TILE_FOLDER}/accelerator_tile.v to run the testbench on")
    return run_plan(plan, source, simulator, build_dir, quick_build=quick_build, only=only)


_RUNNER = '''#!/usr/bin/env python
"""Run peforge's tile testbench (the tiny layer's prefill and decode, bit for bit, cycles against
the prediction) on the tile Verilog, program and DRAM images in this folder.

Usage: python run_tile.py [--sim verilator|icarus] [--build-dir DIR] [--json]
Exit status 0 when every tensor matches the golden model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from peforge.dse.report.tile_rtl import verify_folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--build-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="peforge-tile-") as tmp:
        try:
            report = verify_folder(here, args.sim, args.build_dir or Path(tmp))
        except (ValueError, RuntimeError) as error:
            print(f"run_tile.py: {error}", file=sys.stderr)
            return 2
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.summary())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
'''
