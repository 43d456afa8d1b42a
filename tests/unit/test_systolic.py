"""SystolicConfig: validation, nested PE parameters, and the cycles formula against hand-derived counts."""

import pytest

from peforge.hw import params
from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.systolic import SystolicConfig


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows=65), r"SystolicConfig\.rows=65 is out of range; allowed 1\.\.64"),
    (dict(cols=0), r"SystolicConfig\.cols=0 is out of range; allowed 1\.\.64"),
    (dict(pe="fpu"), r"SystolicConfig\.pe='fpu' is not allowed; choose one of mac \| bitserial \| mixed"),
    (dict(dataflow="is"), r"SystolicConfig\.dataflow='is' is not allowed; choose one of ws \| os"),
    (dict(pe="mixed", pe_config=MacConfig()), r"SystolicConfig\.pe_config must be a MixedConfig for pe='mixed'"),
    (dict(pe="bitserial", pe_config=BitSerialConfig(rescale=True)), r"pe\.rescale=True is not supported"),
    (dict(pe="bitserial", pe_config=BitSerialConfig(lut_entries=4)), r"pe\.lut_entries=4 is not supported"),
    (dict(pe_config=MacConfig(output_register=True)), r"pe\.output_register=True needs dataflow=os"),
    (dict(pe="mixed", rows=4, pe_config=MixedConfig(lanes=16, group=32)),
     r"pe\.group=32 must be a multiple of rows x pe\.lanes = 64 with dataflow=ws"),
])
def test_bad_config_one_line_names_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SystolicConfig(**kwargs)


def test_valid_combinations():
    SystolicConfig(pe="mixed", dataflow="os", rows=4, pe_config=MixedConfig(lanes=16, group=32))
    SystolicConfig(pe="mac", dataflow="os", pe_config=MacConfig(output_register=True))
    assert SystolicConfig().pe_config == MacConfig()
    assert SystolicConfig(pe="bitserial").pe_config == BitSerialConfig()


def test_nested_parameters_from_the_command_line():
    cfg = params.from_assignments(SystolicConfig, ["pe=bitserial", "pe.lanes=2", "pe.k=4", "rows=3"])
    assert cfg == SystolicConfig(pe="bitserial", rows=3, pe_config=BitSerialConfig(lanes=2, k=4))
    assert params.from_assignments(SystolicConfig, ["pe.w_bits=4"]).pe_config == MacConfig(w_bits=4)
    with pytest.raises(ValueError, match=r"unknown parameter 'pe\.lanes' for pe=mac; known: pe\.a_bits"):
        params.from_assignments(SystolicConfig, ["pe.lanes=2"])
    with pytest.raises(ValueError, match=r"MixedConfig\.w_bits=8 is not allowed"):
        params.from_assignments(SystolicConfig, ["pe=mixed", "pe.w_bits=8"])
    with pytest.raises(ValueError, match=r"unknown parameter 'foo\.x'"):
        params.from_assignments(SystolicConfig, ["foo.x=1"])


def test_nested_round_trip_hash_and_listing():
    cfg = SystolicConfig(pe="mixed", dataflow="os", pe_config=MixedConfig(lanes=4, group=8))
    values = params.as_dict(cfg)
    assert values["pe_config"]["lanes"] == 4
    assert SystolicConfig(**values) == cfg
    other = SystolicConfig(pe="mixed", dataflow="os", pe_config=MixedConfig(lanes=4, group=16))
    assert params.config_hash(cfg) != params.config_hash(other)
    rows = {r["name"]: r for r in params.describe(SystolicConfig)}
    allowed = rows["pe"]["allowed"].split(" | ")
    assert allowed[:3] == ["mac", "bitserial", "mixed"] and {"fpmac", "fpbitserial", "fpmixed"} <= set(allowed)
    listed = params.describe(SystolicConfig)
    lanes = [r["doc"] for r in listed if r["name"] == "pe.lanes"]
    assert any(doc.startswith("[pe=bitserial]") for doc in lanes) and any(doc.startswith("[pe=mixed]") for doc in lanes)
    a_bits = {r["doc"].split("]")[0]: r["default"] for r in listed if r["name"] == "pe.a_bits"}
    assert a_bits["[pe=mac"] == a_bits["[pe=bitserial"] == "8" and a_bits["[pe=fpbitserial"] == "16"


