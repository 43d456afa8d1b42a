"""A design point: the accelerator the cost model prices, in validated groups, loadable from TOML.

A design file has one table per group::

    name = "edge"
    tech = "45nm"
    batch = 1

    [compute]
    pe = "bitserial"
    rows = 32
    cols = 32
    dataflow = "ws"
    clock_mhz = 800.0
    [compute.pe_params]      # the PE's own parameters (see `peforge blocks`)
    k = 2

    [sram]
    weight_kib = 512
    [memory]
    technology = "LPDDR5"
    units = 4
    [pim]
    mode = "none"

Every key is checked before anything is computed; a bad one raises ``ValueError`` with one
line naming the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...hw import params
from ...hw.params import param, validate
from ...hw.pe import PE_KINDS, pe_kind
from ...hw.pim import DramTiming, PimChannelConfig
from ...hw.systolic import SystolicConfig
from .links import LINK_PRESETS, TOPOLOGIES
from ...files import read_input
from ...models.quant import DEFAULT_SCHEME, parse_scheme
from ...sim import tech



def _choices(cls: type, name: str) -> tuple[Any, ...]:
    """The allowed values of field ``name`` of a hw block config (declared there, once)."""
    return params.spec_of(cls, name).choices


@dataclass(frozen=True, kw_only=True)
class Compute:
    """The systolic compute: ``arrays`` arrays of ``rows x cols`` PEs."""

    pe: str = param(next(iter(PE_KINDS)), "processing element in every cell (a PE kind of peforge.hw.pe)",
                    choices=tuple(PE_KINDS))
    rows: int = param(128, "array rows (PEs)", low=1, high=1024)
    cols: int = param(128, "array columns (PEs)", low=1, high=1024)
    dataflow: str = param("ws", "ws: weight-stationary, os: output-stationary",
                          choices=_choices(SystolicConfig, "dataflow"))
    arrays: int = param(1, "systolic arrays sharing the buffers: products side by side, or one product split "
                        "over them (the mapper chooses)", low=1, high=4096)
    clock_mhz: float = param(500.0, "array clock (MHz); must not exceed the PE's characterized Fmax",
                             low=1.0, high=10000.0)
    vector_lanes: int = param(0, "lanes of the vector unit (elementwise ops, softmax, norms, partial-sum "
                              "additions), one op per lane per cycle; 0: cols x arrays", low=0, high=1 << 20)
    fused_attention: bool = param(False, "the sequencer can fuse attention FlashAttention-style (scores stay on "
                                  "chip); the mapper takes it where it is faster")
    pe_params: tuple[tuple[str, Any], ...] = ()  # the PE config's fields, as (name, value) pairs

    def __post_init__(self) -> None:
        validate(self)
        self.pe_config  # builds and validates it

    @functools.cached_property
    def pe_config(self) -> Any:
        """The PE's validated config (built once)."""
        config = pe_kind(self.pe).config
        known = [f.name for f, _ in params.specs(config)]
        for name, _ in self.pe_params:
            if name not in known:
                raise ValueError(f"Compute.pe_params.{name}: not a parameter of the {self.pe} PE; "
                                 f"allowed: {', '.join(known)}")
        return config(**dict(self.pe_params))

    @property
    def lanes_of_vector_unit(self) -> int:
        """The vector unit's lanes (``vector_lanes``, or by default one per array column)."""
        return self.vector_lanes or self.cols * self.arrays


@dataclass(frozen=True, kw_only=True)
class Sram:
    """On-chip buffers (KiB): weights, activations, outputs/partial sums."""

    weight_kib: int = param(1024, "weight buffer (KiB)", low=1, high=1 << 20)
    activation_kib: int = param(1024, "activation buffer (KiB)", low=1, high=1 << 20)
    output_kib: int = param(512, "output / partial-sum buffer (KiB)", low=1, high=1 << 20)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class Memory:
    """Off-chip memory: ``units`` stacks (HBM) or channels (LPDDR/DDR) of ``technology``."""

    technology: str = param("HBM3", "memory technology: one of the design's tech preset's memories "
                            "(built-in presets: HBM2, HBM3, LPDDR5, DDR4, DDR5)")
    units: int = param(1, "stacks (HBM) or channels (LPDDR, DDR)", low=1, high=64)
    capacity_gib: float = param(0.0, "capacity of ONE unit (stack / channel), GiB; the design holds units x "
                                "this (0: the technology's per-unit capacity)", low=0.0, high=4096.0)
    efficiency: float = param(0.0, "fraction of the datasheet bandwidth sustained on streaming reads, "
                              "0 < e <= 1 (0: the technology's default)", low=0.0, high=1.0)
    gb_per_s: float = param(0.0, "datasheet bandwidth of ONE unit, GB/s: sets a unit's bandwidth directly "
                            "(0: the technology's)", low=0.0, high=100000.0)

    def __post_init__(self) -> None:
        validate(self)


