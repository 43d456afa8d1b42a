import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def peforge():
    """Run the CLI as a user does; returns the CompletedProcess.

    The child inherits this process's environment (``env`` is not passed), so the session's
    private ``XDG_CACHE_HOME`` from ``tests/conftest.py`` holds its characterization cache too.
    Session-scoped (it keeps no state) so module fixtures can run the CLI as well.
    """

    def run(*args: str, cwd=None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "peforge", *args], capture_output=True, text=True,
                              cwd=cwd, timeout=timeout)

    return run
