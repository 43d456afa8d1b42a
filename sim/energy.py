"""Switching activity from RTL simulation, and the energy per operation it implies.

The block's random-operand workload (:func:`peforge.sim.testbench.activity_for`) runs in the
Amaranth simulator with waves written to a VCD file in a temporary folder. Every bit flip of
every named signal is counted (:func:`count_toggles`), with three exclusions:

* ``clk`` and ``rst`` (the clock is priced per flip-flop, below);
* field views (``i__payload.a``): their bits are already counted in the parent signal;
* aliases: signals whose whole waveform equals another's (``acc`` and ``o__payload``) are one
  net and count once.

Energy model (first order, ``P = α·C·V²·f`` with switched capacitance proportional to cell
area). The measured activity ``α`` = toggles / (signal bits × cycles) is taken as the toggle
probability of every gate per cycle; gates are weighted by their NAND2-equivalent area, so a
cycle costs ``α · nand2_eq · pj_per_gate_toggle`` plus ``flops · pj_per_flop_clock`` for the
clock pins. ``toggles/op`` and ``toggles/MAC`` are reported as measured, free of technology
constants.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..hw.blocks import block_of
from .runners import simulate_with
from .tech import TechPreset
from .testbench import activity_for
from .tools import scratch_dir

IGNORED_SIGNALS = ("clk", "rst")
_MEMORY_ROW = re.compile(r".+\[\d+\]")  # row i of a memory in Amaranth's waves: `name[i]`

@dataclass
class Toggles:
    """Bit toggles in one VCD file.

    Attributes
    ----------
    toggles : bit flips summed over the counted signals
    bits : width summed over the counted signals (bits)
    cycles : rising edges of ``clk``
    per_signal : toggles by signal name (aliases under the first name seen)
    """

    toggles: int
    bits: int
    cycles: int
    per_signal: dict[str, int]

def _value(text: str) -> int:
    """A VCD vector or scalar value as an integer; ``x`` and ``z`` read as 0."""
    return int("".join("1" if c == "1" else "0" for c in text) or "0", 2)

def count_toggles(path: Path, *, memory_rows: bool = True) -> Toggles:
    """Count bit toggles per signal in the VCD file at ``path`` (see the module docstring).

    ``memory_rows=False`` leaves out the rows of RTL memories (Amaranth writes row ``i`` of
    memory ``mem`` as a signal ``mem[i]``): storage a macro holds, not logic.
    """
    names: dict[str, tuple[str, int]] = {}  # id -> (name, width)
    last: dict[str, int] = {}
    counts: dict[str, int] = {}
    digests: dict[str, Any] = {}
    clk_id = None
    clk_edges = 0
    time = 0
    in_header = True
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if in_header:
                if line.startswith("$var"):
                    parts = line.split()
                    width, ident, name = int(parts[2]), parts[3], parts[4].lstrip("\\")
                    if name == "clk" and clk_id is None:
                        clk_id = ident
                    row = not memory_rows and _MEMORY_ROW.fullmatch(name) is not None
                    if "." in name or name in IGNORED_SIGNALS or row or ident in names:
                        names.setdefault(ident, (name, 0))  # known id, not counted
                        continue
                    names[ident] = (name, width)
                elif line.startswith("$enddefinitions"):
                    in_header = False
                continue
            head = line[0]
            if head == "#":
                time = int(line[1:])
                continue
            if head == "$":
                continue
            if head in "bB":
                text, ident = line[1:].split()
            elif head in "01xXzZ":
                text, ident = head, line[1:]
            else:
                continue  # real values: none in Amaranth designs
            value = _value(text)
            if ident == clk_id and value == 1 and last.get(ident, 0) == 0:
                clk_edges += 1
            previous = last.get(ident)
            last[ident] = value
            if previous is None or names.get(ident, ("", 0))[1] == 0:
                continue
            flips = bin(previous ^ value).count("1")
            if flips:
                counts[ident] = counts.get(ident, 0) + flips
                digests.setdefault(ident, hashlib.sha1()).update(f"{time}:{value};".encode())
    seen: dict[str, str] = {}
    per_signal: dict[str, int] = {}
    bits = 0
    for ident, (name, width) in names.items():
        if width == 0:
            continue
        digest = digests[ident].hexdigest() if ident in digests else "quiet"
        key = f"{width}:{digest}"
        if digest != "quiet" and key in seen:
            continue  # an alias of a signal already counted
        seen[key] = name
        bits += width
        if ident in counts:
            per_signal[name] = counts[ident]
    return Toggles(sum(per_signal.values()), bits, clk_edges, per_signal)

class _Recorder:
    """A Bench that passes everything through and notes stream handshakes, cycle by cycle."""

    def __init__(self, bench: Any):
        self._bench = bench
        self.cycle = 0
        self.accepted: list[int] = []
        self.outputs: list[int] = []
        try:
            for port in ("i__valid", "i__ready", "o__valid"):
                bench.get(port)
            self.streams = True
        except AttributeError:
            self.streams = False

    def set(self, port: str, value: int) -> None:
        self._bench.set(port, value)

    def get(self, port: str) -> int:
        return self._bench.get(port)

    async def reset(self) -> None:
        await self._bench.reset()

    async def tick(self) -> None:
        if self.streams and self._bench.get("i__valid") and self._bench.get("i__ready"):
            self.accepted.append(self.cycle)
        await self._bench.tick()
        self.cycle += 1
        if self.streams and self._bench.get("o__valid"):
            self.outputs.append(self.cycle)

@dataclass
class Activity:
    """Switching activity of one workload run.

    Attributes
    ----------
    ops : operations (results) in the workload
    macs : multiply-accumulates they performed
    cycles : clock cycles simulated
    toggles : bit toggles counted (see :func:`count_toggles`)
    bits : signal bits observed
    alpha : toggles per bit per cycle
    toggles_per_op, toggles_per_mac : the technology-free figures
    first_latency : cycles from accepting the first input beat to the first result, or ``None``
        when the block has no ``i``/``o`` streams
    beat_interval : mean cycles between accepted input beats (the initiation interval), or ``None``
    result_interval : mean cycles between consecutive results, or ``None`` (one result)
    top_signals : the five signals that toggled most, with their toggles
    """

    ops: int
    macs: int
    cycles: int
    toggles: int
    bits: int
    alpha: float
    toggles_per_op: float
    toggles_per_mac: float
    first_latency: int | None
    beat_interval: float | None
    result_interval: float | None
    top_signals: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

def measure_activity(config: Any, *, seed: int = 0, n_ops: int = 32) -> Activity:
    """Run the block's random workload for ``n_ops`` operations and count its toggles."""
    run = activity_for(block_of(config).name)
    box: dict[str, _Recorder] = {}

    async def workload(bench):
        box["rec"] = rec = _Recorder(bench)
        return await run(rec, config, seed, n_ops)

    with scratch_dir("vcd") as tmp:
        vcd = Path(tmp) / "activity.vcd"
        macs = int(simulate_with(config, workload, vcd=vcd))
        counted = count_toggles(vcd)
    rec = box["rec"]
    latency = rec.outputs[0] - rec.accepted[0] if rec.outputs and rec.accepted else None
    def spacing(cycles: list[int]) -> float | None:
        return (cycles[-1] - cycles[0]) / (len(cycles) - 1) if len(cycles) > 1 else None

    cycles = counted.cycles or rec.cycle
    top = dict(sorted(counted.per_signal.items(), key=lambda kv: -kv[1])[:5])
    return Activity(
        ops=n_ops, macs=macs, cycles=cycles, toggles=counted.toggles, bits=counted.bits,
        alpha=counted.toggles / max(1, counted.bits * cycles),
        toggles_per_op=counted.toggles / n_ops,
        toggles_per_mac=counted.toggles / max(1, macs),
        first_latency=latency, beat_interval=spacing(rec.accepted), result_interval=spacing(rec.outputs),
        top_signals=top,
    )

@dataclass
class Energy:
    """Energy of the measured workload through a technology preset (pJ)."""

    pj_per_op: float
    pj_per_mac: float
    logic_pj_per_cycle: float
    clock_pj_per_cycle: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

def energy(activity: Activity, nand2_eq: float, flops: int, tech: TechPreset) -> Energy:
    """Apply the energy model of the module docstring to a measured ``activity``."""
    logic, clock = cycle_pj(activity.alpha, nand2_eq, flops, tech)
    total = (logic + clock) * activity.cycles
    return Energy(pj_per_op=total / activity.ops, pj_per_mac=total / max(1, activity.macs),
                  logic_pj_per_cycle=logic, clock_pj_per_cycle=clock)

def cycle_pj(alpha: float, nand2_eq: float, flops: int, tech: TechPreset) -> tuple[float, float]:
    """Energy of one cycle (pJ) as ``(gates, clock)``: ``alpha x nand2_eq x pj_per_gate_toggle``
    for gates toggling with probability ``alpha`` (toggles per bit per cycle) and
    ``flops x pj_per_flop_clock`` for the flip-flops' clock pins (the module docstring's model)."""
    return alpha * nand2_eq * tech.pj_per_gate_toggle.value, flops * tech.pj_per_flop_clock.value
