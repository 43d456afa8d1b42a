"""ModelConfig: reading config.json families, parameter counts against published figures, errors."""

import dataclasses
import json
import re

import pytest

from peforge.models.config import ModelConfigError, from_hf_dict, load_config, zoo_names

# Published totals, parameters, each as printed with the unit of its last digit: the count is
# checked to within half that unit (the rounding of the figure itself; e.g. 6.74 B: +-0.005 B).
# Sources: the Hugging Face model page of each checkpoint (the parameter count of its
# safetensors, rounded as shown), and where named the paper or the vendor's announcement.
PUBLISHED = {
    "llama-2-7b": (6.74e9, 0.01e9),  # meta-llama/Llama-2-7b-hf: 6.74B
    "llama-2-70b": (69.0e9, 0.1e9),  # meta-llama/Llama-2-70b-hf: 69B (Touvron et al. 2023: 70B, rounded)
    "llama-3-8b": (8.03e9, 0.01e9),  # meta-llama/Meta-Llama-3-8B: 8.03B
    "mistral-7b": (7.24e9, 0.01e9),  # mistralai/Mistral-7B-v0.1: 7.24B
    "mixtral-8x7b": (46.7e9, 0.1e9),  # Mistral AI, "Mixtral of experts" (2023): 46.7B total
    "opt-6.7b": (6.66e9, 0.01e9),  # facebook/opt-6.7b: 6.66B
    "qwen2-0.5b": (494e6, 1e6),  # Qwen/Qwen2-0.5B: 494M (Qwen2 technical report: 0.49B)
    "gpt2": (124e6, 1e6),  # openai-community/gpt2: "the smallest version of GPT-2, with 124M parameters"
    # the tile's test model, no checkpoint: from its shapes (h 64, KV width 32, I 176, V 256), exact:
    # 2 V h (embedding, LM head) + 2 h^2 + 2 h 32 (q, o; k, v) + 3 h I + 2 h (norms) + h (final norm)
    "tiny-llama": (2 * 256 * 64 + 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 176 + 2 * 64 + 64, 1),
}


def within_published(count: int, figure: float, digit: float) -> bool:
    return abs(count - figure) <= digit / 2


def test_every_shipped_model_has_a_published_figure():
    assert set(zoo_names()) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_published_figure(name):
    figure, digit = PUBLISHED[name]
    assert within_published(load_config(name).params, figure, digit), load_config(name).params


def test_mixtral_active_parameters():
    cfg = load_config("mixtral-8x7b")
    # Mistral AI, "Mixtral of experts" (2023): "only uses 12.9B parameters per token"
    assert within_published(cfg.active_params, 12.9e9, 0.1e9), cfg.active_params
    assert (cfg.num_experts, cfg.experts_per_token) == (8, 2)


def test_llama_2_7b_exact_count():
    # 32 x (4 h^2 + 3 h I + 2 h) + 2 V h + h, from the published shapes
    h, inter, vocab = 4096, 11008, 32000
    assert load_config("llama-2-7b").params == 32 * (4 * h * h + 3 * h * inter + 2 * h) + 2 * vocab * h + h


OPT_350M = {  # post-norm OPT with a 512-wide embedding projected in and out
    "model_type": "opt", "hidden_size": 1024, "ffn_dim": 4096, "num_hidden_layers": 24,
    "num_attention_heads": 16, "word_embed_proj_dim": 512, "vocab_size": 50272,
    "max_position_embeddings": 2048, "do_layer_norm_before": False,
}
PHI_2 = {
    "model_type": "phi", "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 32,
    "num_attention_heads": 32, "vocab_size": 51200, "max_position_embeddings": 2048,
    "partial_rotary_factor": 0.4, "hidden_act": "gelu_new", "tie_word_embeddings": False,
}
PHI_3_MINI = {
    "model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
    "max_position_embeddings": 4096, "sliding_window": 2047, "tie_word_embeddings": False,
}


@pytest.mark.parametrize("raw, published, digit", [
    (OPT_350M, 331e6, 1e6),  # facebook/opt-350m: 331M
    (PHI_2, 2.78e9, 0.01e9),  # microsoft/phi-2: 2.78B
    (PHI_3_MINI, 3.82e9, 0.01e9),  # microsoft/Phi-3-mini-4k-instruct: 3.82B
])
def test_other_families(raw, published, digit):
    count = from_hf_dict(raw, name="x").params
    assert within_published(count, published, digit), count


