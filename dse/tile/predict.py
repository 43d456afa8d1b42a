"""Predicted cycles of a compiled program per operator, beside the cost model's prediction.

The program's exact timeline (:func:`peforge.hw.tile.isa.program_timeline`) with each unit's exact
``cycles`` (the DMA's for a stated :class:`~peforge.hw.tile.dma.MemoryModel`: read latency and
cycles per beat) gives, per operator of the graph (the instructions' tags):

- ``array``, ``vector``, ``dma``: cycles in which at least one of the operator's commands runs on
  an array (any slice), the vector unit, the DMA (the union of their busy intervals);
- ``array_work``: the busiest slice's sum of its GEMM commands' cycles (the arrays of a slice run
  one command at a time; slices run side by side); ``vector_work``: the sum of the vector unit's
  commands' cycles. These are what the cost model's array and vector phases price, command by
  command (:func:`peforge.dse.cost.gemm_tiles.gemm_work`); ``dma_bytes``: the bytes its DMA
  commands move (loads and stores), what the cost model's DRAM bytes price;
- ``total``: the sequencer's time on the operator's instructions: each instruction is charged the
  cycles from the previous one leaving decode to its own leaving (its stall included), the
  ``End`` (the drain) to the last operator; the totals add up to the program's cycles.

The cost model's per-operator time of the same design and workload, times the clock, is the
other column (:func:`cost_model_cycles`); :func:`cycle_table` prints both, prefill and decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...hw.tile.config import TileConfig
from ...hw.tile.dma import MemoryModel
from ...hw.tile.isa import Issue, program_timeline
from .compiler import Compiled, compile_layer
from .intlayer import IntLayer
from .mapping import OperatorMapping

__all__ = ["OperatorCycles", "Prediction", "phase_work", "dma_bytes", "predict", "predict_layer", "cost_model_cycles", "cost_model_bytes",
           "cost_model_compute", "cycle_table"]


@dataclass(frozen=True)
class OperatorCycles:
    """One operator's phases on the tile (cycles; see the module docstring)."""

    operator: str
    array: int
    vector: int
    dma: int
    total: int
    array_work: int = 0
    vector_work: int = 0
    dma_bytes: int = 0


@dataclass(frozen=True)
class Prediction:
    """A program's cycles from ``start`` to ``done`` and its operators' phases, in program order."""

    cycles: int
    operators: dict[str, OperatorCycles]


def _union(intervals: list[tuple[int, int]]) -> int:
    """Cycles covered by half-open intervals."""
    covered, end = 0, None
    for lo, hi in sorted(intervals):
        if end is None or lo > end:
            covered += hi - lo
            end = hi
        elif hi > end:
            covered += hi - end
            end = hi
    return covered


def phase_work(slots: dict[str, int]) -> tuple[int, int]:
    """``array_work`` and ``vector_work`` (cycles) of an operator's commands' cycles summed by
    issue slot (``slots``)."""
    return max((v for s, v in slots.items() if s.startswith("gemm")), default=0), slots.get("vec", 0)


def dma_bytes(issue: Issue) -> int:
    """Bytes the instruction ``issue`` moves between DRAM and the buffers: a DMA command's rows
    times its row's bytes (a load or a store alike), 0 for another unit's command."""
    return issue.command.rows * issue.command.row_bytes if issue.slot == "dma" else 0


def predict(compiled: Compiled, memory: MemoryModel) -> Prediction:
    """The timeline of ``compiled``'s program over ``memory``, per operator."""
    tile = compiled.tile
    timeline = program_timeline(compiled.program, lambda slot, cmd: tile.unit_cycles(slot, cmd, memory))
    busy: dict[str, dict[str, list]] = {}
    total: dict[str, int] = {}
    previous = 0
    last = None
    work: dict[str, dict[str, int]] = {}  # tag -> slot -> summed command cycles
    moved: dict[str, int] = {}  # tag -> DMA bytes
    for step in timeline.steps:
        tag = compiled.tags[step.index]
        if tag == "end":
            total[last] += timeline.cycles - previous
            break
        total[tag] = total.get(tag, 0) + step.issued + 1 - previous
        previous, last = step.issued + 1, tag
        ins = step.instruction
        if isinstance(ins, Issue):
            unit = "dma" if ins.slot == "dma" else ("vector" if ins.slot == "vec" else "array")
            busy.setdefault(tag, {"array": [], "vector": [], "dma": []})[unit].append((step.issued, step.completed))
            slots = work.setdefault(tag, {})
            slots[ins.slot] = slots.get(ins.slot, 0) + step.completed - step.issued
            moved[tag] = moved.get(tag, 0) + dma_bytes(ins)
    operators = {}
    for tag in total:
        phases = busy.get(tag, {"array": [], "vector": [], "dma": []})
        array_work, vector_work = phase_work(work.get(tag, {}))
        operators[tag] = OperatorCycles(operator=tag, **{unit: _union(v) for unit, v in phases.items()},
                                        total=total[tag], array_work=array_work, vector_work=vector_work,
                                        dma_bytes=moved.get(tag, 0))
    return Prediction(cycles=timeline.cycles, operators=operators)


