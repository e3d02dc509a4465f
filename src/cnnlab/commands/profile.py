"""``cnnlab profile MODEL|RUN_DIR [key=value ...]``: what a model costs, layer by layer.

Examples::

    cnnlab profile resnet18 --input 3,224,224 num_classes=1000 variant=imagenet --json
    cnnlab profile mobilenet_v2 --compare resnet18 --batch 8
    cnnlab profile runs/cifar10-resnet18 --no-timing

Model options follow the model name as ``key=value`` (YAML-typed, as in
configs); ``in_channels`` and ``image_size`` follow ``--input`` unless given.
"""

from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path

from cnnlab.commands.common import OneLineParser, print_json
from cnnlab.errors import CnnlabError, check_int_range, short_repr

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use

MAX_BATCH = 1 << 16
MAX_WARMUP = 1000
MAX_REPEATS = 10_000

DESCRIPTION = (
    "Count parameters (trainable and frozen), multiply-accumulates (1 MAC = 2 FLOPs; conv and linear "
    "layers), and activation memory per layer, then measure inference and training-step latency "
    "(median after warm-up). MODEL|RUN_DIR is a registered model name or a run directory."
)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="C,H,W", help="input size (default: the model's own, or the run's)")
    parser.add_argument("--batch", type=int, default=1, metavar="N",
                        help=f"batch size for counts and timing, 1 to {MAX_BATCH:,} (default 1); a profile "
                             "needing more than half of the machine's memory is refused with the estimate")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--compare", metavar="OTHER",
                        help="a second model name or run directory, side by side with ratios B/A; quote it "
                             "to give it options: --compare 'mobilenet_v2 width_mult=0.5'")
    parser.add_argument("--no-timing", action="store_true", help="counts only; skip the latency measurements")
    parser.add_argument("--warmup", type=int, default=3, help=f"untimed calls before timing, 0 to {MAX_WARMUP} (default 3)")
    parser.add_argument("--repeats", type=int, default=10,
                        help=f"timed calls, 1 to {MAX_REPEATS}; the median is reported (default 10)")
    parser.add_argument("--device", default="cpu", help="device for timing: cpu, cuda, cuda:1, auto (default cpu)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU intra-op threads for timing, 1 to 4 x the CPU count (default: torch's)")
    parser.add_argument("--no-layers", action="store_true", help="totals only (no per-layer table or rows)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="parameters, MACs/FLOPs, activation memory and latency of a model or a run",
        description=DESCRIPTION,
        epilog="Example: cnnlab profile resnet18 --input 3,224,224 num_classes=1000 variant=imagenet",
    )
    parser.add_argument("target", metavar="MODEL|RUN_DIR")
    # Everything after the target (options and key=value overrides, in any order) is parsed in run().
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="key=value", help="model options, e.g. variant=imagenet")
    _add_options(parser)
    parser.set_defaults(func=run)


