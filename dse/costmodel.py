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

    def step_time(self, mode: str, npu_half_s: np.ndarray | None = None, layers: int = 1) -> np.ndarray:
        """Time of each step (s) under PIM ``mode``.

        ``concurrent``: two sub-batches pipeline through the layers, the NPU working on one while
        PIM runs the other's attention: max(2 x NPU(B/2), PIM(B)), plus one layer's fill.
        """
        npu = self.npu_s.sum(axis=-1)
        pim = self.pim_s.sum(axis=-1)
        if mode == "concurrent":
            half = npu_half_s.sum(axis=-1)
            return np.maximum(2 * half, pim) + np.minimum(half, pim / 2) / layers
        return npu + pim


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

    def evaluate(self, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
                 breakdown: bool = True) -> Evaluation:
        """Metrics of the run; ``breakdown=False`` skips the per-operator table (faster, for search)."""
        d = self.design
        use_pim = d.pim.mode != "none"
        metrics: dict[str, float] = {}
        frames = []
        total_energy = 0.0
        total_time = 0.0
        if "prefill" in phases:
            t = workload.prefill
            cost = self.price({k: v[None, :] for k, v in t.cols.items()}, t.kind, workload, use_pim=False)
            ttft = float(cost.step_time("blocked")[0])
            energy = float(cost.energy_j.sum())
            metrics.update(ttft_s=ttft, prefill_energy_j=energy,
                           prefill_tokens_per_s=workload.batch * workload.seq / ttft)
            frames.append(self._breakdown("prefill", t, cost, breakdown))
            total_energy += energy
            total_time += ttft
        if "decode" in phases:
            run = workload.decode
            cols = run.at(np.arange(run.steps))
            kind = run.base.kind
            cost = self.price(cols, kind, workload, use_pim=use_pim)
            half = None
            if d.pim.mode == "concurrent" and workload.batch > 1:
                half = self.price(cols, kind, workload, use_pim=True, batch_scale=0.5).npu_s
                steps = cost.step_time("concurrent", half, layers=workload.layers)
            else:
                steps = cost.step_time("blocked")
            decode_time = float(steps.sum())
            energy = float(cost.energy_j.sum())
            tpot = decode_time / run.steps
            tokens = workload.batch * run.steps
            metrics.update(tpot_s=tpot, tokens_per_s=tokens / decode_time, j_per_token=energy / tokens,
                           decode_energy_j=energy)
            frames.append(self._breakdown("decode", run.base, cost, breakdown))
            total_energy += energy
            total_time += decode_time
        macs = sum(float(f["macs"].sum()) for f in frames)
        peak = self.shape.peak_macs_per_cycle * d.compute.arrays * self.clock_hz
        metrics.update(area_mm2=self.area_mm2(), power_w=total_energy / total_time if total_time else 0.0,
                       utilization=macs / (peak * total_time) if total_time else 0.0,
                       energy_j=total_energy, time_s=total_time)
        operators = None
        if breakdown:
            import pandas as pd

            operators = pd.concat([pd.DataFrame(f) for f in frames], ignore_index=True)
        return Evaluation(d.name, workload.model, {k: float(v) for k, v in metrics.items()}, operators)

    def _breakdown(self, phase: str, table: OpTable, cost: StepCost, full: bool) -> dict[str, Any]:
        if not full:
            return {"macs": cost.macs}
        kinds = {v: k for k, v in KIND_CODES.items()}
        npu = cost.npu_s.sum(axis=0)
        pim = cost.pim_s.sum(axis=0)
        compute = cost.compute_s.sum(axis=0)
        dram = cost.dram_s.sum(axis=0)
        bound = np.where(pim > 0, "pim", np.where(compute >= dram, "compute", "memory"))
        return {"phase": phase, "operator": table.names, "kind": [kinds[k] for k in table.kind],
                "bound": bound, "time_s": npu + pim, "energy_j": cost.energy_j.sum(axis=0),
                "dram_bytes": cost.dram_bytes.sum(axis=0), "macs": cost.macs.sum(axis=0)}

    def area_mm2(self) -> float:
        d, c = self.design, self.costs
        pes = d.compute.rows * d.compute.cols * d.compute.arrays
        logic = c.pe_area_um2 * pes + c.array_fixed_um2 * d.compute.arrays
        sram = c.sram_area_um2
        pim = 0.0
        if d.pim.mode != "none":
            pim = c.pim_lane_area_um2 * d.pim.lanes * d.pim.banks * d.pim.channels
        return (logic + sram + pim) / 1e6

