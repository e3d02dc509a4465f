"""``cnnlab ablate CONFIG [key=value ...] [--techniques a,b] [--seeds N] [--out DIR]``."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import notice, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ablate",
        help="measure what each technique buys: leave-one-out from the full recipe, add-one to a plain baseline",
        description=(
            "Ablation. The full recipe is CONFIG with every technique on (its own setting, or a default where it "
            "does not use one); the plain baseline has every technique off. Trains full, plain, full minus each "
            "technique and plain plus each technique, --seeds times each, and reports the task's test metric "
            "(accuracy; a detector's mAP@0.5) as mean ± std and median, its change against the reference "
            "(better/worse) and training seconds per variant, a bar chart (ablation.png) and ablation.json. "
            "Techniques: normalization, augmentation, residual, batchnorm, onecycle, weight_decay, clipping, adam, "
            "dropout, label_smoothing; one the model cannot switch is reported as not applicable, one that sets a "
            "key the task does not use (label_smoothing for a detector) is left out of the default set with a "
            "notice and refused when named."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="preset name or YAML file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (applied to every variant)")
    p.add_argument("--techniques", help="comma-separated subset (default: all)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per variant (default 1)")
    p.add_argument("--out", help="output directory (default runs/ablate-<name>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory cnnlab made")
    p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--json", action="store_true", help="print ablation.json's content as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no line per run")
    p.set_defaults(func=run)


def run(args) -> int:
    import time
    from pathlib import Path

    from cnnlab.config import load_config  # why lazy: `cnnlab --help` imports every command module; the library (and torch) loads when the command runs
    from cnnlab.tune.ablation import format_table, parse_techniques, run_ablation

    # None: the default set, less what the config's task does not use (named ones the task ignores are refused)
    techniques = None if args.techniques is None else parse_techniques(args.techniques)
    cfg = load_config(args.config, list(args.overrides))
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    out = Path(args.out) if args.out else Path("runs") / f"ablate-{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    record = run_ablation(cfg, out, techniques=techniques, seeds=args.seeds, overwrite=args.overwrite,
                          quiet=args.quiet, source=args.config)
    if args.json:
        print_json(record)
        return 0
    print(format_table(record))
    notice(f"ablation directory: {out} (ablation.json, ablation.png)")
    return 0
