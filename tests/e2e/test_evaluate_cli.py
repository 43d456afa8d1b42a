"""`peforge evaluate` as a user runs it."""

import json

import pytest
from tools import FPMAC_CELL_FIT


def test_evaluate_shipped_design_json(peforge):
    result = peforge("evaluate", "--design", "edge", "--workload", "qwen2-0.5b", "--seq", "64", "--gen", "8",
                     "--quant", "w4a8kv8-g128", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    metrics = data["metrics"]
    for key in ("ttft_s", "tpot_s", "tokens_per_s", "j_per_token", "area_mm2", "power_w"):
        assert metrics[key] > 0, key
    assert metrics["tokens_per_s"] == pytest.approx(1 / metrics["tpot_s"])  # batch 1
    operators = data["operators"]
    assert {op["phase"] for op in operators} == {"prefill", "decode"}
    assert sum(op["time_s"] for op in operators if op["phase"] == "prefill") == pytest.approx(metrics["ttft_s"])
    # every unit cost used names where it comes from
    assert set(data["sources"]) >= {"pe_area_um2", "pj_per_mac", "memory_pj_per_bit", "sram_pj_per_bit"}
    assert "characterization of the bitserial PE" in data["sources"]["pj_per_mac"]


@FPMAC_CELL_FIT
def test_evaluate_table_names_every_operator(peforge):
    # the first test of its group: it makes the FP16 fpmac cell fit the group shares (minutes)
    result = peforge("evaluate", "--design", "pim", "--workload", "gpt2", "--gen", "4", "--phase", "decode",
                     timeout=1800)
    assert result.returncode == 0, result.stderr
    assert "TPOT" in result.stdout and "TTFT" not in result.stdout
    for name in ("attn.score", "mlp", "lm_head"):
        assert name in result.stdout


@pytest.mark.parametrize("body, message", [
    ("[compute]\nrows = 0\n", "Compute.rows=0 is out of range"),
    ("[compute]\nspeed = 1\n", "unknown key 'compute.speed'"),
    ("[compute]\nclock_mhz = 9000.0\n", "exceeds the characterized Fmax"),
    ("[compute]\n[pim]\nbanks = 0\n", "Pim.banks=0 is out of range"),
    ("[compute]\n[sram]\nweight_kib = 1\n", "cannot double-buffer one 128x128 weight tile"),
    ("[pim]\nbanks = 4\n", "no [compute] table"),
    ("[compute\n", "not valid TOML"),
])
def test_bad_design_file_one_line_exit_2(peforge, tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    result = peforge("evaluate", "--design", str(path), "--workload", "gpt2", "--gen", "2")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--design", "nowhere"], "not a shipped design"),
    (["--design", "edge", "--seq", "0"], "--seq 0: must be at least 1"),
    (["--design", "edge", "--quant", "w5"], "quantization scheme 'w5'"),
])
def test_bad_flags_one_line_exit_2(peforge, args, message):
    result = peforge("evaluate", "--workload", "gpt2", *args)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_prefill_only_at_the_models_full_context(peforge):
    """Llama-2-7B has 4096 positions: a 4096-token prompt whose prefill makes the one token fits."""
    result = peforge("evaluate", "--design", "edge", "--workload", "llama-2-7b", "--phase", "prefill",
                     "--seq", "4096", "--gen", "1")
    assert result.returncode == 0, result.stderr
    assert "TTFT" in result.stdout and "TPOT" not in result.stdout
    assert "decode" not in result.stdout.split("time by operator class")[1]


@pytest.mark.parametrize("args, message", [
    (["--phase", "prefill", "--seq", "4096", "--gen", "2"],
     "--gen 2: a prompt of 4096 tokens plus 2 generated ones needs 4097 positions; llama-2-7b has 4096 "
     "(allowed --gen 1..1 with --seq 4096)"),
    (["--seq", "100", "--gen", "1"], "--gen 1: the prefill produces the only token, so there is no decode step "
                                     "to price; allowed --gen 2..3997 with --seq 100, or --phase prefill"),
    (["--phase", "decode", "--seq", "4096", "--gen", "1"], "allowed --seq 1..4095 for a decode step"),
])
def test_runs_beyond_the_context_rejected_in_one_line(peforge, args, message):
    result = peforge("evaluate", "--design", "edge", "--workload", "llama-2-7b", *args)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_model_over_the_memory_capacity_one_line_exit_2(peforge):
    # Llama-2-70B in FP16 (128.5 GiB of weights) on the edge design's 4 LPDDR5 channels of 2 GiB
    result = peforge("evaluate", "--design", "edge", "--workload", "llama-2-70b", "--quant", "w16a16kv16")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "llama-2-70b needs 128.8 GiB (weights 128.5" in result.stderr and "edge has 8 GiB" in result.stderr
    assert result.stdout == ""
