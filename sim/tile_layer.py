"""The whole tile's testbench: programs run on the exported :class:`~peforge.hw.tile.tile.AcceleratorTile`
Verilog under cocotb, from a DRAM image in a timed ``AxiRam``.

A run is a list of :class:`TilePhase` (a prefill, then a decode step on the KV cache the prefill
left in DRAM): each loads its DRAM image (with ranges carried over from the previous phase's final
DRAM), stores its program through ``s_axil``, starts the tile, polls ``done`` and reads the tile's
cycle counter (:mod:`peforge.sim.cocotb_tile` is the test module). What the phases compute is
the caller's business (:mod:`peforge.dse.tile.bench` compiles a decoder layer and checks it):
this module knows the tile, not the workload.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from amaranth.back import verilog

from ..files import write_atomic
from ..hw.tile.axi import verilog_ports
from ..hw.tile.dma import MemoryModel
from .axi_ram import check_memory

__all__ = ["COCOTB_MODULE", "TILE_MODULE", "PhaseResult", "TilePhase", "export_tile", "program_writes",
           "run_tile_phases"]

TILE_MODULE = "accelerator_tile"
COCOTB_MODULE = "peforge.sim.cocotb_tile"


@dataclass(frozen=True, kw_only=True)
class TilePhase:
    """One program run on the tile.

    Parameters
    ----------
    name : what the phase is (``prefill``, ``decode``)
    image : the DRAM contents at start (bytes; the AxiRam is as large as the largest image)
    words : the program's instruction words (``TileConfig.encode``)
    carry : ``(from, to, size)`` byte ranges copied from the previous phase's final DRAM into
        this phase's image before it starts
    limit : cycles after ``start`` at most; a run still going then fails the phase
    """

    name: str
    image: bytes
    words: tuple[int, ...]
    carry: tuple[tuple[int, int, int], ...] = ()
    limit: int = 10_000_000

    def __post_init__(self) -> None:
        if not self.words:
            raise ValueError(f"phase {self.name!r}: the program has no instruction words")
        if type(self.limit) is not int or self.limit < 1:
            raise ValueError(f"phase {self.name!r}: limit {self.limit!r} must be an integer >= 1 (cycles)")
        for src, dst, size in self.carry:
            if min(src, dst) < 0 or size < 1 or dst + size > len(self.image):
                raise ValueError(f"phase {self.name!r}: carry {(src, dst, size)!r} lies outside the "
                                 f"{len(self.image)}-byte image")


@dataclass(frozen=True)
class PhaseResult:
    """What a phase did: ``done`` within its limit, the ``cycles`` register (start to done), the
    final ``dram``, and ``issued``: ``(instruction index, cycle)`` of every instruction leaving
    decode, cycles from the one ``start`` is high in (None without the probe)."""

    name: str
    done: bool
    cycles: int
    dram: bytes
    issued: tuple[tuple[int, int], ...] | None


def program_writes(config, words: list[int]) -> list[tuple[int, int]]:
    """The AXI4-Lite writes storing ``words`` (``config.program_writes``) without those that store
    into an instruction-data register the value it already holds from the previous word: the
    registers keep their values, and half a program's writes are often such repeats."""
    held = {config.register_address(f"imem_data{i}") for i in range(config.data_registers)}
    last: dict[int, int] = {}
    out = []
    for address, value in config.program_writes(words):
        if address in held and last.get(address) == value:
            continue
        last[address] = value
        out.append((address, value))
    return out


def export_tile(config, out_dir: Path) -> Path:
    """Write ``out_dir/accelerator_tile.v``: the tile of ``config`` (a ``TileConfig``) with AXI
    port names (``m_axi_*``, ``s_axil_*``); returns its path."""
    from ..hw.tile.tile import AcceleratorTile

    top = AcceleratorTile(config)
    text = verilog.convert(top, name=TILE_MODULE, ports=verilog_ports(top), emit_src=False)
    return write_atomic(Path(out_dir) / f"{TILE_MODULE}.v", text)


def run_tile_phases(source: Path, config, phases: list[TilePhase], memory: MemoryModel, simulator: str,
                    build_dir: Path, *, probe: bool = True, quick_build: bool = True) -> list[PhaseResult]:
    """Run ``phases`` in order on the tile Verilog ``source`` (an export of ``config``, a
    ``TileConfig``) under ``simulator`` (verilator or icarus), the AxiRam timed as ``memory``.

    ``probe``: watch the sequencer's decode (instruction by instruction timing) and restart the
    AxiRam's beat pattern at each DMA command, through the tile's internal signals. Build
    products, logs, the phases' final DRAM dumps and the report go to ``build_dir``. Returns one
    result per phase that ran (a phase that did not finish in its limit ends the run). Raises
    ``RuntimeError`` when the simulation stops inside a phase (the log named).
    """
    from .runners import run_cocotb_module

    check_memory(memory)
    if not phases:
        raise ValueError("run_tile_phases: no phases to run")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    report = build_dir / f"tile-report-{simulator}.json"
    report.unlink(missing_ok=True)
    entries = []
    for i, phase in enumerate(phases):
        image = write_atomic(build_dir / f"{i}-{phase.name}.image.bin", bytes(phase.image))
        writes = program_writes(config, list(phase.words))
        entries.append({"name": phase.name, "image": str(image), "carry": [list(c) for c in phase.carry],
                        "writes": [list(w) for w in writes], "limit": phase.limit,
                        "dump": str(build_dir / f"{i}-{phase.name}.final.bin")})
    spec = {"dram_bytes": max(len(p.image) for p in phases), "memory": asdict(memory), "probe": probe,
            "registers": {name: config.register_address(name) for name in ("start", "status", "cycles")},
            "phases": entries, "report": str(report)}
    spec_file = write_atomic(build_dir / f"tile-{simulator}.json", json.dumps(spec))
    # Built from one path per build folder: Verilator skips an unchanged input, so runs of the same
    # Verilog from other folders (a copied export) reuse the build.
    staged = build_dir / "rtl" / f"{TILE_MODULE}.v"
    if Path(source).resolve() != staged and (not staged.exists() or staged.read_bytes() != Path(source).read_bytes()):
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, staged)
    run_cocotb_module(staged, TILE_MODULE, COCOTB_MODULE, simulator, build_dir,
                      plusargs=[f"+peforge_tile={spec_file}"], quick_build=quick_build)
    got_phases = json.loads(report.read_text())["phases"] if report.exists() else []
    if len(got_phases) < len(entries) and (not got_phases or got_phases[-1]["done"]):
        # the run stopped inside a phase (an AxiRam assertion, a simulator error), not at a hang
        log = build_dir / f"test-{simulator}.log"
        errors = [line.strip() for line in log.read_text(errors="replace").splitlines() if "Error" in line] \
            if log.exists() else []
        raise RuntimeError(f"the tile's cocotb run on {simulator} stopped in phase {entries[len(got_phases)]['name']} "
                           f"({errors[-1] if errors else 'no error logged'}); see {log}")
    results = []
    for entry, got in zip(entries, got_phases):
        issued = None if got["issued"] is None else tuple((int(i), int(c)) for i, c in got["issued"])
        results.append(PhaseResult(name=got["name"], done=bool(got["done"]), cycles=int(got["cycles"]),
                                   dram=Path(entry["dump"]).read_bytes(), issued=issued))
    return results
