"""The DMA's Python side: parameter and command checks, the burst plan and the cycle model on
cases worked out by hand from the rules in ``peforge.hw.tile.dma``'s docstrings."""

from __future__ import annotations

import pytest

from peforge.hw.tile.axi import Axi4LiteSignature, Axi4Signature, AxiLiteRegisters, Register
from peforge.hw.tile.dma import DmaCommand, DmaConfig, MemoryModel

CONFIG = DmaConfig(bus_bytes=8, max_burst=4, outstanding=3)
FAST = MemoryModel(read_latency=2, write_latency=2, period=1)


def _load(**fields) -> DmaCommand:
    return DmaCommand(**{"dir": "load", "spad_addr": 0, "rows": 1, **fields})


@pytest.mark.parametrize("fields, message", [
    ({"bus_bytes": 3}, "bus_bytes 3: a power of two"),
    ({"max_burst": 0}, "max_burst 0: choose 1 to 256"),
    ({"bus_bytes": 32, "max_burst": 256}, "max_burst 256: a burst of that many beats exceeds 4 KiB"),
    ({"outstanding": 0}, "outstanding 0"),
    ({"elem_bits": 12}, "elem_bits 12"),
    ({"bus_bytes": 2, "elem_bits": 32}, "elem_bits 32"),
    ({"addr_bits": 8}, "addr_bits 8"),
])
def test_config_rejects(fields, message):
    with pytest.raises(ValueError, match=message):
        DmaConfig(**fields)


@pytest.mark.parametrize("fields, message", [
    ({"dir": "copy"}, "dir 'copy'"),
    ({"rows": 0}, "rows 0"),
    ({"row_bytes": 0}, "row_bytes 0"),
    ({"dram_addr": -1}, "dram_addr -1"),
    ({"dir": "store", "slice_mask": 3}, "slice_mask 3: a store reads exactly one slice"),
])
def test_command_rejects(fields, message):
    with pytest.raises(ValueError, match=message):
        DmaCommand(**{"dir": "load", "dram_addr": 0, "spad_addr": 0, "rows": 1, "row_bytes": 4, **fields})


def test_command_must_fit_the_engine():
    with pytest.raises(ValueError, match="row_bytes 65536"):
        CONFIG.check(_load(dram_addr=0, row_bytes=65536))
    with pytest.raises(ValueError, match="dram_addr 2: a multiple of the 4-byte element"):
        DmaConfig(elem_bits=32).check(_load(dram_addr=2, row_bytes=8))
    with pytest.raises(ValueError, match="slice_mask 2"):
        CONFIG.check(_load(dram_addr=0, row_bytes=8, slice_mask=2))
    with pytest.raises(ValueError, match="spad_addr 65530"):
        CONFIG.check(_load(dram_addr=0, spad_addr=65530, row_bytes=8))


def test_pack_matches_the_layout():
    cmd = DmaCommand(dir="store", dram_addr=0x12345, spad_addr=77, rows=3, row_bytes=40, dram_stride=4096,
                     spad_stride=41)
    const = CONFIG.command_layout.const({"dir": 1, "dram_addr": 0x12345, "spad_addr": 77, "rows": 3, "row_bytes": 40,
                                         "dram_stride": 4096, "spad_stride": 41, "slice_mask": 1})
    assert cmd.pack(CONFIG) == const.as_value().value


def test_bursts_split_at_4k_and_max_burst():
    # bytes 4090..4109: the word at 4088 alone up to the boundary, then 4096..4111 (2 beats)
    assert CONFIG.bursts(_load(dram_addr=4090, row_bytes=20)) == [(4088, 1), (4096, 2)]
    # 100 bytes from 0: 13 beats in bursts of at most 4
    assert CONFIG.bursts(_load(dram_addr=0, row_bytes=100)) == [(0, 4), (32, 4), (64, 4), (96, 1)]
    # two one-byte rows in the same word: one burst each
    assert CONFIG.bursts(_load(dram_addr=5, rows=2, row_bytes=1, dram_stride=1)) == [(0, 1), (0, 1)]


