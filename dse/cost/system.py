"""A system of chips running one model: tensor, pipeline and expert parallelism over links.

Every chip is the design point (its compute, SRAM and memory); ``design.system`` says how many
there are and how the model is spread over them (:class:`peforge.dse.design.point.System`).
The rules, each stated so that it can be refined:

**What a chip runs.** One chip's share of the model is itself a model (:func:`chip_config`),
priced on one chip by :class:`~peforge.dse.cost.model.CostModel` exactly as a single-chip run:

- *TP* (Megatron-LM, Shoeybi et al. 2019): attention heads and MLP columns split ``tp`` ways
  (``num_heads / tp`` query heads, ``num_kv_heads / tp`` KV heads, or one replicated KV head
  where ``tp`` exceeds them, ``intermediate_size / tp``), the embedding and LM head split over the
  vocabulary (``ceil(vocab / tp)`` rows each). Per layer two all-reduces (after attention's
  output projection and after the MLP) of the step's ``tokens x hidden`` activations; per forward
  pass one more for the vocabulary-split embedding and an all-gather of the last tokens' logits.
- *EP* (MoE models): the ``num_experts`` are spread over ``ep`` chip groups (``num_experts / ep``
  each, at least ``experts_per_token``: a chip's share is priced as a MoE layer of its experts),
  attention data-parallel over the groups: a chip serves ``ceil(batch / ep)`` sequences, and its
  experts receive, under balanced routing, as many token-expert assignments as its sequences make.
  Per MoE layer two all-to-alls over the ``ep`` groups (dispatch and combine) of ``tokens x k x
  hidden`` activations.
- *PP*: the layers split into ``pp`` stages of ``ceil(layers / pp)`` layers; the bottleneck stage is
  taken to run its layers and also the embedding and the LM head (an upper bound: they sit on the
  first and last stage). A stage's time is the chip's time with the layer rows scaled to the stage
  (``f x ceil(L/pp)/L + (1 - f)`` of it, ``f`` the layer rows' share of the chip's time) plus the
  stage's collectives; a stage hands its ``tokens x hidden`` activations to the next
  (point to point; asynchronous, so only the first micro-batch's hops are on the critical path).

**Timing.** Communication is not overlapped with compute (a TP all-reduce is on the critical path
of the next layer). Prefill: ``m = min(micro_batches, batch per chip)`` micro-batches (one without
pipelining, ``pp = 1``) flow through the stages: ``TTFT = (m + pp - 1) x (stage time of a
micro-batch) + (pp - 1) x hop``, the bubble ``(pp - 1) / (m + pp - 1)``. Decode keeps the stages
busy with ``g = min(pp, batch per chip)`` groups of sequences in flight; a group's token passes all
stages, so ``TPOT = pp x (stage time of a group) + (pp - 1) x hop`` and every sequence gains one
token per TPOT. Collective times are :mod:`peforge.dse.cost.collectives`' on the system's links.

**Energy, area, capacity.** Energy = every chip's (``tp x ep`` chip-shares, each run over all
layers, once per micro-batch or group) + the bytes every chip puts on its links x ``pJ/bit``.
Area = chips x the chip's. Capacity is checked per chip (:func:`chip_footprint`): the stage's
layers of the shard's weights, the embedding and LM head shares, the KV cache of its sequences
and stage layers, the activations of its sequences. ``footprint_gib`` and ``capacity_gib`` are per
chip; ``max_batch`` is the system's (``ep`` x a chip's).

With ``tp = pp = ep = 1`` every formula reduces to the single-chip result exactly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ...hw import params
from ...models import build_graph, load_config, parse_scheme
from ...models.config import ModelConfig
from ...models.graph import kv_cache_bytes
from ...models.weights import weight_bytes
from ..design.point import DesignPoint, System
from . import collectives as co
from .footprint import GIB, Footprint, capacity_columns, check_fits, max_batch, workload_footprint
from .model import CostModel
from .units import UnitCosts
from .workload import Workload, _decode_run, check_run, op_table

__all__ = ["COMM_PARTS", "Shard", "check_system", "chip_config", "chip_footprint", "chip_workload", "evaluate_system",
           "model_config", "shard_of", "system_metrics"]

# Communication rows added to a system's operator breakdown, by collective.
COMM_PARTS = ("tp.all_reduce", "ep.all_to_all", "tp.edge", "pp.hop")


@dataclass(frozen=True)
class Shard:
    """How ``batch`` sequences of a model spread over a system: the degrees, the sequences one chip
    serves, the prefill micro-batches and the decode groups in flight (module docstring)."""

    tp: int
    pp: int
    ep: int
    batch: int  # sequences per chip: ceil(batch / ep)
    micro: int  # prefill micro-batches m
    micro_batch: int  # sequences in one
    groups: int  # decode groups in flight g
    group_batch: int  # sequences in one
    stage_layers: int  # layers of the largest stage


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def shard_of(system: System, config: ModelConfig, batch: int) -> Shard:
    """The :class:`Shard` of ``batch`` sequences of ``config`` on ``system``; ``ValueError`` (one
    line naming the key and what is allowed) where the model cannot be split so."""
    tp, pp, ep = system.tp, system.pp, system.ep
    name = config.name
    if config.num_heads % tp or config.intermediate_size % tp:
        common = math.gcd(config.num_heads, config.intermediate_size)
        raise ValueError(f"system.tp={tp} must divide {name}'s {config.num_heads} heads and its MLP width "
                         f"{config.intermediate_size}; allowed: {_divisors(common)}")
    kv = config.num_kv_heads
    if kv % tp and tp % kv:
        raise ValueError(f"system.tp={tp} neither divides nor is a multiple of {name}'s {kv} KV heads; allowed: "
                         f"divisors or multiples of {kv}")
    if ep > 1 and not config.is_moe:
        raise ValueError(f"system.ep={ep}: {name} is not a mixture-of-experts model; allowed: ep = 1")
    experts = config.num_experts
    if experts % ep or experts // ep < config.experts_per_token:
        top = experts // config.experts_per_token
        allowed = ", ".join(str(d) for d in range(1, top + 1) if experts % d == 0)
        raise ValueError(f"system.ep={ep}: {name}'s {experts} experts split {ep} ways must leave each chip at least "
                         f"the {config.experts_per_token} a token uses; allowed: {allowed}")
    if pp > config.num_layers:
        raise ValueError(f"system.pp={pp} exceeds {name}'s {config.num_layers} layers; allowed: 1..{config.num_layers}")
    per_chip = -(-batch // ep)
    micro = min(system.micro_batches, per_chip) if pp > 1 else 1
    groups = min(pp, per_chip)
    return Shard(tp, pp, ep, per_chip, micro, -(-per_chip // micro), groups, -(-per_chip // groups),
                 -(-config.num_layers // pp))


def chip_config(config: ModelConfig, tp: int, ep: int, layers: int | None = None) -> ModelConfig:
    """One chip's share of ``config`` under ``tp``-way tensor and ``ep``-way expert parallelism
    (``layers``: a pipeline stage's; default all), a model priced like any other; ``config``
    itself where nothing is split."""
    layers = config.num_layers if layers is None else layers
    if tp == 1 and ep == 1 and layers == config.num_layers:
        return config
    return _split(config, tp, ep, layers)


@lru_cache(maxsize=256)
def _split(config: ModelConfig, tp: int, ep: int, layers: int) -> ModelConfig:
    return dataclasses.replace(
        config, name=f"{config.name}/tp{tp}ep{ep}", num_layers=layers, num_heads=config.num_heads // tp,
        num_kv_heads=max(1, config.num_kv_heads // tp), intermediate_size=config.intermediate_size // tp,
        vocab_size=-(-config.vocab_size // tp), num_experts=config.num_experts // ep)


@lru_cache(maxsize=128)
def _chip_workload(config: ModelConfig, quant: str, batch: int, seq: int, gen: int,
                   phases: tuple[str, ...]) -> Workload:
    """:func:`peforge.dse.cost.workload.prepare` of a chip's share (a config, not a zoo name)."""
    scheme = parse_scheme(quant)
    check_run(config, batch=batch, seq=seq, gen=gen)
    graph = build_graph(config, "prefill", batch=batch, seq=seq, quant=scheme)
    run = _decode_run(config.name, config, scheme, batch=batch, seq=seq, steps=gen - 1) if "decode" in phases else None
    return Workload(config.name, scheme.name, batch, seq, gen, op_table(graph), run, config.params, config.num_layers,
                    scheme.weight.bits, scheme.activation.bits, scheme.kv.bits, scheme.weight.name,
                    scheme.activation.name, scheme.kv.name, config.max_positions,
                    workload_footprint(config, scheme, batch=batch, seq=seq, gen=gen, prefill=graph))


def _phases(workload: Workload) -> tuple[str, ...]:
    return ("prefill", "decode") if workload.decode_run is not None else ("prefill",)


def chip_workload(workload: Workload, config: ModelConfig, tp: int, ep: int, batch: int) -> Workload:
    """What one chip of a ``tp`` x ``ep`` split runs of ``workload`` (all layers) at ``batch``
    sequences: ``workload`` itself where nothing is split."""
    if tp == 1 and ep == 1 and batch == workload.batch:
        return workload
    return _chip_workload(chip_config(config, tp, ep), workload.quant, batch, workload.seq, workload.gen,
                          _phases(workload))


def chip_footprint(workload: Workload, config: ModelConfig, shard: Shard) -> Footprint:
    """Bytes one chip holds (module docstring): its stage's share of the weights and KV cache, its
    sequences' activations."""
    weights, kv = _stage_bytes(config, workload.quant, workload.seq + workload.gen - 1, shard.tp, shard.ep,
                               shard.stage_layers)
    acts = chip_workload(workload, config, shard.tp, shard.ep, shard.micro_batch).footprint.act_bytes_per_seq
    return Footprint(weight_bytes=weights, kv_bytes_per_seq=kv, act_bytes_per_seq=acts, batch=shard.batch)


@lru_cache(maxsize=256)
def _stage_bytes(config: ModelConfig, quant: str, positions: int, tp: int, ep: int, layers: int) -> tuple[float, float]:
    """Weights of a stage's share and the KV cache of one sequence of ``positions`` in it (bytes)."""
    stage = chip_config(config, tp, ep, layers)
    scheme = parse_scheme(quant)
    return weight_bytes(stage, scheme), kv_cache_bytes(stage, scheme, positions)


@lru_cache(maxsize=16)
def model_config(name: str) -> ModelConfig:
    """The config a workload was prepared from (by its zoo name or path)."""
    return load_config(name)


def check_system(design: DesignPoint, workload: Workload) -> Shard:
    """The design's shard of ``workload``, after checking that the split is allowed and that one
    chip holds its share (``ValueError``, one line, otherwise)."""
    config = model_config(workload.model)
    shard = shard_of(design.system, config, workload.batch)
    check_fits(design, _with_chip_footprint(workload, config, shard))
    return shard


_CHECKED: dict[tuple, tuple[Workload, Workload]] = {}


def _with_chip_footprint(workload: Workload, config: ModelConfig, shard: Shard) -> Workload:
    """``workload`` holding one chip's footprint (what :func:`check_fits` reads), once per shard."""
    key = (id(workload), shard)
    cached = _CHECKED.get(key)
    if cached is None or cached[0] is not workload:
        if len(_CHECKED) > 512:
            _CHECKED.clear()
        cached = _CHECKED[key] = (workload, dataclasses.replace(workload, footprint=chip_footprint(workload, config,
                                                                                                    shard)))
    return cached[1]


# --- pricing ------------------------------------------------------------------------------------

class _Links:
    """Each design's links as columns: a chip's bandwidth per direction (bytes/s), step latency (s),
    topology codes, J per byte sent."""

    def __init__(self, designs: Sequence[DesignPoint]):
        figures = [d.system.link() for d in designs]
        self.bw = np.array([f["gb_per_s"] * f["links"] * 1e9 for f in figures])
        self.alpha = np.array([f["latency_ns"] * 1e-9 for f in figures])
        self.topology = np.array([co.TOPOLOGIES.index(f["topology"]) for f in figures])
        self.j_per_byte = np.array([f["pj_per_bit"] * 8e-12 for f in figures])


def _forward_comm(tokens, seqs, deg: dict[str, np.ndarray], links: _Links, config: ModelConfig,
                  act_bytes: float) -> dict[str, np.ndarray]:
    """One forward pass's collectives for ``tokens`` tokens of ``seqs`` sequences (arrays per
    design): the time of one layer's, of the edges' (embedding, logits) and of a stage hop (s), and
    the bytes one chip coordinate puts on links over the whole pass (all layers, its hops)."""
    h = config.hidden_size
    net = (links.bw, links.alpha, links.topology)
    activations = tokens * h * act_bytes
    ar_t, ar_b = co.all_reduce(activations, deg["tp"], *net)
    if config.is_moe:
        a2a_t, a2a_b = co.all_to_all(activations * config.experts_per_token, deg["ep"], *net)
    else:
        a2a_t = a2a_b = np.zeros_like(activations)
    ag_t, ag_b = co.all_gather(seqs * config.vocab_size * act_bytes, deg["tp"], *net)
    hop_t, hop_b = co.point_to_point(activations, links.bw, links.alpha, links.topology)
    staged = deg["pp"] > 1
    hop_t, hop_b = np.where(staged, hop_t, 0.0), np.where(staged, hop_b, 0.0)
    layers = config.num_layers
    sent = {"tp.all_reduce": layers * 2 * ar_b, "ep.all_to_all": layers * 2 * a2a_b, "tp.edge": ar_b + ag_b,
            "pp.hop": (deg["pp"] - 1) * hop_b}
    return {"tp.all_reduce": 2 * ar_t, "ep.all_to_all": 2 * a2a_t, "tp.edge": ar_t + ag_t, "pp.hop": hop_t,
            "bytes": sum(sent.values()), **{f"bytes:{name}": v for name, v in sent.items()}}


def _stage_factor(cost, table, layers: int, pp: np.ndarray, stage_layers: np.ndarray) -> np.ndarray:
    """The bottleneck stage's share of the chip's time for a phase (1 without pipelining): the
    decoder-layer rows of ``table`` (they stand for every layer) scaled to the stage's layers, the
    other rows (embedding, LM head) whole."""
    if cost is None:
        return np.ones_like(pp)
    time = cost.rows["npu_s"] + cost.rows["pim_s"]  # (designs, rows): totals over the run
    layer = (table.cols["repeat"] == layers) & (layers > 1)
    f = time[:, layer].sum(axis=1) / np.maximum(time.sum(axis=1), 1e-300)
    return np.where(pp > 1, f * stage_layers / layers + (1 - f), 1.0)


def system_metrics(designs: Sequence[DesignPoint], costs: Sequence[UnitCosts], workload: Workload, *,
                   phases: tuple[str, ...] = ("prefill", "decode"), stride: int = 1,
                   comm_out: dict | None = None) -> dict[str, np.ndarray]:
    """Metrics of every system (arrays ``(designs,)``, the keys of :meth:`CostModel.metrics` plus
    ``chips``, ``comm_s``, ``comm_share``, ``link_energy_j``, ``bubble``): each design a chip of its
    ``system``, checked by the caller (:func:`check_system`). Designs of one split share their
    chip workloads and are priced together, one :class:`CostModel` per split (a loop over splits,
    not designs). ``comm_out`` receives each collective's time over the run (s), by (phase, :data:`COMM_PARTS` name)."""
    config = model_config(workload.model)
    count = len(designs)
    shards = [shard_of(d.system, config, workload.batch) for d in designs]
    deg = {k: np.array([getattr(s, k) for s in shards], dtype=np.float64)
           for k in ("tp", "pp", "ep", "micro", "micro_batch", "groups", "group_batch", "stage_layers")}
    chip: dict[str, np.ndarray] = {}
    factor = {"prefill": np.ones(count), "decode": np.ones(count)}
    splits: dict[tuple, list[int]] = {}
    for i, s in enumerate(shards):
        splits.setdefault((s.tp, s.ep, s.micro_batch, s.group_batch), []).append(i)
    for (tp, ep, micro_batch, group_batch), index in splits.items():
        model = CostModel([designs[i] for i in index], [costs[i] for i in index], checked=True)
        pp = deg["pp"][index]
        staged = bool((pp > 1).any())  # the stage factor and the MACs of each phase are needed
        work = _pipeline_workload(workload, config, tp, ep, micro_batch if "prefill" in phases else group_batch,
                                  group_batch if "decode" in phases else micro_batch)
        priced: dict[str, Any] = {}
        out = model.metrics(work, phases=phases, stride=stride, costs_out=priced if staged else None)
        busy = np.zeros(len(index))  # MACs over the peak rate (s), every micro-batch and group
        for phase in phases:
            table = work.prefill if phase == "prefill" else work.decode.base
            factor[phase][index] = _stage_factor(priced.get(phase), table, work.layers, pp, deg["stage_layers"][index])
            if staged:
                runs = deg["micro" if phase == "prefill" else "groups"][index]
                busy += runs * priced[phase].rows["macs"].sum(axis=1) / model.peak_macs_per_s[:, 0, 0]
        for key, values in (*out.items(), ("busy_s", busy)):
            chip.setdefault(key, np.full(count, np.nan))[index] = values
    out = _combine(chip, deg, _Links(designs), factor, config, workload, phases, comm_out)
    out.update(_capacity(designs, shards, workload, config))
    return out


_PIPELINE: dict[tuple, tuple[Workload, Workload]] = {}


def _pipeline_workload(workload: Workload, config: ModelConfig, tp: int, ep: int, micro_batch: int,
                       group_batch: int) -> Workload:
    """One chip's run: the prefill of a micro-batch and the decode of a group in flight (the
    workload of ``group_batch`` sequences with the prefill table of ``micro_batch``: the prefill's
    pricing reads only its table, so both phases go through the mapper in one pass)."""
    decode = chip_workload(workload, config, tp, ep, group_batch)
    if micro_batch == group_batch:
        return decode
    key = (id(workload), tp, ep, micro_batch, group_batch)  # one object per run: the cost model caches its plans by it
    cached = _PIPELINE.get(key)
    if cached is None or cached[0] is not workload:
        if len(_PIPELINE) > 128:
            _PIPELINE.clear()
        prefill = chip_workload(workload, config, tp, ep, micro_batch).prefill
        cached = _PIPELINE[key] = (workload, dataclasses.replace(decode, prefill=prefill))
    return cached[1]


def _capacity(designs: Sequence[DesignPoint], shards: Sequence[Shard], workload: Workload,
              config: ModelConfig) -> dict[str, np.ndarray]:
    """Per-chip footprint and capacity (GiB) and the system's largest batch (``ep`` x a chip's
    sequences, at most the design range's top), one footprint per distinct shard."""
    memory = capacity_columns(designs)[0]
    footprint, top = np.empty(len(designs)), np.empty(len(designs))
    by_shard: dict[Shard, list[int]] = {}
    for i, s in enumerate(shards):
        by_shard.setdefault(s, []).append(i)
    for shard, index in by_shard.items():
        fp = chip_footprint(workload, config, shard)
        footprint[index] = fp.total_bytes() / GIB
        top[index] = max_batch(fp, *capacity_columns([designs[i] for i in index], fp.weight_bytes)) * shard.ep
    high = float(params.spec_of(DesignPoint, "batch").high)
    return {"footprint_gib": footprint, "capacity_gib": memory / GIB, "max_batch": np.minimum(top, high)}


def _combine(chip: dict[str, np.ndarray], deg: dict[str, np.ndarray], links: _Links,
             factor: dict[str, np.ndarray], config: ModelConfig, workload: Workload, phases: tuple[str, ...],
             comm_out: dict | None) -> dict[str, np.ndarray]:
    """The system's metrics from its chips' (module docstring)."""
    tp, pp, ep, m, g = deg["tp"], deg["pp"], deg["ep"], deg["micro"], deg["groups"]
    a = workload.act_bits / 8
    b = workload.batch
    stage = deg["stage_layers"] / config.num_layers
    out: dict[str, np.ndarray] = {}
    energy = time = 0.0
    comm_s = 0.0
    link_j = 0.0
    parts: dict[tuple[str, str], np.ndarray] = {}
    if "prefill" in phases:
        c = _forward_comm(deg["micro_batch"] * workload.seq, deg["micro_batch"], deg, links, config, a)
        stage_comm = (c["tp.all_reduce"] + c["ep.all_to_all"]) * config.num_layers * stage + c["tp.edge"]
        slots = m + pp - 1
        ttft = slots * (chip["ttft_s"] * factor["prefill"] + stage_comm) + (pp - 1) * c["pp.hop"]
        link = m * tp * ep * c["bytes"] * links.j_per_byte
        e = tp * ep * m * chip["prefill_energy_j"] + link
        out.update(ttft_s=ttft, prefill_tokens_per_s=b * workload.seq / ttft, prefill_energy_j=e,
                   bubble=(pp - 1) / slots)
        comm = slots * stage_comm + (pp - 1) * c["pp.hop"]
        for name in COMM_PARTS:
            share = c[name] * (config.num_layers * stage if name in ("tp.all_reduce", "ep.all_to_all") else 1.0)
            parts["prefill", name] = (slots if name != "pp.hop" else pp - 1) * share
            parts["prefill", name, "j"] = m * tp * ep * c[f"bytes:{name}"] * links.j_per_byte
        energy, time, comm_s, link_j = energy + e, time + ttft, comm_s + comm, link_j + link
    if "decode" in phases:
        steps = workload.decode.steps
        c = _forward_comm(deg["group_batch"], deg["group_batch"], deg, links, config, a)
        stage_comm = (c["tp.all_reduce"] + c["ep.all_to_all"]) * config.num_layers * stage + c["tp.edge"]
        tpot = pp * (chip["tpot_s"] * factor["decode"] + stage_comm) + (pp - 1) * c["pp.hop"]
        decode_s = chip["decode_s"] * (tpot / chip["tpot_s"])
        link = g * steps * tp * ep * c["bytes"] * links.j_per_byte
        e = tp * ep * g * chip["decode_energy_j"] + link
        tokens = b * steps
        out.update(tpot_s=tpot, tokens_per_s=chip["tokens_per_s"] * (chip["tpot_s"] / tpot) * (b / deg["group_batch"]),
                   j_per_token=e / tokens, decode_energy_j=e, decode_s=decode_s)
        comm = steps * (pp * stage_comm + (pp - 1) * c["pp.hop"])
        for name in COMM_PARTS:
            share = c[name] * (config.num_layers * stage if name in ("tp.all_reduce", "ep.all_to_all") else 1.0)
            parts["decode", name] = steps * (pp if name != "pp.hop" else pp - 1) * share
            parts["decode", name, "j"] = g * steps * tp * ep * c[f"bytes:{name}"] * links.j_per_byte
        energy, time, comm_s, link_j = energy + e, time + decode_s, comm_s + comm, link_j + link
    # without stages the chip's run is the system's: its utilization scaled to the system's time;
    # with them each phase's MACs (every micro-batch and group) over the chips and the time
    utilization = np.where(pp > 1, chip["busy_s"] / (pp * time), chip["utilization"] * (chip["time_s"] / time) / pp)
    out.update(area_mm2=tp * pp * ep * chip["area_mm2"], power_w=energy / time, utilization=utilization,
               energy_j=energy, time_s=time, chips=tp * pp * ep, comm_s=comm_s, comm_share=comm_s / time,
               link_energy_j=link_j)
    if comm_out is not None:
        comm_out.update(parts)
    return out


def evaluate_system(design: DesignPoint, workload: Workload, *, phases: tuple[str, ...] = ("prefill", "decode"),
                    breakdown: bool = True):
    """:func:`peforge.dse.cost.api.evaluate` of a system: the system's metrics, and (``breakdown``)
    one chip's operators (its micro-batch's prefill, its group's decode: ``time_s`` one chip's run
    of all layers; energy, DRAM bytes and MACs the whole system's, every chip-share, micro-batch and
    group) with a row per collective (kind ``collective``, bound ``links``: its time over the run on
    the critical path, its link energy)."""
    from .formats import operand_passes
    from .model import Evaluation, check_design
    from .units import unit_costs

    shard = check_system(design, workload)
    cost = unit_costs(design)
    check_design(design, cost)
    operand_passes(design, workload.formats)
    comm: dict = {}
    metrics = system_metrics([design], [cost], workload, phases=phases, comm_out=comm)
    config = model_config(workload.model)
    model = CostModel([design], [cost], checked=True)
    operators = None
    if breakdown:
        import pandas as pd

        from .model import ENERGY_PARTS

        frames = []
        for phase, batch, runs in (("prefill", shard.micro_batch, shard.micro), ("decode", shard.group_batch,
                                                                                 shard.groups)):
            if phase not in phases:
                continue
            work = chip_workload(workload, config, shard.tp, shard.ep, batch)
            ops = model.evaluate(work, phases=(phase,)).operators
            # energy, bytes and MACs of every chip-share, every micro-batch or group: the system's
            for column in ("energy_j", *ENERGY_PARTS, "dram_bytes", "macs"):
                ops[column] = ops[column] * (shard.tp * shard.ep * runs)
            frames.append(ops)
            rows = [{"phase": phase, "operator": name, "kind": "collective", "bound": "links",
                     "mapping": f"over {design.system.link()['topology']} links", "time_s": float(comm[phase, name][0]),
                     "energy_j": float(comm[phase, name, "j"][0])}
                    for name in COMM_PARTS if float(comm[phase, name][0]) > 0]
            if rows:
                frames.append(pd.DataFrame(rows))
        operators = pd.concat(frames, ignore_index=True).fillna({"energy_j": 0.0, "dram_bytes": 0.0, "macs": 0.0})
    return Evaluation(design.name, workload.model, {k: float(v[0]) for k, v in metrics.items()}, operators, cost,
                      {k: float(v[0]) * design.system.chips for k, v in model.area_parts_mm2().items()},
                      {"macs_per_s": float(model.peak_macs_per_s[0, 0, 0]) * design.system.chips,
                       "dram_bytes_per_s": float(model.dram_bytes_per_s[0, 0, 0]) * design.system.chips})
