"""The tiny-layer testbench of a design's tile: the integer decoder layer compiled for the tile, run
on its exported Verilog (:mod:`peforge.sim.tile_layer`), every tensor compared with
:meth:`IntLayer.execute <peforge.dse.tile.intlayer.IntLayer.execute>` bit for bit and the measured
cycles with the compiler's prediction.

Two phases: a prefill of :data:`PREFILL_TOKENS` tokens from an empty KV cache, then one decode
step whose DRAM image takes over the KV cache the prefill left in DRAM (the compiler puts the
caches at the same addresses for any token count). Token ids are seeded.

The memory (:func:`memory_model`): a read latency of :data:`READ_LATENCY` cycles (write response
:data:`WRITE_LATENCY`) and a beat every ``period`` cycles, the smallest period at which the
tile's bus carries no more than the design's sustained DRAM bandwidth per clock cycle
(``memory.units`` x GB/s per unit x efficiency / ``compute.clock_mhz``).

Cycles: the tile's cycle counter (``start`` to ``done``) against the program's exact timeline
(:func:`peforge.dse.tile.predict.predict`), and, with the testbench's probe of the sequencer,
the cycle each instruction left decode against the timeline's: the first instruction that
differs is reported, and the sequencer's time per operator (the prediction's ``total`` rule:
each instruction charged the cycles since the previous one left decode, the drain to the last
operator) measured beside the predicted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...hw.tile.config import TileConfig
from ...hw.tile.dma import MemoryModel
from ...hw.tile.isa import program_timeline
from ..cost.gemm_tiles import dma_period
from ..cost.units import memory_costs
from .compiler import CACHE_NAMES, Compiled, compile_layer
from .dram import Symbol
from .intlayer import IntLayer, IntLayerConfig, KVCache
from .predict import predict

__all__ = ["PREFILL_TOKENS", "READ_LATENCY", "WRITE_LATENCY", "MAPPING_QUANT", "PhasePlan", "LayerPlan",
           "Mismatch", "PhaseReport", "LayerReport", "memory_model", "token_ids", "golden", "plan_layer",
           "check_phase", "run_plan", "tile_mappings", "uncharacterized_costs", "operator_totals", "layer_tile",
           "LAYER_SPAD_WORDS"]

PREFILL_TOKENS = 16
READ_LATENCY = 16  # cycles from a burst's address to its first beat (a stated DRAM latency)
WRITE_LATENCY = 8  # cycles from a burst's last beat to its write response
MAPPING_QUANT = "w8a8kv8"  # the integer layer's formats: INT8 weights, activations, KV cache
LIMIT_FACTOR = 4  # a run may take this many times its predicted cycles (plus LIMIT_SLACK) before it fails
LIMIT_SLACK = 10_000
MAX_IMEM = 1 << 16  # instructions: the sequencer's largest instruction memory
# Words per bank of the tiny layer's simulable tile (output: half). TileConfig.from_design's scaled
# tile keeps 64 (32): its GEMM tiles then hold a few rows, and the 16-token prefill becomes ~29,000
# instructions and ~580,000 cycles on a 4 x 4 MAC array instead of ~900 and ~120,000.
LAYER_SPAD_WORDS = 512


def memory_model(design: Any, tile: TileConfig, *, read_latency: int = READ_LATENCY,
                 write_latency: int = WRITE_LATENCY) -> MemoryModel:
    """The testbench's DRAM for ``design``'s tile: the stated latencies (cycles) and the beat
    period at which ``tile.bus_bytes`` per beat is at most the design's sustained bytes per cycle."""
    units = design.memory.units * memory_costs(design)["memory_gb_per_s"]  # GB/s, sustained
    bytes_per_cycle = units * 1e3 / design.compute.clock_mhz
    period = int(dma_period(tile.bus_bytes, bytes_per_cycle))
    return MemoryModel(read_latency=read_latency, write_latency=write_latency, period=period)


