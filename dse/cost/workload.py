"""A model's step as numpy columns, ready for the cost model to price many design points fast.

All decoder layers of a step are alike, so a step collapses to one row per operator of a
layer (with its count multiplied by the number of layers) plus the operators before and
after the layers. A decode run of ``T`` steps differs from step to step only in the
attention operators, whose key dimension grows by one token per step; :class:`DecodeRun`
keeps each column as ``base + slope * step`` so all steps are priced in one array operation.

A run's token convention: ``gen`` tokens are generated per sequence in all. The prefill of
the ``seq`` prompt tokens (positions ``0 .. seq-1``) produces the first; each of the
``gen - 1`` decode steps feeds the last token back and produces the next, step ``t`` (from
0) with ``seq + t`` tokens cached, at position ``seq + t``. The last generated token is never
fed back, so a run needs ``seq + gen - 1`` positions; ``gen = 1`` is a prefill-only run with
no decode step to price.
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

COLUMNS = ("m", "k", "n", "count", "repeat", "macs", "ops", "weight_bytes", "act_bytes", "kv_bytes", "elements",
           "vector_a", "vector_b", "move")
KIND_CODES = {"gemm": 0, "gemv": 1, "attention": 2, "elementwise": 3}
# An attention operator's score product, its softmax and its context product, in that order in
# the graph: the rows a fused attention mapping keeps on chip together.
ROLE_CODES = {"": 0, "score": 1, "softmax": 2, "context": 3}
# The vector unit's work of a row as the tile lowers it (peforge.models.graph.Operator.vector;
# peforge.dse.tile.vector_lowering): 0 none, or priced by the graph's nominal ops. The ``move``
# column: the tile's DMA-only move of the row's output (codes of peforge.dse.tile.operator_program.MOVES).
VECTOR_CODES = {"": 0, "rmsnorm": 1, "rope": 2, "softmax": 3, "add": 4, "silu_mul": 5, "requantize": 6,
                "requantize16": 7, "requantize_scalar": 8}
MOVE_CODES = {"": 0, "cache_rows": 1, "cache_columns": 2, "split_heads": 3, "merge_heads": 4}


@dataclass(frozen=True)
class OpTable:
    """Operators of one step, one row each.

    Per-row arrays: ``m, k, n`` (product shape), ``count`` (products in the step),
    ``repeat`` (layers the row stands for: they run one after another, so only
    ``count / repeat`` products are independent), ``macs``, ``ops``, ``weight_bytes``,
    ``act_bytes``, ``kv_bytes`` (all products of the row), ``elements`` (outputs of an
    elementwise row), ``kind`` (codes of :data:`KIND_CODES`), ``role`` (codes of
    :data:`ROLE_CODES`: the parts of an attention operator), ``vector`` (codes of
    :data:`VECTOR_CODES`: the vector unit's work on the tile; its figures in the columns
    ``vector_a``, ``vector_b``).
    """

    names: tuple[str, ...]
    kind: np.ndarray
    cols: dict[str, np.ndarray]
    role: np.ndarray
    vector: np.ndarray | None = None


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
        rows[(where, index)] = [op.name, KIND_CODES[op.kind], op.m, op.k, op.n, op.count * repeat, repeat,
                                op.macs * repeat, op.ops * repeat, op.weight_bytes * repeat, op.act_bytes * repeat,
                                op.kv_bytes * repeat, elements * repeat, op.vector_a, op.vector_b,
                                MOVE_CODES[op.move], VECTOR_CODES[op.vector]]
    ordered = [rows[key] for key in sorted(rows)]
    names = tuple(r[0] for r in ordered)
    kind = np.array([r[1] for r in ordered], dtype=np.int64)
    data = np.array([r[2:-1] for r in ordered], dtype=np.float64)
    vector = np.array([r[-1] for r in ordered], dtype=np.int64)
    role = np.zeros(len(kind), dtype=np.int64)
    attention, elementwise = KIND_CODES["attention"], KIND_CODES["elementwise"]
    for i in range(len(kind) - 2):
        if (kind[i], kind[i + 1], kind[i + 2]) == (attention, elementwise, attention):
            role[i:i + 3] = (ROLE_CODES["score"], ROLE_CODES["softmax"], ROLE_CODES["context"])
    return OpTable(names, kind, {c: data[:, i] for i, c in enumerate(COLUMNS)}, role, vector)


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
    """What a run asks of the hardware: one prefill step and a run of ``gen - 1`` decode steps
    (built only when :func:`prepare` was asked for the decode phase and ``gen > 1``)."""

    model: str
    quant: str
    batch: int
    seq: int
    gen: int
    prefill: OpTable
    decode_run: DecodeRun | None
    params: int
    layers: int
    weight_bits: int
    act_bits: int
    kv_bits: int
    weight_format: str  # peforge.models.quant.FORMATS names
    act_format: str
    kv_format: str
    max_positions: int
    footprint: Footprint  # bytes the run keeps in memory (weights, KV cache, activations)

    @property
    def decode(self) -> DecodeRun:
        """The decode steps; ``ValueError`` (one line naming the flags) where this run has none."""
        if self.decode_run is None:
            raise ValueError(_no_decode(self.seq, self.gen, self.max_positions))
        return self.decode_run

    @property
    def formats(self) -> dict[str, str]:
        """Tensor role (``activation``, ``weight``, ``kv``) -> number format name."""
        return {"activation": self.act_format, "weight": self.weight_format, "kv": self.kv_format}


def _no_decode(seq: int, gen: int, max_positions: int) -> str:
    """Why a run has no decode step to price: one line naming the flags and what is allowed."""
    if gen > 1:
        return ("--phase: this workload was prepared for the prefill only; price --phase prefill, or prepare "
                "it with phases including decode")
    top = max_positions - seq + 1
    allowed = f"--gen 2..{top} with --seq {seq}" if top >= 2 else f"--seq 1..{max_positions - 1} for a decode step"
    return (f"--gen {gen}: the prefill produces the only token, so there is no decode step to price; "
            f"allowed {allowed}, or --phase prefill")


def check_run(config, *, batch: int, seq: int, gen: int) -> None:
    """The run must fit the model and the design space: one line naming the flag otherwise.

    ``gen`` tokens in all, the first from the prefill: ``seq + gen - 1`` positions (module docstring).
    """
    from ..design.point import DesignPoint

    batch_spec = params.spec_of(DesignPoint, "batch")  # declared once
    for flag, value, low, high in (("--batch", batch, batch_spec.low, batch_spec.high),
                                   ("--seq", seq, 1, config.max_positions),
                                   ("--gen", gen, 1, config.max_positions)):
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"{flag} {value}: allowed integers {low}..{high}")
    if seq + gen - 1 > config.max_positions:
        raise ValueError(f"--gen {gen}: a prompt of {seq} tokens plus {gen} generated ones needs "
                         f"{seq + gen - 1} positions; {config.name} has {config.max_positions} "
                         f"(allowed --gen 1..{config.max_positions - seq + 1} with --seq {seq})")


PHASES = ("prefill", "decode")


@lru_cache(maxsize=64)
def prepare(model: str, *, batch: int = 1, seq: int = 512, gen: int = 256, quant: str = DEFAULT_SCHEME,
            phases: tuple[str, ...] = PHASES) -> Workload:
    """Operator tables of a prefill of ``seq`` tokens and the ``gen - 1`` decode steps after it,
    ``batch`` sequences (``gen`` tokens in all, the first from the prefill).

    ``model`` is a zoo name or a path to a ``config.json``. The decode tables are built only
    when ``phases`` names ``"decode"`` and ``gen > 1``; otherwise :attr:`Workload.decode`
    raises. Cached: design points share it.
    """
    if not isinstance(phases, tuple) or not phases or not set(phases) <= set(PHASES):
        raise ValueError(f"phases={phases!r}: allowed a tuple of {', '.join(PHASES)}")
    config = load_config(model)
    scheme = parse_scheme(quant)
    check_run(config, batch=batch, seq=seq, gen=gen)
    prefill_graph = build_graph(config, "prefill", batch=batch, seq=seq, quant=scheme)
    prefill = op_table(prefill_graph)
    run = _decode_run(model, config, scheme, batch=batch, seq=seq, steps=gen - 1) if "decode" in phases else None
    return Workload(config.name, scheme.name, batch, seq, gen, prefill, run, config.params, config.num_layers,
                    scheme.weight.bits, scheme.activation.bits, scheme.kv.bits,
                    scheme.weight.name, scheme.activation.name, scheme.kv.name, config.max_positions,
                    workload_footprint(config, scheme, batch=batch, seq=seq, gen=gen, prefill=prefill_graph))


def _decode_run(model: str, config, scheme, *, batch: int, seq: int, steps: int) -> DecodeRun | None:
    """``steps`` decode steps from ``seq`` cached tokens to ``seq + steps - 1``; None for no step."""
    if steps < 1:
        return None
    first = op_table(build_graph(config, "decode", batch=batch, kv_len=seq, quant=scheme))
    if steps == 1:
        return DecodeRun(first, {c: np.zeros_like(first.cols[c]) for c in COLUMNS}, 1)
    second = op_table(build_graph(config, "decode", batch=batch, kv_len=seq + 1, quant=scheme))
    run = DecodeRun(first, {c: second.cols[c] - first.cols[c] for c in COLUMNS}, steps)
    last = op_table(build_graph(config, "decode", batch=batch, kv_len=seq + steps - 1, quant=scheme))
    predicted = run.at(np.array([steps - 1]))
    if not all(np.allclose(predicted[c][0], last.cols[c]) for c in COLUMNS):
        # A sliding window caps the keys: not linear over this run.
        raise ValueError(f"{model}: decode from {seq} to {seq + steps - 1} cached tokens crosses the "
                         f"model's sliding window; use a shorter --seq/--gen")
    return run
