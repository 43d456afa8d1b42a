"""Technology presets: the constants that turn gate counts and toggles into µm², pJ and MHz.

Every constant carries its source; figures marked ``approx`` are estimates or derivations
(the derivation is spelled out in the source text) and should be replaced by better data
when it is at hand. Users add presets of their own from a TOML file, in the layout
:func:`load_toml` documents; :func:`resolve` turns a name or a file into a preset.

Units: areas in µm², energies in pJ, delays in ps, bandwidths in GB/s (10⁹ bytes per
second), sizes in bytes.
"""

from __future__ import annotations

import bisect
import functools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import read_input


@dataclass(frozen=True)
class Sourced:
    """A number with its unit and where it comes from."""

    value: float
    unit: str
    source: str
    approx: bool = False


@dataclass(frozen=True)
class Memory:
    """An off-chip (or in-memory) interface: access energy, bandwidth and capacity.

    Parameters
    ----------
    pj_per_bit : energy of moving one bit across the interface (pJ/bit)
    gb_per_s : datasheet (peak) bandwidth of one unit (GB/s): one stack, one channel or one
        DIMM, see ``unit``
    unit : what one unit of bandwidth is
    capacity_gib : storage of one unit (GiB, 2³⁰ bytes); ``inf``: not limited (a user preset
        that gives none)
    efficiency : the fraction of ``gb_per_s`` sustained on long streaming reads (0 < e <= 1)
    channels : independent channels in one unit (what PIM channels are counted in); ``None``: not
        known (a user preset that gives none: PIM channels are then not checked)
    """

    pj_per_bit: Sourced
    gb_per_s: Sourced
    unit: str
    capacity_gib: Sourced
    efficiency: Sourced
    channels: Sourced | None = None

    @property
    def sustained_gb_per_s(self) -> float:
        """Bandwidth of one unit on streaming reads (GB/s): ``gb_per_s x efficiency``."""
        return self.gb_per_s.value * self.efficiency.value


@dataclass(frozen=True)
class TechPreset:
    """Constants of one technology node.

    Parameters
    ----------
    name : preset name (``--tech``)
    node_nm : feature size (nm), informational
    um2_per_nand2 : area of one NAND2 gate equivalent (µm²)
    pj_per_gate_toggle : energy of one output toggle of a NAND2-equivalent gate, wire load
        included (pJ)
    ps_per_gate_level : delay of one level of 2-input logic in a synthesized path (ps)
    ps_flop_overhead : clock-to-Q plus setup time of a flip-flop (ps)
    pj_per_flop_clock : clock-pin energy of one flip-flop per cycle, data not toggling (pJ)
    sram_um2_per_bit : SRAM macro area per bit, periphery included (µm²/bit)
    sram_read_pj_per_bit : ``(size_bytes, pJ/bit)`` points of an SRAM read, interpolated
        log-log by :meth:`sram_pj_per_bit`
    memories : off-chip memory technologies by name
    pim_internal_pj_per_bit : energy of a bank-level access that never leaves the bank
        (PIM operand fetch), pJ/bit
    """

    name: str
    node_nm: float
    um2_per_nand2: Sourced
    pj_per_gate_toggle: Sourced
    ps_per_gate_level: Sourced
    ps_flop_overhead: Sourced
    pj_per_flop_clock: Sourced
    sram_um2_per_bit: Sourced
    sram_read_pj_per_bit: tuple[tuple[int, float], ...]
    sram_read_source: str
    memories: dict[str, Memory] = field(default_factory=dict)
    pim_internal_pj_per_bit: Sourced | None = None

    def area_um2(self, nand2_eq: float) -> float:
        """Cell area (µm²) of ``nand2_eq`` NAND2-equivalent gates (no placement utilisation)."""
        return nand2_eq * self.um2_per_nand2.value

    def fmax_mhz(self, depth_levels: int) -> float:
        """Highest clock (MHz) of a path of ``depth_levels`` gate levels between flip-flops."""
        period_ps = depth_levels * self.ps_per_gate_level.value + self.ps_flop_overhead.value
        return 1e6 / period_ps

    def sram_pj_per_bit(self, size_bytes: float) -> float:
        """Read energy (pJ/bit) of an SRAM of ``size_bytes``, log-log interpolated between the
        preset's points and extrapolated along the nearest segment outside them."""
        if size_bytes <= 0:
            raise ValueError(f"SRAM size must be positive, not {size_bytes!r}")
        points = self.sram_read_pj_per_bit
        if len(points) == 1:
            return points[0][1]
        sizes = [s for s, _ in points]
        i = min(max(bisect.bisect_left(sizes, size_bytes), 1), len(points) - 1)
        (s0, e0), (s1, e1) = points[i - 1], points[i]
        t = (math.log(size_bytes) - math.log(s0)) / (math.log(s1) - math.log(s0))
        return math.exp(math.log(e0) + t * (math.log(e1) - math.log(e0)))

    def sram_area_um2(self, size_bytes: float) -> float:
        """Area (µm²) of an SRAM of ``size_bytes`` (a fraction for a size not a whole number of bytes)."""
        return 8 * size_bytes * self.sram_um2_per_bit.value

    def constants(self) -> dict[str, Sourced]:
        """The scalar constants by name, for records that name what they used."""
        out = {k: getattr(self, k) for k in _SCALARS}
        if self.pim_internal_pj_per_bit is not None:
            out["pim_internal_pj_per_bit"] = self.pim_internal_pj_per_bit
        return out


