"""Running a sweep on Optuna: workers that ask the study for a trial, train it, and tell the result.

A sweep directory holds everything::

    SWEEP/
      .cnnlab-run        marker (kind "sweep"), locked while the sweep runs
      sweep.json         the spec as given, the base config, the study name and storage URL (no password)
      study.db           the Optuna study (SQLite; absent when --storage names a server)
      trials/0000/ ...   one ordinary run directory per trial (config.yaml, metrics.jsonl, summary.json, ...)
      trials.csv, summary.json, plots/*.png, report.html   (see :mod:`cnnlab.tune.results`)

Each trial is ``train(cfg, SWEEP/trials/NNNN, callbacks=[PruningCallback])``: the callback
reports the objective metric to Optuna after every epoch and, when the pruner says so, stops
the run by setting ``trainer.stop_reason = "pruned"``. A trial that raises is told to the study
as FAIL with its error in the ``error`` user attribute, and the worker moves on.

Exactly N trials: before asking for a trial, a worker takes :func:`~cnnlab.tune.storage.claim_lock`,
counts the study's trials (those an interrupt cut short do not count) and stops when N are
taken. Several workers, local (``--workers K``) or on other machines (a shared PostgreSQL
``--storage``), therefore never run more than N trials or the same trial twice.

Resume: the trials an interrupt (or a killed worker) left RUNNING are marked FAIL with
``interrupted=True`` and their parameters are queued again (``study.enqueue_trial``), so the
sweep continues with the same points and the same budget.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError, check_int_range, short_repr
from cnnlab.fileio import write_json_atomic
from cnnlab.rundir import check_out_dir, lock_run_dir, open_run_dir
from cnnlab.runs import build_model
from cnnlab.tasks import get_task
from cnnlab.train.callbacks import Callback
from cnnlab.train.run import train
from cnnlab.tune.results import write_outputs
from cnnlab.tune.spec import SweepSpec, candidate_values, encode_choice, spec_from_dict
from cnnlab.tune.spec_schema import PRUNERS, SAMPLERS, choice_options
from cnnlab.tune.storage import claim_lock, default_storage_url, open_storage, shown_url

SWEEP_FILE = "sweep.json"
TRIALS_DIR = "trials"


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; cnnlab prints its own one line per trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


# ----------------------------------------------------------------------------- sampler, pruner, suggestions


def _grid_sampler_class():
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler without its ``study.stop()`` at the end of the grid: the workers' budget
        (trials = grid size) ends the sweep, and ``stop`` is only legal inside ``study.optimize``."""

        def after_trial(self, study, trial, state, values) -> None:
            return None

    return GridSampler


def _GridSampler(*args, **kwargs):  # noqa: N802 (a class made on first use keeps Optuna's import lazy)
    return _grid_sampler_class()(*args, **kwargs)


def make_sampler(spec: SweepSpec, worker: int = 0, existing: int = 0):
    """The spec's Optuna sampler, seeded by the spec's seed, the worker index and the number of trials the
    study already holds (so a resumed sweep does not draw its first random points again). A fresh sweep
    with one worker therefore uses exactly the spec's seed. The grid sampler keeps the spec's seed: every
    worker must agree on the grid's shuffled order."""
    import optuna

    s = spec.sampler
    options = choice_options(s, SAMPLERS)  # every option the spec leaves out at the schema's default
    seed = options.seed
    if s["name"] == "grid":
        return _GridSampler(spec.grid(), seed=seed)
    seed = (seed + worker + 1_000_003 * existing) % 2**32
    if s["name"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    import warnings

    conditional = any(p.when for p in spec.space)
    # multivariate + group models the joint distribution of the parameters and handles conditional ones;
    # constant_liar keeps parallel workers from proposing the same point while trials run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks multivariate/group/constant_liar experimental
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=options.startup_trials,
                                          multivariate=True, group=conditional, constant_liar=True)


