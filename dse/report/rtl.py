"""Verilog of a chosen design point: its compute blocks and its whole accelerator tile, each with a
testbench that runs on it.

For trial N of a study (or a design file), ``export_design`` writes a folder::

    README.md        what is here and how to check it
    design.toml      the design point (a design file: `load_design` reads it)
    blocks.json      each exported block: folder, block name, KEY=VALUE parameters
    run_tb.py        runs peforge's testbench for every block on the Verilog in this folder
    pe/<pe>.v        the design's processing element
    array_small/systolic.v   a small array (at most 4 x 4) of the same PE and dataflow: simulable
    array/systolic.v         the array at the design's size, when it is small enough to generate
                             quickly (or asked for) and within the array generator's limits
    tile/, tile_full/, layer/, run_tile.py
                     the accelerator tile (simulable and full size) with the tiny Llama layer's
                     program, DRAM images and testbench runner (:mod:`peforge.dse.report.tile_rtl`)

The block testbenches are the blocks' own (golden model, corner cases, exact cycle counts), run
under cocotb on Verilator or Icarus against the files here, not regenerated ones;
``peforge verify <block> <KEY=VALUE ...>`` runs the same testbench on the same parameters, and
``peforge verify-design DIR`` the tile's on the folder's files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from optuna.trial import TrialState

from ...files import write_atomic
from ...hw import params as hw_params
from ...hw.blocks import block_named, block_of
from ...hw.export import export
from ..search import storage as st
from ..design.point import DesignPoint, design_from_dict
from ..design.dump import dumps
from .tile_rtl import export_tile_files

SMALL_SIDE = 4           # the simulable array: at most SMALL_SIDE x SMALL_SIDE
FULL_AUTO_PES = 256      # generate the full-size array by default up to this many PEs (16 x 16: ~30 s)
SMALL_GEMM = {"max_m": 16, "max_k": 64, "max_n": 16}  # keeps the small array's buffers and testbench short


@dataclass
class Exported:
    """An export folder: the trial it came from (None: a design file), what was written, the
    README's rows of the tile's files, notes on what could not be."""

    folder: Path
    trial: int | None
    files: list[Path] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tile_rows: list[tuple[str, str]] = field(default_factory=list)
    has_layer: bool = False


def assignments(config: Any) -> list[str]:
    """The ``KEY=VALUE`` form of a block config (what ``peforge verify`` takes)."""
    out = []
    for key, value in hw_params.as_dict(config).items():
        if isinstance(value, dict):  # a nested PE: `pe.<name>=VALUE`
            selector = [spec.selector for f, spec in hw_params.nested_specs(config) if f.name == key][0]
            out += [f"{selector}.{k}={_text(v)}" for k, v in value.items()]
        else:
            out.append(f"{key}={_text(value)}")
    return out


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def trial_design(folder: Path, number: int) -> tuple[DesignPoint, dict[str, Any]]:
    """The design point of trial ``number`` of the study in ``folder`` and the trial's metrics."""
    manifest = st.read_manifest(folder)
    study = st.load_study(folder, manifest)
    try:
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    finally:
        st.close_storage(study._storage)
    if number not in trials:
        raise ValueError(f"--trial {number}: study {manifest['study']} has trials 0..{max(trials, default=-1)}")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE or "design" not in trial.user_attrs:
        reason = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("uncounted") or trial.state.name
        raise ValueError(f"--trial {number}: not a completed trial ({reason})")
    design = design_from_dict(trial.user_attrs["design"], f"trial {number}")
    return design, dict(trial.user_attrs.get("metrics", {}))


def array_configs(design: DesignPoint) -> tuple[Any, Any | None, str]:
    """The small and the full-size array configs of ``design`` (full: None where not possible) and why not."""
    block = block_named("systolic")
    compute = design.compute
    common = dict(pe=compute.pe, dataflow=compute.dataflow, pe_config=compute.pe_config)
    small = block.config(rows=min(compute.rows, SMALL_SIDE), cols=min(compute.cols, SMALL_SIDE),
                         **SMALL_GEMM, **common)
    try:
        full = block.config(rows=compute.rows, cols=compute.cols, **common)
    except (TypeError, ValueError) as error:
        return small, None, f"the full-size array is beyond the array generator ({error})"
    return small, full, ""


