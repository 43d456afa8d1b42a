"""Inventory of a model's weight tensors: parameter counts and stored bytes under a quantization scheme.

One rule decides a tensor's format: every weight *matrix* takes the scheme's weight
format, with its group scales and zero points; every weight *vector* (norms, biases)
stays at 16 bits. The matrices are the decoder layers' projections and MLP/expert
matrices, and also the token and position embedding tables, ``project_in``/``project_out``,
the MoE router and the LM head (stored row by row in groups along ``k``, the embedding
width, so a gathered embedding row carries its own scales, as llama.cpp's Q-formats store
``token_embd`` and ``output``). Why: the graph's matrix products (LM head, projections,
router) are computed at the format they are stored in, and an integer PE cannot compute a
16-bit float matrix, so a 4- or 8-bit scheme keeps them in its own format rather than at
16 bits as GPTQ/AWQ checkpoints do. Under a 16-bit scheme (``w16``, ``wbf16``) every
matrix is at 16 bits, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .quant import QuantScheme, tensor_bits

if TYPE_CHECKING:
    from .config import ModelConfig

__all__ = ["WeightTensor", "weight_tensors", "count_params", "weight_bits", "weight_bytes"]


@dataclass(frozen=True)
class WeightTensor:
    """One kind of weight tensor of a model.

    Parameters
    ----------
    name : str
        Role, e.g. ``"layer.q_proj"``.
    k, n : int
        Input and output dimension, elements (a vector is ``1 x n``).
    copies : int
        How many of it the model holds (layers, or layers x experts).
    quantized : bool
        Stored in the scheme's weight format (True: every matrix) or at 16 bits (False: vectors).
    expert : bool
        One per MoE expert: a token uses ``experts_per_token`` of ``num_experts``.
    """

    name: str
    k: int
    n: int
    copies: int
    quantized: bool
    expert: bool = False

    @property
    def params(self) -> int:
        """Parameters in all copies."""
        return self.k * self.n * self.copies


def weight_tensors(cfg: ModelConfig) -> list[WeightTensor]:
    """Every weight tensor of ``cfg``, tied embeddings listed once."""
    h, layers = cfg.hidden_size, cfg.num_layers
    q_width, kv_width = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    norm_vectors = 2 if cfg.norm == "layernorm" else 1  # LayerNorm has a bias, RMSNorm does not
    tensors = [WeightTensor("embed_tokens" + (" (tied lm_head)" if cfg.tied_embeddings else ""),
                            cfg.embed_dim, cfg.vocab_size, 1, True)]
    if cfg.learned_positions:
        tensors.append(WeightTensor("embed_positions", h, cfg.learned_positions, 1, True))
    if cfg.embed_dim != h:
        tensors += [WeightTensor("project_in", cfg.embed_dim, h, 1, True),
                    WeightTensor("project_out", h, cfg.embed_dim, 1, True)]

    norms_per_layer = 1 if cfg.parallel_block else 2
    tensors.append(WeightTensor("layer.norms", 1, h, layers * norms_per_layer * norm_vectors, False))
    tensors += [WeightTensor("layer.q_proj", h, q_width, layers, True),
                WeightTensor("layer.k_proj", h, kv_width, layers, True),
                WeightTensor("layer.v_proj", h, kv_width, layers, True),
                WeightTensor("layer.o_proj", q_width, h, layers, True)]
    if cfg.qkv_bias:
        tensors.append(WeightTensor("layer.qkv_bias", 1, q_width + 2 * kv_width, layers, False))
    if cfg.out_bias:
        tensors.append(WeightTensor("layer.o_bias", 1, h, layers, False))

    inter, experts = cfg.intermediate_size, cfg.num_experts
    moe = cfg.is_moe
    copies = layers * experts
    if moe:
        tensors.append(WeightTensor("layer.router", h, experts, layers, True))
    if cfg.gated_mlp:
        tensors.append(WeightTensor("layer.mlp.gate_proj", h, inter, copies, True, moe))
    tensors += [WeightTensor("layer.mlp.up_proj", h, inter, copies, True, moe),
                WeightTensor("layer.mlp.down_proj", inter, h, copies, True, moe)]
    if cfg.mlp_bias:
        width = inter * (2 if cfg.gated_mlp else 1) + h
        tensors.append(WeightTensor("layer.mlp.bias", 1, width, copies, False, moe))

    if cfg.final_norm:
        tensors.append(WeightTensor("final_norm", 1, h, norm_vectors, False))
    if not cfg.tied_embeddings:
        tensors.append(WeightTensor("lm_head", cfg.embed_dim, cfg.vocab_size, 1, True))
    if cfg.lm_head_bias:
        tensors.append(WeightTensor("lm_head.bias", 1, cfg.vocab_size, 1, False))
    return tensors


def count_params(cfg: ModelConfig, *, active: bool = False) -> int:
    """Parameters of ``cfg``; with ``active`` only the experts one token uses."""
    total = 0
    for t in weight_tensors(cfg):
        copies = t.copies // cfg.num_experts * cfg.experts_per_token if (active and t.expert) else t.copies
        total += t.k * t.n * copies
    return total


def weight_bits(cfg: ModelConfig, scheme: QuantScheme) -> int:
    """Storage of all weights of ``cfg`` under ``scheme``, bits, group overhead included."""
    return sum(tensor_bits(t.k, t.n, scheme, quantized=t.quantized) * t.copies for t in weight_tensors(cfg))


def weight_bytes(cfg: ModelConfig, scheme: QuantScheme) -> float:
    """Storage of all weights of ``cfg`` under ``scheme``, bytes (may end in a fraction of a byte)."""
    return weight_bits(cfg, scheme) / 8
