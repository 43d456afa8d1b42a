"""Number formats for weights, activations and the KV cache, and quantization schemes.

A scheme string names the three formats and the weight group size, for example
``w4a8kv4-g128`` (INT4 weights in groups of 128 along the reduction axis, INT8
activations, INT4 KV cache) or ``w16a16kv16`` (FP16 everywhere, no groups).

Grammar::

    w<FMT>a<FMT>kv<FMT>[-g<N>][-sym]

``<FMT>`` is a bare width (``16`` is FP16, ``2`` ... ``8`` are signed
integers) or a format name (``fp16``, ``bf16``, ``fp8``, ``fp6``, ``fp4``,
``nf4``, ``int8`` ... ``int2``). Integer widths per role are :data:`INT_WIDTHS`:
weights and the KV cache take any width 2..8 (the bit-serial PE runs each at
``ceil(bits / k)`` cycles per beat; KV caches from 2 bits, KIVI, up to 8 are in
use), activations 4 or 8 (the widths W4A4 and W8A8 kernels exist for).
``-g<N>`` sets the weight group size; without it, weights below 16 bits get one
scale per output channel. ``-sym`` drops the integer zero point (symmetric
quantization).

Storage overhead (why: this is what a GPTQ/AWQ-style checkpoint stores):

- weights below 16 bits: one FP16 scale per group, plus one zero point of the
  weight's own width for asymmetric integer formats;
- KV cache below 16 bits: one FP16 scale (plus zero point for integers) per
  head vector of ``head_dim`` values, per token (KIVI-style per-token grouping);
- activations: dynamic per-token scales are not counted (negligible: one value
  per ``hidden_size`` elements).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..arith import ceil_div

__all__ = ["NumberFormat", "QuantScheme", "FORMATS", "INT_WIDTHS", "DEFAULT_SCHEME", "SCALE_BITS", "parse_scheme",
           "tensor_bits"]

#: Width of one stored scale factor, bits (FP16).
SCALE_BITS = 16


@dataclass(frozen=True)
class NumberFormat:
    """One element format.

    Parameters
    ----------
    name : str
        Canonical name, e.g. ``"int4"``.
    bits : int
        Storage width of one element, bits.
    kind : str
        ``"float"`` (sign/exponent/mantissa), ``"int"`` (uniform integer grid) or
        ``"code"`` (a 2**bits entry look-up table of values, e.g. NF4).
    doc : str
        What the format is and where it comes from.
    """

    name: str
    bits: int
    kind: str
    doc: str

    @property
    def high_precision(self) -> bool:
        """True for 16-bit formats, which are stored without scales."""
        return self.bits >= 16

    def group_overhead_bits(self, *, symmetric: bool) -> int:
        """Bits stored per quantization group besides the elements: scale and zero point."""
        if self.high_precision:
            return 0
        zero = self.bits if (self.kind == "int" and not symmetric) else 0
        return SCALE_BITS + zero


#: Signed integer widths each tensor role may use, bits: the one table every list of ``int<N>``
#: formats derives from.
INT_WIDTHS: dict[str, tuple[int, ...]] = {
    "weight": tuple(range(8, 1, -1)),
    "activation": (8, 4),
    "kv": tuple(range(8, 1, -1)),
}

# Float encodings (exponent, mantissa, specials) are peforge.hw.fp's; models and hw know nothing of
# each other, so tests/unit/test_fp_formats.py checks that the two tables agree on these widths.
_FLOATS = (
    NumberFormat("fp16", 16, "float", "IEEE 754 binary16"),
    NumberFormat("bf16", 16, "float", "bfloat16: 8-bit exponent, 7-bit mantissa"),
    NumberFormat("fp8", 8, "float", "FP8 E4M3 (OCP 8-bit floating point spec)"),
    NumberFormat("fp6", 6, "float", "FP6 E3M2 (OCP Microscaling spec)"),
    NumberFormat("fp4", 4, "float", "FP4 E2M1 (OCP Microscaling spec)"),
    NumberFormat("nf4", 4, "code", "NormalFloat4: 16 quantiles of N(0,1) (QLoRA, Dettmers et al. 2023)"),
)
_INTS = tuple(NumberFormat(f"int{bits}", bits, "int", f"{bits}-bit signed integer")
              for bits in sorted({b for widths in INT_WIDTHS.values() for b in widths}, reverse=True))
FORMATS: dict[str, NumberFormat] = {f.name: f for f in _FLOATS + _INTS}

# Which formats each tensor role may use: look-up codes for activations have no practical kernel.
_ALLOWED = {
    "weight": tuple(f.name for f in _FLOATS) + tuple(f"int{b}" for b in INT_WIDTHS["weight"]),
    "activation": ("fp16", "bf16", "fp8", "fp4") + tuple(f"int{b}" for b in INT_WIDTHS["activation"]),
    "kv": ("fp16", "bf16", "fp8", "fp4") + tuple(f"int{b}" for b in INT_WIDTHS["kv"]),
}
_ROLE_PREFIX = {"weight": "w", "activation": "a", "kv": "kv"}

_SCHEME = re.compile(r"^w(?P<w>[a-z]*\d+)a(?P<a>[a-z]*\d+)kv(?P<kv>[a-z]*\d+)(?P<opts>(?:-[a-z0-9]+)*)$")
_EXAMPLE = "e.g. w4a8kv4-g128, w5a8kv8-g64, w8a8kv8, w16a16kv16"
MAX_GROUP = 1 << 16
DEFAULT_SCHEME = "w16a16kv16"  # what a run uses when neither the design nor the user names one


def _short(name: str) -> str:
    """The spelling in a scheme string: ``int4`` -> ``4``, ``fp16`` -> ``16``."""
    if name == "fp16":
        return "16"
    return name[3:] if name.startswith("int") else name


def _format(token: str, role: str, scheme: str) -> NumberFormat:
    name = "fp16" if token == "16" else (f"int{token}" if token.isdigit() else token)
    if name not in _ALLOWED[role]:
        allowed = ", ".join(_short(n) for n in _ALLOWED[role])
        raise ValueError(f"quantization scheme {scheme!r}: {role} format {token!r} is not allowed; "
                         f"choose one of {allowed} ({_EXAMPLE})")
    return FORMATS[name]


@dataclass(frozen=True, kw_only=True)
class QuantScheme:
    """Formats of weights, activations and KV cache, and the weight grouping.

    Parameters
    ----------
    weight, activation, kv : NumberFormat
        Element formats of the linear-layer weights, the activations, and the KV cache.
    group_size : int
        Weight elements per quantization group along the reduction axis (K);
        0 means one group per output channel (the whole K).
    symmetric : bool
        If True, integer formats store no zero point.
    """

    weight: NumberFormat = FORMATS["fp16"]
    activation: NumberFormat = FORMATS["fp16"]
    kv: NumberFormat = FORMATS["fp16"]
    group_size: int = 0
    symmetric: bool = False

    def __post_init__(self) -> None:
        for role, fmt in (("weight", self.weight), ("activation", self.activation), ("kv", self.kv)):
            if not isinstance(fmt, NumberFormat) or fmt.name not in _ALLOWED[role]:
                raise ValueError(f"QuantScheme.{role}={fmt!r} is not allowed; choose one of "
                                 f"{', '.join(_ALLOWED[role])}")
        if type(self.group_size) is not int or not 0 <= self.group_size <= MAX_GROUP:
            raise ValueError(f"QuantScheme.group_size={self.group_size!r} is out of range; "
                             f"allowed 0 (per channel) or 1..{MAX_GROUP}")
        if self.group_size and self.weight.high_precision:
            raise ValueError(f"QuantScheme.group_size={self.group_size} needs weights below 16 bits, "
                             f"not {self.weight.name}")

    @property
    def name(self) -> str:
        """The scheme string, canonical spelling (round-trips through :func:`parse_scheme`)."""
        text = f"w{_short(self.weight.name)}a{_short(self.activation.name)}kv{_short(self.kv.name)}"
        if self.group_size:
            text += f"-g{self.group_size}"
        if self.symmetric:
            text += "-sym"
        return text

    @property
    def weight_group_overhead_bits(self) -> int:
        """Bits stored per weight group besides the elements (scale, zero point)."""
        return self.weight.group_overhead_bits(symmetric=self.symmetric)

    def kv_vector_bits(self, head_dim: int) -> int:
        """Bits to store one head vector (K or V of one token and one KV head), overhead included."""
        return head_dim * self.kv.bits + self.kv.group_overhead_bits(symmetric=self.symmetric)


def parse_scheme(text: str) -> QuantScheme:
    """Parse a scheme string such as ``w4a8kv4-g128``.

    Raises
    ------
    ValueError
        One line naming the part of the string that is wrong and what is allowed.
    """
    if not isinstance(text, str):
        raise ValueError(f"quantization scheme must be a string, not {text!r} ({_EXAMPLE})")
    match = _SCHEME.match(text.strip().lower())
    if match is None:
        raise ValueError(f"quantization scheme {text!r} is not of the form "
                         f"w<FMT>a<FMT>kv<FMT>[-g<N>][-sym] ({_EXAMPLE})")
    weight = _format(match["w"], "weight", text)
    activation = _format(match["a"], "activation", text)
    kv = _format(match["kv"], "kv", text)
    group, symmetric = 0, False
    for opt in filter(None, match["opts"].split("-")):
        if opt == "sym":
            symmetric = True
        elif re.fullmatch(r"g\d+", opt) and 1 <= int(opt[1:]) <= MAX_GROUP:
            group = int(opt[1:])
        else:
            raise ValueError(f"quantization scheme {text!r}: option '-{opt}' is not allowed; "
                             f"use -g<N> with N in 1..{MAX_GROUP} and/or -sym")
    if group and weight.high_precision:
        raise ValueError(f"quantization scheme {text!r}: a group size needs weights below 16 bits, "
                         f"not w{match['w']}")
    return QuantScheme(weight=weight, activation=activation, kv=kv, group_size=group, symmetric=symmetric)


def tensor_bits(k: int, n: int, scheme: QuantScheme, *, quantized: bool) -> int:
    """Storage of one K x N weight matrix, bits, overhead included.

    Parameters
    ----------
    k : int
        Reduction (input) dimension; groups run along it.
    n : int
        Output dimension: one set of groups per output channel.
    scheme : QuantScheme
        The formats in force.
    quantized : bool
        False for tensors kept at 16 bits whatever the scheme: the norm and bias
        vectors (:mod:`peforge.models.weights` states which tensors are which).

    Returns
    -------
    int
        ``k * n * bits + n * ceil(k / group) * overhead``, bits.
    """
    if not quantized or scheme.weight.high_precision:
        return k * n * 16
    group = scheme.group_size or k
    groups = n * ceil_div(k, group)
    return k * n * scheme.weight.bits + groups * scheme.weight_group_overhead_bits