def export_design(folder: Path | None, number: int | None, out: Path, *, full_size: bool | None = None,
                  design: DesignPoint | None = None, tile: bool = True,
                  say: Callable[[str], None] = lambda text: None) -> Exported:
    """Write the RTL folder of trial ``number`` of the study in ``folder`` (or of ``design``, a
    design point, with ``folder`` and ``number`` None; see the module docstring) to ``out``.

    ``full_size``: True always generates the full-size array and tile, False never, None when
    they have at most :data:`FULL_AUTO_PES` PEs. ``tile``: also the accelerator tile and the tiny
    layer's testbench files.
    """
    if design is None:
        design, metrics = trial_design(Path(folder), number)
    else:
        metrics = {}
    out = Path(out)
    result = Exported(out, number)
    small, full, why = array_configs(design)
    compute = design.compute
    if full is not None and full_size is None and compute.rows * compute.cols > FULL_AUTO_PES:
        why = (f"the full-size {compute.rows} x {compute.cols} array was not generated (slow for more than "
               f"{FULL_AUTO_PES} PEs); `peforge export-design ... --full-size` or the command below makes it")
        full_command = f"peforge export systolic {' '.join(assignments(full))} --out array"
        why += f": `{full_command}`"
        full = None
    elif full_size is False and full is not None:
        why, full = "the full-size array was not asked for (--no-full-size)", None
    out.mkdir(parents=True, exist_ok=True)
    parts = [("pe", compute.pe_config, "the processing element"),
             ("array_small", small, f"a {small.rows} x {small.cols} array of the same PE (simulable)")]
    if full is not None:
        parts.append(("array", full, f"the {full.rows} x {full.cols} array of the design"))
    for sub, config, what in parts:
        say(f"exporting {what} ...")
        path = export(config, out / sub)
        result.files.append(path)
        block = block_of(config)
        result.blocks.append({"folder": sub, "block": block.name, "module": block.module_name,
                              "verilog": f"{sub}/{path.name}", "params": assignments(config), "what": what})
    if why:
        result.notes.append(why)
    if tile:
        tiles = export_tile_files(design, out, full_size=full_size, say=say)
        result.files += tiles.files
        result.tile_rows, result.has_layer = tiles.rows, tiles.has_layer
        result.notes += tiles.notes
    origin = f"trial {number} of the study in {folder}" if number is not None else f"design {design.name}"
    write_atomic(out / "design.toml", dumps(design.to_dict(), origin))
    write_atomic(out / "blocks.json", json.dumps(result.blocks, indent=2) + "\n")
    write_atomic(out / "run_tb.py", _RUNNER)
    write_atomic(out / "README.md", _readme(design, number, folder, metrics, result))
    result.files += [out / "design.toml", out / "blocks.json", out / "run_tb.py", out / "README.md"]
    return result


def run_exported(folder: Path, simulator: str, build_dir: Path, *, seed: int = 0,
                 only: str | None = None) -> list[Any]:
    """Run each block's testbench under cocotb on the Verilog files of an exported folder.

    Returns ``(blocks.json entry, testbench report)`` pairs (``report.passed``, ``report.summary()``).
    """
    from ...sim.runners import run_cocotb_on

    folder, build_dir = Path(folder).resolve(), Path(build_dir).resolve()
    reports = []
    for entry in json.loads((folder / "blocks.json").read_text()):
        if only is not None and entry["folder"] != only:
            continue
        config = block_named(entry["block"]).configure(entry["params"])
        report = run_cocotb_on(folder / entry["verilog"], config, simulator, build_dir / entry["folder"], seed)
        reports.append((entry, report))
    return reports


