"""Worker processes sharing one study through a real PostgreSQL server.

The test starts its own server (Debian's `postgresql` binaries) on loopback, in a temporary
folder, and stops it afterwards. PostgreSQL refuses to run as root, so as root the server
runs as the `postgres` user the Debian package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from test_sweep_cli import SPACE, sweep_args
from tools import find_program, missing_module, missing_programs, need

PG_BIN = "/usr/lib/postgresql/*/bin/{name}"  # Debian's packages keep the server programs off PATH


@pytest.fixture
def psycopg_driver() -> None:
    need(missing_module("psycopg", hint="pip install -e '.[test]' (or '.[postgres]')"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url(psycopg_driver):
    need(missing_programs("initdb", "pg_ctl", hint="apt-get install -y postgresql; tests/run.sh does it as root",
                          fallback_glob=PG_BIN))
    initdb = find_program("initdb", fallback_glob=PG_BIN.format(name="initdb"))
    pg_ctl = find_program("pg_ctl", fallback_glob=PG_BIN.format(name="pg_ctl"))
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            need("running as root and there is no `postgres` user to run the server as "
                 "(the postgresql package creates it)")
        need(missing_programs("runuser", hint="util-linux"))
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="peforge-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", _free_port()
    log = root / "server.log"

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(initdb, "-D", str(data), "-U", "peforge", "--auth=trust", "--no-sync")
        run(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "start",
            "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off")
    except subprocess.CalledProcessError as error:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {error.stderr or error.stdout}")
    try:
        # The form the README documents: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
        yield f"postgresql://peforge@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True,
                       timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _check(frame: pd.DataFrame, requested: int) -> None:
    assert frame["trial"].is_unique
    assert len(frame) == requested and (frame["state"] == "COMPLETE").all()
    assert sorted(frame["trial"]) == list(range(requested))


def test_two_worker_processes_on_one_postgres_study(peforge, tmp_path, postgres_url):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "pg"
    result = peforge(*sweep_args(space, out, "--trials", "100", "--n-jobs", "2", "--storage", postgres_url,
                                 "--study", "shared"))
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out / "trials.csv")
    _check(frame, 100)
    assert frame["worker"].nunique() == 2

    # Workers started separately (as on two machines) stop at the study's total together.
    first = subprocess.Popen([sys.executable, "-m", "peforge", *sweep_args(space, tmp_path / "a", "--trials", "200",
                              "--storage", postgres_url, "--study", "pair")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "a" / "study.json").exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    second = peforge(*sweep_args(space, tmp_path / "b", "--trials", "200", "--storage", postgres_url,
                                 "--study", "pair", "--join"))
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second.stderr
    report = peforge("report", str(tmp_path / "a"))
    assert report.returncode == 0, report.stderr
    frame = pd.read_csv(tmp_path / "a" / "trials.csv")
    _check(frame, 200)
    assert frame["worker"].nunique() == 2  # both commands ran trials


def test_unreachable_database_is_one_line(peforge, tmp_path, psycopg_driver):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    url = f"postgresql://nobody@127.0.0.1:{_free_port()}/none"
    result = peforge(*sweep_args(space, tmp_path / "x", "--trials", "5", "--storage", url))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open" in lines[-1], result.stderr


def test_password_is_never_written(peforge, tmp_path, postgres_url):
    """A URL with a password works, and the password reaches no file: the manifest keeps the URL
    without it (the server takes it from PGPASSWORD or --storage again; this one trusts loopback)."""
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "secret-study"
    url = postgres_url.replace("://peforge@", "://peforge:s3cr3t-word@")
    result = peforge(*sweep_args(space, out, "--trials", "3", "--storage", url, "--study", "secret"))
    assert result.returncode == 0, result.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-word" not in path.read_bytes(), path
    assert "s3cr3t-word" not in result.stdout + result.stderr
    assert peforge("report", str(out)).returncode == 0