_SCALARS = ("um2_per_nand2", "pj_per_gate_toggle", "ps_per_gate_level", "ps_flop_overhead",
            "pj_per_flop_clock", "sram_um2_per_bit")
_UNITS = {"um2_per_nand2": "µm²", "pj_per_gate_toggle": "pJ", "ps_per_gate_level": "ps",
          "ps_flop_overhead": "ps", "pj_per_flop_clock": "pJ", "sram_um2_per_bit": "µm²/bit",
          "pim_internal_pj_per_bit": "pJ/bit"}

# --- sources ---------------------------------------------------------------------------------
_NANGATE = ("NanGate FreePDK45 Open Cell Library (PDKv1_3_v2010_12): NAND2_X1 = 0.798 µm² "
            "(0.57 µm × 1.4 µm row)")
_HOROWITZ = 'M. Horowitz, "Computing\'s Energy Problem", ISSCC 2014 (45 nm, 0.9 V)'
# Published 45 nm arithmetic (Horowitz, ISSCC 2014): operation -> (pJ, µm²). Anchors benchmarks
# compare characterized PEs with; the energy model itself uses only the two of _TOGGLE_45.
HOROWITZ_45NM = {
    "int8 add": (0.03, 36), "int32 add": (0.1, 137), "fp16 add": (0.4, 1360), "fp32 add": (0.9, 4184),
    "int8 multiply": (0.2, 282), "int32 multiply": (3.1, 3495), "fp16 multiply": (1.1, 1640),
    "fp32 multiply": (3.7, 7700),
}
_TOGGLE_45 = (_HOROWITZ + ": 8-bit multiply 0.2 pJ in 282 µm² (353 NAND2-eq.), 32-bit add 0.1 pJ in "
              "137 µm² (172 NAND2-eq.); with half the gates toggling per operation both give "
              "≈ 1.1-1.2 fJ per NAND2-eq. toggle (derived)")
_FO4 = ("fan-out-of-4 delay ≈ 0.5 ps per nm of drawn gate length (Ho, Mai, Horowitz, 'The Future "
        "of Wires', Proc. IEEE 2001; 90 nm → 45 ps) → 22 ps at 45 nm; one synthesized 2-input gate "
        "level taken as 1 FO4")
_FLOP = "flip-flop sequencing overhead (clk→Q + setup) ≈ 3 FO4, the usual textbook allowance"
_FLOP_CLK = ("clock-pin load of a D flip-flop ≈ 2 gate inputs switching twice per cycle ≈ 2 NAND2-eq. "
             "toggles (estimate)")
_SRAM_45_AREA = ("Intel 45 nm 6T bit cell 0.346 µm² (Mistry et al., IEDM 2007) at ≈ 60 % array "
                 "efficiency → 0.58 µm²/bit")
