"""``cnnlab eval RUN_DIR``: test accuracy, per-class accuracy, confusion matrix, top losses."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError, check_int_range

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


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
    p.add_argument("--folder", metavar="DIR",
                   help="pretrained names (efficientnet_lite0.in1k): an image folder whose class folders are "
                        "ImageNet WordNet ids (its val/ or test/ part if it has one)")
    p.add_argument("--out", metavar="DIR", help="pretrained names: where eval.json and the figures go")
    p.add_argument("--overwrite", action="store_true", help="replace --out DIR (only one cnnlab made)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _run_pretrained(args) -> int:
    """A pretrained 1,000-class model scored on a folder of ImageNet classes (cnnlab.transfer.zeroshot)."""
    from cnnlab.transfer.zeroshot import evaluate_pretrained

    if not args.folder or not args.out:
        raise CnnlabError(f"{args.run_dir} is a pretrained model, not a run: give --folder DIR (class folders named "
                          "by ImageNet WordNet id) and --out DIR for the report")
    if args.weights or args.tta or args.score_threshold is not None or args.iou_threshold is not None:
        raise CnnlabError("--weights, --tta, --score-threshold and --iou-threshold apply to run directories only")
    check_int_range("--top", 16 if args.top is None else args.top, 1, 256)
    r = evaluate_pretrained(args.run_dir, args.folder, args.out, overwrite=args.overwrite,
                            top=16 if args.top is None else args.top)
    if args.json:
        print_json(r)
        return 0
    print(f"{r['model']} on {r['folder']} ({r['count']} images): top-1 over its {r['classes']} classes "
          f"{r['test_accuracy']:.4f}; over all 1,000 ImageNet classes top-1 {r['top1_1000']:.4f}, "
          f"top-5 {r['top5_1000']:.4f}")
    width = max(len(c) for c in r["per_class_accuracy"]) + 2
    for name, acc in r["per_class_accuracy"].items():
        print(f"  {name:<{width}}{acc:.4f}")
    notice(f"wrote {r['confusion_png']} and {r['top_losses_png']}")
    return 0


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
    from cnnlab.transfer.pretrained import is_pretrained_name

    if is_pretrained_name(args.run_dir):
        return _run_pretrained(args)
    if args.folder or args.out or args.overwrite:
        raise CnnlabError("--folder, --out and --overwrite apply to pretrained names (efficientnet_lite0.in1k); "
                          "a run is scored on its own test split, into its own directory")
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