def _readme(design: DesignPoint, number: int | None, folder: Path | None, metrics: dict[str, float],
            result: Exported) -> str:
    compute = design.compute
    title = f"Trial {number}" if number is not None else f"Design {design.name}"
    command = (f"peforge export-design {folder} --trial {number}" if number is not None
               else "peforge export-design --design FILE")
    covers = ("its compute blocks and its accelerator tile (arrays, scratchpads, DMA, vector unit, sequencer)"
              if result.tile_rows else "its compute block")
    lines = [f"# {title}: {compute.arrays} x ({compute.rows} x {compute.cols}) {compute.pe} array, "
             f"{compute.dataflow.upper()}, {compute.clock_mhz:g} MHz", "",
             f"Exported by `{command}`. `design.toml` is the whole design point (buffers, memory, PIM); the "
             f"Verilog covers {covers}.", ""]
    if metrics:
        shown = ", ".join(f"{k} = {v:.4g}" for k, v in metrics.items()
                          if k in ("tokens_per_s", "tpot_s", "ttft_s", "j_per_token", "area_mm2", "power_w"))
        lines += [f"Cost-model figures: {shown}.", ""]
    lines += ["| file | block | what |", "|---|---|---|"]
    lines += [f"| `{b['verilog']}` | `{b['block']}` | {b['what']} |" for b in result.blocks]
    lines += [f"| `{path}` | {'`tile`' if path.endswith('.v') else ''} | {what} |" for path, what in result.tile_rows]
    if compute.arrays > 1:
        lines += ["", f"The design has {compute.arrays} such arrays working side by side."]
    for note in result.notes:
        lines += ["", f"Note: {note}."]
    lines += ["", "## Check it", "",
              "Run peforge's testbench for each block (golden model, corner cases, exact cycle counts) under "
              "cocotb on the Verilog files in this folder:", "", "```sh",
              "python run_tb.py --sim verilator      # or --sim icarus; --only pe to check one block", "```", "",
              "The same testbench on the same parameters, with the Verilog regenerated:", "", "```sh"]
    lines += [f"peforge verify {b['block']} {' '.join(b['params'])} --sim verilator" for b in result.blocks]
    lines += ["```", ""]
    if result.has_layer:
        lines += ["## The tile", "",
                  "The tile testbench runs the tiny Llama layer (`tiny-llama`, seeded INT8 weights) on the simulable "
                  "tile's Verilog: a prefill of 16 tokens, then one decode step on the KV cache the prefill left in "
                  "DRAM. The DRAM is cocotbext-axi's AxiRam at the design's bandwidth per cycle and a stated "
                  "latency (`layer/manifest.json`, `memory`); the program goes in through AXI4-Lite. Every tensor the "
                  "program leaves in DRAM is compared with the integer golden model bit for bit, and the tile's cycle "
                  "counter with the compiler's prediction (per operator too):", "", "```sh",
                  "peforge verify-design . --sim verilator      # or: python run_tile.py --sim verilator", "```", ""]
    return "\n".join(lines)


_RUNNER = '''#!/usr/bin/env python
"""Run peforge's testbench of every block listed in blocks.json on the Verilog in this folder.

Usage: python run_tb.py [--sim verilator|icarus] [--only FOLDER] [--build-dir DIR] [--seed N]
Exit status 0 when every testbench passes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from peforge.dse.report.rtl import run_exported


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--only", default=None, help="one folder of blocks.json (pe, array_small, array)")
    parser.add_argument("--build-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="peforge-tb-") as tmp:
        try:
            reports = run_exported(here, args.sim, args.build_dir or Path(tmp), seed=args.seed, only=args.only)
        except ValueError as error:
            print(f"run_tb.py: {error}", file=sys.stderr)
            return 2
    for entry, report in reports:
        print(f"{entry['verilog']}: {report.summary()}")
    return 0 if reports and all(report.passed for _, report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
'''
