"""VectorUnit: the tile's ``V``-lane unit of 32-bit integer operators (section 4 of the tile spec).

A command runs one operator over ``rows`` rows of ``length`` elements. Row ``r`` of operand A
starts at linear element address ``src_a + r * pitch_a``, of operand B at ``src_b + r *
pitch_b``, of the result at ``dst + r * pitch_d``. The unit reads runs of ``V`` consecutive
elements through two read ports (A and B; data one cycle after the address) and writes runs of
``V`` elements, with a per-element mask, through one write port: the access ports of the
scratchpads (``hw/tile/spad.py``), or any memory with those ports.

Operand B (``b_mode``): ``CONST`` is the command's ``mult`` in every lane (no read), ``STREAM``
the elements of B's row alongside A's, ``ROW`` one element per row (at B's row address,
broadcast: a per-row maximum or reciprocal from a reduction).

Elementwise ops (one beat of ``V`` elements per cycle, pipelined; results saturated to
``out_bits`` signed bits): ``ADD`` ``a + b``, ``SUB`` ``a - b``, ``MUL`` ``a * b``, ``MAX``,
``MULSHIFT`` ``requantize(a, b, shift, out_bits)`` (:func:`peforge.hw.intops.requantize`),
``EXP`` ``exp_codes(a - b)`` (:func:`peforge.hw.intops.exp_codes`, constants in the command),
``SILU`` ``a * sigmoid_codes(a)`` at ``shift`` bits of sigmoid fraction (a pipelined divider of
``sigmoid_bits + 1`` steps, ``mult`` holds ``exp(0)``'s code).

Row reductions (``RMAX``, ``RSUM``, ``RSUMSQ`` of A's row, one element written at the row's
destination address) with a per-row tail (``post``): ``NONE`` ``saturate(acc >> shift)``,
rows back to back; ``RECIP`` ``i_recip(acc, shift)`` and ``RSQRT`` ``i_rsqrt_mean(acc, length,
guard, shift)`` by a sequential divider and square root, one row at a time.

Softmax, RMSNorm and SiLU as the compiler issues them: :func:`softmax_program` (``RMAX``,
``EXP`` against the row maximum, ``RSUM`` with ``RECIP``, ``MULSHIFT`` by the row's reciprocal),
:func:`rmsnorm_program` (``RSUMSQ`` with ``RSQRT``, ``MULSHIFT``), one ``SILU``; RoPE's
``(x cos - x' sin) >> s`` as ``MUL`` on two streams, ``ADD`` and a ``MULSHIFT`` by 1
(:func:`rope_program`). Each equals its :mod:`peforge.hw.intops` operator bit for bit. A
command's destination rows may overlap its sources only in place (``dst == src_a``, same
pitch): beats of later rows are read before earlier ones are written.

:meth:`VectorConfig.cycles` (:func:`vector_cycles`) is exact; :func:`execute` is the
command's golden model on a linear element memory.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from .. import intops
from ..params import param, validate
from ..pe.arith import tree_sum
from ...arith import ceil_div
from .unit import unit_ports

ELEM_BITS = 32
MEAN_STEPS = 64     # the mean's division: a 64-bit numerator, one quotient bit per cycle
SQRT_STEPS = 32     # the root of a 64-bit mean square, one result bit per cycle


class VecOp(enum.Enum, shape=4):
    """Command opcodes."""

    ADD = 0
    SUB = 1
    MUL = 2
    MAX = 3
    MULSHIFT = 4
    EXP = 5
    SILU = 6
    RMAX = 8
    RSUM = 9
    RSUMSQ = 10


class BMode(enum.Enum, shape=2):
    """Where operand B comes from."""

    CONST = 0   #: the command's ``mult``
    STREAM = 1  #: B's row, element by element
    ROW = 2     #: one element per row, broadcast


class Post(enum.Enum, shape=2):
    """A reduction's per-row tail."""

    NONE = 0    #: ``saturate(acc >> shift, out_bits)``
    RECIP = 1   #: ``i_recip(acc, shift, out_bits)``
    RSQRT = 2   #: ``i_rsqrt_mean(acc, length, guard, shift, out_bits)``


ELEMENTWISE = (VecOp.ADD, VecOp.SUB, VecOp.MUL, VecOp.MAX, VecOp.MULSHIFT, VecOp.EXP, VecOp.SILU)
REDUCTIONS = (VecOp.RMAX, VecOp.RSUM, VecOp.RSUMSQ)
# Pipeline stages, counted in cycles from a beat's read to its write (the read data arrives at 1).
SHORT_DEPTH = 3     # operate, round / saturate, write
EXP_DEPTH = 7       # clip, z, p + q_b, polynomial, shift, saturate, write
REDUCE_DEPTH = 4    # lane values, lane tree, accumulate, write
WAIT_DEPTH = REDUCE_DEPTH  # a row's last read to the load of its tail


