"""The test suite's own rules: a private cache, tool gates that fail in CI, benchmarks kept out."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tools import run_temp_root
from peforge.sim.cache import default_dir

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def test_default_cache_is_under_the_pytest_temp_root(tmp_path_factory):
    root = run_temp_root(tmp_path_factory).resolve()
    cache = default_dir().resolve()
    assert cache.is_relative_to(root), cache
    assert not cache.is_relative_to(Path.home() / ".cache"), cache


def test_cli_subprocesses_inherit_the_private_cache(tmp_path_factory):
    # the e2e `peforge` fixture runs the CLI with the inherited environment; so does this
    shown = subprocess.run([sys.executable, "-c", "from peforge.sim.cache import default_dir; print(default_dir())"],
                           capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert Path(shown).resolve().is_relative_to(run_temp_root(tmp_path_factory).resolve()), shown


_GATED = """
from tools import need, missing_programs

def test_gated():
    need(missing_programs("peforge-no-such-tool", hint="there is none"))
"""


def _run_gated(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # rootdir here, not the project's settings
    (tmp_path / "test_gated.py").write_text(_GATED)
    env = {k: v for k, v in os.environ.items() if k != "PEFORGE_REQUIRE_TOOLS"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if require is not None:
        env["PEFORGE_REQUIRE_TOOLS"] = require
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", "test_gated.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_missing_tool_fails_under_require_tools(tmp_path):
    result = _run_gated(tmp_path, "1")
    assert result.returncode == 1, result.stdout + result.stderr  # pytest: tests failed
    assert "1 failed" in result.stdout
    assert "peforge-no-such-tool not found (there is none)" in result.stdout
    assert "PEFORGE_REQUIRE_TOOLS=1" in result.stdout


def test_missing_tool_skips_with_its_reason_otherwise(tmp_path):
    for require in (None, "0"):
        result = _run_gated(tmp_path, require)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 skipped" in result.stdout and "peforge-no-such-tool not found" in result.stdout


def test_ci_requires_tools_and_runs_the_readme_command():
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "export PEFORGE_REQUIRE_TOOLS=1" in lines
    assert lines.index("export PEFORGE_REQUIRE_TOOLS=1") < lines.index("bash tests/run.sh")
    assert "bash tests/run.sh" in (REPO / "README.md").read_text()


def test_benchmarks_are_not_collected():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert config["testpaths"] == ["tests"]
    bench = REPO / "benchmarks"
    assert not [p.name for p in bench.glob("*.py") if p.name.startswith("test_") or p.name.endswith("_test.py")]
