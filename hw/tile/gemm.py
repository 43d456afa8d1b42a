"""GEMM engine: a :class:`~peforge.hw.systolic.SystolicArray` fed from scratchpads, a tile unit.

One command computes ``C = A · B`` (A: ``m x k`` activations, B: ``k x n`` weight codes) and
writes, or with ``accumulate`` adds (for K-blocked tilings), C into the output scratchpad: the
array's results (:func:`~peforge.hw.systolic.systolic_gemm`) wrapped to 32-bit elements, the
addition a 32-bit integer one (a float PE's result codes are written, not meant to be added).

Where operands live (linear element addresses, :mod:`peforge.hw.tile.spad`)
    A row-major in the activation spad (B = R banks, W = lanes), row pitch ``a_pitch`` words;
    B *transposed* in the weight spad (weights ``[n][k]``: row ``j`` is column ``j`` of B;
    B = C banks, W = lanes), pitch ``b_pitch``; C row-major in the output spad (32-bit
    elements, W = C: the array's output row ``C[row, n0 : n0 + C]`` is one word), pitch ``c_pitch``.
Per-column metadata (the PE's ``column_fields``, e.g. the mixed PE's scale and zero point)
    lives in a fourth scratchpad of the same kind beside the weight spad, the *meta* spad
    (B = C banks, W = 1, one element = the column's fields packed low field first, in
    ``column_fields`` order, :meth:`GemmEngineConfig.meta_codes`): a matrix ``[n][groups]``
    with one entry per column of B and quantization group (the PE's ``group`` k values), at
    ``meta_base`` with pitch ``meta_pitch``. A PE without column fields has no meta spad.
Run-time PE fields (``array_fields``, e.g. the bit-serial PE's ``w_bits``)
    are fields of the command.

Every operand pitch is skewed (``pitch % banks == 1``), so each beat of the array's plan
(:meth:`SystolicConfig.plan`) is one parallel read: the ws activations of a beat are R
consecutive words of one row of A, the os activations one word of each of R consecutive
rows, the weights (and metadata) of a beat one word of each of C consecutive rows of B^T;
either way in consecutive banks from the first word's (mod B), so one rotation routes the
addresses to the banks and another the words back to the array. The engine reads beat ``i + 1`` in the cycle the array
takes beat ``i`` (the read data holds until the next read), so a beat is ready whenever the
array is.

Timing (command taken in cycle t): the command is latched (t), beat 0 is read (t + 1) and
taken by the array (t + 2); the array's last output row is valid in cycle
``t + 2 + SystolicConfig.cycles``; its old value is read then and the sum written the cycle
after; ``ready`` is high again one cycle later. Hence :data:`OVERHEAD` = 4 cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..systolic import SystolicArray, SystolicConfig
from .spad import Scratchpad, ScratchpadConfig, access_name, divmod_const, rotate
from .unit import unit_ports
from ...arith import ceil_div

OUT_BITS = 32  # elements of the output scratchpad (bits, signed)
OVERHEAD = 4  # cycles a command takes beyond the array's GEMM (see the module docstring)


@dataclass(frozen=True, kw_only=True)
class GemmCommand:
    """One GEMM command, as the compiler builds it.

    ``a_base``, ``b_base``, ``c_base``, ``meta_base``: linear element addresses (word-aligned)
    of A, B^T, C and the metadata in their scratchpads; ``*_pitch``: their row pitches (words;
    skewed for A, B^T and the metadata). ``m, k, n``: the GEMM's shape. ``accumulate``: add C
    to what the output spad holds. ``pe_fields``: the PE's run-time fields (``array_fields``,
    e.g. ``{"w_bits": 4}``).
    """

    a_base: int = 0
    a_pitch: int = 1
    b_base: int = 0
    b_pitch: int = 1
    c_base: int = 0
    c_pitch: int = 1
    m: int = 1
    k: int = 1
    n: int = 1
    accumulate: bool = False
    meta_base: int = 0
    meta_pitch: int = 1
    pe_fields: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("a_base", "a_pitch", "b_base", "b_pitch", "c_base", "c_pitch", "m", "k", "n",
                     "meta_base", "meta_pitch"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"GemmCommand.{name}={value!r}; must be an integer >= 0")

    @property
    def w_bits(self) -> int | None:
        """The run-time weight precision, if the PE has one."""
        return self.pe_fields.get("w_bits")

    def pack(self, config: GemmEngineConfig) -> int:
        """The command as the engine's ``cmd.payload`` holds it (checked by :meth:`GemmEngineConfig.check`)."""
        config.check(self)
        fields = {"a_base": self.a_base // config.act.word_elements, "a_pitch": self.a_pitch,
                  "b_base": self.b_base // config.weight.word_elements, "b_pitch": self.b_pitch,
                  "c_base": self.c_base // config.out.word_elements, "c_pitch": self.c_pitch,
                  "m": self.m, "k": self.k, "n": self.n, "accumulate": int(self.accumulate), **self.pe_fields}
        if config.meta is not None:
            fields.update(meta_base=self.meta_base, meta_pitch=self.meta_pitch)
        return config.cmd_layout().const(fields).as_value().value


