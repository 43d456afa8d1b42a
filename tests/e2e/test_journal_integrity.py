"""A study journal cut by a full disk, a truncated copy or a garbage tail: `report` names the
file and the byte offset and overwrites nothing, `sweep --resume` repairs it (keeping a backup)
and no completed trial is lost."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest

from test_sweep_cli import finished_study, sweep_args


@pytest.fixture(scope="module")
def study(tmp_path_factory, peforge):
    """A finished 30-trial study to damage copies of."""
    return finished_study(peforge, tmp_path_factory.mktemp("journal"), 30)


def _completed(folder) -> set[int]:
    frame = pd.read_csv(folder / "trials.csv")
    return set(frame.loc[frame["state"] == "COMPLETE", "trial"])


def _check_report_refuses(peforge, folder, offset):
    before = (folder / "trials.csv").read_bytes()
    result = peforge("report", str(folder))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "study.log" in lines[0] and f"after byte {offset}" in lines[0] and "--resume" in lines[0]
    assert (folder / "trials.csv").read_bytes() == before  # the complete table is kept


def _check_resume_repairs(peforge, space, folder, trials, kept):
    result = peforge(*sweep_args(space, folder, "--trials", str(trials), "--resume"))
    assert result.returncode == 0, result.stderr
    assert list(folder.glob("study.log.damaged-*")), "the damaged journal is kept"
    assert kept <= _completed(folder), "a completed trial was lost"
    frame = pd.read_csv(folder / "trials.csv")
    counted = frame[~frame["fail_reason"].astype("string").fillna("").str.startswith("interrupted")]
    assert len(counted) == trials


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_tail_is_named_then_repaired(peforge, study, tmp_path, damage):
    space, original = study
    folder = tmp_path / damage
    shutil.copytree(original, folder)
    journal = folder / "study.log"
    data = journal.read_bytes()
    if damage == "truncated":  # a copy cut in the middle of the last record
        good = data.rstrip(b"\n").rfind(b"\n") + 1
        journal.write_bytes(data[:good + (len(data) - good) // 2])
    else:  # a garbage line after complete records
        good = len(data)
        journal.write_bytes(data + b"\x00\x00 not a record\n{\"op_code\": 4,")
    kept = _completed(original) if damage == "garbage" else _completed(original) - {max(_completed(original))}
    _check_report_refuses(peforge, folder, good)
    _check_resume_repairs(peforge, space, folder, 35, kept)


def _limit_file_size(limit: int):
    def apply():  # a full disk: writes past `limit` bytes fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_mid_sweep_loses_no_completed_trial(peforge, study, tmp_path):
    space, _ = study
    folder = tmp_path / "full"
    limit = 40_000  # bytes: the journal fills up after a dozen trials
    cut = subprocess.run([sys.executable, "-m", "peforge", *sweep_args(space, folder, "--trials", "60")],
                         capture_output=True, text=True, timeout=600, preexec_fn=_limit_file_size(limit))
    assert cut.returncode == 2, cut.stderr
    lines = cut.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cut.stderr, cut.stderr
    assert "study.log" in lines[0] and "File too large" in lines[0] and "--resume" in lines[0]
    assert (folder / "study.log").stat().st_size <= limit
    result = peforge(*sweep_args(space, folder, "--trials", "60", "--resume"))
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(folder / "trials.csv")
    counted = frame[~frame["fail_reason"].astype("string").fillna("").str.startswith("interrupted")]
    assert len(counted) == 60 and (counted["state"] == "COMPLETE").all()
