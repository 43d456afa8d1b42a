"""Silicon cost of a block whose RTL memories are SRAM macros: logic from Yosys, macros from the
technology's SRAM model.

:func:`peforge.sim.synth.synthesize` maps every RTL memory (an ``amaranth.lib.memory.Memory``,
Yosys ``$mem_v2``) to flip-flops; a tile's scratchpads are SRAM macros instead. Here:

1. :func:`synthesize_with_macros` runs the same Yosys flow up to the coarse netlist
   (:func:`~peforge.sim.synth.front_commands`), records each ``$mem_v2`` cell
   (:class:`MacroMemory`), cuts it out (its read data become inputs of the logic, its addresses,
   write data and enables outputs, so no logic around it is optimised away) and maps and
   measures the rest (:func:`~peforge.sim.synth.measure_commands`): NAND2 equivalents, flops and
   depth of the logic alone. A path through a memory's read ends at its address and restarts at
   its data, as it does at a macro's pins.
2. :func:`price_macros` prices each memory as a macro of its own size (:class:`MacroCost`).
3. :func:`tile_figures` adds area by part and, given a :class:`TileActivity` from a simulation
   (:func:`simulate_activity`, which counts every memory's reads and writes with
   :class:`MemoryCounter` and the logic's toggles from waves), energy by part.

Memory names are the Amaranth submodule path below the top, joined by ``.`` (``spad.bank0``;
an unnamed submodule is ``U$<index>``), which is also the name of the flattened Yosys cell.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from amaranth.back import verilog as verilog_backend
from amaranth.hdl import Fragment, MemoryInstance
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from . import energy as energy_mod
from . import synth as synth_mod
from .cache import Store, default_dir
from .tech import TechPreset, resolve
from .tools import scratch_dir

SCHEMA = 1
_FLOW_FILES = ("synth.py", "macros.py")  # a change to the flow is a cache miss


# --- synthesis with memories cut out ----------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class MacroMemory:
    """One RTL memory, as synthesis found it.

    Parameters
    ----------
    name : hierarchical name (submodule path below the top, ``.``-joined)
    width : bits per word
    depth : words
    read_ports, write_ports : ports of each kind (a combinational read port counts as a read port)
    """

    name: str
    width: int
    depth: int
    read_ports: int
    write_ports: int

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError(f"memory name must be non-empty, not {self.name!r}")
        for key in ("width", "depth"):
            if getattr(self, key) < 1:
                raise ValueError(f"memory {self.name!r}: {key} must be at least 1, not {getattr(self, key)!r}")
        for key in ("read_ports", "write_ports"):
            if getattr(self, key) < 0:
                raise ValueError(f"memory {self.name!r}: {key} must be >= 0, not {getattr(self, key)!r}")

    @property
    def bits(self) -> int:
        """Storage (bits): ``width x depth``."""
        return self.width * self.depth


@dataclass(frozen=True, kw_only=True)
class MacroSynthResult:
    """Synthesis of a block with its memories removed.

    Parameters
    ----------
    logic : the logic alone (no storage flops; ``memory_bits`` counts only ROMs Yosys inferred
        from ``case`` tables, which it maps to gates)
    memories : the memories cut out, by name
    """

    logic: synth_mod.SynthResult
    memories: tuple[MacroMemory, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"logic": self.logic.to_dict(), "memories": [asdict(m) for m in self.memories]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MacroSynthResult:
        logic = {k: v for k, v in data["logic"].items() if k != "gates"}  # derived in __post_init__
        return cls(logic=synth_mod.SynthResult(**logic),
                   memories=tuple(MacroMemory(**m) for m in data["memories"]))


def _param(cell: dict[str, Any], key: str) -> int:
    return int(str(cell["parameters"][key]), 2)  # write_json writes parameters as bit strings


# $mem_v2 connections that are clocks (not logic) and the one the memory drives
_CLOCKS = ("RD_CLK", "WR_CLK")
_DRIVEN = "RD_DATA"


def cut_memories(netlist: dict[str, Any], top: str) -> tuple[dict[str, Any], tuple[MacroMemory, ...]]:
    """Remove every RTL memory (``$mem_v2`` cell with a public name) of module ``top`` of a
    flattened Yosys JSON netlist.

    Returns the netlist (changed in place) and the memories. Each memory's read data bits become
    an input port ``<name>__macro_rd`` and its other non-constant, non-clock pins (addresses,
    write data, enables) an output port ``<name>__macro_in``, so what drives and reads them stays.
    ROMs Yosys infers from ``case`` tables (``$auto$proc_rom...``: no name of the RTL's) are
    logic and stay, to be mapped to gates.
    """
    module = synth_mod.top_module(netlist, top)
    memories = []
    for name in sorted(n for n, c in module["cells"].items() if c["type"].startswith("$mem") and n[0] != "$"):
        cell = module["cells"].pop(name)
        if cell["type"] != "$mem_v2":
            raise synth_mod.SynthesisError(f"memory cell {name!r} has type {cell['type']!r}, expected $mem_v2")
        memories.append(MacroMemory(name=name, width=_param(cell, "WIDTH"), depth=_param(cell, "SIZE"),
                                    read_ports=_param(cell, "RD_PORTS"), write_ports=_param(cell, "WR_PORTS")))
        pins = cell["connections"]
        driven = [b for b in pins.get(_DRIVEN, []) if isinstance(b, int)]
        loads = [b for port, bits in sorted(pins.items()) if port not in (_DRIVEN, *_CLOCKS)
                 for b in bits if isinstance(b, int)]
        ports = module.setdefault("ports", {})
        if driven:
            ports[f"{name}__macro_rd"] = {"direction": "input", "bits": driven}
        if loads:
            ports[f"{name}__macro_in"] = {"direction": "output", "bits": list(dict.fromkeys(loads))}
    return netlist, tuple(memories)


def synthesize_with_macros(verilog: str, top: str) -> MacroSynthResult:
    """Synthesize ``verilog`` (module ``top``) with its RTL memories cut out (module docstring).

    Raises :class:`~peforge.sim.synth.SynthesisError` when Yosys fails or is missing.
    """
    with scratch_dir("macros") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(verilog)
        synth_mod.run_yosys(work, synth_mod.front_commands(top) + ["write_json memories.json"])
        netlist, memories = cut_memories(json.loads((work / "memories.json").read_text()), top)
        (work / "cut.json").write_text(json.dumps(netlist))
        # opt_clean: the coarse figures then count what the plain flow's would (no dead cells)
        synth_mod.run_yosys(work, ["read_json cut.json", f"hierarchy -check -top {top}", "opt_clean",
                                   *synth_mod.measure_commands(top)])
        return MacroSynthResult(logic=synth_mod.measure_outputs(work, top), memories=memories)


# --- pricing ----------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class MacroCost:
    """One memory priced as an SRAM macro of its own size.

    Parameters
    ----------
    memory : the memory
    area_um2 : macro area (µm²)
    read_pj_per_bit, write_pj_per_bit : energy of one bit read or written (pJ/bit)
    sources : where each figure comes from
    """

    memory: MacroMemory
    area_um2: float
    read_pj_per_bit: float
    write_pj_per_bit: float
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def access_pj(self, reads: int, writes: int) -> float:
        """Energy (pJ) of ``reads`` and ``writes`` whole-word accesses."""
        width = self.memory.width
        return width * (reads * self.read_pj_per_bit + writes * self.write_pj_per_bit)


def price_macros(memories: tuple[MacroMemory, ...] | list[MacroMemory], tech: TechPreset | str) -> list[MacroCost]:
    """Each memory as a macro of its own size (``width x depth`` bits) in ``tech``'s SRAM model.

    What the source covers, and what is assumed (all approximate):

    - Area: ``bits x sram_um2_per_bit``, the preset's 6T bit cell at its array efficiency, i.e.
      a single-port array with its periphery. Ports are not priced: a macro with one read and one
      write port (every RTL memory here) or more is given the single-port area, an underestimate
      (a two-port array uses larger 8T cells or a second set of word and bit lines).
    - Read energy: ``sram_pj_per_bit(size)`` at the macro's size in bytes, the preset's
      interpolation of 64-bit single-port reads of whole arrays (45 nm: Horowitz, ISSCC 2014).
    - Write energy: taken equal to the read energy at the same size (no write figure in the
      source; a write swings the bit lines fully too).
    - Extra ports: each access on any port costs one access of the single-port array; ports do
      not change the energy per bit.
    """
    preset = resolve(tech)
    sources = {"area_um2": preset.sram_um2_per_bit.source + " (single port; ports not priced, approx)",
               "read_pj_per_bit": preset.sram_read_source + " (single-port reads)",
               "write_pj_per_bit": "taken equal to a read of the same size (approx)"}
    costs = []
    for memory in memories:
        size_bytes = memory.bits / 8
        pj = preset.sram_pj_per_bit(size_bytes)
        costs.append(MacroCost(memory=memory, area_um2=preset.sram_area_um2(size_bytes), read_pj_per_bit=pj,
                               write_pj_per_bit=pj, sources=sources))
    return costs


# --- activity ---------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TileActivity:
    """What a simulated run of ``cycles`` cycles did.

    Parameters
    ----------
    cycles : clock cycles of the run
    reads, writes : whole-word accesses by memory name (a read port reads in every cycle its
        ``en`` is high, a combinational one in every cycle; a write port writes in every cycle
        any bit of its ``en`` is high)
    toggles : bit flips of the logic's signals (memory rows left out; see
        :func:`peforge.sim.energy.count_toggles`)
    bits : width of the signals counted (bits)
    """

    cycles: int
    reads: dict[str, int]
    writes: dict[str, int]
    toggles: int
    bits: int

    def __post_init__(self) -> None:
        if self.cycles < 1:
            raise ValueError(f"cycles must be at least 1, not {self.cycles!r}")
        if self.bits < 1 or self.toggles < 0:
            raise ValueError(f"bits must be >= 1 and toggles >= 0, not bits={self.bits!r}, toggles={self.toggles!r}")

    @property
    def alpha(self) -> float:
        """Toggles per signal bit per cycle."""
        return self.toggles / (self.bits * self.cycles)


@dataclass(frozen=True)
class _Port:
    memory: str
    kind: str  # "read" or "write"
    en: Any


class MemoryCounter:
    """Counts the reads and writes of every ``amaranth.lib.memory.Memory`` of a design in the
    Amaranth simulator, by sampling each port's ``en`` at every clock edge of ``domain``.

    Simulate :attr:`fragment` (the design elaborated once, so the ports sampled are the ones
    simulated), after :meth:`attach`::

        counter = MemoryCounter(dut)
        sim = Simulator(counter.fragment)
        sim.add_clock(1e-6)
        counter.attach(sim)
        ...
        counter.reads  # {"acc": 12, ...}

    Parameters
    ----------
    dut : the design (an elaboratable)
    domain : the clock domain of every memory port (combinational read ports are counted at its edges)
    """

    def __init__(self, dut: Any, *, domain: str = "sync"):
        self.domain = domain
        self.fragment = Fragment.get(dut, None)
        self.memories: dict[str, Memory] = {}
        self._ports: list[_Port] = []
        self._find(self.fragment, ())
        self.reads = dict.fromkeys(self.memories, 0)
        self.writes = dict.fromkeys(self.memories, 0)
        self.cycles = 0

    def _find(self, fragment: Fragment, path: tuple[str, ...]) -> None:
        for index, (sub, name, _) in enumerate(fragment.subfragments):
            here = (*path, name if name is not None else f"U${index}")  # Amaranth's name for an unnamed one
            if not isinstance(sub, MemoryInstance):
                self._find(sub, here)
                continue
            memory = next((o for o in sub.origins or () if isinstance(o, Memory)), None)
            label = ".".join(here)
            if memory is None:
                raise ValueError(f"memory {label!r} is not an amaranth.lib.memory.Memory: its ports cannot be counted")
            self.memories[label] = memory
            for kind, ports in (("read", memory.read_ports), ("write", memory.write_ports)):
                for port in ports:
                    if port.domain not in (self.domain, "comb"):
                        raise ValueError(f"memory {label!r} has a {kind} port in domain {port.domain!r}; "
                                         f"counting domain {self.domain!r}")
                    self._ports.append(_Port(label, kind, port.en))

    def attach(self, sim: Simulator) -> None:
        """Add the sampling process to ``sim`` (a background testbench: it never ends a run)."""
        async def sample(ctx):
            async for _, _, *enables in ctx.tick(self.domain).sample(*(p.en for p in self._ports)):
                self.cycles += 1
                for port, en in zip(self._ports, enables):
                    if en:
                        counts = self.reads if port.kind == "read" else self.writes
                        counts[port.memory] += 1

        sim.add_testbench(sample, background=True)


Testbench = Callable[[Any], Awaitable[None]]


def simulate_activity(dut: Any, testbench: Testbench, *, background: tuple[Testbench, ...] = (),
                      domain: str = "sync", period_s: float = 1e-8) -> TileActivity:
    """Run ``testbench`` (an async Amaranth testbench taking ``ctx``) on ``dut`` and return what
    the run did: memory accesses (:class:`MemoryCounter`) and logic toggles (waves in a
    temporary folder, counted by :func:`~peforge.sim.energy.count_toggles` without memory rows).

    Parameters
    ----------
    dut : the design
    testbench : drives ``dut``; the run lasts until it returns
    background : testbenches running beside it that never end a run (e.g. a memory model)
    domain : the clock domain (one clock of ``period_s`` seconds)
    """
    counter = MemoryCounter(dut, domain=domain)
    sim = Simulator(counter.fragment)
    sim.add_clock(period_s, domain=domain)
    counter.attach(sim)
    for process in background:
        sim.add_testbench(process, background=True)
    sim.add_testbench(testbench)
    with scratch_dir("vcd") as tmp:
        vcd = Path(tmp) / "run.vcd"
        with sim.write_vcd(str(vcd)):
            sim.run()
        counted = energy_mod.count_toggles(vcd, memory_rows=False)
    return TileActivity(cycles=counter.cycles, reads=dict(counter.reads), writes=dict(counter.writes),
                        toggles=counted.toggles, bits=counted.bits)


# --- figures of a whole tile -------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TileFigures:
    """Area, and energy of one run, by part: the logic and each macro.

    Parameters
    ----------
    tech : technology preset name
    synth : the synthesis the figures come from
    macros : each memory's pricing
    logic_mm2 : standard-cell area of the logic (mm², placement utilisation not included)
    macro_mm2 : each macro's area by memory name (mm²)
    cycles : cycles of the run priced, or ``None`` (no activity given)
    logic_pj : energy of the logic over the run (pJ; gates toggling and flop clock pins), or ``None``
    macro_pj : each macro's access energy over the run (pJ) by memory name, or ``None``
    constants : the logic's technology constants used, with their sources (each macro's are in
        its :attr:`MacroCost.sources`)
    """

    tech: str
    synth: MacroSynthResult
    macros: tuple[MacroCost, ...]
    logic_mm2: float
    macro_mm2: dict[str, float]
    cycles: int | None = None
    logic_pj: float | None = None
    macro_pj: dict[str, float] | None = None
    constants: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Every field (nested records as dicts) and the totals, for JSON reports."""
        return {**asdict(self), "total_mm2": self.total_mm2, "total_pj": self.total_pj}

    @property
    def total_mm2(self) -> float:
        """Logic plus macros (mm²)."""
        return self.logic_mm2 + sum(self.macro_mm2.values())

    @property
    def total_pj(self) -> float | None:
        """Logic plus macros over the run (pJ), or ``None`` without activity."""
        if self.logic_pj is None or self.macro_pj is None:
            return None
        return self.logic_pj + sum(self.macro_pj.values())


