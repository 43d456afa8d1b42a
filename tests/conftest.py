"""Markers by folder: tests/unit -> unit, tests/rtl -> rtl, tests/cocotb -> cocotb, tests/synth -> synth,
tests/model -> model, tests/e2e -> e2e."""

from pathlib import Path

import pytest

_MARKERS = {"unit", "rtl", "cocotb", "synth", "model", "e2e"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in _MARKERS:
            item.add_marker(getattr(pytest.mark, folder))
