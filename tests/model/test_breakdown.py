"""Where time, energy and area go: the parts add up to the totals, each operator names its bound
and mapping, and the roofline is drawn."""

from __future__ import annotations

import dataclasses

import pytest
from tools import FPMAC_CELL_FIT

from peforge.cli import main
from peforge.dse.cost import evaluate, prepare
from peforge.dse.cost.model import ENERGY_PARTS
from peforge.dse.design import design_named

pytestmark = FPMAC_CELL_FIT  # the pim design's FP16 fpmac arrays


@pytest.fixture(scope="module")
def pim_eval():
    return evaluate(design_named("pim"), prepare("llama-2-7b", batch=32, seq=1024, gen=16))


def test_energy_parts_add_up(pim_eval):
    ops = pim_eval.operators
    parts = sum(ops[name] for name in ENERGY_PARTS)
    assert parts.values == pytest.approx(ops["energy_j"].values, rel=1e-12)
    assert ops["energy_j"].sum() == pytest.approx(pim_eval.metrics["energy_j"], rel=1e-9)
    on_pim = ops["bound"] == "pim"
    assert on_pim.any() and (ops.loc[on_pim, "pim_j"] > 0).all() and (ops.loc[on_pim, "mac_j"] == 0).all()
    assert (ops.loc[~on_pim, "pim_j"] == 0).all()


def test_area_parts_add_up(pim_eval):
    assert sum(pim_eval.area_mm2.values()) == pytest.approx(pim_eval.metrics["area_mm2"], rel=1e-12)
    assert pim_eval.area_mm2["PIM lanes"] > 0 and pim_eval.area_mm2["arrays"] > 0


def test_every_operator_names_its_mapping(pim_eval):
    ops = pim_eval.operators
    assert set(ops["bound"]) <= {"compute", "memory", "pim"}
    assert (ops.loc[ops["kind"] == "elementwise", "mapping"] == "vector unit").all()
    assert ops.loc[ops["bound"] == "pim", "mapping"].str.startswith("PIM").all()
    # A floating-point accumulator does not wrap: Llama-2-7B's K = 11008 reduction runs in one pass
    down = ops[ops["operator"] == "mlp.down_proj"]
    assert not down["mapping"].str.contains("passes").any()


def test_a_reduction_beyond_the_integer_accumulator_runs_in_passes():
    # down_proj sums K = 11008 products: beyond the INT8 mac's accumulator (8 + 8 + 12 = 28 bits
    # hold 8191 worst-case products), so it runs in 2 passes
    pim = design_named("pim")
    mac = dataclasses.replace(pim, quant="w8a8kv8", compute=dataclasses.replace(
        pim.compute, pe="mac", pe_params=(("a_bits", 8), ("w_bits", 8))))
    ops = evaluate(mac, prepare("llama-2-7b", batch=1, seq=64, gen=2, quant=mac.quant)).operators
    down = ops[ops["operator"] == "mlp.down_proj"]
    assert len(down) and down["mapping"].str.contains("K in 2 passes").all()


def test_evaluate_plots_a_roofline(tmp_path, capsys):
    plot = tmp_path / "roof.png"
    assert main(["evaluate", "--design", "edge", "--workload", "gpt2", "--gen", "4", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("time by operator class", "energy by component", "area by component"):
        assert heading in out
    assert main(["evaluate", "--design", "edge", "--workload", "gpt2", "--plot", str(tmp_path / "x.svg")]) == 2
