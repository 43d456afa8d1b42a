"""Integer arithmetic every layer shares."""

from __future__ import annotations


def ceil_div(a, b):
    """``ceil(a / b)`` for integers, or numpy arrays of them (float arrays of whole numbers too):
    by floor division, which is exact where ``a / b`` rounds."""
    return -(-a // b)