_HBM = "O'Connor et al., 'Fine-Grained DRAM', MICRO 2017"
_ASAP7 = ("ASAP7 7 nm predictive PDK (Clark et al., Microelectronics J. 2016), NAND2xp33 liberty "
          "area 0.0875 µm² (7.5-track, 270 nm row)")
_SCALE_7 = ("45 nm value scaled to a 7 nm-class FinFET node at 0.7 V: energy × 0.1, after "
            "Stillmaker & Baas, 'Scaling equations ... from 180 nm to 7 nm', Integration 2017 "
            "(their fitted 45→7 nm energy factors lie near 0.1)")
_SRAM_7_AREA = ("TSMC N7 high-density 6T bit cell 0.027 µm² (Chang et al., ISSCC 2017) at ≈ 60 % "
                "array efficiency → 0.045 µm²/bit")


# Capacities are binary (a 16 Gb die holds 2³⁰ x 16 bits), so "16 GB" stacks are 16 GiB.
_HBM2_CAP = ("JESD235B HBM2: 8-high stack of 8 Gb dies = 8 GiB (Samsung Aquabolt, 2018; A100-40GB "
             "carries 5 such stacks)")
_HBM3_CAP = ("SK hynix HBM3 (2021): 8-high stack of 16 Gb dies = 16 GiB (12-high: 24 GiB; set "
             "memory.capacity_gib = 24 for it); H100 SXM: 80 GB on 5 stacks")
_LPDDR5_CAP = ("JESD209-5 LPDDR5 x16 channel with one 16 Gb die (one rank) = 2 GiB; assumption: "
               "two-rank or 32 Gb-die channels hold 4 GiB (set memory.capacity_gib)")
_DIMM_CAP = "one 32 GB RDIMM per 64-bit channel (a common server fill; assumption)"
_HBM_EFF = ("Jia et al., 'Dissecting the NVIDIA Volta GPU Architecture via Microbenchmarking', "
            "arXiv:1804.06826 (2018): V100 HBM2 sustains 750 of 900 GB/s = 0.83")
_HBM3_EFF = ("A100-80GB HBM2e streaming read at 1.80 of 2.04 TB/s = 0.88 (Nsight Compute, NVIDIA "
             "developer forum 2024) and V100 HBM2 0.83 (Jia et al. 2018): 0.85 taken for HBM3")
_DDR_EFF = ("TI SPRAD45A (AM62x, 2022) STREAM on DDR4-1600: copy 77 %, add 78 %, triad 78 % of "
            "the wire rate: 0.75 taken")
_LPDDR_EFF = ("TI SPRACV1B (AM64x, 2022) STREAM on LPDDR4-1600: 67-71 % of the wire rate; 0.70 "
              "taken for LPDDR5 (same controller class, no LPDDR5 measurement found)")


def _memories() -> dict[str, Memory]:
    """Off-chip memories; node-independent (the interface, not the logic, sets the energy)."""
    return {
        "HBM2": Memory(Sourced(3.9, "pJ/bit", _HBM, approx=True),
                       Sourced(256.0, "GB/s", "JESD235 HBM2: 2 Gb/s × 1024 bits per stack"), "stack",
                       Sourced(8.0, "GiB", _HBM2_CAP), Sourced(0.83, "fraction", _HBM_EFF),
                       Sourced(8, "channels", "JESD235: 8 channels of 128 bits per stack")),
        "HBM3": Memory(Sourced(3.9, "pJ/bit", "taken equal to HBM2 (no better public figure found)",
                               approx=True),
                       Sourced(819.0, "GB/s", "JESD238 HBM3: 6.4 Gb/s × 1024 bits per stack"), "stack",
                       Sourced(16.0, "GiB", _HBM3_CAP), Sourced(0.85, "fraction", _HBM3_EFF, approx=True),
                       Sourced(16, "channels", "JESD238: 16 channels of 64 bits per stack")),
        "LPDDR5": Memory(Sourced(4.5, "pJ/bit", "mid-point of 4-5 pJ/bit estimates (TECH_FACTS)", approx=True),
                         Sourced(12.8, "GB/s", "JESD209-5: 6400 MT/s × 16-bit channel"), "channel",
                         Sourced(2.0, "GiB", _LPDDR5_CAP, approx=True),
                         Sourced(0.70, "fraction", _LPDDR_EFF, approx=True),
                         Sourced(1, "channels", "a unit is one 16-bit channel")),
        "DDR4": Memory(Sourced(17.5, "pJ/bit", "mid-point of 15-20 pJ/bit DIMM estimates", approx=True),
                       Sourced(25.6, "GB/s", "DDR4-3200 × 64-bit channel"), "channel",
                       Sourced(32.0, "GiB", _DIMM_CAP, approx=True), Sourced(0.75, "fraction", _DDR_EFF),
                       Sourced(1, "channels", "a unit is one 64-bit channel")),
        "DDR5": Memory(Sourced(15.0, "pJ/bit", "low end of 15-20 pJ/bit DIMM estimates", approx=True),
                       Sourced(38.4, "GB/s", "DDR5-4800 × 64-bit channel"), "channel",
                       Sourced(32.0, "GiB", _DIMM_CAP, approx=True),
                       Sourced(0.75, "fraction", _DDR_EFF + " (DDR4 figure taken for DDR5)", approx=True),
                       Sourced(2, "channels", "JESD79-5: a 64-bit DIMM channel is two 32-bit subchannels")),
    }


