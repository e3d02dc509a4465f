"""``cnnlab eval RUN_DIR``: test accuracy, per-class accuracy, confusion matrix, top losses."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a trained run on its test set",
        description="Reloads the run's tested weights, scores the test split, and writes "
                    "confusion.png, top_losses.png and eval.json into the run directory.")
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`")
    p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--weights", choices=["final.pt", "best.pt", "last.pt"], help="which checkpoint (default: final)")
    p.add_argument("--top", type=int, default=None, help="images in top_losses.png, 1 to 256 (default 16)")
    p.add_argument("--tta", choices=["none", "flip", "translate", "flip-translate"],
                   help="test-time augmentation: mean logits over flipped (and shifted) copies "
                        "(default: the run's train.tta)")
    p.add_argument("--score-threshold", type=float, metavar="S",
                   help="detection runs: drop detections scoring below S, in [0, 1] (default: the run's detect.*)")
    p.add_argument("--iou-threshold", type=float, metavar="T",
                   help="detection runs: the NMS IoU threshold, in [0, 1] (default: the run's detect.*)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _run_detection(args) -> int:
    """A detection run: mAP@0.5 and mAP@[.5:.95], overall and per class; pr_curve.png, detections.png."""
    from cnnlab.detect.runs import evaluate_detection_run

    r = evaluate_detection_run(args.run_dir, data_dir=args.data_dir, weights=args.weights,
                               score_threshold=args.score_threshold, iou_threshold=args.iou_threshold)
    if args.json:
        print_json(r)
        return 0
    print(f"mAP@0.5: {r['map50']:.4f}  mAP@[.5:.95]: {r['map']:.4f}  ({r['images']} test images, "
          f"{r['boxes']} boxes, weights {r['weights']})")
    width = max(len(c) for c in r["per_class"]) + 2
    print(f"  {'class':<{width}}{'mAP@0.5':>9}{'mAP@[.5:.95]':>14}{'boxes':>7}")
    for name, v in r["per_class"].items():
        fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731  (a class with no test box)
        print(f"  {name:<{width}}{fmt(v['map50']):>9}{fmt(v['map']):>14}{v['boxes']:>7}")
    notice(f"wrote {r['pr_curve_png']} and {r['detections_png']}")
    return 0


def run(args) -> int:
    from cnnlab.detect.runs import is_detection_run
    from cnnlab.errors import CnnlabError, check_int_range

    if is_detection_run(args.run_dir):
        if args.tta is not None:  # the detector has no TTA: ignoring it would report a non-TTA mAP as TTA
            raise CnnlabError("--tta applies to classification runs only; a detection run is evaluated "
                              "without test-time augmentation (drop --tta)")
        if args.top is not None:  # a detection run draws no top_losses.png
            raise CnnlabError("--top applies to classification runs only (top_losses.png); drop it for a detection run")
        return _run_detection(args)
    if args.score_threshold is not None or args.iou_threshold is not None:
        raise CnnlabError("--score-threshold and --iou-threshold apply to detection runs (task: detect) only")
    from cnnlab.report.evaluation import MAX_TOP

    if args.top is None:
        args.top = 16
    check_int_range("--top", args.top, 1, MAX_TOP)  # before the run and the data are loaded
    from cnnlab.report.evaluation import evaluate_run

    result = evaluate_run(args.run_dir, data_dir=args.data_dir, weights=args.weights, top=args.top, tta=args.tta)
    if args.json:
        print_json(result)
        return 0
    print(f"test accuracy: {result['test_accuracy']:.4f}  (loss {result['test_loss']:.4f}, "
          f"{result['count']} images, weights {result['weights']}"
          + (f", tta {result['tta']}" if result.get("tta", "none") != "none" else "") + ")")
    width = max(len(c) for c in result["per_class_accuracy"]) + 2
    for name, acc in result["per_class_accuracy"].items():
        print(f"  {name:<{width}}{acc:.4f}")
    notice(f"wrote {result['confusion_png']} and {result['top_losses_png']}")
    return 0
