"""Integer arithmetic every layer shares."""

from __future__ import annotations

import numpy as np


def ceil_div(a, b):
    """``ceil(a / b)`` for non-negative integers, or numpy arrays of them (float arrays of whole
    numbers too). Floats take ``ceil`` of the true quotient, several times faster than floor
    division and as exact below 2**53: a quotient that is not a whole number lies at least
    ``1 / b`` from one, farther than its rounding error (``a / b`` x 2**-53) unless ``a >= 2**53``."""
    if _floating(a) or _floating(b):
        return np.ceil(np.divide(a, b))
    return -(-a // b)


def _floating(x) -> bool:
    return isinstance(x, float) or getattr(getattr(x, "dtype", None), "kind", "") == "f"
