"""PimBank / PimChannel: config checks, golden GEMV and layout, command-level model, and the
closed-form cycles() against the model's in-order schedule of the GEMV program."""

import numpy as np
import pytest

from peforge.hw.golden import PimModel, pim_gemv, pim_layout, pim_schedule
from peforge.hw.pim import PimBankConfig, PimChannelConfig, PimOp, gemv_program


def _scheduled_cycles(cfg, out_rows, in_cols):
    program = gemv_program(cfg, list(range(in_cols)), out_rows)
    commands = [{**c.fields(cfg.lanes), "op": c.op.name} for c in program.commands]
    cycles = pim_schedule(PimModel.of(cfg), commands)
    last = max(c for c, cmd in zip(cycles, program.commands) if cmd.op == PimOp.RDACC)
    return last + 1 - cycles[0]


def test_cycles_formula_equals_command_model_schedule():
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 250:
        lanes = int(rng.choice([1, 2, 4, 8]))
        kw = dict(rows=int(rng.integers(2, 40)), cols=lanes * int(rng.integers(1, 5)), lanes=lanes,
                  dual_row_buffer=bool(rng.integers(2)), t_rcd=int(rng.integers(1, 8)),
                  t_rp=int(rng.integers(1, 8)), t_ras=int(rng.integers(1, 20)), t_ccd=int(rng.integers(1, 4)))
        banks = int(rng.integers(0, 5))
        cfg = PimChannelConfig(banks=banks, **kw) if banks else PimBankConfig(**kw)
        cap = cfg.rows * max(banks, 1)
        out_rows, in_cols = int(rng.integers(1, cap + 1)), int(rng.integers(1, 4 * cfg.cols + 1))
        if not cfg.gemv_fits(out_rows, in_cols, max(banks, 1)):
            continue
        assert cfg.cycles(out_rows, in_cols) == _scheduled_cycles(cfg, out_rows, in_cols), (cfg, out_rows, in_cols)
        checked += 1


def test_cycles_by_hand():
    cfg = PimBankConfig(rows=8, cols=8, lanes=4, t_rcd=3, t_rp=2, t_ras=6, t_ccd=2)
    # 2 LDX, 3 rows of P = max(3 + 2 + 1, 6) = 6 with t_rp = 2 between them, RDACC, its output.
    assert cfg.cycles(3, 8) == 2 + 3 * 6 + 2 * 2 + 1 + 1
    hbm2 = PimBankConfig()  # tRCD = tRP = 14, tRAS = 34: a 2-burst row is tRAS-bound
    assert hbm2.cycles(64, 32) == 2 + 64 * 34 + 60 * 14 + 3 * 14 + 2
    assert PimChannelConfig(banks=4).cycles(64, 32) == 2 + 16 * 34 + 15 * 14 + 4 + 1


def test_all_bank_mode_divides_row_cycles_by_banks():
    bank = PimBankConfig(rows=256)
    for banks in (2, 4, 8, 16):
        channel = PimChannelConfig(rows=256, banks=banks)
        assert bank.cycles(256, 32) / channel.cycles(256, 32) == pytest.approx(banks, rel=0.06)


def test_cycles_rejects_gemv_larger_than_bank():
    with pytest.raises(ValueError, match="does not fit"):
        PimBankConfig(rows=8, cols=8, lanes=4).cycles(5, 17)  # 5 rows x 3 segments > 8 rows


@pytest.mark.parametrize("kwargs, message", [
    (dict(cols=24, lanes=16), "PimBankConfig.cols=24 must be a multiple of lanes=16"),
    (dict(lanes=3), "PimBankConfig.lanes=3 is not allowed"),
    (dict(t_ccd=9, t_rcd=3, t_rp=4), "PimBankConfig.t_ccd=9 must not exceed t_rcd + t_rp + 1 = 8"),
    (dict(t_ras=0), "PimBankConfig.t_ras=0 is out of range; allowed 1..128"),
])
def test_bad_config_names_field_and_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        PimBankConfig(**kwargs)