def op_depth(op: VecOp, sigmoid_bits: int) -> int:
    """Cycles from a beat's read to its write (an elementwise op), or to its row's result (a
    reduction): SILU adds ``sigmoid_bits + 1`` divider steps and a multiply to the exp's
    first five stages."""
    if op in REDUCTIONS:
        return REDUCE_DEPTH
    if op == VecOp.EXP:
        return EXP_DEPTH
    if op == VecOp.SILU:
        return EXP_DEPTH - 1 + sigmoid_bits + 1 + 2
    return SHORT_DEPTH


def tail_cycles(post: Post, shift: int) -> int:
    """Cycles of a reduction's sequential tail: one reciprocal step per quotient bit (``shift +
    1``); RSQRT first the mean's division and the root, each with a load cycle."""
    if post == Post.NONE:
        return 0
    recip = shift + 1
    return recip if post == Post.RECIP else MEAN_STEPS + 1 + SQRT_STEPS + 1 + recip


def vector_cycles(*, lanes, op, post, length, rows, shift, sigmoid_bits):
    """Exact cycles of a command, from its acceptance to ``ready`` again (tile spec section 1),
    with ``beats = ceil(length / lanes)`` per row:

    - elementwise: ``rows * beats + op_depth + 1`` (every row's beats back to back, then the
      pipeline drains);
    - reduction, ``post = NONE``: ``rows * beats + REDUCE_DEPTH + 1`` likewise;
    - reduction with a tail: ``1 + rows * (beats + WAIT_DEPTH + tail_cycles + 1)``, one row at a
      time (reads, wait for the sum, the sequential tail, the write).

    ``op``, ``post`` are :class:`VecOp`, :class:`Post`; ``length``, ``rows`` and ``shift`` may
    be numpy integer arrays (they broadcast), the rest integers.
    """
    beats = ceil_div(length, lanes)
    if op in REDUCTIONS and post != Post.NONE:
        return 1 + rows * (beats + WAIT_DEPTH + tail_cycles(post, shift) + 1)
    return rows * beats + op_depth(op, sigmoid_bits) + 1


@dataclass(frozen=True, kw_only=True)
class VectorCommand:
    """One command (fields as in the module docstring). Addresses and pitches are linear
    element addresses; ``exp`` holds the exp constants for ``EXP`` and ``SILU``."""

    op: VecOp
    src_a: int = 0
    src_b: int = 0
    dst: int = 0
    length: int = 1
    rows: int = 1
    pitch_a: int = 0
    pitch_b: int = 0
    pitch_d: int = 0
    b_mode: BMode = BMode.CONST
    post: Post = Post.NONE
    mult: int = 0
    shift: int = 0
    out_bits: int = 32
    guard: int = 0
    exp: intops.ExpConstants | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.op, VecOp):
            raise ValueError(f"VectorCommand.op must be a VecOp, not {self.op!r}")
        if self.length < 1 or self.rows < 1:
            raise ValueError(f"VectorCommand length and rows must be >= 1, not {self.length!r}, {self.rows!r}")
        if not 1 <= self.out_bits <= ELEM_BITS:
            raise ValueError(f"VectorCommand.out_bits={self.out_bits!r} is outside 1..{ELEM_BITS}")
        if not 0 <= self.shift <= 62:
            raise ValueError(f"VectorCommand.shift={self.shift!r} is outside 0..62")
        if not -(1 << 31) <= self.mult < 1 << 31:
            raise ValueError(f"VectorCommand.mult={self.mult!r} does not fit 32 bits signed")
        if not 0 <= self.guard <= 31:
            raise ValueError(f"VectorCommand.guard={self.guard!r} is outside 0..31")
        if self.op in (VecOp.EXP, VecOp.SILU) and self.exp is None:
            raise ValueError(f"VectorCommand {self.op.name} needs exp constants, not {self.exp!r}")
        if self.post == Post.RSQRT and self.op != VecOp.RSUMSQ:
            raise ValueError(f"VectorCommand post RSQRT is RSUMSQ's (a root of a sum of squares), not {self.op.name}'s")
        if self.op == VecOp.SILU and self.b_mode != BMode.CONST:
            raise ValueError(f"VectorCommand SILU takes no operand B, not b_mode={self.b_mode!r}")
        if self.op == VecOp.SILU and self.mult != self.exp.one:
            raise ValueError(f"VectorCommand SILU needs mult = exp(0)'s code {self.exp.one}, not {self.mult!r}")

    def fields(self) -> dict:
        """Values of the command layout's fields."""
        k = self.exp
        values = {name: value for name, value in asdict(self).items() if name != "exp"}
        values.update(op=self.op, b_mode=self.b_mode, post=self.post)  # asdict keeps enums, but be plain
        values.update({field: getattr(k, name) if k is not None else 0 for field, name in _EXP_FIELDS.items()})
        return values

    def pack(self, config: VectorConfig) -> int:
        """The command as the integer the unit's ``cmd.payload`` holds (checked against ``config``)."""
        config.check(self)
        return config.cmd_layout().const(self.fields()).as_bits()


