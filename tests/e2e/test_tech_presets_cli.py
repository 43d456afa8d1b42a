"""A user technology preset is accepted wherever a built-in one is: a design file's ``tech``, a
space's ``tech`` (the sweep characterizes with it), ``peforge characterize --tech``; a memory the
preset adds can be used, and one it lacks is a one-line error naming the file and key."""

from __future__ import annotations

import json

# The 45 nm logic constants, and a memory no built-in preset has ("HBM4-test").
PRESET = """
name = "45nm-user"
node_nm = 45
[logic]
um2_per_nand2 = 0.798
pj_per_gate_toggle = 0.00115
ps_per_gate_level = 22.0
ps_flop_overhead = 66.0
pj_per_flop_clock = 0.0023
[sram]
um2_per_bit = 0.58
read_pj_per_bit = [[8192, 0.15625], [32768, 0.3125], [1048576, 1.5625]]
[memory.HBM4-test]
pj_per_bit = 2.0
gb_per_s = 2000
unit = "stack"
"""

DESIGN = """
name = "user-tech"
tech = "{tech}"
quant = "w8a8kv8"
[compute]
pe = "mac"
rows = 8
cols = 8
clock_mhz = 200.0
[memory]
technology = "{memory}"
units = 1
"""


def _write(tmp_path, memory):
    preset = tmp_path / "user.toml"
    preset.write_text(PRESET)
    design = tmp_path / "design.toml"
    design.write_text(DESIGN.format(tech=preset, memory=memory))
    return design


def test_design_with_a_memory_the_user_preset_adds(peforge, tmp_path):
    design = _write(tmp_path, "HBM4-test")
    result = peforge("evaluate", "--design", str(design), "--workload", "gpt2", "--seq", "16", "--gen", "2",
                     "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["unit_costs"]["memory_gb_per_s"] == 2000.0
    assert data["unit_costs"]["memory_pj_per_bit"] == 2.0


def test_memory_missing_from_the_preset_is_one_line(peforge, tmp_path):
    design = _write(tmp_path, "HBM3")  # the user preset has no HBM3
    result = peforge("evaluate", "--design", str(design), "--workload", "gpt2")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(design) in lines[0] and "memory.technology='HBM3'" in lines[0] and "HBM4-test" in lines[0]
    assert "Traceback" not in result.stderr


def test_sweep_accepts_a_preset_file(peforge, tmp_path):
    preset = tmp_path / "user.toml"
    preset.write_text(PRESET)
    space = tmp_path / "space.toml"
    space.write_text(f"""
[workload]
model = "gpt2"
seq = 16
gen = 2
quant = "w8a8kv8"
[fixed]
tech = "{preset}"
[fixed.memory]
technology = "HBM4-test"
[fixed.compute]
pe = "mac"
clock_mhz = 200.0
[param."compute.rows"]
type = "categorical"
choices = [4, 8]
[objectives]
tokens_per_s = "maximize"
area_mm2 = "minimize"
""")
    out = tmp_path / "study"
    result = peforge("sweep", "--space", str(space), "--trials", "3", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "3 trials (3 complete, 0 failed)" in result.stdout
