"""Block testbenches: stimulus, driving, golden comparison and cycle checks, written once.

Each block module provides ``async def run(bench, config, seed) -> Report``. The same
function runs in the Amaranth simulator (``peforge.sim.runners.simulate``) and under cocotb
on Verilator or Icarus (``peforge.sim.runners.run_cocotb``).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Report:
    """Outcome of one testbench run: cases, mismatches and the cycle counts measured."""

    block: str
    simulator: str = ""
    cases: int = 0
    ops: int = 0
    failures: list[str] = field(default_factory=list)
    cycles_checked: int = 0
    cycles_per_op: list[float] = field(default_factory=list)  # measured cycles per input beat, per job

    @property
    def passed(self) -> bool:
        return self.cases > 0 and not self.failures

    def expect(self, label: str, measured: Any, expected: Any) -> None:
        if measured != expected:
            self.failures.append(f"{label}: got {measured!r}, expected {expected!r}")

    def expect_cycles(self, label: str, measured: int, expected: int) -> None:
        self.cycles_checked += 1
        self.expect(f"{label} cycles", measured, expected)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        return cls(**data)

    def summary(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        mean = sum(self.cycles_per_op) / len(self.cycles_per_op) if self.cycles_per_op else 0.0
        return (f"{status} {self.block} [{self.simulator}]: {self.cases} cases, {self.ops} operations, "
                f"{self.cycles_checked} cycle counts checked, {mean:.2f} cycles per input beat, "
                f"{len(self.failures)} failures")


def testbench_module(block: str):
    """The testbench module of a block: ``peforge.sim.testbench.<block>``, the PIM blocks
    (``pim-bank``, ``pim-channel``) sharing ``pim``. A PE kind's module also provides the
    PE-specific stimulus the array testbench asks for (see :mod:`.systolic`)."""
    name = "pim" if block.startswith("pim-") else block
    return importlib.import_module(f"{__name__}.{name}")


def testbench_for(block: str):
    """The ``run(bench, config, seed) -> Report`` coroutine of a block's testbench."""
    return testbench_module(block).run


def activity_for(block: str):
    """The ``activity(bench, config, seed, n_ops) -> macs`` coroutine of a block: random operands
    only, back to back, for switching-activity measurement; returns the MACs performed."""
    return testbench_module(block).activity


@dataclass
class Job:
    """Beats streamed back to back, and what must come out.

    ``spans[j]`` is the index of the first beat that result ``j`` depends on; results come in
    order. ``intervals[b]`` is how many cycles after beat ``b`` the next beat must be accepted
    (the block's initiation interval: no idle cycle allowed).
    """

    label: str
    beats: list[int]
    intervals: list[int]
    spans: list[int]
    results: list[int]
    cycles: list[int]


async def run_job(bench, report: Report, job: Job, decode) -> None:
    """Stream ``job`` through the block, compare results and cycle counts with the expectation."""
    from ..bench import drive_stream

    trace = await drive_stream(bench, job.beats, len(job.results))
    report.cases += 1
    report.ops += len(job.results)
    for b in range(len(job.beats) - 1):
        report.expect(f"{job.label}: beat {b + 1} accepted after", trace.accepted[b + 1] - trace.accepted[b],
                      job.intervals[b])
    report.expect(f"{job.label}: number of results", len(trace.outputs), len(job.results))
    for j, ((cycle, payload), first_beat) in enumerate(zip(trace.outputs, job.spans)):
        report.expect(f"{job.label}: result {j}", decode(payload), job.results[j])
        report.expect_cycles(f"{job.label}: result {j}", cycle - trace.accepted[first_beat], job.cycles[j])
    if len(trace.accepted) > 1:
        report.cycles_per_op.append((trace.accepted[-1] - trace.accepted[0]) / (len(trace.accepted) - 1))
