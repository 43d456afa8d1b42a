"""A study's trials as a table: one row per trial with its parameters, metrics, constraint
violations, state and duration; and which rows form the Pareto front.

Trials are read from the storage (``FrozenTrial``); what peforge put in each trial's user
attributes (``params``, ``metrics``, ``design``, ``fail_reason``, ``uncounted``) becomes columns.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from .pareto import front_mask

# Trials a worker created and dropped unevaluated (the study already had its count): not rows.
SURPLUS = "surplus"


def counted(trial: FrozenTrial) -> bool:
    """Whether ``trial`` counts toward the study's requested number of trials.

    Completed trials, trials in flight, and trials whose evaluation failed count; trials a
    killed worker left unfinished (marked on resume) and surplus trials do not.
    """
    if "uncounted" in trial.user_attrs:
        return False
    if trial.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
        return True
    return trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs


def finished(trial: FrozenTrial) -> bool:
    """Counted and done (complete, or failed in evaluation)."""
    return counted(trial) and trial.state.is_finished()


def feasible(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and all(v <= 0.0 for v in trial.constraints.values())


def front_size(trials: Iterable[FrozenTrial], directions: Sequence[str]) -> int:
    values = [t.values for t in trials if feasible(t)]
    return int(front_mask(np.array(values), directions).sum()) if values else 0


def table(trials: Iterable[FrozenTrial], param_names: Sequence[str], metrics: Sequence[str],
          objectives: Sequence[str], directions: Sequence[str]) -> pd.DataFrame:
    """One row per trial (surplus ones left out), ordered by trial number.

    Columns: ``trial``, ``state`` (COMPLETE / FAIL / RUNNING), ``feasible``, ``pareto``,
    each parameter (empty where its condition does not hold), each metric, ``violation:<metric>``
    per constraint (≤ 0: satisfied), ``fail_reason``, ``duration_s``, ``worker`` (host:pid),
    ``started``, ``design`` (JSON).
    """
    rows: list[dict[str, Any]] = []
    constraint_names: list[str] = []
    for t in sorted(trials, key=lambda t: t.number):
        uncounted = t.user_attrs.get("uncounted", "")
        if uncounted.startswith(SURPLUS):
            continue
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "feasible": feasible(t), "pareto": False}
        params = t.user_attrs.get("params", {})
        for name in param_names:
            row[name] = params.get(name)
        measured = t.user_attrs.get("metrics", {})
        for name in metrics:
            row[name] = measured.get(name, np.nan)
        for key, value in t.constraints.items():
            if key not in constraint_names:
                constraint_names.append(key)
            row[f"violation:{key}"] = value
        row["fail_reason"] = t.user_attrs.get("fail_reason", uncounted)
        duration = t.duration.total_seconds() if t.duration is not None else np.nan
        row["duration_s"] = duration
        row["worker"] = t.user_attrs.get("worker", "")
        row["started"] = t.datetime_start.isoformat(timespec="milliseconds") if t.datetime_start else ""
        row["design"] = json.dumps(t.user_attrs["design"], sort_keys=True) if "design" in t.user_attrs else ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        columns = ["trial", "state", "feasible", "pareto", *param_names, *metrics, "fail_reason", "duration_s",
                   "worker", "started", "design"]
        return pd.DataFrame(columns=columns)
    for name in param_names:  # integers stay integers where a condition left holes
        present = [v for v in frame[name] if v is not None and v == v]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            frame[name] = frame[name].astype("Int64")
    ok = frame["feasible"].to_numpy(dtype=bool)
    if ok.any():
        values = frame.loc[ok, list(objectives)].to_numpy(dtype=float)
        mask = np.zeros(len(frame), dtype=bool)
        mask[np.flatnonzero(ok)[front_mask(values, directions)]] = True
        frame["pareto"] = mask
    return frame


def front(frame: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> pd.DataFrame:
    """The Pareto rows of a trials table, best first in the first objective."""
    rows = frame[frame["pareto"]]
    return rows.sort_values(objectives[0], ascending=directions[0] == "minimize", kind="stable")
