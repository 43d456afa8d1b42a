"""Packing Python values into the flat bit vectors of Amaranth data layouts, and back."""

from __future__ import annotations

from typing import Any

from amaranth.lib import data


def pack(layout: data.Layout, fields: dict[str, Any]) -> int:
    """The integer a port of ``layout`` holds for ``fields`` (lists for array members)."""
    return layout.const(fields).as_value().value


def unpack(layout: data.Layout, bits: int, name: str) -> int:
    """Field ``name`` of a ``layout`` value read as ``bits``, signed if the field is signed."""
    return int(getattr(layout.from_bits(bits), name))
