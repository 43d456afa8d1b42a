"""PimBank / PimChannel: config checks, golden GEMV and layout, command-level model, and the
closed-form cycles() against the model's in-order schedule of the GEMV program."""

import dataclasses
import time

import numpy as np
import pytest

from peforge.hw.golden import PimModel, pim_gemv, pim_layout, pim_schedule
from peforge.hw.params import as_dict, config_hash, describe, param
from peforge.hw.pim import PimBankConfig, PimChannelConfig, PimOp, PimParams, gemv_cycles, gemv_program


def _scheduled_cycles(cfg, out_rows, in_cols, pack=1):
    program = gemv_program(cfg, list(range(in_cols)), out_rows, pack)
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


def test_packed_cycles_and_values_equal_command_model():
    """Packed rows: the formula against the model's schedule, and y through the model, on random
    banks and channels (packs up to lanes, partial last rows, several groups)."""
    rng = np.random.default_rng(1)
    checked = 0
    while checked < 80:
        lanes = int(rng.choice([2, 4, 8]))
        t_rcd, t_rp = int(rng.integers(1, 6)), int(rng.integers(1, 8))
        kw = dict(rows=64, cols=lanes * int(rng.integers(2, 9)), lanes=lanes, word_bits=8,
                  dual_row_buffer=bool(rng.integers(2)), t_rcd=t_rcd, t_rp=t_rp, t_ras=int(rng.integers(1, 15)),
                  t_ccd=int(rng.integers(1, 4)))
        banks = int(rng.integers(0, 4))
        cfg = PimChannelConfig(banks=banks, **kw) if banks else PimBankConfig(**kw)
        in_cols = int(rng.integers(1, cfg.cols // 2 + 1))
        if cfg.max_pack(in_cols) < 2:
            continue
        pack = int(rng.integers(2, cfg.max_pack(in_cols) + 1))
        out_rows = int(rng.integers(1, 40))
        assert cfg.cycles(out_rows, in_cols, pack) == _scheduled_cycles(cfg, out_rows, in_cols, pack), \
            (cfg, out_rows, in_cols, pack)
        W, x = rng.integers(-128, 128, (out_rows, in_cols)), rng.integers(-128, 128, in_cols)
        model = PimModel.of(cfg)
        image = pim_layout(W, cols=cfg.cols, banks=max(banks, 1), pack=pack, lanes=lanes)
        assert image.shape[1] == cfg.dram_rows(out_rows, in_cols, max(banks, 1), pack)
        model.array[:, :image.shape[1]] = image
        program = gemv_program(cfg, list(x), out_rows, pack)
        commands = [{**c.fields(cfg.lanes), "op": c.op.name} for c in program.commands]
        outputs, cycle = [], 0
        for cmd in commands:  # issue in order, each when its timing allows
            fields = {k: v for k, v in cmd.items() if k not in ("bank", "all_banks")}
            targets = range(model.banks) if cmd["all_banks"] and model.channel else [cmd["bank"]]
            while any((model.check(k, cycle, **fields) or "").startswith("T_") for k in targets):
                cycle += 1
            reason, _, out = model.command(cycle, **cmd)
            assert reason is None, (cmd, reason)
            if out is not None and out[0] == "y":
                outputs.append(out[1])
            cycle += 1
        assert program.gather(outputs, out_rows) == pim_gemv(W, x, cfg.acc_bits)
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
    (dict(lanes=3), "PimBankConfig.lanes=3 is not allowed; choose one of 1 | 2 | 4 | 8 | 16 | 32 | 64"),
    (dict(lanes=128, cols=128), "PimBankConfig.lanes=128 is not allowed"),
    (dict(t_ccd=9, t_rcd=3, t_rp=4), "PimBankConfig.t_ccd=9 must not exceed t_rcd + t_rp + 1 = 8"),
    (dict(t_ras=0), "PimBankConfig.t_ras=0 is out of range; allowed 1..255"),
    (dict(t_rcd=256), "PimBankConfig.t_rcd=256 is out of range; allowed 1..255"),
    (dict(t_ccd=65, t_rcd=100), "PimBankConfig.t_ccd=65 is out of range; allowed 1..64"),
    (dict(rows=65537), "PimBankConfig.rows=65537 is out of range; allowed 2..65536"),
    (dict(cols=65536 + 16), "PimBankConfig.cols=65552 is out of range; allowed 1..65536"),
])
def test_bad_config_names_field_and_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+").replace("|", r"\|")):
        PimBankConfig(**kwargs)


def test_channel_banks_range():
    assert PimChannelConfig(banks=64).banks == 64
    with pytest.raises(ValueError, match="PimChannelConfig.banks=65 is out of range; allowed 1..64"):
        PimChannelConfig(banks=65)


