"""Price a design point running a workload: latency, throughput, energy, area, per operator.

Rules (each one a place where the model could be refined, so each is stated):

Compute. A matrix operator ``count x (M x K) @ (K x N)`` runs on the systolic arrays with
the exact cycle formula of the RTL array (:mod:`peforge.dse.arraymodel`); products are
spread over ``arrays`` arrays (a single product splits its N columns over them). Weights or
activations wider than the PE handles run in bit slices (``ceil(bits / pe_bits)`` passes
each, as Bit Fusion composes narrow units); the bit-serial PE takes the workload's weight
precision at run time (ceil(w_bits / k) cycles per beat). Elementwise operators run on a
vector unit of ``cols`` lanes per array, one element per lane per cycle.

Memory. Weights and KV-cache entries come from DRAM once per step when one operand stays
on chip; activations stay on chip when an operator's inputs and outputs fit the activation
and output buffers, else they go through DRAM, and when neither operand fits, the loop
order with less DRAM traffic is chosen (re-read activations per weight block, or weights
per activation block), as a mapper would. Operator time = max(compute, DRAM) with double
buffering (the array's own fill and drain are inside its cycle formula).

PIM. With PIM, decode attention (score and context GEMVs against the KV cache, which lives
in the PIM memory) runs on the banks in all-bank mode with the PimChannel's exact GEMV
cycle formula, heads spread over channels. ``blocked``: the NPU waits for PIM, step =
NPU + PIM. ``concurrent`` (NeuPIMs): two sub-batches pipeline through the layers, the NPU's
work on one overlapping PIM attention of the other (dual row buffers let the NPU's reads
proceed meanwhile): step = max(2 x NPU(B/2), PIM(B)) + one layer's pipeline fill. Each
sub-batch reads the weights again, so this wins only where PIM attention is a large share.

Energy = MACs x pJ/MAC (characterized, x slices) + SRAM bytes x pJ/bit (by buffer size)
+ DRAM bytes x pJ/bit + PIM bytes x internal pJ/bit + PIM MACs x pJ/MAC + vector ops x
pJ/op. Leakage is not modelled. Area = PEs (characterized per-PE area x R x C x arrays) +
SRAM (tech preset) + PIM lanes. Power = energy / time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .accelerator import DesignPoint
from .arraymodel import ArrayShape, array_shape, gemm_cycles
from .costs import UnitCosts
from .pimmodel import pim_gemv_cycles
from .workload import KIND_CODES, OpTable, Workload

GEMM, GEMV, ATTENTION, ELEMENTWISE = (KIND_CODES[k] for k in ("gemm", "gemv", "attention", "elementwise"))
PSUM_BYTES = 4  # partial sums travel between K folds as 32-bit words


@dataclass(frozen=True)
class StepCost:
    """Cost of each operator row of one or more steps: arrays of shape ``(steps, rows)``."""

    npu_s: np.ndarray
    pim_s: np.ndarray
    compute_s: np.ndarray
    dram_s: np.ndarray
    energy_j: np.ndarray
    dram_bytes: np.ndarray
    macs: np.ndarray


@dataclass(frozen=True)
class RunCost:
    """A run of steps: per-row totals over the run, and NPU / PIM time of each step (s)."""

    rows: dict[str, np.ndarray]
    npu_s: np.ndarray
    pim_s: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """What a design point achieves on a workload."""

    design: str
    model: str
    metrics: dict[str, float]
    operators: Any  # pandas DataFrame (phase, operator, kind, bound, time_s, energy_j, dram_bytes, macs) or None


def _passes(op_bits: int, pe_bits: int) -> int:
    return -(-op_bits // pe_bits)


class CostModel:
    """A design point with its unit costs, ready to price workloads."""

    def __init__(self, design: DesignPoint, costs: UnitCosts):
        self.design = design
        self.costs = costs
        self.shape: ArrayShape = array_shape(design.compute)
        compute = design.compute
        if compute.clock_mhz > costs.fmax_mhz:
            raise ValueError(f"{design.name}: compute.clock_mhz={compute.clock_mhz:g} exceeds the "
                             f"characterized Fmax of the {compute.pe} PE, {costs.fmax_mhz:.0f} MHz")
        self.clock_hz = compute.clock_mhz * 1e6
        self.dram_bytes_per_s = costs.memory_gb_per_s * design.memory.units * 1e9
        sram = design.sram
        tile = self.shape.rows * self.shape.cols * self.shape.k_per_cell
        if sram.weight_kib * 1024 * 8 < 2 * tile * self.shape.max_w_bits:
            raise ValueError(f"{design.name}: sram.weight_kib={sram.weight_kib} cannot double-buffer one "
                             f"{self.shape.rows}x{self.shape.cols} weight tile ({2 * tile * self.shape.max_w_bits / 8 / 1024:.1f} KiB)")
        if sram.activation_kib * 1024 * 8 < 2 * self.shape.rows * self.shape.k_per_cell * self.shape.a_bits:
            raise ValueError(f"{design.name}: sram.activation_kib={sram.activation_kib} cannot hold one "
                             f"activation vector for the array's {self.shape.rows} rows")
        self.weight_sram = sram.weight_kib * 1024
        self.act_sram = sram.activation_kib * 1024
        self.out_sram = sram.output_kib * 1024

    # --- per step --------------------------------------------------------------------------

    def price(self, cols: dict[str, np.ndarray], kind: np.ndarray, workload: Workload, *,
              use_pim: bool, batch_scale: float = 1.0) -> StepCost:
        """Cost of the operator rows ``cols`` (arrays ``(steps, rows)``); ``batch_scale`` < 1
        prices a sub-batch (the matrix operators' M and all per-token work shrink)."""
        d, c, shape = self.design, self.costs, self.shape
        m, k, n, count = cols["m"], cols["k"], cols["n"], cols["count"]
        matrix = kind != ELEMENTWISE
        attention = kind == ATTENTION
        if batch_scale != 1.0:
            # sub-batch: GEMM rows (M = tokens) shrink; attention products (count = heads x seqs) shrink
            m = np.where(matrix & ~attention, np.ceil(m * batch_scale), m)
            count = np.where(attention, np.ceil(count * batch_scale), count)
        scale_rows = np.where(matrix & ~attention, m / np.maximum(cols["m"], 1), count / np.maximum(cols["count"], 1))
        macs = cols["macs"] * np.where(matrix, scale_rows, 1.0)
        act_bytes = cols["act_bytes"] * np.where(matrix, scale_rows, batch_scale)
        kv_bytes = cols["kv_bytes"] * np.where(attention, scale_rows, batch_scale)
        weight_bytes = cols["weight_bytes"]
        elements = cols["elements"] * batch_scale
        ops = cols["ops"] * batch_scale

        # Bit slicing where the operands are wider than the PE's.
        w_bits = np.where(attention, workload.kv_bits, workload.weight_bits)
        passes_w = np.ceil(w_bits / shape.max_w_bits)
        passes_a = _passes(workload.act_bits, shape.a_bits)
        slice_w_bits = np.minimum(w_bits, shape.max_w_bits)

        # Compute cycles on the arrays.
        arrays = d.compute.arrays
        per_array = np.ceil(count / arrays)
        split = np.maximum(1, np.floor(arrays / np.maximum(count, 1)))
        n_eff = np.where(count < arrays, np.ceil(n / split), n)
        array_cycles = gemm_cycles(shape, m, k, n_eff, slice_w_bits) * per_array * passes_w * passes_a
        vector_cycles = np.ceil(elements / (d.compute.cols * arrays))
        cycles = np.where(matrix, array_cycles, vector_cycles)
        compute_s = cycles / self.clock_hz

        # DRAM traffic. A matrix operator is tiled as a mapper would: a block of m_t rows of
        # activations (all K) stays in the activation buffer and a block of n_t columns of the
        # streamed operand (weights, or KV for attention) in the weight buffer; activations are
        # re-read once per weight block and the streamed operand once per activation block.
        # Whatever fits whole is read once. Elementwise rows read their weights once and spill
        # activations only when they do not fit on chip.
        streamed = weight_bytes + np.where(attention, kv_bytes, 0.0)
        kv_writes = np.where(attention, 0.0, kv_bytes)
        a_bytes = workload.act_bits / 8
        b_bytes = np.where(attention, workload.kv_bits, workload.weight_bits) / 8
        a_in = m * k * count * a_bytes
        out = act_bytes - a_in  # results written (and any other activation traffic)
        m_t = np.maximum(1, np.floor(self.act_sram / np.maximum(k * a_bytes, 1)))
        n_t = np.maximum(1, np.floor(self.weight_sram / np.maximum(k * b_bytes, 1)))
        fits = act_bytes / np.maximum(count, 1) <= self.act_sram + self.out_sram
        tiled = a_in * np.ceil(n / n_t) + streamed * np.ceil(m / m_t) + np.maximum(out, 0.0)
        matrix_dram = np.where(fits, streamed, tiled)
        ew_dram = weight_bytes + np.where(fits, 0.0, act_bytes)
        dram_bytes = np.where(matrix, matrix_dram, ew_dram) + kv_writes
        dram_s = dram_bytes / self.dram_bytes_per_s

        # PIM: decode attention on the banks.
        on_pim = attention & use_pim
        pim_s = np.zeros_like(compute_s)
        pim_energy = np.zeros_like(compute_s)
        if use_pim:
            # Each query row is a GEMV y = x . B, i.e. W = B^T of N rows x K columns, run on one
            # channel in all-bank mode; GEMVs are spread over the channels.
            p = d.pim
            rounds = np.ceil(count * m / p.channels)
            pim_cycles = pim_gemv_cycles(p, n, k) * rounds
            pim_s = np.where(on_pim, pim_cycles / (p.clock_mhz * 1e6), 0.0)
            pim_energy = np.where(on_pim, kv_bytes * 8 * c.pim_pj_per_bit + macs * c.pim_pj_per_mac, 0.0) * 1e-12
        npu_s = np.where(on_pim, 0.0, np.maximum(compute_s, dram_s))
        dram_bytes = np.where(on_pim, 0.0, dram_bytes)

        # Energy.
        mac_pj = macs * passes_w * passes_a * c.pj_per_mac
        sram_pj = self._sram_pj(m, k, n, count, attention, workload, weight_bytes, kv_bytes)
        dram_pj = dram_bytes * 8 * c.memory_pj_per_bit
        vector_pj = np.where(matrix, 0.0, ops) * c.vector_pj_per_op
        npu_energy = np.where(on_pim, 0.0, mac_pj + sram_pj + dram_pj) + vector_pj
        energy_j = npu_energy * 1e-12 + pim_energy
        return StepCost(npu_s, pim_s, compute_s, dram_s, energy_j, dram_bytes, macs)

    def _sram_pj(self, m, k, n, count, attention, workload: Workload, weight_bytes, kv_bytes):
        """Energy (pJ) of the arrays' SRAM reads and writes, by dataflow (folds re-read operands),
        each buffer at its own pJ/bit."""
        shape, c = self.shape, self.costs
        a_bytes = workload.act_bits / 8
        a_in = m * k * count * a_bytes
        out = m * n * count * a_bytes
        b_in = weight_bytes + np.where(attention, kv_bytes, 0.0)
        col_folds = np.ceil(n / shape.cols)
        if shape.dataflow == "ws":
            k_folds = np.ceil(k / (shape.rows * shape.k_per_cell))
            out = out + m * n * count * PSUM_BYTES * 2 * np.maximum(k_folds - 1, 0)
        else:
            b_in = b_in * np.ceil(m / shape.rows)
        return 8 * (a_in * col_folds * c.act_sram_pj_per_bit + b_in * c.weight_sram_pj_per_bit
                    + out * c.out_sram_pj_per_bit)

    # --- whole run -------------------------------------------------------------------------

    def price_run(self, table: OpTable, workload: Workload, *, steps: int = 1, slope: dict | None = None,
                  use_pim: bool = False, batch_scale: float = 1.0) -> RunCost:
        """Cost of ``steps`` steps of ``table`` whose columns grow by ``slope`` per step. Rows that
        do not change are priced once; the others (decode attention) at every step."""
        varying = np.zeros(len(table.kind), dtype=bool)
        if slope is not None and steps > 1:
            varying = np.any([slope[c] != 0 for c in slope], axis=0)
        fixed = self.price({c: v[None, ~varying] for c, v in table.cols.items()}, table.kind[~varying],
                           workload, use_pim=use_pim, batch_scale=batch_scale)
        t = np.arange(steps, dtype=np.float64)[:, None]
        grown = {c: v[None, varying] + slope[c][None, varying] * t for c, v in table.cols.items()} \
            if varying.any() else None
        moving = self.price(grown, table.kind[varying], workload, use_pim=use_pim, batch_scale=batch_scale) \
            if grown is not None else None
        rows: dict[str, np.ndarray] = {}
        for name in StepCost.__dataclass_fields__:
            column = np.zeros(len(table.kind))
            column[~varying] = getattr(fixed, name)[0] * steps
            if moving is not None:
                column[varying] = getattr(moving, name).sum(axis=0)
            rows[name] = column
        npu = fixed.npu_s.sum() + (moving.npu_s.sum(axis=1) if moving is not None else np.zeros(steps))
        pim = fixed.pim_s.sum() + (moving.pim_s.sum(axis=1) if moving is not None else np.zeros(steps))
        return RunCost(rows, np.broadcast_to(npu, (steps,)), np.broadcast_to(pim, (steps,)))

    def evaluate(self, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
                 breakdown: bool = True) -> Evaluation:
        """Metrics of the run; ``breakdown=False`` skips the per-operator table (faster, for search)."""
        d = self.design
        use_pim = d.pim.mode != "none"
        metrics: dict[str, float] = {}
        frames = []
        total_energy = total_time = total_macs = 0.0
        if "prefill" in phases:
            cost = self.price_run(workload.prefill, workload)
            ttft = float(cost.npu_s[0] + cost.pim_s[0])
            energy = float(cost.rows["energy_j"].sum())
            metrics.update(ttft_s=ttft, prefill_energy_j=energy,
                           prefill_tokens_per_s=workload.batch * workload.seq / ttft)
            if breakdown:
                frames.append(self._breakdown("prefill", workload.prefill, cost))
            total_energy += energy
            total_time += ttft
            total_macs += float(cost.rows["macs"].sum())
        if "decode" in phases:
            run = workload.decode
            cost = self.price_run(run.base, workload, steps=run.steps, slope=run.slope, use_pim=use_pim)
            if d.pim.mode == "concurrent" and workload.batch > 1:
                # NeuPIMs sub-batch interleaving: two sub-batches pipeline through the layers.
                half = self.price_run(run.base, workload, steps=run.steps, slope=run.slope, use_pim=True,
                                      batch_scale=0.5).npu_s
                fill = np.minimum(half, cost.pim_s / 2) / workload.layers
                step_times = np.maximum(2 * half, cost.pim_s) + fill
            else:
                step_times = cost.npu_s + cost.pim_s
            decode_time = float(step_times.sum())
            energy = float(cost.rows["energy_j"].sum())
            tokens = workload.batch * run.steps
            metrics.update(tpot_s=decode_time / run.steps, tokens_per_s=tokens / decode_time,
                           j_per_token=energy / tokens, decode_energy_j=energy)
            if breakdown:
                frames.append(self._breakdown("decode", run.base, cost))
            total_energy += energy
            total_time += decode_time
            total_macs += float(cost.rows["macs"].sum())
        peak = self.shape.peak_macs_per_cycle * d.compute.arrays * self.clock_hz
        metrics.update(area_mm2=self.area_mm2(), power_w=total_energy / total_time if total_time else 0.0,
                       utilization=total_macs / (peak * total_time) if total_time else 0.0,
                       energy_j=total_energy, time_s=total_time)
        operators = None
        if breakdown:
            import pandas as pd

            operators = pd.concat([pd.DataFrame(f) for f in frames], ignore_index=True)
        return Evaluation(d.name, workload.model, {k: float(v) for k, v in metrics.items()}, operators)

    def _breakdown(self, phase: str, table: OpTable, cost: RunCost) -> dict[str, Any]:
        kinds = {v: k for k, v in KIND_CODES.items()}
        r = cost.rows
        bound = np.where(r["pim_s"] > 0, "pim", np.where(r["compute_s"] >= r["dram_s"], "compute", "memory"))
        return {"phase": phase, "operator": table.names, "kind": [kinds[k] for k in table.kind],
                "bound": bound, "time_s": r["npu_s"] + r["pim_s"], "energy_j": r["energy_j"],
                "dram_bytes": r["dram_bytes"], "macs": r["macs"]}

    def area_mm2(self) -> float:
        d, c = self.design, self.costs
        pes = d.compute.rows * d.compute.cols * d.compute.arrays
        logic = c.pe_area_um2 * pes + c.array_fixed_um2 * d.compute.arrays
        sram = c.sram_area_um2
        pim = 0.0
        if d.pim.mode != "none":
            pim = c.pim_lane_area_um2 * d.pim.lanes * d.pim.banks * d.pim.channels
        return (logic + sram + pim) / 1e6

