"""``cnnlab cv CONFIG --folds K [key=value ...] [--out DIR]``."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cv", help="k-fold cross-validation of a config (stratified for classifiers, shuffled for detectors)",
        description=("Split the training images into K folds (a classifier's stratified by class, a detector's "
                     "shuffled images with their boxes); train CONFIG K times, each time holding out one fold, and "
                     "report the task's test metric (accuracy; a detector's mAP@0.5) on each held-out fold with the "
                     "mean ± std. Each fold is a run directory under OUT/folds/; cv.json holds the numbers, "
                     "folds.json the held-out items of each fold."))
    p.add_argument("config", help="preset name or YAML file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--folds", type=int, default=5, help="number of folds K (default 5)")
    p.add_argument("--out", help="output directory (default runs/cv-<name>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory cnnlab made")
    p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--json", action="store_true", help="print cv.json's content as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no line per fold")
    p.set_defaults(func=run)


def run(args) -> int:
    import time
    from pathlib import Path

    from cnnlab.config import load_config  # why lazy: `cnnlab --help` imports every command module; the library (and torch) loads when the command runs
    from cnnlab.tune.cv import run_cv

    cfg = load_config(args.config, list(args.overrides))
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    out = Path(args.out) if args.out else Path("runs") / f"cv-{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    record = run_cv(cfg, out, args.folds, overwrite=args.overwrite, quiet=args.quiet, source=args.config)
    if args.json:
        print_json(record)
        return 0
    from cnnlab.tasks import task_class

    metric, name = record["metric"], task_class(cfg.task).headline.name
    for r in record["per_fold"]:
        value = "-" if r[metric] is None else f"{r[metric]:.4f}"
        print(f"fold {r['fold']}  {name} {value}  ({r['held_out_images']} held out, {r['train_images']} trained on)")
    if record["test_metric_mean"] is not None:
        print(f"mean {name} {record['test_metric_mean']:.4f} ± {record['test_metric_std']:.4f} "
              f"over {record['folds']} folds")
    notice(f"cv directory: {out}")
    return 0
