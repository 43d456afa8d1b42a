"""A study folder's outputs, regenerated from its storage at any time.

``trials.parquet`` / ``trials.csv`` (every trial: parameters, metrics, constraint
violations, state, failure reason, duration), ``pareto.csv`` (the feasible Pareto front,
best first in the first objective), ``pareto.png`` (the front in every pair of objectives)
and ``report.html`` (self-contained: an interactive plot, the front as a table, the design
of each front point). Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...files import write_atomic
from ..search import storage as st
from ..search import trials as tr
from ..cost.metrics import METRICS
from ..search.space import Space

OUTPUTS = ("trials.parquet", "trials.csv", "pareto.csv", "pareto.png", "report.html")


@dataclass
class StudyTables:
    """What every output is drawn from."""

    name: str
    space: Space
    manifest: dict[str, Any]
    frame: pd.DataFrame
    metrics: list[str]

    @property
    def objectives(self) -> list[str]:
        return [o.metric for o in self.space.objectives]

    @property
    def directions(self) -> list[str]:
        return self.space.directions

    @property
    def params(self) -> list[str]:
        return [p.name for p in self.space.params if p.kind != "fixed"]

    def front(self) -> pd.DataFrame:
        return tr.front(self.frame, self.objectives, self.directions)


def load_tables(folder: Path) -> StudyTables:
    """Read a study folder's manifest and storage into tables (``ValueError`` if it is not one)."""
    from ..search.sweep import load_sweep_space

    folder = Path(folder)
    manifest = st.read_manifest(folder)
    space = load_sweep_space(manifest)
    study = st.load_study(folder, manifest)
    trials = study.get_trials(deepcopy=False)
    st.close_storage(study._storage)
    seen: set[str] = set()
    for t in trials:
        seen.update(t.user_attrs.get("metrics", {}))
    metrics = [m for m in METRICS if m in seen or m in space.metrics] + sorted(seen - set(METRICS))
    param_names = [p.name for p in space.params]
    frame = tr.table(trials, param_names, metrics, [o.metric for o in space.objectives], space.directions)
    return StudyTables(manifest["study"], space, manifest, frame, metrics)


def write_report(folder: Path) -> dict[str, Path]:
    """Write every output of the study in ``folder``; returns name -> path."""
    from .plot import pareto_png
    from .html import html_report

    folder = Path(folder)
    tables = load_tables(folder)
    frame = tables.frame
    out = {name: folder / name for name in OUTPUTS}
    before = _rows_written(out["trials.parquet"])
    if before > len(frame):  # the storage lost trials the tables hold: keep the tables
        raise ValueError(f"{folder}: the study's storage now holds {len(frame)} trials but "
                         f"{out['trials.parquet'].name} has {before}; not overwriting it")
    write_atomic(out["trials.parquet"], lambda p: _parquet(frame, p))
    write_atomic(out["trials.csv"], lambda p: frame.to_csv(p, index=False))
    front = tables.front()
    front_columns = ["trial", *tables.objectives,
                     *[m for m in tables.metrics if m not in tables.objectives], *tables.params, "design"]
    write_atomic(out["pareto.csv"], lambda p: front[front_columns].to_csv(p, index=False))
    write_atomic(out["pareto.png"], lambda p: pareto_png(tables, p))
    write_atomic(out["report.html"], lambda p: p.write_text(html_report(tables), encoding="utf-8"))
    return out


def _rows_written(path: Path) -> int:
    """Rows of a trials table written earlier (0 if there is none or it is unreadable)."""
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # absent, partial or not parquet: nothing to protect
        return 0


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    # A parameter column may mix ints and floats, or hold None where its condition failed:
    # give Arrow one type per column.
    fixed = frame.copy()
    for column in fixed.columns:
        if fixed[column].dtype == object:
            kinds = {type(v) for v in fixed[column] if v is not None and not (isinstance(v, float) and np.isnan(v))}
            if kinds <= {int, float} and kinds:
                fixed[column] = pd.to_numeric(fixed[column], errors="coerce")
            elif len(kinds) > 1:
                fixed[column] = fixed[column].map(lambda v: None if v is None else str(v))
    fixed.to_parquet(path, index=False, engine="pyarrow")


def axis_label(metric: str) -> str:
    """``throughput (tokens/s)``; metrics the space does not know are shown by name."""
    if metric not in METRICS:
        return metric
    return f"{METRICS[metric].label} ({METRICS[metric].unit})"


def summary(tables: StudyTables) -> str:
    """One line on what the study holds."""
    frame = tables.frame
    reason = frame["fail_reason"].fillna("").astype(str)
    complete = int((frame["state"] == "COMPLETE").sum())
    interrupted = int(((frame["state"] == "FAIL") & reason.str.startswith("interrupted")).sum())
    failed = int((frame["state"] == "FAIL").sum()) - interrupted
    extra = f", {interrupted} interrupted (not counted)" if interrupted else ""
    return (f"{tables.name}: {complete + failed} trials ({complete} complete, {failed} failed{extra}), "
            f"{int(frame['feasible'].sum())} feasible, {int(frame['pareto'].sum())} on the Pareto front")