def _bank_param(name: str, default: Any) -> Any:
    """A PIM bank parameter as the block declares it (same range and help), with the cost model's default."""
    return dataclasses.field(default=default, metadata=PimChannelConfig.__dataclass_fields__[name].metadata)


def _timing_param(name: str) -> Any:
    """A DRAM timing in ns as :class:`peforge.hw.pim.DramTiming` declares it."""
    spec = DramTiming.__dataclass_fields__[name]
    return dataclasses.field(default=spec.default, metadata=spec.metadata)


def _cycles() -> Any:
    """A bank timing in cycles: derived from its ``_ns`` key and ``clock_mhz``, not set."""
    return dataclasses.field(default=1, init=False)


@dataclass(frozen=True, kw_only=True)
class Pim(PimChannelConfig):
    """Processing in memory: MAC lanes beside the DRAM banks (HBM-PIM, AiM, NeuPIMs).

    The bank and channel parameters are the PIM channel block's own (:class:`peforge.hw.pim.
    PimChannelConfig`: one declaration, one range set, one ``t_ccd`` rule); the cost model adds
    what the hardware supports (``mode``), which operators may run on it (``ops``), how many
    channels there are and their clock. DRAM timing is the device's, in ns (``t_rcd_ns``, ...):
    the bank's cycle counts ``t_rcd``, ``t_rp``, ``t_ras``, ``t_ccd`` are derived at
    ``clock_mhz`` by :func:`peforge.hw.pim.dram_cycles` (ceiling), the conversion the RTL
    configs use too. Defaults are an HBM channel: 16 banks of 32768 rows of 2 KB (1024 16-bit
    words: an HBM2 page in legacy mode, JESD235), NeuPIMs' HBM2 timing.
    """

    mode: str = param("none", "what the hardware supports: none | blocked (the NPU waits for PIM) | concurrent "
                      "(NeuPIMs sub-batch interleaving; needs dual_row_buffer); each decode step the runtime "
                      "picks the fastest schedule the mode allows", choices=("none", "blocked", "concurrent"))
    ops: str = param("attention", "operators PIM may run: attention (decode score / context GEMVs) | fc "
                     "(batch-1 weight GEMVs) | attention+fc", choices=("attention", "fc", "attention+fc"))
    channels: int = param(32, "PIM channels: channels of the design's memory (at most its units x channels "
                          "per unit)", low=1, high=1024)
    clock_mhz: float = param(1000.0, "PIM command clock (MHz); the ns timings are run in its cycles",
                             low=1.0, high=5000.0)
    banks: int = _bank_param("banks", 16)
    rows: int = _bank_param("rows", 32768)
    cols: int = _bank_param("cols", 1024)
    t_rcd_ns: float = _timing_param("t_rcd_ns")
    t_rp_ns: float = _timing_param("t_rp_ns")
    t_ras_ns: float = _timing_param("t_ras_ns")
    t_ccd_ns: float = _timing_param("t_ccd_ns")
    t_rcd: int = _cycles()
    t_rp: int = _cycles()
    t_ras: int = _cycles()
    t_ccd: int = _cycles()

    def __post_init__(self) -> None:
        validate(self)  # the ns keys and the clock, before they are converted
        for name, cycles in self.timing.cycles(self.clock_mhz, owner=type(self).__name__).items():
            object.__setattr__(self, name, cycles)
        super().__post_init__()
        if self.mode == "concurrent" and not self.dual_row_buffer:
            raise ValueError("Pim.mode='concurrent' needs dual_row_buffer = true (the NPU's reads proceed on one "
                             "row buffer while the lanes compute on the other); allowed with false: none, blocked")

    @property
    def timing(self) -> DramTiming:
        """The DRAM's timing in ns."""
        return DramTiming(t_rcd_ns=self.t_rcd_ns, t_rp_ns=self.t_rp_ns, t_ras_ns=self.t_ras_ns,
                          t_ccd_ns=self.t_ccd_ns)


