"""Decoder-only LLM architecture: a validated :class:`ModelConfig`, read from a Hugging Face style ``config.json``.

Each supported ``model_type`` has a reader that maps its own key names (GPT-2's
``n_embd``, OPT's ``ffn_dim``, Mixtral's ``num_local_experts`` ...) onto one set of
fields, plus the architectural facts its config does not spell out (Qwen2's QKV
bias, OPT's position-table offset). No download and no ``transformers``: only
the JSON file is read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..files import read_input

__all__ = ["ModelConfig", "ModelConfigError", "SUPPORTED", "load_config", "from_hf_dict", "zoo_names"]

_NORMS = ("rmsnorm", "layernorm")
_ACTIVATIONS = ("silu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


class ModelConfigError(ValueError):
    """A field of :class:`ModelConfig` holds a value that is not allowed.

    Attributes
    ----------
    field : str
        The field name, so a reader can name its own key instead.
    reason : str
        What is wrong and what is allowed, without the field name.
    """

    def __init__(self, field: str, reason: str):
        super().__init__(f"ModelConfig.{field}: {reason}")
        self.field = field
        self.reason = reason


# The largest size a field may take: about 4x the largest published model's (Llama 3.1 405B: hidden
# 16384, 126 layers, 128 heads, intermediate 53248, 128k context; vocabularies up to ~256k; MoE
# with up to 256 experts, 8 active), so a typo or a hostile file cannot make peforge build
# billions of operators.
PLAUSIBLE_MAX = {
    "hidden_size": 1 << 16, "embed_dim": 1 << 16, "num_layers": 512, "num_heads": 1024, "num_kv_heads": 1024,
    "head_dim": 1024, "intermediate_size": 1 << 18, "vocab_size": 1 << 21, "max_positions": 1 << 24,
    "learned_positions": 1 << 24, "sliding_window": 1 << 24, "num_experts": 1024, "experts_per_token": 64,
}


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape of a decoder-only transformer, everything the operator graph needs.

    Parameters
    ----------
    name : str
        Display name, e.g. ``"llama-2-7b"``.
    architecture : str
        The ``model_type`` it was read as.
    hidden_size : int
        Width of the residual stream, elements.
    num_layers : int
        Decoder layers.
    num_heads, num_kv_heads : int
        Query heads and key/value heads (fewer for GQA, 1 for MQA); ``num_kv_heads`` divides ``num_heads``.
    head_dim : int
        Elements per head.
    intermediate_size : int
        MLP inner width (per expert for MoE), elements.
    gated_mlp : bool
        True for a gated MLP (gate, up, down: SwiGLU); False for up, down.
    activation : str
        MLP nonlinearity.
    vocab_size : int
        Token embedding rows.
    max_positions : int
        Longest sequence the model accepts, tokens.
    tied_embeddings : bool
        The LM head reuses the token embedding matrix.
    embed_dim : int
        Width of the token embedding (OPT's ``word_embed_proj_dim``); when it differs from
        ``hidden_size`` a projection in and out of the layers is added.
    learned_positions : int
        Rows of a learned position table (0 for rotary models).
    rotary_dim : int
        Elements of each query/key head that get rotary embedding (0: none).
    sliding_window : int
        Keys each query attends to at most, tokens (0: unlimited).
    num_experts, experts_per_token : int
        MoE experts per layer and how many each token uses (1 and 1 for a dense MLP).
    norm : str
        ``"rmsnorm"`` (weight only) or ``"layernorm"`` (weight and bias).
    parallel_block : bool
        Attention and MLP read the same normed input and add to the residual together
        (one norm per layer, Phi/GPT-J style).
    final_norm : bool
        A norm after the last layer.
    qkv_bias, out_bias, mlp_bias, lm_head_bias : bool
        Which linear layers carry a bias vector.
    """

    name: str
    architecture: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    gated_mlp: bool
    activation: str
    vocab_size: int
    max_positions: int
    tied_embeddings: bool
    embed_dim: int
    learned_positions: int = 0
    rotary_dim: int = 0
    sliding_window: int = 0
    num_experts: int = 1
    experts_per_token: int = 1
    norm: str = "rmsnorm"
    parallel_block: bool = False
    final_norm: bool = True
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = {"str": str, "int": int, "bool": bool}[f.type]
            if type(value) is not expected:
                raise ModelConfigError(f.name, f"must be {_KIND[expected]}, not {value!r}")
        positive = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                    "intermediate_size", "vocab_size", "max_positions", "embed_dim",
                    "num_experts", "experts_per_token")
        for name in positive + ("learned_positions", "rotary_dim", "sliding_window"):
            low, high = (1 if name in positive else 0), PLAUSIBLE_MAX.get(name)
            value = getattr(self, name)
            if value < low or (high is not None and value > high):
                allowed = f"{low}..{high}" if high is not None else f">= {low}"
                raise ModelConfigError(name, f"{value} is out of range; allowed integers {allowed}")
        if self.num_heads % self.num_kv_heads:
            raise ModelConfigError("num_kv_heads", f"{self.num_kv_heads} does not divide num_heads "
                                   f"{self.num_heads}; allowed divisors of {self.num_heads}")
        if self.experts_per_token > self.num_experts:
            raise ModelConfigError("experts_per_token", f"{self.experts_per_token} exceeds num_experts "
                                   f"{self.num_experts}; allowed 1..{self.num_experts}")
        if self.rotary_dim > self.head_dim or self.rotary_dim % 2:
            raise ModelConfigError("rotary_dim", f"{self.rotary_dim} is not allowed; "
                                   f"allowed even values 0..{self.head_dim}")
        if self.norm not in _NORMS:
            raise ModelConfigError("norm", f"{self.norm!r} is not allowed; choose one of {', '.join(_NORMS)}")
        if self.activation not in _ACTIVATIONS:
            raise ModelConfigError("activation", f"{self.activation!r} is not allowed; "
                                   f"choose one of {', '.join(_ACTIVATIONS)}")

    @property
    def is_moe(self) -> bool:
        """True when the MLP is a mixture of experts."""
        return self.num_experts > 1

    @property
    def kv_group(self) -> int:
        """Query heads sharing one KV head (1 for MHA)."""
        return self.num_heads // self.num_kv_heads

    @property
    def params(self) -> int:
        """All parameters, tied embeddings counted once."""
        from .weights import count_params
        return count_params(self)

    @property
    def active_params(self) -> int:
        """Parameters one token uses: for MoE only ``experts_per_token`` experts."""
        from .weights import count_params
        return count_params(self, active=True)