# command field <- ExpConstants attribute
_EXP_FIELDS = {"exp_ln2": "q_ln2", "exp_b": "q_b", "exp_c": "q_c", "exp_frac": "frac_bits",
               "exp_recip": "recip", "exp_shift": "recip_shift"}


@functools.lru_cache(maxsize=256)
def _field_ranges(config: "VectorConfig") -> dict[str, tuple[int, int, Shape]]:
    """Each integer field of ``config``'s command layout: the values it holds, ``low <= v < high``
    (built once per config: the layout is an Amaranth object, slow to build per command)."""
    out = {}
    for name, field_ in config.cmd_layout():
        shape = Shape.cast(field_.shape)
        out[name] = ((-(1 << (shape.width - 1)), 1 << (shape.width - 1), shape) if shape.signed
                     else (0, 1 << shape.width, shape))
    return out


@dataclass(frozen=True, kw_only=True)
class VectorConfig:
    """Parameters of :class:`VectorUnit`."""

    lanes: int = param(4, "lanes V: elements per read / write run and per cycle", choices=(1, 2, 4, 8, 16, 32))
    addr_bits: int = param(16, "linear element address width of the memory ports (bits)", low=4, high=32)
    length_bits: int = param(12, "row length field (bits): rows of up to 2**length_bits - 1 elements",
                             low=1, high=16)
    rows_bits: int = param(12, "row count field (bits)", low=1, high=16)
    sigmoid_bits: int = param(15, "SiLU's divider steps less one: the finest sigmoid fraction (bits)",
                              low=1, high=24)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def elem_bits(self) -> int:
        """Element width of every port (bits): 32."""
        return ELEM_BITS

    @property
    def acc_bits(self) -> int:
        """A reduction's accumulator (bits): a sum of squares of a row of 32-bit elements."""
        return 2 * ELEM_BITS + self.length_bits

    def vector_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(ELEM_BITS), self.lanes)

    def cmd_layout(self) -> data.StructLayout:
        a = self.addr_bits
        return data.StructLayout({
            "op": VecOp, "b_mode": BMode, "post": Post,
            "src_a": a, "src_b": a, "dst": a, "pitch_a": a, "pitch_b": a, "pitch_d": a,
            "length": self.length_bits, "rows": self.rows_bits,
            "mult": signed(ELEM_BITS), "shift": 6, "out_bits": 6, "guard": 5,
            "exp_ln2": 32, "exp_b": 32, "exp_c": 32, "exp_frac": signed(6), "exp_recip": 34, "exp_shift": 6,
        })

    def read_signature(self) -> wiring.Signature:
        """A read port as the unit sees it: ``addr`` (linear element address of a run of ``V``
        elements) and ``en`` out, ``data`` (the run, lane ``k`` = element ``addr + k``) in, one
        cycle after ``en``."""
        return wiring.Signature({"addr": Out(self.addr_bits), "en": Out(1), "data": In(self.vector_layout())})

    def write_signature(self) -> wiring.Signature:
        """The write port: a run of ``V`` elements at ``addr``, element ``k`` written if ``mask[k]``."""
        return wiring.Signature({"addr": Out(self.addr_bits), "en": Out(1), "data": Out(self.vector_layout()),
                                 "mask": Out(self.lanes)})

    def check(self, cmd: VectorCommand) -> None:
        """``ValueError`` unless every field of ``cmd`` fits its field of :meth:`cmd_layout` and
        a SILU's fraction ``shift`` is at most ``sigmoid_bits``."""
        if cmd.op == VecOp.SILU and cmd.shift > self.sigmoid_bits:
            raise ValueError(f"SILU shift={cmd.shift!r} exceeds sigmoid_bits={self.sigmoid_bits!r}")
        ranges = _field_ranges(self)
        for name, value in cmd.fields().items():
            if isinstance(value, enum.Enum):
                continue
            low, high, shape = ranges[name]
            if not low <= value < high:
                raise ValueError(f"VectorCommand.{name}={value!r} does not fit its {shape} field")

    def cycles(self, cmd: VectorCommand) -> int:
        """Exact cycles of ``cmd``: :func:`vector_cycles`."""
        self.check(cmd)
        return vector_cycles(lanes=self.lanes, op=cmd.op, post=cmd.post, length=cmd.length, rows=cmd.rows,
                             shift=cmd.shift, sigmoid_bits=self.sigmoid_bits)


