"""Memory footprint and capacity against counts made here from the models' config numbers; a design
that cannot hold its workload is rejected before anything is characterized."""

from __future__ import annotations

import dataclasses

import pytest

from peforge.dse.cost.api import evaluate, evaluate_many, prepare
from peforge.dse.cost.footprint import capacity_bytes, max_batch
from peforge.dse.design.point import DesignPoint, Memory, design_named

GIB = 1 << 30

# Llama-2-7B (models/zoo/llama-2-7b.json): MHA, untied LM head, gated SiLU MLP
H7, I7, V7, L7 = 4096, 11008, 32000, 32
# Llama-2-70B: GQA with 8 KV heads of 128
H70, I70, V70, L70, KV70 = 8192, 28672, 32000, 80, 8 * 128


def llama7b_fp16_weight_bytes() -> int:
    """Every weight at 16 bits: per layer Q, K, V, O (h x h each), gate, up, down (h x I each) and
    two RMSNorm vectors; the final norm, the embeddings and the LM head (V x h each)."""
    return 2 * (L7 * (4 * H7 * H7 + 3 * H7 * I7 + 2 * H7) + H7 + 2 * V7 * H7)


def llama70b_fp16_weight_bytes() -> int:
    return 2 * (L70 * (2 * H70 * H70 + 2 * H70 * KV70 + 3 * H70 * I70 + 2 * H70) + H70 + 2 * V70 * H70)