@dataclass(frozen=True, kw_only=True)
class GemmEngineConfig:
    """Parameters of :class:`GemmEngine`: the array and the scratchpads it reads and writes.

    ``act``: B = R banks, W = lanes, elements of the PE's activation width; ``weight``: B = C
    banks, W = lanes, elements of the PE's weight code width; ``out``: W = C, 32-bit signed
    elements, any number of banks; ``meta``: B = C banks, W = 1, elements of the PE's column
    fields' total width, only when the PE has column fields. Left at ``None``, a spad is
    derived (depth 64, one output bank); :meth:`for_array` sets depths.
    """

    array: SystolicConfig = field(default_factory=SystolicConfig)
    act: ScratchpadConfig | None = None
    weight: ScratchpadConfig | None = None
    out: ScratchpadConfig | None = None
    meta: ScratchpadConfig | None = None

    def __post_init__(self) -> None:
        for name, rules in spad_rules(self.array).items():
            got = getattr(self, name)
            if rules is None:
                if got is not None:
                    raise ValueError(f"GemmEngineConfig.{name}={got!r}; this PE has no column metadata, allowed None")
                continue
            if got is None:  # a frozen dataclass is completed through object.__setattr__
                object.__setattr__(self, name, ScratchpadConfig(**rules))
                continue
            for key, value in rules.items():
                if getattr(got, key) != value:
                    raise ValueError(f"GemmEngineConfig.{name}.{key}={getattr(got, key)!r}; this array needs {value!r}")

    @classmethod
    def for_array(cls, array: SystolicConfig, *, act_depth: int = 64, weight_depth: int = 64, out_depth: int = 64,
                  out_banks: int = 1, meta_depth: int = 64) -> GemmEngineConfig:
        """The engine of ``array`` with scratchpads of the given depths (words per bank)."""
        spads = {}
        for name, rules in spad_rules(array).items():
            if rules is not None:
                depth = {"act": act_depth, "weight": weight_depth, "out": out_depth, "meta": meta_depth}[name]
                extra = {"banks": out_banks} if name == "out" else {}
                spads[name] = ScratchpadConfig(depth=depth, **rules, **extra)
        return cls(array=array, **spads)

    # --- derived --------------------------------------------------------------------------------

    @property
    def group(self) -> int | None:
        """K values one metadata entry covers (the PE's quantization ``group``), or None."""
        return self.array.pe_config.group if self.meta is not None else None

    def groups(self, k: int) -> int:
        """Metadata entries per column of B for a GEMM of depth ``k``."""
        return ceil_div(k, self.group) if self.group else 0

    def meta_codes(self, meta: dict[str, np.ndarray]) -> np.ndarray:
        """The meta spad matrix ``[n][groups]`` of per-column metadata given as the golden model
        takes it (each field ``groups x n``): fields packed low first in ``column_fields`` order."""
        codes = None
        offset = 0
        for key, shape in self.array.pe_config.column_fields().items():
            value = np.asarray(meta[key], dtype=np.int64).T << offset
            codes = value if codes is None else codes | value
            offset += Shape.cast(shape).width
        return codes

    def meta_fields(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """The inverse of :meth:`meta_codes`: each field of the ``[n][groups]`` matrix ``codes`` as
        the golden model takes it (``groups x n``)."""
        fields, offset = {}, 0
        for key, shape in self.array.pe_config.column_fields().items():
            width = Shape.cast(shape).width
            fields[key] = (np.asarray(codes, dtype=np.int64).T >> offset) & ((1 << width) - 1)
            offset += width
        return fields

    def cycles(self, cmd: GemmCommand) -> int:
        """Exact cycles from taking ``cmd`` to ``ready`` again (all writes done): the array's
        :meth:`SystolicConfig.cycles` plus :data:`OVERHEAD`."""
        return self.array.cycles(cmd.m, cmd.k, cmd.n, cmd.w_bits) + OVERHEAD

    def check(self, cmd: GemmCommand) -> None:
        """Raise ``ValueError`` unless ``cmd`` is a GEMM this engine runs as stated."""
        a = self.array
        for name, value, top in (("m", cmd.m, a.max_m), ("k", cmd.k, a.max_k), ("n", cmd.n, a.max_n)):
            if not 1 <= value <= top:
                raise ValueError(f"GemmCommand.{name}={value!r} is out of range; allowed 1..{top}")
        self.act.check_matrix("GemmCommand.a", cmd.a_base, cmd.a_pitch, cmd.m, cmd.k)
        self.weight.check_matrix("GemmCommand.b", cmd.b_base, cmd.b_pitch, cmd.n, cmd.k)
        self.out.check_matrix("GemmCommand.c", cmd.c_base, cmd.c_pitch, cmd.m, cmd.n, skewed=False)
        if self.meta is not None:
            self.meta.check_matrix("GemmCommand.meta", cmd.meta_base, cmd.meta_pitch, cmd.n, self.groups(cmd.k))
        fields = a.pe_config.array_fields()
        if set(cmd.pe_fields) != set(fields):
            raise ValueError(f"GemmCommand.pe_fields={cmd.pe_fields!r}; this PE takes {sorted(fields)}")

    def cmd_layout(self) -> data.StructLayout:
        """The command port's layout; bases are *word* addresses here (``GemmCommand.pack`` converts)."""
        a = self.array
        fields = {}
        for key, spad in (("a", self.act), ("b", self.weight), ("c", self.out), ("meta", self.meta)):
            if spad is not None:
                fields.update({f"{key}_base": range(spad.words), f"{key}_pitch": range(spad.words + 1)})
        fields.update(m=unsigned(a.max_m.bit_length()), k=unsigned(a.max_k.bit_length()),
                      n=unsigned(a.max_n.bit_length()), accumulate=1)
        fields.update(a.pe_config.array_fields())
        return data.StructLayout(fields)


def spad_rules(array: SystolicConfig) -> dict[str, dict | None]:
    """The scratchpad fields ``array``'s engine fixes, by spad (``None``: no such spad)."""
    pe = array.pe_config
    a, w = Shape.cast(pe.a_shape), Shape.cast(pe.weight_shape)
    meta_bits = sum(Shape.cast(shape).width for shape in pe.column_fields().values())
    return {
        "act": dict(banks=array.rows, word_elements=array.lanes, element_bits=a.width, signed=a.signed),
        "weight": dict(banks=array.cols, word_elements=array.lanes, element_bits=w.width, signed=w.signed),
        "out": dict(word_elements=array.cols, element_bits=OUT_BITS, signed=True),
        "meta": dict(banks=array.cols, word_elements=1, element_bits=meta_bits, signed=False) if meta_bits else None,
    }


def _gather(m: Module, feed, words: list, banks: int, fetch, name: str) -> list:
    """Read word ``words[i]`` (word addresses) for each slot ``i`` through a per-bank ``feed``
    port when ``fetch``; returns each slot's word, valid the cycle after and held until the
    next fetch. There are ``banks`` slots and the skewed layout puts word ``i`` in bank
    ``(b0 + i) % banks``, b0 the bank of word 0, so addresses and data are rotations by b0."""
    assert len(words) == banks
    split = [divmod_const(word, banks) for word in words]
    b0 = Signal(range(banks), name=f"{name}_b0")
    held = Signal(range(banks), name=f"{name}_held")
    m.d.comb += b0.eq(split[0][1])
    with m.If(fetch):
        m.d.sync += held.eq(b0)
    addresses = [Signal(len(feed.addr[0]), name=f"{name}_addr{i}") for i in range(banks)]
    m.d.comb += [address.eq(q) for address, (q, _) in zip(addresses, split)]
    # bank b serves slot (b - b0) mod banks
    back = Signal(range(banks), name=f"{name}_back")
    m.d.comb += back.eq(Mux(b0 == 0, 0, banks - b0))
    for b, address in enumerate(rotate(m, addresses, back, f"{name}_to_banks")):
        m.d.comb += feed.addr[b].eq(address)
    m.d.comb += feed.en.eq(fetch)
    words_in = [feed.data[b].as_value() for b in range(banks)]
    return rotate(m, words_in, held, f"{name}_from_banks")


class GemmEngine(wiring.Component):
    """The GEMM unit: command port (:func:`~peforge.hw.tile.unit.unit_ports`, commands of
    :meth:`GemmEngineConfig.cmd_layout`) and its scratchpad ports.

    Ports
    -----
    cmd, busy : the unit command port; a command takes :meth:`GemmEngineConfig.cycles`.
    act, weight, meta : per-bank reads (:meth:`ScratchpadConfig.feed_signature`) of the
        activation, weight and metadata spads (``meta`` only when the PE has column fields).
    out_read, out_write : per-bank read and write of the output spad (read for ``accumulate``).
    """

    def __init__(self, config: GemmEngineConfig):
        self.config = config
        ports = unit_ports(config.cmd_layout())
        ports.update(act=Out(config.act.feed_signature()), weight=Out(config.weight.feed_signature()),
                     out_read=Out(config.out.feed_signature()), out_write=Out(config.out.store_signature()))
        if config.meta is not None:
            ports["meta"] = Out(config.meta.feed_signature())
        super().__init__(ports)

    def elaborate(self, platform):
        cfg = self.config
        ac = cfg.array
        pe = ac.pe_config
        m = Module()
        m.submodules.array = array = SystolicArray(ac)

        # Command: latched when taken; beat 0 is read the cycle after.
        cmd = Signal(cfg.cmd_layout())
        busy = Signal()
        take = self.cmd.valid & ~busy
        m.d.comb += [self.cmd.ready.eq(~busy), self.busy.eq(busy)]
        with m.If(take):
            m.d.sync += [cmd.eq(self.cmd.payload), busy.eq(1)]
        prefetch = Signal()
        m.d.sync += prefetch.eq(take)

        # Beats: read beat i + 1 when the array takes beat i; `loaded`: a read beat waits.
        loaded = Signal()
        more = Signal()  # beats of the GEMM remain to be read
        accept = array.i.valid & array.i.ready
        fetch = Signal()
        m.d.comb += [fetch.eq(prefetch | (accept & more)), array.i.valid.eq(loaded)]
        m.d.sync += loaded.eq(fetch | (loaded & ~accept))
        with m.If(take):
            m.d.sync += more.eq(1)

        words = self._sequencer(m, cmd, take, fetch, more)
        p = array.i.payload
        for r, word in enumerate(_gather(m, self.act, words["a"], cfg.act.banks, fetch, "a")):
            m.d.comb += p.a[r].eq(word)
        for c, word in enumerate(_gather(m, self.weight, words["w"], cfg.weight.banks, fetch, "w")):
            m.d.comb += p.w[c].eq(word)
        if cfg.meta is not None:
            for c, word in enumerate(_gather(m, self.meta, words["meta"], cfg.meta.banks, fetch, "meta")):
                offset = 0
                for key, shape in pe.column_fields().items():
                    width = Shape.cast(shape).width
                    m.d.comb += getattr(p, key)[c].eq(word[offset:offset + width])
                    offset += width
        m.d.comb += [p.m.eq(cmd.m), p.k.eq(cmd.k), p.n.eq(cmd.n)]
        m.d.comb += [getattr(p, key).eq(getattr(cmd, key)) for key in pe.array_fields()]

        self._writer(m, cmd, take, array.o, busy)
        return m

    # --- input beats ----------------------------------------------------------------------------

    def _sequencer(self, m: Module, cmd, take, fetch, more) -> dict[str, list]:
        """Walk the plan of :meth:`SystolicConfig.plan`, one beat per ``fetch``; returns the word
        addresses each slot reads for the next beat (``a``: R, ``w`` and ``meta``: C)."""
        cfg = self.config
        ac = cfg.array
        R, C, L = ac.rows, ac.cols, ac.lanes
        width = max(cfg.act.words, cfg.weight.words, cfg.meta.words if cfg.meta else 1) * 4
        ptr = range(width)  # pointers run past a matrix on padding beats (reads ignored)
        K, M, N = cmd.k, cmd.m, cmd.n
        per_group = (cfg.group // (R * L if ac.dataflow == "ws" else L)) if cfg.meta else 1  # folds / beats

        j = Signal(range(max(ac.max_m, R, ceil_div(ac.max_k, L)) + 1))
        n0 = Signal(range(ac.max_n + C))
        bp = Signal(ptr)  # word of row n0 of B^T
        mp = Signal(ptr)  # word of row n0 of the metadata
        g = Signal(range(ac.max_k + 1))  # metadata entry (quantization group)
        gsub = Signal(range(per_group))
        ap = Signal(ptr)
        a_base, b_base = cmd.a_base, cmd.b_base
        meta_base = cmd.meta_base if cfg.meta else 0
        a_pitch, b_pitch = cmd.a_pitch, cmd.b_pitch
        meta_pitch = cmd.meta_pitch if cfg.meta else 0
        nlast = n0 + C >= N

        def column_block(base, pitch, word):
            return [base + c * pitch + word for c in range(C)]

        def next_group(restart):
            wrap = gsub == per_group - 1
            return (Mux(restart, 0, Mux(wrap, g + 1, g)), Mux(restart | wrap, 0, gsub + 1))

        payload = self.cmd.payload
        with m.If(take):
            m.d.sync += [j.eq(0), n0.eq(0), g.eq(0), gsub.eq(0), bp.eq(payload.b_base)]
            if cfg.meta:
                m.d.sync += mp.eq(payload.meta_base)
            m.d.sync += ap.eq(payload.a_base)

        if ac.dataflow == "ws":
            init = Signal()
            kw = Signal(range(ceil_div(ac.max_k, L) + R + 1))  # word of the fold's first k
            with m.If(take):
                m.d.sync += [init.eq(1), kw.eq(0)]
            klast = (kw + R) * L >= K
            last_fold = klast & nlast
            ng, ngsub = next_group(klast)
            nxt = dict(kw=Mux(klast, 0, kw + R), n0=Mux(klast, n0 + C, n0), bp=Mux(klast, bp + C * b_pitch, bp),
                       mp=Mux(klast, mp + C * meta_pitch, mp), g=ng, gsub=ngsub)
            # The fold whose weights this beat preloads: the first one in the initial window, else the next.
            pkw, pbp, pmp, pg = (Mux(init, kw, nxt["kw"]), Mux(init, bp, nxt["bp"]), Mux(init, mp, nxt["mp"]),
                                 Mux(init, g, nxt["g"]))
            row_word = pkw + (R - 1) - j  # preload beat j carries array row R - 1 - j
            words = {"a": [ap + kw + r for r in range(R)], "w": column_block(pbp, b_pitch, row_word),
                     "meta": column_block(pmp, meta_pitch, pg)}
            with m.If(fetch):
                with m.If(init):
                    m.d.sync += j.eq(j + 1)
                    with m.If(j == R - 1):
                        m.d.sync += [init.eq(0), j.eq(0)]
                with m.Elif(last_fold):
                    m.d.sync += [j.eq(j + 1), ap.eq(ap + a_pitch)]
                    with m.If(j + 1 == M):
                        m.d.sync += more.eq(0)
                with m.Elif((j + 1 >= M) & (j >= R - 1)):  # the fold's window ends
                    m.d.sync += [j.eq(0), ap.eq(a_base), kw.eq(nxt["kw"]), n0.eq(nxt["n0"]), bp.eq(nxt["bp"]),
                                 mp.eq(nxt["mp"]), g.eq(nxt["g"]), gsub.eq(nxt["gsub"])]
                with m.Else():
                    m.d.sync += [j.eq(j + 1), ap.eq(ap + a_pitch)]
            return words

        m0 = Signal(range(ac.max_m + R))
        with m.If(take):
            m.d.sync += m0.eq(0)
        klast = (j + 1) * L >= K
        mlast = m0 + R >= M
        ng, ngsub = next_group(klast)
        words = {"a": [ap + r * a_pitch + j for r in range(R)], "w": column_block(bp, b_pitch, j),
                 "meta": column_block(mp, meta_pitch, g)}
        with m.If(fetch):
            m.d.sync += [g.eq(ng), gsub.eq(ngsub), j.eq(j + 1)]
            with m.If(klast):
                m.d.sync += j.eq(0)
                with m.If(nlast & mlast):
                    m.d.sync += more.eq(0)
                with m.Elif(nlast):  # next row block of A, first column block
                    m.d.sync += [n0.eq(0), bp.eq(b_base), mp.eq(meta_base), m0.eq(m0 + R), ap.eq(ap + R * a_pitch)]
                with m.Else():
                    m.d.sync += [n0.eq(n0 + C), bp.eq(bp + C * b_pitch), mp.eq(mp + C * meta_pitch)]
        return words

    # --- output rows ----------------------------------------------------------------------------

    def _writer(self, m: Module, cmd, take, out, busy) -> None:
        """Write each output row of :meth:`SystolicConfig.outputs` to its word of the output
        spad: read the old word when the row arrives, write (old if ``accumulate``) + row the
        cycle after, lanes beyond N masked; the final row's write ends the command."""
        cfg = self.config
        ac = cfg.array
        R, C = ac.rows, ac.cols
        B = cfg.out.banks
        M, N = cmd.m, cmd.n
        row = Signal(range(ac.max_m + R))  # row of C the next output is
        n0 = Signal(range(ac.max_n + C))
        block = Signal(range(cfg.out.words))  # n0 / C: the row's word
        fold_row = Signal.like(row)  # os: first row of the current fold
        row_ptr = Signal(range(4 * cfg.out.words))  # c_base + row · c_pitch
        fold_ptr = Signal.like(row_ptr)
        payload = self.cmd.payload
        with m.If(take):
            m.d.sync += [row.eq(0), n0.eq(0), block.eq(0), fold_row.eq(0), row_ptr.eq(payload.c_base),
                         fold_ptr.eq(payload.c_base)]

        word = Signal(range(4 * cfg.out.words))
        m.d.comb += word.eq(row_ptr + block)
        with m.If(out.valid):
            if ac.dataflow == "ws":  # rows 0..M-1 of each column block
                m.d.sync += [row.eq(row + 1), row_ptr.eq(row_ptr + cmd.c_pitch)]
                with m.If(row + 1 == M):
                    m.d.sync += [row.eq(0), row_ptr.eq(cmd.c_base), n0.eq(n0 + C), block.eq(block + 1)]
            else:  # the fold's rows, then the next fold: next column block, or next row block
                m.d.sync += [row.eq(row + 1), row_ptr.eq(row_ptr + cmd.c_pitch)]
                with m.If((row + 1 == M) | (row + 1 == fold_row + R)):
                    with m.If(n0 + C >= N):
                        m.d.sync += [n0.eq(0), block.eq(0), fold_row.eq(row + 1), fold_ptr.eq(row_ptr + cmd.c_pitch)]
                    with m.Else():
                        m.d.sync += [n0.eq(n0 + C), block.eq(block + 1), row.eq(fold_row), row_ptr.eq(fold_ptr)]

        rd = self.out_read
        word_addr, word_bank = divmod_const(word, B)
        m.d.comb += rd.en.eq(out.valid)
        for b in range(B):
            m.d.comb += rd.addr[b].eq(word_addr)
        pending = Signal()
        last = Signal()
        bank = Signal(range(B))
        addr = Signal(range(cfg.out.depth))
        mask = Signal(C)
        values = Signal(data.ArrayLayout(signed(OUT_BITS), C))
        m.d.sync += pending.eq(out.valid)
        with m.If(out.valid):
            m.d.sync += [last.eq(out.payload.last), bank.eq(word_bank), addr.eq(word_addr)]
            m.d.sync += [mask[c].eq(n0 + c < N) for c in range(C)]
            m.d.sync += [values[c].eq(out.payload.acc[c]) for c in range(C)]
        wr = self.out_write
        old = rd.data[bank]
        for b in range(B):
            m.d.comb += [wr.addr[b].eq(addr), wr.en[b].eq(Mux(pending & (bank == b), mask, 0))]
            m.d.comb += [wr.data[b][c].eq(values[c] + Mux(cmd.accumulate, old[c], 0)) for c in range(C)]
        with m.If(pending & last):
            m.d.sync += busy.eq(0)


class GemmSlice(wiring.Component):
    """A :class:`GemmEngine` with its own scratchpads, their access ports outside (for the DMA
    and the vector unit; what the tile instantiates per array slice, and what tests drive).

    Ports: ``cmd``, ``busy`` (the engine's); ``act_access``, ``weight_access``, ``out_access``
    (and ``meta_access``): the scratchpads' run ports (:meth:`ScratchpadConfig.access_signature`),
    and with ``access_ports`` > 1 the further ones, ``act_access1``, ... (:func:`access_name`).
    ``init``: optional starting linear element spaces by spad name (``act``, ``weight``, ``out``, ``meta``).
    """

    def __init__(self, config: GemmEngineConfig, *, init: dict[str, np.ndarray] | None = None,
                 access_ports: int = 1):
        self.config = config
        init = init or {}
        self.engine = GemmEngine(config)
        self.spads = {name: Scratchpad(spad, init=init.get(name), access_ports=access_ports)
                      for name, spad in (("act", config.act), ("weight", config.weight), ("out", config.out),
                                         ("meta", config.meta)) if spad is not None}
        self.access_ports = access_ports
        ports = dict(unit_ports(config.cmd_layout()))
        ports.update({f"{name}_{access_name(k)}": In(spad.config.access_signature())
                      for name, spad in self.spads.items() for k in range(access_ports)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        engine = self.engine
        m.submodules.engine = engine
        for name, spad in self.spads.items():
            m.submodules[name] = spad
            for k in range(self.access_ports):
                port = access_name(k)
                wiring.connect(m, wiring.flipped(getattr(self, f"{name}_{port}")), getattr(spad, port))
        wiring.connect(m, wiring.flipped(self.cmd), engine.cmd)
        m.d.comb += self.busy.eq(engine.busy)
        for name in ("act", "weight", "meta"):
            if name in self.spads:
                wiring.connect(m, getattr(engine, name), self.spads[name].feed)
        wiring.connect(m, engine.out_read, self.spads["out"].feed)
        wiring.connect(m, engine.out_write, self.spads["out"].store)
        return m
