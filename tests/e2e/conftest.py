import subprocess
import sys

import pytest


@pytest.fixture
def peforge():
    """Run the CLI as a user does; returns the CompletedProcess."""

    def run(*args: str, cwd=None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "peforge", *args], capture_output=True, text=True,
                              cwd=cwd, timeout=timeout)

    return run