def _flow_digest() -> str:
    h = hashlib.sha256()
    for name in _FLOW_FILES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]


def cached_synthesis(verilog: str, top: str, *, cache_dir: Path | None = None) -> MacroSynthResult:
    """:func:`synthesize_with_macros`, cached on disk (``cache_dir``, default under
    :func:`peforge.sim.cache.default_dir`) by the Verilog, the top, the tools and the flow's source."""
    from .characterize import tool_versions

    store = Store(Path(cache_dir) if cache_dir is not None else default_dir() / "macros", SCHEMA)
    source = hashlib.sha256(verilog.encode()).hexdigest()
    key = {"schema": SCHEMA, "top": top, "verilog": source, "tools": tool_versions(), "flow": _flow_digest()}
    name = f"{top}-{source[:16]}"
    payload = store.load(name, key)
    if payload is not None:
        return MacroSynthResult.from_dict(payload)
    result = synthesize_with_macros(verilog, top)
    store.save(name, key, result.to_dict())
    return result


def tile_figures(component_or_verilog: wiring.Component | str, tech: TechPreset | str,
                 activity: TileActivity | None = None, *, top: str = "top",
                 cache_dir: Path | None = None) -> TileFigures:
    """Area by part, and with ``activity`` energy by part, of a block with its memories as macros.

    Parameters
    ----------
    component_or_verilog : an Amaranth component (converted to Verilog with module name ``top``)
        or Verilog text whose module ``top`` is the block
    tech : a :class:`~peforge.sim.tech.TechPreset` or what :func:`~peforge.sim.tech.resolve` takes
    activity : a run of the same design (:func:`simulate_activity`); its memory names must be
        the macros' (a memory synthesis removed, being never read, may appear with no accesses)
    top : Verilog module name
    cache_dir : synthesis cache folder (:func:`cached_synthesis`)
    """
    preset = resolve(tech)
    if isinstance(component_or_verilog, str):
        text = component_or_verilog
    else:
        text = verilog_backend.convert(component_or_verilog, name=top, emit_src=False)
    synthesized = cached_synthesis(text, top, cache_dir=cache_dir)
    macros = tuple(price_macros(synthesized.memories, preset))
    logic = synthesized.logic
    used = ("um2_per_nand2",) + (() if activity is None else ("pj_per_gate_toggle", "pj_per_flop_clock"))
    figures = dict(tech=preset.name, synth=synthesized, macros=macros,
                   logic_mm2=preset.area_um2(logic.nand2_eq) / 1e6,
                   macro_mm2={c.memory.name: c.area_um2 / 1e6 for c in macros},
                   constants={name: asdict(preset.constants()[name]) for name in used})
    if activity is None:
        return TileFigures(**figures)
    names = {c.memory.name for c in macros}
    for counts in (activity.reads, activity.writes):
        stray = sorted(n for n, count in counts.items() if n not in names and count)
        if stray:
            raise ValueError(f"activity counts accesses of memories synthesis did not find: {', '.join(stray)}; "
                             f"found: {', '.join(sorted(names)) or 'none'}")
    missing = sorted(names - set(activity.reads) - set(activity.writes))
    if missing:
        raise ValueError(f"activity has no counts for memories {', '.join(missing)}")
    gate_pj, clock_pj = energy_mod.cycle_pj(activity.alpha, logic.nand2_eq, logic.flops, preset)
    return TileFigures(
        **figures, cycles=activity.cycles, logic_pj=(gate_pj + clock_pj) * activity.cycles,
        macro_pj={c.memory.name: c.access_pj(activity.reads.get(c.memory.name, 0),
                                             activity.writes.get(c.memory.name, 0)) for c in macros},
    )