def test_channel_config_carries_bank_parameters():
    channel = PimChannelConfig(banks=3, rows=16, t_rp=5, dual_row_buffer=True)
    assert channel.bank == PimBankConfig(rows=16, t_rp=5, dual_row_buffer=True)
    assert not isinstance(channel, PimBankConfig)  # block_of must tell them apart


def test_accumulator_holds_whole_bank_worst_case():
    cfg = PimBankConfig(rows=64, cols=32, word_bits=16)
    worst = 64 * 32 * (1 << 15) ** 2
    assert worst <= (1 << cfg.acc_bits - 1) - 1


def test_layout_places_rows_segments_and_banks():
    W = np.arange(1, 3 * 5 + 1).reshape(3, 5)
    image = pim_layout(W, cols=2, banks=2)  # 3 segments, 2 W rows per bank
    assert image.shape == (2, 6, 2)
    assert image[0, 0].tolist() == [1, 2] and image[0, 2].tolist() == [5, 0]
    assert image[0, 3].tolist() == [6, 7]
    assert image[1, 0].tolist() == [11, 12] and image[1, 3:].tolist() == [[0, 0]] * 3


def test_gemv_wraps_at_accumulator_width():
    assert pim_gemv([[-128, -128]], [-128, -128], 16) == [-32768]
    assert pim_gemv([[-128, -128]], [-128, -128], 17) == [32768]
    rng = np.random.default_rng(1)
    W, x = rng.integers(-1000, 1000, (7, 9)), rng.integers(-1000, 1000, 9)
    assert pim_gemv(W, x, 64) == (W @ x).tolist()


def test_program_gathers_gemv_through_model():
    cfg = PimChannelConfig(banks=3, rows=12, cols=8, lanes=4, word_bits=8, t_rcd=2, t_rp=2, t_ras=3, t_ccd=1)
    rng = np.random.default_rng(2)
    W, x = rng.integers(-128, 128, (10, 19)), rng.integers(-128, 128, 19)
    model = PimModel.of(cfg)
    model.array[:, :4 * 3] = pim_layout(W, cols=8, banks=3)
    program = gemv_program(cfg, x, 10)
    cycle, outputs = 0, []
    for cmd in program.commands:
        reason, _, out = model.command(cycle, cmd.op.name, **{k: v for k, v in vars(cmd).items() if k != "op"})
        cycle += 100  # far apart: no timing errors
        assert reason is None
        if out:
            outputs.append(out[1])
    assert program.gather(outputs, 10) == pim_gemv(W, x, cfg.acc_bits)


def test_model_rejects_illegal_commands_without_effect():
    m = PimModel.of(PimBankConfig(rows=4, cols=4, lanes=2, t_rcd=3, t_rp=4, t_ras=5, t_ccd=2, dual_row_buffer=True))
    assert m.command(0, "RD", col=0) == ("CLOSED", 1, None)  # reason, rejecting banks, output
    assert m.command(1, "ACT", row=2) == (None, 0, None)
    assert m.command(2, "WR", col=0, data=(5, 6))[0] == "T_RCD"
    assert m.command(3, "ACT", buf=1, row=2)[0] == "CONFLICT"
    assert m.command(4, "WR", col=0, data=(5, 6))[0] is None
    assert m.command(5, "RD", col=0)[0] == "T_CCD"
    assert m.command(5, "PRE")[0] == "T_RAS"
    assert m.command(6, "RD", col=0) == (None, 0, ("o", [5, 6]))
    assert m.command(7, "PRE")[0] is None
    assert m.command(8, "ACT", row=1)[0] == "T_RP"
    assert m.command(9, "ACT", buf=2, row=1)[0] == "RANGE"
    assert m.command(11, "ACT", row=1)[0] is None
