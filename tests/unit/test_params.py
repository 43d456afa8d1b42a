import pytest

from peforge.hw import params
from peforge.hw.blocks import BLOCKS, block_named
from peforge.hw.pe.mac import MacConfig


def test_out_of_range_names_field_value_and_range():
    with pytest.raises(ValueError, match=r"MacConfig\.a_bits=17 is out of range; allowed 2\.\.16"):
        MacConfig(a_bits=17)


def test_wrong_type_rejected():
    with pytest.raises(ValueError, match=r"MacConfig\.w_bits must be int, not '8'"):
        MacConfig(w_bits="8")
    with pytest.raises(ValueError, match=r"output_register must be bool"):
        MacConfig(output_register=1)


def test_assignments_parse_types():
    cfg = params.from_assignments(MacConfig, ["a_bits=4", "output_register=true", "max_accumulations=0x10"])
    assert cfg == MacConfig(a_bits=4, output_register=True, max_accumulations=16)


@pytest.mark.parametrize("item, message", [
    ("nope=1", "unknown parameter 'nope'"),
    ("a_bits", "expected KEY=VALUE"),
    ("a_bits=four", "expected an integer"),
    ("output_register=maybe", "expected true or false"),
])
def test_bad_assignments(item, message):
    with pytest.raises(ValueError, match=message):
        params.from_assignments(MacConfig, [item])


def test_hash_depends_on_values_only():
    assert params.config_hash(MacConfig(a_bits=4)) == params.config_hash(MacConfig(a_bits=4))
    assert params.config_hash(MacConfig(a_bits=4)) != params.config_hash(MacConfig(a_bits=5))


def test_every_block_has_defaults_and_docs():
    for name, block in BLOCKS.items():
        block.config()  # every parameter has a default
        rows = params.describe(block.config)
        assert rows and all(r["doc"] for r in rows), name
    with pytest.raises(ValueError, match="unknown block 'foo'"):
        block_named("foo")


def test_mac_accumulator_width_holds_worst_case():
    for a_bits, w_bits, n in [(8, 8, 1), (8, 8, 4096), (2, 2, 7), (16, 16, 3)]:
        cfg = MacConfig(a_bits=a_bits, w_bits=w_bits, max_accumulations=n)
        worst = n * (1 << a_bits - 1) * (1 << w_bits - 1)  # (most negative)^2, n times
        assert worst <= (1 << cfg.acc_bits - 1) - 1
