"""``cnnlab explain``: attribution maps for images of a run, and its filters, activations, neurons, predictions.

``cnnlab explain RUN_DIR [IMAGE ...]`` is short for ``cnnlab explain maps RUN_DIR [IMAGE ...]``:
when the first word after ``explain`` is not one of the sub-commands, ``maps`` is meant.
"""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use

SUBCOMMANDS = ("maps", "filters", "activations", "neurons", "predictions")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain", help="attribution maps (Grad-CAM, integrated gradients, ...), filters, activations, neurons",
        description="cnnlab explain RUN_DIR [IMAGE ...] [options] explains images with attribution maps "
                    "(short for `cnnlab explain maps ...`); the sub-commands draw a run's filters, a layer's "
                    "activations, what excites each neuron, and a grid of predictions.")
    inner = parser.add_subparsers(dest="explain_command", metavar="{maps,filters,activations,neurons,predictions}")
    _register_maps(inner)
    _register_filters(inner)
    _register_activations(inner)
    _register_neurons(inner)
    _register_predictions(inner)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    plain = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        # `cnnlab explain RUN_DIR ...` means `cnnlab explain maps RUN_DIR ...`
        args = list(args or [])
        first = next((a for a in args if not a.startswith("-")), None)
        if first is not None and first not in SUBCOMMANDS and not {"-h", "--help"} & set(args[:args.index(first)]):
            args.insert(args.index(first), "maps")
        return plain(args, namespace)

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def _common(p, out_help: str, overwrite: bool = True) -> None:
    p.add_argument("--out", help=out_help)
    if overwrite:
        p.add_argument("--overwrite", action="store_true",
                       help="replace --out if it is a PNG that `cnnlab explain` wrote (never another file)")
    p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--json", action="store_true", help="print one JSON object")


# ---------------------------------------------------------------------------- maps

