"""What one serving iteration costs on one design: the seam between the cost model and the simulator.

An iteration runs the decode step of every running request plus the prefill tokens admitted
to it. :class:`PoolCost` prices it from :class:`~peforge.dse.cost.model.CostModel` tables
computed once per design (the cost model is exact; the tables are where the approximation is):

- **decode step** of ``B`` requests with ``c`` cached tokens each: the cost model's decode step
  at batch ``b`` for ``b`` on a grid (1, 2, 3, 4, 6, 8, 12, ... up to ``max_batch``) and at every context
  ``c`` (batch 1: every step priced; larger batches: decode attention priced once per
  ``stride`` contexts at the chunk's mean, linear between, exact where the cost is linear in
  ``c``); a batch between grid points is linear between its neighbours, and a batch of
  unequal contexts is priced at their mean (rounded to a token: attention is linear in the
  context, so this only shifts which mapping the mapper picks);
- **prefill** of ``s`` tokens: the cost model's prefill step of one sequence of ``s`` tokens,
  split into its dense rows (every operator but attention: shared by all tokens of the
  iteration) and its attention rows (per request). Priced at every prompt length the trace
  has (exact) and on a geometric grid (for sums of tokens and chunks: linear between points,
  linear extrapolation above the top);
- **mixed iteration** (prefills and decodes together): dense rows at the iteration's total
  tokens (prefill tokens + one per decode), plus each prefill's attention, plus the decodes'
  attention (the decode step minus its dense rows) at the batch of decodes. A prefill chunk
  of tokens ``[p, p + n)`` costs ``attention(p + n) - attention(p)`` (the causal attention of
  its queries, the difference of two triangles).

Energy follows the same split; decode attention energy is taken proportional to the context
(KV bytes read). A PIM design in ``concurrent`` mode is priced as ``blocked`` (NPU then PIM)
here: the sub-batch interleaving needs two sub-batches of equal contexts, which a serving batch
is not. Systems of several chips plug in by providing another object with the same methods
(:meth:`iteration_seconds`, :meth:`decode_cumulative`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...models import load_config, parse_scheme
from ...models.graph import kv_cache_bytes
from ..cost.footprint import capacity_bytes, check_fits
from ..cost.model import CostModel, RunSpec, check_design
from ..cost.units import UnitCosts, unit_costs
from ..cost.workload import OpTable, prepare
from ..design.point import DesignPoint

__all__ = ["PoolCost", "Composition", "pool_cost", "BLOCK_TOKENS"]

BLOCK_TOKENS = 16  # tokens per KV block (vLLM's default block size)
_PREFILL_GRID = 48  # geometric points from 1 token to the top of the prefill range


@dataclass(frozen=True, kw_only=True)
class Composition:
    """What one iteration runs.

    Parameters
    ----------
    prefill_tokens : prompt tokens computed in the iteration (all requests)
    prefill_spans : ``(start, stop)`` token ranges of each prefill (chunk) in the iteration
    decodes : requests taking a decode step
    context : mean cached tokens of those requests
    """

    prefill_tokens: int = 0
    prefill_spans: tuple[tuple[int, int], ...] = ()
    decodes: int = 0
    context: float = 0.0


class PoolCost:
    """Per-design tables of decode and prefill cost, and the iteration price built from them.

    Parameters
    ----------
    design : the design point of one chip of the pool
    model : a zoo name or a ``config.json`` path
    prompt_lengths : prompt lengths to price exactly (those of the trace)
    max_context : the most positions any request needs (prompt + output - 1)
    quant : the quantization scheme (default: the design's)
    max_batch : the most requests that run together (the decode grid's top)
    stride : contexts per decode attention price at batches above 1
    max_prefill_tokens : the top of the prefill grid (tokens of one iteration)
    costs : the design's unit costs (default: :func:`~peforge.dse.cost.units.unit_costs`, characterized)
    """

    def __init__(self, design: DesignPoint, model: str, *, prompt_lengths, max_context: int,
                 quant: str | None = None, max_batch: int = 256, stride: int = 4,
                 max_prefill_tokens: int = 8192, costs: UnitCosts | None = None):
        if design.system.chips > 1:  # its tables would price one chip of it as the whole pool
            raise ValueError(f"design {design.name!r}: system.chips={design.system.chips}; a serving pool prices "
                             f"single chips (allowed: system.chips = 1, with the pool's chip count as count)")
        self.design = design
        self.quant = design.run_quant(quant)
        config = load_config(model)
        scheme = parse_scheme(self.quant)
        if not 2 <= max_context <= config.max_positions:
            raise ValueError(f"max_context={max_context}: allowed 2..{config.max_positions} for {config.name}")
        self.model = config.name
        self.max_context = int(max_context)
        probe = prepare(model, batch=1, seq=min(max(int(np.max(prompt_lengths)), 1), config.max_positions),
                        gen=1, quant=self.quant, phases=("prefill",))
        check_fits(design, probe)
        costs = costs if costs is not None else unit_costs(design)
        check_design(design, costs)
        self.cm = CostModel([design], [costs], checked=True)
        self.cm.format_passes(tuple(probe.formats.items()))  # a format the PE cannot run: one line, now
        # KV room: memory less weights and one prefill's workspace (the largest prompt's), capped by PIM
        memory, kv_room = capacity_bytes(design, probe.footprint.weight_bytes)
        workspace = probe.footprint.act_bytes_per_seq
        self.kv_bytes = float(min(memory - probe.footprint.weight_bytes - workspace, kv_room))
        self.block_bytes = kv_cache_bytes(config, scheme, BLOCK_TOKENS)
        self.kv_blocks = int(max(self.kv_bytes // self.block_bytes, 0))
        self.area_mm2 = float(self.cm.area_mm2()[0])
        self._decode_tables(model, max_batch, stride)
        self._prefill_tables(model, np.asarray(prompt_lengths), max(max_prefill_tokens, self.max_context))

    # --- tables ------------------------------------------------------------------------------

    def _decode_tables(self, model: str, max_batch: int, stride: int) -> None:
        # 1, 2, 3, 4, 6, 8, 12, ...: powers of two and the points halfway between
        grid = sorted({b for p in range(12) for b in (2**p, 3 * 2**p // 2) if 1 <= b < max_batch} | {max_batch})
        self.batch_grid = np.array(grid)
        steps = self.max_context - 1  # contexts 1 .. max_context - 1 cached
        runs = [_workload(model, batch=b, seq=1, gen=self.max_context, quant=self.quant) for b in grid]
        contexts = np.arange(self.max_context, dtype=np.float64)
        total = np.zeros((len(grid), self.max_context))
        dense = np.zeros(len(grid))
        energy_dense = np.zeros(len(grid))
        energy_attn = np.zeros(len(grid))
        for first, group in ((True, [0]), (False, list(range(1, len(grid))))):
            if not group:
                continue
            specs = [RunSpec(runs[i].decode.base, runs[i].decode.steps, runs[i].decode.slope, use_pim=True)
                     for i in group]
            priced = self.cm.price_runs(specs, runs[group[0]], 1 if first else stride, with_mapping=False,
                                        parts=("npu_s", "pim_s", "energy_j"))
            for i, (cost, maps) in zip(group, priced):
                fixed = ~maps["varying"]
                per_step = (cost.npu_s[0] + cost.pim_s[0])
                starts = np.cumsum(np.concatenate([[0.0], cost.weight[:-1]]))
                at = 1.0 + starts + (cost.weight - 1) / 2  # cached tokens of each priced sample
                total[i, 1:] = np.interp(contexts[1:], at, per_step)
                dense[i] = ((cost.rows["npu_s"][0] + cost.rows["pim_s"][0])[fixed]).sum() / steps
                energy_dense[i] = cost.rows["energy_j"][0][fixed].sum() / steps
                energy_attn[i] = cost.rows["energy_j"][0][~fixed].sum() / (steps * (1 + steps) / 2)  # J per cached token
        self.decode_s = total  # (grid, context): one decode step
        self.decode_dense_s = dense
        self.decode_cum = np.concatenate([np.zeros((len(grid), 1)), np.cumsum(total, axis=1)], axis=1)
        self.decode_dense_j = energy_dense
        self.decode_attn_j = energy_attn
        # each batch 1 .. max: its two grid neighbours and the weight of the upper one
        b = np.arange(max(grid) + 1, dtype=np.float64)
        upper = np.clip(np.searchsorted(self.batch_grid, b), 1, len(grid) - 1) if len(grid) > 1 else np.zeros(len(b), int)
        lower = np.maximum(upper - 1, 0)
        span = np.maximum(self.batch_grid[upper] - self.batch_grid[lower], 1)
        self._lo, self._hi = lower, upper
        self._w = np.clip((b - self.batch_grid[lower]) / span, 0.0, 1.0)
        self.max_batch = int(max(grid))

    def _prefill_tables(self, model: str, prompts: np.ndarray, top: int) -> None:
        limit = load_config(model).max_positions
        grid = np.unique(np.round(np.geomspace(1, min(top, limit), _PREFILL_GRID)).astype(int))
        lengths = np.unique(np.concatenate([grid, np.clip(prompts, 1, limit)]))
        stacked, rows, first = _stacked_prefills(model, self.quant, lengths)
        cost = self.cm.price_runs([RunSpec(stacked)], first, parts=("npu_s", "pim_s", "energy_j"))[0][0]
        t = (cost.rows["npu_s"][0] + cost.rows["pim_s"][0]).reshape(len(lengths), rows)
        e = cost.rows["energy_j"][0].reshape(len(lengths), rows)
        attention = first.prefill.role != 0
        dense, attn = t[:, ~attention].sum(axis=1), t[:, attention].sum(axis=1)
        e_dense, e_attn = e[:, ~attention].sum(axis=1), e[:, attention].sum(axis=1)
        self.prefill_lengths = lengths.astype(np.float64)
        self.prefill_dense_s, self.prefill_attn_s = dense, attn
        self.prefill_dense_j, self.prefill_attn_j = e_dense, e_attn

    # --- lookups -----------------------------------------------------------------------------

    def _along(self, table: np.ndarray, tokens: float) -> float:
        """``table`` over the prefill lengths at ``tokens``: exact on a priced length, linear
        between, linear extrapolation above the top (0 at 0 tokens)."""
        x = self.prefill_lengths
        if tokens <= 0:
            return 0.0
        if tokens > x[-1]:
            slope = (table[-1] - table[-2]) / (x[-1] - x[-2])
            return float(table[-1] + slope * (tokens - x[-1]))
        if tokens < x[0]:
            return float(table[0] * tokens / x[0])
        return float(np.interp(tokens, x, table))

    def prefill_seconds(self, tokens: int) -> float:
        """One request's prefill of ``tokens`` tokens alone: the cost model's TTFT at batch 1."""
        return self._along(self.prefill_dense_s, tokens) + self._along(self.prefill_attn_s, tokens)

    def _batch(self, table: np.ndarray, batch: int):
        lo, hi, w = self._lo[batch], self._hi[batch], self._w[batch]
        return (1 - w) * table[lo] + w * table[hi]

    def decode_step_seconds(self, batch: int, context: float) -> float:
        """One decode step of ``batch`` requests with ``context`` cached tokens each (mean)."""
        c = int(min(max(round(context), 1), self.max_context - 1))
        lo, hi, w = self._lo[batch], self._hi[batch], self._w[batch]
        return float((1 - w) * self.decode_s[lo, c] + w * self.decode_s[hi, c])

    def decode_cumulative(self, batch: int, context: int, steps: int) -> np.ndarray:
        """Cumulative time (s) of ``steps`` decode steps of ``batch`` requests, the first at
        ``context`` cached tokens, each after one more: entry ``j`` ends step ``j + 1``."""
        lo, hi, w = self._lo[batch], self._hi[batch], self._w[batch]
        c0 = int(min(max(context, 1), self.max_context - 1))
        stop = min(c0 + steps, self.max_context)
        base = (1 - w) * self.decode_cum[lo, c0] + w * self.decode_cum[hi, c0]
        return (1 - w) * self.decode_cum[lo, c0 + 1:stop + 1] + w * self.decode_cum[hi, c0 + 1:stop + 1] - base

    def decode_energy_j(self, batch: int, context: float, steps: int = 1) -> float:
        """Energy (J) of ``steps`` decode steps of ``batch`` requests from ``context`` cached tokens."""
        dense = self._batch(self.decode_dense_j, batch)
        attn = self._batch(self.decode_attn_j, batch)
        contexts = steps * context + steps * (steps - 1) / 2
        return float(steps * dense + attn * contexts)

    def iteration_seconds(self, comp: Composition) -> float:
        """Time (s) of one iteration of composition ``comp`` (the module's rules)."""
        if comp.prefill_tokens == 0:
            return self.decode_step_seconds(comp.decodes, comp.context) if comp.decodes else 0.0
        t = self._along(self.prefill_dense_s, comp.prefill_tokens + comp.decodes)
        t += sum(self._along(self.prefill_attn_s, b) - self._along(self.prefill_attn_s, a)
                 for a, b in comp.prefill_spans)
        if comp.decodes:
            t += self.decode_step_seconds(comp.decodes, comp.context) - float(self._batch(self.decode_dense_s,
                                                                                           comp.decodes))
        return t

    def iteration_energy_j(self, comp: Composition) -> float:
        """Energy (J) of one iteration of composition ``comp``."""
        e = 0.0
        if comp.prefill_tokens:
            e += self._along(self.prefill_dense_j, comp.prefill_tokens + comp.decodes)
            e += sum(self._along(self.prefill_attn_j, b) - self._along(self.prefill_attn_j, a)
                     for a, b in comp.prefill_spans)
            if comp.decodes:
                e += float(self._batch(self.decode_attn_j, comp.decodes)) * comp.context
        elif comp.decodes:
            e += self.decode_energy_j(comp.decodes, comp.context)
        return e


_POOLS: dict[tuple, PoolCost] = {}
_STACKED: dict[tuple, tuple] = {}


def _stacked_prefills(model: str, quant: str, lengths: np.ndarray) -> tuple[OpTable, int, Any]:
    """The prefill tables of one sequence of every length in ``lengths``, one after another in
    one table (priced as one step: every row is priced on its own, so this is each prefill's
    cost side by side, and the design-independent half is built once for all designs); with
    the rows of one prefill and the first length's workload (its formats)."""
    key = (model, quant, lengths.tobytes())
    if key not in _STACKED:
        tables = [_workload(model, batch=1, seq=int(s), gen=1, quant=quant, phases=("prefill",)).prefill
                  for s in lengths]
        rows = len(tables[0].kind)
        if any(len(t.kind) != rows for t in tables):
            raise ValueError(f"{model}: prefill tables of different lengths have different operators")
        stacked = OpTable(names=tuple(n for t in tables for n in t.names),
                          kind=np.concatenate([t.kind for t in tables]),
                          cols={c: np.concatenate([t.cols[c] for t in tables]) for c in tables[0].cols},
                          role=np.concatenate([t.role for t in tables]))
        if len(_STACKED) > 16:
            _STACKED.clear()
        _STACKED[key] = (stacked, rows, _workload(model, batch=1, seq=int(lengths[0]), gen=1, quant=quant,
                                                  phases=("prefill",)))
    return _STACKED[key]
_WORKLOADS: dict[tuple, object] = {}


def _workload(model: str, **kwargs):
    """:func:`~peforge.dse.cost.workload.prepare`, kept for every length a trace asks for (its own
    cache holds 64, a trace has hundreds of prompt lengths)."""
    key = (model, tuple(sorted(kwargs.items())))
    if key not in _WORKLOADS:
        _WORKLOADS[key] = prepare(model, **kwargs)
    return _WORKLOADS[key]


def pool_cost(design: DesignPoint, model: str, *, prompt_lengths, max_context: int, quant: str | None = None,
              max_batch: int = 256, costs: UnitCosts | None = None) -> PoolCost:
    """A :class:`PoolCost`, cached by design, model, lengths and range (designs are hashable)."""
    lengths = np.unique(np.asarray(prompt_lengths, dtype=np.int64))
    key = (design, model, lengths.tobytes(), max_context, quant, max_batch, costs)
    if key not in _POOLS:
        if len(_POOLS) > 64:
            _POOLS.clear()
        _POOLS[key] = PoolCost(design, model, prompt_lengths=lengths, max_context=max_context, quant=quant,
                               max_batch=max_batch, costs=costs)
    return _POOLS[key]
