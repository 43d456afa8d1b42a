"""Scratchpad layout helpers and GEMM engine configs and commands, in pure Python."""

from __future__ import annotations

import numpy as np
import pytest

from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.systolic import SystolicConfig
from peforge.hw.tile.gemm import GemmCommand, GemmEngineConfig
from peforge.hw.tile.spad import ScratchpadConfig, skewed_pitch


@pytest.mark.parametrize("words, banks, pitch", [(5, 4, 5), (4, 4, 5), (6, 4, 9), (1, 3, 1), (2, 3, 4), (3, 1, 3)])
def test_skewed_pitch(words, banks, pitch):
    assert skewed_pitch(words, banks) == pitch


def test_element_address_and_pack_round_trip():
    cfg = ScratchpadConfig(banks=3, word_elements=2, element_bits=8, depth=8)
    assert cfg.row_pitch(5) == 4  # 3 words, skewed to 4 (4 % 3 == 1)
    assert cfg.element_address(6, 4, 2, 3) == 6 + 2 * 4 * 2 + 3
    matrix = np.arange(15).reshape(3, 5) - 7
    image = cfg.pack(cfg.blank(), matrix, 6, 4)
    assert image[6:11].tolist() == [-7, -6, -5, -4, -3] and image[14:19].tolist() == [-2, -1, 0, 1, 2]
    assert cfg.unpack(image, 6, 4, 3, 5).tolist() == matrix.tolist()
    assert cfg.from_bank_words(cfg.bank_words(image)).tolist() == image.tolist()
    # word 3 (elements 6, 7) is bank 0, address 1: -7 and -6 as bytes
    assert cfg.bank_words(image)[0][1] == (0xF9 | 0xFA << 8)


def test_scratchpad_errors():
    with pytest.raises(ValueError, match=r"run=8 spans more than banks=2 words; allowed 0..5"):
        ScratchpadConfig(banks=2, word_elements=4, run=8)
    cfg = ScratchpadConfig(banks=3, word_elements=2, depth=4)
    with pytest.raises(ValueError, match=r"a base=3 is not word-aligned"):
        cfg.check_matrix("a", 3, 4, 2, 5)
    with pytest.raises(ValueError, match=r"a pitch=3 words; need >= 3 and pitch % 3 == 1 \(e.g. 4\)"):
        cfg.check_matrix("a", 0, 3, 2, 5)
    with pytest.raises(ValueError, match=r"ends at element 29, beyond 24"):
        cfg.check_matrix("a", 0, 4, 4, 5)
    cfg.check_matrix("c", 0, 3, 2, 5, skewed=False)
    with pytest.raises(ValueError, match=r"a 4x5 matrix at base=0 with pitch=4 ends at element 29, beyond 24"):
        cfg.pack(cfg.blank(), np.zeros((4, 5)), 0, 4)


def mixed_engine() -> GemmEngineConfig:
    array = SystolicConfig(pe="mixed", rows=2, cols=3, max_m=8, max_k=32, max_n=8,
                           pe_config=MixedConfig(lanes=2, group=8))
    return GemmEngineConfig.for_array(array, act_depth=16, weight_depth=16, out_depth=8, meta_depth=8)


def test_engine_derives_its_scratchpads():
    cfg = mixed_engine()
    assert (cfg.act.banks, cfg.act.word_elements, cfg.act.element_bits, cfg.act.signed) == (2, 2, 8, True)
    assert (cfg.weight.banks, cfg.weight.word_elements, cfg.weight.element_bits, cfg.weight.signed) == (3, 2, 4, False)
    assert (cfg.out.word_elements, cfg.out.element_bits) == (3, 32)
    assert (cfg.meta.banks, cfg.meta.word_elements, cfg.meta.element_bits) == (3, 1, 16 + 4)  # scale, zero point
    assert GemmEngineConfig(array=SystolicConfig(pe="mac")).meta is None
    # scale in the low 16 bits, the zero point above: one row per column of B, one entry per group
    codes = cfg.meta_codes({"scale": np.array([[1, 2], [3, 4]]), "zp": np.array([[5, 6], [7, 8]])})
    assert codes.tolist() == [[1 | 5 << 16, 3 | 7 << 16], [2 | 6 << 16, 4 | 8 << 16]]