def test_cycles_worked_by_hand():
    # one beat: AR in cycle 1, R in 1 + 2 = 3, ready in 4
    assert CONFIG.cycles(_load(dram_addr=0, row_bytes=1), FAST) == 4
    # 13 beats, 3 bursts in flight: the stream runs from cycle 3 to 15 without a gap, ready in 16
    assert CONFIG.cycles(_load(dram_addr=0, row_bytes=100), FAST) == 16
    # one burst in flight, latency 10: beats 11..14, the second AR only at 15, beats 25..28
    one = DmaConfig(bus_bytes=8, max_burst=4, outstanding=1)
    assert one.cycles(_load(dram_addr=0, row_bytes=64), MemoryModel(read_latency=10, period=1)) == 29
    # a beat every 3 cycles: first slot at or after 1 + 2 is 3, then 6, 9, 12, ready in 13
    assert CONFIG.cycles(_load(dram_addr=0, row_bytes=32), MemoryModel(read_latency=2, period=3)) == 13
    # store, one beat: AW 1, scratchpad read 1, W 3 (read + 2), B 3 + 2 = 5, ready 6
    store = DmaCommand(dir="store", dram_addr=0, spad_addr=0, rows=1, row_bytes=8)
    assert CONFIG.cycles(store, FAST) == 6
    # store, two beats: W in 3 and 4, B in 6, ready 7
    assert CONFIG.cycles(DmaCommand(dir="store", dram_addr=0, spad_addr=0, rows=1, row_bytes=16), FAST) == 7
    # store, one burst in flight, response after 5: W 3..6, B 11; the second AW in 12, W 13..16, B 21
    store_64 = DmaCommand(dir="store", dram_addr=0, spad_addr=0, rows=1, row_bytes=64)
    assert one.cycles(store_64, MemoryModel(write_latency=5, period=1)) == 22


def test_memory_model_rejects():
    with pytest.raises(ValueError, match="period 0"):
        MemoryModel(period=0)


def test_axi_signatures_and_registers_reject():
    with pytest.raises(ValueError, match="data_bytes 3"):
        Axi4Signature(addr_bits=32, data_bytes=3)
    with pytest.raises(ValueError, match="data_bytes 2: AXI4-Lite is 4 or 8 bytes wide"):
        Axi4LiteSignature(addr_bits=8, data_bytes=2)
    with pytest.raises(ValueError, match="register kind 'wo'"):
        Register(name="x", kind="wo")
    with pytest.raises(ValueError, match="distinct names"):
        AxiLiteRegisters([Register(name="a"), Register(name="a")])
    with pytest.raises(ValueError, match="addr_bits 2"):
        AxiLiteRegisters([Register(name="a"), Register(name="b")], addr_bits=2)


def test_stream_cycles_is_the_burst_rule():
    """The closed form of a stream of like bursts (what ``DmaConfig.cycles`` and the cost model
    call) is the burst-by-burst rule, loads and stores, bandwidth- and latency-bound, every
    outstanding limit and data period."""
    import itertools

    from peforge.hw.tile.dma import stream_cycles

    checked = 0
    for max_burst, outstanding in itertools.product((1, 4, 16), (1, 2, 4)):
        config = DmaConfig(bus_bytes=4, max_burst=max_burst, outstanding=outstanding)
        for read, write, period in itertools.product((1, 8, 20), (1, 5), (1, 3)):
            memory = MemoryModel(read_latency=read, write_latency=write, period=period)
            for direction, rows, beats in itertools.product(("load", "store"), (1, 3, 16), (1, 3, 16, 48)):
                cmd = DmaCommand(dir=direction, dram_addr=0, spad_addr=0, rows=rows, row_bytes=4 * beats,
                                 dram_stride=4 * beats if rows > 1 else 0, spad_stride=4 * beats if rows > 1 else 0)
                bursts = config.bursts(cmd)
                if len({n for _, n in bursts}) > 1:
                    continue
                checked += 1
                assert stream_cycles(direction == "load", len(bursts), bursts[0][1], outstanding, read, write,
                                     period) == config.burst_cycles(cmd, memory), (cmd, memory, config)
    assert checked > 500
