"""One way to drive a block, whatever simulates it.

A :class:`Bench` reads and writes top-level ports by their Verilog names (``i__payload``,
``o__valid``: how ``amaranth.back.verilog`` flattens nested ports) and advances one clock.
Its two implementations, :class:`AmaranthBench` and :class:`CocotbBench`, give the same
timing: ``set`` values are applied before the next rising edge, and after ``tick`` every
``get`` returns the settled value just after that edge. Block testbenches are written once
against this interface and run unchanged in the Amaranth simulator, Verilator and Icarus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Bench(Protocol):
    def set(self, port: str, value: int) -> None: ...

    def get(self, port: str) -> int:
        """The port's value as an unsigned integer."""
        ...

    async def tick(self) -> None: ...

    async def reset(self) -> None:
        """Hold the synchronous reset for one clock edge."""
        ...


class AmaranthBench:
    """A :class:`Bench` over an Amaranth async testbench context."""

    def __init__(self, ctx: Any, component: Any, rst: Any):
        self._ctx = ctx
        self._component = component
        self._rst = rst

    def _port(self, name: str) -> Any:
        obj = self._component
        for part in name.split("__"):
            obj = getattr(obj, part)
        return obj.as_value() if hasattr(obj, "as_value") else obj

    def set(self, port: str, value: int) -> None:
        self._ctx.set(self._port(port), value)

    def get(self, port: str) -> int:
        value = self._port(port)
        return self._ctx.get(value) & ((1 << len(value)) - 1)

    async def tick(self) -> None:
        await self._ctx.tick()

    async def reset(self) -> None:
        self._ctx.set(self._rst, 1)
        await self._ctx.tick()
        self._ctx.set(self._rst, 0)


class CocotbBench:
    """A :class:`Bench` over a cocotb DUT with ports ``clk`` and ``rst``.

    Writes are buffered and applied at the falling edge, so inputs are stable at the rising
    edge; reads happen in the read-only phase right after the rising edge.
    """

    def __init__(self, dut: Any):
        self._dut = dut
        self._pending: dict[str, int] = {}

    def set(self, port: str, value: int) -> None:
        self._pending[port] = value

    def get(self, port: str) -> int:
        return int(getattr(self._dut, port).value)

    async def tick(self) -> None:
        from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

        await FallingEdge(self._dut.clk)
        for port, value in self._pending.items():
            handle = getattr(self._dut, port)
            handle.value = value & ((1 << len(handle)) - 1)
        self._pending.clear()
        await RisingEdge(self._dut.clk)
        await ReadOnly()

    async def reset(self) -> None:
        self.set("rst", 1)
        await self.tick()
        self.set("rst", 0)


@dataclass
class StreamTrace:
    """What :func:`drive_stream` saw: the cycle each beat was accepted, and each output."""

    accepted: list[int] = field(default_factory=list)
    outputs: list[tuple[int, int]] = field(default_factory=list)  # (cycle, payload)


async def drive_stream(bench: Bench, beats: list[int], n_outputs: int, *, timeout: int = 100_000,
                       prefix: str = "i", out_prefix: str = "o") -> StreamTrace:
    """Offer ``beats`` on stream ``i`` back to back and collect ``n_outputs`` payloads from ``o``.

    Cycle 0 is the first cycle a beat is offered. A beat is accepted in a cycle where
    ``ready`` (which the blocks derive from registers only) was high at its start; an output
    is recorded at the cycle in which ``o__valid`` is high.
    """
    trace = StreamTrace()
    ready = bench.get(f"{prefix}__ready")
    cycle = 0
    index = 0
    while index < len(beats) or len(trace.outputs) < n_outputs:
        offering = index < len(beats)
        bench.set(f"{prefix}__valid", int(offering))
        if offering:
            bench.set(f"{prefix}__payload", beats[index])
        await bench.tick()
        if offering and ready:
            trace.accepted.append(cycle)
            index += 1
        cycle += 1
        if bench.get(f"{out_prefix}__valid"):
            trace.outputs.append((cycle, bench.get(f"{out_prefix}__payload")))
        ready = bench.get(f"{prefix}__ready")
        if cycle > timeout:
            raise TimeoutError(f"stream stalled: {index}/{len(beats)} beats accepted, "
                               f"{len(trace.outputs)}/{n_outputs} outputs after {cycle} cycles")
    bench.set(f"{prefix}__valid", 0)
    return trace


async def reset_during(bench: Bench, beats: list[int], *, cycles: int = 2, prefix: str = "i") -> None:
    """Offer ``beats`` on stream ``i`` for ``cycles`` cycles (one beat per cycle, the last one held),
    then reset in the middle of that work and leave ``valid`` low: what follows must not see it."""
    bench.set(f"{prefix}__valid", 1)
    for cycle in range(cycles):
        bench.set(f"{prefix}__payload", beats[min(cycle, len(beats) - 1)])
        await bench.tick()
    await bench.reset()
    bench.set(f"{prefix}__valid", 0)