# --- golden model ------------------------------------------------------------------------------


def execute(cmd: VectorCommand, memory: np.ndarray) -> np.ndarray:
    """A copy of ``memory`` (linear element space, integers) after ``cmd``, by the operators of
    :mod:`peforge.hw.intops`: the unit's golden model."""
    mem = np.array(memory, dtype=np.int64)
    n, ob = cmd.length, cmd.out_bits
    for r in range(cmd.rows):
        dst = cmd.dst + r * cmd.pitch_d
        reads = [("A", cmd.src_a + r * cmd.pitch_a, n), ("D", dst, 1 if cmd.op in REDUCTIONS else n)]
        if cmd.b_mode != BMode.CONST and cmd.op in ELEMENTWISE:
            reads.append(("B", cmd.src_b + r * cmd.pitch_b, n if cmd.b_mode == BMode.STREAM else 1))
        for name, start, count in reads:
            if start + count > len(mem):
                raise ValueError(f"execute: row {r} of {name} runs past the memory's {len(mem)} elements")
        a = mem[cmd.src_a + r * cmd.pitch_a:][:n].copy()
        if cmd.op in REDUCTIONS:
            # in Python integers: a sum of squares of 32-bit elements exceeds 64 bits
            row = [int(v) for v in a]
            acc = {VecOp.RMAX: max(row), VecOp.RSUM: sum(row), VecOp.RSUMSQ: sum(v * v for v in row)}[cmd.op]
            if cmd.post == Post.NONE:
                out = min(max(acc >> cmd.shift, -(1 << (ob - 1))), (1 << (ob - 1)) - 1)
            else:
                acc = min(acc, (1 << 63) - 1)  # the same quotients (0) and the same precondition
                out = (intops.i_recip(acc, cmd.shift, ob) if cmd.post == Post.RECIP else
                       intops.i_rsqrt_mean(acc, n, cmd.guard, cmd.shift, ob))
            mem[dst] = out
            continue
        start_b = cmd.src_b + r * cmd.pitch_b
        if cmd.b_mode == BMode.STREAM:
            b = mem[start_b:start_b + n].copy()
        else:
            b = np.full(n, cmd.mult if cmd.b_mode == BMode.CONST else mem[start_b], dtype=np.int64)
        if cmd.op == VecOp.MULSHIFT:
            out = intops.requantize(a, b, cmd.shift, ob)
        elif cmd.op == VecOp.EXP:
            out = intops.saturate(intops.exp_codes(a - b, cmd.exp), ob)
        elif cmd.op == VecOp.SILU:
            out = intops.saturate(a * intops.sigmoid_codes(a, cmd.exp, cmd.shift), ob)
        else:
            out = intops.saturate({VecOp.ADD: a + b, VecOp.SUB: a - b, VecOp.MUL: a * b,
                                   VecOp.MAX: np.maximum(a, b)}[cmd.op], ob)
        mem[dst:dst + n] = out
    return mem


# --- programs: composite operators as command sequences ---------------------------------------


def softmax_program(*, src: int, dst: int, scratch: int, length: int, rows: int, pitch: int, scale: float,
                    out_bits: int = 8, recip_shift: int = 59) -> list[VectorCommand]:
    """Commands of :func:`peforge.hw.intops.i_softmax` on ``rows`` rows at ``src`` (results at
    ``dst``, same pitch; ``scratch``: ``rows`` elements for the per-row maxima and reciprocals):
    RMAX, EXP against the row maximum, RSUM with RECIP, MULSHIFT by the row's reciprocal."""
    k = intops.ExpConstants.of(scale)
    rows_of = dict(length=length, rows=rows, pitch_a=pitch, pitch_d=pitch)
    return [
        VectorCommand(op=VecOp.RMAX, src_a=src, dst=scratch, length=length, rows=rows, pitch_a=pitch, pitch_d=1),
        VectorCommand(op=VecOp.EXP, src_a=src, src_b=scratch, dst=dst, b_mode=BMode.ROW, pitch_b=1,
                      exp=k, **rows_of),
        VectorCommand(op=VecOp.RSUM, src_a=dst, dst=scratch, length=length, rows=rows, pitch_a=pitch, pitch_d=1,
                      post=Post.RECIP, shift=recip_shift),
        VectorCommand(op=VecOp.MULSHIFT, src_a=dst, src_b=scratch, dst=dst, b_mode=BMode.ROW, pitch_b=1,
                      shift=recip_shift - out_bits, **rows_of),
    ]


