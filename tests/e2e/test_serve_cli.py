"""`peforge serve` as a user runs it: bad traces are one line and exit 2."""

from __future__ import annotations

import json

import pytest

HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"


@pytest.mark.parametrize("body, where", [
    ("Timestamp,Model,Request tokens,Total tokens\n5,ChatGPT,10,20\n", ["row 1", "'Response tokens' missing"]),
    (HEADER + "5,ChatGPT,10,5,15,x\n9,ChatGPT,-3,5,2,x\n", ["row 3", "'Request tokens'", "negative"]),
    (HEADER + "5,ChatGPT,10,5,15,x\n4,ChatGPT,10,5,15,x\n", ["row 3", "'Timestamp'", "before the row above"]),
    (HEADER + "5,ChatGPT,10,5,15,x\nsoon,ChatGPT,10,5,15,x\n", ["row 3", "'Timestamp'", "'soon'"]),
    (HEADER + "5,ChatGPT,10,5,15,x\n6,ChatGPT,4000,200,4200,x\n",
     ["row 3", "'Request tokens' + 'Response tokens'", "4096"]),
    (HEADER + "5,ChatGPT,ten,5,15,x\n", ["row 2", "'Request tokens'", "not a number"]),
])
def test_bad_trace_is_one_line(peforge, tmp_path, body, where):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    result = peforge("serve", "--design", "edge", "--workload", "llama-2-7b", "--trace", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(path) in lines[0]
    for text in where:
        assert text in lines[0], lines[0]


def test_bad_synthetic_and_slo_are_one_line(peforge):
    for args, text in ((("--trace", "synthetic:rate=1"), "give at least rate=R,n=N"),
                       (("--slo", "ttft=1"), "allowed keys ttft_p99, tpot_p99"),
                       (("--rate", "0"), "--rate 0")):
        result = peforge("serve", "--design", "edge", "--workload", "llama-2-7b", *args)
        assert result.returncode == 2 and text in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_serve_prints_metrics_and_writes_pictures(peforge, tmp_path):
    # prices the edge design: its bit-serial PE's characterization (shared with the evaluate CLI tests)
    out = tmp_path / "out"
    result = peforge("serve", "--design", "edge", "--workload", "llama-2-7b", "--trace",
                     "synthetic:rate=0.2,n=40,prompt=200,output=40", "--slo", "ttft_p99=5,tpot_p99=0.5",
                     "--out", str(out), "--json", timeout=1800)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["requests"] == 40
    assert metrics["ttft_p99_s"] >= metrics["ttft_p90_s"] >= metrics["ttft_p50_s"] > 0
    assert 0 <= metrics["goodput_rps"] <= metrics["throughput_rps"]
    for name in ("latency.png", "timeline.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "metrics.json").read_text())["requests"] == 40


def test_a_system_of_chips_is_refused_in_one_line(peforge):
    # a pool's tables price one chip: an 8-chip tensor-parallel design would be priced as one of its chips
    result = peforge("serve", "--design", "datacenter-x8", "--workload", "llama-2-7b",
                     "--trace", "synthetic:rate=0.2,n=4,prompt=20,output=4")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "system.chips=8" in lines[0] and "Traceback" not in result.stderr, result.stderr
