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

from cnnlab.errors import CnnlabError

DESCRIPTION = (
    "Count parameters (trainable and frozen), multiply-accumulates (1 MAC = 2 FLOPs; conv and linear "
    "layers), and activation memory per layer, then measure inference and training-step latency "
    "(median after warm-up). MODEL|RUN_DIR is a registered model name or a run directory."
)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="C,H,W", help="input size (default: the model's own, or the run's)")
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="batch size for counts and timing (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--compare", metavar="OTHER",
                        help="a second model name or run directory, side by side with ratios B/A; quote it "
                             "to give it options: --compare 'mobilenet_v2 width_mult=0.5'")
    parser.add_argument("--no-timing", action="store_true", help="counts only; skip the latency measurements")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before timing (default 3)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls; the median is reported (default 10)")
    parser.add_argument("--device", default="cpu", help="device for timing: cpu, cuda, cuda:1, auto (default cpu)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU intra-op threads for timing (default: torch's)")
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
    parser = argparse.ArgumentParser(prog="cnnlab profile MODEL|RUN_DIR", description=DESCRIPTION)
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
        raise CnnlabError(f"--input {text!r} must be three positive integers C,H,W, e.g. --input 3,224,224")
    return parts  # type: ignore[return-value]


def build_target(target: str, overrides: list[str], input_size: tuple[int, int, int] | None):
    """A model name or run directory -> (model, input size, display name)."""
    from cnnlab.config import parse_overrides
    from cnnlab.models import create_model, list_models, model_arguments

    if Path(target).is_dir():
        if overrides:
            raise CnnlabError(f"model options {overrides} cannot change a trained run's model ({target}); "
                              "profile the model by name instead")
        model, run_input = load_run(Path(target))
        return model, input_size or run_input, Path(target).name

    names = list_models()
    if target not in names:
        close = difflib.get_close_matches(target, names, n=3, cutoff=0.4)
        hint = f"nearest: {', '.join(close)}" if close else f"registered models: {', '.join(names)}"
        raise CnnlabError(f"'{target}' is neither a run directory nor a registered model; {hint}")
    options = {k[len("model."):] if k.startswith("model.") else k: v for k, v in parse_overrides(overrides).items()}
    accepted = model_arguments(target)
    if input_size is not None:
        c, h, w = input_size
        if options.setdefault("in_channels", c) != c:
            raise CnnlabError(f"in_channels={options['in_channels']} contradicts --input with {c} channels")
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


def overrides_keys(overrides: list[str]) -> set[str]:
    return {o.split("=", 1)[0].removeprefix("model.") for o in overrides}


def load_run(run_dir: Path):
    """(model, input size) of a run directory.

    With a checkpoint, the trained model from :func:`cnnlab.runs.load_run_model`; without one
    (a run still in its first epoch), the model built from ``config.yaml`` and ``summary.json``
    -- the counts do not depend on the weights.
    """
    try:
        from cnnlab.runs import WEIGHT_FILES, load_run_model
    except ImportError:  # pragma: no cover - an older cnnlab without the runs module
        WEIGHT_FILES, load_run_model = (), None
    if load_run_model is not None and any((run_dir / name).is_file() for name in WEIGHT_FILES):
        model, input_size = load_run_model(run_dir)
        return model, tuple(input_size)
    import yaml

    from cnnlab.config import config_from_dict
    from cnnlab.models import create_model, model_arguments

    config_path, summary_path = run_dir / "config.yaml", run_dir / "summary.json"
    for path in (config_path, summary_path):
        if not path.is_file():
            raise CnnlabError(f"run directory {run_dir} has no {path.name}; is it the output of `cnnlab train`?")
    cfg = config_from_dict(yaml.safe_load(config_path.read_text()) or {})
    summary = json.loads(summary_path.read_text())
    try:
        c, h, w = (int(v) for v in summary["input_size"])
        num_classes = int(summary["num_classes"])
    except (KeyError, TypeError, ValueError):
        raise CnnlabError(f"{summary_path} lacks 'input_size' [C, H, W] or 'num_classes'") from None
    options = dict(cfg.model.options, in_channels=c, num_classes=num_classes)
    if "image_size" in model_arguments(cfg.model.name):
        options.setdefault("image_size", h)
    return create_model(cfg.model.name, **options), (c, h, w)


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CnnlabError(f"--device {name!r} is not a device; use cpu, cuda, cuda:1 or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CnnlabError(f"--device {name} was asked for but CUDA is not available here; use --device cpu")
    return device


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
        model.to(_device(args.device))
        timings = time_model(model, input_size, batch_size=args.batch, warmup=args.warmup, repeats=args.repeats)
    return prof, timings


def run(args: argparse.Namespace) -> int:
    from cnnlab.commands.common import print_json
    from cnnlab.profile.report import (comparison_dict, format_comparison, format_profile, format_timings,
                                       profile_dict)

    args, overrides = _parse_rest(args)
    if args.batch < 1:
        raise CnnlabError(f"--batch {args.batch} must be a positive integer")
    if args.threads is not None and args.threads < 1:
        raise CnnlabError(f"--threads {args.threads} must be a positive integer")
    if args.repeats < 1 or args.warmup < 0:
        raise CnnlabError(f"--repeats must be >= 1 and --warmup >= 0, got {args.repeats} and {args.warmup}")
    input_size = parse_input_size(args.input) if args.input else None
    prof, timings = _measure(build_target(args.target, overrides, input_size), args)
    other = None
    if args.compare:
        words = args.compare.split()
        other = _measure(build_target(words[0], words[1:], input_size), args)

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