# Hand-derived from the docstring formulas (T: cycles per beat, P: beats per fold, F: folds).
@pytest.mark.parametrize("kwargs, shape, w_bits, expected", [
    # ws: (R + (F-1)P + M - 1 + R + C + e) T + 1
    (dict(), (5, 4, 4), None, (4 + 0 + 4 + 4 + 4) + 1),  # one fold, P = 5
    (dict(), (2, 9, 5), None, (4 + 5 * 4 + 1 + 4 + 4) + 1),  # F = 3 x 2, P = max(2, 4)
    (dict(rows=2, cols=3, pe="bitserial", pe_config=BitSerialConfig(lanes=2, k=2)), (3, 5, 3), 5,
     (2 + 3 + 2 + 2 + 3) * 3 + 1),  # F = 2, P = 3, T = ceil(5/2)
    (dict(rows=2, cols=2, pe="mixed", pe_config=MixedConfig(lanes=2, group=8)), (1, 1, 1), None,
     (2 + 0 + 0 + 2 + 2 + 1) + 1),  # e = 1
    # os: ((F-1)P + Kb + r + C - 3) T + 2 + L_pe
    (dict(dataflow="os"), (4, 10, 4), None, (10 + 4 + 4 - 3) + 2 + 1),  # P = 10
    (dict(dataflow="os"), (6, 2, 5), None, (3 * 4 + 2 + 2 + 4 - 3) + 2 + 1),  # F = 2 x 2, P = max(2, 4, 3), r = 2
    (dict(dataflow="os", rows=3, cols=2, pe="bitserial", pe_config=BitSerialConfig(lanes=2, k=2)), (3, 3, 2), 4,
     (2 + 3 + 2 - 3) * 2 + 2 + (2 + 2)),  # T = 2, L_pe = T + 2
    (dict(dataflow="os", rows=2, cols=2, pe="mixed", pe_config=MixedConfig(lanes=1, group=1)), (1, 1, 1), None,
     (1 + 1 + 2 - 3) + 2 + 3),
    (dict(dataflow="os", rows=2, cols=7, pe_config=MacConfig(output_register=True)), (2, 1, 7), None,
     (1 + 2 + 7 - 3) + 2 + 2),
])
def test_cycles_hand_derived(kwargs, shape, w_bits, expected):
    assert SystolicConfig(**kwargs).cycles(*shape, w_bits=w_bits) == expected


# Counted by hand on the RTL's registers for a 1 x 1 array and M = K = N = 1. A beat lasts T
# cycles and the array takes an input beat in its last cycle (cycle 0 is the first one); every
# systolic hop is one register loaded at the end of a beat.
# ws: beat 0 (cycle 0) preloads the weight, beat 1 (cycle T) carries the activation; one left
#     hop later the cell works on it for a beat and its partial-sum register loads at cycle 2T;
#     the edge stages (e beats: the mixed PE's dequantization) follow, the bottom edge adds into
#     the accumulator and emits at the end of the next beat (3 + e)·T, the output register one
#     cycle later: cycle = (3 + e)·T + 1.
# os: beat 0 (cycle 0) reaches the cell after one hop, at cycle 1, where the PE takes it and has
#     its result L_pe cycles later (mac: 1, 2 with output_register; mixed: 3 pipeline stages;
#     bit-serial: T serial cycles + accumulate + output register), and the array's output
#     register adds one: cycle = 1 + L_pe + 1.
TINY = dict(rows=1, cols=1, max_m=4, max_k=8, max_n=4)


