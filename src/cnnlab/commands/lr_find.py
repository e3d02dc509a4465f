"""``cnnlab lr-find CONFIG [key=value ...] [--steps N] [--start-lr A] [--end-lr B] [--out DIR] [--json]``."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lr-find", help="learning-rate range test: the loss against an exponentially rising rate",
        description=("Train a fresh copy of CONFIG's model for up to --steps batches while the learning rate rises "
                     "exponentially from --start-lr to --end-lr; smooth the loss, stop where it diverges, and "
                     "suggest a peak rate for a one-cycle schedule (the middle of the smoothed curve's floor / 10: the floor is where the loss is within 10%% of its fall above the minimum). Writes "
                     "OUT/lr_find.png (suggestion marked) and OUT/lr_find.json; no run is changed. In a config, "
                     "schedule.max_lr=find runs the same test before training and uses its suggestion."))
    p.add_argument("config", help="preset name or YAML file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    # default None: train/lr_find.py's DEFAULT_STEPS (90) decides, so this module does not import torch
    p.add_argument("--steps", type=int, default=None,
                   help="most batches to test (default 90: at most 5%% of cifar10-cpu's training)")
    p.add_argument("--start-lr", type=float, default=1e-7, help="first learning rate (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last learning rate (default 10)")
    p.add_argument("--out", help="output directory (default runs/lr-find-<name>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory cnnlab made")
    p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--json", action="store_true", help="print lr_find.json's content as one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    import math
    import time
    from pathlib import Path

    from cnnlab.config import load_config  # why lazy: `cnnlab --help` imports every command module; the library (and torch) loads when the command runs
    from cnnlab.errors import CnnlabError
    from cnnlab.train.lr_find import run_lr_find

    for name, value in (("--start-lr", args.start_lr), ("--end-lr", args.end_lr)):
        if not math.isfinite(value) or not 0 < value <= 1e6:
            raise CnnlabError(f"{name} {value:g} is out of range; expected a number in (0, 1e6]")
    cfg = load_config(args.config, list(args.overrides))
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    out = Path(args.out) if args.out else Path("runs") / f"lr-find-{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    from cnnlab.runs import config_inputs

    steps = {} if args.steps is None else {"steps": args.steps}
    result = run_lr_find(cfg, out, start_lr=args.start_lr, end_lr=args.end_lr, **steps,
                         overwrite=args.overwrite, notice=None if args.json else notice,
                         inputs=config_inputs(cfg, args.config))
    if args.json:
        print_json(result)
        return 0
    low, high = result["floor_lrs"]
    print(f"suggested peak lr {result['suggested_lr']:.3g} (floor of the smoothed loss {low:.3g} to {high:.3g}, lowest at "
          f"{result['min_loss_lr']:.3g}, steepest fall at {result['steepest_lr']:.3g}; {result['steps']} steps, {result['stop']})")
    print(f"plot: {result['plot']}")
    return 0
