"""Technology presets: sources on every constant, interpolation, and user TOML presets."""

from __future__ import annotations

import pytest

from peforge.sim.tech import PRESETS, load_toml, preset_named, resolve

GOOD = """
name = "28nm-test"
node_nm = 28
[logic]
um2_per_nand2 = 0.2
pj_per_gate_toggle = 0.0005
ps_per_gate_level = 12.0
ps_flop_overhead = 40.0
pj_per_flop_clock = 0.001
[sram]
um2_per_bit = 0.15
read_pj_per_bit = [[1048576, 1.0], [8192, 0.1]]
[memory.HBM3]
pj_per_bit = 3.5
gb_per_s = 819
unit = "stack"
[pim]
internal_pj_per_bit = 1.5
[sources]
um2_per_nand2 = "a datasheet"
"""


def test_presets_have_sources_and_two_nodes():
    assert {"45nm", "7nm"} <= set(PRESETS)
    for preset in PRESETS.values():
        for name, constant in preset.constants().items():
            assert constant.value > 0, name
            assert constant.source and constant.unit, name
        for memory in preset.memories.values():
            assert memory.pj_per_bit.source and memory.gb_per_s.source
        assert {"HBM2", "HBM3", "LPDDR5"} <= set(preset.memories)


def test_45nm_matches_literature_points():
    p = preset_named("45nm")
    assert p.um2_per_nand2.value == 0.798
    assert p.sram_pj_per_bit(32 * 1024) == pytest.approx(20 / 64)
    # Interpolation is monotone between the 8 KB and 1 MB points, and extrapolates.
    assert 10 / 64 < p.sram_pj_per_bit(16 * 1024) < 20 / 64
    assert p.sram_pj_per_bit(4 * 1024 * 1024) > 100 / 64
    assert p.fmax_mhz(10) > p.fmax_mhz(20)


def test_7nm_is_smaller_faster_cheaper():
    a, b = preset_named("45nm"), preset_named("7nm")
    assert b.area_um2(1000) < a.area_um2(1000)
    assert b.fmax_mhz(30) > a.fmax_mhz(30)
    assert b.pj_per_gate_toggle.value < a.pj_per_gate_toggle.value


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown technology '3nm'; known: 45nm, 7nm"):
        resolve("3nm")


def test_user_preset_loads(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(GOOD)
    p = resolve(str(path))
    assert p.name == "28nm-test" and p.um2_per_nand2.source == "a datasheet"
    assert p.sram_read_pj_per_bit[0] == (8192, 0.1)  # sorted by size
    assert p.memories["HBM3"].gb_per_s.value == 819
    assert p.um2_per_nand2.value == 0.2


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("um2_per_nand2 = 0.2", "um2_per_nand2 = -0.2"), "logic.um2_per_nand2 must be a positive number"),
    (lambda t: t.replace("um2_per_nand2 = 0.2", "um2_per_nand2 = \"big\""), "logic.um2_per_nand2 must be a positive number"),
    (lambda t: t.replace("ps_flop_overhead = 40.0\n", ""), "missing key logic.ps_flop_overhead"),
    (lambda t: t.replace("[logic]", "[logic]\ncolour = 1"), "unknown key logic.'colour'"),
    (lambda t: t.replace('name = "28nm-test"', 'name = "45nm"'), "name must be a new non-empty string"),
    (lambda t: t.replace("[[1048576, 1.0], [8192, 0.1]]", "[[8192]]"), "is not a [size_bytes, pJ/bit] pair"),
    (lambda t: t.replace("gb_per_s = 819\n", ""), "missing key memory.HBM3.gb_per_s"),
    (lambda t: t + "\n[[broken", "not valid TOML"),
    (lambda t: t.replace('unit = "stack"', 'unit = "stack"\ncapacity_gib = -16'),
     "memory.HBM3.capacity_gib must be a positive number, not -16"),
    (lambda t: t.replace('unit = "stack"', 'unit = "stack"\ncapacity_gib = "lots"'),
     "memory.HBM3.capacity_gib must be a positive number, not 'lots'"),
    (lambda t: t.replace('unit = "stack"', 'unit = "stack"\nefficiency = 1.2'),
     "memory.HBM3.efficiency must be in (0, 1]"),
    (lambda t: t.replace('unit = "stack"', 'unit = "stack"\nefficiency = 0'),
     "memory.HBM3.efficiency must be a positive number, not 0"),
    (lambda t: t.replace('unit = "stack"', 'unit = "stack"\nchannels = 2.5'),
     "memory.HBM3.channels must be a whole number >= 1 (channels per unit), not 2.5"),
    (lambda t: t.replace('unit = "stack"', 'unit = "stack"\nchannels = 0'),
     "memory.HBM3.channels must be a whole number >= 1 (channels per unit), not 0"),
])
def test_user_preset_errors_are_one_line(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(edit(GOOD))
    with pytest.raises(ValueError) as info:
        load_toml(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_memories_have_sourced_capacity_and_efficiency():
    # per unit: an 8-high HBM2 stack of 8 Gb dies, an 8-high HBM3 stack of 16 Gb dies, one 16 Gb
    # LPDDR5 die per x16 channel, one 32 GB RDIMM per DDR channel
    expected = {"HBM2": 8.0, "HBM3": 16.0, "LPDDR5": 2.0, "DDR4": 32.0, "DDR5": 32.0}
    for preset in PRESETS.values():
        for name, memory in preset.memories.items():
            assert memory.capacity_gib.value == expected[name] and memory.capacity_gib.source
            assert 0.6 <= memory.efficiency.value <= 0.9 and memory.efficiency.source
            assert memory.sustained_gb_per_s == memory.gb_per_s.value * memory.efficiency.value


def test_user_memory_capacity_and_efficiency(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(GOOD.replace('unit = "stack"', 'unit = "stack"\ncapacity_gib = 24\nefficiency = 0.9')
                    + '[memory.CXL]\npj_per_bit = 20.0\ngb_per_s = 64\n')
    memories = load_toml(path).memories
    assert memories["HBM3"].capacity_gib.value == 24 and memories["HBM3"].efficiency.value == 0.9
    # a memory without the keys: a built-in name takes the built-in figures, any other is unlimited
    plain = tmp_path / "plain.toml"
    plain.write_text(GOOD + '[memory.CXL]\npj_per_bit = 20.0\ngb_per_s = 64\n')
    memories = load_toml(plain).memories
    assert memories["HBM3"].capacity_gib == PRESETS["7nm"].memories["HBM3"].capacity_gib
    assert memories["CXL"].capacity_gib.value == float("inf") and memories["CXL"].efficiency.value == 1.0


def test_memory_channels_per_unit(tmp_path):
    # JEDEC: HBM2 8 x 128-bit and HBM3 16 x 64-bit channels per stack, DDR5 two 32-bit subchannels
    expected = {"HBM2": 8, "HBM3": 16, "LPDDR5": 1, "DDR4": 1, "DDR5": 2}
    for preset in PRESETS.values():
        assert {name: m.channels.value for name, m in preset.memories.items()} == expected
    path = tmp_path / "t.toml"
    path.write_text(GOOD.replace('unit = "stack"', 'unit = "stack"\nchannels = 32')
                    + '[memory.CXL]\npj_per_bit = 20.0\ngb_per_s = 64\n')
    memories = load_toml(path).memories
    # a built-in name keeps the built-in count unless given; any other has none (PIM channels unchecked)
    assert memories["HBM3"].channels.value == 32 and memories["CXL"].channels is None


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        resolve(str(tmp_path / "none.toml"))
