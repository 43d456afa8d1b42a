"""Price design points running a workload: latency, throughput, energy, area, per operator.

Many design points are priced at once: every per-design figure is an array with the design
axis first, broadcast against the workload's ``(steps, operator rows)`` columns, so a batch
of designs costs about as much numpy work as one.

Rules (each one a place where the model could be refined, so each is stated):

Compute. A matrix operator ``count x (M x K) @ (K x N)`` runs on the systolic arrays with
the exact cycle formula of the RTL array (:func:`peforge.hw.systolic.gemm_cycles`, through
:mod:`peforge.dse.cost.array`); products are spread over ``arrays`` arrays (a single product
splits its N columns over them). Integer weights or activations wider than the PE handles run
in bit slices (``ceil(bits / pe_bits)`` passes each, as Bit Fusion composes narrow units);
other formats run in one pass where the PE's format holds every value, else the design is
rejected (:mod:`peforge.dse.cost.formats`); the bit-serial PE takes the workload's weight
precision at run time (ceil(w_bits / k) cycles per beat). A reduction longer than the PE's accumulation bound (``max_reduction`` products, what
its accumulator holds with worst-case operands) runs in ``ceil(K / bound)`` passes whose
partial results the vector unit adds (each addition: a 32-bit write and read of the output
buffer and one vector op), rather than wrapping. Elementwise operators run on a vector unit
of ``cols`` lanes per array, one element per lane per cycle.

Memory. Weights and KV-cache entries come from DRAM once per step when the activations stay
on chip; otherwise the operator is tiled as a mapper would: blocks of activation rows fill
the activation buffer and blocks of weight columns the weight buffer, and of the two loop
orders (activation blocks outer: weights re-read once per activation block; weight blocks
outer: activations re-read once per weight block) the one moving fewer bytes is taken. Operator time = max(compute, DRAM) with double
buffering (the array's own fill and drain are inside its cycle formula). DRAM runs at its sustained
bandwidth: the datasheet figure times the technology's efficiency (``UnitCosts.memory_gb_per_s``).

Capacity. A run must fit the design's memory (:mod:`peforge.dse.cost.footprint`: weights, KV
cache, activations; with PIM the KV cache also fits the PIM banks); the API rejects one that
does not before pricing, and :meth:`CostModel.metrics` reports ``footprint_gib``,
``capacity_gib`` and ``max_batch`` for every design.

PIM. With PIM, decode attention (score and context GEMVs against the KV cache, which lives
in the PIM memory) runs on the banks in all-bank mode with the PimChannel's exact GEMV
cycle formula, GEMVs spread over channels. ``blocked``: the NPU waits for PIM, step =
NPU + PIM. ``concurrent`` (NeuPIMs): two sub-batches pipeline through the layers, the NPU's
work on one overlapping PIM attention of the other (dual row buffers let the NPU's reads
proceed meanwhile): step = max(2 x NPU(B/2), PIM(B)) + one layer's pipeline fill. Each
sub-batch reads the weights again, so this wins only where PIM attention is a large share.

Energy = MACs x pJ/MAC (characterized, x slices) + SRAM bytes x pJ/bit (each buffer at its
size) + DRAM bytes x pJ/bit + PIM bytes x internal pJ/bit + PIM MACs x pJ/MAC + vector ops
x pJ/op. Leakage is not modelled. Area = PEs (characterized per-PE area x R x C x arrays) +
SRAM (tech preset) + PIM lanes. Power = energy / time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np

from ...hw.pim import gemv_cycles
from ..design.point import DesignPoint
from .array import array_shapes, gemm_cycles
from .footprint import GIB, capacity_columns, max_batch
from .formats import operand_passes
from .units import UnitCosts
from .workload import KIND_CODES, OpTable, Workload

ATTENTION, ELEMENTWISE = KIND_CODES["attention"], KIND_CODES["elementwise"]
PSUM_BYTES = 4  # partial sums travel between K folds as 32-bit words
PIM_MODES = {"none": 0, "blocked": 1, "concurrent": 2}


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


ENERGY_PARTS = {"mac_j": "array MACs", "weight_sram_j": "weight SRAM", "act_sram_j": "activation SRAM",
                "out_sram_j": "output SRAM", "dram_j": "DRAM", "pim_j": "PIM", "vector_j": "vector unit"}


@dataclass(frozen=True)
class Mapping:
    """How operator rows run on each design, arrays broadcasting to ``(designs, steps, rows)``:
    ``k_passes`` passes over K (the accumulation bound), ``per_array`` products each array
    computes in turn, ``split`` arrays sharing one product's N columns, ``fits`` whether the
    activations stay on chip (weights or KV stream from DRAM once), and for tiled rows how often
    the activations (``act_reads``) and the weights or KV (``weight_reads``) are read from DRAM."""

    k_passes: np.ndarray
    per_array: np.ndarray
    split: np.ndarray
    fits: np.ndarray
    act_reads: np.ndarray
    weight_reads: np.ndarray


@dataclass(frozen=True)
class RunCost:
    """A run of steps: per-row totals over the run ``(designs, rows)``, and NPU / PIM time of
    each step ``(designs, steps)`` (s)."""

    rows: dict[str, np.ndarray]
    npu_s: np.ndarray
    pim_s: np.ndarray
    weight: np.ndarray  # steps each column of npu_s / pim_s stands for


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
    """What the design-independent part of pricing derives from operator rows ``(steps, rows)``."""

    m: np.ndarray
    k: np.ndarray
    n: np.ndarray
    count: np.ndarray
    matrix: np.ndarray
    attention: np.ndarray
    macs: np.ndarray
    act_bytes: np.ndarray
    act_bytes_per_product: np.ndarray
    kv_bytes: np.ndarray
    weight_bytes: np.ndarray
    elements: np.ndarray
    vector_ops: np.ndarray
    w_bits: np.ndarray
    act_bits: int
    formats: tuple[tuple[str, str], ...]  # tensor role -> number format (Workload.formats)
    streamed: np.ndarray  # the operand read from DRAM once per step: weights, or KV for attention
    kv_writes: np.ndarray
    a_in: np.ndarray  # activation bytes read by the arrays
    results: np.ndarray  # activation bytes written back
    results_sram: np.ndarray
    psum_unit: np.ndarray  # bytes of one K fold's partial sums, written and read back
    k_a_bytes: np.ndarray  # one row of activations (bytes)
    k_b_bytes: np.ndarray  # one column of weights / KV (bytes)


def _rows(cols: dict[str, np.ndarray], kind: np.ndarray, workload: Workload, batch_scale: float) -> Rows:
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
    a_in = m * k * count * a_bytes
    return Rows(
        m=m, k=k, n=n, count=count, matrix=matrix, attention=attention, macs=macs, act_bytes=act_bytes,
        act_bytes_per_product=act_bytes / np.maximum(count, 1), kv_bytes=kv_bytes, weight_bytes=weight_bytes,
        elements=cols["elements"] * batch_scale,
        vector_ops=np.where(matrix, 0.0, cols["ops"] * batch_scale), w_bits=b_bits, act_bits=workload.act_bits,
        formats=tuple(workload.formats.items()),
        streamed=weight_bytes + np.where(attention, kv_bytes, 0.0), kv_writes=np.where(attention, 0.0, kv_bytes),
        a_in=a_in, results=np.maximum(act_bytes - a_in, 0.0), results_sram=m * n * count * a_bytes,
        psum_unit=m * n * count * PSUM_BYTES * 2,
        k_a_bytes=np.maximum(k * a_bytes, 1), k_b_bytes=np.maximum(k * b_bits / 8, 1))


@dataclass(frozen=True)
class _RunPlan:
    """How a run of steps is priced: the rows priced once, those priced per sampled step."""

    varying: np.ndarray
    weight: np.ndarray  # steps each sample stands for
    fixed: Rows
    moving: Rows | None


_PLANS: dict[tuple, tuple[Any, _RunPlan]] = {}


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
    fixed = _rows({c: v[None, ~varying] for c, v in table.cols.items()}, table.kind[~varying], workload,
                  batch_scale)
    moving = None
    if varying.any():
        t = (starts + (weight - 1) / 2)[:, None]  # the chunk's mean step: exact where cost is linear in t
        grown = {c: v[None, varying] + slope[c][None, varying] * t for c, v in table.cols.items()}
        moving = _rows(grown, table.kind[varying], workload, batch_scale)
    plan = _RunPlan(varying, weight, fixed, moving)
    if len(_PLANS) > 256:
        _PLANS.clear()
    _PLANS[key] = ((table, workload), plan)
    return plan


def _column(values: Sequence[float]) -> np.ndarray:
    """Per-design values as a ``(designs, 1, 1)`` array that broadcasts over steps and rows."""
    return np.asarray(values, dtype=np.float64)[:, None, None]


class _PimArrays:
    """The PIM parameters of every design, as columns (what :func:`peforge.hw.pim.gemv_cycles` reads)."""

    GEMV = ("banks", "lanes", "cols", "t_rcd", "t_rp", "t_ras", "t_ccd")

    def __init__(self, designs: Sequence[DesignPoint]):
        for name in ("channels", "clock_mhz", *self.GEMV):
            setattr(self, name, _column([getattr(d.pim, name) for d in designs]))

    def gemv_cycles(self, out_rows, in_cols) -> np.ndarray:
        """Cycles of a GEMV with W of ``out_rows x in_cols`` words on one channel, all banks together."""
        return gemv_cycles(out_rows=out_rows, in_cols=in_cols, **{n: getattr(self, n) for n in self.GEMV})


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
    vector_bits = compute.rows * pe.lanes * pe.a_bits
    if design.sram.activation_kib * 1024 * 8 < 2 * vector_bits:
        raise ValueError(f"{design.name}: sram.activation_kib={design.sram.activation_kib} cannot hold two "
                         f"activation vectors of the array's {compute.rows} rows")


class CostModel:
    """Design points with their unit costs, ready to price workloads together.

    ``designs`` and ``costs`` are parallel lists; each design must pass :func:`check_design`
    (``checked=True``: the caller has checked them).
    """

    def __init__(self, designs: Sequence[DesignPoint], costs: Sequence[UnitCosts], *, checked: bool = False):
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
        self.cols = col(lambda d: d.compute.cols)
        self.clock_hz = col(lambda d: d.compute.clock_mhz * 1e6)
        self.dram_bytes_per_s = self.cost["memory_gb_per_s"] * col(lambda d: d.memory.units) * 1e9
        self.weight_sram = col(lambda d: d.sram.weight_kib * 1024)
        self.act_sram = col(lambda d: d.sram.activation_kib * 1024)
        self.out_sram = col(lambda d: d.sram.output_kib * 1024)
        self.pim_mode = col(lambda d: PIM_MODES[d.pim.mode])
        self.any_pim = bool((self.pim_mode > 0).any())
        self.pim = _PimArrays(self.designs)
        self.memory_capacity, self.kv_capacity = capacity_columns(self.designs)  # bytes, (designs,)
        self._passes: dict[tuple, dict[str, np.ndarray]] = {}

    def format_passes(self, formats: tuple[tuple[str, str], ...]) -> dict[str, np.ndarray]:
        """Passes of each tensor role on every design (``(designs, 1, 1)`` columns) for the
        workload's tensor ``formats``; ``ValueError`` for the first design that cannot run one
        (:func:`peforge.dse.cost.formats.operand_passes`)."""
        if formats not in self._passes:
            per_design = [operand_passes(d, dict(formats)) for d in self.designs]
            self._passes[formats] = {role: _column([p[role] for p in per_design]) for role in per_design[0]}
        return self._passes[formats]

    @property
    def peak_macs_per_s(self) -> np.ndarray:
        """MACs per second of every design's arrays with every cell busy: the compute roof."""
        return self.shape.peak_macs_per_cycle * self.arrays * self.clock_hz

    # --- per step --------------------------------------------------------------------------

    def price(self, r: Rows, use_pim: bool = False) -> StepCost:
        """Cost of the operator rows ``r`` (arrays ``(steps, rows)``) for every design."""
        c, shape = self.cost, self.shape
        m, k, n, count, matrix, attention = r.m, r.k, r.n, r.count, r.matrix, r.attention

        # Passes per operand (bit slices of wide integers; formats the PE cannot run are rejected).
        per_role = self.format_passes(r.formats)
        passes = np.where(attention, per_role["kv"], per_role["weight"]) * per_role["activation"]
        slice_w_bits = np.minimum(r.w_bits, shape.max_w_bits)

        plan = self.mapping(r)
        merges = (plan.k_passes - 1) * m * n * count  # partial-result additions of K passes

        # Compute cycles on the arrays.
        n_eff = np.where(count < self.arrays, np.ceil(n / plan.split), n)
        array_cycles = (gemm_cycles(shape, m, np.ceil(k / plan.k_passes), n_eff, slice_w_bits)
                        * plan.per_array * passes * plan.k_passes)
        vector_cycles = np.ceil(r.elements / (self.cols * self.arrays))
        compute_s = np.where(matrix, array_cycles, vector_cycles) / self.clock_hz

        # DRAM traffic (see the module docstring).
        tiled = r.a_in * plan.act_reads + r.streamed * plan.weight_reads + r.results
        dram_bytes = np.where(matrix, np.where(plan.fits, r.streamed, tiled),
                              r.weight_bytes + np.where(plan.fits, 0.0, r.act_bytes)) + r.kv_writes

        # PIM: each query row of a decode attention product is a GEMV y = x . B, i.e. W = B^T of
        # N rows x K columns, on one channel in all-bank mode; GEMVs are spread over the channels.
        on_pim = attention & (self.pim_mode > 0) & use_pim
        if use_pim and self.any_pim:
            rounds = np.ceil(count * m / self.pim.channels)
            pim_s = np.where(on_pim, self.pim.gemv_cycles(n, k) * rounds / (self.pim.clock_mhz * 1e6), 0.0)
            pim_pj = r.kv_bytes * 8 * c["pim_pj_per_bit"] + r.macs * c["pim_pj_per_mac"]
            dram_bytes = np.where(on_pim, 0.0, dram_bytes)
        else:
            pim_s = pim_pj = 0.0
        dram_s = dram_bytes / self.dram_bytes_per_s
        npu_s = np.where(on_pim, 0.0, np.maximum(compute_s, dram_s))

        # Energy by component (pJ): a row on PIM spends none on the NPU's arrays and buffers.
        npu = lambda pj: np.where(on_pim, 0.0, pj) * 1e-12  # noqa: E731
        sram = self._sram_pj(r)
        parts = dict(
            mac_j=npu(r.macs * passes * c["pj_per_mac"]),
            weight_sram_j=npu(sram["weight"]), act_sram_j=npu(sram["act"]),
            out_sram_j=npu(sram["out"] + merges * 2 * PSUM_BYTES * 8 * c["out_sram_pj_per_bit"]),
            dram_j=npu(dram_bytes * 8 * c["memory_pj_per_bit"]),
            pim_j=np.where(on_pim, pim_pj, 0.0) * 1e-12,
            vector_j=(r.vector_ops + np.where(on_pim, 0.0, merges)) * c["vector_pj_per_op"] * 1e-12)
        shape_of = np.broadcast(npu_s, r.macs, self.arrays).shape
        full = lambda a: np.broadcast_to(a, shape_of)  # noqa: E731
        return StepCost(full(npu_s), full(pim_s), full(compute_s), full(dram_s), full(sum(parts.values())),
                        full(dram_bytes), full(r.macs), **{name: full(v) for name, v in parts.items()})

    def mapping(self, r: Rows) -> Mapping:
        """How each of the rows ``r`` runs on each design (see :class:`Mapping` and the module docstring)."""
        shape, matrix = self.shape, r.matrix
        k_passes = np.where(matrix, np.maximum(1, np.ceil(r.k / shape.max_reduction)), 1.0)
        per_array = np.ceil(r.count / self.arrays)
        split = np.maximum(1, np.floor(self.arrays / np.maximum(r.count, 1)))
        fits = r.act_bytes_per_product <= self.act_sram + self.out_sram
        rows_block = np.maximum(1, np.floor(self.act_sram / r.k_a_bytes))
        cols_block = np.maximum(1, np.floor(self.weight_sram / r.k_b_bytes))
        # of the two loop orders the one moving fewer bytes: activation blocks outer (weights
        # re-read once per block) or weight blocks outer (activations re-read once per block)
        weights_again = np.ceil(r.m / rows_block)
        acts_again = np.ceil(r.n / cols_block)
        act_outer = r.a_in + r.streamed * weights_again <= r.a_in * acts_again + r.streamed
        act_reads = np.where(fits | act_outer, 1.0, acts_again)
        weight_reads = np.where(fits | ~act_outer, 1.0, weights_again)
        return Mapping(k_passes, per_array, split, fits, act_reads, weight_reads)

    def _sram_pj(self, r: Rows) -> dict[str, np.ndarray]:
        """Energy (pJ) of the arrays' SRAM reads and writes by dataflow (folds re-read operands),
        each buffer at its own pJ/bit: ``weight``, ``act`` and ``out``."""
        shape, c = self.shape, self.cost
        a_in = r.a_in * np.ceil(r.n / shape.cols)
        k_folds = np.ceil(r.k / (shape.rows * shape.lanes))
        out = r.results_sram + np.where(shape.ws, r.psum_unit * np.maximum(k_folds - 1, 0), 0.0)
        b_in = r.streamed * np.where(shape.ws, 1.0, np.ceil(r.m / shape.rows))
        return {"act": 8 * a_in * c["act_sram_pj_per_bit"], "weight": 8 * b_in * c["weight_sram_pj_per_bit"],
                "out": 8 * out * c["out_sram_pj_per_bit"]}

    # --- whole runs ------------------------------------------------------------------------

    def price_run(self, table: OpTable, workload: Workload, *, steps: int = 1, slope: dict | None = None,
                  use_pim: bool = False, batch_scale: float = 1.0, stride: int = 1) -> RunCost:
        """Cost of ``steps`` steps of ``table`` whose columns grow by ``slope`` per step. Rows that
        do not change are priced once; the others (decode attention) at every step, or with
        ``stride`` > 1 once per chunk of ``stride`` steps at the chunk's mean step (exact where a
        row's cost is linear in the step; ``stride`` 1: exact)."""
        plan = _run_plan(table, workload, steps, slope, batch_scale, stride)
        fixed = self.price(plan.fixed, use_pim)
        moving = self.price(plan.moving, use_pim) if plan.moving is not None else None
        designs, varying = len(self.designs), plan.varying
        rows: dict[str, np.ndarray] = {}
        for f in fields(StepCost):
            column = np.empty((designs, len(table.kind)))
            column[:, ~varying] = getattr(fixed, f.name)[:, 0, :] * steps
            if moving is not None:
                column[:, varying] = np.einsum("dsr,s->dr", getattr(moving, f.name), plan.weight)
            rows[f.name] = column
        npu = fixed.npu_s.sum(axis=-1)  # (designs, 1)
        pim = fixed.pim_s.sum(axis=-1)
        if moving is not None:
            npu = npu + moving.npu_s.sum(axis=-1)
            pim = pim + moving.pim_s.sum(axis=-1)
        shape = (designs, len(plan.weight))
        return RunCost(rows, np.broadcast_to(npu, shape), np.broadcast_to(pim, shape), plan.weight)

    def metrics(self, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
                stride: int = 1, costs_out: dict | None = None) -> dict[str, np.ndarray]:
        """Metrics of every design, arrays of shape ``(designs,)``. ``stride`` > 1 prices decode
        attention at every ``stride``-th step only (for large batches of designs; see
        :meth:`price_run`). ``costs_out`` receives the :class:`RunCost` of each phase."""
        out: dict[str, np.ndarray] = {}
        energy = time = macs = 0.0
        if "prefill" in phases:
            cost = self.price_run(workload.prefill, workload)
            ttft = cost.npu_s[:, 0] + cost.pim_s[:, 0]
            e = cost.rows["energy_j"].sum(axis=1)
            out.update(ttft_s=ttft, prefill_tokens_per_s=workload.batch * workload.seq / ttft, prefill_energy_j=e)
            energy, time, macs = energy + e, time + ttft, macs + cost.rows["macs"].sum(axis=1)
            if costs_out is not None:
                costs_out["prefill"] = cost
        if "decode" in phases:
            run = workload.decode
            cost = self.price_run(run.base, workload, steps=run.steps, slope=run.slope, use_pim=True,
                                  stride=stride)
            steps = cost.npu_s + cost.pim_s
            concurrent = self.pim_mode[:, :, 0] == PIM_MODES["concurrent"]
            if concurrent.any() and workload.batch > 1:
                half = self.price_run(run.base, workload, steps=run.steps, slope=run.slope, use_pim=True,
                                      batch_scale=0.5, stride=stride).npu_s
                fill = np.minimum(half, cost.pim_s / 2) / workload.layers
                steps = np.where(concurrent, np.maximum(2 * half, cost.pim_s) + fill, steps)
            decode_s = steps @ cost.weight
            e = cost.rows["energy_j"].sum(axis=1)
            tokens = workload.batch * run.steps
            out.update(tpot_s=decode_s / run.steps, tokens_per_s=tokens / decode_s, j_per_token=e / tokens,
                       decode_energy_j=e)
            energy, time, macs = energy + e, time + decode_s, macs + cost.rows["macs"].sum(axis=1)
            if costs_out is not None:
                costs_out["decode"] = cost
        peak = self.peak_macs_per_s[:, 0, 0]
        out.update(area_mm2=self.area_mm2(), power_w=energy / time, utilization=macs / (peak * time),
                   energy_j=energy, time_s=time)
        fp = workload.footprint
        out.update(footprint_gib=np.full(len(self.designs), fp.total_bytes() / GIB),
                   capacity_gib=self.memory_capacity / GIB,
                   max_batch=max_batch(fp, self.memory_capacity, self.kv_capacity))
        return out

    def evaluate(self, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
                 breakdown: bool = True) -> Evaluation:
        """Metrics of the first design (the single-design use), with a per-operator table."""
        costs: dict[str, RunCost] = {}
        metrics = self.metrics(workload, phases=phases, costs_out=costs if breakdown else None)
        operators = None
        if breakdown:
            import pandas as pd

            tables = {"prefill": workload.prefill, "decode": workload.decode.base}
            operators = pd.concat([pd.DataFrame(self._breakdown(phase, tables[phase], cost, workload))
                                   for phase, cost in costs.items()], ignore_index=True)
        design = self.designs[0]
        peak = float(self.peak_macs_per_s[0, 0, 0])
        return Evaluation(design.name, workload.model, {k: float(v[0]) for k, v in metrics.items()}, operators,
                          self.unit_costs[0], {k: float(v[0]) for k, v in self.area_parts_mm2().items()},
                          {"macs_per_s": peak, "dram_bytes_per_s": float(self.dram_bytes_per_s[0, 0, 0])})

    def _breakdown(self, phase: str, table: OpTable, cost: RunCost, workload: Workload) -> dict[str, Any]:
        """The first design's operators of ``phase``: time with its bound and mapping, energy by
        component, DRAM bytes and MACs, totals over the run."""
        kinds = {v: k for k, v in KIND_CODES.items()}
        r = {k: v[0] for k, v in cost.rows.items()}
        on_pim = r["pim_s"] > 0
        bound = np.where(on_pim, "pim", np.where(r["compute_s"] >= r["dram_s"], "compute", "memory"))
        first = _rows({c: v[None, :] for c, v in table.cols.items()}, table.kind, workload, 1.0)
        plan = {f.name: np.broadcast_to(getattr(self.mapping(first), f.name), (len(self.designs), 1, len(table.kind)))[0, 0]
                for f in fields(Mapping)}
        mapping = [self._describe(kinds[kind], plan, i, on_pim[i]) for i, kind in enumerate(table.kind)]
        return {"phase": phase, "operator": table.names, "kind": [kinds[k] for k in table.kind],
                "bound": bound, "mapping": mapping, "time_s": r["npu_s"] + r["pim_s"], "energy_j": r["energy_j"],
                **{name: r[name] for name in ENERGY_PARTS}, "dram_bytes": r["dram_bytes"], "macs": r["macs"]}

    def _describe(self, kind: str, plan: dict[str, np.ndarray], i: int, on_pim: bool) -> str:
        """One operator row's mapping on the first design, in words."""
        if kind == "elementwise":
            return "vector unit"
        if on_pim:
            return f"PIM: all-bank GEMVs over {self.designs[0].pim.channels} channels"
        words = []
        if plan["split"][i] > 1:
            words.append(f"N split over {plan['split'][i]:.0f} arrays")
        elif plan["per_array"][i] > 1:
            words.append(f"{plan['per_array'][i]:.0f} products per array")
        if plan["k_passes"][i] > 1:
            words.append(f"K in {plan['k_passes'][i]:.0f} passes")
        if plan["fits"][i]:
            words.append("operands on chip")
        elif plan["weight_reads"][i] > 1:
            words.append(f"tiled, weights read {plan['weight_reads'][i]:.0f}x")
        elif plan["act_reads"][i] > 1:
            words.append(f"tiled, activations read {plan['act_reads'][i]:.0f}x")
        else:
            words.append("tiled, each operand read once")
        return ", ".join(words)

    def area_parts_mm2(self) -> dict[str, np.ndarray]:
        """Silicon area of every design by component (mm²): the arrays' cells, each buffer, PIM lanes."""
        c = {k: v[:, 0, 0] for k, v in self.cost.items()}
        pes = np.array([d.compute.rows * d.compute.cols * d.compute.arrays for d in self.designs], dtype=float)
        lanes = np.array([d.pim.lanes * d.pim.banks * d.pim.channels if d.pim.mode != "none" else 0
                          for d in self.designs], dtype=float)
        return {"arrays": c["pe_area_um2"] * pes / 1e6, "weight SRAM": c["weight_sram_area_um2"] / 1e6,
                "activation SRAM": c["act_sram_area_um2"] / 1e6, "output SRAM": c["out_sram_area_um2"] / 1e6,
                "PIM lanes": c["pim_lane_area_um2"] * lanes / 1e6}

    def area_mm2(self) -> np.ndarray:
        """Silicon area of every design (mm²): the sum of :meth:`area_parts_mm2`."""
        return sum(self.area_parts_mm2().values())
