"""Trace readers and the synthetic generator."""

from __future__ import annotations

import numpy as np
import pytest

from peforge.dse.serve.trace import CONVERSATION, read_trace, shipped_trace, synthetic


def test_burstgpt_drops_failed_requests_and_keeps_rows(tmp_path):
    path = tmp_path / "burst.csv"
    path.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                    "5,ChatGPT,472,18,490,Conversation log\n"
                    "45,ChatGPT,1087,230,1317,Conversation log\n"
                    "46,GPT-4,100,0,100,Conversation log\n"
                    "118,GPT-4,417,276,693,Conversation log\n")
    trace = read_trace(path)
    assert trace.arrival_s.tolist() == [0.0, 40.0, 113.0]
    assert trace.prompt.tolist() == [472, 1087, 417]
    assert trace.output.tolist() == [18, 230, 276]
    assert trace.rows.tolist() == [2, 3, 5]
    with pytest.raises(ValueError, match=r"row 3: columns 'Request tokens' \+ 'Response tokens'"):
        trace.check_context(1200, "m")


def test_azure_date_times(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46.6805900,374,44\n"
                    "2023-11-16 18:15:50.9951690,396,109\n")
    trace = read_trace(path)
    assert trace.arrival_s[1] == pytest.approx(4.314579, abs=1e-5)
    assert trace.prompt.tolist() == [374, 396]


def test_synthetic_lengths_and_rate():
    trace = synthetic(n=20000, rate_rps=4.0, max_positions=4096, seed=11)
    assert np.median(trace.prompt) == pytest.approx(1020, rel=0.03)
    assert np.median(trace.output) == pytest.approx(129, rel=0.03)
    assert trace.rate_rps == pytest.approx(4.0, rel=0.03)
    assert (trace.prompt + trace.output - 1).max() <= 4096
    bursty = synthetic(n=20000, rate_rps=4.0, arrivals="gamma", cv=3.0, seed=11)
    gaps = np.diff(bursty.arrival_s)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.1)
    assert bursty.rate_rps == pytest.approx(4.0, rel=0.1)


def test_shipped_trace_follows_its_stated_medians():
    trace = read_trace(shipped_trace("conversation"))
    assert len(trace) == 1000
    assert np.median(trace.prompt) == pytest.approx(CONVERSATION["prompt_median"], rel=0.05)
    assert np.median(trace.output) == pytest.approx(CONVERSATION["output_median"], rel=0.05)
