"""hw.fp's formats against ml_dtypes (an independent implementation of the same encodings), and
the cost model's format rule against hand-made expectations."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from peforge.dse.cost.formats import passes
from peforge.hw.fp import FLOAT_FORMATS, decode, encode, float_format, int_bits, represents
from peforge.models.quant import FORMATS as QUANT_FORMATS

NUMPY_TYPES = {"fp32": np.float32, "bf16": ml_dtypes.bfloat16, "fp16": np.float16, "e5m2": ml_dtypes.float8_e5m2,
               "e4m3": ml_dtypes.float8_e4m3fn, "fp6": ml_dtypes.float6_e3m2fn, "fp4": ml_dtypes.float4_e2m1fn}
STORAGE = {4: np.uint8, 6: np.uint8, 8: np.uint8, 16: np.uint16, 32: np.uint32}


def as_numpy(name, codes):
    return np.asarray(codes, dtype=STORAGE[FLOAT_FORMATS[name].bits]).view(NUMPY_TYPES[name])


def code_of(name, values):
    return as_numpy_codes(np.asarray(values, dtype=np.float64).astype(NUMPY_TYPES[name]), name)


def as_numpy_codes(array, name):
    return array.view(STORAGE[FLOAT_FORMATS[name].bits]).astype(np.int64)


def test_every_format_is_tested():
    assert set(NUMPY_TYPES) == set(FLOAT_FORMATS)


def test_the_schemes_float_formats_are_hw_formats_of_the_same_width():
    floats = [f for f in QUANT_FORMATS.values() if f.kind == "float"]
    assert floats and all(float_format(f.name).bits == f.bits for f in floats)


def test_the_schemes_integer_formats_are_hw_integers_of_the_same_width():
    ints = [f for f in QUANT_FORMATS.values() if f.kind == "int"]
    assert [f.bits for f in ints] == [8, 7, 6, 5, 4, 3, 2]  # every width 2..8
    assert all(int_bits(f.name) == f.bits for f in ints)
    assert all(int_bits(f.name) is None for f in QUANT_FORMATS.values() if f.kind != "int")


@pytest.mark.parametrize("name", list(FLOAT_FORMATS))
def test_decode_and_encode_every_code_as_ml_dtypes_does(name):
    fmt = FLOAT_FORMATS[name]
    codes = np.arange(1 << fmt.bits) if fmt.bits <= 16 else np.random.default_rng(0).integers(0, 1 << 32, 20000)
    reference = as_numpy(name, codes).astype(np.float64)
    for code, ref in zip(codes.tolist(), reference.tolist()):
        value = decode(fmt, code)
        if ref != ref:
            assert value != value, f"{name} {code:#x}: expected NaN, got {value}"
            continue
        assert value == (ref if abs(ref) == float("inf") else Fraction(ref)), f"{name} {code:#x}"
        if abs(ref) != float("inf"):
            assert encode(fmt, value, negative_zero=bool(code >> fmt.bits - 1)) == code, f"{name} {code:#x}"


@pytest.mark.parametrize("name", list(FLOAT_FORMATS))
def test_round_to_nearest_even_as_ml_dtypes_does(name):
    fmt = FLOAT_FORMATS[name]
    rng = np.random.default_rng(1)
    # Magnitudes from below the smallest subnormal to past the largest finite value, and exact ties.
    span = np.log2(float(fmt.max_finite)) - np.log2(float(fmt.min_subnormal))
    values = rng.choice([-1, 1], 20000) * np.exp2(np.log2(float(fmt.min_subnormal)) - 2 + rng.random(20000) * (span + 3))
    ties = [float(fmt.min_subnormal) * (k + 0.5) for k in range(8)] + [1 + (2 * k + 1) * 2.0 ** (-fmt.man_bits - 1)
                                                                       for k in range(4)]
    values = np.concatenate([values, ties, np.negative(ties)])
    reference = code_of(name, values)
    for value, ref in zip(values.tolist(), reference.tolist()):
        if fmt.special != "ieee" and abs(value) > fmt.max_finite:
            continue  # ml_dtypes casts overflow to NaN (E4M3) or saturates (no NaN): encode's overflow= decides
        assert encode(fmt, Fraction(value)) == ref, f"{name}: {value!r}"


def test_overflow_and_flush_rules():
    e4m3, bf16 = FLOAT_FORMATS["e4m3"], FLOAT_FORMATS["bf16"]
    assert e4m3.max_finite == 448 and encode(e4m3, Fraction(448)) == 0x7E
    assert encode(e4m3, Fraction(480)) == 0x7F  # past 464 (halfway to 512): NaN, there is no Inf
    assert encode(e4m3, Fraction(480), overflow="saturate") == 0x7E
    assert encode(e4m3, Fraction(464)) == 0x7E  # the tie rounds to even: 448
    assert encode(bf16, Fraction(2) ** 128) == 0x7F80
    assert encode(bf16, -Fraction(2) ** 128, overflow="saturate") == 0xFF7F
    assert encode(bf16, Fraction(2) ** -130) == 0x0008  # subnormal: 8 quanta of 2**-133
    assert encode(bf16, Fraction(2) ** -130, subnormals=False) == 0
    assert encode(bf16, -Fraction(2) ** -130, subnormals=False) == 0x8000


@pytest.mark.parametrize("container, fmt, expected", [
    ("bf16", "int8", True), ("bf16", "fp16", False), ("fp16", "bf16", False), ("fp32", "bf16", True),
    ("fp32", "fp16", True), ("fp16", "fp8", True), ("bf16", "fp8", True), ("e4m3", "int8", False),
    ("e4m3", "int4", True), ("e5m2", "fp8", False), ("e4m3", "fp4", True), ("int16", "fp16", False),
    ("int8", "int4", True), ("int4", "int8", False), ("fp16", "int16", False), ("fp32", "int16", True),
    ("bf16", "int9", True), ("bf16", "int10", False), ("e4m3", "int5", True), ("e4m3", "int6", False),
])
def test_which_format_holds_which(container, fmt, expected):
    assert represents(container, fmt) is expected


@pytest.mark.parametrize("pe, tensor, expected", [
    ("int8", "int8", 1), ("int4", "int8", 2), ("int8", "int3", 1), ("int16", "fp16", None), ("bf16", "fp16", None),
    ("bf16", "int4", 1), ("bf16", "nf4", 1), ("int8", "nf4", None), ("e4m3", "nf4", None), ("e4m3", "fp8", 1),
    ("fp16", "fp16", 1), ("int4", "int5", 2), ("int4", "int7", 2), ("int2", "int5", 3), ("int8", "int7", 1),
    ("e4m3", "int5", 1), ("e4m3", "int6", None), ("bf16", "int7", 1),
])
def test_passes_of_a_tensor_on_a_datapath(pe, tensor, expected):
    assert passes(pe, tensor) == expected
