"""``cnnlab bench train|conv|explain|transfer|sweep|speedrun|ddp|detect``: parses the options and calls the benchmarks in :mod:`cnnlab.bench`."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure speed: training time to a target accuracy, conv algorithms, ...",
        description="Benchmarks print a table and write JSON to benchmarks/results/.",
    )
    inner = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    _register_train(inner)
    _register_conv(inner)
    _register_explain(inner)
    _register_transfer(inner)
    _register_sweep(inner)
    _register_speedrun(inner)
    _register_ddp(inner)
    _register_detect(inner)
    _register_video(inner)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _add_result_args(p, out_dir: str = "benchmarks/results", data_dir: bool = False) -> None:
    """The options every benchmark shares: [--data-dir], --out-dir (where the JSON goes), --json."""
    if data_dir:
        p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--out-dir", default=out_dir, help="where the JSON result goes")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")


def _description(module) -> str | None:
    """The second paragraph of a benchmark module's docstring (the first is its title)."""
    parts = (module.__doc__ or "").split("\n\n")
    return parts[1] if len(parts) > 1 else None


# ---------------------------------------------------------------------------- bench train

def _register_train(subparsers) -> None:
    import cnnlab.bench.train  # light: no torch at import time

    p = subparsers.add_parser("train", help="seconds of training to a target test accuracy vs a baseline",
                              description=_description(cnnlab.bench.train))
    p.add_argument("preset", help="the preset to measure, e.g. mnist-fast")
    p.add_argument("--baseline", required=True, help="the preset to compare with, e.g. mnist-classic")
    p.add_argument("--target", type=float, default=0.99, help="test accuracy to reach (default 0.99)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per preset (default 3)")
    _add_result_args(p, data_dir=True)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides applied to both presets")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    from cnnlab.bench.train import compare_presets, format_table

    payload = compare_presets(args.preset, args.baseline, list(args.overrides), seeds=args.seeds,
                              target=args.target, data_dir=args.data_dir, out_dir=args.out_dir, progress=notice)
    return _report(payload, format_table, args.json)


# ---------------------------------------------------------------------------- bench conv