def _parse_rest(args: argparse.Namespace) -> tuple[argparse.Namespace, list[str]]:
    """Options may come after the target, mixed with overrides; parse them here."""
    parser = OneLineParser(prog="cnnlab profile MODEL|RUN_DIR", description=DESCRIPTION)
    _add_options(parser)
    defaults = parser.parse_args([])
    late, overrides = parser.parse_known_args(args.rest)
    bad = [o for o in overrides if o.startswith("-")]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    for key, value in vars(late).items():
        if value != getattr(defaults, key):
            setattr(args, key, value)
    return args, overrides


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"3,224,224"`` -> ``(3, 224, 224)``; a single ``"224"`` is not enough (channels are needed)."""
    try:
        parts = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise CnnlabError(f"--input {short_repr(text)} must be three positive integers C,H,W, e.g. --input 3,224,224")
    return parts  # type: ignore[return-value]


def build_target(target: str, overrides: list[str], input_size: tuple[int, int, int] | None):
    """A model name or run directory -> (model, input size, display name)."""
    from cnnlab.config import parse_overrides
    from cnnlab.models import create_model, list_models, model_arguments
    from cnnlab.transfer.pretrained import is_pretrained_name

    if is_pretrained_name(target):  # efficientnet_lite0.in1k: the architecture with its weights
        if overrides:
            raise CnnlabError(f"model options {short_repr(overrides)} cannot change {target}; profile the "
                              f"architecture by name instead ({target.split('.')[0]})")
        model = create_model(target)
        return model, input_size or tuple(model.pretrained_cfg["input_size"]), target
    if Path(target).is_dir():
        if overrides:
            raise CnnlabError(f"model options {short_repr(overrides)} cannot change a trained run's model "
                              f"({target}); profile the model by name instead")
        model, run_input = load_run_model(Path(target))
        return model, input_size or run_input, Path(target).name

    names = list_models()
    built = None if target in names else _config_target(target, overrides, input_size)
    if built is not None:
        return built
    if target not in names:
        close = difflib.get_close_matches(target, names, n=3, cutoff=0.4)
        hint = f"nearest: {', '.join(close)}" if close else f"registered models: {', '.join(names)}"
        raise CnnlabError(f"{short_repr(target)} is neither a run directory nor a registered model; {hint}")
    options = {k[len("model."):] if k.startswith("model.") else k: v for k, v in parse_overrides(overrides).items()}
    accepted = model_arguments(target)
    if input_size is not None:
        c, h, w = input_size
        if options.setdefault("in_channels", c) != c:
            raise CnnlabError(f"in_channels={short_repr(options['in_channels'])} contradicts --input with {c} channels")
        if "image_size" in accepted and "image_size" not in options and h == w:
            options["image_size"] = h
    try:
        model = create_model(target, **options)
    except CnnlabError:
        if "image_size" not in overrides_keys(overrides) and "image_size" in options:
            # The constructor itself refused the size; build it at its own size and let the
            # profiler name the failing layer and the smallest size that works.
            options.pop("image_size")
            model = create_model(target, **options)
        else:
            raise
    return model, input_size or tuple(model.default_input_size), target


def _config_target(target: str, overrides: list[str], input_size):
    """(model, input size, name) that a preset or YAML file builds when its task knows the model's input
    without reading the data (``cnnlab profile detect-mnist-scenes``); None for any other target."""
    from cnnlab.config import load_config, preset_names
    from cnnlab.runs import build_model
    from cnnlab.tasks import get_reader

    if target not in preset_names() and not target.endswith((".yaml", ".yml")):
        return None
    reader = get_reader(load_config(target).task)
    if reader.model_input(load_config(target)) is None:  # its input comes from the data: profile the model by name
        return None
    cfg = load_config(target, overrides)
    size3, classes = reader.model_input(cfg)
    size3 = input_size or size3
    model = build_model(cfg, size3, classes, pretrained=False)
    return model, size3, f"{cfg.name} ({reader.model_name(cfg)})"


def overrides_keys(overrides: list[str]) -> set[str]:
    return {o.split("=", 1)[0].removeprefix("model.") for o in overrides}


def load_run_model(run_dir: Path):
    """(model, input size) of a run directory.

    With a checkpoint, the trained model (:func:`cnnlab.runs.load_run`); without one (a run
    still in its first epoch), the model built from ``config.yaml`` and ``summary.json`` by
    :func:`cnnlab.runs.build_model` -- the counts do not depend on the weights.
    """
    from cnnlab.runs import WEIGHT_FILES, build_model, load_run, load_run_config

    if any((run_dir / name).is_file() for name in WEIGHT_FILES):
        run = load_run(run_dir, task=None, feature_head=True)  # a classifier, a detector, a head: all are counted
        return run.model, tuple(run.input_size)
    cfg = load_run_config(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise CnnlabError(f"run directory {run_dir} has no checkpoint and no summary.json; "
                          "is it the output of `cnnlab train`?")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        c, h, w = (int(v) for v in summary["input_size"])
        num_classes = int(summary["num_classes"])
    except (ValueError, KeyError, TypeError, OverflowError):  # ValueError covers broken JSON and bad UTF-8
        raise CnnlabError(f"{summary_path} lacks 'input_size' [C, H, W] or 'num_classes' (or is not JSON)") from None
    if min(c, h, w, num_classes) < 1:
        raise CnnlabError(f"{summary_path} has input_size {[c, h, w]} and num_classes {num_classes}; "
                          "expected positive integers")
    return build_model(cfg, (c, h, w), num_classes), (c, h, w)


def _device(name: str):
    from cnnlab.runs import resolve_device

    try:
        return resolve_device(name)
    except CnnlabError:  # resolve_device speaks of train.device; here it is an option
        raise CnnlabError(f"--device {short_repr(name)} is not a usable device here; use cpu, cuda, cuda:N "
                          "(with a visible GPU) or auto") from None


def _prepare(target: str, overrides: list[str], input_size, args) -> tuple:
    """:func:`build_target`, refusing first (one line, with the estimate) a profile that would not fit
    in memory; at a large ``--input`` the model is first built only at a small probe size."""
    from cnnlab.profile.memory import check_memory

    built: dict = {}

    def model_at(size):
        built[size] = build_target(target, overrides, size)
        return built[size][0]

    if input_size is None:  # the model's (or the run's) own size: cheap to build, then check the batch
        spec = build_target(target, overrides, None)
        size, model_at = spec[1], (lambda _size: spec[0])
        built[size] = spec
    else:
        size = input_size
    c, h, w = size
    check_memory(model_at, tuple(size), args.batch, training=not args.no_timing,
                 what=f"profiling {short_repr(target)} at {c},{h},{w} with --batch {args.batch}")
    return built.get(tuple(size)) or build_target(target, overrides, input_size)


def _measure(spec: tuple, args: argparse.Namespace):
    import torch

    from cnnlab.profile import profile_model, time_model

    model, input_size, name = spec
    threads = torch.get_num_threads()
    # The counting pass needs shapes, not speed records: one intra-op thread avoids OpenMP
    # spin-waiting on a busy machine (ResNet-50 at 224x224: 0.37 s with 1 thread, 4 s with 2
    # on a loaded 2-core CPU).
    torch.set_num_threads(1)
    try:
        prof = profile_model(model, input_size, batch_size=args.batch, name=name)
    finally:
        torch.set_num_threads(threads)
    timings = None
    if not args.no_timing:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        try:
            model.to(_device(args.device))
            timings = time_model(model, input_size, batch_size=args.batch, warmup=args.warmup, repeats=args.repeats)
        except torch.OutOfMemoryError:
            raise CnnlabError(f"timing {name} with --batch {args.batch} ran out of device memory on "
                              f"{args.device}; use a smaller --batch or --input, or --no-timing") from None
        finally:
            torch.set_num_threads(threads)
    return prof, timings


def run(args: argparse.Namespace) -> int:
    from cnnlab.profile.report import (comparison_dict, format_comparison, format_profile, format_timings,
                                       profile_dict)

    from cnnlab.config import max_threads

    args, overrides = _parse_rest(args)
    # Every number is checked before anything is built (a huge --threads crashes libgomp).
    check_int_range("--batch", args.batch, 1, MAX_BATCH)
    if args.threads is not None:
        check_int_range("--threads", args.threads, 1, max_threads(), "at most 4 x this machine's CPU count")
    check_int_range("--warmup", args.warmup, 0, MAX_WARMUP)
    check_int_range("--repeats", args.repeats, 1, MAX_REPEATS)
    input_size = parse_input_size(args.input) if args.input else None
    if not args.no_timing:
        _device(args.device)  # a bad --device is reported before the counting pass, not after
    compare = args.compare.split() if args.compare else []
    if args.compare is not None and not compare:
        raise CnnlabError("--compare needs a model name or run directory")
    spec = _prepare(args.target, overrides, input_size, args)
    other_spec = _prepare(compare[0], compare[1:], input_size, args) if compare else None
    prof, timings = _measure(spec, args)
    other = _measure(other_spec, args) if other_spec else None

    layers = not args.no_layers
    if args.json:
        if other is None:
            print_json(profile_dict(prof, timings, layers=layers))
        else:
            print_json({
                "models": [profile_dict(prof, timings, layers=layers), profile_dict(*other, layers=layers)],
                "ratios": comparison_dict(prof, other[0], timings or (), other[1] or ()),
            })
        return 0
    for p, t in [(prof, timings)] + ([other] if other else []):
        print(format_profile(p) if layers else _totals_line(p))
        if t:
            print()
            print(format_timings(t))
        print()
    if other:
        print(format_comparison(prof, other[0], timings or (), other[1] or ()))
    return 0


def _totals_line(prof) -> str:
    from cnnlab.profile.report import human, human_bytes

    return (f"{prof.model}: {prof.params:,} parameters, {human(prof.macs_per_image)} MACs per image, "
            f"activations {human_bytes(prof.activation_bytes)} (batch {prof.batch_size})")
