"""A serving simulator: iteration-level (continuous) batching under a paged KV-cache budget.

Rules (each stated, each a place to refine):

- **Iterations.** Each iteration runs one decode step of every running request whose prefill is
  done, plus prefill work: without chunking, the whole prefill of every request admitted to it
  (at most ``max_batch_tokens`` prompt tokens, the first request always); with
  ``chunk_tokens = C``, a token budget of ``C`` per iteration, decodes first (one token each),
  the rest filled with prefill chunks in admission order (Sarathi-Serve's stall-free batching).
  Its time is :meth:`PoolCost.iteration_seconds` of its composition (:mod:`peforge.dse.serve.cost`).
  A prefill of ``s`` tokens produces the first token; each decode step feeds the last one back
  and produces the next (the cost model's convention), so a request of ``g`` output tokens
  takes one prefill and ``g - 1`` decode steps.
- **KV cache.** Paged: blocks of ``block_tokens`` tokens; a request holds
  ``ceil(tokens / block_tokens)`` blocks, so the unused tail of its last block is internal
  fragmentation (counted: :attr:`SimResult.peak_kv_tokens` against the blocks held). The pool
  has ``PoolCost.kv_blocks`` blocks (memory less weights and one prefill's workspace).
- **Admission.** FCFS: the head of the queue is admitted when its blocks fit (``reserve =
  "prompt"``: its prompt plus one token, vLLM's rule; ``"full"``: prompt plus every output
  token, so nothing is ever preempted) and fewer than ``max_running`` run; nobody overtakes it.
- **Preemption** (``reserve = "prompt"``). When a decode step needs a block and none is free,
  the most recently admitted running request is preempted by recompute: its blocks are freed
  and it goes back to the head of the queue; readmitted, it prefills its prompt and every token
  generated so far in one prefill (which produces its next token). After a preemption nobody
  is admitted until a request finishes (so the victim does not bounce in and out).
- **Time advances** by whole iterations; an arrival during an iteration waits for the next one.
  Runs of decode-only iterations with the same batch are advanced together (their times are
  a cumulative sum of :meth:`PoolCost.decode_cumulative`), up to the next finish, the next block
  the pool cannot give, or the iteration at whose end a new request has arrived.

Disaggregated serving (Splitwise): :func:`simulate_disaggregated` runs the prefill pool on
prompts only, sends each request's KV cache over a link (latency + bytes / bandwidth) and runs
the decode pool on requests that arrive with their KV cache filled.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .cost import BLOCK_TOKENS, Composition, PoolCost
from .trace import Trace

__all__ = ["Scheduler", "SimResult", "Link", "simulate", "simulate_pool", "simulate_disaggregated"]


@dataclass(frozen=True, kw_only=True)
class Scheduler:
    """How a pool batches and admits requests (the module's rules).

    Parameters
    ----------
    block_tokens : tokens per KV block
    chunk_tokens : token budget per iteration for chunked prefill (None: whole prefills)
    max_batch_tokens : prompt tokens one iteration may prefill without chunking
    reserve : ``prompt`` (admit on the prompt's blocks, preempt by recompute) or ``full``
    max_running : requests that may run together (None: the pool's decode grid top)
    kv_blocks : KV blocks of the pool (None: what the design's memory holds)
    """

    block_tokens: int = BLOCK_TOKENS
    chunk_tokens: int | None = None
    max_batch_tokens: int = 8192
    reserve: str = "prompt"
    max_running: int | None = None
    kv_blocks: int | None = None

    def __post_init__(self):
        if type(self.block_tokens) is not int or self.block_tokens < 1:
            raise ValueError(f"block_tokens={self.block_tokens!r}: allowed a positive integer")
        if self.chunk_tokens is not None and (type(self.chunk_tokens) is not int or self.chunk_tokens < 2):
            raise ValueError(f"chunk_tokens={self.chunk_tokens!r}: allowed an integer of at least 2, or None")
        if type(self.max_batch_tokens) is not int or self.max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens={self.max_batch_tokens!r}: allowed a positive integer")
        if self.reserve not in ("prompt", "full"):
            raise ValueError(f"reserve={self.reserve!r}: allowed prompt, full")
        if self.max_running is not None and (type(self.max_running) is not int or self.max_running < 1):
            raise ValueError(f"max_running={self.max_running!r}: allowed a positive integer, or None")
        if self.kv_blocks is not None and (type(self.kv_blocks) is not int or self.kv_blocks < 1):
            raise ValueError(f"kv_blocks={self.kv_blocks!r}: allowed a positive integer, or None")


@dataclass(frozen=True, kw_only=True)
class Link:
    """The link that carries a request's KV cache from the prefill pool to the decode pool.

    Defaults: one 400 Gb/s InfiniBand NDR port (50 GB/s; NVIDIA ConnectX-7, the adapter of the
    DGX H100 that Splitwise's clusters use) and 5 µs per transfer (an estimate of an RDMA
    write's setup; not a measured figure).
    """

    bandwidth_bytes_per_s: float = 50e9
    latency_s: float = 5e-6

    def __post_init__(self):
        if not self.bandwidth_bytes_per_s > 0:
            raise ValueError(f"bandwidth_bytes_per_s={self.bandwidth_bytes_per_s!r}: must be positive")
        if not self.latency_s >= 0:
            raise ValueError(f"latency_s={self.latency_s!r}: must be zero or more")

    def seconds(self, nbytes: np.ndarray) -> np.ndarray:
        """Time (s) to move ``nbytes`` bytes."""
        return self.latency_s + np.asarray(nbytes, dtype=np.float64) / self.bandwidth_bytes_per_s


@dataclass(frozen=True, kw_only=True)
class SimResult:
    """What a run of the simulator measured: per request (in trace order) and over time."""

    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    energy_j: float
    kv_blocks: int  # the pool's capacity (blocks; summed over instances)
    block_tokens: int
    peak_kv_blocks: int
    peak_kv_tokens: int  # tokens in the KV cache when the blocks peaked
    peak_running: int
    preemptions: int
    in_system_s: float  # integral of requests in the system (waiting + running) over time (request-seconds)
    area_mm2: float
    peak_kv_use: float  # the fullest chip's peak blocks over its capacity
    series: dict[str, np.ndarray] = field(default_factory=dict)  # t_s, running, kv_blocks (after each step run)

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.arrival_s

    @property
    def e2e_s(self) -> np.ndarray:
        return self.finish_s - self.arrival_s

    @property
    def tpot_s(self) -> np.ndarray:
        """Time per output token after the first (NaN for one-token requests)."""
        steps = self.output - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(steps > 0, (self.finish_s - self.first_token_s) / np.maximum(steps, 1), np.nan)


def _row(trace: Trace, i: int) -> int:
    return int(trace.rows[i]) if trace.rows is not None else i + 2


def _blocks(tokens, size: int):
    return -(-tokens // size)


def simulate(pool: PoolCost, trace: Trace, scheduler: Scheduler = Scheduler(), *,
             first_token_s: np.ndarray | None = None) -> SimResult:
    """Serve ``trace`` on one chip priced by ``pool``. ``first_token_s``: the requests arrive
    with their prompt's KV cache filled and their first token made at these times (the decode
    pool of a disaggregated service)."""
    sch = scheduler
    bs = sch.block_tokens
    n = len(trace)
    arr = trace.arrival_s
    arrival = arr.tolist()  # Python floats: the loop compares them one at a time
    s = trace.prompt.astype(np.int64)
    g = trace.output.astype(np.int64)
    positions = s + g - 1
    if positions.max() > pool.max_context:
        i = int(np.argmax(positions))
        raise ValueError(f"{trace.name}: row {_row(trace, i)}: needs {positions[i]} positions; the pool was priced up to "
                         f"{pool.max_context}")
    capacity = sch.kv_blocks if sch.kv_blocks is not None else pool.kv_blocks
    if sch.kv_blocks is None and bs != BLOCK_TOKENS:
        capacity = int(pool.kv_bytes // (pool.block_bytes * bs / BLOCK_TOKENS))
    full = _blocks(positions, bs)
    if full.max() > capacity:
        i = int(np.argmax(full))
        raise ValueError(f"{trace.name}: row {_row(trace, i)}: a request of {s[i]} + {g[i]} tokens needs {full[i]} KV blocks "
                         f"of {bs} tokens; {pool.design.name} holds {capacity}")
    max_running = min(sch.max_running or pool.max_batch, pool.max_batch)
    prefilled = first_token_s is not None
    kv = np.where(prefilled, s, 0).astype(np.int64)  # tokens in the KV cache
    k = np.full(n, 1 if prefilled else 0, dtype=np.int64)  # tokens generated
    need = np.where(prefilled, 0, s).astype(np.int64)  # tokens to prefill
    done_pre = np.zeros(n, dtype=np.int64)  # prefill progress
    held = np.zeros(n, dtype=np.int64)
    first = np.array(first_token_s, dtype=np.float64) if prefilled else np.full(n, np.nan)
    finish = np.full(n, np.nan)
    free = capacity
    waiting: deque[int] = deque()
    running: list[int] = []
    prefilling = 0  # running requests whose prefill is not done
    t, ai, finished = 0.0, 0, 0
    energy = area = 0.0
    preemptions, hold = 0, False
    peak_blocks = peak_tokens = peak_running = 0
    series_t, series_b, series_kv = [], [], []

    def advance(dt: float) -> None:
        nonlocal t, area
        end = t + dt
        area += (len(running) + len(waiting)) * dt
        j = ai
        while j < n and arrival[j] <= end:  # arrivals during the step are in the system from their arrival
            if arrival[j] > t:
                area += end - arrival[j]
            j += 1
        t = end

    def record() -> None:
        nonlocal peak_blocks, peak_tokens, peak_running
        used = capacity - free
        if used >= peak_blocks:  # the fullest point: most blocks, then most tokens in them
            tokens = int(kv[running].sum()) if running else 0
            if used > peak_blocks or tokens > peak_tokens:
                peak_blocks, peak_tokens = used, tokens
        peak_running = max(peak_running, len(running))
        series_t.append(t)
        series_b.append(len(running))
        series_kv.append(used)

    def retire(ids) -> None:
        nonlocal free, finished, hold
        for i in ids:
            finish[i] = t
            free += held[i]
            held[i] = 0
            running.remove(i)
            finished += 1
            hold = False

    def preempt() -> None:
        nonlocal free, preemptions, hold, prefilling
        victim = running.pop()
        if done_pre[victim] < need[victim]:
            prefilling -= 1
        free += held[victim]
        held[victim] = 0
        need[victim] = kv[victim] + 1 if kv[victim] else need[victim]  # recompute cached tokens + the pending one
        kv[victim] = 0
        done_pre[victim] = 0
        waiting.appendleft(victim)
        preemptions += 1
        hold = True

    while finished < n:
        while ai < n and arrival[ai] <= t:
            waiting.append(ai)
            ai += 1
        if not running and not waiting:
            t = arrival[ai]
            continue
        admitted = 0
        tokens = 0
        while waiting and not hold and len(running) < max_running:
            i = waiting[0]
            if sch.reserve == "full":
                want = full[i]
            else:
                want = _blocks(min(max(need[i], kv[i]) + 1, positions[i]), bs)
            if want > free:
                break
            if sch.chunk_tokens is None and tokens and tokens + need[i] > sch.max_batch_tokens:
                break
            waiting.popleft()
            free -= want
            held[i] = want
            running.append(i)
            if need[i] > 0:
                prefilling += 1
                tokens += need[i]
            admitted += 1
        if not running:
            hold = False  # nothing runs, nothing can finish: let the head in when it fits
            continue
        if prefilling == 0:
            # a run of decode-only iterations with this batch
            ids = np.array(running)
            batch = len(ids)
            ctx = kv[ids]
            mean_ctx = float(ctx.sum()) / batch
            steps = int((g[ids] - k[ids]).min())
            # a request needs at most ceil(steps / bs) + 1 more blocks: only search when that may not fit
            if sch.reserve == "prompt" and free < batch * (steps // bs + 1):
                def extra(j: int) -> int:
                    return int(np.maximum(_blocks(ctx + j, bs) - held[ids], 0).sum())
                if extra(1) > free:
                    preempt()
                    continue
                if extra(steps) > free:
                    lo, hi = 1, steps  # extra(lo) fits, extra(hi) does not
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        lo, hi = (mid, hi) if extra(mid) <= free else (lo, mid)
                    steps = lo
            cum = pool.decode_cumulative(batch, int(round(mean_ctx)), steps)
            steps = min(steps, len(cum))
            if not waiting and ai < n:
                stop = int(np.searchsorted(cum[:steps], arrival[ai] - t, side="left")) + 1
                steps = max(1, min(steps, stop))
            dt = float(cum[steps - 1])
            energy += pool.decode_energy_j(batch, mean_ctx, steps)
            advance(dt)
            kv[ids] += steps
            k[ids] += steps
            grown = _blocks(kv[ids], bs)
            if sch.reserve == "prompt":
                more = np.maximum(grown - held[ids], 0)
                free -= int(more.sum())
                held[ids] += more
            record()
            retire([int(i) for i in ids[k[ids] >= g[ids]]])
            continue
        # a mixed iteration: decodes of the prefilled, prefill (chunks) of the others
        ids = np.array(running)
        is_dec = done_pre[ids] >= need[ids]
        dec = ids[is_dec]
        if sch.reserve == "prompt" and len(dec):
            if int(np.maximum(_blocks(kv[dec] + 1, bs) - held[dec], 0).sum()) > free:
                preempt()
                continue
        budget = (sch.chunk_tokens - len(dec)) if sch.chunk_tokens is not None else math.inf
        spans, work, ptoks = [], [], 0
        for i in ids[~is_dec]:
            take = int(min(need[i] - done_pre[i], budget - ptoks))
            if take <= 0:
                break
            spans.append((int(done_pre[i]), int(done_pre[i]) + take))
            work.append((int(i), take))
            ptoks += take
        context = float(kv[dec].mean()) if len(dec) else 0.0
        comp = Composition(prefill_tokens=ptoks, prefill_spans=tuple(spans), decodes=len(dec), context=context)
        energy += pool.iteration_energy_j(comp)
        advance(pool.iteration_seconds(comp))
        if len(dec):
            kv[dec] += 1
            k[dec] += 1
            if sch.reserve == "prompt":
                more = np.maximum(_blocks(kv[dec], bs) - held[dec], 0)
                free -= int(more.sum())
                held[dec] += more
        for i, take in work:
            done_pre[i] += take
            if done_pre[i] >= need[i]:
                prefilling -= 1
                kv[i] = need[i]
                k[i] += 1
                if np.isnan(first[i]):
                    first[i] = t
        record()
        retire([int(i) for i in ids[k[ids] >= g[ids]]])
    return SimResult(arrival_s=arr.copy(), first_token_s=first, finish_s=finish, prompt=s, output=g,
                     energy_j=energy, kv_blocks=capacity, block_tokens=bs, peak_kv_blocks=peak_blocks,
                     peak_kv_tokens=peak_tokens, peak_running=peak_running, preemptions=preemptions,
                     in_system_s=area, area_mm2=pool.area_mm2, peak_kv_use=peak_blocks / capacity,
                     series={"t_s": np.array(series_t), "running": np.array(series_b),
                             "kv_blocks": np.array(series_kv)})


def _merge(parts: list[tuple[np.ndarray, SimResult]], n: int, area_mm2: float) -> SimResult:
    """Instances' results put back in trace order (``parts``: the trace rows each served)."""
    fields_ = {name: np.empty(n) for name in ("arrival_s", "first_token_s", "finish_s")}
    prompt, output = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    for rows, r in parts:
        for name in fields_:
            fields_[name][rows] = getattr(r, name)
        prompt[rows], output[rows] = r.prompt, r.output
    first = parts[0][1]
    order = np.argsort(np.concatenate([r.series["t_s"] for _, r in parts]), kind="stable")
    series = {key: np.concatenate([r.series[key] for _, r in parts])[order] for key in first.series}
    return SimResult(**fields_, prompt=prompt, output=output, energy_j=sum(r.energy_j for _, r in parts),
                     kv_blocks=sum(r.kv_blocks for _, r in parts), block_tokens=first.block_tokens,
                     peak_kv_blocks=max(r.peak_kv_blocks for _, r in parts),
                     peak_kv_tokens=max(r.peak_kv_tokens for _, r in parts),
                     peak_running=max(r.peak_running for _, r in parts),
                     preemptions=sum(r.preemptions for _, r in parts),
                     in_system_s=sum(r.in_system_s for _, r in parts), area_mm2=area_mm2,
                     peak_kv_use=max(r.peak_kv_use for _, r in parts), series=series)


def _subset(trace: Trace, rows: np.ndarray, **replace) -> Trace:
    values = {"arrival_s": trace.arrival_s[rows], "prompt": trace.prompt[rows], "output": trace.output[rows]}
    values.update(replace)
    return Trace(**values, name=trace.name, columns=trace.columns,
                 rows=None if trace.rows is None else trace.rows[rows])


def simulate_pool(pool: PoolCost, trace: Trace, scheduler: Scheduler = Scheduler(), *, count: int = 1) -> SimResult:
    """Serve ``trace`` on ``count`` identical chips, requests dealt round-robin in arrival order."""
    if type(count) is not int or count < 1:
        raise ValueError(f"count={count!r}: allowed a positive integer")
    if count == 1:
        return simulate(pool, trace, scheduler)
    parts = []
    for j in range(count):
        rows = np.arange(j, len(trace), count)
        if len(rows):
            parts.append((rows, simulate(pool, _subset(trace, rows), scheduler)))
    return _merge(parts, len(trace), pool.area_mm2 * count)


def simulate_disaggregated(prefill: PoolCost, decode: PoolCost, trace: Trace, scheduler: Scheduler = Scheduler(),
                           *, prefill_count: int = 1, decode_count: int = 1, link: Link = Link()) -> SimResult:
    """Splitwise: prompts on ``prefill_count`` chips of the prefill pool, the KV cache sent over
    ``link``, the other tokens on ``decode_count`` chips of the decode pool (round-robin in each)."""
    n = len(trace)
    ones = np.ones(n, dtype=np.int64)
    front = simulate_pool(prefill, Trace(arrival_s=trace.arrival_s, prompt=trace.prompt, output=ones,
                                         name=trace.name), scheduler, count=prefill_count)
    per_token = decode.block_bytes / BLOCK_TOKENS
    ready = front.first_token_s + link.seconds(trace.prompt * per_token)
    more = np.nonzero(trace.output > 1)[0]
    finish = front.first_token_s.copy()
    energy = front.energy_j
    back = None
    if len(more):
        order = more[np.argsort(ready[more], kind="stable")]
        parts = []
        for j in range(decode_count):
            rows = order[j::decode_count]
            if len(rows):
                sub = _subset(trace, rows, arrival_s=ready[rows])
                parts.append((rows, simulate(decode, sub, scheduler, first_token_s=front.first_token_s[rows])))
        for rows, r in parts:
            finish[rows] = r.finish_s
        energy += sum(r.energy_j for _, r in parts)
        back = parts
    area = prefill.area_mm2 * prefill_count + decode.area_mm2 * decode_count
    kv_peak = max([front.peak_kv_blocks] + [r.peak_kv_blocks for _, r in back or []])
    # requests are in the system from arrival to finish (prefill pool, link, decode pool)
    in_system = float(np.sum(finish - trace.arrival_s))
    series = front.series if back is None else {key: np.concatenate([r.series[key] for _, r in back])
                                                 for key in front.series}
    if back is not None:
        order_t = np.argsort(series["t_s"], kind="stable")
        series = {key: v[order_t] for key, v in series.items()}
    return SimResult(arrival_s=trace.arrival_s.copy(), first_token_s=front.first_token_s, finish_s=finish,
                     prompt=trace.prompt, output=trace.output, energy_j=energy,
                     kv_blocks=front.kv_blocks + sum(r.kv_blocks for _, r in back or []),
                     block_tokens=front.block_tokens, peak_kv_blocks=kv_peak,
                     peak_kv_tokens=max([front.peak_kv_tokens] + [r.peak_kv_tokens for _, r in back or []]),
                     peak_running=max([front.peak_running] + [r.peak_running for _, r in back or []]),
                     preemptions=front.preemptions + sum(r.preemptions for _, r in back or []),
                     in_system_s=in_system, area_mm2=area,
                     peak_kv_use=max([front.peak_kv_use] + [r.peak_kv_use for _, r in back or []]), series=series)
