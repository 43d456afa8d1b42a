"""Price design points running a workload: latency, throughput, energy, area, per operator.

Many design points are priced at once: every per-design figure is an array with the design
axis first, broadcast against the workload's ``(steps, operator rows)`` columns, so a batch
of designs costs about as much numpy work as one.

Rules (each one a place where the model could be refined, so each is stated):

Compute and memory: the mapper. A matrix operator is ``P`` independent products per layer
(heads x sequences, experts; layers run one after another) of ``M x K @ K x N``; for every
operator and design :mod:`peforge.dse.cost.mapper` takes the legal mapping of least time (ties:
least energy): the products side by side or one at a time over the ``arrays`` arrays, each
product's arrays splitting M, N or K or two of them (a K split's partial sums added by the
vector unit, priced),
and a power-of-two SRAM tiling (activations kept on chip for the next operator where all of
them fit, a resident operand, or K-blocked output-stationary tiles), double- or
single-buffered; fused attention where the design has it. Each array's share runs with the
exact cycle formula of the RTL array (:func:`peforge.hw.systolic.gemm_cycles`, through
:mod:`peforge.dse.cost.array`). Integer weights or activations wider than the PE handles run
in bit slices (``ceil(bits / pe_bits)`` passes each, as Bit Fusion composes narrow units);
other formats run in one pass where the PE's format holds every value, else the design is
rejected (:mod:`peforge.dse.cost.formats`); the bit-serial PE takes the workload's weight
precision at run time (ceil(w_bits / k) cycles per beat). A reduction longer than the PE's
accumulation bound (``max_reduction`` products, what its accumulator holds with worst-case
operands) runs in ``ceil(K / bound)`` passes whose partial results the vector unit adds (each
addition: a 32-bit write and read of the output buffer and one vector op), rather than
wrapping. Elementwise operators run on the vector unit (``compute.vector_lanes``, default one
lane per array column), one op per lane per cycle at the graph's ops per element
(:data:`peforge.models.graph._EW_OPS`: RMSNorm 4, softmax 5, SiLU 4, ...); their operands stay
on chip when one layer's fit in the activation and output buffers. Operator time = max(compute,
DRAM) when double-buffered, their sum when not (the array's own fill and drain are inside its
cycle formula).
DRAM runs at its sustained bandwidth: the datasheet figure times the technology's efficiency
(``UnitCosts.memory_gb_per_s``).

Capacity. A run must fit the design's memory (:mod:`peforge.dse.cost.footprint`: weights, KV
cache, activations; with PIM what it computes on, the KV cache or the weights, also fits the PIM
banks); the API rejects one that does not before pricing, and :meth:`CostModel.metrics` reports
``footprint_gib``, ``capacity_gib`` and ``max_batch`` for every design.

PIM (:mod:`peforge.dse.cost.pim`). With PIM, decode attention (score and context GEMVs
against the KV cache, which lives in the PIM memory) and, with ``pim.ops`` ``fc``, batch-1
weight GEMVs run on the banks in all-bank mode with the PimChannel's exact GEMV cycle formula
(packed rows where they fit). Each decode step the runtime picks the fastest schedule the
hardware supports: NPU only, ``blocked`` (the NPU waits for PIM, step = NPU + PIM) or
``concurrent`` (NeuPIMs: ``k`` sub-batches pipeline through the layers, the NPU's work on one
overlapping PIM attention of another; each sub-batch reads the weights again).

Energy = MACs x pJ/MAC (characterized, x slices) + SRAM bytes x pJ/bit (each buffer at its
size) + DRAM bytes x pJ/bit + PIM bytes x internal pJ/bit + PIM MACs x pJ/MAC + vector ops
x pJ/op. Leakage is not modelled. Area = PEs (characterized per-PE area x R x C x arrays) +
SRAM (tech preset) + PIM lanes. Power = energy / time.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..design.point import DesignPoint
from . import mapper, pim as pim_cost
from .array import array_shapes
from .footprint import GIB, capacity_columns, max_batch
from .formats import operand_passes
from .gemm_tiles import (dma_bytes_per_s, dma_period, gemm_bytes, gemm_fill, gemm_work, geometry, share_sides, tile_of,
                         tile_sides)
from .mapper import PSUM_BYTES, ceil_div
from .tile_parts import tile_parts_mm2
from .units import UnitCosts
from .workload import KIND_CODES, ROLE_CODES, VECTOR_CODES, OpTable, Workload

if TYPE_CHECKING:
    from ...hw.tile.dma import MemoryModel

ATTENTION, ELEMENTWISE = KIND_CODES["attention"], KIND_CODES["elementwise"]
PIM_MODES = pim_cost.PIM_MODES


@dataclass(frozen=True)
class StepCost:
    """Cost of operator rows, arrays of shape ``(designs, steps, rows)``."""

    npu_s: np.ndarray
    pim_s: np.ndarray
    compute_s: np.ndarray
    dram_s: np.ndarray
    energy_j: np.ndarray  # the sum of the components below
    dram_bytes: np.ndarray
    macs: np.ndarray
    mac_j: np.ndarray
    weight_sram_j: np.ndarray
    act_sram_j: np.ndarray
    out_sram_j: np.ndarray
    dram_j: np.ndarray
    pim_j: np.ndarray
    vector_j: np.ndarray
    vector_s: np.ndarray  # the vector unit's part of compute_s
    npu_only_s: np.ndarray | None = None  # the rows' time with nothing on PIM (the NPU-only schedule)
    npu_only_j: np.ndarray | None = None  # and their energy


STEP_SUMS = ("npu_s", "pim_s", "npu_only_s", "energy_j", "pim_j", "npu_only_j")  # RunCost.steps

ENERGY_PARTS = {"mac_j": "array MACs", "weight_sram_j": "weight SRAM", "act_sram_j": "activation SRAM",
                "out_sram_j": "output SRAM", "dram_j": "DRAM", "pim_j": "PIM", "vector_j": "vector unit"}


@dataclass(frozen=True)
class Mapping:
    """The mapping the mapper chose for each operator row on each design, arrays of shape
    ``(designs, steps, rows)`` (:mod:`peforge.dse.cost.mapper`): the spread candidate
    (``candidate``: index into :data:`~peforge.dse.cost.mapper.CANDIDATES`), arrays per product,
    rounds, passes over K, whether tiles are double-buffered, the tiling family (index into
    :data:`~peforge.dse.cost.mapper.FAMILIES`), the tile's output rows and columns, and how often
    the activations and the weights (or K / V) are read from DRAM follows (:func:`~peforge.dse.cost.
    mapper.reads`)."""

    candidate: np.ndarray
    arrays: np.ndarray
    in_flight: np.ndarray
    rounds: np.ndarray
    k_passes: np.ndarray
    double: np.ndarray
    family: np.ndarray
    tile_m: np.ndarray
    tile_n: np.ndarray


@dataclass(frozen=True)
class RunCost:
    """A run of steps: per-row totals over the run ``(designs, rows)``, and NPU / PIM time of
    each step ``(designs, steps)`` (s)."""

    rows: dict[str, np.ndarray]
    npu_s: np.ndarray
    pim_s: np.ndarray
    weight: np.ndarray  # steps each column of npu_s / pim_s stands for
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # STEP_SUMS per step (designs, steps)
    schedule: Any = None  # decode: the peforge.dse.cost.pim.Schedule chosen


@dataclass(frozen=True)
class Evaluation:
    """What a design point achieves on a workload."""

    design: str
    model: str
    metrics: dict[str, float]
    operators: Any  # pandas DataFrame (phase, operator, kind, bound, mapping, time_s, energy_j and its
    #                parts, dram_bytes, macs: totals over the run) or None
    costs: UnitCosts | None = None  # the unit costs used, each with its source
    area_mm2: dict[str, float] = field(default_factory=dict)  # by component
    peaks: dict[str, float] = field(default_factory=dict)  # roofs: peak MACs/s of the arrays, DRAM bytes/s


@dataclass(frozen=True)
class Rows:
    """What the design-independent part of pricing derives from operator rows ``(steps, rows)``;
    the ``*_op`` quantities are per product, the others totals of the row."""

    m: np.ndarray
    k: np.ndarray
    n: np.ndarray
    products: np.ndarray  # independent products of one layer
    repeat: np.ndarray  # layers the row stands for (run one after another)
    matrix: np.ndarray
    attention: np.ndarray
    role: np.ndarray  # ROLE_CODES
    vector: np.ndarray  # VECTOR_CODES: the vector unit's work as the tile lowers it
    vector_a: np.ndarray  # its figures (OpTable)
    vector_b: np.ndarray
    move: np.ndarray  # the tile's DMA-only move of the row's output (MOVE_CODES)
    macs: np.ndarray
    act_bytes: np.ndarray
    kv_bytes: np.ndarray
    weight_bytes: np.ndarray
    vector_ops: np.ndarray
    w_bits: np.ndarray
    a_bytes: float  # bytes of one activation element
    b_bytes: np.ndarray  # bytes of one weight (or KV) element
    formats: tuple[tuple[str, str], ...]  # tensor role -> number format (Workload.formats)
    kv_writes: np.ndarray  # new K / V entries written by the row
    a_op: np.ndarray  # activation operand of one product (bytes)
    b_op: np.ndarray  # weights (or K / V) of one product, read from DRAM
    c_op: np.ndarray  # result of one product written back (bytes)
    io_op: np.ndarray  # activations in and out of one product (bytes): on chip when they fit

    @functools.cached_property
    def matrix_groups(self) -> list[tuple[np.ndarray, Rows]]:
        """The matrix rows, in two groups: one product per layer, and several (the spread
        candidates they need differ), each as its indices and those rows alone."""
        products = np.broadcast_to(self.products, np.broadcast(self.m, self.matrix).shape).reshape(-1)
        groups = []
        for members in (self.matrix & (products == 1), self.matrix & (products > 1)):
            index = np.nonzero(members)[0]
            if len(index):
                groups.append((index, self.subset(index)))
        return groups

    @functools.cached_property
    def matrix_group(self) -> list[tuple[np.ndarray, Rows]]:
        """The matrix rows in one group (its indices and those rows alone), none if there are none."""
        index = np.nonzero(np.broadcast_to(self.matrix, np.broadcast(self.m, self.matrix).shape).reshape(-1))[0]
        return [(index, self.subset(index))] if len(index) else []

    def subset(self, index: np.ndarray) -> Rows:
        """These rows at ``index`` (of the last axis) only."""
        full = np.broadcast(self.m, self.matrix).shape
        at = lambda v: np.broadcast_to(v, np.broadcast_shapes(np.shape(v), full))[..., index]  # noqa: E731
        return dataclasses.replace(self, **{f.name: at(getattr(self, f.name)) for f in fields(Rows)
                                            if isinstance(getattr(self, f.name), np.ndarray)})


def _rows(cols: dict[str, np.ndarray], kind: np.ndarray, role: np.ndarray, workload: Workload,
          batch_scale: float, vector: np.ndarray | None = None) -> Rows:
    """The per-row quantities of ``cols``; ``batch_scale`` < 1 is a sub-batch (matrix M,
    attention products and per-token work shrink)."""
    m, k, n, count = cols["m"], cols["k"], cols["n"], cols["count"]
    matrix = kind != ELEMENTWISE
    attention = kind == ATTENTION
    if batch_scale != 1.0:
        m = np.where(matrix & ~attention, np.ceil(m * batch_scale), m)
        count = np.where(attention, np.ceil(count * batch_scale), count)
    grow = np.where(matrix & ~attention, m / np.maximum(cols["m"], 1), count / np.maximum(cols["count"], 1))
    macs = cols["macs"] * np.where(matrix, grow, 1.0)
    act_bytes = cols["act_bytes"] * np.where(matrix, grow, batch_scale)
    kv_bytes = cols["kv_bytes"] * np.where(attention, grow, batch_scale)
    weight_bytes = cols["weight_bytes"]
    a_bytes = workload.act_bits / 8
    b_bits = np.where(attention, workload.kv_bits, workload.weight_bits)
    per = np.maximum(count, 1)
    a_op = m * k * a_bytes
    streamed = weight_bytes + np.where(attention, kv_bytes, 0.0)
    return Rows(
        m=m, k=k, n=n, products=per / cols["repeat"], repeat=cols["repeat"], matrix=matrix,
        attention=attention, role=role, vector=np.zeros_like(role) if vector is None else vector,
        vector_a=cols.get("vector_a", np.zeros_like(m)), vector_b=cols.get("vector_b", np.zeros_like(m)),
        move=cols.get("move", np.zeros_like(m)),
        macs=macs, act_bytes=act_bytes, kv_bytes=kv_bytes,
        weight_bytes=weight_bytes, vector_ops=np.where(matrix, 0.0, cols["ops"] * batch_scale),
        w_bits=b_bits, a_bytes=a_bytes, b_bytes=b_bits / 8, formats=tuple(workload.formats.items()),
        kv_writes=np.where(attention, 0.0, kv_bytes), a_op=a_op, b_op=streamed / per,
        c_op=np.maximum(act_bytes / per - a_op, 0.0), io_op=act_bytes / per)


@dataclass(frozen=True)
class _RunPlan:
    """How a run of steps is priced: the rows priced once, those priced per sampled step."""

    varying: np.ndarray
    weight: np.ndarray  # steps each sample stands for
    fixed: Rows
    moving: Rows | None


_PLANS: dict[tuple, tuple[Any, _RunPlan]] = {}
_BUFFERING = np.array([2.0, 1.0])  # copies of each tile: double-buffered, or single
_ALL_CANDIDATES = tuple(range(len(mapper.CANDIDATES)))
_SIDE_BY_SIDE = tuple(i for i, (side, _) in enumerate(mapper.CANDIDATES) if side)
_ONE_ARRAY_OR_ALL = (_SIDE_BY_SIDE[0], *(i for i, (side, _) in enumerate(mapper.CANDIDATES) if not side))
_ONE_CALL_CELLS = 4096  # designs x rows up to which the mapper runs as one call (see _map_matrix_rows)


def _run_plan(table: OpTable, workload: Workload, steps: int, slope: dict | None, batch_scale: float,
              stride: int) -> _RunPlan:
    """The design-independent half of :meth:`CostModel.price_run`, computed once per workload."""
    key = (id(table), id(workload), steps, batch_scale, stride)
    cached = _PLANS.get(key)
    if cached is not None and cached[0][0] is table and cached[0][1] is workload:
        return cached[1]
    varying = np.zeros(len(table.kind), dtype=bool)
    if slope is not None and steps > 1:
        varying = np.any([slope[c] != 0 for c in slope], axis=0)
    starts = np.arange(0, steps, stride)
    weight = (np.minimum(starts + stride, steps) - starts).astype(np.float64)
    fixed = _rows({c: v[None, ~varying] for c, v in table.cols.items()}, table.kind[~varying],
                  table.role[~varying], workload, batch_scale,
                  None if table.vector is None else table.vector[~varying])
    moving = None
    if varying.any():
        t = (starts + (weight - 1) / 2)[:, None]  # the chunk's mean step: exact where cost is linear in t
        grown = {c: v[None, varying] + slope[c][None, varying] * t for c, v in table.cols.items()}
        moving = _rows(grown, table.kind[varying], table.role[varying], workload, batch_scale,
                       None if table.vector is None else table.vector[varying])
    plan = _RunPlan(varying, weight, fixed, moving)
    if len(_PLANS) > 256:
        _PLANS.clear()
    _PLANS[key] = ((table, workload), plan)
    return plan


@dataclass(frozen=True)
class RunSpec:
    """One run to price: ``steps`` steps of ``table`` growing by ``slope`` per step, on PIM or not (``use_pim``: a
    flag for attention, or the :data:`~peforge.dse.cost.pim.PIM_ATTENTION` / ``PIM_FC`` bits),
    at a sub-batch ``batch_scale``."""

    table: OpTable
    steps: int = 1
    slope: dict | None = None
    use_pim: int = 0
    batch_scale: float = 1.0


@dataclass(frozen=True)
class _Joined:
    """The rows of several run plans side by side, one row per (step, operator) cell."""

    rows: Rows
    use_pim: np.ndarray  # per cell
    slices: dict[tuple[int, str], tuple[int, int, tuple[int, int]]]  # (run, part) -> cells, (steps, rows)


_JOINED: dict[tuple, tuple[Any, _Joined]] = {}


def _joined_rows(plans: Sequence[_RunPlan], use_pim: Sequence[bool]) -> _Joined:
    """Every fixed and varying part of ``plans`` flattened to cells and laid side by side (cached:
    the plans are)."""
    key = tuple(id(p) for p in plans) + tuple(use_pim)
    cached = _JOINED.get(key)
    if cached is not None and all(a is b for a, b in zip(cached[0], plans)):
        return cached[1]
    parts, slices, flags, start = [], {}, [], 0
    for i, plan in enumerate(plans):
        for name, rows in (("fixed", plan.fixed), ("moving", plan.moving)):
            if rows is None:
                continue
            grid = np.broadcast(rows.m, rows.matrix).shape
            parts.append((rows, grid))
            slices[i, name] = (start, start + grid[0] * grid[1], grid)
            flags.append(np.full(grid[0] * grid[1], use_pim[i]))
            start += grid[0] * grid[1]
    first = parts[0][0]
    joined = {}
    for f in fields(Rows):
        value = getattr(first, f.name)
        if not isinstance(value, np.ndarray):
            joined[f.name] = value  # alike in every part: the workload's
            continue
        flat = np.concatenate([np.broadcast_to(getattr(rows, f.name), grid).reshape(-1) for rows, grid in parts])
        joined[f.name] = flat if value.ndim == 1 else flat[None, :]
    result = _Joined(Rows(**joined), np.concatenate(flags), slices)
    if len(_JOINED) > 256:
        _JOINED.clear()
    _JOINED[key] = (tuple(plans), result)
    return result


def _column(values: Sequence[float]) -> np.ndarray:
    """Per-design values as a ``(designs, 1, 1)`` array that broadcasts over steps and rows."""
    return np.asarray(values, dtype=np.float64)[:, None, None]


_PimArrays = pim_cost.PimArrays  # the PIM columns, in peforge.dse.cost.pim


def check_design(design: DesignPoint, costs: UnitCosts) -> None:
    """Reject a design that cannot run as specified (one line, naming the key)."""
    compute = design.compute
    if compute.clock_mhz > costs.fmax_mhz:
        raise ValueError(f"{design.name}: compute.clock_mhz={compute.clock_mhz:g} exceeds the characterized "
                         f"Fmax of its {compute.pe} PE, {costs.fmax_mhz:.0f} MHz")
    pe = compute.pe_config.figures()
    tile_bits = compute.rows * compute.cols * pe.lanes * pe.max_w_bits
    if design.sram.weight_kib * 1024 * 8 < 2 * tile_bits:
        raise ValueError(f"{design.name}: sram.weight_kib={design.sram.weight_kib} cannot double-buffer one "
                         f"{compute.rows}x{compute.cols} weight tile ({2 * tile_bits / 8 / 1024:.1f} KiB)")
    pim_cost.check_pim(design)
    vector_bits = compute.rows * pe.lanes * pe.a_bits
    if design.sram.activation_kib * 1024 * 8 < 2 * vector_bits:
        raise ValueError(f"{design.name}: sram.activation_kib={design.sram.activation_kib} cannot hold two "
                         f"activation vectors of the array's {compute.rows} rows")


_FIXED_TABLES: dict[int, tuple[OpTable, OpTable]] = {}


def _fixed_table(table: OpTable, fixed: np.ndarray) -> OpTable:
    """The rows of ``table`` at ``fixed`` as a table of their own (cached, so its run plan is)."""
    cached = _FIXED_TABLES.get(id(table))
    if cached is not None and cached[0] is table:
        return cached[1]
    index = np.nonzero(fixed)[0]
    sub = OpTable(names=tuple(table.names[i] for i in index), kind=table.kind[index],
                  cols={k: v[index] for k, v in table.cols.items()}, role=table.role[index])
    if len(_FIXED_TABLES) > 64:
        _FIXED_TABLES.clear()
    _FIXED_TABLES[id(table)] = (table, sub)
    return sub


def _unfuse(r: Rows, on_pim: np.ndarray, unfused: tuple, fused: tuple) -> tuple:
    """The fused attention rows (``fused``: cycles, DRAM bytes, rescale ops, mapping) back as they
    were (``unfused``: cycles, DRAM bytes, mapping) where the attention is on PIM: its score,
    softmax and context rows (:meth:`CostModel._fuse_attention` fuses only attention off PIM)."""
    cycles, dram, rescale, plan = fused
    score = np.nonzero(r.role == ROLE_CODES["score"])[0]
    shape = np.broadcast(cycles, on_pim).shape
    back = np.zeros(shape, dtype=bool)
    pair = np.broadcast_to(on_pim, shape)[..., score]
    for offset in (0, 1, 2):  # score, softmax, context
        back[..., score + offset] = pair
    tiles = {name: np.where(back, getattr(unfused[2], name), getattr(plan, name)) for name in ("family", "tile_m", "tile_n")}
    return (np.where(back, unfused[0], cycles), np.where(back, unfused[1], dram), np.where(back, 0.0, rescale),
            dataclasses.replace(plan, **tiles))


def _schedule_text(schedule: pim_cost.Schedule, weight: np.ndarray) -> str:
    """The first design's decode schedule in words, for the breakdown's PIM rows."""
    shares = schedule.shares(weight)[0]
    return "; decode steps: " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items())


class CostModel:
    """Design points with their unit costs, ready to price workloads together.

    ``designs`` and ``costs`` are parallel lists; each design must pass :func:`check_design`
    (``checked=True``: the caller has checked them). ``tile_commands=True``: a matrix operator's
    array cycles are those of the GEMM commands the tile compiler issues for its mapping on the
    design's tile (:mod:`peforge.dse.cost.gemm_tiles`: the compiler's tiles, full and edge, each
    command the array's cycles plus the engine's overhead), and the vector unit's cycles those of
    the vector commands it issues (:mod:`peforge.dse.tile.vector_lowering`: an elementwise row's,
    a product's requantization epilogue, added to its array cycles; nominal ops per lane where
    the tile does not lower a row); else the spread's cycles of one whole share per array and
    the graph's nominal vector ops per lane (the mapping chosen is the same either way). Under
    ``tile_commands`` the DRAM is also the tile's: a row's DRAM bytes are those its DMA moves (the
    program stores every tensor and loads it again), at the DMA's rate (whole bus beats at the
    memory's bandwidth), and a row's time is its operator's program on the tile: the compiler's
    lowering of the row timed by the ISA's timeline rule over ``tile_memory`` (default
    ``MemoryModel()``) at the design's cycles per beat (:func:`peforge.dse.tile.operator_program.
    operator_phases`: every transfer's latency, every ``Wait``, the slices' traffic on the one
    DMA), or where that program is too long to enumerate, its phases one after another in closed
    form (:meth:`_program_s`). Where the program is enumerated, the row's array and vector cycles
    and its DRAM bytes are also its program's (:meth:`_program_phases`: a mixed PE's INT8
    digit-plane GEMMs, the vector steps making its high plane and their loads and stores, which
    the closed forms do not price).
    """

    def __init__(self, designs: Sequence[DesignPoint], costs: Sequence[UnitCosts], *, checked: bool = False,
                 tile_commands: bool = False, tile_memory: MemoryModel | None = None):
        self.designs = list(designs)
        self.unit_costs = list(costs)
        if not checked:
            for design, cost in zip(self.designs, costs):
                check_design(design, cost)
        self.shape = array_shapes([d.compute for d in self.designs])
        self.cost = {f.name: _column([getattr(c, f.name) for c in costs])
                     for f in fields(UnitCosts) if f.name != "sources"}
        col = lambda get: _column([get(d) for d in self.designs])  # noqa: E731
        self.arrays = col(lambda d: d.compute.arrays)
        self.max_arrays = float(self.arrays.max())
        self.cols = col(lambda d: d.compute.cols)
        self.clock_hz = col(lambda d: d.compute.clock_mhz * 1e6)
        self.vector_lanes = col(lambda d: d.compute.lanes_of_vector_unit)
        self.fused = np.array([d.compute.fused_attention for d in self.designs])[:, None, None]
        self.any_fused = bool(self.fused.any())
        self.dram_bytes_per_s = self.cost["memory_gb_per_s"] * col(lambda d: d.memory.units) * 1e9
        self.weight_sram = col(lambda d: d.sram.weight_kib * 1024)
        self.act_sram = col(lambda d: d.sram.activation_kib * 1024)
        self.out_sram = col(lambda d: d.sram.output_kib * 1024)
        self.pim = pim_cost.PimArrays(self.designs)
        self.pim_mode = self.pim.mode
        self.any_pim = self.pim.any
        self.tile = geometry(self.designs) if tile_commands else None
        self.tiles = [tile_of(d) for d in self.designs] if tile_commands else None
        if self.tile is not None:  # DRAM as the tile's DMA sees it: whole bus beats at the memory's rate
            periods = dma_period(self.tile.bus_bytes, self.dram_bytes_per_s / self.clock_hz).reshape(-1)
            self.dram_bytes_per_s = dma_bytes_per_s(self.tile, self.dram_bytes_per_s, self.clock_hz)
            from ...hw.tile.dma import MemoryModel  # here: the tile's modules bring in Amaranth

            memory = tile_memory or MemoryModel()
            self.tile_memories = [dataclasses.replace(memory, period=int(p)) for p in periods]
        self.memory_capacity = capacity_columns(self.designs)[0]  # bytes, (designs,)
        self._passes: dict[tuple, dict[str, np.ndarray]] = {}

    def format_passes(self, formats: tuple[tuple[str, str], ...]) -> dict[str, np.ndarray]:
        """Passes of each tensor role on every design (``(designs, 1, 1)`` columns) for the
        workload's tensor ``formats``; ``ValueError`` for the first design that cannot run one
        (:func:`peforge.dse.cost.formats.operand_passes`)."""
        if formats not in self._passes:
            per_design = [operand_passes(d, dict(formats)) for d in self.designs]
            self._passes[formats] = {role: _column([p[role] for p in per_design]) for role in per_design[0]}
        return self._passes[formats]

    def _passes_of(self, r: Rows) -> np.ndarray:
        """Passes of each row on every design: its weight (or KV) operand's times its activation's."""
        per_role = self.format_passes(r.formats)
        return np.where(r.attention, per_role["kv"], per_role["weight"]) * per_role["activation"]

    def _on_chip(self, r: Rows) -> np.ndarray:
        """Whether all of an operator's activation operands and results fit the activation and
        output buffers, so they stay on chip for the next operator."""
        return r.products * r.io_op <= self.act_sram + self.out_sram

    @property
    def peak_macs_per_s(self) -> np.ndarray:
        """MACs per second of every design's arrays with every cell busy: the compute roof."""
        return self.shape.peak_macs_per_cycle * self.arrays * self.clock_hz

    # --- per step --------------------------------------------------------------------------

    def price(self, r: Rows, use_pim: bool = False) -> StepCost:
        """Cost of the operator rows ``r`` (arrays ``(steps, rows)``) for every design."""
        return self.price_mapped(r, use_pim)[0]

    def price_mapped(self, r: Rows, use_pim=False) -> tuple[StepCost, Mapping]:
        """:meth:`price`, and the mapping the mapper chose for each row; ``use_pim`` a flag or one
        per row."""
        c = self.cost
        passes = self._passes_of(r)
        plan, layer = self._map_matrix_rows(r)

        # Elementwise rows on the vector unit; their operands stay on chip when they fit.
        elementwise = ~r.matrix
        per_layer = lambda v: v / r.repeat  # noqa: E731
        vector_cycles = np.ceil(per_layer(r.vector_ops) / self.vector_lanes)
        epilogue = 0.0
        if self.tiles is not None:  # the vector commands the tile compiler issues, where it lowers the row
            vector_cycles, epilogue, vector_bytes = self._vector_commands(r, vector_cycles)
            # where the row's program is enumerated, its own phases (a mixed PE's digit planes too)
            program = self._program_phases(r, plan)
            array_known, vector_known = ~np.isnan(program.array), ~np.isnan(program.vector)
            layer = {**layer, "cycles": np.where(r.matrix & array_known, program.array, layer["cycles"])}
            epilogue = np.where(r.matrix & vector_known, program.vector, epilogue)
            vector_cycles = np.where(elementwise & vector_known, program.vector, vector_cycles)
        ew_fits = per_layer(r.act_bytes) <= self.act_sram + self.out_sram
        ew_bytes = per_layer(r.weight_bytes) + np.where(ew_fits, 0.0, per_layer(r.act_bytes))
        if self.tiles is not None:  # the DMA's bytes: each vector step loads its operands, stores its result
            ew_bytes = np.where(np.isnan(vector_bytes), ew_bytes, vector_bytes)
        compute_cycles = np.where(elementwise, vector_cycles, layer["cycles"] + epilogue)
        vector_part = np.where(elementwise, vector_cycles, epilogue)
        dram_layer = np.where(elementwise, ew_bytes, layer["dram_bytes"])
        if self.tiles is not None:  # a matrix row's epilogue's bytes too
            dram_layer = dram_layer + np.where(elementwise, 0.0, np.nan_to_num(vector_bytes))
            # where the row's program is enumerated, the bytes its DMA moves (a mixed PE's digit planes too)
            dram_layer = np.where(np.isnan(program.dma_bytes), dram_layer, program.dma_bytes)
        on_pim = self.pim.on_pim(r, use_pim) if self.any_pim and np.any(use_pim) else np.zeros((), dtype=bool)
        pim_s = self.pim.seconds(r, on_pim) if on_pim.any() else 0.0

        fusing = self.any_fused and (r.role == ROLE_CODES["score"]).any()
        if fusing:  # fused where faster; attention on PIM is not (its rows as unfused, below)
            fused = self._fuse_attention(r, plan, compute_cycles, dram_layer, np.zeros((), dtype=bool))

        def npu_cost(on_pim):
            """The NPU's time and energy by component of every row, none of it for rows on PIM."""
            cycles, dram, rescale, mapped = compute_cycles, dram_layer, 0.0, plan
            if fusing:
                cycles, dram, rescale, mapped = fused
                if on_pim.any():
                    cycles, dram, rescale, mapped = _unfuse(r, on_pim, (compute_cycles, dram_layer, plan), fused)
            compute_s = cycles * r.repeat / self.clock_hz
            dram_bytes = np.where(on_pim, 0.0, dram * r.repeat)
            dram_s = dram * r.repeat / self.dram_bytes_per_s
            busy = np.where(plan.double | elementwise, np.maximum(compute_s, dram_s), compute_s + dram_s)
            if self.tiles is not None:  # the overlap the tile's program has
                program_s = self._program_s(r, mapped, layer, program.total) * r.repeat
                busy = np.where(np.isnan(program_s), busy, program_s)
            # Energy by component (pJ): a row on PIM spends none on the NPU's arrays and buffers.
            npu = lambda pj: np.where(on_pim, 0.0, pj) * 1e-12  # noqa: E731
            adds = np.where(r.matrix, layer["adds"], 0.0) * r.repeat
            sram = {part: np.where(r.matrix, v, 0.0) * r.repeat for part, v in layer["sram_pj"].items()}
            parts = dict(
                mac_j=npu(r.macs * passes * c["pj_per_mac"]),
                weight_sram_j=npu(sram["weight"]), act_sram_j=npu(sram["act"]),
                out_sram_j=npu(sram["out"] + adds * 2 * PSUM_BYTES * 8 * c["out_sram_pj_per_bit"]),
                dram_j=npu(dram_bytes * 8 * c["memory_pj_per_bit"]),
                pim_j=np.where(on_pim, pim_pj, 0.0) * 1e-12,
                vector_j=(r.vector_ops + rescale * r.repeat + np.where(on_pim, 0.0, adds)) * c["vector_pj_per_op"] * 1e-12)
            return np.where(on_pim, 0.0, busy), compute_s, dram_s, dram_bytes, parts, mapped

        # PIM energy: bank-internal reads of the operand it streams and the lanes' MACs.
        pim_pj = np.where(r.attention, r.kv_bytes, r.weight_bytes) * 8 * c["pim_pj_per_bit"] + r.macs * c["pim_pj_per_mac"]
        npu_s, compute_s, dram_s, dram_bytes, parts, plan_out = npu_cost(on_pim)
        shape_of = np.broadcast(npu_s, r.macs, self.arrays).shape
        full = lambda a: a if np.shape(a) == shape_of else np.broadcast_to(a, shape_of)  # noqa: E731
        vector_s = np.where(on_pim, 0.0, vector_part) * r.repeat / self.clock_hz
        energy = sum(parts.values())
        if on_pim.any():  # the same rows with nothing on PIM: the scheduler's NPU-only option
            alone_s, _, _, _, alone_parts, _ = npu_cost(np.zeros((), dtype=bool))
            alone_j = sum(alone_parts.values())
        else:
            alone_s, alone_j = npu_s, energy
        cost = StepCost(full(npu_s), full(pim_s), full(compute_s), full(dram_s), full(energy),
                        full(dram_bytes), full(r.macs), **{name: full(v) for name, v in parts.items()},
                        vector_s=full(vector_s), npu_only_s=full(alone_s), npu_only_j=full(alone_j))
        return cost, plan_out

    def _vector_commands(self, r: Rows, nominal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-layer vector-unit cycles of the commands the tile compiler issues
        (:mod:`peforge.dse.tile.vector_lowering`): an elementwise row's (``nominal`` where the tile
        does not lower it), and a matrix row's epilogue (0 where none), on every design's tile;
        and the DMA's bytes around them (NaN where the tile does not lower the row; a rotation's
        queries also loaded and stored split into heads)."""
        from ..tile.vector_lowering import row_bytes, tile_vector_cycles

        products = np.where(r.matrix, np.round(r.products), 1.0)
        rows, width = np.where(r.matrix, products * r.m, r.m), r.n
        cycles = tile_vector_cycles(self.tiles, r.vector, rows, width, r.vector_a, r.vector_b)
        moved = tile_vector_cycles(self.tiles, r.vector, rows, width, r.vector_a, r.vector_b, rule=row_bytes)
        moved = moved + np.where(r.vector == VECTOR_CODES["rope"], 2 * r.m * r.vector_b, 0.0)
        lowered = ~np.isnan(cycles)
        vector = np.where(lowered & ~r.matrix, cycles, nominal)
        epilogue = np.where(lowered & r.matrix, cycles, 0.0)
        return vector, epilogue, moved

    def _map_matrix_rows(self, r: Rows) -> tuple[Mapping, dict[str, Any]]:
        """:meth:`mapping` of the matrix rows of ``r`` only, laid out over all its rows (zeros on
        elementwise rows): the mapper's work grows with the rows and candidates it sees. Rows of
        one product per layer need only the side-by-side candidates (one at a time is the same),
        rows of at least as many products as any design has arrays only one side-by-side one
        (each product has one array, whatever it splits)."""
        shape = np.broadcast(r.m, self.arrays).shape
        plan_out: dict[str, np.ndarray] = {}
        # Few cells (designs x rows): the mapper's time is per numpy call, not per element, so one
        # call with every candidate is faster. The candidates a group leaves out only repeat one
        # before them, which wins the tie: the mapping is the same either way.
        one_call = len(self.designs) * np.broadcast(r.m, r.matrix).size <= _ONE_CALL_CELLS
        for index, sub in r.matrix_group if one_call else r.matrix_groups:
            if one_call:
                candidates = _ALL_CANDIDATES
            elif np.all(sub.products == 1):
                candidates = _SIDE_BY_SIDE
            elif np.all(sub.products >= self.max_arrays):
                candidates = _ONE_ARRAY_OR_ALL
            else:
                candidates = _ALL_CANDIDATES
            plan, layer = self.mapping(sub, self._passes_of(sub), np.minimum(sub.w_bits, self.shape.max_w_bits),
                                       candidates)
            flat = {**{f.name: getattr(plan, f.name) for f in fields(Mapping)},
                    **{key: v for key, v in layer.items() if key != "sram_pj"},
                    **{f"sram_{part}": v for part, v in layer["sram_pj"].items()}}
            for key, v in flat.items():
                if key not in plan_out:
                    plan_out[key] = np.zeros(shape, dtype=v.dtype)
                plan_out[key][..., index] = v
        plan = Mapping(**{f.name: plan_out[f.name] for f in fields(Mapping)})
        layer_out = {"cycles": plan_out["cycles"], "dram_bytes": plan_out["dram_bytes"], "adds": plan_out["adds"],
                     "tile": plan_out["tile"], "fill": plan_out["fill"],
                     "sram_pj": {part: plan_out[f"sram_{part}"] for part in ("act", "weight", "out")}}
        return plan, layer_out

    def mapping(self, r: Rows, passes, w_bits, candidates: tuple[int, ...] = _ALL_CANDIDATES
                ) -> tuple[Mapping, dict[str, Any]]:
        """The mapper (:mod:`peforge.dse.cost.mapper`): for every matrix row and design, of the
        spread ``candidates`` (indices into :data:`~peforge.dse.cost.mapper.CANDIDATES`) and every
        tiling, the one of least time, then least energy. Returns the :class:`Mapping` and the
        chosen mapping's per-layer ``cycles``, ``dram_bytes``, partial-sum ``adds`` and ``sram_pj``
        (by buffer)."""
        shape, c = self.shape, self.cost
        m, k, n, products = r.m, r.k, r.n, r.products
        sp = mapper.spreads(shape, self.arrays, self.vector_lanes, m, k, n, products, w_bits, passes, candidates)
        sram = self._sram_pj(r, sp)
        spread_pj = sum(sram.values()) + sp.adds * (c["vector_pj_per_op"] + 2 * PSUM_BYTES * 8 * c["out_sram_pj_per_bit"])
        # Tilings (axis 0: double- or single-buffered; axis 1: each side's buffer share, alike for
        # its split dimensions).
        sides = [mapper.CANDIDATES[i][0] for i in candidates]
        present = sorted(set(sides), reverse=True)
        side_of = np.array([present.index(side) for side in sides])
        share = sp.in_flight[[sides.index(side) for side in present]]
        t = mapper.tile(m, k, n, r.a_op, r.b_op, r.c_op, r.a_bytes, r.b_bytes, self.act_sram / share,
                        self.weight_sram / share, self.out_sram / share, shape.rows * shape.lanes,
                        _BUFFERING.reshape(2, 1, 1, 1, 1), on_chip_ok=self._on_chip(r))
        dram = products * t.bytes + r.kv_writes / r.repeat  # (buffering, side, designs, steps, rows)
        # Every option: (buffering, candidate, designs, steps, rows).
        compute, dram_c = sp.cycles[None] / self.clock_hz, dram[:, side_of]
        dram_s = dram_c / self.dram_bytes_per_s
        time = np.where(_BUFFERING.reshape(2, 1, 1, 1, 1) == 2, np.maximum(compute, dram_s), compute + dram_s)
        energy = spread_pj[None] + dram_c * 8 * c["memory_pj_per_bit"]
        flat = (-1, *time.shape[2:])
        choice = mapper.fastest(time.reshape(flat), np.broadcast_to(energy, time.shape).reshape(flat))
        local = choice % len(candidates)
        tiling = (choice // len(candidates)) * len(present) + side_of[local]  # (buffering, side) of the choice
        of_spread = lambda v: mapper.pick(v, local)  # noqa: E731
        of_tiling = lambda v: mapper.pick(v.reshape(-1, *v.shape[2:]), tiling)  # noqa: E731
        plan = Mapping(
            candidate=np.asarray(candidates)[local], arrays=of_spread(sp.arrays), in_flight=of_spread(sp.in_flight),
            rounds=of_spread(sp.rounds), k_passes=of_spread(sp.k_passes), double=choice < len(candidates),
            family=of_tiling(t.family), tile_m=of_tiling(t.tile_m), tile_n=of_tiling(t.tile_n))
        cycles, moved, fill = self._command_cycles(r, sp, plan, of_spread, passes, w_bits)
        layer = {"cycles": cycles, "dram_bytes": np.where(np.isnan(moved), of_tiling(dram), moved),
                 "tile": ~np.isnan(moved), "fill": fill, "adds": of_spread(sp.adds),
                 "sram_pj": {part: of_spread(v) for part, v in sram.items()}}
        return plan, layer

    def _command_cycles(self, r: Rows, sp: mapper.Spread, plan: Mapping, of_spread, passes, w_bits
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-layer cycles of the chosen mapping as the tile runs it: the busiest array's GEMM
        commands (:func:`~peforge.dse.cost.gemm_tiles.gemm_work` over the compiler's tiles of its
        share, every round), and the partial-sum additions; the spread's own figure where the
        tile cannot be built or no tile of the family fits. And the bytes its DMA moves
        (:func:`~peforge.dse.cost.gemm_tiles.gemm_bytes` of every product; the new K / V rows
        loaded and stored into the cache, attention's context loaded and stored with its heads
        merged), NaN where the cycles are the spread's; and the bytes of the DMA beside no GEMM
        command (:func:`~peforge.dse.cost.gemm_tiles.gemm_fill`)."""
        shape, geo = self.shape, self.tile
        if geo is None or not geo.buildable.any():
            nan = np.full(np.shape(of_spread(sp.cycles)), np.nan)
            return of_spread(sp.cycles), nan, nan
        fold = shape.rows * shape.lanes
        m_parts = np.maximum(1, of_spread(sp.arrays) / (of_spread(sp.n_parts) * of_spread(sp.k_parts)))
        ms = share_sides(r.m, m_parts, 1)
        ns = share_sides(r.n, of_spread(sp.n_parts), shape.cols)
        ks = share_sides(np.maximum(r.k, 1), of_spread(sp.k_parts), fold)
        tm, tn, kb = tile_sides(geo, shape, ms, ks, ns, plan.family, plan.tile_m, plan.tile_n, plan.double,
                                plan.k_passes)
        work = plan.rounds * passes * gemm_work(shape, ms, ks, ns, tm, tn, kb, w_bits)
        exact = work + ceil_div(of_spread(sp.adds), self.vector_lanes)
        ok = geo.buildable & (tm >= 1) & (tn >= 1)
        order_b = (plan.family == mapper.WEIGHT_RESIDENT) & (plan.k_passes <= 1)
        moved = np.round(r.products) * gemm_bytes(geo, ms, ks, ns, r.m, np.maximum(r.k, 1), r.n, tm, tn, kb, order_b,
                                                  ~r.attention, r.a_bytes, r.b_bytes)
        moved = moved + self._moves(r)
        # every slice of the first group loads its tiles (one A for slices of one M and K part, one B
        # for slices of one N and K part) and stores its last tile (the K parts' added into one)
        a0, b0, c0 = gemm_fill(geo, ms, ks, ns, tm, tn, kb, ~r.attention, r.a_bytes, r.b_bytes)
        n_parts, k_parts = of_spread(sp.n_parts), of_spread(sp.k_parts)
        fill = of_spread(sp.in_flight) * (m_parts * k_parts * a0 + n_parts * k_parts * b0 + m_parts * n_parts * c0)
        return np.where(ok, exact, of_spread(sp.cycles)), np.where(ok, moved, np.nan), fill

    @staticmethod
    def _moves(r: Rows) -> np.ndarray:
        """Per-layer bytes the tile's DMA alone moves for a matrix row: its INT8 outputs loaded and
        stored again, the new K / V into the cache, attention's context with its heads merged."""
        moved_rows = (r.kv_writes > 0) | (r.role == ROLE_CODES["context"])
        return np.where(moved_rows, 2 * np.round(r.products) * r.m * r.n, 0.0)

    def _program_phases(self, r: Rows, plan: Mapping):
        """Per-layer cycles of each row's program on every design's tile
        (:func:`~peforge.dse.tile.operator_program.rows_phases`: its total, array and vector work,
        its DMA's bytes; NaN where not enumerated), under the mapping ``plan`` (fused rows are not
        lowered)."""
        from ..tile.mapping import MAPPING_FIELDS
        from ..tile.operator_program import rows_phases

        mapping = {name: getattr(plan, name) for name in MAPPING_FIELDS}
        return rows_phases(self.tiles, self.tile_memories, m=r.m, k=r.k, n=r.n, products=r.products,
                           matrix=r.matrix, attention=r.attention, score=r.role == ROLE_CODES["score"],
                           vector=r.vector, a=r.vector_a, b=r.vector_b, move=r.move, mapping=mapping,
                           fused=plan.family == mapper.FUSED)

    def _program_s(self, r: Rows, plan: Mapping, layer: dict[str, Any], program: np.ndarray) -> np.ndarray:
        """Per-layer seconds of each row as the tile's program runs it: ``program`` (its
        enumerated cycles, :meth:`_program_phases` under the unfused mapping) where ``plan`` does
        not fuse the row, else its phases one after another (where the program is not
        enumerated): a matrix row's GEMM commands beside their DMA where double-buffered (but its
        first tiles' loads and its last tile's store), else after it, its epilogue's vector steps,
        its DMA-only moves; an elementwise row's vector steps (:func:`row_steps
        <peforge.dse.tile.vector_lowering.row_steps>`: a block's loads beside the previous block's
        commands where the step's buffers let them, its store after them). NaN where the tile does
        not run the row."""
        from ..tile.vector_lowering import MAX_STEPS, STEP_FIGURES, step_figure, tile_vector_cycles

        clock, per_s = self.clock_hz, self.dram_bytes_per_s
        with_memory = [None if t is None else (t, m) for t, m in zip(self.tiles, self.tile_memories)]

        products = np.where(r.matrix, np.round(r.products), 1.0)
        rows, width = np.where(r.matrix, products * r.m, r.m), r.n
        steps = 0.0
        for i in range(MAX_STEPS):
            f = {part: tile_vector_cycles(with_memory, r.vector, rows, width, r.vector_a, r.vector_b,
                                          rule=step_figure(i, part)) for part in STEP_FIGURES}
            # blocks alike: the first block's loads, then each block's commands beside the next one's
            # loads (or after them), every store after its block's commands
            blocks = np.maximum(f["blocks"], 1)
            c, load = f["cycles"] / blocks, f["loads"] / blocks
            steps = steps + (np.where(f["overlap"] > 0, load + (blocks - 1) * np.maximum(c, load) + c,
                                      f["cycles"] + f["loads"]) + f["stores"]) / clock
        moves = self._moves(r)
        # the first tiles' loads and the last one's store beside no GEMM command, the rest beside them
        fill = layer["fill"] / per_s
        gemm = np.where(plan.double, fill + np.maximum(layer["cycles"] / clock,
                                                       (layer["dram_bytes"] - moves) / per_s - fill),
                        layer["cycles"] / clock + (layer["dram_bytes"] - moves) / per_s)
        matrix = gemm + np.nan_to_num(steps) + moves / per_s
        closed = np.where(r.matrix, np.where(layer["tile"], matrix, np.nan), steps)
        # exact where the row's program is small enough to enumerate: its commands' own timeline
        cycles = np.where(plan.family == mapper.FUSED, np.nan, program)
        return np.where(np.isnan(cycles), closed, cycles / clock)

    def _fuse_attention(self, r: Rows, plan: Mapping, cycles, dram, on_pim):
        """Score, softmax and context rows of an attention operator fused (FlashAttention-style,
        :mod:`peforge.dse.cost.mapper`) on the designs that can, where that is faster and the
        attention is not on PIM: returns the rows' per-layer ``cycles`` and DRAM bytes updated,
        the online softmax's rescale ops and the mapping with the fused rows marked."""
        shape = np.broadcast(cycles, dram, r.m, self.arrays).shape
        full = lambda v: np.broadcast_to(v, shape)  # noqa: E731
        cycles, dram = np.array(full(cycles)), np.array(full(dram))
        score = np.nonzero(r.role == ROLE_CODES["score"])[0]
        soft, context = score + 1, score + 2
        def at(v, rows):  # those rows of v; a per-design column (or a scalar) broadcasts as it is
            return v[..., rows] if np.ndim(v) and np.shape(v)[-1] > 1 else v

        keys, d, double = at(r.n, score), at(r.k, score), at(plan.double, score)
        kv_tile = np.minimum(keys, at(self.shape.cols, score))
        share = at(plan.in_flight, score)  # products sharing the buffers
        buffers = [at(b, score) / share for b in (self.act_sram, self.weight_sram, self.out_sram)]
        on_chip = self._on_chip(r)
        fused = {}
        for rows, io in ((score, np.where(on_chip, 0.0, r.a_op)), (context, np.where(on_chip, 0.0, r.c_op))):
            per_product, query_rows = mapper.fused_bytes(at(r.m, rows), d, kv_tile, at(r.b_op, rows), at(io, rows),
                                                         r.a_bytes, at(r.b_bytes, rows), *buffers,
                                                         np.where(double, 2, 1))
            fused[rows is score] = per_product * at(r.products, rows)
        rescale = at(r.products, context) * at(r.m, context) * d * np.ceil(keys / np.maximum(kv_tile, 1))
        soft_cycles = at(cycles, soft) + np.ceil(rescale / at(self.vector_lanes, soft))
        clock, bandwidth = at(self.clock_hz, score), at(self.dram_bytes_per_s, score)

        def busy(cyc, moved, overlap):
            return np.where(overlap, np.maximum(cyc / clock, moved / bandwidth), cyc / clock + moved / bandwidth)

        unfused = (busy(at(cycles, score), at(dram, score), double) + busy(at(cycles, soft), at(dram, soft), True)
                   + busy(at(cycles, context), at(dram, context), double))
        fused_time = (busy(at(cycles, score), fused[True], double) + soft_cycles / clock
                      + busy(at(cycles, context), fused[False], double))
        c = self.cost
        pj = lambda moved, ops: moved * 8 * at(c["memory_pj_per_bit"], score) + ops * at(c["vector_pj_per_op"], score)  # noqa: E731
        unfused_pj = pj(at(dram, score) + at(dram, soft) + at(dram, context), 0.0)
        fused_pj = pj(fused[True] + fused[False], rescale)
        with np.errstate(invalid="ignore"):  # np.isclose(rtol=1e-12, atol=0) as numpy computes it, less its checks
            near = (np.abs(fused_time - unfused) <= 1e-12 * np.abs(unfused)) & np.isfinite(unfused)
            tie = near | (fused_time == unfused)
        use = at(self.fused, score) & ~at(on_pim, score) & ((fused_time < unfused) & ~tie | tie & (fused_pj < unfused_pj))
        dram[..., score] = np.where(use, fused[True], dram[..., score])
        dram[..., context] = np.where(use, fused[False], dram[..., context])
        dram[..., soft] = np.where(use, 0.0, dram[..., soft])
        cycles[..., soft] = np.where(use, soft_cycles, cycles[..., soft])
        rescale_ops = np.zeros(shape)
        rescale_ops[..., soft] = np.where(use, rescale, 0.0)
        # the fused rows' tiles: Tq query rows (the same for score and context) by kv_tile keys
        tiles = {name: np.array(full(getattr(plan, name))) for name in ("family", "tile_m", "tile_n")}
        for rows in (score, context):
            for name, value in (("family", mapper.FUSED), ("tile_m", query_rows), ("tile_n", kv_tile)):
                tiles[name][..., rows] = np.where(use, value, tiles[name][..., rows])
        return cycles, dram, rescale_ops, dataclasses.replace(plan, **tiles)

    def _sram_pj(self, r: Rows, sp: mapper.Spread) -> dict[str, np.ndarray]:
        """Energy (pJ, one layer) of the arrays' SRAM reads and writes for a spread: each of a
        product's arrays reads its share of the operands (a ws array re-reads activations per
        column fold and writes partial sums per K fold; an os array re-reads weights per row
        fold), each buffer at its own pJ/bit: ``act``, ``weight`` and ``out``."""
        shape, c = self.shape, self.cost
        copies = r.products * sp.arrays
        act = copies * r.a_bytes * sp.m * sp.k * np.ceil(sp.n / shape.cols)
        weight = copies * r.b_bytes * sp.k * sp.n * np.where(shape.ws, 1.0, np.ceil(sp.m / shape.rows))
        k_folds = np.ceil(sp.k / (shape.rows * shape.lanes))
        out = copies * sp.m * sp.n * (r.a_bytes + np.where(shape.ws, 2 * PSUM_BYTES * np.maximum(k_folds - 1, 0), 0.0))
        return {"act": 8 * act * c["act_sram_pj_per_bit"], "weight": 8 * weight * c["weight_sram_pj_per_bit"],
                "out": 8 * out * c["out_sram_pj_per_bit"]}

    # --- whole runs ------------------------------------------------------------------------

    def price_run(self, table: OpTable, workload: Workload, *, steps: int = 1, slope: dict | None = None,
                  use_pim: bool = False, batch_scale: float = 1.0, stride: int = 1) -> RunCost:
        """Cost of ``steps`` steps of ``table`` whose columns grow by ``slope`` per step. Rows that
        do not change are priced once; the others (decode attention) at every step, or with
        ``stride`` > 1 once per chunk of ``stride`` steps at the chunk's mean step (exact where a
        row's cost is linear in the step; ``stride`` 1: exact)."""
        return self.price_runs([RunSpec(table, steps, slope, use_pim, batch_scale)], workload, stride)[0][0]

    def price_runs(self, specs: Sequence[RunSpec], workload: Workload, stride: int = 1,
                   with_mapping: bool = False, parts: Sequence[str] | None = None) -> list[tuple[RunCost, dict[str, Any]]]:
        """:meth:`price_run` of several runs of ``workload`` in one pass of the mapper (the rows of
        all of them side by side), each with (``with_mapping``) the mapping of its fixed and of its
        varying rows; ``parts``: the :class:`StepCost` fields its ``rows`` need (default all)."""
        plans = [_run_plan(spec.table, workload, spec.steps, spec.slope, spec.batch_scale, stride) for spec in specs]
        joined = _joined_rows(plans, [spec.use_pim for spec in specs])
        cost, mapping = self.price_mapped(joined.rows, joined.use_pim)
        names = list(parts or [f.name for f in fields(StepCost)])
        step_sums = STEP_SUMS if self.any_pim else STEP_SUMS[:2]  # without PIM only NPU time varies
        pieces = {}
        for key, (start, stop, steps_rows) in joined.slices.items():
            def cut(v):  # the fields come full-shaped from price_mapped: broadcast only what is not
                v = v if v.shape == cost.npu_s.shape else np.broadcast_to(v, cost.npu_s.shape)
                return v[..., start:stop].reshape(-1, *steps_rows)

            pieces[key] = ({name: cut(getattr(cost, name)) for name in {*names, *step_sums}},
                           Mapping(**{f.name: cut(getattr(mapping, f.name)) for f in fields(Mapping)})
                           if with_mapping else None)
        designs = len(self.designs)
        out = []
        for i, (spec, plan) in enumerate(zip(specs, plans)):
            (fixed, fixed_map), moving = pieces[i, "fixed"], pieces.get((i, "moving"))
            varying = plan.varying
            rows: dict[str, np.ndarray] = {}
            for name in names:
                column = np.empty((designs, len(spec.table.kind)))
                column[:, ~varying] = fixed[name][:, 0, :] * spec.steps
                if moving is not None:
                    column[:, varying] = np.einsum("dsr,s->dr", moving[0][name], plan.weight)
                rows[name] = column
            shape = (designs, len(plan.weight))
            per_step = {}
            for name in step_sums:  # (designs, 1) of the fixed rows, plus the moving rows' per step
                total = fixed[name].sum(axis=-1)
                per_step[name] = np.broadcast_to(total + moving[0][name].sum(axis=-1) if moving is not None else total,
                                                 shape)
            maps = {"varying": varying, "fixed": fixed_map, **({"moving": moving[1]} if moving is not None else {})}
            out.append((RunCost(rows, per_step["npu_s"], per_step["pim_s"], plan.weight, per_step), maps))
        return out

    def metrics(self, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
                stride: int = 1, costs_out: dict | None = None,
                mappings_out: dict | None = None, pim_schedules=None) -> dict[str, np.ndarray]:
        """Metrics of every design, arrays of shape ``(designs,)``. ``stride`` > 1 prices decode
        attention at every ``stride``-th step only (for large batches of designs; see
        :meth:`price_run`). ``costs_out`` receives the :class:`RunCost` of each phase (decode's
        with the :class:`~peforge.dse.cost.pim.Schedule` chosen), ``mappings_out`` the mappings of
        its fixed and varying rows (:meth:`price_runs`). ``pim_schedules``: the decode schedules
        the runtime may pick from (``(name, k)`` of :func:`peforge.dse.cost.pim.candidates`;
        default every one the hardware supports)."""
        out: dict[str, np.ndarray] = {}
        energy = time = macs = 0.0
        specs: dict[str, RunSpec] = {}
        if "prefill" in phases:
            specs["prefill"] = RunSpec(workload.prefill)
        if "decode" in phases:
            run = workload.decode
            specs["decode"] = RunSpec(run.base, run.steps, run.slope, use_pim=pim_cost.PIM_ATTENTION | pim_cost.PIM_FC)
            if self.pim.any_concurrent:  # one step of each sub-batch size: the rows that do not vary
                fixed_rows = _fixed_table(run.base, ~_run_plan(run.base, workload, run.steps, run.slope, 1.0,
                                                               stride).varying)
                for size in sorted(set(pim_cost.sub_batch_sizes(workload.batch).values())):
                    specs[f"sub{size}"] = RunSpec(fixed_rows, use_pim=pim_cost.PIM_ATTENTION,
                                                  batch_scale=size / workload.batch)
        priced = dict(zip(specs, self.price_runs(list(specs.values()), workload, stride,
                                                 with_mapping=mappings_out is not None,
                                                 parts=None if costs_out is not None else ("energy_j", "macs", "npu_s",
                                                                                           "pim_j"))))
        if mappings_out is not None:
            mappings_out.update({phase: maps for phase, (_, maps) in priced.items()})
        if "prefill" in priced:
            cost = priced["prefill"][0]
            ttft = cost.npu_s[:, 0] + cost.pim_s[:, 0]
            e = cost.rows["energy_j"].sum(axis=1)
            out.update(ttft_s=ttft, prefill_tokens_per_s=workload.batch * workload.seq / ttft, prefill_energy_j=e)
            energy, time, macs = energy + e, time + ttft, macs + cost.rows["macs"].sum(axis=1)
            if costs_out is not None:
                costs_out["prefill"] = cost
        if "decode" in priced:
            cost = priced["decode"][0]
            e = cost.rows["energy_j"].sum(axis=1)
            schedule = None
            if self.any_pim:
                subs = {int(name[3:]): c for name, (c, _) in priced.items() if name.startswith("sub")}
                fixed = ~_run_plan(run.base, workload, run.steps, run.slope, 1.0, stride).varying
                schedule = pim_cost.schedule_decode(self.pim_mode, workload.layers, workload.batch, cost, fixed,
                                                    subs, pim_schedules)
                decode_s = schedule.step_s @ cost.weight
                # the rows' energy, moved by the schedule chosen where it is not blocked
                e = e + (schedule.energy_j - cost.steps["energy_j"]) @ cost.weight
            else:  # no design has PIM: every step is the NPU's
                decode_s = (cost.npu_s + cost.pim_s) @ cost.weight
            tokens = workload.batch * run.steps
            out.update(tpot_s=decode_s / run.steps, tokens_per_s=tokens / decode_s, j_per_token=e / tokens,
                       decode_energy_j=e, decode_s=decode_s)
            energy, time, macs = energy + e, time + decode_s, macs + cost.rows["macs"].sum(axis=1)
            if costs_out is not None:
                costs_out["decode"] = dataclasses.replace(cost, schedule=schedule)
        peak = self.peak_macs_per_s[:, 0, 0]
        out.update(area_mm2=self.area_mm2(), power_w=energy / time, utilization=macs / (peak * time),
                   energy_j=energy, time_s=time)
        fp = workload.footprint
        out.update(footprint_gib=np.full(len(self.designs), fp.total_bytes() / GIB),
                   capacity_gib=self.memory_capacity / GIB,
                   max_batch=max_batch(fp, *capacity_columns(self.designs, fp.weight_bytes)))
        return out

    def evaluate(self, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
                 breakdown: bool = True) -> Evaluation:
        """Metrics of the first design (the single-design use), with a per-operator table."""
        costs: dict[str, RunCost] = {}
        mappings: dict[str, dict] = {}
        metrics = self.metrics(workload, phases=phases, costs_out=costs if breakdown else None,
                               mappings_out=mappings if breakdown else None)
        operators = None
        if breakdown:
            import pandas as pd

            table = lambda phase: workload.prefill if phase == "prefill" else workload.decode.base  # noqa: E731
            schedule = costs["decode"].schedule if "decode" in costs else None
            chosen = _schedule_text(schedule, costs["decode"].weight) if schedule is not None else ""
            operators = pd.concat([pd.DataFrame(self._breakdown(phase, table(phase), cost, mappings[phase], chosen))
                                   for phase, cost in costs.items()], ignore_index=True)
        design = self.designs[0]
        peak = float(self.peak_macs_per_s[0, 0, 0])
        return Evaluation(design.name, workload.model, {k: float(v[0]) for k, v in metrics.items()}, operators,
                          self.unit_costs[0], {k: float(v[0]) for k, v in self.area_parts_mm2().items()},
                          {"macs_per_s": peak, "dram_bytes_per_s": float(self.dram_bytes_per_s[0, 0, 0])})

    def _breakdown(self, phase: str, table: OpTable, cost: RunCost, maps: dict, schedule: str = "") -> dict[str, Any]:
        """The first design's operators of ``phase``: time with its bound and mapping (of the first
        step; ``schedule``, the decode schedule chosen, on the PIM rows), energy by component, DRAM
        bytes and MACs, totals over the run (those of the run with PIM on)."""
        kinds = {v: k for k, v in KIND_CODES.items()}
        r = {k: v[0] for k, v in cost.rows.items()}
        on_pim = r["pim_s"] > 0
        bound = np.where(on_pim, "pim", np.where(r["compute_s"] >= r["dram_s"], "compute", "memory"))
        varying = maps["varying"]
        plan = {}
        for f in fields(Mapping):
            column = np.zeros(len(table.kind))
            column[~varying] = getattr(maps["fixed"], f.name)[0, 0]
            if varying.any():
                column[varying] = getattr(maps["moving"], f.name)[0, 0]
            plan[f.name] = column
        plan["act_reads"], plan["weight_reads"] = mapper.reads(plan["family"], table.cols["m"], table.cols["n"],
                                                               plan["tile_m"], plan["tile_n"])
        mapping = [self._describe(kinds[kind], plan, i, on_pim[i]) + (schedule if on_pim[i] else "")
                   for i, kind in enumerate(table.kind)]
        return {"phase": phase, "operator": table.names, "kind": [kinds[k] for k in table.kind],
                "bound": bound, "mapping": mapping, "time_s": r["npu_s"] + r["pim_s"], "energy_j": r["energy_j"],
                **{name: r[name] for name in ENERGY_PARTS}, "dram_bytes": r["dram_bytes"], "macs": r["macs"]}

    def _describe(self, kind: str, plan: dict[str, np.ndarray], i: int, on_pim: bool) -> str:
        """One operator row's mapping on the first design, in words: spread, passes, tiling."""
        if kind == "elementwise":
            return "vector unit"
        if on_pim:
            return f"PIM: all-bank GEMVs over {self.designs[0].pim.channels} channels"
        _, dim = mapper.CANDIDATES[int(plan["candidate"][i])]
        arrays, in_flight = plan["arrays"][i], plan["in_flight"][i]
        words = []
        if in_flight > 1:
            words.append(f"{in_flight:.0f} products side by side" + (f" in {plan['rounds'][i]:.0f} rounds"
                                                                      if plan["rounds"][i] > 1 else ""))
        if arrays > 1:
            words.append(f"{' and '.join(dim)} split over {arrays:.0f} arrays")
        if plan["k_passes"][i] > 1:
            words.append(f"K in {plan['k_passes'][i]:.0f} passes")
        family = int(plan["family"][i])
        tiling = mapper.FAMILIES[family]
        if family != mapper.ON_CHIP:
            tiling += f" {plan['tile_m'][i]:.0f}x{plan['tile_n'][i]:.0f} tiles"
            reads = [f"{name} read {plan[key][i]:.0f}x" for name, key in (("activations", "act_reads"),
                                                                       ("weights", "weight_reads"))
                     if plan[key][i] > 1]
            tiling += (", " + ", ".join(reads)) if reads else ", each operand read once"
            if not plan["double"][i]:
                tiling += ", single-buffered"
        words.append(tiling)
        return ", ".join(words)

    def area_parts_mm2(self) -> dict[str, np.ndarray]:
        """Silicon area of every design by component (mm²): the arrays' cells, each buffer, PIM lanes,
        and the tile's vector unit, DMA, sequencer and instruction memory (:mod:`.tile_parts`)."""
        c = {k: v[:, 0, 0] for k, v in self.cost.items()}
        pes = np.array([d.compute.rows * d.compute.cols * d.compute.arrays for d in self.designs], dtype=float)
        lanes = np.array([d.pim.lanes * d.pim.banks * d.pim.channels if d.pim.mode != "none" else 0
                          for d in self.designs], dtype=float)
        return {"arrays": c["pe_area_um2"] * pes / 1e6, "weight SRAM": c["weight_sram_area_um2"] / 1e6,
                "activation SRAM": c["act_sram_area_um2"] / 1e6, "output SRAM": c["out_sram_area_um2"] / 1e6,
                "PIM lanes": c["pim_lane_area_um2"] * lanes / 1e6, **tile_parts_mm2(self.designs)}

    def area_mm2(self) -> np.ndarray:
        """Silicon area of every design (mm²): the sum of :meth:`area_parts_mm2`."""
        return sum(self.area_parts_mm2().values())
