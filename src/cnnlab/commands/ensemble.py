"""``cnnlab ensemble RUN_DIR ... [--method mean|vote|stack]``, ``--bagging K CONFIG`` and ``--boost K CONFIG``."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ensemble", help="combine trained runs (mean, vote, stacking) or train a bagged or boosted ensemble",
        description=("With run directories: combine their test-set predictions by probability averaging (mean), "
                     "majority vote (vote) or a logistic-regression meta-model on held-out predictions (stack: "
                     "fitted on validation predictions no member trained on, then scoring the test set once), and "
                     "print the ensemble's test accuracy beside "
                     "every member's. With --bagging K CONFIG: train K members on bootstrap samples of the "
                     "training set into OUT/members/ and ensemble them. With --boost K CONFIG (--method boost): SAMME, "
                     "K members trained in sequence on weighted resamples, each weighted by its weighted error."))
    p.add_argument("inputs", nargs="*", help="run directories, or with --bagging: CONFIG [key=value ...]")
    p.add_argument("--method", default=None, help="mean (default), vote, stack; boost with --boost")
    p.add_argument("--bagging", type=int, metavar="K", help="train K members on bootstrap samples of CONFIG")
    p.add_argument("--boost", type=int, metavar="K", help="SAMME boosting: train up to K members of CONFIG in sequence")
    p.add_argument("--out", help="with --bagging/--boost: output directory (default runs/bagging-<name>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory cnnlab made")
    p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no line per member while training")
    p.set_defaults(func=run, overrides=[])  # key=value after the options land here (see cli.main)


def run(args) -> int:
    from cnnlab.tune.ensemble import METHODS

    if args.method == "boost" or args.boost is not None:
        return _boost(args)
    args.method = args.method or "mean"
    if args.method not in METHODS:
        raise CnnlabError(f"unknown --method '{args.method}'; expected one of {', '.join(METHODS)}, or boost")
    overrides = list(getattr(args, "overrides", None) or [])
    if args.bagging is not None:
        import time
        from pathlib import Path

        from cnnlab.tune.ensemble import run_bagging

        cfg, source = _config_from_inputs(args, "--bagging")
        out = Path(args.out) if args.out else Path("runs") / f"bagging-{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = run_bagging(cfg, out, args.bagging, args.method, overwrite=args.overwrite, quiet=args.quiet,
                             source=source)
    else:
        if args.out or args.overwrite or overrides:
            raise CnnlabError("--out, --overwrite and key=value belong to --bagging; to combine runs, give only "
                              "their directories")
        from cnnlab.tune.ensemble import ensemble_runs

        result = ensemble_runs(args.inputs, args.method, data_dir=args.data_dir)
    return _report(args, result)


def _config_from_inputs(args, option: str):
    """The CONFIG [key=value ...] that --bagging/--boost train, with --data-dir applied."""
    from cnnlab.config import load_config
    inputs = list(args.inputs) + list(getattr(args, "overrides", None) or [])
    if not inputs or "=" in inputs[0]:
        raise CnnlabError(f"{option} K needs a CONFIG (preset or YAML file), e.g. "
                          f"`cnnlab ensemble {option} 5 mnist-fast`")
    cfg = load_config(inputs[0], inputs[1:])
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    return cfg, inputs[0]


def _boost(args) -> int:
    import time
    from pathlib import Path

    from cnnlab.tune.boost import run_boosting

    if args.boost is None:
        raise CnnlabError("--method boost trains its own members: `cnnlab ensemble --boost K CONFIG [key=value ...]`")
    if args.method not in (None, "boost") or args.bagging is not None:
        raise CnnlabError("--boost combines its members by SAMME's weighted vote; drop --method and --bagging")
    cfg, source = _config_from_inputs(args, "--boost")
    out = Path(args.out) if args.out else Path("runs") / f"boost-{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return _report(args, run_boosting(cfg, out, args.boost, overwrite=args.overwrite, quiet=args.quiet,
                                      source=source))


def _report(args, result: dict) -> int:
    if result.get("method") == "boost" and result.get("note"):  # SAMME stopped early: said on stderr in every mode
        notice(f"notice: {result['note']}")
    if args.json:
        print_json(result)
        return 0
    for m in result["members"]:
        print(f"member  {m['test_accuracy']:.4f}  {m['run_dir']}")
    print(f"ensemble ({result['method']}, {len(result['members'])} members): test accuracy "
          f"{result['test_accuracy']:.4f}  (best member {result['best_member_accuracy']:.4f})")
    if result.get("note") and result.get("method") != "boost":
        notice(result["note"])
    return 0