def test_real_dram_sizes_build_instantly_without_elaboration():
    """An HBM3-sized channel (32 banks of 32768 rows x 1 KB) and the largest allowed one are
    plain configs: building, hashing and pricing a GEMV elaborate nothing."""
    start = time.perf_counter()
    hbm3 = PimChannelConfig(banks=32, rows=32768, cols=512, lanes=16, t_rcd=14, t_rp=14, t_ras=34, t_ccd=2)
    top = PimChannelConfig(banks=64, rows=65536, cols=65536, lanes=64, word_bits=32,
                           t_rcd=255, t_rp=255, t_ras=255, t_ccd=64)
    for cfg in (hbm3, top):
        config_hash(cfg), cfg.bank, cfg.acc_bits
        assert cfg.gemv_fits(4096, 4096, cfg.banks)
    # 128 W rows per bank = 8 groups of 16; 8 segments of 32 bursts; tRAS-bound rows need
    # max(14 + 31 * 2 + 1, 34) = 77 cycles each.
    cycles = hbm3.cycles(4096, 4096)
    assert cycles == (32 + 128 * 8 * 77 + (128 - 8) * 8 * 14 + 8 * 7 * max(33, 14)
                      + 7 * max(1 + 32 + 32, 14) + 33)
    assert time.perf_counter() - start < 0.5


def test_gemv_cycles_broadcasts_design_columns_against_shapes():
    """The cost model's call: (designs, 1, 1) parameter columns and (steps, rows) shapes give
    (designs, steps, rows) float64 cycles, each equal to the block's own cycles()."""
    designs = [dict(banks=1, lanes=4, cols=16, t_rcd=3, t_rp=4, t_ras=7, t_ccd=2),
               dict(banks=4, lanes=16, cols=64, t_rcd=14, t_rp=14, t_ras=34, t_ccd=2),
               dict(banks=16, lanes=2, cols=2, t_rcd=1, t_rp=9, t_ras=1, t_ccd=1)]
    column = {k: np.array([d[k] for d in designs], dtype=np.float64)[:, None, None] for k in designs[0]}
    out_rows = np.array([[1, 7, 64], [33, 2, 17]], dtype=np.float64)
    in_cols = np.array([[1, 100, 16], [5, 64, 129]], dtype=np.float64)
    cycles = gemv_cycles(out_rows=out_rows, in_cols=in_cols, **column)
    assert cycles.shape == (3, 2, 3) and cycles.dtype == np.float64
    for d, kw in enumerate(designs):
        block = PimChannelConfig(rows=512, **kw)
        for (i, j), m in np.ndenumerate(out_rows):
            assert cycles[d, i, j] == block.cycles(int(m), int(in_cols[i, j]))


def test_gemv_cycles_does_not_need_the_rows_limit():
    """Shapes larger than any bank still get the schedule's count (the cost model prices KV
    caches longer than one bank); only the block's cycles() refuses them."""
    cfg = PimChannelConfig(rows=4, cols=8, lanes=4, banks=2, t_rcd=3, t_rp=2, t_ras=6, t_ccd=2)
    big = PimChannelConfig(rows=4096, cols=8, lanes=4, banks=2, t_rcd=3, t_rp=2, t_ras=6, t_ccd=2)
    params = dict(banks=2, lanes=4, cols=8, t_rcd=3, t_rp=2, t_ras=6, t_ccd=2)
    assert gemv_cycles(out_rows=1000, in_cols=50, **params) == big.cycles(1000, 50)
    with pytest.raises(ValueError, match="does not fit"):
        cfg.cycles(1000, 50)


# Hand-counted schedules. H = 1 bank, lanes = 1 (so one accumulator), cols = 2 words (2 bursts),
# t_rcd = 2, t_rp = 3, t_ras = 4, t_ccd = 2. Each command issues in the first cycle its timing
# allows, after the one before it; the count runs from the first command to the cycle after the
# last RDACC (its output on y).
H = dict(cols=2, lanes=1, t_rcd=2, t_rp=3, t_ras=4, t_ccd=2)