def make_pruner(spec: SweepSpec, epochs: int):
    """The spec's pruner; it sees the objective metric once per epoch (step = epoch number, from 1)."""
    import optuna

    p = spec.pruner
    options = choice_options(p, PRUNERS)  # every option the spec leaves out at the schema's default
    if p["name"] == "median":
        # warmup_epochs: the first N epochs of every trial always run. Steps are epoch numbers from 1 and
        # Optuna prunes from step == n_warmup_steps on, hence the + 1.
        return optuna.pruners.MedianPruner(n_startup_trials=options.startup_trials,
                                           n_warmup_steps=options.warmup_epochs + 1)
    if p["name"] == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=options.min_epochs,
                                                      reduction_factor=options.reduction_factor)
    if p["name"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=options.min_epochs, max_resource=max(epochs, 1),
                                              reduction_factor=options.reduction_factor)
    return optuna.pruners.NopPruner()


def suggest(trial, spec: SweepSpec) -> dict[str, Any]:
    """Ask ``trial`` for a value of every active parameter: ``{"optim.lr": 0.003, "model.filters": [8, 16]}``.

    A parameter with ``when`` is asked only if the parameter it depends on took one of the listed values,
    so Optuna records (and TPE models) only the parameters a trial really used.
    """
    stored: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for p in spec.space:
        if any(stored.get(k, object()) not in [encode_choice(v) for v in vs] for k, vs in p.when.items()):
            continue
        if p.kind == "categorical":
            value = trial.suggest_categorical(p.key, p.stored_choices())
        elif p.kind == "int":
            value = trial.suggest_int(p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            value = trial.suggest_float(p.key, float(p.low), float(p.high), step=p.step, log=p.log)
        stored[p.key] = value
        params[p.key] = p.decode(value)
    return params


class PruningCallback(Callback):
    """Report the objective metric to the Optuna trial after every epoch; stop the run when it is pruned."""

    def __init__(self, trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.last: float | None = None  # the metric at the last epoch (the trial's value when it completes)
        self.pruned = False

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.metric)
        if value is None:
            return
        self.last = float(value)
        self.trial.report(self.last, int(metrics["epoch"]))
        if trainer.stop_reason is None and metrics["epoch"] < trainer.cfg.train.epochs and self.trial.should_prune():
            self.pruned = True
            trainer.stop_reason = "pruned"


# ----------------------------------------------------------------------------- the study


def create_or_load_study(storage, name: str, spec: SweepSpec, resume: bool):
    """Create the study, or join an existing one that searches the same space (another space needs ``resume``)."""
    import optuna

    quiet_optuna()
    if name in optuna.study.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        if study.direction.name.lower() != spec.direction:
            raise CnnlabError(f"study '{name}' already exists and {study.direction.name.lower()}s its objective; "
                              f"this spec would {spec.direction} {spec.metric}; choose another --study")
        stored = study.user_attrs.get("cnnlab_space")
        if stored != spec.signature():
            if not resume:
                keys = sorted(json.loads(stored)) if stored else "an unknown space"
                raise CnnlabError(f"study '{name}' already exists with another search space ({keys}); choose "
                                  "another --study, or pass --resume to continue it with this spec's space")
            study.set_user_attr("cnnlab_space", spec.signature())
        return study
    study = optuna.create_study(study_name=name, storage=storage, direction=spec.direction)
    study.set_user_attr("cnnlab_space", spec.signature())
    study.set_user_attr("cnnlab_metric", spec.metric)
    return study


def counted(trials) -> list:
    """The trials that use up the budget: all but those an interrupt cut short."""
    return [t for t in trials if not t.user_attrs.get("interrupted")]


def recover_interrupted(study, sweep_dir: Path) -> int:
    """Mark this sweep directory's RUNNING trials as interrupted (FAIL) and queue their parameters again.

    Called only while holding the sweep directory's lock, so no live worker of this directory exists.
    Returns the number of trials queued again.
    """
    from optuna.trial import TrialState

    storage = study._storage  # the storage API is Optuna's public BaseStorage; the attribute is not exported
    here = str(sweep_dir.absolute())
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("sweep_dir") == here:
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = 0
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried and t.params:
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
            queued += 1
    return queued


# ----------------------------------------------------------------------------- one worker


@dataclass
class WorkerJob:
    """What a worker process needs (picklable: spawned workers rebuild everything from it)."""

    sweep_dir: str
    storage_url: str
    study_name: str
    spec_raw: dict
    n_trials: int
    timeout: float | None
    worker: int
    quiet: bool
    data_dir: str | None
    existing: int | None = None  # trials in the study when the sweep (re)started: part of the sampler seed


def _data_key(cfg) -> str:
    d = cfg.data
    return json.dumps([d.name, d.root, d.data_dir, d.image_size, d.resize, d.channels, d.cache_dir, d.strict,
                       d.download])


def run_worker(job: WorkerJob, data_cache: dict | None = None) -> dict[str, int]:
    """Ask for trials and run them until the study holds ``n_trials`` or ``timeout`` passes."""
    import optuna
    from optuna.trial import TrialState

    quiet_optuna()
    spec = spec_from_dict(job.spec_raw)
    storage = open_storage(job.storage_url)
    existing = job.existing
    if existing is None:
        existing = len(optuna.load_study(study_name=job.study_name, storage=storage).trials)
    study = optuna.load_study(study_name=job.study_name, storage=storage,
                              sampler=make_sampler(spec, job.worker, existing),
                              pruner=make_pruner(spec, spec.config_for({}).train.epochs))
    data_cache = {} if data_cache is None else data_cache
    start = time.monotonic()
    done: dict[str, int] = {"complete": 0, "pruned": 0, "fail": 0}
    while job.timeout is None or time.monotonic() - start < job.timeout:
        with claim_lock(storage, job.storage_url, job.study_name):
            trials = study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if not waiting and len(counted(trials)) >= job.n_trials:
                break
            trial = study.ask()
            for key, value in (("sweep_dir", str(Path(job.sweep_dir).absolute())), ("host", socket.gethostname()),
                               ("pid", os.getpid()), ("worker", job.worker)):
                trial.set_user_attr(key, value)
        state = run_trial(study, trial, spec, job, data_cache)
        done[state] += 1
    return done


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, CnnlabError) else f"{type(exc).__name__}: {text}"