def rmsnorm_program(*, src: int, dst: int, scratch: int, length: int, rows: int, pitch: int,
                    out_bits: int = 12, guard_bits: int = 8, recip_shift: int = 40) -> list[VectorCommand]:
    """Commands of :func:`peforge.hw.intops.i_rmsnorm` (before the gain): RSUMSQ with RSQRT, then
    MULSHIFT by the row's reciprocal root."""
    return [
        VectorCommand(op=VecOp.RSUMSQ, src_a=src, dst=scratch, length=length, rows=rows, pitch_a=pitch, pitch_d=1,
                      post=Post.RSQRT, guard=guard_bits, shift=recip_shift),
        VectorCommand(op=VecOp.MULSHIFT, src_a=src, src_b=scratch, dst=dst, b_mode=BMode.ROW, pitch_b=1,
                      length=length, rows=rows, pitch_a=pitch, pitch_d=pitch,
                      shift=recip_shift - out_bits - guard_bits),
    ]


def rope_program(*, x: int, cos: int, sin: int, dst: int, scratch: int, dim: int, rows: int, pitch: int,
                 shift: int, out_bits: int = 32) -> list[VectorCommand]:
    """Commands of RoPE's rotation ``(x cos + rot(x) sin) >> shift`` (rounded half up) on
    ``rows`` rows of ``dim`` elements at ``x`` (``rot``: the row's halves swapped, ``[x_hi,
    x_lo]``); ``cos``, ``sin`` tables of the same layout, ``sin`` signed ``[-sin, sin]`` so the
    rotation is one sum; ``scratch``: ``rows * pitch`` elements. Products are 32-bit
    (saturated): ``x`` and the tables must keep ``|x cos| + |x' sin| < 2**31``.
    ``MUL`` of both streams, two half-row ``MUL`` by the swapped halves, ``ADD``, ``MULSHIFT`` by 1."""
    if dim % 2:
        raise ValueError(f"rope_program: dim={dim!r} must be even")
    half = dim // 2
    rows_of = dict(rows=rows, pitch_a=pitch, pitch_b=pitch, pitch_d=pitch, b_mode=BMode.STREAM)
    return [
        VectorCommand(op=VecOp.MUL, src_a=x, src_b=cos, dst=dst, length=dim, **rows_of),
        VectorCommand(op=VecOp.MUL, src_a=x + half, src_b=sin, dst=scratch, length=half, **rows_of),
        VectorCommand(op=VecOp.MUL, src_a=x, src_b=sin + half, dst=scratch + half, length=half, **rows_of),
        VectorCommand(op=VecOp.ADD, src_a=dst, src_b=scratch, dst=dst, length=dim, **rows_of),
        VectorCommand(op=VecOp.MULSHIFT, src_a=dst, dst=dst, length=dim, mult=1, shift=shift, out_bits=out_bits,
                      rows=rows, pitch_a=pitch, pitch_d=pitch),
    ]


# --- RTL ---------------------------------------------------------------------------------------


def _saturate(value, low, high):
    return Mux(value > high, high, Mux(value < low, low, value))