def _register_conv(subparsers) -> None:
    import cnnlab.bench.conv as conv  # light: no torch at import time

    defaults = conv.ConvBenchSettings()
    parser = subparsers.add_parser(
        "conv",
        help="convolution algorithms vs kernel size: F.conv2d, FFTConv2d, scratch direct/im2col/fft/winograd",
        description=_description(conv),
    )
    parser.add_argument("--kernels", default=",".join(map(str, defaults.kernels)),
                        help="odd kernel sizes (default 3..31)")
    parser.add_argument("--shapes", default=",".join(defaults.shapes), help="mnist, cifar, large (default all)")
    parser.add_argument("--repeats", type=int, default=defaults.repeats,
                        help="timed runs per measurement (best is kept)")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="torch and BLAS threads for every method (default 1: fair and steady on a shared CPU)")
    parser.add_argument("--no-backward", action="store_true", help="time the forward pass only")
    parser.add_argument("--direct-limit", type=float, default=defaults.direct_limit,
                        help="skip scratch direct above this many multiply-adds (default 4e8: it has no BLAS)")
    parser.add_argument("--backward-limit", type=float, default=defaults.backward_limit,
                        help="skip forward+backward of a method whose forward took more seconds than this")
    parser.add_argument("--im2col-limit-mb", type=float, default=defaults.im2col_limit_mb,
                        help="skip scratch im2col when its column matrix exceeds this many MB (default 256)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, kernels 3 and 5, one repeat (smoke test)")
    parser.add_argument("--out-dir", default=defaults.out_dir, help="where the JSON result goes")
    parser.add_argument("--plot", default=defaults.plot, help="plot of time vs kernel size ('' for none)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    parser.set_defaults(func=run_conv)


def _parse_ints(text: str, what: str) -> list[int]:
    """``"3,5,7"`` -> ``[3, 5, 7]``; anything else is a one-line error naming the option."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise CnnlabError(f"--{what} must be positive integers separated by commas, got '{text}'")
    return values


def run_conv(args) -> int:
    from cnnlab.bench.conv import ConvBenchSettings, run_conv_bench

    settings = ConvBenchSettings(
        kernels=_parse_ints(args.kernels, "kernels"),
        shapes=[s.strip() for s in args.shapes.split(",") if s.strip()],
        repeats=args.repeats, threads=args.threads, backward=not args.no_backward,
        direct_limit=args.direct_limit, backward_limit=args.backward_limit, im2col_limit_mb=args.im2col_limit_mb,
        quick=args.quick, out_dir=args.out_dir, plot=args.plot)
    # With --json, stdout holds only the JSON object: the table goes to stderr with the notices.
    say = notice if args.json else (lambda text: print(text, flush=True))
    payload = run_conv_bench(settings, say)
    if args.json:
        print_json(payload)
    return 0


# ---------------------------------------------------------------------------- bench explain

def _register_explain(subparsers) -> None:
    import cnnlab.bench.explain as explain  # light: no torch at import time

    defaults = explain.ExplainBenchSettings()
    p = subparsers.add_parser("explain", help="images/s of every attribution method on ResNet-9 at 32x32; "
                                              "occlusion batched vs one at a time",
                              description=_description(explain))
    p.add_argument("--images", type=int, default=defaults.images, help="images per measurement (default 16)")
    p.add_argument("--slow-images", type=int, default=defaults.slow_images,
                   help="images for one-at-a-time occlusion (default 4)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="internal batch size (default 256)")
    p.add_argument("--repeats", type=int, default=defaults.repeats, help="timed runs per method; the best is kept")
    p.add_argument("--threads", type=int, default=defaults.threads, help="torch threads (default 1)")
    p.add_argument("--width", type=int, default=defaults.width, help="ResNet-9 width (default 64)")
    p.add_argument("--methods", nargs="+", default=None, metavar="CASE",
                   help=f"cases to run (default all: {', '.join(explain.CASES)})")
    _add_result_args(p, out_dir=defaults.out_dir)
    p.set_defaults(func=run_explain)


def run_explain(args) -> int:
    from cnnlab.bench.explain import ExplainBenchSettings, run_explain_bench

    settings = ExplainBenchSettings(images=args.images, slow_images=args.slow_images, batch_size=args.batch_size,
                                    repeats=args.repeats, threads=args.threads, width=args.width,
                                    out_dir=args.out_dir)
    if args.methods:
        settings.methods = [m for item in args.methods for m in item.split(",") if m]
    say = notice if args.json else (lambda text: print(text, flush=True))
    payload = run_explain_bench(settings, say)
    if args.json:
        print_json(payload)
    return 0


# ---------------------------------------------------------------------------- bench transfer

def _register_transfer(subparsers) -> None:
    import cnnlab.bench.transfer as transfer  # light: no torch at import time

    p = subparsers.add_parser("transfer", help="cached features vs live backbone; ONNX Runtime vs PyTorch",
                              description=_description(transfer))
    p.add_argument("--images", type=int, default=5000, help="CIFAR-10 training images per epoch (default 5000)")
    p.add_argument("--backbone", help="a run directory (default: the folder-convnet network at 32x32)")
    p.add_argument("--models", default=",".join(transfer.INFERENCE_MODELS),
                   help="inference models (default mnist-fast,resnet9,resnet18)")
    p.add_argument("--threads", type=int, default=1, help="threads for PyTorch and ONNX Runtime (default 1)")
    p.add_argument("--lite0-size", type=int, default=160, help="EfficientNet-Lite0 fine-tuning image side (default 160)")
    p.add_argument("--lite0-batch", type=int, default=32, help="EfficientNet-Lite0 batch (default 32)")
    p.add_argument("--lite0-rounds", type=int, default=3,
                   help="interleaved timed rounds per EfficientNet-Lite0 measurement (default 3)")
    p.add_argument("--no-lite0", action="store_true", help="leave out the EfficientNet-Lite0 rows")
    _add_result_args(p, data_dir=True)
    p.set_defaults(func=run_transfer)


def run_transfer(args) -> int:
    from cnnlab.bench.transfer import INFERENCE_MODELS, format_table, run_transfer_bench
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in INFERENCE_MODELS]
    if unknown or not models:
        raise CnnlabError(f"--models takes {', '.join(INFERENCE_MODELS)}, got {args.models!r}")
    if args.images < 64 or args.threads < 1:
        raise CnnlabError("--images must be at least 64 and --threads at least 1")
    if not 32 <= args.lite0_size <= 512 or not 1 <= args.lite0_batch <= 512 or not 1 <= args.lite0_rounds <= 100:
        raise CnnlabError(f"--lite0-size takes 32..512, --lite0-batch 1..512 and --lite0-rounds 1..100, got "
                          f"{args.lite0_size}, {args.lite0_batch} and {args.lite0_rounds}")
    lite0 = {"skip": True} if args.no_lite0 else {"size": args.lite0_size, "batch": args.lite0_batch,
                                                  "rounds": args.lite0_rounds}
    payload = run_transfer_bench(args.images, args.backbone, args.data_dir, models, args.threads, args.out_dir,
                                 say=notice, lite0=lite0)
    return _report(payload, format_table, args.json)


# ---------------------------------------------------------------------------- bench sweep

def _register_sweep(subparsers) -> None:
    import cnnlab.bench.sweep as sweep  # light: no torch or Optuna at import time

    p = subparsers.add_parser("sweep", help="what the pruner saves and what a second worker buys, on one spec",
                              description=_description(sweep))
    p.add_argument("--spec", default="sweep-mnist-quick", help="sweep spec (default sweep-mnist-quick)")
    p.add_argument("--trials", type=int, help="trials per sweep (default: the spec's)")
    p.add_argument("--no-workers", action="store_true", help="skip the 2-worker sweep")
    p.add_argument("--work-dir", help="where the three sweep directories go (default runs/bench-sweep-<time>)")
    _add_result_args(p)
    p.set_defaults(func=run_sweep)


def run_sweep(args) -> int:
    from cnnlab.bench.sweep import bench_sweep, format_table
    from cnnlab.tune.storage import require_optuna

    require_optuna()

    result = bench_sweep(args.spec, args.trials, args.work_dir, args.out_dir, workers=not args.no_workers,
                         progress=notice)
    return _report(result, format_table, args.json)


# ---------------------------------------------------------------------------- bench speedrun

def _register_speedrun(subparsers) -> None:
    import cnnlab.bench.speedrun as speedrun  # light: no torch at import time

    p = subparsers.add_parser("speedrun", help="mean ± std test accuracy and training seconds of a preset over N runs",
                              description=_description(speedrun))
    p.add_argument("preset", help="the preset to run, e.g. mnist-speedrun")
    p.add_argument("--runs", type=int, default=5, help="runs, seeds 0..N-1 (default 5)")
    _add_result_args(p, data_dir=True)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides applied to every run")
    p.set_defaults(func=run_speedrun)


def run_speedrun(args) -> int:
    from cnnlab.bench.speedrun import bench_speedrun, format_table

    payload = bench_speedrun(args.preset, args.runs, list(args.overrides), args.data_dir, args.out_dir,
                             progress=notice)
    return _report(payload, format_table, args.json)


# ---------------------------------------------------------------------------- bench ddp

def _register_ddp(subparsers) -> None:
    import cnnlab.bench.ddp  # light: no torch at import time

    p = subparsers.add_parser("ddp", help="N data-parallel ranks (torchrun, DDP) vs one process with N x the threads",
                              description=_description(cnnlab.bench.ddp))
    p.add_argument("preset", nargs="?", default="mnist-classic", help="the preset to train (default mnist-classic)")
    p.add_argument("--ranks", type=int, default=2, help="DDP processes (default 2)")
    p.add_argument("--threads", type=int, default=1, help="threads per rank (default 1); the one process gets "
                   "ranks x threads")
    p.add_argument("--repeats", type=int, default=1, help="runs of each setup, order alternating (default 1)")
    _add_result_args(p, data_dir=True)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for both setups "
                   "(default train.epochs=1 train.plots=false)")
    p.set_defaults(func=run_ddp)


def run_ddp(args) -> int:
    from cnnlab.bench.ddp import compare_ranks_threads, format_table

    payload = compare_ranks_threads(args.preset, list(args.overrides), ranks=args.ranks, threads=args.threads,
                                    repeats=args.repeats, data_dir=args.data_dir, out_dir=args.out_dir,
                                    progress=notice)
    return _report(payload, format_table, args.json)


# ---------------------------------------------------------------------------- bench detect

def _register_detect(subparsers) -> None:
    import cnnlab.bench.detect as detect  # light: no torch at import time

    p = subparsers.add_parser("detect", help="detector training and inference images/s at 128 and 320; "
                                             "the NMS share of inference", description=_description(detect))
    p.add_argument("--preset", default="detect-raccoon", help="detection preset whose detector is timed "
                                                               "(default detect-raccoon)")
    p.add_argument("--sizes", default=",".join(map(str, detect.DEFAULT_SIZES)),
                   help="square input sides (default 128,320)")
    p.add_argument("--train-batch", type=int, default=16, help="training batch (default 16)")
    p.add_argument("--infer-batch", type=int, default=32, help="inference batch (default 32)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--budget", type=float, default=3.0, help="seconds of timed calls per measurement (default 3)")
    _add_result_args(p)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the preset (e.g. model.width=32)")
    p.set_defaults(func=run_detect)


def _detector_sizes(text: str) -> list[int]:
    """``--sizes`` of a detector benchmark: multiples of 32 up to 2048 (the detector's coarsest stride)."""
    sizes = _parse_ints(text, "sizes")
    if any(s % 32 for s in sizes) or max(sizes) > 2048:
        raise CnnlabError(f"--sizes must be multiples of 32 up to 2048 (the detector's coarsest stride), "
                          f"got {text!r}")
    return sizes


def _check_counts(*bounds: tuple[str, int, int]) -> None:
    """Each (option, value, top) must have 1 <= value <= top."""
    for name, value, top in bounds:
        if not 1 <= value <= top:
            raise CnnlabError(f"{name} {value} is out of range; expected 1 to {top}")


def run_detect(args) -> int:
    from cnnlab.bench.detect import format_table, run_detect_bench
    sizes = _detector_sizes(args.sizes)
    _check_counts(("--train-batch", args.train_batch, 4096), ("--infer-batch", args.infer_batch, 4096),
                  ("--threads", args.threads, 256))
    if not 0 < args.budget <= 600:
        raise CnnlabError(f"--budget {args.budget} is out of range; expected seconds in (0, 600]")
    payload = run_detect_bench(args.preset, sizes, args.train_batch, args.infer_batch, args.threads,
                               list(args.overrides), args.out_dir, say=notice, budget=args.budget)
    return _report(payload, format_table, args.json)


def _report(payload: dict, format_table, as_json: bool) -> int:
    """The --json object on stdout, or the benchmark's table and where its JSON went."""
    if as_json:
        print_json(payload)
        return 0
    print("\n".join(format_table(payload)))
    notice(f"wrote {payload['json_path']}")
    return 0


# ---------------------------------------------------------------------------- bench video

def _register_video(subparsers) -> None:
    import cnnlab.bench.video as video  # numpy only at import time

    p = subparsers.add_parser("video", help="video frames/s: decode, inference, encode and end to end at 128 and 320",
                              description=_description(video))
    p.add_argument("--preset", default="detect-raccoon", help="detection preset whose detector is timed "
                                                               "(default detect-raccoon)")
    p.add_argument("--sizes", default=",".join(map(str, video.DEFAULT_SIZES)),
                   help="square frame = detector input sides (default 128,320)")
    p.add_argument("--frames", type=int, default=100, help="frames of the synthetic clip (default 100)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each stage's best counts (default 3)")
    p.add_argument("--batch", type=int, default=8, help="frames per model call (default 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    _add_result_args(p)
    p.set_defaults(func=run_video)


def run_video(args) -> int:
    from cnnlab.bench.video import format_table, run_video_bench

    sizes = _detector_sizes(args.sizes)
    _check_counts(("--frames", args.frames, 100_000), ("--batch", args.batch, 1024), ("--threads", args.threads, 256),
                  ("--rounds", args.rounds, 100))
    payload = run_video_bench(args.preset, sizes, args.frames, args.batch, args.threads, args.out_dir, say=notice,
                              rounds=args.rounds)
    return _report(payload, format_table, args.json)
