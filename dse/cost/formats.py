"""Which number formats a PE can run, and in how many passes: the cost model's format rule.

A matrix product's operands are a workload's tensors (weights, activations, KV-cache entries,
each in the format its quantization scheme names) and the PE computes in its own formats
(:attr:`~peforge.hw.pe.protocol.PeFigures.a_format` and ``w_format``). The rule:

- an integer tensor on an integer datapath runs in ``ceil(bits / pe_bits)`` bit slices (Bit
  Fusion's composition of narrow units);
- otherwise the tensor runs in one pass when every value of its format is exactly a value of
  the PE's (:func:`peforge.hw.fp.represents`: int8 and FP8 E4M3 on a BF16 PE, int4 on an E4M3
  PE), and a look-up-code format (NF4) runs on a float PE of 16 or more bits, which is what
  its kernels dequantize to;
- anything else cannot run: an INT16 array does not compute FP16, a BF16 array does not
  compute FP16 (3 mantissa bits short) and an E4M3 array does not compute INT8. The design is
  rejected with one line naming what the PE runs.
"""

from __future__ import annotations

import functools

from ...hw.fp import float_format, int_bits, represents
from ...models.quant import FORMATS
from ..design.point import DesignPoint

ROLES = (("activation", "a_format"), ("weight", "w_format"), ("kv", "w_format"))


@functools.lru_cache(maxsize=None)
def passes(pe_format: str, tensor_format: str) -> int | None:
    """Passes of a tensor in ``tensor_format`` (a :data:`peforge.models.quant.FORMATS` name) on a
    datapath computing ``pe_format``; ``None``: it cannot run there. Cached: sweeps ask it of
    every design point, and the exact representability check is slow."""
    pe_int, tensor_int = int_bits(pe_format), int_bits(tensor_format)
    if pe_int is not None and tensor_int is not None:
        return -(-tensor_int // pe_int)
    if FORMATS[tensor_format].kind == "code":
        return 1 if pe_int is None and float_format(pe_format).bits >= 16 else None
    return 1 if represents(pe_format, tensor_format) else None


def operand_passes(design: DesignPoint, formats: dict[str, str]) -> dict[str, int]:
    """Passes per tensor role (``activation``, ``weight``, ``kv``) of ``design`` for the tensor
    formats ``formats`` (role -> format name); ``ValueError`` (one line) where one cannot run."""
    figures = design.compute.pe_config.figures()
    out = {}
    for role, attribute in ROLES:
        pe_format = getattr(figures, attribute)
        count = passes(pe_format, formats[role])
        if count is None:
            runnable = [name for name in FORMATS if passes(pe_format, name) is not None]
            raise ValueError(f"{design.name}: its {design.compute.pe} PE computes {pe_format} "
                             f"{'activations' if role == 'activation' else 'weights'}; the workload's "
                             f"{formats[role]} {role} values are not all {pe_format} values; "
                             f"allowed {role} formats on this PE: {', '.join(runnable)}")
        out[role] = count
    return out
