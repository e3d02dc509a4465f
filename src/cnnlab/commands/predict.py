"""``cnnlab predict RUN_DIR IMAGE...``: top-k classes with probabilities; ``predict RUN_DIR VIDEO``: see ``_video``."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="classify image files with a trained run",
        description="Each image is decoded, converted to the run's channels and size (with the run's "
                    "data.resize policy) and normalised as in training. A folder stands for the image "
                    "files directly inside it (.png/.jpg/.jpeg/.bmp, one level, sorted by name).")
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`, or a MODEL.onnx from `cnnlab export` "
                                    "(run with ONNX Runtime alone)")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, BMP), or folders of them; or one video")
    p.add_argument("-k", "--top-k", type=int, default=None,
                   help="classes to show per image, at least 1 (default 3; more than the run has shows all)")
    p.add_argument("--out", metavar="DIR",
                   help="detection runs: draw each image with its boxes, labels and scores into DIR; "
                        "a video: the annotated video file (e.g. out.mp4)")
    p.add_argument("--overwrite", action="store_true", help="replace --out (only one cnnlab made)")
    p.add_argument("--score-threshold", type=float, metavar="S",
                   help="detection runs: list detections scoring at least S, in [0, 1] (default 0.25)")
    p.add_argument("--iou-threshold", type=float, metavar="T",
                   help="detection runs: NMS IoU threshold in [0, 1] (default: the run's detect.iou_threshold)")
    p.add_argument("--max-detections", type=int, metavar="N",
                   help="detection runs: at most N boxes per image (default: the run's detect.max_detections)")
    p.add_argument("--native-size", action="store_true",
                   help="classify each image at its own size (networks that end in global pooling only)")
    p.add_argument("--json", action="store_true", help="print one JSON object (a video: JSON lines, see below)")
    from cnnlab.commands._video import add_video_arguments

    add_video_arguments(p)
    p.set_defaults(func=run)


def _run_detection(args) -> int:
    """Boxes in the original image's pixels, with labels and scores; drawn into --out DIR if given."""
    from cnnlab.detect.runs import PREDICT_SCORE, predict_detection_files

    results = predict_detection_files(
        args.run_dir, args.images, out_dir=args.out, overwrite=args.overwrite,
        score_threshold=PREDICT_SCORE if args.score_threshold is None else args.score_threshold,
        iou_threshold=args.iou_threshold, max_detections=args.max_detections)
    if args.json:
        print_json({"run_dir": args.run_dir, "predictions": {r["image"]: r["detections"] for r in results}})
        return 0
    for r in results:
        print(f"{r['image']} ({r['width']}x{r['height']}): {len(r['detections'])} detection(s)")
        for d in r["detections"]:
            x1, y1, x2, y2 = d["box"]
            print(f"  {d['label']} {d['score']:.3f} [{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]")
    if args.out:
        notice(f"drew {len(results)} image(s) into {args.out}")
    return 0


def run(args) -> int:
    from cnnlab.commands._video import is_video_request, run_video
    if is_video_request(args):  # a video file, or a folder of frames with --video (cnnlab.video)
        return run_video(args)

    if not str(args.run_dir).endswith(".onnx"):  # the ONNX path must not import torch: no detect import there
        from cnnlab.detect.runs import is_detection_run

        if is_detection_run(args.run_dir):
            if args.native_size:
                raise CnnlabError("--native-size applies to classification runs; a detector letterboxes every "
                                  "image to its size and maps the boxes back")
            if args.top_k is not None:
                raise CnnlabError(f"-k/--top-k {args.top_k} applies to classification runs; {args.run_dir} is a "
                                  "detection run, which lists every box scoring at least --score-threshold "
                                  "(cap them with --max-detections N)")
            return _run_detection(args)
    if (args.out or args.overwrite or args.score_threshold is not None or args.iou_threshold is not None
            or args.max_detections is not None):
        raise CnnlabError("--out, --overwrite, --score-threshold, --iou-threshold and --max-detections apply to "
                          "detection runs (task: detect) only")

    if args.top_k is None:
        args.top_k = 3
    if args.top_k < 1:  # checked before the run and the images are loaded
        raise CnnlabError(f"-k/--top-k {args.top_k} must be at least 1")
    if str(args.run_dir).endswith(".onnx"):  # ONNX Runtime alone: torch is never imported on this path
        from cnnlab.transfer.onnx_predict import predict_onnx

        if args.native_size:
            raise CnnlabError("--native-size needs the run directory: an exported ONNX model has a fixed input size")
        results = predict_onnx(args.run_dir, args.images, args.top_k)
    else:
        from cnnlab.predict import predict_files

        results = predict_files(args.run_dir, args.images, args.top_k, native_size=args.native_size)
    if args.json:
        print_json({"run_dir": args.run_dir, "predictions": results})
        return 0
    for item in results:
        best = ", ".join(f"{p['class']} {p['probability']:.3f}" for p in item["top"])
        print(f"{item['image']}: {best}")
    return 0
