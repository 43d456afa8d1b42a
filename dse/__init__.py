"""peforge.dse: where hardware meets workload, in four subpackages, each using only those before it.

``design`` (design points and their files) → ``cost`` (the cost model) → ``search`` (spaces and
Optuna studies) → ``report`` (tables, plots, HTML, RTL of chosen designs).
"""
