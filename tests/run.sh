#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs peforge and its tools, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e '.[test]'

# Debian packages the tests drive: Icarus (cocotb), PostgreSQL (the distributed-sweep test starts its
# own server), Chromium (report.html in a headless browser). Installed when root, else reported.
missing=()
command -v iverilog >/dev/null 2>&1 || missing+=(iverilog)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# ccache is optional: the Verilator builds share their runtime objects through it (tests/conftest.py).
speedups=()
command -v ccache >/dev/null 2>&1 || speedups+=(ccache)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    if [ ${#missing[@]} -gt 0 ] || [ ${#speedups[@]} -gt 0 ]; then
        apt-get update -qq || true  # a stale index still installs; a missing tool then fails below
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ ${#speedups[@]} -gt 0 ]; then  # optional: a failure only costs time
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${speedups[@]}" >/dev/null || true
    fi
elif [ ${#missing[@]} -gt 0 ]; then
    echo "tests/run.sh: ${missing[*]} missing and cannot be installed here (needs root and apt-get);" \
         "the tests that use them will be skipped, or fail under PEFORGE_REQUIRE_TOOLS=1 (as in .ci/run)" >&2
fi
# With PEFORGE_REQUIRE_TOOLS=1 (CI) every test whose tool is missing fails instead of skipping.
# One pytest-xdist worker per CPU: the workers share one private characterization cache. loadgroup keeps
# the tests of one xdist group (one long cold characterization, or one module-scoped fixture) on one
# worker, in the order tests/conftest.py puts them (those groups first), and hands out the rest one by one;
# the 25 slowest tests are listed at the end (what to move to the slow layer when the suite grows).
exec python -m pytest -n auto --dist loadgroup --no-loadscope-reorder --durations=25 "$@"
