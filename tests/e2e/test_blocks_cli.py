"""`peforge blocks`, `export` and `verify` as a user runs them."""

import json
import subprocess

import pytest

from peforge.sim.tools import missing_simulator, setup_verilator
from tools import need

PE_BLOCKS = ["mac", "bitserial", "mixed", "fpmac", "fpbitserial", "fpmixed"]
EXPORTED = PE_BLOCKS + ["pim-bank", "pim-channel"]


def test_blocks_lists_parameters_with_defaults_and_ranges(peforge):
    result = peforge("blocks", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    for name in PE_BLOCKS:
        assert name in listing
    rows = {r["name"]: r for r in listing["bitserial"]["parameters"]}
    assert rows["k"]["allowed"] == "1 | 2 | 4"
    assert rows["lanes"]["allowed"] == "1..64"
    # PIM: real DRAM banks and channels are accepted (HBM2/3: 32768 rows, 32 banks per channel)
    pim = {r["name"]: r for r in listing["pim-channel"]["parameters"]}
    assert (pim["rows"]["allowed"], pim["cols"]["allowed"], pim["banks"]["allowed"]) == ("2..65536", "1..65536", "1..64")
    assert pim["lanes"]["allowed"] == "1 | 2 | 4 | 8 | 16 | 32 | 64"
    assert (pim["t_rcd"]["allowed"], pim["t_ras"]["allowed"], pim["t_ccd"]["allowed"]) == ("1..255", "1..255", "1..64")
    assert [r["name"] for r in listing["pim-bank"]["parameters"]] == list(pim)[:-1]  # banks last
    table = peforge("blocks")
    assert "max_w_bits" in table.stdout and "allowed" in table.stdout


def _export(peforge, tmp_path, block):
    result = peforge("export", block, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    module = block.replace("-", "_")
    source = tmp_path / f"{module}.v"
    assert f"module {module}(" in source.read_text()
    return source


@pytest.mark.parametrize("block", EXPORTED)
def test_export_lints_on_verilator(peforge, tmp_path, block):
    need(missing_simulator("verilator"))
    source = _export(peforge, tmp_path, block)
    lint = subprocess.run([str(setup_verilator()), "--lint-only", "-Wno-fatal", str(source)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr


@pytest.mark.parametrize("block", EXPORTED)
def test_export_compiles_on_icarus(peforge, tmp_path, block):
    need(missing_simulator("icarus"))
    source = _export(peforge, tmp_path, block)
    compiled = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.vvp"), str(source)],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr


@pytest.mark.parametrize("args, message", [
    (["export", "nosuch", "--out", "{out}"], "unknown block 'nosuch'"),
    (["export", "mac", "bogus=1", "--out", "{out}"], "unknown parameter 'bogus'"),
    (["export", "bitserial", "k=3", "--out", "{out}"], "k=3 is not allowed; choose one of 1 | 2 | 4"),
    (["export", "mixed", "lanes=65", "--out", "{out}"], "lanes=65 is out of range; allowed 1..64"),
    (["export", "mixed", "group=100", "--out", "{out}"], "group=100 must be a multiple of lanes=16"),
    (["export", "pim-channel", "banks=65", "--out", "{out}"], "banks=65 is out of range; allowed 1..64"),
    (["export", "pim-bank", "lanes=3", "--out", "{out}"], "lanes=3 is not allowed; choose one of 1 | 2 | 4 | 8 | 16 | 32 | 64"),
    (["export", "fpmac", "approx_norm=true", "--out", "{out}"], "approx_norm=True needs subnormals=false"),
    (["export", "fpmac", "fmt=fp8", "--out", "{out}"], "fmt='fp8' is not allowed; choose one of bf16 | fp16 | e4m3"),
    (["verify", "mac", "a_bits=x"], "a_bits='x': expected an integer"),
    (["verify", "mac", "--sim", "modelsim"], "invalid choice: 'modelsim'"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(peforge, tmp_path, args, message):
    out = tmp_path / "out"
    result = peforge(*[a.format(out=out) for a in args])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("block, params", [("mac", []), ("bitserial", ["lanes=4", "rescale=true"]),
                                           ("mixed", ["zero_point=false"]), ("fpmac", ["fmt=e4m3", "lanes=4"]),
                                           ("fpbitserial", ["lanes=4", "a_float=bf16", "align_bits=6"]),
                                           ("fpmixed", ["lanes=4", "group=8", "align_bits=8"])])
def test_verify_amaranth_passes(peforge, block, params):
    result = peforge("verify", block, *params, "--seed", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"PASS {block} [amaranth]")
