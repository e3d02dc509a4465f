"""``cnnlab train PRESET|FILE.yaml [key=value ...] [--out DIR]``."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import notice, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a preset or YAML file",
        description=(
            "Train a CNN. PRESET is a shipped recipe (see `cnnlab presets`) or a YAML file; "
            "any config key can be overridden as key=value, e.g. `cnnlab train mnist-fast train.epochs=2 "
            "optim.lr=0.01 model.dropout=0.25`. Writes a run directory with config.yaml, metrics.jsonl, "
            "summary.json, best.pt/last.pt/final.pt and curves.png, marked by a .cnnlab-run file and locked "
            "while the run lasts. --overwrite replaces only such a marked run directory. --resume continues a "
            "run exactly; key=value overrides given with it are recorded in its config.yaml (the config they "
            "replace goes to config_history.yaml); a run that already finished is left as it is."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("preset", nargs="?", help="preset name or YAML file (omit with --resume)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--out", help="run directory (default runs/<name>-<time>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run directory (only one cnnlab made: marked by .cnnlab-run)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last.pt exactly")
    p.add_argument("--data-dir", help="directory holding the datasets (before $CNNLAB_DATA and ./data)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.errors import CnnlabError  # why lazy: `cnnlab --help` imports every command module; the library (and torch) loads when the command runs
    from cnnlab.train.distributed import is_lead_process
    from cnnlab.runs import config_inputs
    from cnnlab.train.run import train

    try:
        cfg, out = _config(args)
    except CnnlabError as exc:  # a config error: under torchrun every rank meets it, rank 0 prints it
        exc.every_rank = True
        raise
    summary = train(cfg, out, overwrite=args.overwrite, resume=bool(args.resume), quiet=args.quiet,
                    inputs=config_inputs(cfg, args.preset))
    if not is_lead_process():  # under torchrun, rank 0 alone prints (every rank returns the same status)
        return {"nonfinite_loss": 1, "interrupted": 130}.get(summary["status"], 0)
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    if summary["status"] == "nonfinite_loss":
        notice(f"cnnlab: error: training stopped: non-finite loss at step {summary['nonfinite_step']} "
               f"(see {summary['run_dir']}/summary.json); lower optim.lr or set train.clip_norm")
        return 1
    if summary["status"] == "interrupted":
        return 130
    return 0


def _config(args):
    """The run's config and output directory from the command line (or the run being resumed)."""
    from cnnlab.config import config_with_overrides, load_config
    from cnnlab.errors import CnnlabError
    from cnnlab.runs import read_run_config

    overrides = list(args.overrides)
    if args.resume:
        if args.out is not None:
            raise CnnlabError(f"--resume continues {args.resume} in place; drop --out {args.out}")
        if args.overwrite:
            raise CnnlabError("--resume continues a run and --overwrite replaces one; choose one")
        if args.preset and "=" in args.preset:
            overrides.insert(0, args.preset)
        elif args.preset:
            raise CnnlabError("--resume continues a run with its stored config; do not also give a preset")
        cfg = config_with_overrides(read_run_config(args.resume), overrides)
        out = args.resume
    else:
        if not args.preset:
            raise CnnlabError("name a preset or YAML file, e.g. `cnnlab train mnist-fast` (see `cnnlab presets`)")
        cfg = load_config(args.preset, overrides)
        out = args.out
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    return cfg, out


def _print_summary(s: dict) -> None:
    val = s.get("best_val_accuracy")
    notice(f"run directory: {s['run_dir']}")
    notice(f"epochs {s['epochs']}  steps {s['steps']}  train {s['train_seconds']:.1f}s  "
           f"({s['images_per_second']:.0f} images/s)  params {s['params']:,}"
           + (f"  best val accuracy {val:.4f}" if val is not None else ""))
    from cnnlab.tasks import get_task

    line = get_task(s.get("task", "classify")).describe_test(s)  # the task's headline: accuracy, mAP, ...
    if line is not None:
        print(line)