class VectorUnit(wiring.Component):
    """The vector unit (a unit of ``hw/tile/unit.py``).

    Ports
    -----
    cmd : stream of :meth:`VectorConfig.cmd_layout` commands (:class:`VectorCommand`); ``ready``
        exactly when idle.
    busy : high while a command runs.
    rd_a, rd_b : read ports (:meth:`VectorConfig.read_signature`) of operands A and B.
    wr : the write port (:meth:`VectorConfig.write_signature`).
    """

    def __init__(self, config: VectorConfig):
        self.config = config
        super().__init__({**unit_ports(config.cmd_layout()), "rd_a": Out(config.read_signature()),
                          "rd_b": Out(config.read_signature()), "wr": Out(config.write_signature())})

    def elaborate(self, platform):
        cfg = self.config
        lanes, fmax = cfg.lanes, cfg.sigmoid_bits
        m = Module()
        c = Signal(cfg.cmd_layout())  # the running command
        is_red = Signal()
        m.d.comb += is_red.eq((c.op == VecOp.RMAX) | (c.op == VecOp.RSUM) | (c.op == VecOp.RSUMSQ))
        # Per-command constants, registered at acceptance.
        sat_hi, sat_lo = Signal(signed(ELEM_BITS + 1)), Signal(signed(ELEM_BITS + 1))
        round_bit = Signal(63)
        exp_lsh, exp_rsh = Signal(6), Signal(6)
        sig_rsh = Signal(range(fmax + 1))  # SiLU: from the divider's fraction to the command's

        # --- issue: one beat (a run of V elements of each operand) per cycle ---
        addr = cfg.addr_bits
        a_row, b_row, d_row = (Signal(addr, name=f"{n}_row") for n in "abd")
        a_at, b_at, d_at = (Signal(addr, name=f"{n}_at") for n in "abd")
        rem = Signal(cfg.length_bits)
        rows_left = Signal(cfg.rows_bits)
        issue = Signal()
        last_beat = Signal()
        m.d.comb += last_beat.eq(rem <= lanes)

        tok_layout = data.StructLayout({"valid": 1, "first": 1, "last": 1, "mask": lanes, "addr": addr})
        depth = max(op_depth(op, fmax) for op in VecOp)
        tok = [Signal(tok_layout, name=f"tok{i}") for i in range(depth + 1)]
        m.d.comb += [
            tok[0].valid.eq(issue), tok[0].last.eq(last_beat), tok[0].first.eq(rem == c.length),
            tok[0].mask.eq(Cat(rem > k for k in range(lanes))),
            tok[0].addr.eq(Mux(is_red, d_row, d_at)),
        ]
        for i in range(depth):
            m.d.sync += tok[i + 1].eq(tok[i])
        m.d.comb += [
            self.rd_a.en.eq(issue), self.rd_a.addr.eq(a_at),
            self.rd_b.en.eq(issue & ~is_red & (c.b_mode != BMode.CONST)),
            self.rd_b.addr.eq(Mux(c.b_mode == BMode.ROW, b_row, b_at)),
        ]

        # --- the lanes ---
        def reg(value, name):
            r = Signal.like(value, name=name) if isinstance(value, Signal) else Signal(value.shape(), name=name)
            m.d.sync += r.eq(value)
            return r

        def delay(value, cycles, name):
            for i in range(cycles):
                value = reg(value, f"{name}_d{i}")
            return value

        b_row_value = Signal(signed(ELEM_BITS))
        m.d.comb += b_row_value.eq(self.rd_b.data[0])
        results = {op: [] for op in ELEMENTWISE}
        lane_values = []
        for k in range(lanes):
            a = self.rd_a.data[k]
            b = Signal(signed(ELEM_BITS), name=f"b{k}")
            m.d.comb += b.eq(Mux(c.b_mode == BMode.STREAM, self.rd_b.data[k],
                                 Mux(c.b_mode == BMode.ROW, b_row_value, c.mult)))
            # a reduction's lane term through the same multiplier: a * 1, a * a, or 0 outside the row
            valid_lane = tok[1].mask[k]
            with m.Switch(c.op):
                with m.Case(VecOp.RMAX):
                    m.d.comb += b.eq(Mux(valid_lane, a, -(1 << (ELEM_BITS - 1))))
                with m.Case(VecOp.RSUM):
                    m.d.comb += b.eq(valid_lane)
                with m.Case(VecOp.RSUMSQ):
                    m.d.comb += b.eq(Mux(valid_lane, a, 0))
            # short ops: operate, then round / shift and saturate
            raw = Signal(signed(2 * ELEM_BITS + 1), name=f"raw{k}")
            with m.Switch(c.op):
                with m.Case(VecOp.ADD):
                    m.d.sync += raw.eq(a + b)
                with m.Case(VecOp.SUB):
                    m.d.sync += raw.eq(a - b)
                with m.Case(VecOp.MAX):
                    m.d.sync += raw.eq(Mux(a > b, a, b))
                with m.Case(VecOp.RMAX):
                    m.d.sync += raw.eq(b)
                with m.Default():
                    m.d.sync += raw.eq(a * b)
            shifted = Mux(c.op == VecOp.MULSHIFT, (raw + round_bit) >> c.shift, raw)
            short = reg(_saturate(shifted, sat_lo, sat_hi), f"short{k}")
            for op in (VecOp.ADD, VecOp.SUB, VecOp.MUL, VecOp.MAX, VecOp.MULSHIFT):
                results[op].append(short)

            # exp: clip to [-2**31, 0], z = -x // q_ln2 by the exact reciprocal, p + q_b, polynomial
            is_silu = c.op == VecOp.SILU
            diff = Mux(is_silu, Mux(a < 0, a, -a), a - b)
            x1 = reg(Mux(diff > 0, 0, Mux(diff < -(1 << 31), -(1 << 31), diff)), f"x1_{k}")
            n1 = Signal(unsigned(32), name=f"n1_{k}")
            m.d.comb += n1.eq(-x1)
            z2 = reg(((n1 * c.exp_recip) >> c.exp_shift)[:32], f"z2_{k}")
            x2 = reg(x1, f"x2_{k}")
            t3 = reg(x2 + z2 * c.exp_ln2 + c.exp_b, f"t3_{k}")
            z3 = reg(z2, f"z3_{k}")
            poly4 = reg(t3 * t3 + c.exp_c, f"poly4_{k}")
            z4 = reg(z3, f"z4_{k}")
            rs = z4 + exp_rsh
            e5 = reg((poly4 << exp_lsh) >> Mux(rs > 63, 63, rs)[:6], f"e5_{k}")
            results[VecOp.EXP].append(reg(_saturate(e5, sat_lo, sat_hi), f"exp{k}"))

            # SiLU: sigmoid(|x|) = (one << fmax) // (one + e), fmax + 1 restoring steps, then
            # shifted to the command's fraction and applied to a
            a_silu = delay(a, 5, f"a{k}")  # in step with e5
            rem_s = Signal(unsigned(ELEM_BITS + 2), name=f"rem{k}_0")
            den = Signal(unsigned(ELEM_BITS + 1), name=f"den{k}_0")
            m.d.comb += [rem_s.eq(c.mult), den.eq(c.mult + e5)]
            quo = Const(0, fmax + 1)
            for step in range(fmax + 1):
                ge = rem_s >= den
                rem_s = reg((Mux(ge, rem_s - den, rem_s) << 1)[:ELEM_BITS + 2], f"rem{k}_{step + 1}")
                quo = reg(Cat(ge, quo[:fmax]), f"quo{k}_{step + 1}")
                den = reg(den, f"den{k}_{step + 1}")
                a_silu = reg(a_silu, f"a{k}_s{step}")
            sig_abs = quo >> sig_rsh
            sigmoid = Signal(signed(fmax + 2), name=f"sigmoid{k}")
            m.d.comb += sigmoid.eq(Mux(a_silu >= 0, sig_abs, (Const(1, fmax + 2) << c.shift) - sig_abs))
            product = reg(a_silu * sigmoid, f"silu_p{k}")
            results[VecOp.SILU].append(reg(_saturate(product, sat_lo, sat_hi), f"silu{k}"))

            lane_values.append(raw)  # a reduction's lane term (b chosen above)

        # lane tree and accumulator
        tree_max = lane_values[0]
        for k, v in enumerate(lane_values[1:]):
            # A signal per step: the expression names the previous maximum twice, so nested
            # Muxes would double in size with every lane (elaboration time 2**lanes).
            step = Signal.like(v, name=f"tree_max{k}")
            m.d.comb += step.eq(Mux(v > tree_max, v, tree_max))
            tree_max = step
        tree = reg(Mux(c.op == VecOp.RMAX, tree_max, tree_sum(lane_values)), "tree")
        acc = Signal(signed(cfg.acc_bits))
        with m.If(tok[3].valid):
            with m.If(tok[3].first):
                m.d.sync += acc.eq(tree)
            with m.Elif(c.op == VecOp.RMAX):
                m.d.sync += acc.eq(Mux(tree > acc, tree, acc))
            with m.Else():
                m.d.sync += acc.eq(acc + tree)

        # --- the sequential tail: restoring divider and square root, one bit per cycle ---
        num = Signal(64)
        part = Signal(cfg.acc_bits + 2)         # partial remainder
        divisor = Signal(cfg.acc_bits)
        quotient = Signal(64)
        sq_op, sq_res, sq_one = Signal(64), Signal(64), Signal(64)
        steps = Signal(range(MEAN_STEPS))
        phase_mean = Signal()                   # the divider computes RSQRT's mean, not the reciprocal
        result_addr = Signal(addr)
        wait = Signal(range(WAIT_DEPTH))
        drain = Signal(range(depth + 1))

        def load_recip(d):
            return [num.eq(1 << 63), part.eq(0), quotient.eq(0), divisor.eq(Mux(d < 1, 1, d)),
                    steps.eq(c.shift), phase_mean.eq(0)]

        shifted_in = Cat(num[63], part[:-1])
        fits = shifted_in >= divisor
        sq_try = sq_res | sq_one  # res + one: one lies below every set bit of res

        # --- write port: plain expressions of registers (see `ready` below), no Switch ---
        def by_op(values: dict, default):
            out = default
            for op, value in values.items():
                out = Mux(c.op == op, value, out)
            return out

        at = {op: tok[op_depth(op, fmax)] for op in ELEMENTWISE}
        red = tok[REDUCE_DEPTH]
        writing = Signal()  # the sequential tail's result (state WRITE), set by the FSM below
        m.d.comb += [
            self.wr.en.eq(writing | by_op({op: t.valid for op, t in at.items()},
                                          (c.post == Post.NONE) & red.valid & red.last)),
            self.wr.addr.eq(Mux(writing, result_addr, by_op({op: t.addr for op, t in at.items()}, red.addr))),
            self.wr.mask.eq(Mux(writing, 1, by_op({op: t.mask for op, t in at.items()}, 1))),
        ]
        red_out = Mux(writing, _saturate(quotient, sat_lo, sat_hi), _saturate(acc >> c.shift, sat_lo, sat_hi))
        for k in range(lanes):
            m.d.comb += self.wr.data[k].eq(by_op({op: results[op][k] for op in ELEMENTWISE},
                                                 red_out if k == 0 else 0))

        # --- control ---
        # ready is a register (high out of reset), not a decode of the FSM state: Icarus in
        # SystemVerilog mode (cocotb's -g2012) never runs an `always @*` block whose inputs do not
        # change, and the state stays 0 from reset to the first command, so a decoded ready
        # stays X and the sequencer never issues to the unit.
        ready = Signal(init=1)
        m.d.comb += [self.cmd.ready.eq(ready), self.busy.eq(~ready)]
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.cmd.valid):
                    m.d.sync += ready.eq(0)
                    p = self.cmd.payload
                    m.d.sync += [
                        c.eq(p), a_row.eq(p.src_a), a_at.eq(p.src_a), b_row.eq(p.src_b), b_at.eq(p.src_b),
                        d_row.eq(p.dst), d_at.eq(p.dst), rem.eq(p.length), rows_left.eq(p.rows),
                        sat_hi.eq((Const(1, ELEM_BITS + 1) << (p.out_bits - 1)[:6]) - 1),
                        sat_lo.eq(-(Const(1, ELEM_BITS + 1) << (p.out_bits - 1)[:6])),
                        round_bit.eq(Mux(p.shift == 0, 0, Const(1, 63) << (p.shift - 1)[:6])),
                        sig_rsh.eq(fmax - p.shift),
                        exp_lsh.eq(Mux(p.exp_frac > 0, p.exp_frac, 0)),
                        exp_rsh.eq(Mux(p.exp_frac < 0, -p.exp_frac, 0)),
                    ]
                    # beats of the last command still in the token line, past its own taps
                    m.d.sync += [t.valid.eq(0) for t in tok[1:]]
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                with m.If(last_beat):
                    m.d.sync += [a_row.eq(a_row + c.pitch_a), a_at.eq(a_row + c.pitch_a),
                                 b_row.eq(b_row + c.pitch_b), b_at.eq(b_row + c.pitch_b),
                                 d_row.eq(d_row + c.pitch_d), d_at.eq(d_row + c.pitch_d),
                                 rem.eq(c.length), rows_left.eq(rows_left - 1)]
                    with m.If(is_red & (c.post != Post.NONE)):
                        m.d.sync += wait.eq(WAIT_DEPTH - 1)
                        m.next = "WAIT"
                    with m.Elif(rows_left == 1):
                        with m.Switch(c.op):
                            for op in VecOp:
                                with m.Case(op):
                                    m.d.sync += drain.eq(op_depth(op, fmax) - 1)
                        m.next = "DRAIN"
                with m.Else():
                    m.d.sync += [rem.eq(rem - lanes), a_at.eq(a_at + lanes), b_at.eq(b_at + lanes),
                                 d_at.eq(d_at + lanes)]
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.sync += ready.eq(1)
                    m.next = "IDLE"
            with m.State("WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):  # the row's sum is in acc
                    m.d.sync += result_addr.eq(tok[WAIT_DEPTH].addr)
                    with m.If(c.post == Post.RECIP):
                        m.d.sync += load_recip(acc)
                    with m.Else():
                        m.d.sync += [num.eq(acc << (2 * c.guard)), part.eq(0), quotient.eq(0),
                                     divisor.eq(c.length), steps.eq(MEAN_STEPS - 1), phase_mean.eq(1)]
                    m.next = "DIV"
            with m.State("DIV"):
                m.d.sync += [num.eq(num << 1), part.eq(Mux(fits, shifted_in - divisor, shifted_in)),
                             quotient.eq(Cat(fits, quotient[:-1])), steps.eq(steps - 1)]
                with m.If(steps == 0):
                    m.next = "WRITE"
                    with m.If(phase_mean):
                        m.next = "SQLOAD"
            with m.State("SQLOAD"):  # the mean square is in quotient
                m.d.sync += [sq_op.eq(quotient), sq_res.eq(0), sq_one.eq(1 << 62), steps.eq(SQRT_STEPS - 1)]
                m.next = "SQRT"
            with m.State("SQRT"):
                with m.If(sq_op >= sq_try):
                    m.d.sync += [sq_op.eq(sq_op - sq_try), sq_res.eq((sq_res >> 1) + sq_one)]
                with m.Else():
                    m.d.sync += sq_res.eq(sq_res >> 1)
                m.d.sync += [sq_one.eq(sq_one >> 2), steps.eq(steps - 1)]
                with m.If(steps == 0):
                    m.next = "RLOAD"
            with m.State("RLOAD"):  # the root is in sq_res
                m.d.sync += load_recip(sq_res)
                m.next = "DIV"
            with m.State("WRITE"):
                m.next = "ISSUE"
                with m.If(rows_left == 0):
                    m.d.sync += ready.eq(1)
                    m.next = "IDLE"
        m.d.comb += [issue.eq(fsm.ongoing("ISSUE")), writing.eq(fsm.ongoing("WRITE"))]
        return m
