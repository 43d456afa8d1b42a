"""AXI4 and AXI4-Lite interfaces of the tile, and a small AXI4-Lite register file.

The signatures are seen from the master (address, write data and ``ready`` of the read data
are ``Out``); a slave port is ``In(signature)``. Member names are the AXI signal names, so a
component exported with :func:`verilog_ports` has top-level ports ``m_axi_awaddr``, ...,
``s_axil_rdata``: what cocotbext-axi's ``AxiBus.from_prefix(dut, "m_axi")`` and
``AxiLiteBus.from_prefix(dut, "s_axil")`` look for. (Amaranth's own export would name them
``m_axi__awaddr``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

BOUNDARY_BYTES = 4096  # an AXI burst never crosses a 4 KiB address boundary
BURST_INCR = 1
RESP_OKAY = 0


def _check_widths(addr_bits: int, data_bytes: int) -> None:
    if not 1 <= addr_bits <= 64:
        raise ValueError(f"addr_bits {addr_bits!r}: choose 1 to 64")
    if data_bytes not in (1, 2, 4, 8, 16, 32, 64, 128):
        raise ValueError(f"data_bytes {data_bytes!r}: a power of two from 1 to 128")


class Axi4Signature(wiring.Signature):
    """An AXI4 master port: five channels, INCR/FIXED/WRAP bursts of up to 256 beats.

    Parameters
    ----------
    addr_bits : byte address width (bits)
    data_bytes : data bus width (bytes); ``wstrb`` has one bit per byte
    id_bits : transaction ID width (bits); cocotbext-axi requires the ID signals
    """

    def __init__(self, *, addr_bits: int, data_bytes: int, id_bits: int = 1):
        _check_widths(addr_bits, data_bytes)
        self.addr_bits, self.data_bytes, self.id_bits = addr_bits, data_bytes, id_bits
        members: dict[str, Any] = {}
        for ch in ("aw", "ar"):
            members |= {f"{ch}id": Out(id_bits), f"{ch}addr": Out(addr_bits), f"{ch}len": Out(8),
                        f"{ch}size": Out(3), f"{ch}burst": Out(2), f"{ch}valid": Out(1), f"{ch}ready": In(1)}
        members |= {"wdata": Out(8 * data_bytes), "wstrb": Out(data_bytes), "wlast": Out(1),
                    "wvalid": Out(1), "wready": In(1),
                    "bid": In(id_bits), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
                    "rid": In(id_bits), "rdata": In(8 * data_bytes), "rresp": In(2), "rlast": In(1),
                    "rvalid": In(1), "rready": Out(1)}
        super().__init__(members)


class Axi4LiteSignature(wiring.Signature):
    """An AXI4-Lite master port (single-beat transfers, no IDs).

    Parameters
    ----------
    addr_bits : byte address width (bits)
    data_bytes : data width (bytes), 4 or 8 by the AXI4-Lite rules
    """

    def __init__(self, *, addr_bits: int, data_bytes: int = 4):
        _check_widths(addr_bits, data_bytes)
        if data_bytes not in (4, 8):
            raise ValueError(f"data_bytes {data_bytes!r}: AXI4-Lite is 4 or 8 bytes wide")
        self.addr_bits, self.data_bytes = addr_bits, data_bytes
        super().__init__({
            "awaddr": Out(addr_bits), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(8 * data_bytes), "wstrb": Out(data_bytes), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_bits), "arvalid": Out(1), "arready": In(1),
            "rdata": In(8 * data_bytes), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })


def _is_axi(signature: Any) -> bool:
    unflipped = signature.flip() if isinstance(signature, wiring.FlippedSignature) else signature
    return isinstance(unflipped, (Axi4Signature, Axi4LiteSignature))


def verilog_ports(component: wiring.Component) -> dict[str, tuple[Any, Any]]:
    """The ``ports=`` of ``amaranth.back.verilog.convert`` for ``component``: Amaranth's
    ``a__b`` names, except that the members of a top-level AXI port join with one underscore
    (``m_axi_awaddr``), the names AXI verification IP binds to."""
    ports = {}
    members = component.signature.members
    for path, _member, value in component.signature.flatten(component):
        top = members[path[0]]
        sep = "_" if len(path) == 2 and top.is_signature and _is_axi(top.signature) else "__"
        value = value.as_value() if hasattr(value, "as_value") else value
        ports[sep.join(map(str, path))] = (value, None)  # direction: Amaranth infers it from the drivers
    return ports


@dataclass(frozen=True, kw_only=True)
class Register:
    """One 32-bit register of :class:`AxiLiteRegisters`.

    ``kind``: ``"rw"`` (software writes, the design reads ``regs.<name>``), ``"ro"`` (the design
    drives ``regs.<name>``, software reads) or ``"pulse"`` (a write raises ``regs.<name>``, one
    bit, for one cycle; reads return 0).
    """

    name: str
    kind: str = "rw"
    reset: int = 0

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"register name {self.name!r}: must be an identifier")
        if self.kind not in ("rw", "ro", "pulse"):
            raise ValueError(f"register kind {self.kind!r}: choose rw, ro or pulse")
        if not 0 <= self.reset < 2**32:
            raise ValueError(f"register reset {self.reset!r}: must fit 32 bits")


class AxiLiteRegisters(wiring.Component):
    """An AXI4-Lite slave over a list of 32-bit registers, register ``i`` at byte address ``4 i``.

    A write is taken when address and data are both valid (``awready`` and ``wready`` rise
    together) and answered OKAY the next cycle; byte strobes apply to ``rw`` registers. A read is
    answered the cycle after its address. Unmapped addresses read 0 and ignore writes.

    Ports: ``s_axil`` (the slave), ``regs`` (one member per register, see :class:`Register`).
    """

    def __init__(self, registers: list[Register], *, addr_bits: int = 8):
        names = [r.name for r in registers]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"registers {names!r}: need one or more distinct names")
        if 4 * len(registers) > 2**addr_bits:
            raise ValueError(f"addr_bits {addr_bits!r}: too few for {len(registers)} registers")
        self.registers = list(registers)
        self.addr_bits = addr_bits
        regs = {r.name: (In(32) if r.kind == "ro" else Out(1 if r.kind == "pulse" else 32)) for r in registers}
        super().__init__({"s_axil": In(Axi4LiteSignature(addr_bits=addr_bits)),
                          "regs": Out(wiring.Signature(regs))})

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.s_axil
        index_bits = max(1, (len(self.registers) - 1).bit_length())

        def index(addr):
            return addr[2:2 + index_bits]

        def mapped(addr):
            return (addr >> 2) < len(self.registers)

        storage = {r.name: Signal(32, init=r.reset, name=f"reg_{r.name}") for r in self.registers if r.kind == "rw"}
        for name, sig in storage.items():
            m.d.comb += getattr(self.regs, name).eq(sig)

        # Write: address and data together, then one OKAY response.
        take_write = bus.awvalid & bus.wvalid & ~bus.bvalid
        m.d.comb += [bus.awready.eq(take_write), bus.wready.eq(take_write), bus.bresp.eq(RESP_OKAY)]
        with m.If(take_write):
            m.d.sync += bus.bvalid.eq(1)
        with m.Elif(bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        strobe_mask = Signal(32)
        m.d.comb += strobe_mask.eq(sum((bus.wstrb[b].replicate(8) << (8 * b) for b in range(4)), start=0)[:32])
        for i, reg in enumerate(self.registers):
            hit = take_write & mapped(bus.awaddr) & (index(bus.awaddr) == i)
            if reg.kind == "rw":
                sig = storage[reg.name]
                with m.If(hit):
                    m.d.sync += sig.eq((sig & ~strobe_mask) | (bus.wdata[:32] & strobe_mask))
            elif reg.kind == "pulse":
                m.d.sync += getattr(self.regs, reg.name).eq(hit)

        # Read: the data the cycle after the address.
        take_read = bus.arvalid & ~bus.rvalid
        m.d.comb += [bus.arready.eq(take_read), bus.rresp.eq(RESP_OKAY)]
        with m.If(take_read):
            m.d.sync += bus.rvalid.eq(1)
            m.d.sync += bus.rdata.eq(0)
            for i, reg in enumerate(self.registers):
                value = 0 if reg.kind == "pulse" else (storage.get(reg.name) if reg.kind == "rw"
                                                        else getattr(self.regs, reg.name))
                with m.If(mapped(bus.araddr) & (index(bus.araddr) == i)):
                    m.d.sync += bus.rdata.eq(value)
        with m.Elif(bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        return m