def run_trial(study, trial, spec: SweepSpec, job: WorkerJob, data_cache: dict) -> str:
    """Train one trial into its run directory and tell the study; returns complete, pruned or fail."""
    from optuna.trial import TrialState

    rel = f"{TRIALS_DIR}/{trial.number:04d}"
    trial.set_user_attr("run_dir", rel)
    t0 = time.perf_counter()
    callback = PruningCallback(trial, spec.metric)
    try:
        params = suggest(trial, spec)
        cfg = spec.config_for(params, {"name": f"{spec.name}-trial{trial.number:04d}"})
        if job.data_dir:
            cfg.data.data_dir = job.data_dir
        key = _data_key(cfg)
        if key not in data_cache:
            data_cache.clear()  # one dataset in memory per worker
            data_cache[key] = get_task(cfg.task).load_source(cfg)
        summary = train(cfg, Path(job.sweep_dir) / rel, callbacks=[callback], data=data_cache[key], quiet=True)
    except KeyboardInterrupt:
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as exc:  # a crashing trial is recorded and the sweep goes on
        error = _one_line(exc)
        trial.set_user_attr("error", error[:1000])
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
        study.tell(trial, state=TrialState.FAIL)
        _report(job, trial.number, "fail", None, spec, {}, time.perf_counter() - t0, error)
        return "fail"
    headline = get_task(cfg.task).headline
    for key in ("test_accuracy", "best_val_accuracy", "train_seconds", "epochs", "status", "params",
                headline.test_metric):
        trial.set_user_attr(key, summary.get(key))
    trial.set_user_attr("test_metric", headline.test_metric)
    seconds = time.perf_counter() - t0
    trial.set_user_attr("seconds", round(seconds, 3))
    status = summary["status"]
    if status == "interrupted":
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
        raise KeyboardInterrupt
    if status == "nonfinite_loss" or callback.last is None:
        error = (f"non-finite loss at step {summary.get('nonfinite_step')}" if status == "nonfinite_loss"
                 else f"the run reported no {spec.metric}")
        trial.set_user_attr("error", error)
        study.tell(trial, state=TrialState.FAIL)
        _report(job, trial.number, "fail", None, spec, trial.params, seconds, error)
        return "fail"
    if callback.pruned:
        study.tell(trial, state=TrialState.PRUNED)
        _report(job, trial.number, "pruned", callback.last, spec, trial.params, seconds,
                f"at epoch {summary['epochs']}")
        return "pruned"
    study.tell(trial, callback.last)
    _report(job, trial.number, "complete", callback.last, spec, trial.params, seconds, "")
    return "complete"


