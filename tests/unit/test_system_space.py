"""Spaces over systems of chips: the product rule derives the one degree a point leaves unset and
rejects a point where it is no whole number; the shipped system spaces load."""

from __future__ import annotations

import pytest

from peforge.dse.search.space import InfeasiblePoint, load_space, parse_space

SPACE = """
[fixed.compute]
pe = "mac"
[fixed.system]
ep = 1
[param."system.chips"]
type = "categorical"
choices = [4, 8]
[param."system.tp"]
type = "categorical"
choices = [1, 2, 8]
[objectives]
tokens_per_s = "maximize"
"""


def test_the_unset_degree_is_derived_and_a_fractional_one_is_infeasible():
    space = parse_space(SPACE, where="s.toml", name="s")  # its corners include infeasible points: skipped
    system = space.design({"system.chips": 8, "system.tp": 2}).system
    assert (system.chips, system.tp, system.pp, system.ep) == (8, 2, 4, 1)
    with pytest.raises(InfeasiblePoint, match=r"^s.toml: point \{system.chips=4, system.tp=8\}: infeasible: "
                                              r"system.chips=4 is not a multiple of tp x ep = 8"):
        space.design({"system.chips": 4, "system.tp": 8})
    assert issubclass(InfeasiblePoint, ValueError)  # a sweep records it as a failed trial


def test_a_space_of_only_infeasible_points_is_an_error():
    text = SPACE.replace("choices = [1, 2, 8]", "choices = [3]")
    with pytest.raises(ValueError, match=r"infeasible: .* \(and every other corner point\)"):
        parse_space(text, where="s.toml", name="s")


def test_shipped_system_spaces_load_and_draw_systems():
    for name, model in (("systems-llama70b", "llama-2-70b"), ("systems-mixtral", "mixtral-8x7b")):
        space = load_space(name)
        assert space.workload["model"] == model
        point = {"system.chips": 16, "tp_16": 4, "system.micro_batches": 4, "compute.arrays": 2,
                 "sram.weight_kib": 8192, "batch": 8} | ({"system.ep": 2} if "mixtral" in model else {})
        system = space.design(point).system
        expected = (16, 4, 2, 2) if "mixtral" in model else (16, 4, 4, 1)
        assert (system.chips, system.tp, system.pp, system.ep) == expected
