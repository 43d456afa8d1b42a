"""Design files: shipped ones load, bad ones fail with one line naming file and key."""

import pytest

from peforge.dse.design.point import DesignPoint, design_from_dict, load_design
from peforge.dse.design.point import shipped_designs


def test_shipped_designs_load():
    names = shipped_designs()
    assert {"edge", "datacenter", "pim"} <= set(names)
    for path in names.values():
        design = load_design(path)
        assert isinstance(design, DesignPoint)
        assert design.compute.pe_config is not None


@pytest.mark.parametrize("data, message", [
    ({"compute": {"rows": 0}}, r"\[compute\] Compute.rows=0 is out of range; allowed 1..1024"),
    ({"compute": {"pe": "gpu"}}, r"Compute.pe='gpu' is not allowed; choose one of mac \| bitserial \| mixed"),
    ({"compute": {"speed": 3}}, r"unknown key 'compute.speed'; allowed: pe, rows"),
    ({"pim": {"banks": 0}}, r"Pim.banks=0 is out of range; allowed 1..64"),
    ({"pim": {"mode": "sometimes"}}, r"Pim.mode='sometimes' is not allowed"),
    ({"memory": {"technology": "SRAM"}}, r"memory.technology='SRAM' is not a memory of tech preset '45nm'; allowed: HBM2, HBM3"),
    ({"compute": {"pe": "mixed", "pe_params": {"w_bits": 8}}}, r"MixedConfig.w_bits=8 is not allowed"),
    ({"compute": {"clock_mhz": "fast"}}, r"Compute.clock_mhz must be float, not 'fast'"),
    ({"colour": "red"}, r"unknown key 'colour'"),
    ({"batch": 0}, r"DesignPoint.batch=0 is out of range"),
    ({"pim": {"t_ccd_ns": 16.0, "t_rcd_ns": 3.0, "t_rp_ns": 3.0}},
     r"Pim.t_ccd=16 must not exceed t_rcd \+ t_rp \+ 1 = 7"),
    ({"pim": {"t_ccd": 2}}, r"unknown key 'pim.t_ccd'; allowed: .*t_ccd_ns"),  # cycles follow from ns
    ({"pim": {"t_ras_ns": 400.0}},
     r"Pim.t_ras_ns=400.0 is 400 cycles at clock_mhz=1000.0; the bank's counters allow 1..255 cycles"),
])
def test_bad_design_one_line(data, message):
    with pytest.raises(ValueError, match=message) as caught:
        design_from_dict(data, "my.toml")
    assert str(caught.value).startswith("my.toml: ")
    assert "\n" not in str(caught.value)


def test_integer_clock_is_accepted_as_float():
    assert design_from_dict({"compute": {"clock_mhz": 500}}).compute.clock_mhz == 500.0


def test_bad_toml_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[compute\nrows = 3")
    with pytest.raises(ValueError, match=r"broken.toml: not valid TOML"):
        load_design(path)
    with pytest.raises(ValueError, match=r"missing.toml: no such file \(expected a design file\)"):
        load_design(tmp_path / "missing.toml")