def test_engine_config_errors():
    array = SystolicConfig(pe="mac", rows=2, cols=3)
    with pytest.raises(ValueError, match=r"GemmEngineConfig.act.banks=4; this array needs 2"):
        GemmEngineConfig(array=array, act=ScratchpadConfig(banks=4, word_elements=1))
    with pytest.raises(ValueError, match=r"GemmEngineConfig.meta=.*no column metadata, allowed None"):
        GemmEngineConfig(array=array, meta=ScratchpadConfig())


def test_command_checks():
    cfg = mixed_engine()
    good = dict(a_pitch=cfg.act.row_pitch(9), b_pitch=cfg.weight.row_pitch(9), c_pitch=2, m=3, k=9, n=4,
                meta_pitch=cfg.meta.row_pitch(2))
    GemmCommand(**good).pack(cfg)
    with pytest.raises(ValueError, match=r"GemmCommand.k=33 is out of range; allowed 1..32"):
        GemmCommand(**{**good, "k": 33}).pack(cfg)
    with pytest.raises(ValueError, match=r"GemmCommand.b pitch=6 words"):
        GemmCommand(**{**good, "b_pitch": 6}).pack(cfg)
    with pytest.raises(ValueError, match=r"GemmCommand.c base=1 is not word-aligned"):
        GemmCommand(**{**good, "c_base": 1}).pack(cfg)
    serial = GemmEngineConfig(array=SystolicConfig(pe="bitserial", rows=2, cols=2,
                                                   pe_config=BitSerialConfig(lanes=2, max_w_bits=4)))
    with pytest.raises(ValueError, match=r"pe_fields=\{\}; this PE takes \['w_bits'\]"):
        GemmCommand(a_pitch=1, b_pitch=1).pack(serial)


def test_cycles_are_the_arrays_plus_four():
    """ws, R=3, C=2, M=4, K=5, N=3: F = 2 K folds x 2 column blocks, P = max(M, R) = 4:
    (R + (F-1)·P + M - 1 + R + C) + 1 = 24 array cycles, + 4."""
    array = SystolicConfig(pe="mac", rows=3, cols=2, pe_config=MacConfig())
    cfg = GemmEngineConfig(array=array)
    assert cfg.cycles(GemmCommand(m=4, k=5, n=3)) == 28


def test_command_fields_are_integers():
    with pytest.raises(ValueError, match=r"GemmCommand.m=-1; must be an integer >= 0"):
        GemmCommand(m=-1)
    with pytest.raises(ValueError, match=r"GemmCommand.a_pitch=2.0; must be an integer >= 0"):
        GemmCommand(a_pitch=2.0)


def test_unpack_beyond_the_space_is_an_error():
    cfg = ScratchpadConfig(banks=2, word_elements=2, depth=2)
    with pytest.raises(ValueError, match=r"a 2x3 matrix at base=4 with pitch=3 ends at element 13, beyond 8"):
        cfg.unpack(cfg.blank(), 4, 3, 2, 3)


def test_scratchpad_sized_from_kib():
    cfg = ScratchpadConfig.sized(4, banks=4, word_elements=8, element_bits=8)  # 4 KiB / (4 x 64 bits)
    assert cfg.depth == 128 and cfg.kib == 4
    assert ScratchpadConfig.sized(1.5, banks=3, word_elements=1, element_bits=32).depth == 128
    with pytest.raises(ValueError, match=r"0.01 KiB holds 0 words per bank of 4 banks x 64 bits; need at least 2"):
        ScratchpadConfig.sized(0.01, banks=4, word_elements=8, element_bits=8)
