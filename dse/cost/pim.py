"""PIM in the cost model: which rows run in the banks, their time, and the decode scheduler.

Rules (each stated so it can be refined):

- **PIM channels are channels of the memory.** ``pim.channels`` may not exceed the design's
  memory channels, ``memory.units`` × the technology's channels per unit
  (``channels`` of its :class:`peforge.sim.tech.Memory`). The PIM banks hold no capacity of their own: the KV cache they
  compute on lives in them (:mod:`peforge.dse.cost.footprint` checks it fits).
- **Bandwidth.** While PIM computes on a channel, that channel's data bus is not available to
  the NPU: with one row buffer the bank is busy, so PIM and the NPU take turns (``blocked``);
  with ``dual_row_buffer`` (NeuPIMs) the NPU's reads proceed on the other row buffer and the
  lanes read through the bank's internal path, so a concurrent schedule gives the NPU the
  memory's whole bandwidth while PIM runs (command-bus contention is not modelled).
- **Operators** (``pim.ops``): ``attention`` sends decode attention's score and context GEMVs
  to PIM (the KV cache's channels; each query row a GEMV, GEMVs spread over the channels);
  ``fc`` sends weight GEMVs of batch 1 (one token: ``m = 1``) there, W^T of ``N × K`` split
  by rows over the channels (AiM-style; the weights are taken to be laid out over the PIM
  channels). A GEMV's cycles are :func:`peforge.hw.pim.gemv_cycles` (the RTL's exact count)
  in the packed layout that fits its rows (:func:`peforge.hw.pim.max_pack`: vectors per DRAM
  row ``cols // head_dim`` for a score GEMV), at ``pim.clock_mhz``.
- **The scheduler.** Each decode step the runtime takes the fastest schedule the hardware
  supports (``pim.mode``: ``none`` — NPU only; ``blocked`` — also NPU + PIM in turn;
  ``concurrent`` — also NeuPIMs sub-batch interleaving with ``k`` sub-batches, ``k`` of
  :data:`SUB_BATCHES` up to ``min(batch, 8)``, and ``min(batch, 8)`` itself):

  - ``none``: every row on the NPU;
  - ``blocked``: the NPU's rows, then PIM's: ``NPU + PIM``;
  - ``concurrent k``: ``k`` sub-batches of ``ceil(B / k)`` pipeline through the layers, the
    NPU's work on one overlapping PIM attention of another: ``max(k·N_k, P) + min(N_k, P / k)
    / layers`` with ``N_k`` the NPU time of one sub-batch's non-PIM rows (each sub-batch reads
    the weights again) and ``P`` the PIM time of the whole batch (``fc`` stays on the NPU:
    a sub-batch is not a batch-1 step). The sub-batch's step-varying NPU rows (the softmax over
    the growing context) are the whole batch's scaled by ``ceil(B / k) / B``.

  Ties go to the simpler schedule (none, blocked, then smaller ``k``). Energy follows the
  choice (the NPU's energy of a sub-batch ``k`` times, PIM's of the whole batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...hw.pim import gemv_cycles, max_pack
from ...sim import tech

__all__ = ["MAX_SUB_BATCHES", "PIM_ATTENTION", "PIM_FC", "PIM_MODES", "PimArrays",
           "Schedule", "candidates", "check_pim", "memory_channels", "schedule_decode", "sub_batch_sizes"]

PIM_MODES = {"none": 0, "blocked": 1, "concurrent": 2}
PIM_ATTENTION, PIM_FC = 1, 2  # what a run lets go to PIM (bit flags; RunSpec.use_pim)
MAX_SUB_BATCHES = 8
SUB_BATCHES = (2, 4, 8)  # k the runtime tries (each a priced sub-batch size: powers of two keep it cheap)

def _channels_per_unit(design):
    """The design's memory technology's channels per unit (:class:`peforge.sim.tech.Memory`), ``None``
    where its preset gives none."""
    return tech.memory_of(tech.resolve(design.tech), design.memory.technology).channels


def memory_channels(design) -> int | None:
    """Channels of the design's memory (``units`` × the technology's channels per unit), ``None`` for a
    technology whose preset gives no channel count (a user preset's)."""
    per_unit = _channels_per_unit(design)
    return None if per_unit is None else design.memory.units * int(per_unit.value)


def check_pim(design) -> None:
    """Reject PIM channels the memory does not have (one line, naming the keys)."""
    if design.pim.mode == "none":
        return
    channels = memory_channels(design)
    if channels is not None and design.pim.channels > channels:
        per_unit = _channels_per_unit(design)
        raise ValueError(f"{design.name}: pim.channels={design.pim.channels} exceeds the memory's {channels} channels "
                         f"(memory.units={design.memory.units} x {int(per_unit.value)} per {design.memory.technology} "
                         f"unit, {per_unit.source}); allowed: at most {channels}, or more memory.units")


def _column(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)[:, None, None]


class PimArrays:
    """The PIM parameters of every design as ``(designs, 1, 1)`` columns: what
    :func:`peforge.hw.pim.gemv_cycles` reads, the mode and the operators allowed."""

    GEMV = ("banks", "lanes", "cols", "t_rcd", "t_rp", "t_ras", "t_ccd")

    def __init__(self, designs: Sequence):
        for name in ("channels", "clock_mhz", *self.GEMV):
            setattr(self, name, _column([getattr(d.pim, name) for d in designs]))
        self.mode = _column([PIM_MODES[d.pim.mode] for d in designs])
        self.attention = self.mode > 0
        self.attention &= _column(["attention" in d.pim.ops for d in designs]) > 0
        self.fc = (self.mode > 0) & (_column(["fc" in d.pim.ops for d in designs]) > 0)
        self.any = bool((self.mode > 0).any())
        self.any_concurrent = bool((self.mode == PIM_MODES["concurrent"]).any())

    def gemv_cycles(self, out_rows, in_cols) -> np.ndarray:
        """Cycles of a GEMV with W of ``out_rows x in_cols`` words on one channel, all banks
        together, W packed as many rows per DRAM row as fit (:func:`peforge.hw.pim.max_pack`)."""
        pack = max_pack(in_cols=in_cols, lanes=self.lanes, cols=self.cols)
        return gemv_cycles(out_rows=out_rows, in_cols=in_cols, pack=pack, **{n: getattr(self, n) for n in self.GEMV})

    def on_pim(self, r, use_pim) -> np.ndarray:
        """Which rows of ``r`` run on PIM: attention rows where the run lets attention go
        (``use_pim & PIM_ATTENTION``), batch-1 weight GEMVs where it lets ``fc`` go."""
        use = np.asarray(use_pim, dtype=np.int64)
        fc = r.matrix & ~r.attention & (r.m == 1)
        return (r.attention & self.attention & ((use & PIM_ATTENTION) > 0)
                | fc & self.fc & ((use & PIM_FC) > 0))

    def seconds(self, r, on_pim) -> np.ndarray:
        """PIM time of each row (s; 0 off PIM). An attention product's query rows are GEMVs
        ``y = x·B``, W = B^T of ``N × K``, spread over the channels, one layer after another;
        a weight GEMV's W^T (``N × K``) is split by rows over the channels."""
        cycles = r.repeat * np.ceil(r.products * r.m / self.channels) * self.gemv_cycles(r.n, r.k)
        if (on_pim & ~r.attention).any():
            split = r.repeat * r.products * r.m * self.gemv_cycles(np.ceil(r.n / self.channels), r.k)
            cycles = np.where(r.attention, cycles, split)
        return np.where(on_pim, cycles, 0.0) / (self.clock_mhz * 1e6)


def sub_batch_sizes(batch: int) -> dict[int, int]:
    """Sub-batch size ``ceil(batch / k)`` of each concurrent candidate ``k``: those of
    :data:`SUB_BATCHES` up to ``min(batch, 8)``, and ``min(batch, 8)`` (none at batch 1)."""
    top = min(batch, MAX_SUB_BATCHES)
    ks = sorted({k for k in SUB_BATCHES if k <= top} | ({top} if top >= 2 else set()))
    return {k: -(-batch // k) for k in ks}


def candidates(batch: int) -> list[tuple[str, int]]:
    """The schedules a decode step may take at ``batch``, in tie-break order: ``("none", 0)``,
    ``("blocked", 1)``, then ``("concurrent", k)`` for each ``k``."""
    return [("none", 0), ("blocked", 1)] + [("concurrent", k) for k in sub_batch_sizes(batch)]


@dataclass(frozen=True)
class Schedule:
    """The decode schedule of every design: per step ``(designs, steps)`` the time (s), the
    energy (J) and the index of the candidate taken (:func:`candidates`); ``options`` the
    time of every candidate ``(designs, steps, candidates)`` (``inf`` where the hardware does
    not support it)."""

    names: list[tuple[str, int]]
    step_s: np.ndarray
    energy_j: np.ndarray
    choice: np.ndarray
    options: np.ndarray

    def shares(self, weight: np.ndarray) -> list[dict[str, float]]:
        """Per design, the share of decode steps each chosen candidate takes (``weight``: steps
        per sampled step), keyed ``none`` / ``blocked`` / ``concurrent k=K``."""
        total = float(weight.sum())
        out = []
        for d in range(self.choice.shape[0]):
            row = {}
            for i, (name, k) in enumerate(self.names):
                share = float(weight[self.choice[d] == i].sum()) / total
                if share > 0:
                    row[name if name != "concurrent" else f"concurrent k={k}"] = share
            out.append(row)
        return out


def schedule_decode(mode: np.ndarray, layers: int, batch: int, main, fixed: np.ndarray, subs: dict,
                    allowed: Sequence[tuple[str, int]] | None = None) -> Schedule:
    """Choose every design's schedule at every decode step.

    ``mode``: the designs' :data:`PIM_MODES` ``(designs, 1, 1)``; ``main``: the
    :class:`~peforge.dse.cost.model.RunCost` of the decode run with PIM on (its ``steps`` sums:
    ``npu_s``, ``pim_s``, ``npu_only_s``, ``energy_j``, ``pim_j``, ``npu_only_j``; its ``rows``
    per-row totals); ``fixed``: the rows that do not change over the steps (bool per row);
    ``subs``: for each sub-batch size, the RunCost of one step of the ``fixed`` rows at that
    size (``rows`` of ``npu_s``, ``energy_j``, ``pim_j``); ``allowed``: the candidates to consider
    (default all that :func:`candidates` lists; for comparing fixed schedules).
    """
    steps_n = main.steps
    names = list(allowed) if allowed is not None else candidates(batch)
    n_steps = main.npu_s.shape[1]
    npu, pim = steps_n["npu_s"], steps_n["pim_s"]
    blocked_e = steps_n["energy_j"]
    # The NPU's part of a step: its rows that do not change (priced once) and those that do.
    fixed_npu = main.rows["npu_s"][:, fixed].sum(axis=1, keepdims=True) / _steps_of(main)
    fixed_npu_e = (main.rows["energy_j"] - main.rows["pim_j"])[:, fixed].sum(axis=1, keepdims=True) / _steps_of(main)
    moving_npu = npu - fixed_npu
    moving_npu_e = blocked_e - steps_n["pim_j"] - fixed_npu_e
    times, energies, ok = [], [], []
    supports = mode[:, :, 0]
    for name, k in names:
        if name == "none":
            times.append(steps_n["npu_only_s"])
            energies.append(steps_n["npu_only_j"])
            ok.append(np.ones_like(supports, dtype=bool))
        elif name == "blocked":
            times.append(npu + pim)
            energies.append(blocked_e)
            ok.append(supports >= PIM_MODES["blocked"])
        elif -(-batch // k) not in subs:  # not priced: no design supports it, or k is not a candidate
            times.append(np.inf)
            energies.append(np.inf)
            ok.append(np.zeros_like(supports, dtype=bool))
        else:
            size = -(-batch // k)
            sub = subs[size].rows
            share = size / batch
            n_k = sub["npu_s"].sum(axis=1, keepdims=True) + moving_npu * share
            e_k = (sub["energy_j"] - sub["pim_j"]).sum(axis=1, keepdims=True) + moving_npu_e * share
            times.append(np.maximum(k * n_k, pim) + np.minimum(n_k, pim / k) / layers)
            energies.append(k * e_k + steps_n["pim_j"])
            ok.append(supports == PIM_MODES["concurrent"])
    shape = (npu.shape[0], n_steps)
    options = np.stack([np.where(o, np.broadcast_to(t, shape), np.inf) for t, o in zip(times, ok)], axis=-1)
    choice = np.argmin(options, axis=-1)  # first of equal ones: the simpler schedule
    step_s = np.take_along_axis(options, choice[..., None], axis=-1)[..., 0]
    stacked_e = np.stack([np.broadcast_to(e, shape) for e in energies], axis=-1)
    energy = np.take_along_axis(stacked_e, choice[..., None], axis=-1)[..., 0]
    return Schedule(names, step_s, energy, choice, options)


def _steps_of(run) -> float:
    """Steps a run's fixed rows were counted for (their per-row totals are per step × steps)."""
    return float(run.weight.sum())