@dataclass(frozen=True, kw_only=True)
class System:
    """Chips running one model together (:mod:`peforge.dse.cost.system`): ``tp`` tensor-parallel
    (Megatron: heads and MLP columns split), ``pp`` pipeline stages, ``ep`` expert-parallel groups
    (MoE models only), ``tp x pp x ep == chips``; joined by links of ``interconnect`` (each link
    figure 0 or "preset": the preset's, :data:`peforge.dse.cost.collectives.LINK_PRESETS`)."""

    chips: int = param(1, "chips of the system, each the design's compute, SRAM and memory", low=1, high=4096)
    tp: int = param(1, "tensor-parallel degree: attention heads and MLP columns split over tp chips", low=1,
                    high=4096)
    pp: int = param(1, "pipeline stages: the layers split into pp consecutive stages", low=1, high=4096)
    ep: int = param(1, "expert-parallel degree (MoE models): experts spread over ep chip groups, attention "
                    "data-parallel over them", low=1, high=4096)
    micro_batches: int = param(1, "prefill micro-batches pipelined through the stages (pp > 1; at most the "
                               "batch)", low=1, high=4096)
    interconnect: str = param("nvlink4", "link preset the other link keys default to", choices=tuple(LINK_PRESETS))
    link_gb_per_s: float = param(0.0, "bandwidth of one link per direction, GB/s (0: the preset's)", low=0.0,
                                 high=1e5)
    links: int = param(0, "links per chip (0: the preset's)", low=0, high=1024)
    topology: str = param("preset", "preset (the interconnect's) | ring | fully_connected (a switch or full "
                          "mesh) | torus2d", choices=("preset", *TOPOLOGIES))
    link_latency_ns: float = param(0.0, "latency of one collective step over the links, ns (0: the preset's)",
                                   low=0.0, high=1e7)
    link_pj_per_bit: float = param(0.0, "link energy, pJ per bit sent (0: the preset's)", low=0.0, high=1e4)

    def __post_init__(self) -> None:
        validate(self)
        if self.tp * self.pp * self.ep != self.chips:
            raise ValueError(f"System.chips={self.chips} but tp x pp x ep = {self.tp} x {self.pp} x {self.ep} = "
                             f"{self.tp * self.pp * self.ep}; allowed: degrees whose product is chips")

    def link(self) -> dict[str, Any]:
        """The link figures after defaults: ``gb_per_s`` (one link, per direction), ``links``,
        ``topology``, ``latency_ns``, ``pj_per_bit``."""
        preset = LINK_PRESETS[self.interconnect]
        return {"gb_per_s": self.link_gb_per_s or preset.gb_per_s, "links": self.links or preset.links,
                "topology": preset.topology if self.topology == "preset" else self.topology,
                "latency_ns": self.link_latency_ns or preset.latency_ns,
                "pj_per_bit": self.link_pj_per_bit or preset.pj_per_bit}


@dataclass(frozen=True, kw_only=True)
class DesignPoint:
    """One accelerator: compute, SRAM, off-chip memory, PIM, technology, batch."""

    name: str = "design"
    tech: str = "45nm"
    batch: int = param(1, "sequences served together (decode batch)", low=1, high=4096)
    quant: str = param("", "quantization scheme the design runs, e.g. w4a8kv8 or wbf16abf16kvbf16 (empty: the "
                       "workload's); its formats must be ones the PE computes")
    compute: Compute = field(default_factory=Compute)
    sram: Sram = field(default_factory=Sram)
    memory: Memory = field(default_factory=Memory)
    pim: Pim = field(default_factory=Pim)
    system: System = field(default_factory=System)

    def __post_init__(self) -> None:
        validate(self)
        tech.memory_of(tech.resolve(self.tech), self.memory.technology)  # both named in the error
        if not isinstance(self.quant, str):
            raise ValueError(f"quant must be a string, not {self.quant!r}")
        if self.quant:
            try:
                parse_scheme(self.quant)
            except ValueError as error:
                raise ValueError(f"quant: {error}") from None

    def run_quant(self, requested: str | None = None) -> str:
        """The scheme a run of this design uses: ``requested`` (the user's, checked by whoever parses
        it: an empty one is an error, not a default), else the design's own, else
        :data:`peforge.models.quant.DEFAULT_SCHEME`."""
        if requested is not None:
            return requested
        return self.quant or DEFAULT_SCHEME

    @property
    def preset(self) -> tech.TechPreset:
        """The design's technology preset (a built-in name or a ``.toml`` file)."""
        return tech.resolve(self.tech)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "tech": self.tech, "batch": self.batch}
        if self.quant:
            out["quant"] = self.quant
        for group in _GROUPS:
            if group == "system" and self.system == System():
                continue  # one chip: its design file has no [system] table
            out[group] = params.as_dict(getattr(self, group))
        out["compute"]["pe_params"] = dict(self.compute.pe_params)
        return out