_PIM_HBM = Sourced(1.56, "pJ/bit", _HBM + " energy breakdown inside an HBM stack: ACT/PRE 0.11 + cell "
                   "0.44 + column decoder → bank-group mux 1.01; PIM at the bank avoids the global "
                   "I/O (1.23), TSV (0.5) and interposer (0.3) terms")

# 64-bit SRAM reads at 45 nm: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ (Horowitz), per bit:
_SRAM_45 = ((8 * 1024, 10 / 64), (32 * 1024, 20 / 64), (1024 * 1024, 100 / 64))

_BUILT_IN_MEMORIES = _memories()  # what a user preset's memory of the same name defaults to

PRESETS: dict[str, TechPreset] = {
    "45nm": TechPreset(
        name="45nm", node_nm=45,
        um2_per_nand2=Sourced(0.798, "µm²", _NANGATE),
        pj_per_gate_toggle=Sourced(1.15e-3, "pJ", _TOGGLE_45, approx=True),
        ps_per_gate_level=Sourced(22.0, "ps", _FO4, approx=True),
        ps_flop_overhead=Sourced(66.0, "ps", _FLOP, approx=True),
        pj_per_flop_clock=Sourced(2.3e-3, "pJ", _FLOP_CLK, approx=True),
        sram_um2_per_bit=Sourced(0.58, "µm²/bit", _SRAM_45_AREA, approx=True),
        sram_read_pj_per_bit=_SRAM_45,
        sram_read_source=_HOROWITZ + ": 64-bit read of 8 KB / 32 KB / 1 MB = 10 / 20 / 100 pJ",
        memories=_memories(),
        pim_internal_pj_per_bit=_PIM_HBM,
    ),
    "7nm": TechPreset(
        name="7nm", node_nm=7,
        um2_per_nand2=Sourced(0.0875, "µm²", _ASAP7, approx=True),
        pj_per_gate_toggle=Sourced(1.15e-4, "pJ", _SCALE_7, approx=True),
        ps_per_gate_level=Sourced(7.0, "ps", "≈ 1 FO4 at 7 nm; 45 nm delay × 0.3 after Stillmaker & Baas 2017",
                                  approx=True),
        ps_flop_overhead=Sourced(21.0, "ps", _FLOP + " (7 nm FO4)", approx=True),
        pj_per_flop_clock=Sourced(2.3e-4, "pJ", _FLOP_CLK + "; 45 nm × 0.1", approx=True),
        sram_um2_per_bit=Sourced(0.045, "µm²/bit", _SRAM_7_AREA, approx=True),
        sram_read_pj_per_bit=tuple((s, e * 0.1) for s, e in _SRAM_45),
        sram_read_source="45 nm Horowitz figures × 0.1 (" + _SCALE_7 + ")",
        memories=_memories(),
        pim_internal_pj_per_bit=_PIM_HBM,
    ),
}