def test_cycles_hand_counted_schedules():
    bank = PimBankConfig(rows=8, **H)
    # 1x1: LDX@0, ACT@1, MAC@3 (tRCD), PRE@5 (tRAS: 1 + 4), RDACC@6, y@7.
    assert bank.cycles(1, 1) == 7
    # 2x1: two groups of one row (one accumulator). LDX@0, ACT@1, MAC@3, PRE@5, RDACC@6;
    # x stays loaded (one segment): ACT@8 (tRP: 5 + 3), MAC@10, PRE@12, RDACC@13, y@14.
    assert bank.cycles(2, 1) == 14
    # 1x3: segments of 2 and 1 bursts. LDX@0, LDX@1, ACT@2, MAC@4, MAC@6 (tCCD), PRE@7
    # (after the MAC; tRAS allows 6); LDX@8, ACT@10 (tRP: 7 + 3), MAC@12, PRE@14 (tRAS),
    # RDACC@15, y@16.
    assert bank.cycles(1, 3) == 16
    # 2x3: rows 0, 1 hold W row 0, rows 2, 3 W row 1. As 1x3 up to PRE@14, RDACC@15; then
    # the x reload: LDX@16, LDX@17, ACT@18 (tRP allows 17), MAC@20, MAC@22, PRE@23; LDX@24,
    # ACT@26 (tRP: 23 + 3), MAC@28, PRE@30, RDACC@31, y@32.
    assert bank.cycles(2, 3) == 32
    # lanes = 2, cols = 2 (1 burst), 2x1: one group of 2 rows. LDX@0, ACT@1, MAC@3, PRE@5,
    # ACT@8 (tRP), MAC@10, PRE@12, RDACC@13, y@14.
    assert PimBankConfig(rows=8, **{**H, "lanes": 2}).cycles(2, 1) == 14
    # 2 banks, 4x1: 2 rows per bank, 2 groups. LDX@0, ACT@1, MAC@3, PRE@5, RDACC bank 0 @6,
    # RDACC bank 1 @7, ACT@8 (tRP: 5 + 3), MAC@10, PRE@12, RDACC@13, RDACC@14, y@15.
    assert PimChannelConfig(banks=2, rows=8, **H).cycles(4, 1) == 15


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


# The cost model's PIM group extends the channel's parameters with keys of its own; this
# test-local class is that pattern, so the hw declaration's validation, listing, dict form
# and hash are checked to hold for it.
@dataclasses.dataclass(frozen=True, kw_only=True)
class _PimDesign(PimChannelConfig):
    mode: str = param("none", "how the NPU uses PIM", choices=("none", "blocked", "concurrent"))
    channels: int = param(32, "PIM channels", low=1, high=1024)
    clock_mhz: float = param(1000.0, "PIM command clock (MHz)", low=1.0, high=5000.0)
    # A new default for an inherited key keeps its declared range and doc.
    cols: int = dataclasses.field(default=1024, metadata=PimParams.__dataclass_fields__["cols"].metadata)


def test_subclass_adds_keys_and_keeps_the_bank_rules():
    design = _PimDesign(mode="blocked", banks=16, lanes=16, t_rcd=20)
    assert (design.cols, design.rows, design.channels, design.clock_mhz) == (1024, 64, 32, 1000.0)
    # the inherited checks run, and name the subclass
    for kwargs, message in [(dict(lanes=3), "_PimDesign.lanes=3 is not allowed"),
                            (dict(banks=65), "_PimDesign.banks=65 is out of range; allowed 1..64"),
                            (dict(cols=65537), "_PimDesign.cols=65537 is out of range; allowed 1..65536"),
                            (dict(cols=24, lanes=16), "_PimDesign.cols=24 must be a multiple of lanes=16"),
                            (dict(t_ccd=9, t_rcd=3, t_rp=4), r"_PimDesign.t_ccd=9 must not exceed t_rcd \+ t_rp"),
                            (dict(channels=0), "_PimDesign.channels=0 is out of range; allowed 1..1024"),
                            (dict(mode="always"), "_PimDesign.mode='always' is not allowed"),
                            (dict(clock_mhz=1000), "_PimDesign.clock_mhz must be float, not 1000")]:
        with pytest.raises(ValueError, match=message):
            _PimDesign(**kwargs)
    rows = {r["name"]: r for r in describe(_PimDesign)}
    assert list(rows)[:len(dataclasses.fields(PimChannelConfig))] == [f.name for f in dataclasses.fields(PimChannelConfig)]
    assert list(rows)[-3:] == ["mode", "channels", "clock_mhz"]
    assert rows["cols"]["default"] == "1024" and rows["cols"]["allowed"] == "1..65536"
    assert rows["lanes"]["allowed"] == "1 | 2 | 4 | 8 | 16 | 32 | 64" and rows["t_ras"]["allowed"] == "1..255"
    values = as_dict(design)
    assert values["mode"] == "blocked" and values["t_rcd"] == 20 and len(values) == len(rows)
    assert _PimDesign(**values) == design
    assert config_hash(design) != config_hash(dataclasses.replace(design, clock_mhz=300.0))
    assert config_hash(design) != config_hash(design.channel)
    # the block's config, the bank's and the formula carry over
    assert type(design.channel) is PimChannelConfig and as_dict(design.channel).items() <= values.items()
    assert design.bank == PimBankConfig(cols=1024, lanes=16, t_rcd=20)
    # one W row per bank of 64 bursts: LDX x 64, the row (20 + 63 * 2 + 1), 16 readouts + 1
    assert design.cycles(16, 1024) == design.channel.cycles(16, 1024) == 64 + 147 + 17
