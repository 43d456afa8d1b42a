import numpy as np

from peforge.hw.golden import sign_extend, wrap
from peforge.hw.pe.mac import mac_dot


def test_wrap_twos_complement():
    assert list(wrap([127, 128, -129, -128, 255, 256], 8)) == [127, -128, 127, -128, -1, 0]


def test_sign_extend_per_element_width():
    assert list(sign_extend([0b011, 0b100, 0b111, 0b1111], [3, 3, 3, 4])) == [3, -4, -1, -1]
    assert list(sign_extend([0xF7], 4)) == [7]


def test_mac_dot_exact_and_wrapping():
    assert mac_dot([-128], [-128], 16) == 16384
    assert mac_dot([-128, -128], [-128, -128], 17) == 32768
    assert mac_dot([-128, -128], [-128, -128], 16) == -32768  # wraps
    a = np.arange(-5, 5)
    assert mac_dot(a, a, 32) == int(sum(int(x) * int(x) for x in a))


def test_unwrapped_golden_is_arbitrary_precision():
    big = 1 << 70
    assert list(wrap([big, -big], None)) == [big, -big]
    assert mac_dot([-128] * 3, [-128] * 3, None) == 3 * 16384
    assert mac_dot([-128] * 3, [-128] * 3, 16) == 3 * 16384 - 65536
