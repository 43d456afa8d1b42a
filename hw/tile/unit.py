"""The command port every unit of the tile shares (DMA, GEMM engines, vector unit).

The sequencer hands a unit one command at a time on ``cmd`` (a stream of the unit's command
layout). A unit takes a command in the cycle ``t`` in which ``cmd.valid`` and ``cmd.ready`` are
both high; ``ready`` is high exactly when the unit is idle. All of the command's effects (its
scratchpad and memory writes) are complete, and ``ready`` is high again, in cycle
``t + cycles(command)``, where ``cycles`` is the unit config's exact method (at least 1; the
DMA's depends on the memory behind it). ``busy`` is ``~ready``: high while a command runs.
"""

from __future__ import annotations

from typing import Any

from amaranth.lib import stream
from amaranth.lib.wiring import In, Out


def unit_ports(cmd_layout: Any) -> dict[str, Any]:
    """``cmd``: a stream of ``cmd_layout`` commands; ``busy``: high while one runs."""
    return {"cmd": In(stream.Signature(cmd_layout)), "busy": Out(1)}