_KIND = {str: "a string", int: "an integer", bool: "true or false"}


# --- reading config.json -------------------------------------------------------------------------

class _Reader:
    """Typed access to one config.json whose errors name the file and the key."""

    def __init__(self, raw: dict[str, Any], source: str):
        self.raw = raw
        self.source = source
        self.keys: dict[str, str] = {}  # ModelConfig field -> key it came from

    def fail(self, key: str, reason: str) -> ValueError:
        return ValueError(f"{self.source}: key {key!r} {reason}")

    def int(self, key: str, field: str | None = None, *, default: Any = ..., low: int = 1) -> Any:
        if field:
            self.keys[field] = key
        value = self.raw.get(key)
        if value is None:  # absent, or JSON null: both mean "use the default"
            if default is ...:
                raise self.fail(key, f"is missing; required for model_type {self.raw.get('model_type')!r} "
                                     f"(an integer >= {low})")
            return default
        if type(value) is not int:
            raise self.fail(key, f"must be an integer >= {low}, not {value!r}")
        if value < low:
            raise self.fail(key, f"= {value} is out of range; allowed integers >= {low}")
        return value

    def bool(self, key: str, field: str | None = None, *, default: bool) -> bool:
        if field:
            self.keys[field] = key
        value = self.raw.get(key)
        if value is None:
            return default
        if type(value) is not bool:
            raise self.fail(key, f"must be true or false, not {value!r}")
        return value

    def number(self, key: str, *, default: float, low: float, high: float) -> float:
        value = self.raw.get(key)
        if value is None:
            return default
        if type(value) not in (int, float) or not low <= value <= high:
            raise self.fail(key, f"must be a number in {low}..{high}, not {value!r}")
        return float(value)

    def choice(self, key: str, field: str, allowed: tuple[str, ...], *, default: str) -> str:
        self.keys[field] = key
        value = self.raw.get(key)
        if value is None:
            return default
        if value not in allowed:
            raise self.fail(key, f"= {value!r} is not supported; allowed {', '.join(allowed)}")
        return value

    def heads(self, hidden: int, heads_key: str) -> tuple[int, int]:
        """Number of heads and head_dim; without an explicit head_dim, heads must divide hidden."""
        heads = self.int(heads_key, "num_heads")
        head_dim = self.int("head_dim", "head_dim", default=None)
        if head_dim is None:
            if hidden % heads:
                raise self.fail(heads_key, f"= {heads} does not divide the hidden size {hidden}; "
                                           f"allowed divisors of {hidden} (or give head_dim)")
            head_dim = hidden // heads
        return heads, head_dim


