"""`peforge export-design` writes a design's whole tile with the tiny layer's testbench files, and
`peforge verify-design` runs that testbench on them: it passes on the files as exported, and a
corrupted program word or DRAM image byte makes it fail with one line naming what differs (those
two on the decode step alone, which then starts from the golden model's KV cache)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tools import need

from peforge.dse.report.tile_rtl import read_words, tile_from_dict
from peforge.hw.tile.isa import Issue, decode, encode
from peforge.sim.tools import missing_simulator

# One 4 x 4 INT8 MAC array, weight-stationary, one LPDDR5 channel: the tile testbench's default.
DESIGN = """
name = "tile-e2e"
tech = "7nm"
quant = "w8a8kv8"

[compute]
pe = "mac"
rows = 4
cols = 4
dataflow = "ws"
clock_mhz = 500.0
vector_lanes = 4
[compute.pe_params]
a_bits = 8
w_bits = 8

[sram]
weight_kib = 8
activation_kib = 8
output_kib = 8

[memory]
technology = "LPDDR5"
units = 1
"""


@pytest.fixture(scope="module")
def exported(peforge, tmp_path_factory) -> tuple[Path, Path]:
    """An export of DESIGN (its PE characterized for the cost model's mappings) and a build folder
    the verify runs share (one Verilator build of the tile)."""
    need(missing_simulator("verilator"))
    root = tmp_path_factory.mktemp("tile-export")
    design, out = root / "design.toml", root / "rtl"
    design.write_text(DESIGN)
    result = peforge("export-design", "--design", str(design), "--out", str(out), "--no-full-size")
    assert result.returncode == 0, result.stderr
    return out, root / "build"


def test_export_writes_the_tile_program_images_and_a_readme(exported):
    out, _ = exported
    for name in ("tile/accelerator_tile.v", "layer/manifest.json", "layer/prefill.program.hex",
                 "layer/decode.program.hex", "layer/prefill.dram.bin", "layer/decode.dram.bin", "run_tile.py",
                 "pe/mac.v", "array_small/systolic.v", "blocks.json", "design.toml"):
        assert (out / name).is_file(), name
    assert "module accelerator_tile(" in (out / "tile/accelerator_tile.v").read_text()
    readme = (out / "README.md").read_text()
    for name in ("tile/accelerator_tile.v", "layer/prefill.program.hex", "layer/decode.dram.bin", "run_tile.py"):
        assert f"`{name}`" in readme, name
    assert "peforge verify-design" in readme
    manifest = json.loads((out / "layer/manifest.json").read_text())
    assert [p["name"] for p in manifest["phases"]] == ["prefill", "decode"]
    assert len(manifest["tokens"]) == 17 and manifest["layer"]["model"] == "tiny-llama"
    prefill = manifest["phases"][0]
    words = read_words(out / "layer/prefill.program.hex")
    assert len(words) == len(prefill["tags"]) == len(prefill["predicted"]["issued"])


def _copy(exported_folder: Path, to: Path) -> Path:
    shutil.copytree(exported_folder, to)
    return to


def test_verify_design_passes_on_the_exported_files(peforge, exported):
    """The decode step (from the golden KV cache): the prefill then decode run is the cocotb
    test's (tests/cocotb/test_tile_layer.py) and the slow test's below."""
    out, build = exported
    result = peforge("verify-design", str(out), "--sim", "verilator", "--build-dir", str(build), "--exact-cycles",
                     "--json", "--phases", "decode")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and report["cycles_exact"] and list(report["phases"]) == ["decode"]
    decode = json.loads((out / "layer/manifest.json").read_text())["phases"][1]
    got = report["phases"]["decode"]
    assert got["measured"] == got["predicted"] == decode["predicted"]["cycles"]
    assert got["divergence"] is None and {"out", "k_cache", "v_cache_t"} <= set(got["checked"])


@pytest.mark.slow
def test_verify_design_prefill_then_decode(peforge, exported):
    out, build = exported
    result = peforge("verify-design", str(out), "--sim", "verilator", "--build-dir", str(build), "--exact-cycles",
                     "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and report["cycles_exact"]
    manifest = json.loads((out / "layer/manifest.json").read_text())
    for phase in manifest["phases"]:
        got = report["phases"][phase["name"]]
        assert got["measured"] == got["predicted"] == phase["predicted"]["cycles"]
        assert got["divergence"] is None and "out" in got["checked"]
    assert report["total"]["measured"] == sum(p["predicted"]["cycles"] for p in manifest["phases"])


def _last_store(words: list[int], slots) -> int:
    """Index of the program's last DMA store (the one that writes ``out`` back)."""
    program = decode(words, slots)
    return max(i for i, ins in enumerate(program)
               if isinstance(ins, Issue) and ins.slot == "dma" and ins.command["dir"] == 1)


def test_a_corrupted_program_word_fails_in_one_line(peforge, exported, tmp_path):
    out, build = exported
    bad = _copy(out, tmp_path / "bad")
    tile = tile_from_dict(json.loads((bad / "layer/manifest.json").read_text())["tile"])
    path = bad / "layer/decode.program.hex"
    words = read_words(path)
    i = _last_store(words, tile.slots)
    fields = dict(decode([words[i]], tile.slots)[0].command)
    fields["dram_addr"] -= 64  # the output row goes to the wrong place
    words[i] = encode([Issue("dma", fields)], tile.slots)[0]
    width = len(path.read_text().splitlines()[0])
    path.write_text("".join(f"{w:0{width}x}\n" for w in words))
    result = peforge("verify-design", str(bad), "--sim", "verilator", "--build-dir", str(build),
                     "--phases", "decode")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("peforge: verify-design: decode: tensor "), result.stderr
    assert result.stdout.startswith("FAIL")


def test_a_corrupted_dram_image_byte_fails_in_one_line(peforge, exported, tmp_path):
    out, build = exported
    bad = _copy(out, tmp_path / "bad")
    manifest = json.loads((bad / "layer/manifest.json").read_text())
    x = manifest["phases"][1]["symbols"]["x"]  # the decode step's input row
    image = bytearray((bad / "layer/decode.dram.bin").read_bytes())
    image[x["addr"] + 5] ^= 0x40
    (bad / "layer/decode.dram.bin").write_bytes(bytes(image))
    result = peforge("verify-design", str(bad), "--sim", "verilator", "--build-dir", str(build),
                     "--phases", "decode")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("peforge: verify-design: decode: tensor "), result.stderr


def test_verify_design_on_a_folder_without_a_tile_is_one_line(peforge, tmp_path):
    result = peforge("verify-design", str(tmp_path), "--sim", "verilator")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no layer/manifest.json" in lines[0], result.stderr


@pytest.mark.parametrize("args, message", [
    (("export-design", "--out", "x"), "give a study folder DIR with --trial N, or --design"),
    (("export-design", "somewhere", "--design", "edge", "--out", "x"), "takes no study folder or --trial"),
    (("export-design", "--design", "no-such-design", "--out", "x"), "no-such-design"),
    (("verify-design", "no-such-folder"), "not a folder"),
    (("verify-design", ".", "--sim", "amaranth"), "invalid choice"),
])
def test_bad_export_and_verify_arguments_are_one_line(peforge, tmp_path, args, message):
    result = peforge(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "x").exists()
