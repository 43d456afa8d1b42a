"""The sweep: an Optuna study over a space's design points, priced by the cost model.

One trial draws a design point (:meth:`Space.suggest`), evaluates it on the workload and
returns its objectives as a tuple; the design, its parameters and every metric are stored on
the trial (``trial.set_user_attr``), constraint violations with ``trial.set_constraint``
(Optuna 5), so infeasible trials stay in the study, marked. A design the cost model cannot
run (``evaluate`` raises, e.g. a clock above the PE's Fmax) is a *failed* trial whose
reason is kept in ``fail_reason``; the study goes on.

``n_jobs`` worker processes share one storage; each runs its share of the remaining trials
and claims every trial it asks for against the requested total, so workers started
separately (other machines on one PostgreSQL study) also stop at that total. A killed
sweep leaves its in-flight trials RUNNING; ``resume`` marks them interrupted (they do not
count) and runs what is missing. ``join`` adds workers to a study that others are running
(on this or other machines): like resume, but trials in flight are left alone.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from ...files import check_folder
from ...models.quant import DEFAULT_SCHEME
from . import storage as st
from . import trials as tr
from ..cost.api import evaluate, prepare
from .progress import Counts, ProgressBar
from .samplers import DEFAULT_SAMPLER, SAMPLERS, grid_size, make_sampler
from ..cost.metrics import PHASE_METRICS
from .space import Space, load_space, parse_space
from .warmup import characterize_all, pe_configs

PHASES = ("prefill", "decode")
MAX_JOBS = 64
MAX_TRIALS = 1_000_000  # a study larger than this is a typo, not a sweep
MAX_SEED = 2**32 - 1  # numpy's seed range, which Optuna's samplers use
DEFAULT_TRIALS = 100
REFRESH_S = 0.5  # progress bar refresh
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # which machine and process ran a trial


@dataclass(frozen=True)
class WorkloadSpec:
    """The model run every design point is priced on (batch comes from the design point)."""

    model: str
    seq: int = 512
    gen: int = 128
    quant: str = DEFAULT_SCHEME
    phases: tuple[str, ...] = PHASES

    def at_batch(self, batch: int, quant: str = ""):
        """The run at ``batch`` sequences, in ``quant`` (a design's own scheme) or else this spec's."""
        return prepare(self.model, batch=batch, seq=self.seq, gen=self.gen, quant=quant or self.quant)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "seq": self.seq, "gen": self.gen, "quant": self.quant,
                "phases": list(self.phases)}


@dataclass(frozen=True, kw_only=True)
class Sweep:
    """Everything a sweep needs, checked by :meth:`check` before anything is written.

    Parameters
    ----------
    space : the search space
    workload : model, prompt length (``seq``), generated tokens (``gen``), quantization, phases
    trials : trials the study should hold when done (including earlier runs' on resume)
    out : the study folder (outputs, manifest, and the journal file unless ``storage``)
    study : the study's name in its storage
    sampler : one of :data:`SAMPLERS`; seed : sampler seed (worker i uses ``seed + i``)
    storage : an Optuna database URL, or None for the journal file ``out/study.log``
    n_jobs : worker processes; resume : continue an existing study
    join : continue a study other workers are running now (in-flight trials are theirs)
    """

    space: Space
    workload: WorkloadSpec
    trials: int
    out: Path
    study: str
    sampler: str = "nsga2"
    seed: int = 0
    storage: str | None = None
    n_jobs: int = 1
    resume: bool = False
    join: bool = False

    @property
    def continues(self) -> bool:
        return self.resume or self.join

    @property
    def storage_spec(self) -> str:
        return self.storage or st.JOURNAL

    def check(self) -> None:
        """Validate flags, space and workload together; one-line ``ValueError`` on the first problem."""
        if self.sampler not in SAMPLERS:
            raise ValueError(f"--sampler {self.sampler}: choose one of {', '.join(SAMPLERS)}")
        if not 1 <= self.trials <= MAX_TRIALS:
            raise ValueError(f"--trials {self.trials}: allowed 1..{MAX_TRIALS}")
        if not 1 <= self.n_jobs <= MAX_JOBS:
            raise ValueError(f"--n-jobs {self.n_jobs}: must be 1..{MAX_JOBS}")
        if not self.workload.phases or set(self.workload.phases) - set(PHASES):
            raise ValueError(f"--phases {','.join(self.workload.phases)}: choose from {', '.join(PHASES)}")
        for phase, produced in PHASE_METRICS.items():
            if phase not in self.workload.phases:
                for metric in self.space.metrics:
                    if metric in produced:
                        raise ValueError(f"{self.space.where}: {metric} needs the {phase} phase; "
                                         f"add it to --phases")
        if self.sampler == "grid":
            size = grid_size(self.space)
            if self.trials > size:
                raise ValueError(f"--trials {self.trials}: the grid of {self.space.where} has only {size} points")
        if self.storage is not None:
            st.check_url(self.storage)
            st.close_storage(st.open_storage(self.storage, Path(self.out)))  # unreachable: fail before any work
        self.workload.at_batch(1)  # a bad model, quantization or length raises here, one line
        if not 0 <= self.seed <= MAX_SEED - (self.n_jobs - 1):
            raise ValueError(f"--seed {self.seed}: must be 0..{MAX_SEED - (self.n_jobs - 1)} "
                             f"(worker i uses seed + i, and samplers take 32-bit seeds)")
        check_folder(self.out, "--out")
        manifest = Path(self.out) / st.MANIFEST
        journal = Path(self.out) / st.JOURNAL
        started = self.storage is not None or st.journal_has_trials(journal)
        if manifest.exists() and started and not self.continues:
            raise ValueError(f"{self.out} already holds a study; pass --resume to continue it or choose another --out")
        if self.continues and not manifest.exists() and self.storage is None:
            raise ValueError(f"--{'join' if self.join else 'resume'}: {self.out} holds no study to continue "
                             f"(no {st.MANIFEST})")
        if not manifest.exists() and self.storage is None and started:
            raise ValueError(f"{self.out}: holds {st.JOURNAL} with trials but no {st.MANIFEST}; "
                             f"remove it or choose another --out")

    @property
    def unstarted_journal(self) -> bool:
        """The study folder's journal exists but records no trial: a start that was interrupted
        before its first trial, which a rerun may begin again."""
        journal = Path(self.out) / st.JOURNAL
        return self.storage is None and journal.exists() and not st.journal_has_trials(journal)


# --- one trial ---------------------------------------------------------------------------------

class Objective:
    """Draws, evaluates and records one trial; never raises for a bad design point."""

    def __init__(self, space: Space, workload: WorkloadSpec, *, grid: bool = False):
        self.space = space
        self.workload = workload
        self.points = list(space.points()) if grid else None

    def draw(self, trial: optuna.Trial) -> dict[str, Any]:
        if self.points is not None:
            return self.points[trial.suggest_int("grid_index", 0, len(self.points) - 1)]
        return self.space.draw(trial)

    def run(self, study: optuna.Study, trial: optuna.Trial) -> str:
        """Evaluate ``trial`` and tell the study; returns ``"complete"`` or ``"failed"``."""
        try:
            assignment = self.draw(trial)
            trial.set_user_attr("params", assignment)
            trial.set_user_attr("worker", WORKER)
            design = self.space.design(assignment, f"{self.space.name}-{trial.number}")
            trial.set_user_attr("design", design.to_dict())
            evaluation = evaluate(design, self.workload.at_batch(design.batch, design.quant), phases=self.workload.phases,
                                  breakdown=False)
            metrics = {key: float(value) for key, value in evaluation.metrics.items()}
            if self.space.serving:
                from ..serve.space import serving_metrics

                metrics.update(serving_metrics(design, self.space.serving, model=self.workload.model,
                                               quant=design.quant or self.workload.quant, needed=self.space.metrics))
            for metric in self.space.metrics:
                if not math.isfinite(metrics.get(metric, math.nan)):
                    raise ValueError(f"the cost model gave {metric} = {metrics.get(metric)}")
        except Exception as error:  # any failure of one design is that trial's, not the study's
            reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
            trial.set_user_attr("fail_reason", reason[:1000] or type(error).__name__)
            study.tell(trial, state=TrialState.FAIL)
            return "failed"
        trial.set_user_attr("metrics", metrics)
        for constraint in self.space.constraints:
            trial.set_constraint(constraint.metric, constraint.violation(metrics[constraint.metric]))
        study.tell(trial, [metrics[o.metric] for o in self.space.objectives])
        return "complete"


# --- budget -------------------------------------------------------------------------------------

def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial: unique and increasing in creation order in every storage."""
    return trial._trial_id


def counted_total(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if tr.counted(t))


def claim(study: optuna.Study, trial: optuna.Trial, total: int) -> bool:
    """Whether ``trial`` is within the first ``total`` counted trials of the study (by creation)."""
    mine = trial_id(trial)
    before = sum(1 for t in study.get_trials(deepcopy=False) if trial_id(t) < mine and tr.counted(t))
    return before < total


def mark_interrupted(study: optuna.Study) -> int:
    """Fail the trials a killed run left in flight, marked so they do not count; returns how many."""
    storage = study._storage
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
    for t in stale:
        storage.set_trial_user_attr(trial_id(t), "uncounted", "interrupted: its worker stopped before it finished")
        storage.set_trial_state_values(trial_id(t), TrialState.FAIL)
    return len(stale)


def counts(study: optuna.Study, directions: list[str]) -> Counts:
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if tr.finished(t)]
    return Counts(done=len(done), feasible=sum(tr.feasible(t) for t in done),
                  failed=sum(t.state == TrialState.FAIL for t in done), front=tr.front_size(done, directions))


# --- workers ------------------------------------------------------------------------------------

class StopFlag:
    """Set by SIGINT / SIGTERM: the worker finishes its current trial, then stops.

    ``interactive``: a second Ctrl-C raises ``KeyboardInterrupt`` (the user insists).
    """

    def __init__(self, *, interactive: bool):
        self.set = False
        self.interactive = interactive
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set and self.interactive and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.set = True

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()


@dataclass(frozen=True)
class Job:
    """One worker's orders."""

    sweep: Sweep
    index: int
    share: int
    parent: int | None = None  # pid of the sweep that started this worker process


def work(job: Job, stop: StopFlag, on_trial: Callable[[optuna.Study], None] | None = None) -> int:
    """Run up to ``job.share`` trials; returns how many this worker finished."""
    sweep = job.sweep
    storage = st.open_storage(sweep.storage_spec, Path(sweep.out))
    seed = None if sweep.seed is None else sweep.seed + job.index
    study = optuna.load_study(study_name=sweep.study, storage=storage,
                              sampler=make_sampler(sweep.sampler, seed, sweep.space))
    objective = Objective(sweep.space, sweep.workload, grid=sweep.sampler == "grid")
    done = 0
    try:
        while done < job.share and not stop.set:
            if job.parent is not None and os.getppid() != job.parent:
                break  # the sweep that started us is gone: leave the rest to a --resume
            trial = study.ask()
            if not claim(study, trial, sweep.trials):
                trial.set_user_attr("uncounted", f"{tr.SURPLUS}: the study already had its {sweep.trials} trials")
                study.tell(trial, state=TrialState.FAIL)
                break
            objective.run(study, trial)
            done += 1
            if on_trial is not None:
                on_trial(study)
    finally:
        st.close_storage(storage)
    return done


def _worker_main(job: Job) -> None:
    global WORKER
    WORKER = f"{socket.gethostname()}:{os.getpid()}"  # a forked worker: its own pid
    stop = StopFlag(interactive=False)
    stop.install()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        work(job, stop)
    except Exception as error:  # one line, like the CLI, not a traceback from a child process
        print(f"peforge: worker {job.index}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


def shares(remaining: int, workers: int) -> list[int]:
    """``remaining`` trials split as evenly as possible over ``workers``."""
    return [remaining // workers + (1 if i < remaining % workers else 0) for i in range(workers)]


# --- the sweep ------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    folder: Path
    requested: int
    finished: int
    interrupted: bool
    seconds: float
    characterize_seconds: float = 0.0
    marked_interrupted: int = 0
    in_flight: int = 0  # counted trials other workers (--join, other machines) are still running
    worker_errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.finished + self.in_flight >= self.requested


def study_attrs(sweep: Sweep) -> dict[str, Any]:
    return {"space": {"name": sweep.space.name, "where": sweep.space.where, "source": sweep.space.source},
            "workload": sweep.workload.as_dict()}


def open_study(sweep: Sweep) -> tuple[optuna.Study, int]:
    """Create (or, on resume, load and tidy) the study; returns it and the interrupted trials marked."""
    folder = Path(sweep.out)
    if sweep.storage is None:
        folder.mkdir(parents=True, exist_ok=True)
    storage = st.open_storage(sweep.storage_spec, folder)
    names = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    exists = sweep.study in names
    flag = "--join" if sweep.join else "--resume"
    if exists and not sweep.continues:
        raise ValueError(f"the storage already holds a study named {sweep.study!r}; pass --resume (or --join, "
                         f"while other workers run it) to continue it, or choose another --study")
    if not exists and sweep.join:
        raise ValueError(f"{flag}: the storage holds no study named {sweep.study!r}")
    # (resume of a start interrupted before its study existed simply creates it)
    study = optuna.create_study(storage=storage, study_name=sweep.study, directions=sweep.space.directions,
                                load_if_exists=True)
    marked = 0
    if exists:
        stored = study.user_attrs.get("peforge", {})
        if stored.get("space", {}).get("source") != sweep.space.source:
            raise ValueError(f"{flag}: {sweep.space.where} differs from the space study {sweep.study!r} was "
                             f"started with; continue it with the same space")
        if stored.get("workload") != sweep.workload.as_dict():
            raise ValueError(f"{flag}: the workload differs from the one study {sweep.study!r} was started with "
                             f"({stored.get('workload')})")
        marked = 0 if sweep.join else mark_interrupted(study)
    else:
        study.set_user_attr("peforge", study_attrs(sweep))
        with warnings.catch_warnings():  # experimental in Optuna 5, and what optuna-dashboard shows
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o.metric for o in sweep.space.objectives])
    return study, marked


def write_manifest(sweep: Sweep) -> None:
    st.write_json_atomic(Path(sweep.out) / st.MANIFEST, {
        "study": sweep.study, "storage": st.without_password(sweep.storage_spec), **study_attrs(sweep),
        "sampler": sweep.sampler, "seed": sweep.seed, "trials": sweep.trials, "n_jobs": sweep.n_jobs,
    })


def load_sweep_space(manifest: dict[str, Any]) -> Space:
    """The space a study folder's manifest recorded."""
    space = manifest["space"]
    return parse_space(space["source"], where=space["where"], name=space["name"])


def plan_sweep(*, space: str | None, model: str | None, seq: int | None, gen: int | None, quant: str | None,
               phases: str, trials: int | None, sampler: str | None, seed: int | None, study: str | None,
               out: Path | None, storage: str | None, n_jobs: int, resume: bool, join: bool) -> Sweep:
    """The sweep the command line asks for. ``None`` means not given: a new study takes the space's
    (or peforge's) default; ``resume`` / ``join`` take what the study folder's manifest recorded
    (space, workload, sampler, seed, trials and storage), so a continued study stays the same study."""
    if storage is not None and not storage.strip():
        raise ValueError("--storage: empty; give a database URL, or leave --storage out for the study folder's journal")
    if resume and join:
        raise ValueError("--resume and --join: choose one (--resume continues a stopped study, "
                         "--join adds workers to a running one)")
    earlier: dict[str, Any] = {}
    if (resume or join) and out is not None and (Path(out) / st.MANIFEST).exists():
        earlier = st.read_manifest(Path(out))
    chosen = load_sweep_space(earlier) if earlier and not space else load_space(space or "edge")
    name = study or earlier.get("study") or chosen.name
    folder = Path(out) if out is not None else Path("results") / name
    run_defaults = {f.name: f.default for f in fields(WorkloadSpec) if f.name in ("seq", "gen", "quant")}
    defaults = {"model": None, **run_defaults, **chosen.workload, **earlier.get("workload", {})}
    model = model or defaults["model"]
    if model is None:
        raise ValueError(f"--workload: the space {chosen.where} names no model; give --workload MODEL")

    def given(value, default):
        return default if value is None else value

    workload = WorkloadSpec(model=model, seq=given(seq, defaults["seq"]), gen=given(gen, defaults["gen"]),
                            quant=given(quant, defaults["quant"]),
                            phases=tuple(p.strip() for p in phases.split(",") if p.strip()))
    sampler = sampler or earlier.get("sampler") or DEFAULT_SAMPLER
    if trials is None:
        trials = earlier.get("trials") or (grid_size(chosen) if sampler == "grid" else DEFAULT_TRIALS)
    stored = earlier.get("storage", "")
    return Sweep(space=chosen, workload=workload, trials=trials, out=folder, study=name, sampler=sampler,
                 seed=given(seed, earlier.get("seed", 0)), storage=storage or (stored if "://" in stored else None),
                 n_jobs=n_jobs, resume=resume, join=join)


def run(sweep: Sweep, *, progress: bool = True, say: Callable[[str], None] | None = None) -> SweepResult:
    """Run ``sweep`` to its requested number of trials, or until SIGINT / SIGTERM.

    Validates first (nothing is written for a bad input), characterizes the space's PE
    configurations (cached), then runs the workers with a progress bar on stderr.
    """
    started = time.monotonic()
    sweep.check()
    bar = ProgressBar(sweep.trials, enabled=progress)
    say = say or bar.message
    configs = pe_configs(sweep.space)
    char_s = 0.0
    if configs is None:
        say("the space reaches many PE configurations: each is characterized when a trial first needs it")
    else:
        char_s = characterize_all(configs, sweep.space, say)
    if sweep.unstarted_journal and not sweep.join:
        (Path(sweep.out) / st.JOURNAL).unlink()  # an interrupted start: begin it again
    if sweep.resume and sweep.storage is None:
        backup = st.repair_journal(Path(sweep.out) / st.JOURNAL)
        if backup is not None:
            say(f"resume: {st.JOURNAL} had a damaged tail; cut it off (the whole file is kept as {backup.name})")
    study, marked = open_study(sweep)
    write_manifest(sweep)
    if marked:
        say(f"resume: {marked} trial(s) left unfinished by the previous run marked interrupted")
    remaining = sweep.trials - counted_total(study)
    result = SweepResult(Path(sweep.out), sweep.trials, 0, False, 0.0, char_s, marked)
    directions = sweep.space.directions
    st.close_storage(study._storage)
    if remaining > 0:
        if sweep.n_jobs == 1:
            result.interrupted = _run_here(sweep, remaining, bar, directions)
        else:
            result.interrupted = _run_processes(sweep, remaining, bar, directions, result.worker_errors)
    study = _reopen(sweep)
    final = counts(study, directions)
    bar.update(final, final=True)
    result.finished = final.done
    result.in_flight = counted_total(study) - final.done
    st.close_storage(study._storage)
    result.seconds = time.monotonic() - started
    return result


def _reopen(sweep: Sweep) -> optuna.Study:
    return optuna.load_study(study_name=sweep.study, storage=st.open_storage(sweep.storage_spec, Path(sweep.out)))


def _run_here(sweep: Sweep, remaining: int, bar: ProgressBar, directions: list[str]) -> bool:
    stop = StopFlag(interactive=True)
    last = [0.0]

    def tick(study: optuna.Study) -> None:
        now = time.monotonic()
        if now - last[0] >= REFRESH_S:
            last[0] = now
            bar.update(counts(study, directions))

    stop.install()
    try:
        work(Job(sweep, 0, remaining), stop, tick)
    finally:
        stop.restore()
    return stop.set


def _run_processes(sweep: Sweep, remaining: int, bar: ProgressBar, directions: list[str],
                   errors: list[str]) -> bool:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    parts = [n for n in shares(remaining, sweep.n_jobs) if n > 0]
    stop = StopFlag(interactive=True)
    processes = [context.Process(target=_worker_main, args=(Job(sweep, i, n, os.getpid()),), daemon=False)
                 for i, n in enumerate(parts)]
    stop.install()
    forwarded = False
    try:
        for process in processes:
            process.start()
        study = _reopen(sweep) if bar.enabled else None  # no bar: leave both cores to the workers
        last = 0.0
        while any(p.is_alive() for p in processes):
            if stop.set and not forwarded:
                forwarded = True
                for process in processes:
                    if process.is_alive() and process.pid is not None:
                        os.kill(process.pid, signal.SIGTERM)  # finish the current trial, then stop
            if study is not None and time.monotonic() - last >= REFRESH_S:
                bar.update(counts(study, directions))
                last = time.monotonic()
            time.sleep(0.05)
        if study is not None:
            st.close_storage(study._storage)
    finally:
        for process in processes:
            if process.is_alive():  # a second Ctrl-C: do not wait any longer
                process.kill()
            process.join()
        stop.restore()
    for i, process in enumerate(processes):
        if process.exitcode not in (0, None):
            errors.append(f"worker {i} exited with status {process.exitcode}")
    return stop.set