def _llama_like(r: _Reader, *, qkv_bias: bool = False, moe: bool = False) -> dict[str, Any]:
    """Llama 2/3, Mistral, Qwen2, Mixtral, Phi-3: RMSNorm, rotary, gated SiLU MLP."""
    hidden = r.int("hidden_size", "hidden_size")
    heads, head_dim = r.heads(hidden, "num_attention_heads")
    fields = dict(
        hidden_size=hidden, embed_dim=hidden,
        num_layers=r.int("num_hidden_layers", "num_layers"),
        num_heads=heads, head_dim=head_dim, rotary_dim=head_dim,
        num_kv_heads=r.int("num_key_value_heads", "num_kv_heads", default=heads),
        intermediate_size=r.int("intermediate_size", "intermediate_size"),
        gated_mlp=True,
        activation=r.choice("hidden_act", "activation", ("silu",), default="silu"),
        vocab_size=r.int("vocab_size", "vocab_size"),
        max_positions=r.int("max_position_embeddings", "max_positions"),
        tied_embeddings=r.bool("tie_word_embeddings", "tied_embeddings", default=False),
        # Qwen2 always has a QKV bias; Llama's optional one is named attention_bias
        qkv_bias=qkv_bias or r.bool("attention_bias", "qkv_bias", default=False),
        mlp_bias=r.bool("mlp_bias", "mlp_bias", default=False),
    )
    fields["out_bias"] = fields["qkv_bias"] and r.raw.get("model_type") == "llama"  # Llama's flag covers o_proj too
    window = r.int("sliding_window", "sliding_window", default=0)
    if r.raw.get("model_type") == "qwen2" and not r.bool("use_sliding_window", default=False):
        window = 0  # Qwen2 lists a window but only uses it when this flag is set
    fields["sliding_window"] = window
    if moe:
        fields["num_experts"] = r.int("num_local_experts", "num_experts")
        fields["experts_per_token"] = r.int("num_experts_per_tok", "experts_per_token")
    return fields


def _phi(r: _Reader) -> dict[str, Any]:
    """Phi-1/1.5/2: LayerNorm, parallel attention + MLP, partial rotary, biases everywhere."""
    if r.bool("qk_layernorm", default=False):
        raise r.fail("qk_layernorm", "= true is not supported; allowed false")
    hidden = r.int("hidden_size", "hidden_size")
    heads, head_dim = r.heads(hidden, "num_attention_heads")
    rotary = int(r.number("partial_rotary_factor", default=0.5, low=0.0, high=1.0) * head_dim) // 2 * 2
    return dict(
        hidden_size=hidden, embed_dim=hidden, num_heads=heads, head_dim=head_dim, rotary_dim=rotary,
        num_layers=r.int("num_hidden_layers", "num_layers"),
        num_kv_heads=r.int("num_key_value_heads", "num_kv_heads", default=heads),
        intermediate_size=r.int("intermediate_size", "intermediate_size"),
        gated_mlp=False,
        activation=r.choice("hidden_act", "activation", _ACTIVATIONS, default="gelu_new"),
        vocab_size=r.int("vocab_size", "vocab_size"),
        max_positions=r.int("max_position_embeddings", "max_positions"),
        tied_embeddings=r.bool("tie_word_embeddings", "tied_embeddings", default=False),
        norm="layernorm", parallel_block=True,
        qkv_bias=True, out_bias=True, mlp_bias=True, lm_head_bias=True,
    )


def _opt(r: _Reader) -> dict[str, Any]:
    """OPT: LayerNorm, ReLU MLP, learned positions with an offset of 2 rows, biases."""
    hidden = r.int("hidden_size", "hidden_size")
    heads, head_dim = r.heads(hidden, "num_attention_heads")
    positions = r.int("max_position_embeddings", "max_positions")
    bias = r.bool("enable_bias", default=True)
    return dict(
        hidden_size=hidden, num_heads=heads, num_kv_heads=heads, head_dim=head_dim,
        embed_dim=r.int("word_embed_proj_dim", "embed_dim", default=hidden),
        num_layers=r.int("num_hidden_layers", "num_layers"),
        intermediate_size=r.int("ffn_dim", "intermediate_size"),
        gated_mlp=False,
        activation=r.choice("activation_function", "activation", ("relu", "gelu"), default="relu"),
        vocab_size=r.int("vocab_size", "vocab_size"),
        max_positions=positions,
        learned_positions=positions + 2,  # OPT's position table reserves 2 extra rows (padding offset)
        tied_embeddings=r.bool("tie_word_embeddings", "tied_embeddings", default=True),
        norm="layernorm",
        final_norm=r.bool("do_layer_norm_before", default=True),  # post-norm OPT-350m has none
        qkv_bias=bias, out_bias=bias, mlp_bias=bias,
    )


