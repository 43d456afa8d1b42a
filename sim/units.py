"""Driving a tile unit's command port (:mod:`peforge.hw.tile.unit`) from a testbench, written once."""

from __future__ import annotations

from dataclasses import dataclass

from .bench import Bench


@dataclass(frozen=True)
class CommandTiming:
    """When one command was taken and when its unit was ready again (cycles, from the first offer)."""

    accepted: int
    ready: int

    @property
    def cycles(self) -> int:
        """What the unit's ``cycles(command)`` must equal."""
        return self.ready - self.accepted


async def issue_commands(bench: Bench, payloads: list[int], *, prefix: str = "cmd",
                         timeout: int = 100_000) -> list[CommandTiming]:
    """Offer each command (a packed payload) the cycle the unit is ready, so they run back to
    back, and wait until the unit is ready after the last one.

    Cycle 0 is the first cycle a command is offered; a command is taken in a cycle in which
    ``ready`` (registered in every unit) is high at its start.
    """
    timings: list[CommandTiming] = []
    accepted = None
    cycle = 0
    index = 0
    while index < len(payloads) or accepted is not None:
        ready = bool(bench.get(f"{prefix}__ready"))
        if ready and accepted is not None:
            timings.append(CommandTiming(accepted, cycle))
            accepted = None
        offering = ready and index < len(payloads)
        bench.set(f"{prefix}__valid", int(offering))
        if offering:
            bench.set(f"{prefix}__payload", payloads[index])
            accepted = cycle
            index += 1
        if index == len(payloads) and accepted is None:
            break
        await bench.tick()
        cycle += 1
        if cycle > timeout:
            raise TimeoutError(f"unit stalled: {len(timings)}/{len(payloads)} commands done after {cycle} cycles")
    bench.set(f"{prefix}__valid", 0)
    return timings
