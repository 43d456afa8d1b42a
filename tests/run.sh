#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs peforge and its tools, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e '.[test]'
if ! command -v iverilog >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null
    else
        echo "tests/run.sh: iverilog is missing and cannot be installed here (needs root and apt-get);" \
             "the Icarus tests will be skipped, or fail under PEFORGE_REQUIRE_TOOLS=1 (as in .ci/run)" >&2
    fi
fi
# PostgreSQL: the distributed-sweep test starts its own server (tests/e2e/test_sweep_postgres.py).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "tests/run.sh: PostgreSQL is missing and cannot be installed here (needs root and apt-get);" \
             "the PostgreSQL sweep test will be skipped, or fail under PEFORGE_REQUIRE_TOOLS=1 (as in .ci/run)" >&2
    fi
fi
# With PEFORGE_REQUIRE_TOOLS=1 (CI) every test whose tool is missing fails instead of skipping.
exec python -m pytest "$@"
