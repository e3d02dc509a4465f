"""``cnnlab export RUN_DIR --format onnx|torchscript``: a portable model with parity checked."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a run to ONNX or TorchScript (normalisation folded in), parity checked",
        description="The exported model takes float32 (N, C, H, W) pixels in [0, 1] in the run's channels and "
                    "size; the run's mean/std are folded in and the classes, size and resize policy are stored "
                    "as metadata. Parity against PyTorch is measured on the run's real test images (ONNX through "
                    "ONNX Runtime) and printed.")
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--out", help="the file to write, ending in .onnx or .pt (default RUN_DIR/model.onnx or model.pt)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it is a model `cnnlab export` wrote (never a run's own files)")
    p.add_argument("--dynamic-batch", action="store_true", help="ONNX: any batch size (default: batch 1)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--parity-images", type=int, default=256, help="test images for the parity check (0: skip)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.transfer.export import export_run

    if args.parity_images < 0:
        raise CnnlabError(f"--parity-images must be >= 0, got {args.parity_images}")
    if args.dynamic_batch and args.format == "torchscript":  # it would change nothing
        raise CnnlabError("--dynamic-batch applies to --format onnx; a TorchScript export already takes any batch "
                          "size (its parity is checked on batches of the test images): drop --dynamic-batch")
    result = export_run(args.run_dir, args.format, args.out, opset=args.opset, dynamic_batch=args.dynamic_batch,
                        parity_images=args.parity_images, overwrite=args.overwrite, say=notice)
    if args.json:
        print_json({k: v for k, v in result.items() if k != "metadata"})
        return 0
    print(f"wrote {result['file']} ({result['format']}, {result['bytes']:,} bytes)")
    par = result.get("parity")
    if par:
        print(f"parity on {par['images']} test images ({par['runtime']} vs PyTorch): max |logit difference| "
              f"{par['max_abs_diff']:.2e}, top-1 agreement {par['top1_agreement']:.4f}")
    return 0
