"""``cnnlab predict RUN_DIR IMAGE...``: what the run's task predicts (top-k classes with probabilities, or boxes),
through the run's reader; ``predict RUN_DIR VIDEO``: see ``_video``."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json

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


def run(args) -> int:
    from cnnlab.commands._video import is_video_request, run_video
    if is_video_request(args):  # a video file, or a folder of frames with --video (cnnlab.video)
        return run_video(args)
    reader = _reader(args.run_dir)  # the run's task says which options apply and what is printed
    options = reader.take_options("predict", vars(args), args.run_dir)
    results = reader.predict(args.run_dir, args.images, **options)
    if args.json:
        print_json(reader.predictions_json(args.run_dir, results))
        return 0
    lines, drawn = reader.prediction_text(results, options)
    if lines:
        print("\n".join(lines))
    if drawn:
        notice(drawn)
    return 0


def _reader(run_dir):
    """The run's reader; an exported MODEL.onnx is a classifier, read without torch (so without cnnlab.runs)."""
    from cnnlab.tasks import get_reader

    if str(run_dir).endswith(".onnx"):
        return get_reader("classify")
    from cnnlab.runs import run_reader

    return run_reader(run_dir)