def layer_tile(design: Any) -> TileConfig:
    """The simulable tile the tiny layer runs on: ``TileConfig.from_design(design, scaled=True)``
    (the design's structure at a simulable size) with activation and weight scratchpads of at
    least :data:`LAYER_SPAD_WORDS` words per bank and an output one of half that (a metadata
    scratchpad grown with the weights)."""
    tile = TileConfig.from_design(design, scaled=True)
    weight = max(tile.weight_depth, LAYER_SPAD_WORDS)
    return replace(tile, act_depth=max(tile.act_depth, LAYER_SPAD_WORDS), weight_depth=weight,
                   out_depth=max(tile.out_depth, LAYER_SPAD_WORDS // 2),
                   meta_depth=-(-tile.meta_depth * weight // tile.weight_depth))


def token_ids(layer: IntLayer, seed: int = 0) -> list[int]:
    """``PREFILL_TOKENS + 1`` seeded token ids: the prefill's, then the decode step's."""
    vocab = layer.config.model.vocab_size
    return [int(t) for t in np.random.default_rng(seed).integers(0, vocab, PREFILL_TOKENS + 1)]


def golden(layer: IntLayer, tokens: list[int]) -> dict[str, dict[str, np.ndarray]]:
    """Every named tensor of the prefill of ``tokens[:-1]`` and of the decode of ``tokens[-1]``
    after it (:meth:`IntLayer.execute`), by phase."""
    x = layer.embed(tokens)
    prefill = layer.execute(x[:-1])
    cache = KVCache(k=prefill["k_cache"], v_t=prefill["v_cache_t"], length=len(tokens) - 1)
    return {"prefill": prefill, "decode": layer.execute(x[-1:], cache)}


@dataclass(frozen=True)
class PhasePlan:
    """One compiled phase: the program's instruction ``words`` and each instruction's operator
    (``tags``, the ``End`` tagged ``end``), its DRAM ``image``, the ``carry`` ranges ``(from, to,
    size)`` taken over from the previous phase's DRAM, the tensors to compare (their symbols)
    and every tensor's place in DRAM (``symbols``), the prediction's timeline."""

    name: str
    words: tuple[int, ...]
    tags: tuple[str, ...]
    image: bytes
    carry: tuple[tuple[int, int, int], ...]
    tensors: dict[str, Symbol]
    symbols: dict[str, Symbol]
    predicted_cycles: int
    predicted_issued: tuple[int, ...]
    predicted_operators: dict[str, dict[str, int]]

    @property
    def limit(self) -> int:
        """Cycles the run may take before it counts as hung."""
        return LIMIT_FACTOR * self.predicted_cycles + LIMIT_SLACK


@dataclass(frozen=True)
class LayerPlan:
    """The testbench of one tile: its config, memory, layer, token ids and phases."""

    tile: TileConfig
    memory: MemoryModel
    layer: IntLayerConfig
    tokens: tuple[int, ...]
    phases: tuple[PhasePlan, ...]


def uncharacterized_costs(design: Any) -> Any:
    """Unit costs of ``design`` for the mapper without characterizing its PE: the memory, SRAM and
    vector figures of its technology (what the mapping's time depends on) and neutral PE figures
    (1 µm², 1 pJ per MAC, Fmax at the design's clock), which only break the mapper's ties."""
    from ..cost.units import UnitCosts

    return UnitCosts(pe_area_um2=1.0, pj_per_mac=1.0, fmax_mhz=design.compute.clock_mhz, pim_pj_per_mac=0.0,
                     pim_lane_area_um2=0.0, **memory_costs(design),
                     sources={"pe_area_um2": "not characterized", "pj_per_mac": "not characterized"})


def tile_mappings(design: Any, costs: Any | None = None) -> dict[str, dict[str, Any]]:
    """The cost model's mapping of each GEMM of the tiny layer's prefill and decode on ``design``
    (:func:`peforge.dse.tile.mapping.cost_model_mappings`). ``costs``: the design's unit costs
    (default: characterized, :func:`peforge.dse.cost.units.unit_costs`; cached on disk)."""
    from ..cost.model import CostModel
    from ..cost.units import unit_costs
    from ..cost.workload import prepare
    from .mapping import cost_model_mappings

    workload = prepare("tiny-llama", batch=1, seq=PREFILL_TOKENS, gen=2, quant=MAPPING_QUANT)
    return cost_model_mappings(CostModel([design], [costs or unit_costs(design)]), workload)


def _checked(compiled: Compiled, expected: dict[str, np.ndarray]) -> dict[str, Symbol]:
    """The symbols of the tensors a run must leave in DRAM as the golden model has them: every
    step's output and the caches (not the constants and inputs it started from)."""
    inputs = set(compiled.constants) | {"x"}
    return {name: symbol for name, symbol in compiled.symbols.items()
            if name in expected and (name not in inputs or name in CACHE_NAMES)}


def plan_layer(design: Any, tile: TileConfig, mappings: dict[str, dict[str, Any]], *,
               memory: MemoryModel | None = None, layer: IntLayerConfig | None = None,
               token_seed: int = 0, fit_imem: bool = True) -> LayerPlan:
    """Compile the tiny layer's prefill and decode for ``tile`` (``design``'s, e.g.
    :func:`layer_tile`) with ``mappings`` (by phase, then GEMM name:
    :func:`tile_mappings`), and predict their cycles over ``memory`` (default
    :func:`memory_model`). ``fit_imem``: the plan's tile (the one to export) has the smallest
    power-of-two instruction memory holding the longer program, whatever ``tile`` has. Raises
    ``ValueError`` (one line) when the layer does not compile."""
    memory = memory or memory_model(design, tile)
    if fit_imem:
        tile = replace(tile, imem_depth=MAX_IMEM)
    layer_config = layer or IntLayerConfig()
    int_layer = IntLayer(layer_config)
    tokens = token_ids(int_layer, token_seed)
    x = int_layer.embed(tokens)
    expected = golden(int_layer, tokens)
    phases, previous = [], None
    for name, rows, position in (("prefill", x[:-1], 0), ("decode", x[-1:], len(tokens) - 1)):
        if name not in mappings:
            raise ValueError(f"no mappings for the {name} phase; given: {', '.join(mappings) or 'none'}")
        compiled = compile_layer(int_layer, len(rows), position, tile, mappings[name])
        carry = ()
        if previous is not None:
            carry = tuple((previous.symbols[c].addr, compiled.symbols[c].addr, compiled.symbols[c].size)
                          for c in CACHE_NAMES)
        timeline = program_timeline(compiled.program, lambda slot, cmd: tile.unit_cycles(slot, cmd, memory))
        prediction = predict(compiled, memory)
        phases.append(PhasePlan(name=name, words=tuple(tile.encode(compiled.program)), tags=tuple(compiled.tags),
                                image=bytes(compiled.image(rows)), carry=carry,
                                tensors=_checked(compiled, expected[name]), symbols=dict(compiled.symbols),
                                predicted_cycles=timeline.cycles,
                                predicted_issued=tuple(step.issued for step in timeline.steps),
                                predicted_operators={op: asdict(o) for op, o in prediction.operators.items()}))
        previous = compiled
    if fit_imem:
        longest = max(len(p.words) for p in phases)
        tile = replace(tile, imem_depth=max(2, 1 << (longest - 1).bit_length()))
    return LayerPlan(tile=tile, memory=memory, layer=layer_config, tokens=tuple(tokens), phases=tuple(phases))


# --- checking a run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """A tensor the run left in DRAM unlike the golden model: the first differing element
    (``index``, ``got``, ``want``) and how many differ."""

    tensor: str
    index: tuple[int, ...]
    got: int
    want: int
    count: int

    def describe(self) -> str:
        return (f"tensor {self.tensor}{list(self.index)} is {self.got}, the golden model's {self.want} "
                f"({self.count} element(s) differ)")


@dataclass(frozen=True)
class PhaseReport:
    """One phase checked: ``done`` in its limit, the ``measured`` and ``predicted`` cycles, per
    operator both (``operators[op]``: ``measured`` and the prediction's ``array``, ``vector``,
    ``dma``, ``total``), the first instruction leaving decode off its predicted cycle
    (``divergence``: index, tag, predicted, measured, None for the one a hung run never let go;
    None when every one matches or without the probe), the tensors ``checked`` and the
    ``mismatches``."""

    name: str
    done: bool
    measured: int
    predicted: int
    operators: dict[str, dict[str, int]]
    divergence: dict[str, Any] | None
    checked: tuple[str, ...]
    mismatches: tuple[Mismatch, ...]
    limit: int

    @property
    def passed(self) -> bool:
        return self.done and not self.mismatches

    def problem(self) -> str | None:
        """One line on what is wrong, or None."""
        if not self.done:
            stalled = ""
            if self.divergence and self.divergence["measured"] is None:
                where = self.divergence
                stalled = f" (instruction {where['instruction']}, {where['tag']}, never left decode)"
            return f"{self.name}: the tile did not raise done within {self.limit} cycles{stalled}"
        if self.mismatches:
            return f"{self.name}: {self.mismatches[0].describe()}; {len(self.mismatches)} tensor(s) differ"
        return None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mismatches"] = [asdict(m) for m in self.mismatches]
        out["passed"] = self.passed
        return out


@dataclass(frozen=True)
class LayerReport:
    """The testbench's verdict on every phase, with the memory it ran over."""

    simulator: str
    memory: MemoryModel
    phases: tuple[PhaseReport, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every phase finished and left every tensor bit for bit as the golden model."""
        return bool(self.phases) and all(p.passed for p in self.phases)

    @property
    def cycles_exact(self) -> bool:
        """Every phase took exactly its predicted cycles."""
        return all(p.done and p.measured == p.predicted for p in self.phases)

    def problem(self) -> str | None:
        return next((p.problem() for p in self.phases if p.problem()), None)

    def summary(self) -> str:
        """One line: PASS or FAIL, then the cycles of each phase."""
        cycles = ", ".join(f"{p.name} {p.measured} cycles (predicted {p.predicted})" for p in self.phases)
        if not self.passed:
            return f"FAIL {self.problem()}"
        return f"PASS on {self.simulator}: {sum(len(p.checked) for p in self.phases)} tensors bit-exact; {cycles}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: memory, per phase (and in total) measured against predicted cycles."""
        total = {"measured": sum(p.measured for p in self.phases), "predicted": sum(p.predicted for p in self.phases)}
        return {"simulator": self.simulator, "memory": asdict(self.memory), "passed": self.passed,
                "cycles_exact": self.cycles_exact, "total": total,
                "phases": {p.name: p.to_dict() for p in self.phases}, **self.extra}


def operator_totals(issued: list[int], tags: list[str], cycles: int) -> dict[str, int]:
    """The sequencer's cycles per operator of a run whose instructions left decode at ``issued``
    (in program order, the ``End`` last, tagged ``end``) and which raised done at ``cycles``."""
    totals: dict[str, int] = {}
    previous, last = 0, None
    for when, tag in zip(issued, tags):
        if tag == "end":
            if last is not None:
                totals[last] += cycles - previous
            break
        totals[tag] = totals.get(tag, 0) + when + 1 - previous
        previous, last = when + 1, tag
    return totals


def _first_mismatch(name: str, got: np.ndarray, want: np.ndarray) -> Mismatch | None:
    want = np.asarray(want, dtype=np.int64)
    if got.shape != want.shape:
        return Mismatch(tensor=name, index=(), got=-1, want=-1, count=int(want.size))
    differ = np.argwhere(got != want)
    if not len(differ):
        return None
    index = tuple(int(i) for i in differ[0])
    return Mismatch(tensor=name, index=index, got=int(got[index]), want=int(want[index]), count=len(differ))


def check_phase(*, name: str, done: bool, measured: int, dram: bytes, issued: list[tuple[int, int]] | None,
                tensors: dict[str, Symbol], expected: dict[str, np.ndarray], tags: list[str],
                predicted: int, predicted_issued: list[int], predicted_operators: dict[str, dict[str, int]],
                limit: int) -> PhaseReport:
    """Compare one phase's run (its final ``dram``, ``measured`` cycles, the probe's ``issued``
    ``(index, cycle)`` pairs) with the golden tensors and the prediction."""
    mismatches = []
    if done:
        for tensor, symbol in tensors.items():
            problem = _first_mismatch(tensor, symbol.read(dram), expected[tensor])
            if problem:
                mismatches.append(problem)
    divergence = None
    operators = {op: dict(figures) for op, figures in predicted_operators.items()}
    if issued is not None:
        indices, cycles = [i for i, _ in issued], [c for _, c in issued]
        for k, (want, got) in enumerate(zip(predicted_issued, cycles)):
            if indices[k] != k or want != got:
                divergence = {"instruction": indices[k], "tag": tags[indices[k]] if indices[k] < len(tags) else "?",
                              "predicted": want, "measured": got}
                break
        if divergence is None and len(cycles) < len(predicted_issued) and not done:
            k = len(cycles)  # the instruction the run stalled at
            divergence = {"instruction": k, "tag": tags[k] if k < len(tags) else "?",
                          "predicted": predicted_issued[k], "measured": None}
        elif divergence is None and len(cycles) != len(predicted_issued) and done:
            divergence = {"instruction": min(len(cycles), len(predicted_issued)), "tag": "end",
                          "predicted": len(predicted_issued), "measured": len(cycles)}
        if done and indices == list(range(len(indices))):
            for op, total in operator_totals(cycles, [tags[i] for i in indices], measured).items():
                operators.setdefault(op, {})["measured"] = total
    return PhaseReport(name=name, done=done, measured=measured, predicted=predicted, operators=operators,
                       divergence=divergence, checked=tuple(tensors), mismatches=tuple(mismatches), limit=limit)


def run_plan(plan: LayerPlan, source: Path, simulator: str, build_dir: Path, *, quick_build: bool = True,
             only: tuple[str, ...] | None = None) -> LayerReport:
    """Run ``plan``'s phases on the tile Verilog ``source`` (an export of ``plan.tile``) under
    ``simulator`` and check them against the golden model (recomputed from the plan's layer and
    tokens, not taken from the plan).

    ``only``: run just these phases (names); a phase whose predecessor does not run starts from
    the golden model's KV cache, written into its image, instead of the one a run would carry over.
    """
    from ...sim.tile_layer import TilePhase, run_tile_phases

    names = [p.name for p in plan.phases]
    if only is not None and (not only or not set(only) <= set(names)):
        raise ValueError(f"phases {', '.join(only) or '(none)'}: choose among {', '.join(names)}")
    expected = golden(IntLayer(plan.layer), list(plan.tokens))
    chosen, phases = [], []
    for i, p in enumerate(plan.phases):
        if only is not None and p.name not in only:
            continue
        image, carry = p.image, p.carry
        if carry and (not chosen or chosen[-1] is not plan.phases[i - 1]):
            image = bytearray(image)
            for name in CACHE_NAMES:
                p.tensors[name].write(image, expected[plan.phases[i - 1].name][name])
            image, carry = bytes(image), ()
        chosen.append(p)
        phases.append(TilePhase(name=p.name, image=image, words=p.words, carry=carry, limit=p.limit))
    results = run_tile_phases(source, plan.tile, phases, plan.memory, simulator, build_dir, quick_build=quick_build)
    reports = []
    for p, r in zip(chosen, results):
        reports.append(check_phase(name=p.name, done=r.done, measured=r.cycles, dram=r.dram,
                                   issued=list(r.issued) if r.issued is not None else None, tensors=p.tensors,
                                   expected=expected[p.name], tags=list(p.tags), predicted=p.predicted_cycles,
                                   predicted_issued=list(p.predicted_issued),
                                   predicted_operators=p.predicted_operators, limit=p.limit))
    return LayerReport(simulator=simulator, memory=plan.memory, phases=tuple(reports))
