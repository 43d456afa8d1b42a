"""Memory footprint of a workload and the capacity of a design: does the model fit, and up to
which batch.

Footprint of ``batch`` sequences of ``seq`` prompt tokens and ``gen`` generated ones (bytes):

- **weights** at their stored size under the scheme, group scales and zero points included
  (:func:`peforge.models.weights.weight_bytes`: every matrix at the scheme's weight format, norms
  and biases at 16 bits);
- **KV cache** of ``batch x (seq + gen - 1)`` positions at the KV format (the run's positions:
  the last generated token is never fed back), per-vector overhead
  included, GQA's KV heads only, a sliding window capping the cached tokens
  (:func:`peforge.models.graph.kv_cache_bytes`);
- **activations and workspace**: the rule is the prefill step's residual stream (``batch x seq x
  hidden`` activations, live across a layer for the residual add) plus the largest operator's
  activation traffic of that step (its inputs read and its output written: e.g. the unfused
  attention score matrix on long prompts, an upper bound where the design fuses attention). Prefill is the step with the most live
  activations; decode's are ``seq`` times smaller.

The three are summed: an upper bound on the peak (prefill's workspace is gone by the time the
KV cache is full), so a design that passes can run every step. Every term is proportional to
the batch except the weights, so ``footprint(b) = weights + b x per_sequence`` and the largest
batch that fits is a closed form (:func:`max_batch`; for a MoE model the activations per
sequence are taken at the run's batch, whose routing sets the expert GEMMs' rows).

Capacity. A design holds ``memory.units x capacity per unit`` (the technology's per-unit
capacity, or ``memory.capacity_gib``). With PIM (``pim.mode`` not ``none``) the PIM banks are
banks of that same memory (HBM-PIM and NeuPIMs put the lanes in the DRAM dies that also hold
the weights), so they add no capacity. What PIM computes on lives in its banks
(``pim.channels x banks x rows x cols`` words of ``word_bits``, capped at the memory's
capacity): the KV cache where ``pim.ops`` has ``attention``, the weights where it has ``fc``
(the GEMVs read them in place, so they are laid out there once, whatever the batch); and
weights plus KV plus activations must fit the memory as a whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ...hw import params
from ...models.graph import kv_cache_bytes
from ...models.weights import weight_bytes
from ...sim import tech
from ..design.point import DesignPoint
from .units import memory_costs

if TYPE_CHECKING:
    from ...models.config import ModelConfig
    from ...models.graph import Graph
    from ...models.quant import QuantScheme
    from .workload import Workload

__all__ = ["Footprint", "GIB", "capacity_bytes", "capacity_columns", "check_fits", "max_batch", "pim_capacity_bytes", "pim_residents",
           "workload_footprint"]

GIB = float(1 << 30)  # bytes in a GiB


@dataclass(frozen=True)
class Footprint:
    """Bytes a workload keeps in memory: ``weight_bytes + batch x (kv + activation bytes per sequence)``.

    Parameters
    ----------
    weight_bytes : every weight at its stored size (bytes)
    kv_bytes_per_seq : KV cache of one sequence of ``seq + gen - 1`` positions (bytes)
    act_bytes_per_seq : activations and workspace of one sequence (bytes; the module's rule)
    batch : the workload's batch
    """

    weight_bytes: float
    kv_bytes_per_seq: float
    act_bytes_per_seq: float
    batch: int

    @property
    def per_seq_bytes(self) -> float:
        """Bytes each further sequence adds (KV cache + activations)."""
        return self.kv_bytes_per_seq + self.act_bytes_per_seq

    def kv_bytes(self, batch: int | None = None) -> float:
        """KV cache of ``batch`` sequences (default: the workload's), bytes."""
        return (self.batch if batch is None else batch) * self.kv_bytes_per_seq

    def total_bytes(self, batch: int | None = None) -> float:
        """Footprint of ``batch`` sequences (default: the workload's), bytes."""
        return self.weight_bytes + (self.batch if batch is None else batch) * self.per_seq_bytes


def workload_footprint(config: ModelConfig, scheme: QuantScheme, *, batch: int, seq: int, gen: int,
                       prefill: Graph) -> Footprint:
    """The footprint of ``batch`` sequences of ``config`` under ``scheme``; ``prefill`` is the
    prefill graph of that batch and ``seq`` (its largest operator sets the workspace)."""
    act_bytes = scheme.activation.bits / 8
    residual = batch * seq * config.hidden_size * act_bytes
    largest = max((op.act_bytes for op in prefill.operators), default=0.0)
    return Footprint(weight_bytes=weight_bytes(config, scheme),
                     kv_bytes_per_seq=kv_cache_bytes(config, scheme, seq + gen - 1),
                     act_bytes_per_seq=(residual + largest) / batch, batch=batch)


def _unit_gib(design: DesignPoint) -> float:
    """Capacity of one memory unit of ``design`` (GiB): its override, else the technology's."""
    return memory_costs(design)["memory_capacity_gib"]


def pim_capacity_bytes(design: DesignPoint) -> float:
    """Bytes the PIM banks of ``design`` hold (``inf`` without PIM): channels x banks x rows x
    cols words of ``word_bits``."""
    p = design.pim
    if p.mode == "none":
        return math.inf
    return p.channels * p.banks * p.rows * p.cols * p.word_bits / 8


def pim_residents(design: DesignPoint) -> tuple[bool, bool]:
    """What must live in the PIM banks of ``design``: (the KV cache, the weights), as its ``pim.ops``
    let attention and fc GEMVs run there."""
    p = design.pim
    on = p.mode != "none"
    return on and "attention" in p.ops, on and "fc" in p.ops


def capacity_bytes(design: DesignPoint, weight_bytes: float = 0.0) -> tuple[float, float]:
    """(memory, KV) capacity of ``design``, bytes: the memory holds everything; where the KV cache
    lives in the PIM banks it must also fit what they hold beside the ``weight_bytes`` they keep
    (:func:`pim_residents`; capped at the memory; ``inf`` when neither is limited). Weights over the
    PIM banks leave the KV cache no room (negative)."""
    memory = design.memory.units * _unit_gib(design) * GIB
    kv_on_pim, weights_on_pim = pim_residents(design)
    room = min(memory, pim_capacity_bytes(design)) - (weight_bytes if weights_on_pim else 0.0)
    return memory, (room if kv_on_pim or room < 0 else memory)


def max_batch(footprint: Footprint, memory: np.ndarray | float, kv: np.ndarray | float) -> np.ndarray:
    """The largest batch (0 .. the design range's top) whose footprint fits ``memory`` bytes and
    whose KV cache fits ``kv`` bytes; arrays broadcast (one entry per design), ``inf`` is no limit."""
    high = float(params.spec_of(DesignPoint, "batch").high)
    # per-sequence bytes are positive for any model (every layer caches K and V), so no 0 / 0
    by_memory = np.floor((np.asarray(memory, dtype=np.float64) - footprint.weight_bytes) / footprint.per_seq_bytes)
    by_kv = np.floor(np.asarray(kv, dtype=np.float64) / footprint.kv_bytes_per_seq)
    return np.maximum(np.minimum(np.minimum(by_memory, by_kv), high), 0.0)


def _gib(value: float) -> str:
    return f"{value / GIB:.4g}"


def _smaller_batch(fp: Footprint, memory: float, kv_room: float) -> str:
    fits = int(max_batch(fp, memory, kv_room))
    return f"a smaller batch (at most {fits} fits)" if fits else "a smaller batch (none fits: even batch 1 is too large)"


def check_fits(design: DesignPoint, workload: Workload) -> None:
    """Reject (one-line ``ValueError``) a design whose memory cannot hold ``workload``: the
    footprint over the memory's capacity, or (PIM) the KV cache over the PIM banks'."""
    fp = workload.footprint
    memory, kv_room = capacity_bytes(design, fp.weight_bytes)
    total, kv = fp.total_bytes(), fp.kv_bytes()
    m = design.memory
    if total > memory:
        unit = tech.memory_of(design.preset, m.technology).unit
        acts = fp.batch * fp.act_bytes_per_seq
        raise ValueError(
            f"{workload.model} needs {_gib(total)} GiB (weights {_gib(fp.weight_bytes)}, KV {_gib(kv)}, "
            f"activations {_gib(acts)}) at batch {fp.batch} but {design.name} has {_gib(memory)} GiB "
            f"({m.units} {m.technology} {unit}{'s' if m.units > 1 else ''} x "
            f"{_unit_gib(design):g} GiB); allowed: a larger memory.units or memory.capacity_gib, "
            f"{_smaller_batch(fp, memory, kv_room)} or a narrower quant scheme")
    p = design.pim
    banks = f"{p.channels} channels x {p.banks} banks x {p.rows} rows x {p.cols} words of {p.word_bits} bits"
    pim_bytes = min(memory, pim_capacity_bytes(design))
    weights_on_pim = pim_residents(design)[1]
    if weights_on_pim and fp.weight_bytes > pim_bytes:
        raise ValueError(
            f"{workload.model}'s weights need {_gib(fp.weight_bytes)} GiB in the PIM banks of {design.name} "
            f"(pim.ops={p.ops!r}: the fc GEMVs read them in place) but they hold {_gib(pim_bytes)} GiB ({banks}); "
            f"allowed: more pim.channels, pim.banks or pim.rows, pim.ops = 'attention' or narrower weights")
    if kv > kv_room:
        held = f", {_gib(fp.weight_bytes)} of it the weights" if weights_on_pim else ""
        raise ValueError(
            f"{workload.model}'s KV cache needs {_gib(kv)} GiB at batch {fp.batch} but the PIM banks of "
            f"{design.name} hold {_gib(pim_bytes)} GiB ({banks}{held}); allowed: more pim.channels, pim.banks "
            f"or pim.rows, {_smaller_batch(fp, memory, kv_room)} or a narrower KV format")


def capacity_columns(designs: Sequence[DesignPoint], weight_bytes: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(memory, KV) capacity of every design (bytes, :func:`capacity_bytes` with ``weight_bytes``),
    arrays of shape ``(designs,)``."""
    pairs = np.array([capacity_bytes(d, weight_bytes) for d in designs], dtype=np.float64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]
