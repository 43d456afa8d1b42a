"""A model's step as numpy columns, ready for the cost model to price many design points fast.

All decoder layers of a step are alike, so a step collapses to one row per operator of a
layer (with its count multiplied by the number of layers) plus the operators before and
after the layers. A decode run of ``T`` steps differs from step to step only in the
attention operators, whose key dimension grows by one token per step; :class:`DecodeRun`
keeps each column as ``base + slope * step`` so all steps are priced in one array operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...hw import params
from ...models import build_graph, load_config, parse_scheme
from ...models.quant import DEFAULT_SCHEME
from ...models.graph import Graph
from .footprint import Footprint, workload_footprint

COLUMNS = ("m", "k", "n", "count", "macs", "ops", "weight_bytes", "act_bytes", "kv_bytes", "elements")
KIND_CODES = {"gemm": 0, "gemv": 1, "attention": 2, "elementwise": 3}


@dataclass(frozen=True)
class OpTable:
    """Operators of one step, one row each.

    Per-row arrays: ``m, k, n`` (product shape), ``count`` (products in the step),
    ``macs``, ``ops``, ``weight_bytes``, ``act_bytes``, ``kv_bytes`` (all products of the row),
    ``elements`` (outputs of an elementwise row), ``kind`` (codes of :data:`KIND_CODES`).
    """

    names: tuple[str, ...]
    kind: np.ndarray
    cols: dict[str, np.ndarray]


def op_table(graph: Graph) -> OpTable:
    """Collapse ``graph`` to one row per operator of a layer (x layers) and per other operator."""
    layers = graph.config.num_layers
    rows: dict[tuple[int, int], list] = {}
    position: dict[int, int] = {}
    for op in graph.operators:
        where = -1 if op.layer < 0 else (1 if op.layer >= layers else 0)
        if where == 0 and op.layer > 0:
            continue  # layers 1.. repeat layer 0 (the graph builder replicates one template)
        index = position.get(where, 0)
        position[where] = index + 1
        repeat = layers if where == 0 else 1
        elements = op.m * op.n * op.count if op.kind == "elementwise" else 0
        rows[(where, index)] = [op.name, KIND_CODES[op.kind], op.m, op.k, op.n, op.count * repeat,
                                op.macs * repeat, op.ops * repeat, op.weight_bytes * repeat, op.act_bytes * repeat,
                                op.kv_bytes * repeat, elements * repeat]
    ordered = [rows[key] for key in sorted(rows)]
    names = tuple(r[0] for r in ordered)
    kind = np.array([r[1] for r in ordered], dtype=np.int64)
    data = np.array([r[2:] for r in ordered], dtype=np.float64)
    return OpTable(names, kind, {c: data[:, i] for i, c in enumerate(COLUMNS)})


@dataclass(frozen=True)
class DecodeRun:
    """``steps`` decode steps starting with ``kv_start`` cached tokens: ``base + slope * step``."""

    base: OpTable
    slope: dict[str, np.ndarray]
    steps: int

    def at(self, step_index: np.ndarray) -> dict[str, np.ndarray]:
        """Columns of shape ``(len(step_index), rows)`` for the given step numbers."""
        t = np.asarray(step_index, dtype=np.float64)[:, None]
        return {c: self.base.cols[c][None, :] + self.slope[c][None, :] * t for c in COLUMNS}


@dataclass(frozen=True)
class Workload:
    """What a run asks of the hardware: one prefill step and a run of decode steps."""

    model: str
    quant: str
    batch: int
    seq: int
    gen: int
    prefill: OpTable
    decode: DecodeRun
    params: int
    layers: int
    weight_bits: int
    act_bits: int
    kv_bits: int
    weight_format: str  # peforge.models.quant.FORMATS names
    act_format: str
    kv_format: str
    footprint: Footprint  # bytes the run keeps in memory (weights, KV cache, activations)

    @property
    def formats(self) -> dict[str, str]:
        """Tensor role (``activation``, ``weight``, ``kv``) -> number format name."""
        return {"activation": self.act_format, "weight": self.weight_format, "kv": self.kv_format}


def check_run(config, *, batch: int, seq: int, gen: int) -> None:
    """The run must fit the model and the design space: one line naming the flag otherwise."""
    from ..design.point import DesignPoint

    batch_spec = next(s for f, s in params.specs(DesignPoint) if f.name == "batch")  # declared once
    for flag, value, low, high in (("--batch", batch, batch_spec.low, batch_spec.high),
                                   ("--seq", seq, 1, config.max_positions),
                                   ("--gen", gen, 1, config.max_positions)):
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"{flag} {value}: allowed integers {low}..{high}")
    if seq + gen - 1 > config.max_positions:
        raise ValueError(f"--gen {gen}: a prompt of {seq} tokens plus {gen} generated ones needs "
                         f"{seq + gen - 1} positions; {config.name} has {config.max_positions} "
                         f"(allowed --gen 1..{config.max_positions - seq + 1} with --seq {seq})")


@lru_cache(maxsize=64)
def prepare(model: str, *, batch: int = 1, seq: int = 512, gen: int = 256, quant: str = DEFAULT_SCHEME) -> Workload:
    """Operator tables of a prefill of ``seq`` tokens and ``gen`` decode steps, ``batch`` sequences.

    ``model`` is a zoo name or a path to a ``config.json``. Cached: design points share it.
    """
    config = load_config(model)
    scheme = parse_scheme(quant)
    check_run(config, batch=batch, seq=seq, gen=gen)
    prefill_graph = build_graph(config, "prefill", batch=batch, seq=seq, quant=scheme)
    prefill = op_table(prefill_graph)
    first = op_table(build_graph(config, "decode", batch=batch, kv_len=seq, quant=scheme))
    if gen > 1:
        second = op_table(build_graph(config, "decode", batch=batch, kv_len=seq + 1, quant=scheme))
        slope = {c: second.cols[c] - first.cols[c] for c in COLUMNS}
        last = op_table(build_graph(config, "decode", batch=batch, kv_len=seq + gen - 1, quant=scheme))
        run = DecodeRun(first, slope, gen)
        predicted = run.at(np.array([gen - 1]))
        if not all(np.allclose(predicted[c][0], last.cols[c]) for c in COLUMNS):
            # A sliding window caps the keys: not linear over this run.
            raise ValueError(f"{model}: decode from {seq} to {seq + gen - 1} cached tokens crosses the "
                             f"model's sliding window; use a shorter --seq/--gen")
    else:
        run = DecodeRun(first, {c: np.zeros_like(first.cols[c]) for c in COLUMNS}, max(gen, 1))
    return Workload(config.name, scheme.name, batch, seq, gen, prefill, run, config.params, config.num_layers,
                    scheme.weight.bits, scheme.activation.bits, scheme.kv.bits,
                    scheme.weight.name, scheme.activation.name, scheme.kv.name,
                    workload_footprint(config, scheme, batch=batch, seq=seq, gen=gen, prefill=prefill_graph))
