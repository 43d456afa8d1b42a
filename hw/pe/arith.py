"""Arithmetic building blocks shared by the PEs: shift-and-add products and balanced adder trees."""

from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Const, Mux, Value


def tree_sum(terms: Sequence[Value]) -> Value:
    """Sum ``terms`` with a balanced adder tree (depth ceil(log2(n)) adders, not a chain of n)."""
    level = list(terms)
    if not level:
        return Const(0)
    while len(level) > 1:
        paired = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def shift_add_product(multiplicand: Value, multiplier: Value, *, negate_msb: Value | bool) -> Value:
    """``multiplicand × multiplier`` as a sum of shifted copies of ``multiplicand``; no multiplier cell.

    Bit ``b`` of ``multiplier`` selects ``multiplicand << b``. With ``negate_msb`` true (a
    constant or a run-time signal) the top bit weighs ``-2**(n-1)``: ``multiplier`` is then read
    as two's complement.
    """
    multiplicand = Value.cast(multiplicand)
    n = len(multiplier)
    terms = []
    for b in range(n):
        shifted = multiplicand << b
        if b == n - 1 and negate_msb is not False:
            shifted = Mux(negate_msb, -shifted, shifted) if negate_msb is not True else -shifted
        terms.append(Mux(multiplier[b], shifted, 0))
    return tree_sum(terms)