_GROUPS = {"compute": Compute, "sram": Sram, "memory": Memory, "pim": Pim, "system": System}
SCALAR_KEYS = tuple(f.name for f in dataclasses.fields(DesignPoint) if f.name not in _GROUPS)  # name, tech, ...


def _coerce(cls: type, key: str, value: Any) -> Any:
    """TOML ints where a float is declared are fine; everything else must match."""
    kinds = {f.name: type(f.default) for f in dataclasses.fields(cls) if "spec" in f.metadata}
    if kinds.get(key) is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _build(cls: type, table: Any, where: str, prefix: str) -> Any:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: {prefix.rstrip('.')} must be a table")
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]  # not the derived ones (Pim.t_rcd)
    values = {}
    for key, value in table.items():
        if key not in allowed:
            raise ValueError(f"{where}: unknown key '{prefix}{key}'; allowed: {', '.join(allowed)}")
        values[key] = _coerce(cls, key, value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: [{prefix.rstrip('.')}] {error}") from None


def design_from_dict(data: dict[str, Any], where: str = "design") -> DesignPoint:
    """A validated :class:`DesignPoint` from a parsed design table (``where`` names it in errors)."""
    top = {*SCALAR_KEYS, *_GROUPS}
    for key in data:
        if key not in top:
            raise ValueError(f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(top))}")
    groups: dict[str, Any] = {}
    for group, cls in _GROUPS.items():
        table = dict(data.get(group, {})) if isinstance(data.get(group, {}), dict) else data[group]
        if group == "compute" and isinstance(table, dict) and "pe_params" in table:
            pe_params = table["pe_params"]
            if not isinstance(pe_params, dict):
                raise ValueError(f"{where}: compute.pe_params must be a table")
            table["pe_params"] = tuple(sorted(pe_params.items()))
        groups[group] = _build(cls, table, where, f"{group}.")
    for key, kind in (("name", str), ("tech", str), ("quant", str)):
        if key in data and not isinstance(data[key], kind):
            raise ValueError(f"{where}: {key} must be a string, not {data[key]!r}")
    try:
        return DesignPoint(name=data.get("name", "design"), tech=data.get("tech", "45nm"),
                           batch=data.get("batch", 1), quant=data.get("quant", ""), **groups)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def load_design(path: Path | str) -> DesignPoint:
    """Read and validate a design TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(read_input(path, "design file"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    if "compute" not in data:  # an empty or unrelated file is not a design of defaults
        raise ValueError(f"{path}: no [compute] table; a design file names at least its compute "
                         f"(pe, rows, cols), as the shipped ones in dse/designs/ do")
    data.setdefault("name", path.stem)  # errors from the cost model then name the file
    return design_from_dict(data, str(path))


def shipped_designs() -> dict[str, Path]:
    """The design files that ship with peforge (``dse/designs/*.toml``), by name."""
    from importlib import resources

    folder = resources.files("peforge.dse") / "designs"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def design_named(text: str) -> DesignPoint:
    """A shipped design by name, or a design TOML file by path."""
    designs = shipped_designs()
    if text in designs:
        return load_design(designs[text])
    if not text.endswith(".toml"):
        raise ValueError(f"--design {text!r}: not a shipped design ({', '.join(sorted(designs))}) "
                         "nor a .toml file")
    return load_design(text)
