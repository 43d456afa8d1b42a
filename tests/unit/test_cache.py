"""The characterization cache: atomic writes, and corrupt entries read back as misses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from peforge.sim.cache import Store, default_dir

KEY = {"block": "mac", "params": {"a_bits": 8}}
PAYLOAD = {"gates": 928, "depth": 57, "cells": {"$_NAND_": 395}}


def test_round_trip(tmp_path):
    store = Store(tmp_path, schema=1)
    assert store.load("e", KEY) is None
    store.save("e", KEY, PAYLOAD)
    assert store.load("e", KEY) == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["e.json"]  # no temp file left behind


def test_other_key_or_schema_is_a_miss(tmp_path):
    Store(tmp_path, schema=1).save("e", KEY, PAYLOAD)
    assert Store(tmp_path, schema=1).load("e", {**KEY, "params": {"a_bits": 16}}) is None
    assert Store(tmp_path, schema=2).load("e", KEY) is None


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],                 # truncated mid-write
    lambda text: "",                                    # empty file
    lambda text: text.replace("928", "929"),            # valid JSON, payload altered
    lambda text: "\x00\xff garbage",
])
def test_damaged_entry_is_never_trusted(tmp_path, damage):
    store = Store(tmp_path, schema=1)
    path = store.save("e", KEY, PAYLOAD)
    path.write_text(damage(path.read_text()))
    assert store.load("e", KEY) is None
    store.save("e", KEY, PAYLOAD)  # recomputed value overwrites the damaged entry
    assert store.load("e", KEY) == PAYLOAD


_WRITER = """
import os, sys, time
from peforge.sim.cache import Store
real_replace = os.replace
def stalled_replace(src, dst):
    print("written", flush=True)
    time.sleep(60)
    real_replace(src, dst)
os.replace = stalled_replace
Store(sys.argv[1], schema=1).save("e", {"k": 1}, {"big": "x" * 1_000_000})
"""


def test_kill_mid_write_leaves_no_valid_entry(tmp_path):
    """SIGKILL between writing the temp file and renaming it: no entry, or the old one."""
    store = Store(tmp_path, schema=1)
    store.save("e", {"k": 1}, {"old": True})
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert store.load("e", {"k": 1}) == {"old": True}
    (tmp_path / "e.json").unlink()
    assert store.load("e", {"k": 1}) is None  # the orphaned temp file is never read as the entry
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_kill_during_write_of_a_new_entry(tmp_path):
    """SIGKILL at a random moment of many writes: what is there is either valid or a miss."""
    script = ("import sys\nfrom peforge.sim.cache import Store\n"
              "s = Store(sys.argv[1], schema=1)\nprint('go', flush=True)\n"
              "for i in range(10**6): s.save('e', {'k': 1}, {'i': i, 'pad': 'y' * 200_000})\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    payload = Store(tmp_path, schema=1).load("e", {"k": 1})
    assert payload is None or (payload["pad"] == "y" * 200_000 and isinstance(payload["i"], int))
    raw = (tmp_path / "e.json").read_text() if (tmp_path / "e.json").exists() else None
    if raw is not None:
        json.loads(raw)  # the entry file itself is always complete


def test_default_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_dir() == tmp_path / "peforge"
