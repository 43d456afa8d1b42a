"""The tile's macro-instructions in Python: word layout and encodings worked out by hand, round
trips, the program timeline on hand-timed programs, and the errors a bad program or slot raises."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from amaranth.hdl import signed
from amaranth.lib import data

from peforge.hw.tile.isa import (End, Issue, Nop, Slot, Wait, decode, encode, instruction_layout, pack_command,
                                 program_cycles, program_timeline, unpack_command)
from peforge.hw.tile.sequencer import SequencerConfig

A = Slot("a", data.StructLayout({"x": 4, "y": 4}))
B = Slot("b", data.StructLayout({"z": 3}))
C = Slot("c", data.StructLayout({"s": signed(4), "t": data.ArrayLayout(2, 3), "u": 1}))


def by_field(slot, command):
    return command["x"] if slot == "a" else command["z"]


def test_layout_width_follows_the_slots():
    # 3 slots: commands of 8, 3 and 11 bits -> arg 11, slot 2 bits, op 2 bits.
    assert [(name, f.offset, f.width) for name, f in instruction_layout([A, B, C])] == [
        ("arg", 0, 11), ("slot", 11, 2), ("op", 13, 2)]
    # One slot: no slot bits; the WAIT mask never sets the arg width below the slot count.
    assert instruction_layout([B]).size == 3 + 0 + 2
    many = [Slot(f"u{i}", data.StructLayout({"v": 1})) for i in range(5)]
    assert [f.width for _, f in instruction_layout(many)] == [5, 3, 2]


def test_words_by_hand():
    # slots a (8 bits), b (3 bits): arg 8 bits, slot bit 8, op bits 9-10.
    words = encode([Issue("a", {"x": 5, "y": 2}), Issue("b", {"z": 6}), Wait(("a", "b")), Wait("b"), Wait(()),
                    Nop(), End()], [A, B])
    assert words == [0x25 | 1 << 9, 6 | 1 << 8 | 1 << 9, 3 | 2 << 9, 2 | 2 << 9, 2 << 9, 3 << 9, 0]


def test_fields_left_out_are_zero_and_signed_fields_wrap():
    assert pack_command(A.layout, {"y": 3}) == 0x30
    bits = pack_command(C.layout, {"s": -3, "t": [1, 2, 3], "u": 1})
    assert bits == 0b1101 | (1 | 2 << 2 | 3 << 4) << 4 | 1 << 10
    assert unpack_command(C.layout, bits) == {"s": -3, "t": 1 | 2 << 2 | 3 << 4, "u": 1}
    assert pack_command(C.layout, {"t": 0b111111}) == 0b111111 << 4  # a nested layout given as its bits


@dataclass(frozen=True)
class Packed:
    value: int

    def pack(self) -> int:
        return self.value


def test_commands_given_packed_or_as_objects():
    assert encode([Issue("a", 0x37), Issue("a", Packed(0x37))], [A, B]) == [0x37 | 1 << 9] * 2
    with pytest.raises(ValueError, match="does not pack into 8 bits"):
        encode([Issue("a", 0x100)], [A, B])


def test_round_trips():
    rng = random.Random(0)
    slots = [A, B, C]
    for _ in range(200):
        program = []
        for _ in range(rng.randint(0, 12)):
            slot = rng.choice(slots)
            program.append(rng.choice([
                Issue(slot.name, {key: rng.randrange(1 << f.width) - (8 if key == "s" else 0) for key, f in slot.layout}),
                Wait(tuple(s.name for s in slots if rng.random() < 0.5)), Nop(), End()]))
        words = encode(program, slots)
        assert decode(words, slots) == program
        assert encode(decode(words, slots), slots) == words


@pytest.mark.parametrize("program, message", [
    ([Issue("q", {})], "unknown slot 'q'; known: a, b"),
    ([Wait(("a", "q"))], "unknown slot 'q'"),
    ([Issue("a", {"w": 1})], r"unknown command fields \['w'\]; known: x, y"),
    ([Issue("a", {"x": 16})], r"field x=16 is out of range; allowed 0..15"),
    ([Issue("a", {"x": -1})], r"field x=-1 is out of range"),
    (["END"], "not an instruction: 'END'"),
])
def test_encode_refuses(program, message):
    with pytest.raises(ValueError, match=message):
        encode(program, [A, B])


@pytest.mark.parametrize("word, message", [
    (1 << 11, "is not a 11-bit unsigned integer"),
    (-1, "is not a 11-bit"),
    (1 << 9 | 0x00 | 1 << 8, None),  # UNIT b, command 0: fine
    (1 << 9 | 1 << 8 | 0x08, "sets bits beyond slot 'b'"),
    (2 << 9 | 0x04, "waits on slots beyond the 2 there are"),
])
def test_decode_refuses(word, message):
    if message is None:
        assert decode([word], [A, B]) == [Issue("b", {"z": 0})]
        return
    with pytest.raises(ValueError, match=message):
        decode([word], [A, B])


def test_decode_refuses_a_slot_index_past_the_last():
    word = instruction_layout([A, B, C]).const({"op": 1, "slot": 3}).as_bits()
    with pytest.raises(ValueError, match="names slot 3; there are 3"):
        decode([word], [A, B, C])


@pytest.mark.parametrize("slots, message", [
    ([], "non-empty sequence of Slot"),
    ([A, Slot("a", B.layout)], r"slot names must be distinct, not \['a', 'a'\]"),
    ([("a", A.layout)], "non-empty sequence of Slot"),
])
def test_bad_slot_lists(slots, message):
    with pytest.raises(ValueError, match=message):
        instruction_layout(slots)
    with pytest.raises(ValueError, match=message):
        SequencerConfig(slots=slots)


def test_bad_slots_and_configs():
    for name in ("2x", "class", "_x", "signature", ""):
        with pytest.raises(ValueError, match=f"slot name '{name}' must be a public Python identifier"):
            Slot(name, A.layout)
    with pytest.raises(ValueError, match="layout must be a data.StructLayout"):
        Slot("a", 8)
    with pytest.raises(ValueError, match=r"SequencerConfig.depth=1 is out of range; allowed 2..65536"):
        SequencerConfig(slots=[A], depth=1)
    with pytest.raises(ValueError, match="unknown slot 'q'"):
        SequencerConfig(slots=[A]).slot("q")
    assert SequencerConfig(slots=[A, B, C]).width == 15


def test_config_encodes_what_fits_its_memory():
    config = SequencerConfig(slots=[A, B], depth=3)
    assert config.encode([Nop(), Nop(), End()]) == [3 << 9, 3 << 9, 0]
    with pytest.raises(ValueError, match="a program of 4 instructions does not fit in depth=3"):
        config.encode([Nop(), Nop(), Nop(), End()])


def test_timeline_by_hand():
    """start in cycle 0, first decode in cycle 1, one instruction per cycle when nothing stalls."""
    program = [
        Issue("a", {"x": 3}),   # decode 1, accepted 1, a busy until 4
        Issue("b", {"z": 5}),   # decode 2, accepted 2, b busy until 7
        Issue("a", {"x": 2}),   # decode 3, a busy: accepted 4, until 6
        Nop(),                  # 5
        Wait("b"),              # decode 6, leaves at 7
        Wait(("a",)),           # decode 8, a idle since 6: leaves at 8
        Issue("b", {"z": 1}),   # 9, until 10
        End(),                  # decode 10, b idle at 10: leaves at 10; done at 11
        Issue("a", {"x": 9}),   # never runs
    ]
    timeline = program_timeline(program, by_field)
    assert timeline.cycles == 11 == program_cycles(program, by_field)
    assert [(s.fetched, s.issued, s.completed) for s in timeline.steps] == [
        (1, 1, 4), (2, 2, 7), (3, 4, 6), (5, 5, 5), (6, 7, 7), (8, 8, 8), (9, 9, 10), (10, 10, 10)]
    assert [s.index for s in timeline.steps] == list(range(8))
    assert [s.stall for s in timeline.steps] == [0, 0, 1, 0, 1, 0, 0, 0]


@pytest.mark.parametrize("program, cycles", [
    ([End()], 2),                                    # END at decode in cycle 1, done in 2
    ([Nop(), Nop(), End()], 4),
    ([Wait("a"), End()], 3),                         # a never used: no stall
    ([Issue("a", {"x": 9}), End()], 1 + 9 + 1),      # END waits for a (busy until 10)
    ([Issue("a", {"x": 1})] * 4 + [End()], 1 + 4 + 1),  # 1-cycle commands back to back
    ([Issue("a", {"x": 2})] * 3 + [End()], 1 + 2 + 2 + 2 + 1),
])
def test_small_programs(program, cycles):
    assert program_cycles(program, by_field) == cycles


def test_timeline_refuses():
    with pytest.raises(ValueError, match=r"the program has no End\(\)"):
        program_cycles([Nop()], by_field)
    with pytest.raises(ValueError, match=r"unit_cycles\('a', ...\) = 0; a command takes at least 1 cycle"):
        program_cycles([Issue("a", {"x": 0}), End()], by_field)
