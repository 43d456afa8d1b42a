"""`peforge workloads` and `peforge workload show` as a user runs them."""

import json

import pytest

from peforge.models.config import zoo_names

LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "max_position_embeddings": 256}


def test_workloads_lists_shipped_models(peforge):
    table = peforge("workloads")
    assert table.returncode == 0, table.stderr
    for name in zoo_names():
        assert name in table.stdout
    assert "6.74B" in table.stdout  # llama-2-7b
    gpt2 = next(line for line in table.stdout.splitlines() if line.startswith("gpt2 "))
    assert "124.44M" in gpt2  # GPT-2 small: 124,439,808 parameters with tied embeddings, not "0.12B"
    rows = {r["name"]: r for r in json.loads(peforge("workloads", "--json").stdout)}
    # Mistral AI, "Mixtral of experts" (2023): 46.7B parameters, 12.9B used per token; to the last digit
    assert abs(rows["mixtral-8x7b"]["params"] - 46.7e9) <= 0.05e9
    assert abs(rows["mixtral-8x7b"]["active_params"] - 12.9e9) <= 0.05e9


def test_show_decode_table(peforge):
    result = peforge("workload", "show", "llama-2-7b", "--phase", "decode", "--batch", "16", "--kv", "2048",
                     "--quant", "w4a8kv8-g128")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("parameters 6.738 B", "quant w4a8kv8-g128", "batch 16", "2048 cached",
                 "attention", "q_proj", "attn.score", "mlp.down_proj", "lm_head", "total"):
        assert text in out
    # the attention score reads the 2048 cached keys plus the new one, per KV head and sequence
    score = next(line for line in out.splitlines() if "attn.score" in line).split()
    assert score[3:7] == ["1", "128", "2049", str(16 * 32)]


def test_show_json_matches_library(peforge):
    result = peforge("workload", "show", "mixtral-8x7b", "--phase", "prefill", "--seq", "64", "--batch", "2",
                     "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    # Mixtral's published shapes: h = 4096, KV width 1024, I = 14336, 2 of 8 experts, V = 32000,
    # 32 layers of 32 heads of 128. Each of T = 128 tokens meets Q, O (h^2 each), K, V (h x 1024),
    # the router (h x 8) and 2 experts (3 h I each); the LM head runs on the last token of each of
    # the 2 sequences; attention is 2 dense 64 x 64 x 128 products per head and sequence.
    h, kv_width, inter, vocab, layers, heads, d = 4096, 1024, 14336, 32000, 32, 32, 128
    tokens, batch, seq = 128, 2, 64
    per_token = layers * (2 * h * h + 2 * h * kv_width + h * 8 + 2 * 3 * h * inter)
    expected = tokens * per_token + batch * vocab * h + 2 * layers * batch * heads * seq * seq * d
    assert shown["totals"]["macs"] == expected
    assert shown["num_layers"] == 32 and shown["phase"] == "prefill" and shown["quant"] == "w16a16kv16"
    assert {op["name"] for op in shown["layer"]} >= {"router", "expert.up_proj", "attn.context"}


def test_show_reads_a_config_path(peforge, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA))
    result = peforge("workload", "show", str(path), "--phase", "decode", "--kv", "10", "--json")
    assert result.returncode == 0, result.stderr
    # h = 64, I = 128, 2 layers, 4 heads of 16, 2 KV heads (width 32), V = 100, untied head:
    # per layer Q, O 64 x 64, K, V 64 x 32, gate, up, down 64 x 128, 2 norms of 64 = 36992;
    # embedding and LM head 100 x 64 each, final norm 64
    assert json.loads(result.stdout)["params"] == 2 * 36_992 + 2 * 6_400 + 64 == 86_848


@pytest.mark.parametrize("change, key", [
    ({"hidden_size": None}, "'hidden_size' is missing"),
    ({"num_hidden_layers": "2"}, "'num_hidden_layers' must be an integer"),
    ({"vocab_size": -1}, "'vocab_size' = -1 is out of range"),
    ({"num_attention_heads": 6}, "'num_attention_heads' = 6 does not divide the hidden size 64"),
    ({"num_key_value_heads": 3}, "'num_key_value_heads' 3 does not divide"),
    ({"model_type": "falcon"}, "'model_type' = 'falcon' is not supported"),
])
def test_malformed_config_exits_2_with_one_line(peforge, tmp_path, change, key):
    raw = {k: v for k, v in {**LLAMA, **change}.items() if v is not None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    result = peforge("workload", "show", str(path), "--phase", "decode")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(path) in lines[0] and key in lines[0]


def test_truncated_json_exits_2(peforge, tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama", ')
    result = peforge("workload", "show", str(path), "--phase", "prefill")
    assert result.returncode == 2 and "not valid JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["llama-9", "--phase", "decode"], "is neither a shipped model"),
    (["llama-2-7b", "--phase", "decode", "--quant", "w9a8kv8"], "weight format '9' is not allowed"),
    (["llama-2-7b", "--phase", "decode", "--seq", "8"], "--seq applies to prefill only"),
    (["llama-2-7b", "--phase", "decode", "--batch", "0"], "--batch 0 is out of range"),
    (["llama-2-7b", "--phase", "decode", "--kv", "5000"], "exceeds the 4096 positions"),
    (["llama-2-7b", "--phase", "train"], "invalid choice: 'train'"),
])
def test_bad_arguments_exit_2(peforge, args, message):
    result = peforge("workload", "show", *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
