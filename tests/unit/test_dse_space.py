"""Search spaces: parsing, validation messages, drawing, enumeration."""

from __future__ import annotations

import optuna
import pytest

from peforge.dse.search.space import load_space, parse_space, shipped_spaces

BASE = """
[fixed]
tech = "7nm"

[param."compute.pe"]
type = "categorical"
choices = ["mac", "bitserial"]

[param.k]
path = "compute.pe_params.k"
type = "categorical"
choices = [1, 2, 4]
when = { "compute.pe" = "bitserial" }

[param.lanes]
path = "compute.pe_params.lanes"
type = "fixed"
value = 8
when = { "compute.pe" = "bitserial" }

[param."compute.rows"]
type = "int"
low = 4
high = 32
scale = "pow2"

[param."compute.clock_mhz"]
type = "float"
low = 200.0
high = 400.0
step = 100.0

[objectives]
tokens_per_s = "maximize"
area_mm2 = "minimize"

[constraints]
power_w = { max = 2.0 }
"""


def parse(text: str):
    return parse_space(text, where="s.toml", name="s")


def test_shipped_spaces_load():
    assert {"edge", "datacenter", "pim"} <= set(shipped_spaces())
    for name in shipped_spaces():
        space = load_space(name)
        assert space.objectives and space.params


def test_enumeration_respects_conditions():
    space = parse(BASE)
    points = list(space.points())
    # mac: 4 rows x 3 clocks; bitserial: 3 k x 4 rows x 3 clocks
    assert len(points) == 4 * 3 + 3 * 4 * 3
    assert all("k" not in p for p in points if p["compute.pe"] == "mac")
    assert {p["compute.rows"] for p in points} == {4, 8, 16, 32}
    design = space.design(points[-1])
    assert design.compute.pe == "bitserial" and dict(design.compute.pe_params) == {"k": 4, "lanes": 8}


def test_suggest_draws_a_design():
    space = parse(BASE)
    study = optuna.create_study(directions=space.directions, sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        design = space.suggest(trial)
        assert design.compute.rows in (4, 8, 16, 32)
        assert ("log2(compute.rows)" in trial.params) and ("k" in trial.params) == (design.compute.pe == "bitserial")
        study.tell(trial, [1.0, 1.0])


def test_constraint_violation_is_relative():
    space = parse(BASE)
    (power,) = space.constraints
    assert power.violation(1.0) == pytest.approx(-0.5)
    assert power.violation(3.0) == pytest.approx(0.5)


@pytest.mark.parametrize("change, message", [
    (("tokens_per_s = \"maximize\"", "tokens_per_s = \"up\""), "objectives.tokens_per_s must be"),
    (("tokens_per_s = \"maximize\"", "speed = \"maximize\""), "objectives.speed: unknown metric"),
    (("scale = \"pow2\"", "scale = \"pow3\""), "scale must be one of linear, log, pow2"),
    (("low = 4\n", "low = 5\n"), "pow2 scale needs powers of two"),
    (("low = 200.0", "low = 900.0"), "low (900.0) must not exceed high (400.0)"),
    (("type = \"int\"", "type = \"integer\""), "type must be one of categorical, int, float, fixed"),
    (("when = { \"compute.pe\" = \"bitserial\" }\n\n[param.lanes]", "when = { \"compute.pe\" = \"tpu\" }\n\n[param.lanes]"),
     "which is not one of its values"),
    (("path = \"compute.pe_params.k\"", "path = \"compute.speed\""), "is not a design key"),
    (("power_w = { max = 2.0 }", "power_w = { below = 2.0 }"), "constraints.power_w must be"),
    (("high = 32", "high = 2048"), "compute.rows"),  # beyond the design's allowed rows
    (("choices = [1, 2, 4]", "choices = [1, 3]"), "k"),  # a PE parameter value the block refuses
    (("[fixed]", "[fixd]"), "unknown key 'fixd'"),
])
def test_bad_space_one_line_naming_file_and_key(change, message):
    old, new = change
    assert old in BASE
    with pytest.raises(ValueError) as info:
        parse(BASE.replace(old, new, 1))
    text = str(info.value)
    assert text.startswith("s.toml") and "\n" not in text
    assert message in text


def test_same_path_needs_exclusive_conditions():
    text = BASE + """
[param.k2]
path = "compute.pe_params.k"
type = "fixed"
value = 2
"""
    with pytest.raises(ValueError, match=r"sets compute.pe_params.k, as \[param.k\] does"):
        parse(text)


def test_not_toml_and_missing_file():
    with pytest.raises(ValueError, match="not valid TOML"):
        parse("[param\n")
    with pytest.raises(ValueError, match="no such space file or shipped space"):
        load_space("/nonexistent/space.toml")


def test_pim_space_draws_channels_its_memory_has():
    # a point asking for more PIM channels than its memory.units hold would be a failed trial
    from peforge.dse.cost.pim import memory_channels

    space = load_space("pim")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    drawn = set()
    for _ in range(300):
        design = space.suggest(study.ask())
        if design.pim.mode != "none":
            assert design.pim.channels <= memory_channels(design), (design.pim.channels, design.memory.units)
            drawn.add((design.memory.units, design.pim.channels))
    assert (4, 64) in drawn and (1, 16) in drawn  # the whole memory is still reachable