def _gpt2(r: _Reader) -> dict[str, Any]:
    """GPT-2: LayerNorm, GELU MLP of 4x width unless ``n_inner``, learned positions, tied head."""
    hidden = r.int("n_embd", "hidden_size")
    heads, head_dim = r.heads(hidden, "n_head")
    positions = r.int("n_positions", "max_positions")
    return dict(
        hidden_size=hidden, embed_dim=hidden, num_heads=heads, num_kv_heads=heads, head_dim=head_dim,
        num_layers=r.int("n_layer", "num_layers"),
        intermediate_size=r.int("n_inner", "intermediate_size", default=4 * hidden),
        gated_mlp=False,
        activation=r.choice("activation_function", "activation", _ACTIVATIONS, default="gelu_new"),
        vocab_size=r.int("vocab_size", "vocab_size"),
        max_positions=positions, learned_positions=positions,
        tied_embeddings=True,
        norm="layernorm",
        qkv_bias=True, out_bias=True, mlp_bias=True,
    )


_READERS: dict[str, Callable[[_Reader], dict[str, Any]]] = {
    "llama": _llama_like,
    "mistral": _llama_like,
    "qwen2": lambda r: _llama_like(r, qkv_bias=True),
    "mixtral": lambda r: _llama_like(r, moe=True),
    "phi3": _llama_like,
    "phi": _phi,
    "opt": _opt,
    "gpt2": _gpt2,
}
SUPPORTED = tuple(_READERS)

# architectures[0] -> model_type, for configs that omit model_type
_ARCHITECTURES = {
    "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2",
    "MixtralForCausalLM": "mixtral", "Phi3ForCausalLM": "phi3", "PhiForCausalLM": "phi",
    "OPTForCausalLM": "opt", "GPT2LMHeadModel": "gpt2",
}


def from_hf_dict(raw: Any, *, name: str, source: str = "config.json") -> ModelConfig:
    """Build a :class:`ModelConfig` from the parsed content of a ``config.json``.

    Parameters
    ----------
    raw : dict
        The parsed JSON object.
    name : str
        Display name for the model.
    source : str
        What to call the file in error messages.

    Raises
    ------
    ValueError
        One line naming ``source``, the offending key and what is allowed.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a JSON object at the top level, not {type(raw).__name__}")
    model_type = raw.get("model_type")
    if model_type is None:
        arch = raw.get("architectures")
        if isinstance(arch, list) and arch and isinstance(arch[0], str) and arch[0] in _ARCHITECTURES:
            model_type = _ARCHITECTURES[arch[0]]
        else:
            raise ValueError(f"{source}: key 'model_type' is missing; allowed {', '.join(SUPPORTED)}")
    if not isinstance(model_type, str) or model_type not in _READERS:
        raise ValueError(f"{source}: key 'model_type' = {model_type!r} is not supported; "
                         f"allowed {', '.join(SUPPORTED)}")
    reader = _Reader({**raw, "model_type": model_type}, source)
    fields = _READERS[model_type](reader)
    try:
        return ModelConfig(name=name, architecture=model_type, **fields)
    except ModelConfigError as error:  # name the file's key, not our field
        key = reader.keys.get(error.field, error.field)
        raise ValueError(f"{source}: key {key!r} {error.reason}") from None


def zoo_names() -> list[str]:
    """Names of the shipped configs, sorted."""
    return sorted(p.name[:-5] for p in resources.files(__package__).joinpath("zoo").iterdir()
                  if p.name.endswith(".json"))


def load_config(name_or_path: str | Path) -> ModelConfig:
    """Read a shipped model by name (``"llama-2-7b"``) or a ``config.json`` by path.

    A directory is read as ``<dir>/config.json``. The display name is the zoo name,
    else the config's ``_name_or_path``, else the folder or file name.

    Raises
    ------
    ValueError
        Unknown name, unreadable file, invalid JSON or an invalid config: one line.
    """
    text = str(name_or_path)
    path = Path(text)
    if path.is_dir():
        path = path / "config.json"
    if path.exists() or text.endswith(".json"):
        source = str(path)
        try:
            raw = json.loads(read_input(path, "config.json"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{source}: not valid JSON: {error.msg} at line {error.lineno} "
                             f"column {error.colno}") from None
        name = raw.get("_name_or_path") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not name:
            name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
        return from_hf_dict(raw, name=name.rsplit("/", 1)[-1].lower(), source=source)
    key = text.lower()
    shipped = zoo_names()
    if key in shipped:
        zoo_file = resources.files(__package__).joinpath("zoo", f"{key}.json")
        return from_hf_dict(json.loads(zoo_file.read_text(encoding="utf-8")), name=key,
                            source=f"zoo/{key}.json")
    raise ValueError(f"model {text!r} is neither a shipped model nor a config.json file; "
                     f"shipped: {', '.join(shipped)}")
