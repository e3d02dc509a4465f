"""``cnnlab predict RUN_DIR IMAGE...``: top-k classes with probabilities."""

from __future__ import annotations

from cnnlab.commands.common import print_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="classify image files with a trained run",
        description="Each image is decoded, converted to the run's channels and size (with the run's "
                    "data.resize policy) and normalised as in training. A folder stands for the image "
                    "files directly inside it (.png/.jpg/.jpeg/.bmp, one level, sorted by name).")
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`, or a MODEL.onnx from `cnnlab export` "
                                    "(run with ONNX Runtime alone)")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, BMP), or folders of them")
    p.add_argument("-k", "--top-k", type=int, default=3,
                   help="classes to show per image, at least 1 (default 3; more than the run has shows all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.errors import CnnlabError

    if args.top_k < 1:  # checked before the run and the images are loaded
        raise CnnlabError(f"-k/--top-k {args.top_k} must be at least 1")
    if str(args.run_dir).endswith(".onnx"):  # ONNX Runtime alone: torch is never imported on this path
        from cnnlab.transfer.onnx_predict import predict_onnx

        results = predict_onnx(args.run_dir, args.images, args.top_k)
    else:
        from cnnlab.predict import predict_files

        results = predict_files(args.run_dir, args.images, args.top_k)
    if args.json:
        print_json({"run_dir": args.run_dir, "predictions": results})
        return 0
    for item in results:
        best = ", ".join(f"{p['class']} {p['probability']:.3f}" for p in item["top"])
        print(f"{item['image']}: {best}")
    return 0
