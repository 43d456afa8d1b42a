"""Interconnect presets: the link figures a system of chips defaults to, each with its source.

A preset gives one link's bandwidth per direction (GB/s), the links per chip, the topology the
chips are joined in, the latency of one collective step (ns) and the energy per bit sent (pJ).
The collective algorithms that use them are in :mod:`peforge.dse.cost.collectives`.

| preset | GB/s per link per direction | links | topology | step latency | pJ/bit |
|---|---|---|---|---|---|
| nvlink4 (H100 SXM, HGX NVSwitch) | 25 | 18 (450 GB/s) | fully_connected | 1 us | 5.5 |
| nvlink3 (A100 SXM, DGX NVSwitch) | 25 | 12 (300 GB/s) | fully_connected | 1 us | 5.5 |
| pcie5 (x16 cards behind a switch) | 63 | 1 | fully_connected | 2 us | 5.5 |
| tpu_ici (2D-torus TPU, 4 ports) | 50 | 4 | torus2d | 1 us | 5.5 |

The latencies are what a collective's step costs end to end (software and switch included), the
upper ends of secondary sources' "1-2 us" (NVLink), "2-5 us" (PCIe) and "sub-microsecond" (ICI
neighbours) where no vendor figure is published; the energy is the off-package SerDes class
figure for all four (no vendor publishes NVLink 4's or ICI's).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TOPOLOGIES", "LINK_PRESETS", "LinkPreset"]

TOPOLOGIES = ("ring", "fully_connected", "torus2d")


@dataclass(frozen=True, kw_only=True)
class LinkPreset:
    """A named interconnect's defaults: one link's bandwidth per direction (GB/s), links per chip,
    topology, latency of one collective step (ns), energy (pJ/bit), and their source."""

    gb_per_s: float
    links: int
    topology: str
    latency_ns: float
    pj_per_bit: float
    source: str

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"LinkPreset.topology={self.topology!r}; allowed: {', '.join(TOPOLOGIES)}")


_SERDES_PJ = ("5.5 pJ/bit: off-package SerDes, against NVLink-C2C's 1.3 pJ/bit (NVIDIA, ISSCC 2023 paper 9.3 "
              "'NVLink-C2C: A Coherent Off Package Chip-to-Chip Interconnect', as summarized by besthub.dev, "
              "'Why Nvidia's NVLink C2C Is Redefining GPU-CPU Interconnects')")
LINK_PRESETS: dict[str, LinkPreset] = {
    # NVLink 4 (H100 SXM): 18 links, 900 GB/s bidirectional per GPU = 25 GB/s per direction per link;
    # HGX H100 joins 8 GPUs through NVSwitch: any pair at full rate.
    "nvlink4": LinkPreset(gb_per_s=25.0, links=18, topology="fully_connected", latency_ns=1000.0, pj_per_bit=5.5,
                          source="NVIDIA H100 datasheet (18 NVLink 4 links, 900 GB/s); alpha-one-index.github.io "
                                 "'networking-interconnects' (50 GB/s bidirectional per link); ~1-2 us NVLink "
                                 "latency: fridayswithfaraday.com 'gpu-hw-nvlink-nvswitch-interconnect'; "
                                 + _SERDES_PJ),
    # NVLink 3 (A100 SXM): 12 links, 600 GB/s bidirectional; DGX A100: 6 NVSwitches.
    "nvlink3": LinkPreset(gb_per_s=25.0, links=12, topology="fully_connected", latency_ns=1000.0, pj_per_bit=5.5,
                          source="NVIDIA A100 datasheet (12 NVLink 3 links, 600 GB/s); alpha-one-index.github.io "
                                 "'networking-interconnects'; latency and energy as nvlink4"),
    # PCIe 5.0 x16: 32 GT/s x 16 lanes, 128b/130b = 63 GB/s per direction; cards behind a PCIe switch.
    "pcie5": LinkPreset(gb_per_s=63.0, links=1, topology="fully_connected", latency_ns=2000.0, pj_per_bit=5.5,
                        source="PCI-SIG PCIe 5.0 (32 GT/s per lane, 128b/130b: 3.94 GB/s per lane per direction; "
                               "hpc-notes.pages.dev 'reference/pcie'); ~2-5 us: fridayswithfaraday.com; "
                               + _SERDES_PJ),
    # TPU ICI: 400 Gb/s per direction per link (v4); e-class chips have 4 ports on a 2D torus.
    "tpu_ici": LinkPreset(gb_per_s=50.0, links=4, topology="torus2d", latency_ns=1000.0, pj_per_bit=5.5,
                          source="glennklockwood.com 'TPUv4' (ICI 400G per direction); brendanjameslynskey.github."
                                 "io 'Google_TPU_10_ICI_and_OCS' (4 ICI ports per chip on the 2D-torus e-class, "
                                 "sub-microsecond between neighbours); " + _SERDES_PJ),
}
