"""``cnnlab report RUN_DIR``: one self-contained HTML page for a run."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write report.html: a self-contained page about a run",
        description="Writes RUN_DIR/report.html: summary, config, curves, confusion matrix, per-class accuracy, "
                    "top losses, predictions, filters and a few explanations, every image embedded, so the one "
                    "file opens in any browser with no server.")
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`")
    p.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out (or RUN_DIR/report.html) if it is a report page cnnlab wrote")
    p.add_argument("--methods", nargs="+", default=["gradcam", "integrated_gradients", "occlusion"],
                   help="attribution methods in the explanations section")
    p.add_argument("--explain", type=int, default=4, help="test images explained (default 4)")
    p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.report.html import build_report

    if not 0 <= args.explain <= 64:
        raise CnnlabError(f"--explain must be in [0, 64], got {args.explain}")
    methods = [m for item in args.methods for m in item.split(",") if m]
    path = build_report(args.run_dir, out=args.out, data_dir=args.data_dir, explain_count=args.explain,
                        methods=methods, overwrite=args.overwrite, say=notice)
    if args.json:
        print_json({"run_dir": args.run_dir, "report": str(path)})
        return 0
    print(f"wrote {path}")
    return 0
