"""`peforge sweep`, `peforge report` and `peforge export-design` as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from peforge.sim.tools import missing_simulator
from tools import need

# One PE configuration (MAC 8x8), so a fresh cache characterizes once, in seconds.
SPACE = """
description = "test space"

[workload]
model = "llama-2-7b"
seq = 128
gen = 16
quant = "w8a8kv8"

[fixed]
tech = "7nm"
[fixed.compute]
pe = "mac"
[fixed.compute.pe_params]
a_bits = 8
w_bits = 8

[param."compute.rows"]
type = "int"
low = 8
high = 64
scale = "pow2"

[param."compute.cols"]
type = "int"
low = 8
high = 64
scale = "pow2"

[param."compute.dataflow"]
type = "categorical"
choices = ["ws", "os"]

[param."compute.clock_mhz"]
type = "float"
low = 200.0
high = 1000.0
step = 100.0

[param."memory.units"]
type = "int"
low = 1
high = 4

[param.batch]
type = "int"
low = 1
high = 8
scale = "pow2"

[objectives]
tokens_per_s = "maximize"
area_mm2 = "minimize"

[constraints]
power_w = { max = 1.0 }
"""

VOLATILE = ["duration_s", "started", "worker"]


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


def sweep_args(space: Path, out: Path, *extra: str) -> list[str]:
    return ["sweep", "--space", str(space), "--out", str(out), "--no-progress", *extra]


def finished_study(peforge, root: Path, trials: int) -> tuple[Path, Path]:
    """A study of ``trials`` trials of :data:`SPACE` swept in ``root``: (space file, study folder)."""
    space = root / "space.toml"
    space.write_text(SPACE)
    out = root / "study"
    result = peforge(*sweep_args(space, out, "--trials", str(trials)))
    assert result.returncode == 0, result.stderr
    return space, out


def table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "trials.csv")


def test_same_seed_same_table(peforge, space_file, tmp_path):
    runs = []
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        result = peforge(*sweep_args(space_file, tmp_path / name, "--trials", "40", "--seed", seed))
        assert result.returncode == 0, result.stderr
        runs.append(table(tmp_path / name).drop(columns=VOLATILE))
    assert len(runs[0]) == 40
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert not runs[0].equals(runs[2])
    for name in ("trials.parquet", "trials.csv", "pareto.csv", "pareto.png", "report.html", "study.log"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    front = pd.read_csv(tmp_path / "a" / "pareto.csv")
    assert len(front) == runs[0]["pareto"].sum() > 0
    html = (tmp_path / "a" / "report.html").read_text()
    # namespace names (xmlns attributes, the SVG namespace the script creates elements in) are not fetched
    loads = re.sub(r'xmlns(:\w+)?="[^"]*"', "", html).replace("http://www.w3.org/2000/svg", "")
    assert "<svg" in html and "http://" not in loads and "https://" not in loads
    parquet = pd.read_parquet(tmp_path / "a" / "trials.parquet")
    assert list(parquet["trial"]) == list(range(40))


def test_failed_evaluation_is_recorded_and_study_goes_on(peforge, space_file, tmp_path):
    # Clocks up to 9 GHz: far above the MAC's characterized Fmax, so the cost model refuses those.
    space_file.write_text(SPACE.replace("high = 1000.0", "high = 9000.0").replace("step = 100.0", "step = 1000.0"))
    out = tmp_path / "s"
    result = peforge(*sweep_args(space_file, out, "--trials", "40", "--sampler", "random"))
    assert result.returncode == 0, result.stderr
    frame = table(out)
    assert len(frame) == 40
    failed = frame[frame["state"] == "FAIL"]
    assert len(failed) > 0 and (frame["state"] == "COMPLETE").sum() > 0
    assert failed["fail_reason"].str.contains("Fmax").all()
    assert f"{len(failed)} failed" in result.stdout


def test_design_over_its_memory_capacity_is_a_failed_trial(peforge, space_file, tmp_path):
    # LPDDR5 channels of 2 GiB: Llama-2-7B's 6.6 GiB of INT8 weights need all four
    space_file.write_text(SPACE.replace("[fixed.compute]\n", "[fixed.memory]\ntechnology = \"LPDDR5\"\n[fixed.compute]\n"))
    out = tmp_path / "cap"
    result = peforge(*sweep_args(space_file, out, "--trials", "16", "--sampler", "random"))
    assert result.returncode == 0, result.stderr
    frame = table(out)
    failed = frame[frame["state"] == "FAIL"]
    assert len(failed) > 0 and (frame["state"] == "COMPLETE").sum() > 0
    assert failed["fail_reason"].str.contains(r"llama-2-7b needs [\d.]+ GiB \(weights 6\.").all()
    assert (failed["memory.units"] < 4).all() and (frame.loc[frame["state"] == "COMPLETE", "memory.units"] == 4).all()


@pytest.mark.parametrize("sampler", ["grid", "tpe", "qmc"])
def test_other_samplers(peforge, space_file, tmp_path, sampler):
    if sampler == "grid":  # 4 x 4 x 2 points: the whole grid by default, each point once
        space_file.write_text(SPACE.replace("low = 1.0", "low = 1").replace(
            "[param.\"compute.clock_mhz\"]\ntype = \"float\"\nlow = 200.0\nhigh = 1000.0\nstep = 100.0", "")
            .replace("[param.\"memory.units\"]\ntype = \"int\"\nlow = 1\nhigh = 4", "")
            .replace("[param.batch]\ntype = \"int\"\nlow = 1\nhigh = 8\nscale = \"pow2\"", ""))
    out = tmp_path / sampler
    flags = ("--sampler", sampler) + (() if sampler == "grid" else ("--trials", "25"))
    result = peforge(*sweep_args(space_file, out, *flags))
    assert result.returncode == 0, result.stderr
    frame = table(out)
    if sampler == "grid":
        assert len(frame) == 32
        assert not frame.duplicated(["compute.rows", "compute.cols", "compute.dataflow"]).any()
    else:
        assert len(frame) == 25 and (frame["state"] == "COMPLETE").all()


def stored_trials(out: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    """Every trial of ``study`` in ``out/study.log``, read through Optuna's journal storage (no writes)."""
    from peforge.dse.search.storage import JOURNAL, open_storage

    if not (out / JOURNAL).exists():
        return []
    try:
        loaded = optuna.load_study(study_name=study, storage=open_storage(JOURNAL, out))
    except KeyError:  # the sweep has not created the study yet
        return []
    return loaded.get_trials(deepcopy=False)


