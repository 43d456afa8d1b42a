"""Bad and hostile inputs, one class of mistake each: exit status 2, exactly one line on stderr that
names the file or flag and the key, no traceback, and nothing written.

Run in-process through ``peforge.cli.main`` (the same code path as the command, without an
interpreter start per case), each in an empty working folder whose contents are compared
before and after.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peforge.cli import main
from test_tech_presets_cli import PRESET as USER_PRESET

GOOD_DESIGN = 'quant = "w8a8kv8"\n[compute]\npe = "mac"\nrows = 8\ncols = 8\nclock_mhz = 200.0\n'
SPACE = """
[workload]
model = "gpt2"
seq = 16
gen = 2
quant = "w8a8kv8"
[fixed.compute]
pe = "mac"
clock_mhz = 200.0
[param."compute.rows"]
type = "categorical"
choices = [4, 8]
[objectives]
tokens_per_s = "maximize"
"""
LLAMA = ('{{"model_type": "llama", "hidden_size": {h}, "num_hidden_layers": {layers}, "num_attention_heads": 32, '
         '"intermediate_size": 11008, "vocab_size": 32000, "max_position_embeddings": 4096}}')
# a user preset whose SRAM table has a size of half a byte
PRESET = USER_PRESET.split("[sram]")[0] + "[sram]\num2_per_bit = 0.58\nread_pj_per_bit = [[0.5, 0.15]]\n"


def _files(here: Path) -> dict[str, str]:
    """The inputs each case may use, written into the working folder."""
    return {
        "empty.toml": "",
        "rows-text.toml": '[compute]\nrows = "8"\n',
        "nosuch-tech.toml": 'tech = "nosuch"\n' + GOOD_DESIGN,
        "no-memory.toml": GOOD_DESIGN + '[memory]\ntechnology = "SRAM"\n',
        "design.toml": GOOD_DESIGN,
        "huge-layers.json": LLAMA.format(h=4096, layers=10**8),
        "huge-hidden.json": LLAMA.format(h=2**1100, layers=32),
        "not-json.json": "{",
        "space.toml": SPACE,
        "nan-space.toml": SPACE + "[constraints]\narea_mm2 = { max = nan }\n",
        "unknown-metric.toml": SPACE + "[constraints]\nbananas = { max = 1.0 }\n",
        "half-byte.toml": PRESET,
        "a-file": "not a folder\n",
        "bad-study/study.json": "{ not json",
    }


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An empty working folder with the input files and a FIFO; returns its path."""
    for name, text in _files(tmp_path).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "folder.toml").mkdir()
    os.mkfifo(tmp_path / "fifo.toml")
    os.mkfifo(tmp_path / "fifo.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


EVALUATE = ["evaluate", "--design", "design.toml", "--workload", "gpt2"]
SWEEP = ["sweep", "--space", "space.toml", "--trials", "2", "--no-progress", "--out", "study"]

CASES = [
    # design files
    (["evaluate", "--design", "folder.toml", "--workload", "gpt2"], ["folder.toml", "is a folder"]),
    (["evaluate", "--design", "fifo.toml", "--workload", "gpt2"], ["fifo.toml", "not a regular file"]),
    (["evaluate", "--design", "empty.toml", "--workload", "gpt2"], ["empty.toml", "[compute]"]),
    (["evaluate", "--design", "rows-text.toml", "--workload", "gpt2"], ["rows-text.toml", "Compute.rows must be int"]),
    (["evaluate", "--design", "nosuch-tech.toml", "--workload", "gpt2"], ["nosuch-tech.toml", "'nosuch'", "45nm"]),
    (["evaluate", "--design", "no-memory.toml", "--workload", "gpt2"], ["no-memory.toml", "memory.technology='SRAM'"]),
    (["evaluate", "--design", "missing.toml", "--workload", "gpt2"], ["missing.toml", "no such file"]),
    (["evaluate", "--design", "nodesign", "--workload", "gpt2"], ["--design", "edge"]),
    # workloads
    (["evaluate", "--design", "design.toml", "--workload", "huge-layers.json"], ["huge-layers.json", "num_hidden_layers", "1..512"]),
    (["evaluate", "--design", "design.toml", "--workload", "huge-hidden.json"], ["huge-hidden.json", "hidden_size"]),
    (["evaluate", "--design", "design.toml", "--workload", "not-json.json"], ["not-json.json", "not valid JSON"]),
    (["evaluate", "--design", "design.toml", "--workload", "fifo.json"], ["fifo.json", "not a regular file"]),
    (["evaluate", "--design", "design.toml", "--workload", "no-such-model"], ["no-such-model", "llama-2-7b"]),
    ([*EVALUATE, "--gen", "-1"], ["--gen -1"]),
    ([*EVALUATE, "--gen", "5000"], ["--gen 5000"]),
    ([*EVALUATE, "--seq", "0"], ["--seq 0"]),
    ([*EVALUATE, "--batch", "1000000"], ["--batch 1000000", "1..4096"]),
    ([*EVALUATE, "--batch", str(10**30)], ["--batch", "1..4096"]),
    ([*EVALUATE, "--quant", "w99"], ["w99"]),
    ([*EVALUATE, "--quant", ""], ["quantization scheme", "w4a8kv4-g128"]),
    ([*EVALUATE, "--phase", "all"], ["--phase", "prefill"]),
    # sweeps: nothing may be written for any of these
    ([*SWEEP, "--gen", "-1"], ["--gen -1"]),
    ([*SWEEP, "--seed", "-1"], ["--seed -1"]),
    ([*SWEEP, "--seed", str(2**40)], ["--seed", "0..4294967295"]),
    ([*SWEEP, "--storage", "sqlite://"], ["sqlite://", "in-memory"]),
    ([*SWEEP, "--storage", "nonsense://x"], ["nonsense://x", "not a database URL"]),
    ([*SWEEP, "--storage", ""], ["--storage", "empty"]),
    ([*SWEEP, "--resume", "--join"], ["--resume", "--join"]),
    ([*SWEEP, "--trials", "0"], ["--trials 0"]),
    ([*SWEEP, "--n-jobs", "0"], ["--n-jobs 0"]),
    ([*SWEEP, "--sampler", "annealing"], ["--sampler", "nsga2"]),
    ([*SWEEP, "--phases", "prefill,bogus"], ["--phases", "prefill"]),
    ([*SWEEP, "--export-top", "-1"], ["--export-top -1"]),
    ([*SWEEP, "--export-top", str(10**30)], ["--export-top", "0..100"]),
    ([*SWEEP, "--trials", str(10**30)], ["--trials", "1..1000000"]),
    (["characterize", "mac", "--cache-dir", "a-file"], ["--cache-dir", "a-file", "not a folder"]),
    (["workload", "show", "gpt2", "--phase", "decode", "--batch", str(10**30)], ["batch", "1..1048576"]),
    (["sweep", "--space", "space.toml", "--trials", "2", "--out", "a-file"], ["a-file", "not a folder"]),
    (["sweep", "--space", "space.toml", "--trials", "2", "--out", "a-file/sub"], ["a-file", "not a folder"]),
    (["sweep", "--space", "fifo.toml", "--out", "study"], ["fifo.toml", "not a regular file"]),
    (["sweep", "--space", "nan-space.toml", "--out", "study"], ["nan-space.toml", "constraints.area_mm2.max", "finite"]),
    (["sweep", "--space", "unknown-metric.toml", "--out", "study"], ["constraints.bananas", "tokens_per_s"]),
    (["sweep", "--space", "missing.toml", "--out", "study"], ["missing.toml", "edge"]),
    (["sweep", "--space", "space.toml", "--outt", "study"], ["--outt"]),
    (["sweep", "--space", "space.toml", "--out", "study", "--resume"], ["--resume", "study"]),
    # study folders
    (["report", "nowhere"], ["nowhere", "not a study folder"]),
    (["report", "bad-study"], ["study.json", "not valid JSON"]),
    (["export-design", "nowhere", "--trial", "0", "--out", "rtl"], ["nowhere", "not a study folder"]),
    # blocks
    (["characterize", "mac", "w_bits=99"], ["MacConfig.w_bits=99", "2..16"]),
    (["characterize", "mac", "nope=1"], ["'nope'", "a_bits"]),
    (["characterize", "mac", "w_bits=8", "w_bits=9"], ["w_bits", "twice"]),
    (["export", "systolic", "pe.k=1", "pe=bitserial", "pe.k=2", "--out", "rtl"], ["pe.k", "twice"]),
    (["characterize", "mac", "--tech", "nosuch"], ["'nosuch'", "45nm"]),
    (["characterize", "mac", "--tech", "half-byte.toml"], ["half-byte.toml", "whole number of bytes"]),
    (["characterize", "mac", "--tech", "fifo.toml"], ["fifo.toml", "not a regular file"]),
    (["export", "nosuchblock", "--out", "rtl"], ["'nosuchblock'", "mac"]),
    (["export", "mac", "--out", "a-file"], ["a-file"]),
    (["verify", "mac", "--sim", "modelsim"], ["--sim", "amaranth"]),
    (["workload", "show", "llama-2-7b", "--phase", "decode", "--batch", "-1"], ["--batch -1"]),
    (["workload", "show", "fifo.json", "--phase", "decode"], ["fifo.json", "not a regular file"]),
    (["blocks", "--json", "extra"], ["extra"]),
]


@pytest.mark.parametrize("argv, needles", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(work, capsys, argv, needles):
    before = _snapshot(work)
    status = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert _snapshot(work) == before, "something was written"


def test_at_least_forty_distinct_cases():
    assert len({tuple(argv) for argv, _ in CASES}) >= 40
