"""Collective algorithms against hand computations, the [system] group's checks, and how a model
is split over chips (no pricing: pure Python)."""

from __future__ import annotations

import numpy as np
import pytest

from peforge.dse.cost import collectives as co
from peforge.dse.cost.system import chip_config, shard_of
from peforge.dse.design.point import System, design_from_dict
from peforge.models import load_config

MB, BW, ALPHA = 1e6, 100e9, 1e-6  # a 1 MB tensor, 100 GB/s per direction, 1 us per step


@pytest.mark.parametrize("topology, p, seconds", [
    ("ring", 4, 2 * 3 / 4 * MB / BW + 2 * 3 * ALPHA),
    ("ring", 2, 2 * 1 / 2 * MB / BW + 2 * 1 * ALPHA),
    ("fully_connected", 4, 2 * 3 / 4 * MB / BW + 2 * ALPHA),
    ("torus2d", 8, 2 * 7 / 8 * MB / BW + 2 * (1 + 3) * ALPHA),  # 2 x 4
    ("torus2d", 16, 2 * 15 / 16 * MB / BW + 2 * (3 + 3) * ALPHA),  # 4 x 4
    ("torus2d", 7, 2 * 6 / 7 * MB / BW + 2 * 6 * ALPHA),  # a prime: 1 x 7, a ring
])
def test_all_reduce(topology, p, seconds):
    time, moved = co.all_reduce(MB, p, BW, ALPHA, topology)
    assert time == pytest.approx(seconds, rel=1e-12)
    assert moved == pytest.approx(2 * (p - 1) / p * MB, rel=1e-12)
    half, _ = co.all_gather(MB, p, BW, ALPHA, topology)
    assert half == pytest.approx(seconds / 2, rel=1e-12)
    assert co.reduce_scatter(MB, p, BW, ALPHA, topology)[0] == pytest.approx(seconds / 2, rel=1e-12)


@pytest.mark.parametrize("topology, p, seconds, moved", [
    ("ring", 4, (1 + 2 + 1) * MB / 4 / BW + 2 * ALPHA, 4 * MB / 4),  # hops 1, 2, 1 to the three others
    ("ring", 5, (1 + 2 + 2 + 1) * MB / 5 / BW + 2 * ALPHA, 6 * MB / 5),
    ("fully_connected", 4, 3 / 4 * MB / BW + ALPHA, 3 / 4 * MB),
    # 2 x 4: along rows of 2 (1 hop to 1 other), then columns of 4 (hops 1, 2, 1), half the links each
    ("torus2d", 8, MB / 2 / (BW / 2) + ALPHA + 4 * MB / 4 / (BW / 2) + 2 * ALPHA, MB / 2 + MB),
])
def test_all_to_all(topology, p, seconds, moved):
    time, sent = co.all_to_all(MB, p, BW, ALPHA, topology)
    assert time == pytest.approx(seconds, rel=1e-12)
    assert sent == pytest.approx(moved, rel=1e-12)


def test_one_chip_communicates_nothing_and_arrays_broadcast():
    for f in (co.all_reduce, co.all_to_all, co.all_gather):
        for topology in co.TOPOLOGIES:
            assert f(MB, 1, BW, ALPHA, topology) == (0.0, 0.0)
    time, _ = co.all_reduce(np.array([MB, MB]), np.array([2, 8]), BW, ALPHA, np.array([0, 1]))
    assert time == pytest.approx([MB / BW + 2 * ALPHA, 2 * 7 / 8 * MB / BW + 2 * ALPHA], rel=1e-12)
    assert co.point_to_point(MB, BW, ALPHA, "ring")[0] == pytest.approx(MB / (BW / 2) + ALPHA, rel=1e-12)
    assert co.point_to_point(MB, BW, ALPHA, "torus2d")[0] == pytest.approx(MB / (BW / 4) + ALPHA, rel=1e-12)


def test_system_group_checks_the_product_and_fills_link_defaults():
    with pytest.raises(ValueError, match=r"^design: \[system\] System.chips=8 but tp x pp x ep = 4 x 1 x 1 = 4; "
                                         r"allowed: degrees whose product is chips$"):
        design_from_dict({"compute": {}, "system": {"chips": 8, "tp": 4}})
    with pytest.raises(ValueError, match=r"System.topology='mesh' is not allowed; choose one of preset \| ring"):
        design_from_dict({"compute": {}, "system": {"topology": "mesh"}})
    link = design_from_dict({"compute": {}, "system": {"interconnect": "pcie5", "links": 2}}).system.link()
    assert link == {"gb_per_s": 63.0, "links": 2, "topology": "fully_connected", "latency_ns": 2000.0,
                    "pj_per_bit": 5.5}
    assert System(interconnect="tpu_ici").link()["topology"] == "torus2d"


def test_a_model_splits_only_where_its_shapes_allow():
    llama, mixtral = load_config("llama-2-70b"), load_config("mixtral-8x7b")
    with pytest.raises(ValueError, match=r"system.tp=3 must divide llama-2-70b's 64 heads .* allowed: 1, 2, 4, 8"):
        shard_of(System(chips=3, tp=3), llama, 1)
    with pytest.raises(ValueError, match=r"system.ep=2: llama-2-70b is not a mixture-of-experts model; allowed: ep = 1"):
        shard_of(System(chips=2, ep=2), llama, 1)
    with pytest.raises(ValueError, match=r"system.ep=8: .* at least the 2 a token uses; allowed: 1, 2, 4$"):
        shard_of(System(chips=8, ep=8), mixtral, 8)
    with pytest.raises(ValueError, match=r"system.pp=128 exceeds llama-2-70b's 80 layers"):
        shard_of(System(chips=128, pp=128), llama, 1)
    shard = shard_of(System(chips=16, tp=2, pp=4, ep=2, micro_batches=3), mixtral, 9)
    assert (shard.batch, shard.micro, shard.micro_batch, shard.groups, shard.group_batch, shard.stage_layers) == \
        (5, 3, 2, 4, 2, 8)
    share = chip_config(llama, 16, 1)  # 16 > 8 KV heads: one KV head per chip, replicated
    assert (share.num_heads, share.num_kv_heads, share.intermediate_size, share.vocab_size) == (4, 1, 1792, 2000)
    assert chip_config(mixtral, 1, 4).num_experts == 2 and chip_config(llama, 1, 1) is llama