def preset_named(name: str) -> TechPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown technology {name!r}; known: {', '.join(PRESETS)} "
                         "(or a path to a .toml preset)")
    return PRESETS[name]


def resolve(name_or_path: str | Path | TechPreset) -> TechPreset:
    """A built-in preset by name, or a user preset from a ``.toml`` file: the one place every
    caller (characterization, design points, spaces, the command line) turns a ``tech`` into
    constants. A file is read once per modification time."""
    if isinstance(name_or_path, TechPreset):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml"):
        path = Path(text)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = None  # load_toml names the problem
        return _load_cached(str(path.resolve()) if stamp is not None else text, stamp)
    return preset_named(text)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, stamp: int | None) -> TechPreset:
    return load_toml(Path(path))


def memory_of(preset: TechPreset, technology: str) -> Memory:
    """The off-chip memory ``technology`` of ``preset``; a one-line ``ValueError`` naming both otherwise."""
    if technology not in preset.memories:
        raise ValueError(f"memory.technology={technology!r} is not a memory of tech preset {preset.name!r}; "
                         f"allowed: {', '.join(preset.memories) or 'none (the preset has no [memory] table)'}")
    return preset.memories[technology]


# --- user presets ----------------------------------------------------------------------------

def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {key} must be a positive number, not {value!r}")
    return float(value)