def _report(job: WorkerJob, number: int, state: str, value, spec: SweepSpec, params: dict, seconds: float,
            note: str) -> None:
    """One line per trial on stderr; ``params`` as Optuna stores them (a bundle shows its label)."""
    if job.quiet:
        return
    shown = "" if value is None else f"{spec.metric} {value:.4f}  "
    values = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    who = f" [worker {job.worker}]" if job.worker else ""
    print(f"trial {number:>3}{who} {state:<8} {shown}{seconds:6.1f}s  {values}" + (f"  ({note})" if note else ""),
          file=sys.stderr, flush=True)


def _worker_main(job: WorkerJob) -> None:
    """Entry point of a spawned worker process: one line on errors, exit 130 on Ctrl-C."""
    try:
        run_worker(job)
    except KeyboardInterrupt:
        sys.exit(130)
    except CnnlabError as exc:
        print(f"cnnlab: error: worker {job.worker}: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def run_workers(job: WorkerJob, workers: int, data_cache: dict) -> None:
    """Run ``workers`` workers: in this process for one, else as spawned processes (worker 0..K-1)."""
    if workers <= 1:
        run_worker(job, data_cache)
        return
    ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state, no inherited locks
    procs = [ctx.Process(target=_worker_main, args=(WorkerJob(**{**job.__dict__, "worker": k}),), daemon=False)
             for k in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:  # the workers got the same Ctrl-C; let them record their trials
            p.join(timeout=120)
        raise
    if any(p.exitcode == 130 for p in procs):
        raise KeyboardInterrupt
    failed = [worker_failure(k, p.exitcode) for k, p in enumerate(procs) if p.exitcode not in (0, None)]
    if failed:
        raise WorkersFailed("; ".join(failed))


class WorkersFailed(CnnlabError):
    """Some worker process of a sweep ended abnormally; the sweep writes its outputs, then says so."""

    exit_code = 1  # a failed run, not a mistake in the input (the CLI exits with it)


def worker_failure(worker: int, exitcode: int) -> str:
    """How a worker process ended, for the one error line.

    >>> worker_failure(1, -9)
    'worker 1 was killed by signal SIGKILL'
    >>> worker_failure(0, 2)
    'worker 0 stopped on an error (its message is above)'
    """
    import signal

    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"worker {worker} was killed by signal {name}"
    if exitcode == 2:  # _worker_main printed the CnnlabError before exiting 2
        return f"worker {worker} stopped on an error (its message is above)"
    return f"worker {worker} exited with status {exitcode}"


# ----------------------------------------------------------------------------- the whole sweep


def read_sweep_file(sweep_dir: str | os.PathLike) -> dict:
    path = Path(sweep_dir) / SWEEP_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CnnlabError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE}); give the --out of a "
                          "`cnnlab sweep`") from None
    except (OSError, ValueError) as exc:
        raise CnnlabError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(record, dict) or "spec" not in record or "study" not in record:
        raise CnnlabError(f"{path} is damaged: it lacks the spec or the study name")
    return record


def stored_storage_url(record: dict, sweep_dir: Path, given: str | None) -> str:
    """The storage to reopen: ``--storage`` if given, else the sweep's own (a hidden password must be given again)."""
    if given:
        return given
    if record.get("storage") in (None, "default"):
        return default_storage_url(sweep_dir)
    url = record["storage"]
    if "***" in url:
        raise CnnlabError(f"the sweep's storage {url} needs a password; pass --storage with the full URL "
                          "(or put the password in ~/.pgpass)")
    return url


