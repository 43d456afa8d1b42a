"""Design inputs: the accelerator a design point describes, validated, read from and written to TOML."""

from .dump import dumps
from .point import (Compute, DesignPoint, Memory, Pim, Sram, System, design_from_dict, design_named, load_design,
                    shipped_designs)

__all__ = ["Compute", "DesignPoint", "Memory", "Pim", "Sram", "System", "design_from_dict", "design_named", "dumps",
           "load_design", "shipped_designs"]