def predict_layer(layer: IntLayer, tile: TileConfig, mappings: dict[str, dict[str, OperatorMapping]], *,
                  seq: int, memory: MemoryModel) -> dict[str, Prediction]:
    """Predictions of ``layer``'s prefill of ``seq`` tokens and of the decode step after it (the
    mappings of each phase: :func:`~peforge.dse.tile.mapping.cost_model_mappings`)."""
    runs = {"prefill": (seq, 0), "decode": (1, seq)}
    return {phase: predict(compile_layer(layer, tokens, position, tile, mappings[phase]), memory)
            for phase, (tokens, position) in runs.items() if phase in mappings}


def cost_model_cycles(evaluation: Any, clock_mhz: float) -> dict[str, dict[str, float]]:
    """The cost model's time per operator (``Evaluation.operators``: a run's totals; repeated
    names added), times the clock: cycles by phase and operator."""
    out: dict[str, dict[str, float]] = {}
    frame = evaluation.operators
    for phase, name, seconds in zip(frame["phase"], frame["operator"], frame["time_s"]):
        out.setdefault(phase, {})
        out[phase][name] = out[phase].get(name, 0.0) + float(seconds) * clock_mhz * 1e6
    return out


def cost_model_bytes(evaluation: Any) -> dict[str, dict[str, float]]:
    """The cost model's DRAM bytes per operator (``Evaluation.operators``, repeated names added),
    by phase and operator."""
    out: dict[str, dict[str, float]] = {}
    frame = evaluation.operators
    for phase, name, moved in zip(frame["phase"], frame["operator"], frame["dram_bytes"]):
        out.setdefault(phase, {})
        out[phase][name] = out[phase].get(name, 0.0) + float(moved)
    return out


def cost_model_compute(model: Any, workload: Any, part: str = "compute") -> dict[str, dict[str, float]]:
    """The cost model's compute cycles per operator of its first design, one step of each phase:
    by phase and operator (repeated names added). ``part``: ``compute`` all of it, ``array`` a
    matrix operator's arrays (its GEMM commands and partial-sum additions), ``vector`` the vector
    unit's commands (an elementwise operator's; a matrix operator's epilogue)."""
    if part not in ("compute", "array", "vector"):
        raise ValueError(f"part={part!r}: allowed compute, array, vector")
    costs: dict[str, Any] = {}
    model.metrics(workload, phases=("prefill", "decode"), costs_out=costs)
    clock = float(model.clock_hz[0, 0, 0])
    out: dict[str, dict[str, float]] = {}
    for phase, cost in costs.items():
        table = workload.prefill if phase == "prefill" else workload.decode.base
        steps = 1 if phase == "prefill" else workload.decode.steps
        compute, vector = cost.rows["compute_s"][0], cost.rows["vector_s"][0]
        seconds = {"compute": compute, "array": compute - vector, "vector": vector}[part]
        out[phase] = {}
        for name, s in zip(table.names, seconds):
            out[phase][name] = out[phase].get(name, 0.0) + float(s) * clock / steps
        # seconds x clock: back to the model's whole cycles but for the float round trip
        out[phase] = {name: round(v, 6) for name, v in out[phase].items()}
    return out


def cycle_table(predictions: dict[str, Prediction], model: dict[str, dict[str, float]] | None = None) -> str:
    """A text table: per phase and operator the tile's array, vector, DMA and total cycles and the
    cost model's cycles (``model``: :func:`cost_model_cycles`), and each phase's program total."""
    head = (f"{'phase':8} {'operator':22} {'array':>8} {'vector':>8} {'dma':>8} {'total':>8} {'model':>9} "
            f"{'tile/model':>10}")
    lines = [head, "-" * len(head)]
    for phase, p in predictions.items():
        theirs = (model or {}).get(phase, {})
        for name, o in p.operators.items():
            m = theirs.get(name)
            ratio = f"{o.total / m:10.2f}" if m else f"{'':10}"
            lines.append(f"{phase:8} {name:22} {o.array:8d} {o.vector:8d} {o.dma:8d} {o.total:8d} "
                         f"{m if m is not None else float('nan'):9.0f} {ratio}")
        m = sum(theirs.get(name, 0.0) for name in p.operators) if theirs else None
        ratio = f"{p.cycles / m:10.2f}" if m else f"{'':10}"
        lines.append(f"{phase:8} {'(layer)':22} {'':8} {'':8} {'':8} {p.cycles:8d} "
                     f"{m if m is not None else float('nan'):9.0f} {ratio}")
    return "\n".join(lines)
