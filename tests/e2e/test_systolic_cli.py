"""`peforge export / verify / blocks` with the systolic array, as a user runs them."""

import subprocess

import pytest

from peforge.sim.tools import missing_simulator, setup_verilator
from tools import need


def _export_8x8(peforge, tmp_path):
    result = peforge("export", "systolic", "rows=8", "cols=8", "pe=mixed", "dataflow=ws", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    source = tmp_path / "systolic.v"
    assert "module systolic(" in source.read_text()
    return source


def test_export_8x8_mixed_ws_lints(peforge, tmp_path):
    need(missing_simulator("verilator"))
    lint = subprocess.run([str(setup_verilator()), "--lint-only", "-Wno-fatal", str(_export_8x8(peforge, tmp_path))],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr[-2000:]


def test_export_8x8_mixed_ws_compiles_on_icarus(peforge, tmp_path):
    need(missing_simulator("icarus"))
    compiled = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.vvp"), str(_export_8x8(peforge, tmp_path))],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr[-2000:]


@pytest.mark.parametrize("params", [
    [],
    ["pe=bitserial", "pe.lanes=2", "pe.max_w_bits=4", "dataflow=os", "rows=2", "cols=3"],
    ["pe=mixed", "pe.lanes=2", "pe.group=4", "pe.zero_point=false", "rows=2", "cols=2", "max_m=8"],
])
def test_verify_systolic_amaranth_passes(peforge, params):
    result = peforge("verify", "systolic", *params, "--seed", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS systolic [amaranth]")


@pytest.mark.parametrize("args, message", [
    (["pe.lanes=2"], "unknown parameter 'pe.lanes' for pe=mac"),
    (["pe=mixed", "pe.group=100"], "group=100 must be a multiple of lanes=16"),
    (["rows=65"], "rows=65 is out of range; allowed 1..64"),
    (["pe=bitserial", "pe.rescale=true"], "pe.rescale=True is not supported in the array"),
])
def test_bad_systolic_parameters_one_line(peforge, tmp_path, args, message):
    result = peforge("export", "systolic", *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_blocks_lists_nested_pe_parameters(peforge):
    table = peforge("blocks")
    assert table.returncode == 0, table.stderr
    assert "pe.w_bits" in table.stdout and "[pe=mixed]" in table.stdout
