"""The port shape every streaming block shares: an input stream and a result output."""

from __future__ import annotations

from typing import Any

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def stream_ports(config: Any) -> dict[str, Any]:
    """``i``: a stream of ``config.in_layout()`` (with ``ready``); ``o``: ``valid`` and a
    ``config.out_layout()`` payload, no back-pressure (a plain signature: an always-ready
    stream cannot be a top-level port of exported Verilog)."""
    return {
        "i": In(stream.Signature(config.in_layout())),
        "o": Out(wiring.Signature({"valid": Out(1), "payload": Out(config.out_layout())})),
    }