@pytest.mark.parametrize("kwargs, w_bits, expected", [
    (dict(pe="mac", dataflow="ws"), None, 3 + 1),
    (dict(pe="mac", dataflow="os"), None, 1 + 1 + 1),
    (dict(pe="mac", dataflow="os", pe_config=MacConfig(output_register=True)), None, 1 + 2 + 1),
    (dict(pe="bitserial", dataflow="ws", pe_config=BitSerialConfig(lanes=1, k=2, max_w_bits=4)), 3, 3 * 2 + 1),
    (dict(pe="bitserial", dataflow="os", pe_config=BitSerialConfig(lanes=1, k=2, max_w_bits=4)), 4, 1 + (2 + 2) + 1),
    # w_bits = 0 runs as max_w_bits = 4: T = 4 with k = 1
    (dict(pe="bitserial", dataflow="os", pe_config=BitSerialConfig(lanes=1, k=1, max_w_bits=4)), 0, 1 + (4 + 2) + 1),
    (dict(pe="bitserial", dataflow="ws", pe_config=BitSerialConfig(lanes=1, k=1, max_w_bits=4)), 0, 3 * 4 + 1),
    (dict(pe="mixed", dataflow="ws", pe_config=MixedConfig(lanes=1, group=1)), None, 4 + 1),
    (dict(pe="mixed", dataflow="os", pe_config=MixedConfig(lanes=1, group=1)), None, 1 + 3 + 1),
])
def test_cycles_counted_by_hand_one_cell(kwargs, w_bits, expected):
    cfg = SystolicConfig(**TINY, **kwargs)
    assert cfg.cycles(1, 1, 1, w_bits=w_bits) == expected
    assert [o.cycle for o in cfg.outputs(1, 1, 1, w_bits=w_bits)] == [expected]


def test_period_figures_and_utilization():
    ws = SystolicConfig(rows=4, cols=4, max_m=4096)
    assert ws.fold_beats(3, 8, 8) == 4 and ws.fold_beats(100, 8, 8) == 100
    assert ws.peak_macs_per_cycle() == 16
    assert ws.utilization(4000, 64, 64) > 0.99  # long streams amortize fill and drain
    os_ = SystolicConfig(rows=4, cols=8, dataflow="os")
    assert os_.fold_beats(4, 2, 8) == 7  # C - 1 bounds the period
    bs = SystolicConfig(pe="bitserial", pe_config=BitSerialConfig(lanes=4, k=2, max_w_bits=8))
    assert bs.beat_cycles(3) == 2 and bs.beat_cycles(None) == 4 and bs.peak_macs_per_cycle(4) == 32
    # Outputs come in order and the last one is cycles().
    outs = ws.outputs(6, 9, 5)
    assert [o.cycle for o in outs] == sorted(o.cycle for o in outs) and outs[-1].cycle == ws.cycles(6, 9, 5)
    with pytest.raises(ValueError, match=r"GEMM M=0 is out of range; allowed 1\.\.4096"):
        ws.cycles(0, 1, 1)


def test_plan_covers_every_product_once():
    for dataflow in ("ws", "os"):
        cfg = SystolicConfig(dataflow=dataflow, rows=3, cols=2, pe="mixed", pe_config=MixedConfig(lanes=2, group=6))
        M, K, N = 5, 7, 3
        plan = cfg.plan(M, K, N)
        assert [b.beat for b in plan] == sorted(b.beat for b in plan)
        seen_a = {(int(r), int(c)) for b in plan if b.a for r, c in zip(b.a[0].ravel(), b.a[1].ravel())
                  if r < M and c < K}
        seen_w = {(int(r), int(c)) for b in plan if b.w for r, c in zip(b.w[0].ravel(), b.w[1].ravel())
                  if r < K and c < N}
        assert seen_a == {(m, k) for m in range(M) for k in range(K)}
        assert seen_w == {(k, n) for k in range(K) for n in range(N)}