def test_weights_fp16_and_grouped_int4_by_hand():
    w16 = prepare("llama-2-7b", batch=1, seq=16, gen=2, quant="w16a16kv16").footprint
    assert w16.weight_bytes == llama7b_fp16_weight_bytes()
    # 4-bit weights in groups of 128 along K, each group with an FP16 scale and a 4-bit zero point
    # (20 bits): every matrix, the embedding table and the LM head (h x V each) too; norms at 16 bits
    linear = L7 * (4 * H7 * H7 + 3 * H7 * I7) + 2 * H7 * V7
    groups = L7 * (4 * H7 * (H7 // 128) + 2 * I7 * (H7 // 128) + H7 * (I7 // 128)) + 2 * V7 * (H7 // 128)
    rest = 2 * (L7 * 2 * H7 + H7)
    w4 = prepare("llama-2-7b", batch=1, seq=16, gen=2, quant="w4a8kv8-g128").footprint
    assert w4.weight_bytes == linear * 4 / 8 + groups * 20 / 8 + rest


def test_kv_cache_gqa_and_per_vector_overhead_by_hand():
    # 70B at FP16 KV: K and V of 8 KV heads x 128 per layer and token, 80 layers, 512 + 256 - 1
    # positions (the last generated token is never fed back)
    fp = prepare("llama-2-70b", batch=3, seq=512, gen=256, quant="w16a16kv16").footprint
    assert fp.kv_bytes_per_seq == 2 * L70 * 8 * 128 * 2 * (512 + 255)
    assert fp.kv_bytes() == 3 * fp.kv_bytes_per_seq
    # INT8 KV: each head vector carries an FP16 scale and an 8-bit zero point (24 bits)
    fp8 = prepare("llama-2-7b", batch=1, seq=100, gen=28, quant="w8a8kv8").footprint
    assert fp8.kv_bytes_per_seq == 2 * L7 * 32 * (128 * 8 + 24) / 8 * 127


def test_sliding_window_caps_the_kv_cache():
    # Mistral-7B keeps a 4096-token rolling buffer: a longer context holds no more
    fp = prepare("mistral-7b", batch=1, seq=4200, gen=1, quant="w16a16kv16").footprint
    assert fp.kv_bytes_per_seq == 2 * 32 * 8 * 128 * 2 * 4096


def pim_design(*, units: int, channels: int, mode: str = "blocked") -> DesignPoint:
    base = design_named("pim")
    return dataclasses.replace(base, memory=dataclasses.replace(base.memory, units=units),
                               pim=dataclasses.replace(base.pim, mode=mode, channels=channels))


def test_max_batch_by_hand():
    """Llama-2-7B FP16, prompt 512 + 256 generated, on HBM3 stacks of 16 GiB."""
    fp = prepare("llama-2-7b", batch=1, seq=512, gen=256, quant="w16a16kv16").footprint
    kv = 2 * L7 * 32 * 128 * 2 * 767  # 383.5 MiB per sequence: 512 + 256 - 1 positions
    # activations per sequence: the residual stream (512 x 4096 at 2 bytes) plus the largest
    # operator's activations, the gated MLP's silu(gate) * up: two 512 x 11008 inputs, one output
    acts = 512 * H7 * 2 + 3 * 512 * I7 * 2
    weights = llama7b_fp16_weight_bytes()
    # two stacks, no PIM: (32 GiB - 12.55 GiB of weights) / (383.5 MiB + 36.25 MiB) = 47.4
    two = design_named("datacenter")
    two = dataclasses.replace(two, memory=dataclasses.replace(two.memory, units=2))
    memory, kv_room = capacity_bytes(two)
    assert memory == 32 * GIB and kv_room == 32 * GIB
    assert (32 * GIB - weights) // (kv + acts) == 47
    assert max_batch(fp, memory, kv_room) == 47
    # PIM on 8 channels of 16 banks x 32768 rows x 1024 16-bit words = 8 GiB: the KV cache it
    # serves must fit there, 8 GiB / 383.5 MiB = 21 sequences, though the 4 stacks would hold 125
    pim = pim_design(units=4, channels=8)
    memory, kv_room = capacity_bytes(pim)
    assert (memory, kv_room) == (64 * GIB, 8 * 16 * 32768 * 1024 * 2)
    assert (64 * GIB - weights) // (kv + acts) == 125
    assert max_batch(fp, memory, kv_room) == 8 * GIB // kv == 21
    # without PIM the same design holds 125
    assert max_batch(fp, *capacity_bytes(pim_design(units=4, channels=8, mode="none"))) == 125


def test_capacity_override_is_per_unit():
    edge = design_named("edge")  # 4 LPDDR5 channels of 2 GiB
    assert capacity_bytes(edge)[0] == 4 * 2 * GIB
    bigger = dataclasses.replace(edge, memory=dataclasses.replace(edge.memory, capacity_gib=16.0))
    assert capacity_bytes(bigger)[0] == 4 * 16 * GIB


def test_llama70b_fp16_on_edge_is_rejected_with_its_footprint():
    workload = prepare("llama-2-70b", batch=1, seq=512, gen=256, quant="w16a16kv16")
    weights = llama70b_fp16_weight_bytes() / GIB  # 128.5 GiB
    with pytest.raises(ValueError) as info:
        evaluate(design_named("edge"), workload)  # rejected before the PE is characterized
    text = str(info.value)
    assert "\n" not in text
    assert f"weights {weights:.4g}" in text and "weights 128.5" in text
    assert "llama-2-70b needs 128.8 GiB" in text and "edge has 8 GiB (4 LPDDR5 channels x 2 GiB)" in text
    assert "memory.units or memory.capacity_gib" in text and "none fits" in text
    frame = evaluate_many([design_named("edge")], workload)
    assert frame["error"][0] == text


def test_pim_kv_over_the_pim_banks_is_rejected():
    # batch 32 of 767 positions: 11.98 GiB of KV cache, over 8 channels x 4 banks x 64 MiB = 2 GiB of PIM banks
    design = pim_design(units=4, channels=8)
    design = dataclasses.replace(design, pim=dataclasses.replace(design.pim, banks=4))
    with pytest.raises(ValueError, match=r"KV cache needs 11.98 GiB at batch 32 but the PIM banks of pim hold 2 GiB "
                                         r"\(8 channels x 4 banks x 32768 rows x 1024 words of 16 bits\).*at most 5 fits"):
        evaluate(design, prepare("llama-2-7b", batch=32, seq=512, gen=256, quant="w16a16kv16"))


def with_ops(design: DesignPoint, ops: str, **pim) -> DesignPoint:
    return dataclasses.replace(design, pim=dataclasses.replace(design.pim, ops=ops, **pim))


def test_fc_on_pim_keeps_the_weights_in_the_pim_banks():
    """Llama-2-7B FP16 (12.55 GiB of weights), prompt 512 + 256, PIM on 8 channels x 16 banks = 8 GiB."""
    workload = prepare("llama-2-7b", batch=1, seq=512, gen=256, quant="w16a16kv16")
    fp, weights = workload.footprint, llama7b_fp16_weight_bytes()
    kv = 2 * L7 * 32 * 128 * 2 * 767
    pim8 = 8 * 16 * 32768 * 1024 * 2
    design = pim_design(units=4, channels=8)
    # attention only: the KV cache has the whole 8 GiB; fc only: the weights must fit, the KV cache not
    assert capacity_bytes(with_ops(design, "attention"), weights) == (64 * GIB, pim8)
    assert capacity_bytes(with_ops(design, "fc", channels=16), weights) == (64 * GIB, 64 * GIB)
    with pytest.raises(ValueError, match=r"llama-2-7b's weights need 12.55 GiB in the PIM banks of pim "
                                         r"\(pim.ops='fc': the fc GEMVs read them in place\) but they hold 8 GiB "
                                         r"\(8 channels x 16 banks"):
        evaluate(with_ops(design, "fc"), workload)
    # 16 channels (16 GiB): the weights leave 3.45 GiB of the banks to the KV cache, 9 sequences of 383.5 MiB
    both = with_ops(design, "attention+fc", channels=16)
    memory, kv_room = capacity_bytes(both, weights)
    assert kv_room == 2 * pim8 - weights and max_batch(fp, memory, kv_room) == (2 * pim8 - weights) // kv == 9
    with pytest.raises(ValueError, match=r"KV cache needs 3.745 GiB at batch 10 but the PIM banks of pim hold "
                                         r"16 GiB \(16 channels .*, 12.55 of it the weights\).*at most 9 fits"):
        evaluate(both, prepare("llama-2-7b", batch=10, seq=512, gen=256, quant="w16a16kv16"))


@pytest.mark.parametrize("key, value", [("capacity_gib", -1.0), ("efficiency", 1.5), ("gb_per_s", -5.0)])
def test_memory_overrides_are_checked(key, value):
    with pytest.raises(ValueError, match=rf"Memory.{key}={value!r} is out of range"):
        Memory(technology="HBM3", **{key: value})
