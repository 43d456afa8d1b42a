"""report.html in a real browser (headless Chromium): no JavaScript error, the scatter plot drawn
with a point per trial, the front table holding exactly the front's rows, and each explained
front design's time, energy and area tables and roofline present."""

from __future__ import annotations

import re
import subprocess

import pandas as pd
import pytest

from test_sweep_cli import finished_study
from tools import find_program, missing_programs, need


@pytest.fixture(scope="module")
def report(tmp_path_factory, peforge):
    return finished_study(peforge, tmp_path_factory.mktemp("browser"), 24)[1]


def _chromium(page) -> tuple[str, str]:
    """The page's DOM after its scripts ran, and the browser's console log."""
    need(missing_programs("chromium", hint="apt-get install -y chromium; tests/run.sh does it as root"))
    done = subprocess.run([find_program("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
                           "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def _console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line and ("Uncaught" in line or "Error" in line)]


def test_a_broken_page_is_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefinedAnywhere();</script></body></html>")
    _, log = _chromium(page)
    assert _console_errors(log)


def test_report_renders_without_errors(report):
    dom, log = _chromium(report / "report.html")
    assert _console_errors(log) == []
    trials = pd.read_csv(report / "trials.csv")
    front = pd.read_csv(report / "pareto.csv")
    plot = re.search(r'<svg id="plot".*?</svg>', dom, re.S)
    assert plot, "the scatter plot was not drawn"
    drawn = plot.group(0).count("<circle")
    complete = int((trials["state"] == "COMPLETE").sum())
    assert drawn == complete  # one point per completed trial
    rows = {int(n) for n in re.findall(r'<tr id="row-(\d+)"', dom)}
    assert rows == set(front["trial"])
    # the best front design's breakdown: three tables and its roofline
    assert dom.count("<caption>time by operator class</caption>") >= 1
    assert "<caption>energy by component</caption>" in dom and "<caption>area by component</caption>" in dom
    assert "arithmetic intensity" in dom
