"""Search a design space against an LLM workload; writes the study folder (trials, Pareto front, report).

Runs an Optuna study over the design points of a space file (shipped: edge, datacenter,
pim), each priced by the cost model on the workload, with a progress bar on stderr. The
study folder (default results/<study>) receives trials.parquet, trials.csv, pareto.csv,
pareto.png, report.html and the study's journal file (study.log, which optuna-dashboard
opens). Ctrl-C stops after the current trial and still writes the outputs; --resume continues.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peforge.dse.search.samplers import DEFAULT_SAMPLER, SAMPLERS
from peforge.dse.search.space import shipped_spaces

MAX_EXPORTS = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default=None,
                        help=f"a shipped space ({', '.join(shipped_spaces())}) or a space TOML file "
                             f"(default: edge; on --resume the study's own)")
    parser.add_argument("--workload", default=None, metavar="MODEL",
                        help="zoo model or config.json path (default: the space's [workload] model)")
    parser.add_argument("--seq", type=int, default=None, help="prompt tokens (default: the space's, else 512)")
    parser.add_argument("--gen", type=int, default=None, help="generated tokens (default: the space's, else 128)")
    parser.add_argument("--quant", default=None, help="quantization scheme, e.g. w4a8kv8 (default: the space's)")
    parser.add_argument("--phases", default="prefill,decode", help="phases priced: prefill,decode (default both)")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials the study should hold (default 100; the whole grid for --sampler grid; "
                             "on --resume the earlier request)")
    parser.add_argument("--sampler", choices=tuple(SAMPLERS), default=None,
                        help=f"Optuna sampler (default: {DEFAULT_SAMPLER}; on --resume the study's own)")
    parser.add_argument("--seed", type=int, default=None,
                        help="sampler seed: same seed, same trials (default: 0; on --resume the study's own)")
    parser.add_argument("--study", default=None, help="study name (default: the space's name)")
    parser.add_argument("--out", type=Path, default=None, help="study folder (default: results/<study>)")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="Optuna database URL shared by workers on many machines, e.g. "
                             "postgresql://user:pass@host/db (default: a journal file in the study folder)")
    parser.add_argument("--n-jobs", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the study in --out / --storage after it stopped (its unfinished trials "
                             "are marked interrupted and rerun)")
    parser.add_argument("--join", action="store_true",
                        help="add workers to a study other workers are running now, e.g. on other machines "
                             "through --storage (their trials in flight are left alone)")
    parser.add_argument("--export-top", type=int, default=0, metavar="K",
                        help="also write the RTL of the K best front designs (first objective) to <out>/rtl/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import optuna

    from peforge.dse.search import sweep as search
    from peforge.dse.report.tables import load_tables, summary, write_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says it better
    if not 0 <= args.export_top <= MAX_EXPORTS:
        raise ValueError(f"--export-top {args.export_top}: allowed 0..{MAX_EXPORTS} (each is a folder of Verilog)")
    sweep = search.plan_sweep(space=args.space, model=args.workload, seq=args.seq, gen=args.gen, quant=args.quant,
                              phases=args.phases, trials=args.trials, sampler=args.sampler, seed=args.seed,
                              study=args.study, out=args.out, storage=args.storage, n_jobs=args.n_jobs,
                              resume=args.resume, join=args.join)
    out = sweep.out
    result = search.run(sweep, progress=not args.no_progress)
    written = write_report(out)
    tables = load_tables(out)
    print(summary(tables))
    print(f"{result.seconds:.1f} s ({result.characterize_seconds:.1f} s characterizing PEs); outputs in {out}/: "
          f"{', '.join(written)}")
    for error in result.worker_errors:
        print(f"peforge: {error}", file=sys.stderr)
    if args.export_top:
        from peforge.dse.report.rtl import export_design

        for number in tables.front()["trial"].head(args.export_top):
            exported = export_design(out, int(number), out / "rtl" / f"trial-{int(number)}")
            print(f"RTL of trial {int(number)}: {exported.folder}")
    if result.in_flight:
        print(f"{result.in_flight} trial(s) still running in other workers; `peforge report {out}` "
              f"updates the outputs when they finish")
    if result.interrupted:
        print(f"peforge: interrupted with {result.finished} of {result.requested} trials; "
              f"`peforge sweep --out {out} --resume` continues", file=sys.stderr)
        return 130
    if not result.complete:
        print(f"peforge: the study holds {result.finished} of {result.requested} trials; "
              f"`peforge sweep --out {out} --resume` continues", file=sys.stderr)
        return 1
    return 0
