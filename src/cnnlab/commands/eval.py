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
    p.add_argument("--top", type=int, default=16, help="images in top_losses.png, 1 to 256 (default 16)")
    p.add_argument("--tta", choices=["none", "flip", "translate", "flip-translate"],
                   help="test-time augmentation: mean logits over flipped (and shifted) copies "
                        "(default: the run's train.tta)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.errors import check_int_range
    from cnnlab.report.evaluation import MAX_TOP

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
