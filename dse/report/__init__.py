"""Outputs of a study: trials tables, the Pareto front, plots, the HTML report, RTL of chosen designs."""

from .rtl import export_design, run_exported
from .tables import StudyTables, load_tables, summary, write_report

__all__ = ["StudyTables", "export_design", "load_tables", "run_exported", "summary", "write_report"]
