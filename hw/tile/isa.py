"""The tile's macro-instructions: their encoding, generic over the sequencer's unit slots, and the
exact timeline of a program.

A *slot* is a unit the sequencer drives (the DMA, a GEMM engine, the vector unit): a name and the
unit's command layout. An instruction word is, from its least significant bit::

    arg  : max(widest command, number of slots) bits -- UNIT: the command; WAIT: the slot mask
    slot : ceil(log2(number of slots)) bits           -- UNIT: the slot the command goes to
    op   : 2 bits                                     -- END = 0, UNIT = 1, WAIT = 2, NOP = 3

so the width follows from the slots (:func:`instruction_layout`). An all-zero word is ``END``: a
sequencer started on an empty memory finishes at once.

Semantics, in order, one instruction at a time (:class:`~peforge.hw.tile.sequencer.Sequencer`):

- ``UNIT s, cmd`` (:class:`Issue`) hands ``cmd`` to slot ``s`` in the first cycle its unit is
  ready (idle); the sequencer stalls until then.
- ``WAIT mask`` (:class:`Wait`) stalls until every unit of the mask is idle (``busy`` low), so the
  next instruction sees all their writes.
- ``END`` (:class:`End`) stalls until every unit is idle, then raises ``done``.
- ``NOP`` (:class:`Nop`) does nothing for one cycle.

Timing (the sequencer's own cost, what :func:`program_timeline` models): ``start`` in cycle 0;
the first instruction is at decode in cycle :data:`FETCH_LATENCY` (1); an instruction at decode in
cycle ``t`` that can go leaves in cycle ``t`` and the next one is at decode in ``t + 1`` (one
instruction per cycle); ``done`` is high from the cycle after ``END`` leaves (:data:`DONE_LATENCY`).
A command accepted in cycle ``t`` keeps its unit busy until ``t + cycles(command)`` (the contract
of :mod:`peforge.hw.tile.unit`).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from amaranth.hdl import Shape
from amaranth.lib import data, enum

FETCH_LATENCY = 1  # cycles from `start` to the first instruction at decode (synchronous memory read)
DONE_LATENCY = 1  # cycles from END leaving decode to `done` high (a registered output)


class Op(enum.Enum, shape=2):
    """Opcode of an instruction word (END is 0, so an erased memory stops at once)."""

    END = 0
    UNIT = 1
    WAIT = 2
    NOP = 3


@dataclass(frozen=True)
class Slot:
    """A unit the sequencer drives: ``name`` (an identifier) and its command ``layout``."""

    name: str
    layout: data.StructLayout

    def __post_init__(self) -> None:
        # The name becomes a port (``Sequencer.units.<name>``), so Amaranth's member rules apply.
        if (not isinstance(self.name, str) or not self.name.isidentifier() or keyword.iskeyword(self.name)
                or self.name.startswith("_") or self.name == "signature"):
            raise ValueError(f"slot name {self.name!r} must be a public Python identifier, not a keyword "
                             f"or 'signature'")
        if not isinstance(self.layout, data.StructLayout):
            raise ValueError(f"slot {self.name!r}: layout must be a data.StructLayout, not {self.layout!r}")


# --- instructions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """``UNIT``: hand ``command`` to slot ``slot`` (its name) when that unit is ready.

    ``command`` is a mapping of the slot layout's field names to values (fields left out are 0),
    an object with a ``pack() -> int`` method (a unit's command dataclass), or the packed bits.
    """

    slot: str
    command: Any


@dataclass(frozen=True)
class Wait:
    """``WAIT``: stall until every unit named in ``slots`` is idle (a name or a sequence of names)."""

    slots: tuple[str, ...]

    def __post_init__(self) -> None:
        names = (self.slots,) if isinstance(self.slots, str) else tuple(self.slots)
        object.__setattr__(self, "slots", names)  # frozen: normalised once, here


@dataclass(frozen=True)
class End:
    """``END``: stall until every unit is idle, then raise ``done``."""


@dataclass(frozen=True)
class Nop:
    """``NOP``: one cycle doing nothing."""


Instruction = Union[Issue, Wait, End, Nop]


# --- encoding ---------------------------------------------------------------------------------


def check_slots(slots: Sequence[Slot]) -> tuple[Slot, ...]:
    """``slots`` as a tuple, checked: at least one, all :class:`Slot`, distinct names."""
    slots = tuple(slots)
    if not slots or not all(isinstance(s, Slot) for s in slots):
        raise ValueError(f"slots must be a non-empty sequence of Slot, not {slots!r}")
    names = [s.name for s in slots]
    if len(set(names)) != len(names):
        raise ValueError(f"slot names must be distinct, not {names!r}")
    return slots


def instruction_layout(slots: Sequence[Slot]) -> data.StructLayout:
    """The instruction word's fields (``arg``, ``slot``, ``op`` from bit 0); its ``size`` is the width."""
    slots = check_slots(slots)
    arg_bits = max(max(s.layout.size for s in slots), len(slots))
    return data.StructLayout({"arg": arg_bits, "slot": (len(slots) - 1).bit_length(), "op": Op})


def slot_index(slots: Sequence[Slot], name: str) -> int:
    """The index of the slot named ``name`` (its number in UNIT words and WAIT masks)."""
    for i, s in enumerate(slots):
        if s.name == name:
            return i
    raise ValueError(f"unknown slot {name!r}; known: {', '.join(s.name for s in slots)}")


def _pack_field(name: str, shape: Any, value: Any) -> int:
    """The bits of one command field: a plain shape's value range-checked, a nested layout's
    value an int (its bits) or what that layout's ``const`` takes."""
    if isinstance(shape, data.Layout):
        if isinstance(value, int):
            if not 0 <= value < 1 << shape.size:
                raise ValueError(f"field {name}={value!r} does not fit in {shape.size} bits")
            return value
        return shape.const(value).as_bits()
    shape = Shape.cast(shape)
    low, high = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else (0, 1 << shape.width)
    if not isinstance(value, int) or not low <= value < high:
        raise ValueError(f"field {name}={value!r} is out of range; allowed {low}..{high - 1}")
    return value & ((1 << shape.width) - 1)


def pack_command(layout: data.StructLayout, command: Any) -> int:
    """The bits of ``command`` (see :class:`Issue`) in ``layout``."""
    if isinstance(command, Mapping):
        fields = dict(iter(layout))
        unknown = set(command) - set(fields)
        if unknown:
            raise ValueError(f"unknown command fields {sorted(unknown)!r}; known: {', '.join(fields)}")
        return sum(_pack_field(key, fields[key].shape, value) << fields[key].offset
                   for key, value in command.items())
    bits = command.pack() if hasattr(command, "pack") else command
    if not isinstance(bits, int) or not 0 <= bits < 1 << layout.size:
        raise ValueError(f"command {command!r} does not pack into {layout.size} bits")
    return bits


def unpack_command(layout: data.StructLayout, bits: int) -> dict[str, int]:
    """Field values of packed ``bits``: plain fields as ints (signed ones sign-extended), nested
    layouts as their raw bits."""
    out = {}
    for key, field in layout:
        value = (bits >> field.offset) & ((1 << field.width) - 1)
        if not isinstance(field.shape, data.Layout) and Shape.cast(field.shape).signed and value >> (field.width - 1):
            value -= 1 << field.width
        out[key] = value
    return out


def encode(program: Sequence[Instruction], slots: Sequence[Slot]) -> list[int]:
    """Instruction words of ``program`` (in order, one per instruction) for a sequencer of ``slots``."""
    slots = check_slots(slots)
    layout = instruction_layout(slots)
    words = []
    for ins in program:
        if isinstance(ins, Issue):
            i = slot_index(slots, ins.slot)
            fields = {"op": Op.UNIT, "slot": i, "arg": pack_command(slots[i].layout, ins.command)}
        elif isinstance(ins, Wait):
            fields = {"op": Op.WAIT, "arg": sum(1 << slot_index(slots, name) for name in ins.slots)}
        elif isinstance(ins, End):
            fields = {"op": Op.END}
        elif isinstance(ins, Nop):
            fields = {"op": Op.NOP}
        else:
            raise ValueError(f"not an instruction: {ins!r}")
        words.append(layout.const(fields).as_bits())
    return words


def decode(words: Sequence[int], slots: Sequence[Slot]) -> list[Instruction]:
    """Instructions of ``words`` (``Issue`` commands as field dicts, ``Wait`` names in slot order)."""
    slots = check_slots(slots)
    layout = instruction_layout(slots)
    program: list[Instruction] = []
    for word in words:
        if not isinstance(word, int) or not 0 <= word < 1 << layout.size:
            raise ValueError(f"instruction word {word!r} is not a {layout.size}-bit unsigned integer")
        view = layout.from_bits(word)
        op, arg = Op(view.op), view.arg
        if op is Op.UNIT:
            if view.slot >= len(slots):
                raise ValueError(f"instruction word {word:#x} names slot {view.slot}; there are {len(slots)}")
            slot = slots[view.slot]
            if arg >> slot.layout.size:
                raise ValueError(f"instruction word {word:#x} sets bits beyond slot {slot.name!r}'s command")
            program.append(Issue(slot.name, unpack_command(slot.layout, arg)))
        elif op is Op.WAIT:
            if arg >> len(slots):
                raise ValueError(f"instruction word {word:#x} waits on slots beyond the {len(slots)} there are")
            program.append(Wait(tuple(s.name for i, s in enumerate(slots) if arg >> i & 1)))
        else:
            program.append(End() if op is Op.END else Nop())
    return program


# --- timeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One executed instruction: cycles counted from the cycle ``start`` is high (cycle 0).

    ``fetched``: first cycle at decode. ``issued``: the cycle it leaves decode (``Issue``: its unit
    accepts the command; ``Wait``/``End``: its units are idle; ``Nop``: = ``fetched``).
    ``completed``: ``Issue``: the cycle its unit is idle again with every write done
    (``issued + cycles``); otherwise ``issued``.
    """

    index: int
    instruction: Instruction
    fetched: int
    issued: int
    completed: int

    @property
    def stall(self) -> int:
        """Cycles it waited at decode (its unit busy, or a ``Wait``'s or ``End``'s units)."""
        return self.issued - self.fetched


@dataclass(frozen=True)
class Timeline:
    """A run of a program: ``cycles`` from ``start`` (cycle 0) to the first cycle ``done`` is high,
    and the executed instructions in order (those after the first ``End`` never run)."""

    cycles: int
    steps: tuple[Step, ...]


def program_timeline(program: Sequence[Instruction], unit_cycles: Callable[[str, Any], int]) -> Timeline:
    """The exact timeline of ``program`` on the sequencer.

    Parameters
    ----------
    program : instructions, ending with an :class:`End` (what follows the first one is ignored)
    unit_cycles : ``unit_cycles(slot, command)`` -> cycles the unit of slot ``slot`` (a name) takes
        for ``command`` (as given in the :class:`Issue`), at least 1 (its config's ``cycles``)
    """
    free: dict[str, int] = {}  # slot -> first cycle its unit is idle again
    steps = []
    t = FETCH_LATENCY  # the cycle the next instruction is at decode
    for index, ins in enumerate(program):
        if isinstance(ins, Issue):
            issued = max(t, free.get(ins.slot, 0))
            cycles = unit_cycles(ins.slot, ins.command)
            if not isinstance(cycles, int) or cycles < 1:
                raise ValueError(f"unit_cycles({ins.slot!r}, ...) = {cycles!r}; a command takes at least 1 cycle")
            free[ins.slot] = completed = issued + cycles
        elif isinstance(ins, (Wait, End)):
            waited = free.values() if isinstance(ins, End) else [free.get(name, 0) for name in ins.slots]
            issued = completed = max([t, *waited])
        elif isinstance(ins, Nop):
            issued = completed = t
        else:
            raise ValueError(f"not an instruction: {ins!r}")
        steps.append(Step(index=index, instruction=ins, fetched=t, issued=issued, completed=completed))
        if isinstance(ins, End):
            return Timeline(cycles=issued + DONE_LATENCY, steps=tuple(steps))
        t = issued + 1
    raise ValueError("the program has no End(); a sequencer would run past it")


def program_cycles(program: Sequence[Instruction], unit_cycles: Callable[[str, Any], int]) -> int:
    """Cycles from ``start`` to ``done`` of ``program`` (:func:`program_timeline`)."""
    return program_timeline(program, unit_cycles).cycles