def _table(where: str, data: dict, key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{where}: missing table [{key}]")
    return value


def _check_keys(where: str, table: dict, allowed: set[str], prefix: str = "") -> None:
    for key in table:
        if key not in allowed:
            raise ValueError(f"{where}: unknown key {prefix}{key!r}; allowed: {', '.join(sorted(allowed))}")


def _sourced(where: str, table: dict, key: str, sources: dict, prefix: str) -> Sourced:
    if key not in table:
        raise ValueError(f"{where}: missing key {prefix}{key}")
    source = sources.get(key, "user preset")
    if not isinstance(source, str):
        raise ValueError(f"{where}: sources.{key} must be a string")
    return Sourced(_number(where, prefix + key, table[key]), _UNITS.get(key, ""), source)


def load_toml(path: Path) -> TechPreset:
    """Read a user preset; every problem raises a one-line ``ValueError`` naming file and key.

    Layout (all numbers positive)::

        name = "28nm"
        node_nm = 28
        [logic]      # um2_per_nand2, pj_per_gate_toggle, ps_per_gate_level, ps_flop_overhead, pj_per_flop_clock
        [sram]       # um2_per_bit, read_pj_per_bit = [[size_bytes, pJ/bit], ...]
        [memory.NAME] # pj_per_bit, gb_per_s, unit = "stack" | "channel" | ...,
                      # capacity_gib (per unit, GiB), efficiency (sustained / datasheet, 0 < e <= 1)
        [pim]        # internal_pj_per_bit (optional table)
        [sources]    # any constant name -> where it comes from (optional)

    ``capacity_gib`` and ``efficiency`` are optional: a memory named like a built-in one
    (``HBM3``, ``LPDDR5``, ...) takes the built-in figure, any other has unlimited capacity
    (never checked) and efficiency 1 (the datasheet bandwidth is sustained).
    """
    where = str(path)
    try:
        data = tomllib.loads(read_input(path, "technology preset"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{where}: not valid TOML: {error}") from None
    _check_keys(where, data, {"name", "node_nm", "logic", "sram", "memory", "pim", "sources"})
    name = data.get("name")
    if not isinstance(name, str) or not name or name in PRESETS:
        raise ValueError(f"{where}: name must be a new non-empty string (built-in: {', '.join(PRESETS)}), "
                         f"not {name!r}")
    node = _number(where, "node_nm", data.get("node_nm"))
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise ValueError(f"{where}: sources must be a table")
    logic = _table(where, data, "logic")
    logic_keys = {"um2_per_nand2", "pj_per_gate_toggle", "ps_per_gate_level", "ps_flop_overhead",
                  "pj_per_flop_clock"}
    _check_keys(where, logic, logic_keys, "logic.")
    sram = _table(where, data, "sram")
    _check_keys(where, sram, {"um2_per_bit", "read_pj_per_bit"}, "sram.")
    points = sram.get("read_pj_per_bit")
    if not isinstance(points, list) or not points:
        raise ValueError(f"{where}: sram.read_pj_per_bit must be a list of [size_bytes, pJ/bit] pairs")
    parsed = []
    for point in points:
        if not isinstance(point, list) or len(point) != 2:
            raise ValueError(f"{where}: sram.read_pj_per_bit entry {point!r} is not a [size_bytes, pJ/bit] pair")
        if type(point[0]) is not int:
            raise ValueError(f"{where}: sram.read_pj_per_bit size {point[0]!r} must be a whole number of bytes")
        parsed.append((int(_number(where, "sram.read_pj_per_bit size", point[0])),
                       _number(where, "sram.read_pj_per_bit energy", point[1])))
    parsed.sort()
    if len({s for s, _ in parsed}) != len(parsed):
        raise ValueError(f"{where}: sram.read_pj_per_bit repeats a size")
    memories = {}
    memory_tables = data.get("memory", {})
    if not isinstance(memory_tables, dict):
        raise ValueError(f"{where}: memory must hold tables [memory.NAME]")
    for mem_name, table in memory_tables.items():
        prefix = f"memory.{mem_name}."
        if not isinstance(table, dict):
            raise ValueError(f"{where}: memory.{mem_name} must be a table")
        _check_keys(where, table, {"pj_per_bit", "gb_per_s", "unit", "capacity_gib", "efficiency", "channels"}, prefix)
        for key in ("pj_per_bit", "gb_per_s"):
            if key not in table:
                raise ValueError(f"{where}: missing key {prefix}{key}")
        unit = table.get("unit", "channel")
        if not isinstance(unit, str):
            raise ValueError(f"{where}: {prefix}unit must be a string")
        built_in = _BUILT_IN_MEMORIES.get(mem_name)
        if "capacity_gib" in table:
            capacity = Sourced(_number(where, prefix + "capacity_gib", table["capacity_gib"]), "GiB", "user preset")
        elif built_in is not None:
            capacity = built_in.capacity_gib
        else:
            capacity = Sourced(math.inf, "GiB", "user preset gives no capacity: not checked")
        if "efficiency" in table:
            value = _number(where, prefix + "efficiency", table["efficiency"])
            if value > 1:
                raise ValueError(f"{where}: {prefix}efficiency must be in (0, 1] (sustained over datasheet "
                                 f"bandwidth), not {table['efficiency']!r}")
            efficiency = Sourced(value, "fraction", "user preset")
        elif built_in is not None:
            efficiency = built_in.efficiency
        else:
            efficiency = Sourced(1.0, "fraction", "user preset gives no efficiency: datasheet bandwidth sustained")
        channels = built_in.channels if built_in is not None else None
        if "channels" in table:
            value = table["channels"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}: {prefix}channels must be a whole number >= 1 (channels per unit), "
                                 f"not {value!r}")
            channels = Sourced(value, "channels", "user preset")
        memories[mem_name] = Memory(Sourced(_number(where, prefix + "pj_per_bit", table["pj_per_bit"]), "pJ/bit",
                                            "user preset"),
                                    Sourced(_number(where, prefix + "gb_per_s", table["gb_per_s"]), "GB/s",
                                            "user preset"), unit, capacity, efficiency, channels)
    pim = data.get("pim")
    pim_value = None
    if pim is not None:
        if not isinstance(pim, dict):
            raise ValueError(f"{where}: pim must be a table")
        _check_keys(where, pim, {"internal_pj_per_bit"}, "pim.")
        pim_value = _sourced(where, pim, "internal_pj_per_bit", sources, "pim.")
    return TechPreset(
        name=name, node_nm=node,
        **{key: _sourced(where, logic, key, sources, "logic.") for key in sorted(logic_keys)},
        sram_um2_per_bit=Sourced(_number(where, "sram.um2_per_bit", sram.get("um2_per_bit")), "µm²/bit",
                                 sources.get("sram_um2_per_bit", "user preset")),
        sram_read_pj_per_bit=tuple(parsed),
        sram_read_source=str(sources.get("sram_read_pj_per_bit", "user preset")),
        memories=memories,
        pim_internal_pj_per_bit=pim_value,
    )