def test_family_specific_keys():
    opt = from_hf_dict(OPT_350M, name="opt-350m")
    assert opt.embed_dim == 512 and not opt.final_norm and opt.learned_positions == 2050
    phi = from_hf_dict(PHI_2, name="phi-2")
    assert phi.parallel_block and phi.rotary_dim == 32 and phi.head_dim == 80
    gpt2 = load_config("gpt2")
    assert gpt2.intermediate_size == 4 * 768 and gpt2.tied_embeddings  # n_inner null -> 4 h
    qwen = load_config("qwen2-0.5b")
    assert qwen.qkv_bias and not qwen.out_bias and qwen.sliding_window == 0  # use_sliding_window false
    assert load_config("mistral-7b").sliding_window == 4096
    assert load_config("llama-3-8b").kv_group == 4


def test_model_type_from_architectures():
    raw = {k: v for k, v in PHI_3_MINI.items() if k != "model_type"}
    raw["architectures"] = ["Phi3ForCausalLM"]
    assert from_hf_dict(raw, name="x").architecture == "phi3"


def test_load_by_path_and_folder(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(PHI_2))
    assert load_config(folder).name == "my-model"
    assert load_config(folder / "config.json").params == from_hf_dict(PHI_2, name="x").params


def _error(tmp_path, raw) -> str:
    path = tmp_path / "config.json"
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "max_position_embeddings": 256}


@pytest.mark.parametrize("change, expected", [
    ({"hidden_size": None}, r"'hidden_size' is missing"),
    ({"num_hidden_layers": "32"}, r"'num_hidden_layers' must be an integer >= 1, not '32'"),
    ({"intermediate_size": 4.0}, r"'intermediate_size' must be an integer"),
    ({"vocab_size": -5}, r"'vocab_size' = -5 is out of range; allowed integers >= 1"),
    ({"num_attention_heads": 5}, r"'num_attention_heads' = 5 does not divide the hidden size 64"),
    ({"num_key_value_heads": 3}, r"'num_key_value_heads' 3 does not divide num_heads 4"),
    ({"tie_word_embeddings": "yes"}, r"'tie_word_embeddings' must be true or false"),
    ({"hidden_act": "tanh"}, r"'hidden_act' = 'tanh' is not supported; allowed silu"),
    ({"model_type": "bloom"}, r"'model_type' = 'bloom' is not supported; allowed llama, mistral"),
    ({"model_type": None}, r"'model_type' is missing; allowed llama"),
])
def test_malformed_config_names_file_and_key(tmp_path, change, expected):
    raw = {k: v for k, v in {**LLAMA, **change}.items() if v is not None}  # None: drop the key
    assert re.search(expected, _error(tmp_path, raw))


def test_malformed_family_keys(tmp_path):
    assert "'n_embd' is missing" in _error(tmp_path, {"model_type": "gpt2", "n_layer": 2, "n_head": 2,
                                                      "vocab_size": 10, "n_positions": 8})
    mixtral = {**LLAMA, "model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 9}
    assert "'num_experts_per_tok' 9 exceeds num_experts 8" in _error(tmp_path, mixtral)
    assert "not valid JSON" in _error(tmp_path, "{\"model_type\": ")
    assert "JSON object" in _error(tmp_path, "[1, 2]")


def test_unknown_name_lists_shipped():
    with pytest.raises(ValueError, match=r"model 'llama-9' is neither.*shipped: .*llama-2-7b"):
        load_config("llama-9")


def test_modelconfig_validates_itself():
    cfg = load_config("llama-2-7b")
    assert hash(cfg) == hash(load_config("llama-2-7b"))
    with pytest.raises(ModelConfigError, match=r"ModelConfig\.num_layers: -1 is out of range") as info:
        dataclasses.replace(cfg, num_layers=-1)
    assert info.value.field == "num_layers"
    with pytest.raises(ModelConfigError, match=r"ModelConfig\.gated_mlp: must be true or false, not 1"):
        dataclasses.replace(cfg, gated_mlp=1)
    with pytest.raises(ModelConfigError, match=r"norm: 'batchnorm' is not allowed"):
        dataclasses.replace(cfg, norm="batchnorm")


@pytest.mark.parametrize("raw", [{**LLAMA, "model_type": ["llama"]},
                                 {k: v for k, v in LLAMA.items() if k != "model_type"} | {"architectures": [{}]}])
def test_odd_model_type_values_are_one_line_errors(tmp_path, raw):
    assert "'model_type'" in _error(tmp_path, raw)


def test_package_reexports():
    import peforge.models as models
    assert models.build_graph(models.load_config("gpt2"), "decode").config.name == "gpt2"
