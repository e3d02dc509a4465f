"""``cnnlab eval RUN_DIR``: the run's test split scored as its task scores it (classification: accuracy, per-class
accuracy, confusion matrix, top losses; detection: mAP, PR curves), through the run's reader."""

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


def run(args) -> int:
    from cnnlab.runs import run_reader
    from cnnlab.transfer.pretrained import is_pretrained_name

    if is_pretrained_name(args.run_dir):
        return _run_pretrained(args)
    if args.folder or args.out or args.overwrite:
        raise CnnlabError("--folder, --out and --overwrite apply to pretrained names (efficientnet_lite0.in1k); "
                          "a run is scored on its own test split, into its own directory")
    reader = run_reader(args.run_dir)  # the run's task says which options apply and what is printed
    options = reader.take_options("eval", vars(args), args.run_dir)
    result = reader.evaluate(args.run_dir, data_dir=args.data_dir, weights=args.weights, **options)
    if args.json:
        print_json(result)
        return 0
    lines, wrote = reader.evaluation_text(result)
    print("\n".join(lines))
    notice(wrote)
    return 0