def _register_maps(inner) -> None:
    from cnnlab.explain import DEFAULT_METHODS, METHOD_NAMES as METHODS

    p = inner.add_parser(
        "maps", help="attribution maps for test images or image files (the default sub-command)",
        description="One figure per image: the input, its true and predicted class with probability, and each "
                    "method's map as a heat map, an overlay and a masked image. Images are files, or test "
                    "images by --index, --class or --mistakes (default: the first 4 test images). "
                    f"Methods: {', '.join(METHODS)} (default: {', '.join(DEFAULT_METHODS)}).")
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`")
    p.add_argument("images", nargs="*", help="image files (PNG, JPEG, BMP); converted to the run's size and channels")
    p.add_argument("--index", type=int, nargs="+", default=[], metavar="I", help="test-set indices")
    p.add_argument("--class", dest="cls", metavar="C", help="test images of this class (name or index)")
    p.add_argument("--count", type=int, default=4, help="images for --class, or when none is named (default 4)")
    p.add_argument("--mistakes", type=int, metavar="N", help="the N most confident mistakes on the test set")
    p.add_argument("--methods", nargs="+", metavar="M", help="methods, by name (commas or spaces; `all` for every one)")
    p.add_argument("--target", metavar="CLASS", help="explain this class (name or index) instead of the predicted one")
    p.add_argument("--layer", metavar="NAME", help="conv layer for Grad-CAM and guided Grad-CAM (default: the last)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                   help="a method option, e.g. integrated_gradients.steps=64 or occlusion.window=7 (repeatable)")
    p.add_argument("--save-maps", action="store_true",
                   help="also write maps.npz: one (N, H, W) array per method, indices, paths, targets, labels, logits")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it is an explanation folder cnnlab made (never the run itself)")
    p.add_argument("--batch-size", type=int, default=256, help="images through the model at once (default 256)")
    _common(p, "output directory (default RUN_DIR/explain)", overwrite=False)
    p.set_defaults(func=run_maps)


def run_maps(args) -> int:
    from cnnlab.explain.workflow import explain_run

    result = explain_run(args.run_dir, files=args.images, indices=args.index, cls=args.cls, count=args.count,
                         mistakes=args.mistakes, methods=args.methods, target=args.target, layer=args.layer,
                         out=args.out, overwrite=args.overwrite, save_maps=args.save_maps, settings=args.settings,
                         data_dir=args.data_dir, batch_size=args.batch_size, say=notice)
    if args.json:
        print_json(result)
        return 0
    for item in result["images"]:
        source = item["image"] or f"test #{item['index']}"
        true = f"true {item['true']}, " if item["true"] is not None else ""
        print(f"{source}: {true}predicted {item['predicted']} ({item['probability']:.3f}) -> {item['figure']}")
    if result["maps"]:
        print(f"maps: {result['maps']}")
    return 0


# ---------------------------------------------------------------------------- filters, activations, neurons, predictions

def _register_filters(inner) -> None:
    p = inner.add_parser("filters", help="a conv layer's filters as a grid (default: the first conv layer)",
                         description="Each filter of the layer as a small image (RGB filters in colour), "
                                     "in a square-ish grid: 8x8 for 64 filters.")
    p.add_argument("run_dir")
    p.add_argument("--layer", metavar="NAME", help="conv layer (default: the first)")
    _common(p, "PNG file to write (default RUN_DIR/filters.png)")
    p.set_defaults(func=run_view, view="filters")


def _register_activations(inner) -> None:
    p = inner.add_parser("activations", help="one layer's feature maps for one image",
                         description="The feature maps a layer outputs for one image (a file, or --index of a "
                                     "test image), one small image per channel.")
    p.add_argument("run_dir")
    p.add_argument("image", nargs="?", help="an image file (or use --index)")
    p.add_argument("--index", type=int, help="a test-set index instead of a file")
    p.add_argument("--layer", metavar="NAME", help="a conv layer, by name (required)")
    _common(p, "PNG file to write (default RUN_DIR/activations-LAYER.png)")
    p.set_defaults(func=run_view, view="activations")


def _register_neurons(inner) -> None:
    p = inner.add_parser("neurons", help="for N channels of a layer: the test image exciting it most, and why",
                         description="For each of --count channels of a conv layer (or the --channels "
                                     "named): the test image whose activation in that channel is highest, and the "
                                     "guided-backprop map of that activation (a 2x5 grid for 10). With --image or "
                                     "--index, each channel's peak on that one image instead.")
    p.add_argument("run_dir")
    p.add_argument("--layer", metavar="NAME", help="a conv layer, by name (required)")
    p.add_argument("--count", type=int, help="channels to show: the first N (default 10)")
    p.add_argument("--channels", metavar="C1,C2,...", help="the channels to show, e.g. 3,17,42 (instead of --count)")
    p.add_argument("--image", metavar="PATH", help="explain the channels on this image file (no search)")
    p.add_argument("--index", type=int, help="explain the channels on this test image (no search)")
    p.add_argument("--images", type=int, default=2000, help="test images searched (default 2000)")
    _common(p, "PNG file to write (default RUN_DIR/neurons-LAYER.png)")
    p.set_defaults(func=run_view, view="neurons")


def _register_predictions(inner) -> None:
    p = inner.add_parser("predictions", help="a grid of test images with true and predicted labels",
                         description="Test images (a seeded random draw) with their true and predicted class "
                                     "and probability; mistakes are marked in red.")
    p.add_argument("run_dir")
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--cols", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="which test images are drawn")
    _common(p, "PNG file to write (default RUN_DIR/predictions.png)")
    p.set_defaults(func=run_view, view="predictions")


# The options each view's parser defines, passed on by name (a view's parser defines only its own).
VIEW_OPTIONS = ("layer", "image", "index", "rows", "cols", "seed", "count", "channels", "images")


def run_view(args) -> int:
    from cnnlab.explain import views

    options = {name: getattr(args, name) for name in VIEW_OPTIONS if hasattr(args, name)}
    result = views.run_view(args.view, args.run_dir, out=args.out, overwrite=args.overwrite,
                            data_dir=args.data_dir, **options)
    if args.json:
        print_json(result)
        return 0
    print(f"wrote {result['figure']}")
    return 0

