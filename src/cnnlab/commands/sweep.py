"""``cnnlab sweep SPEC [--trials N] [--timeout S] [--storage URL] [--study NAME] [--workers K] [--out DIR]``."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import notice, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="search config keys with Optuna (samplers, pruners, many workers)",
        description=(
            "Search a space of config keys with Optuna. SPEC is a YAML file or a shipped spec "
            "(`cnnlab sweep --list`): a base preset, fixed overrides, the space (categorical, int, float, log, "
            "conditional on another choice), the objective, the sampler (grid, random, tpe; seeded) and the "
            "pruner (none, median, halving, hyperband), which sees the validation metric after every epoch. "
            "Every trial is a run directory under OUT/trials/. The study is a SQLite file in OUT unless "
            "--storage names a database (postgresql://USER@HOST/DB) shared by workers on many machines. "
            "Writes trials.csv, plots/, summary.json and report.html at the end."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", nargs="?", help="sweep spec: a YAML file or a shipped name")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides fixed for every trial (added to the spec's overrides)")
    p.add_argument("--trials", type=int, help="trials in the study in all (default: the spec's)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--storage", help="study storage URL (default: sqlite in OUT), e.g. postgresql://me@db/sweeps")
    p.add_argument("--study", help="study name (default: the spec's name)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (each uses train.threads)")
    p.add_argument("--out", help="sweep directory (default runs/<name>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sweep directory cnnlab made")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="DIR",
                   help="continue the sweep in DIR (interrupted trials run again); with SPEC and --storage, "
                        "continue an existing study even if its search space differs")
    p.add_argument("--status", metavar="DIR", help="print the table of trials of the sweep in DIR")
    p.add_argument("--html", action="store_true", help="with --status: also rewrite DIR's plots and report.html")
    p.add_argument("--list", action="store_true", help="list the shipped sweep specs")
    p.add_argument("--data-dir", help="directory holding the datasets (before $CNNLAB_DATA and ./data)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no line per trial")
    p.set_defaults(func=run)


def run(args) -> int:
    import math

    from cnnlab.errors import CnnlabError, check_int_range  # why lazy: `cnnlab --help` imports every command module; the library (and torch) loads when the command runs
    from cnnlab.tune.storage import require_optuna

    if args.trials is not None:
        check_int_range("--trials", args.trials, 1, 100_000)
    if args.timeout is not None and not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise CnnlabError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.list:
        return _list(args)
    require_optuna()  # everything past the list of specs reads or writes an Optuna study
    if args.status:
        return _status(args)
    from cnnlab.tune.spec import load_spec
    from cnnlab.tune.sweep import resume_sweep, run_sweep

    if isinstance(args.resume, str):
        if args.spec or args.out or args.overwrite or args.study or args.overrides:
            raise CnnlabError(f"--resume {args.resume} continues that sweep with its stored spec; drop SPEC, "
                              "key=value, --out, --overwrite and --study")
        summary = resume_sweep(args.resume, storage_url=args.storage, workers=args.workers, trials=args.trials,
                               timeout=args.timeout, quiet=args.quiet, data_dir=args.data_dir)
    else:
        if not args.spec:
            raise CnnlabError("name a sweep spec (a YAML file or `cnnlab sweep --list`), or --resume DIR, "
                              "or --status DIR")
        if args.resume and not args.storage:
            raise CnnlabError("--resume without DIR continues a study on a shared --storage; to continue a sweep "
                              "directory, give it: --resume DIR")
        spec = load_spec(args.spec, trials=args.trials, overrides=list(args.overrides))
        summary = run_sweep(spec, args.out, storage_url=args.storage, study_name=args.study, workers=args.workers,
                            trials=args.trials, timeout=args.timeout, overwrite=args.overwrite,
                            resume=bool(args.resume), quiet=args.quiet, data_dir=args.data_dir, inputs=[args.spec])
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    return 0


def _print_summary(s: dict) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in s["trials"].items() if v)
    notice(f"sweep directory: {s['sweep_dir']}  ({counts}; {s['trial_epochs']} trial-epochs)")
    if s["best_trial"] is None:
        print("no trial completed")
        return
    params = " ".join(f"{k}={v}" for k, v in (s["best_params"] or {}).items())
    test = f"  test accuracy {s['test_accuracy']:.4f}" if s.get("test_accuracy") is not None else ""
    print(f"best trial {s['best_trial']}: {s['metric']} {s['best_value']:.4f}{test}  {params}")
    if s.get("importances"):
        print("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in list(s["importances"].items())[:5]))


def _list(args) -> int:
    import yaml

    from cnnlab.tune.spec import shipped_spec_names, spec_text

    rows = {}
    for name in shipped_spec_names():
        raw = yaml.safe_load(spec_text(name)) or {}
        rows[name] = {"base": raw.get("base"), "trials": raw.get("trials"),
                      "space": list((raw.get("space") or {}).keys()),
                      "description": " ".join(str(raw.get("description", "")).split())}
    if args.json:
        print_json(rows)
        return 0
    for name, row in rows.items():
        print(f"{name:<28}{row['base']:<16}{row['trials']:>4} trials  {row['description'][:80]}")
    return 0


def _status(args) -> int:
    from pathlib import Path

    import optuna

    from cnnlab.errors import CnnlabError
    from cnnlab.tune.results import format_table, trial_rows, write_outputs
    from cnnlab.tune.spec import spec_from_dict
    from cnnlab.tune.storage import open_storage, shown_url
    from cnnlab.tune.sweep import quiet_optuna, read_sweep_file, stored_storage_url

    sweep_dir = Path(args.status)
    record = read_sweep_file(sweep_dir)
    url = stored_storage_url(record, sweep_dir, args.storage)
    quiet_optuna()
    try:
        study = optuna.load_study(study_name=record["study"], storage=open_storage(url))
    except KeyError:
        raise CnnlabError(f"the storage {shown_url(url)} holds no study '{record['study']}'") from None
    raw = dict(record["spec"])
    if isinstance(record.get("base_config"), dict):
        raw["base"] = record["base_config"]
    spec = spec_from_dict(raw)
    rows, params = trial_rows(study)
    if args.html:
        from cnnlab.rundir import lock_holder

        if lock_holder(sweep_dir) is not None:
            notice(f"{sweep_dir} is still running; its report.html is rewritten when it ends")
        else:
            summary = write_outputs(sweep_dir, study, spec)
            notice(f"wrote {sweep_dir / 'report.html'}")
            if args.json:
                print_json(summary)
                return 0
    if args.json:
        print_json({"study": record["study"], "metric": spec.metric, "trials": rows})
        return 0
    print(format_table(rows, params, spec.metric))
    return 0