def run_sweep(spec: SweepSpec, out: str | os.PathLike | None = None, *, storage_url: str | None = None,
              study_name: str | None = None, workers: int = 1, trials: int | None = None,
              timeout: float | None = None, overwrite: bool = False, resume: bool = False, quiet: bool = False,
              data_dir: str | None = None, inputs=()) -> dict:
    """Run a new sweep into ``out`` (or continue a study on a shared ``storage_url``); returns its summary.

    ``inputs`` are the files the sweep reads (its spec): ``out`` may never be or hold one, nor the
    spec's base config or a SQLite ``storage_url``'s file.

    >>> from cnnlab.tune.spec import load_spec
    >>> summary = run_sweep(load_spec("sweep-mnist-quick", trials=4), "runs/sweep-demo")  # doctest: +SKIP
    >>> summary["trials"]  # doctest: +SKIP
    {'complete': 3, 'pruned': 1, 'fail': 0, ...}
    """
    import os

    # More processes than 4 per core only fight over the CPU (and 100,000 would fork a storm).
    check_int_range("--workers", workers, 1, 4 * (os.cpu_count() or 1), "more workers than 4 per CPU only slow each other")
    out = Path(out) if out is not None else Path("runs") / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    sqlite_file = storage_url[len("sqlite:///"):] if (storage_url or "").startswith("sqlite:///") else None
    inputs = [*inputs, spec.base, sqlite_file]
    check_out_dir(out, overwrite, kind="sweep", inputs=inputs)
    study_name = study_name or spec.name
    n_trials = trials or spec.trials
    if spec.sampler["name"] == "grid" and spec.grid_size() > n_trials:
        raise CnnlabError(f"the grid has {spec.grid_size()} points but --trials is {n_trials}; raise --trials to "
                          f"{spec.grid_size()} or shrink the grid")
    if spec.sampler["name"] == "grid" and spec.grid_size() < n_trials:
        if not quiet:
            print(f"notice: the grid has {spec.grid_size()} points; running {spec.grid_size()} trials, not {n_trials}",
                  file=sys.stderr, flush=True)
        n_trials = spec.grid_size()
    storage = open_storage(storage_url) if storage_url else None  # a bad server fails here, before any work
    if storage is not None:
        create_or_load_study(storage, study_name, spec, resume)  # a conflicting study fails before any work
    data_cache = _preload(spec, data_dir)
    refuse_hopeless_space(spec, data_cache, data_dir)  # every trial would fail: say why now, not "no trial completed"
    with open_run_dir(out, overwrite=overwrite, kind="sweep", inputs=inputs):
        url = storage_url or default_storage_url(out)
        record = {"spec": spec.source, "base_config": spec.base_raw, "study": study_name,
                  "storage": shown_url(storage_url) if storage_url else "default", "trials": n_trials,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json_atomic(out / SWEEP_FILE, record)
        if storage is None:
            storage = open_storage(url)
            create_or_load_study(storage, study_name, spec, resume)
        return _run_and_report(spec, out, url, study_name, n_trials, workers, timeout or spec.timeout, quiet,
                               data_dir, data_cache)


def resume_sweep(sweep_dir: str | os.PathLike, *, storage_url: str | None = None, workers: int = 1,
                 trials: int | None = None, timeout: float | None = None, quiet: bool = False,
                 data_dir: str | None = None) -> dict:
    """Continue an interrupted (or finished, with more ``trials``) sweep in its own directory."""
    import optuna

    sweep_dir = Path(sweep_dir)
    record = read_sweep_file(sweep_dir)
    raw = dict(record["spec"])
    if isinstance(record.get("base_config"), dict):
        raw["base"] = record["base_config"]  # the base as it was, even if the preset file changed since
    spec = spec_from_dict(raw)
    url = stored_storage_url(record, sweep_dir, storage_url)
    n_trials = trials or int(record.get("trials") or spec.trials)
    data_cache = _preload(spec, data_dir)
    with lock_run_dir(sweep_dir, kind="sweep"):
        storage = open_storage(url)
        quiet_optuna()
        try:
            study = optuna.load_study(study_name=record["study"], storage=storage)
        except KeyError:
            raise CnnlabError(f"the storage {shown_url(url)} holds no study '{record['study']}'") from None
        queued = recover_interrupted(study, sweep_dir)
        if queued and not quiet:
            print(f"{queued} interrupted trial(s) queued to run again with the same parameters", file=sys.stderr)
        if n_trials != record.get("trials"):
            write_json_atomic(sweep_dir / SWEEP_FILE, {**record, "trials": n_trials})
        return _run_and_report(spec, sweep_dir, url, record["study"], n_trials, workers, timeout or spec.timeout,
                               quiet, data_dir, data_cache)


def refuse_hopeless_space(spec: SweepSpec, data_cache: dict, data_dir: str | None = None, points: int = 8) -> None:
    """Build the model of up to ``points`` points of the space (seeded draws of each parameter's choices
    and range ends); when not one builds for the preloaded data, no trial could ever run: one line.

    A point whose data differs from the preloaded dataset (``data.*`` searched) is not judged here.
    """
    import random


    rng = random.Random(spec.sampler["seed"])
    candidates = {p.key: candidate_values(p) for p in spec.space}
    seen, first = [], None
    for _ in range(points * 4):
        params = {key: rng.choice(values) for key, values in candidates.items()}
        if params in seen:
            continue
        seen.append(params)
        try:
            cfg = spec.config_for(params)
            if data_dir:
                cfg.data.data_dir = data_dir
            data = data_cache.get(_data_key(cfg))
            if data is None or "features_from" in cfg.model.options:
                return  # not judged here: the trials will tell
            build_model(cfg, data.input_size, data.num_classes, pretrained=False)
            return  # one point builds: the space can run
        except CnnlabError as exc:
            first = first or (params, exc)
        if len(seen) >= points:
            break
    if first is not None:
        shown = ", ".join(f"{k}={short_repr(v, 40)}" for k, v in first[0].items())
        raise CnnlabError(f"no point of the search space builds a model for the data ({len(seen)} tried), so every "
                          f"trial would fail; e.g. {shown}: {first[1]}")


def _preload(spec: SweepSpec, data_dir: str | None) -> dict:
    """Load the base config's dataset before anything is created: a missing dataset fails here."""
    cfg = spec.config_for({})
    if data_dir:
        cfg.data.data_dir = data_dir
    source = get_task(cfg.task).load_source(cfg)
    return {} if source is None else {_data_key(cfg): source}


def _run_and_report(spec, out: Path, url: str, study_name: str, n_trials: int, workers: int, timeout, quiet: bool,
                    data_dir, data_cache) -> dict:
    import optuna

    existing = len(optuna.load_study(study_name=study_name, storage=open_storage(url)).trials)
    job = WorkerJob(str(out), url, study_name, {**spec.source, "base": spec.base_raw}, n_trials, timeout, 0, quiet,
                    data_dir, existing)
    start = time.perf_counter()
    interrupted = False
    failure = None
    try:
        run_workers(job, workers, data_cache)
    except KeyboardInterrupt:
        interrupted = True
    except WorkersFailed as exc:  # the finished trials still get their table, plots and report
        failure = exc
    import optuna

    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    summary = write_outputs(out, study, spec, wall_seconds=time.perf_counter() - start)
    if interrupted:
        print(f"cnnlab: sweep interrupted; {out} keeps every finished trial; continue with "
              f"`cnnlab sweep --resume {out}`", file=sys.stderr, flush=True)
        raise KeyboardInterrupt
    if failure is not None:
        error = WorkersFailed(f"{failure}; {out} keeps every finished trial (trials.csv, summary.json, report.html); "
                              f"continue with `cnnlab sweep --resume {out}`")
        raise error from None
    return summary