def finished(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Trials that count toward ``--trials`` and are done: complete, or failed in their evaluation
    (the sweep records ``fail_reason``); not the interrupted or surplus ones (``uncounted``)."""
    return [t for t in trials if "uncounted" not in t.user_attrs
            and (t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and "fail_reason" in t.user_attrs))]


def completed(out: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    return [t for t in stored_trials(out, study) if t.state == TrialState.COMPLETE]


def start(args: list[str]) -> subprocess.Popen:
    """The CLI in its own session: its process group is the sweep and every worker it forks."""
    return subprocess.Popen([sys.executable, "-m", "peforge", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


WARMUP_TIMEOUT = 600  # s: a sweep's first trial waits for its space's cold characterizations


def wait_for(out: Path, study: str, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``count`` trials are complete: ``timeout`` seconds once the first one is (which
    may take up to :data:`WARMUP_TIMEOUT` on a cold cache or a busy machine)."""
    for target, limit in ((1, WARMUP_TIMEOUT), (count, timeout)):
        deadline = time.monotonic() + limit
        while len(completed(out, study)) < target:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the sweep did not get going"
            time.sleep(0.1)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies waiting to be reaped do not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone while we looked
        if int(group) == pgid and state != "Z":
            return True
    return False


def kill_with_trials_in_flight(process: subprocess.Popen, out: Path, study: str, done: int,
                               timeout: float = 60) -> list[optuna.trial.FrozenTrial]:
    """SIGKILL the sweep's whole process group once ``done`` trials are finished and one is RUNNING.

    The group is frozen (SIGSTOP) while the journal is read, so the trials returned are the
    journal at the moment of the kill; a freeze that finds no trial in flight thaws and retries.
    """
    assert Path("/proc/self/stat").exists(), "the kill tests read /proc (Linux)"
    pgid = os.getpgid(process.pid)
    wait_for(out, study, 1, process)
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "the sweep ended before it could be killed: " + str(process.communicate())
        assert time.monotonic() < deadline, f"no moment with {done} finished trials and one in flight"
        if len(finished(stored_trials(out, study))) >= done:
            os.killpg(pgid, signal.SIGSTOP)
            frozen = stored_trials(out, study)
            if any(t.state == TrialState.RUNNING for t in frozen):
                os.killpg(pgid, signal.SIGKILL)
                process.wait(timeout=30)
                while group_alive(pgid):  # the workers are the parent's children, killed with it
                    assert time.monotonic() < deadline + 30, "a worker outlived SIGKILL"
                    time.sleep(0.05)
                return frozen
            os.killpg(pgid, signal.SIGCONT)
        time.sleep(0.05)


def check_resume(out: Path, study: str, requested: int, before: list[optuna.trial.FrozenTrial],
                 result: subprocess.CompletedProcess) -> None:
    """After ``--resume``: no completed trial lost or changed, the trials in flight at the kill marked
    interrupted and not counted, and the resume started exactly the missing number of trials."""
    assert result.returncode == 0, result.stderr
    in_flight = [t.number for t in before if t.state == TrialState.RUNNING]
    assert in_flight, "the kill must interrupt at least one trial"
    done_before = finished(before)
    assert 0 < len(done_before) < requested
    after = {t.number: t for t in stored_trials(out, study)}
    for t in done_before:  # kept as they were
        kept = after[t.number]
        assert kept.state == t.state and kept.values == t.values and kept.user_attrs["params"] == t.user_attrs["params"]
    for number in in_flight:
        assert after[number].state == TrialState.FAIL
        assert after[number].user_attrs["uncounted"].startswith("interrupted")
    last_before = max(t.number for t in before)
    started = [t for number, t in after.items() if number > last_before
               and not t.user_attrs.get("uncounted", "").startswith("surplus")]  # surplus: asked, dropped unrun
    assert all(t.state.is_finished() and "uncounted" not in t.user_attrs for t in started)
    assert len(done_before) + len(started) == requested
    assert len(finished(list(after.values()))) == requested
    frame = table(out)  # the table holds the interrupted rows too, marked
    assert frame["trial"].is_unique and len(frame) == requested + len(in_flight)
    interrupted = frame["fail_reason"].fillna("").str.startswith("interrupted")
    assert sorted(frame.loc[interrupted, "trial"]) == in_flight
    assert f"{requested} trials" in result.stdout


# The shipped edge space (five PE configurations, characterized once per test session);
# a trial takes milliseconds, so enough are requested that the kill lands mid-sweep.
KILL_TRIALS = 1500


def test_sigkill_then_resume_runs_exactly_the_missing_trials(peforge, space_file, tmp_path):
    out = tmp_path / "k"
    process = start(sweep_args(space_file, out, "--trials", str(KILL_TRIALS), "--study", "k"))
    before = kill_with_trials_in_flight(process, out, "k", done=40)
    assert process.returncode == -signal.SIGKILL
    result = peforge(*sweep_args(space_file, out, "--resume"))
    check_resume(out, "k", KILL_TRIALS, before, result)


def test_two_workers_killed_mid_sweep_then_resumed(peforge, space_file, tmp_path):
    out = tmp_path / "k2"
    process = start(sweep_args(space_file, out, "--trials", str(KILL_TRIALS), "--study", "k2", "--n-jobs", "2"))
    before = kill_with_trials_in_flight(process, out, "k2", done=60)
    assert process.returncode == -signal.SIGKILL
    assert len({t.user_attrs.get("worker") for t in finished(before)}) == 2  # both workers had run trials
    result = peforge(*sweep_args(space_file, out, "--resume", "--n-jobs", "2"))
    check_resume(out, "k2", KILL_TRIALS, before, result)


def test_sigint_stops_cleanly_and_writes_outputs(space_file, tmp_path):
    out = tmp_path / "i"
    process = start(sweep_args(space_file, out, "--trials", "100000", "--study", "i"))
    wait_for(out, "i", 40, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    frame = table(out)
    assert len(frame) >= 40 and set(frame["state"]) <= {"COMPLETE", "FAIL"}
    assert (out / "pareto.png").stat().st_size > 0 and (out / "report.html").exists()


def test_two_worker_processes_share_the_journal(peforge, space_file, tmp_path):
    out = tmp_path / "j"
    result = peforge(*sweep_args(space_file, out, "--trials", "120", "--n-jobs", "2"))
    assert result.returncode == 0, result.stderr
    frame = table(out)
    assert len(frame) == 120 and frame["trial"].is_unique and (frame["state"] == "COMPLETE").all()
    assert frame["worker"].nunique() == 2


@pytest.mark.parametrize("edit, flags, message", [
    (("type = \"categorical\"", "type = \"set\""), (), "type must be one of"),
    (("tokens_per_s = \"maximize\"", "tokens = \"maximize\""), (), "objectives.tokens: unknown metric"),
    (None, ("--trials", "0"), "--trials 0: allowed 1..1000000"),
    (None, ("--n-jobs", "0"), "--n-jobs 0: must be 1..64"),
    (None, ("--workload", "no-such-model"), "no-such-model"),
    (None, ("--phases", "decode"), "needs the decode phase") ,
    (None, ("--storage", "nonsense"), "not a database URL"),
    (None, ("--sampler", "annealing"), "invalid choice"),
    (None, ("--resume",), "holds no study to continue"),
    (None, ("--sampler", "grid", "--trials", "100000"), "has only"),
])
def test_bad_input_one_line_exit_2_nothing_written(peforge, space_file, tmp_path, edit, flags, message):
    if edit:
        space_file.write_text(SPACE.replace(*edit, 1))
    if message == "needs the decode phase":
        space_file.write_text(SPACE.replace("tokens_per_s = \"maximize\"", "ttft_s = \"minimize\""))
        flags = ("--phases", "decode")
        message = "ttft_s needs the prefill phase"
    out = tmp_path / "bad"
    result = peforge(*sweep_args(space_file, out, *flags))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("peforge: error:") and message in lines[0], result.stderr
    assert not out.exists()


def test_existing_study_needs_resume(peforge, space_file, tmp_path):
    out = tmp_path / "e"
    assert peforge(*sweep_args(space_file, out, "--trials", "5")).returncode == 0
    listing = sorted(p.name for p in out.iterdir())
    result = peforge(*sweep_args(space_file, out, "--trials", "5"))
    assert result.returncode == 2 and "pass --resume" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == listing


@pytest.fixture(scope="module")
def exported(peforge, tmp_path_factory) -> tuple[Path, Path, int]:
    """A 30-trial study with ``--export-top 1`` and one front design exported: (study, rtl, trial)."""
    root = tmp_path_factory.mktemp("exported")
    space, out, rtl = root / "space.toml", root / "r", root / "rtl"
    space.write_text(SPACE)
    result = peforge(*sweep_args(space, out, "--trials", "30", "--export-top", "1"))
    assert result.returncode == 0, result.stderr
    number = int(pd.read_csv(out / "pareto.csv")["trial"].iloc[0])
    result = peforge("export-design", str(out), "--trial", str(number), "--out", str(rtl), "--no-full-size")
    assert result.returncode == 0, result.stderr
    return out, rtl, number


def test_report_and_export_design(peforge, exported, tmp_path):
    out, rtl, number = exported
    assert len(list((out / "rtl").iterdir())) == 1
    (out / "report.html").unlink()
    result = peforge("report", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "report.html").exists() and "30 trials" in result.stdout
    blocks = json.loads((rtl / "blocks.json").read_text())
    assert [b["folder"] for b in blocks][:1] == ["pe"]
    for block in blocks:
        assert (rtl / block["verilog"]).read_text().lstrip().startswith(("/*", "module", "//", "(*"))
        check = peforge("verify", block["block"], *block["params"], "--sim", "amaranth")
        assert check.returncode == 0 and check.stdout.startswith("PASS"), check.stdout + check.stderr
    assert (rtl / "README.md").read_text().count("peforge verify ") == len(blocks)  # not verify-design
    assert (rtl / "design.toml").exists() and (rtl / "run_tb.py").exists()
    bad = peforge("export-design", str(out), "--trial", "999", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--trial 999" in bad.stderr and not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def icarus() -> None:
    need(missing_simulator("icarus"))


def test_exported_design_testbench_passes_on_icarus(icarus, exported):  # icarus first: no sweep without it
    _out, rtl, _number = exported
    run = subprocess.run([sys.executable, str(rtl / "run_tb.py"), "--sim", "icarus", "--only", "pe"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "PASS" in run.stdout, run.stdout + run.stderr
