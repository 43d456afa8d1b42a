"""Collective communication between the chips of a system: time and link bytes of each algorithm.

Every function takes numpy arrays (or numbers) that broadcast together, one entry per design, so
a batch of systems is priced in one pass. ``nbytes`` is the size of the whole tensor each chip
holds (an all-reduce's input, an all-gather's output, an all-to-all's send buffer), ``p`` the
chips taking part, and the link figures are a chip's: ``bw`` its bandwidth per direction over all
its links (``links x link_gb_per_s``, bytes/s), ``alpha`` the latency of one algorithm step (s).

The algorithms (the standard ones; Thakur, Rabenseifner and Gropp, "Optimization of Collective
Communication Operations in MPICH", IJHPCA 2005; Patarasuk and Yuan, "Bandwidth optimal all-reduce
algorithms for clusters of workstations", JPDC 2009):

- **ring** (a bidirectional ring, half of a chip's links towards each neighbour): all-reduce =
  reduce-scatter + all-gather, ``2 (p-1)/p x nbytes / bw + 2 (p-1) alpha``; all-gather and
  reduce-scatter half of that. All-to-all: each chip's ``nbytes / p`` for every other chip goes
  the short way round, ``sum_j min(j, p-j)`` hops of ``nbytes / p``, every chip's links equally
  loaded: ``hops x nbytes / p / bw + floor(p/2) alpha``.
- **fully_connected** (every chip reaches every other at its full bandwidth: a non-blocking switch
  such as NVSwitch, or a full mesh): the same bandwidth terms (each chip must still send and
  receive ``(p-1)/p`` of the data twice for an all-reduce) in one step each: all-reduce
  ``2 (p-1)/p x nbytes / bw + 2 alpha``; all-to-all ``(p-1)/p x nbytes / bw + alpha``.
- **torus2d** (``a x b`` chips, ``a`` the largest divisor of ``p`` up to ``sqrt(p)``, a quarter of
  the links on each of the four neighbours): all-reduce by rings along the rows then the columns,
  the data split in two halves going row-first and column-first at once so both dimensions'
  links are busy: ``2 (p-1)/p x nbytes / bw + 2 (a-1 + b-1) alpha``. All-to-all dimension by
  dimension (rows, then columns), each a ring all-to-all on half of the links.
- **point to point** (a pipeline stage handing its activations to the next): ``nbytes / bw_pair +
  alpha``, ``bw_pair`` the links between two neighbours: all of a chip's (fully connected), half
  (ring) or a quarter (torus).

The link bytes returned (what the link energy is charged on) are the bytes each chip puts on its
links, a forwarded hop counted again.
"""

from __future__ import annotations

import numpy as np

from ..design.links import TOPOLOGIES

__all__ = ["all_reduce", "all_gather", "reduce_scatter", "all_to_all",
           "point_to_point", "torus_sides"]

_CODES = {name: i for i, name in enumerate(TOPOLOGIES)}


def torus_sides(p) -> tuple[np.ndarray, np.ndarray]:
    """The ``a x b`` layout of ``p`` chips on a 2D torus: ``a`` the largest divisor of ``p`` not
    above ``sqrt(p)`` (1 x p for a prime: a ring)."""
    p = np.asarray(p, dtype=np.int64)
    a = np.ones_like(p)
    for d in range(2, int(np.sqrt(max(int(p.max(initial=1)), 1))) + 1):
        a = np.where((p % d == 0) & (d * d <= p), d, a)
    return a, p // np.maximum(a, 1)


def _code(topology) -> np.ndarray:
    """Topology codes (index into :data:`TOPOLOGIES`) of names or codes."""
    t = np.asarray(topology)
    if t.dtype.kind in "US":
        return np.vectorize(_CODES.__getitem__, otypes=[np.int64])(t)
    return t.astype(np.int64)


def _ring_hops(p) -> np.ndarray:
    """``sum_{j=1}^{p-1} min(j, p-j)``: hops of a ring all-to-all's messages (closed form)."""
    p = np.asarray(p, dtype=np.float64)
    half = np.floor(p / 2)
    return half * (half + 1) - np.where(p % 2 == 0, half, 0.0)


def _by_topology(t: np.ndarray, ring, full, torus):
    """Each design's value for its topology; a variant is computed only where some design has it
    (``ring``, ``full``, ``torus``: callables)."""
    out = 0.0
    for code, variant in enumerate((ring, full, torus)):
        here = t == code
        if here.any():
            out = np.where(here, variant(), out)
    return out


def all_reduce(nbytes, p, bw, alpha, topology) -> tuple[np.ndarray, np.ndarray]:
    """(time s, link bytes per chip) of an all-reduce of ``nbytes`` over ``p`` chips."""
    p = np.asarray(p, dtype=np.float64)
    t = _code(topology)
    moved = 2 * (p - 1) / p * np.asarray(nbytes, dtype=np.float64)

    def torus():
        a, b = torus_sides(p.astype(np.int64))
        return 2 * (a - 1 + b - 1)

    steps = _by_topology(t, lambda: 2 * (p - 1), lambda: np.where(p > 1, 2.0, 0.0), torus)
    return moved / bw + steps * alpha, moved


def reduce_scatter(nbytes, p, bw, alpha, topology) -> tuple[np.ndarray, np.ndarray]:
    """(time s, link bytes per chip) of a reduce-scatter: half an all-reduce."""
    time, moved = all_reduce(nbytes, p, bw, alpha, topology)
    return time / 2, moved / 2


def all_gather(nbytes, p, bw, alpha, topology) -> tuple[np.ndarray, np.ndarray]:
    """(time s, link bytes per chip) of an all-gather of ``nbytes`` in all: the reduce-scatter's
    traffic and steps, reversed."""
    return reduce_scatter(nbytes, p, bw, alpha, topology)


def _ring_all_to_all(nbytes, p, bw, alpha):
    hops = _ring_hops(p) * nbytes / np.maximum(p, 1)
    return hops / bw + np.floor(p / 2) * alpha, hops


def all_to_all(nbytes, p, bw, alpha, topology) -> tuple[np.ndarray, np.ndarray]:
    """(time s, link bytes per chip) of an all-to-all: each chip sends ``nbytes / p`` to every chip."""
    p = np.asarray(p, dtype=np.float64)
    nbytes = np.asarray(nbytes, dtype=np.float64)
    t = _code(topology)

    def torus():
        a, b = (s.astype(np.float64) for s in torus_sides(p.astype(np.int64)))
        rows, cols = _ring_all_to_all(nbytes, a, bw / 2, alpha), _ring_all_to_all(nbytes, b, bw / 2, alpha)
        return np.stack(np.broadcast_arrays(rows[0] + cols[0], rows[1] + cols[1]))

    def full():
        return np.stack(np.broadcast_arrays((p - 1) / p * nbytes / bw + np.where(p > 1, alpha, 0.0),
                                            (p - 1) / p * nbytes))

    both = _by_topology(t, lambda: np.stack(np.broadcast_arrays(*_ring_all_to_all(nbytes, p, bw, alpha))),
                        full, torus)
    both = np.broadcast_to(both, (2, *np.broadcast(nbytes, p, bw, alpha, t).shape))
    return both[0], both[1]


def point_to_point(nbytes, bw, alpha, topology) -> tuple[np.ndarray, np.ndarray]:
    """(time s, link bytes) of ``nbytes`` sent to a neighbour over the links between the two."""
    share = np.choose(_code(topology), [0.5, 1.0, 0.25])
    nbytes = np.asarray(nbytes, dtype=np.float64)
    return nbytes / (bw * share) + alpha, nbytes
