"""``cnnlab data info NAME``, ``cnnlab data preview NAME --augment --out grid.png`` and
``cnnlab data make-scenes mnist --out DIR`` (multi-digit detection scenes).

``info`` and ``preview`` also take the detection datasets (raccoon, mnist-scenes, voc, coco,
yolo): ``info`` counts images and boxes per split and class, ``preview`` draws the boxes.
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_path, png_metadata
from cnnlab.rundir import check_out_dir, check_out_file, staged_run_dir

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use

MAX_COUNT = 1024  # a grid of more images is unreadable and slow to draw


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="inspect a dataset: counts, sizes, statistics, augmented samples",
                              description="NAME is a dataset (mnist, fashion-mnist, cifar10-jpeg, imagenette-160, "
                                          "cifar10, cifar100; for detection raccoon, mnist-scenes), a preset, or "
                                          "folder|voc|coco|yolo with data.root=PATH.")
    inner = p.add_subparsers(dest="data_command", metavar="ACTION")
    info = inner.add_parser("info", help="counts per class and split, image size, mean/std")
    info.add_argument("name")
    info.add_argument("overrides", nargs="*", metavar="key=value", help="data.* overrides, e.g. data.root=PATH")
    info.add_argument("--data-dir")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=run_info)
    prev = inner.add_parser("preview", help="a grid of (augmented) training samples as a PNG")
    prev.add_argument("name")
    prev.add_argument("overrides", nargs="*", metavar="key=value")
    prev.add_argument("--data-dir")
    prev.add_argument("--augment", action="store_true", help="apply the config's augmentation")
    prev.add_argument("--count", type=int, default=32, help=f"images in the grid, 1-{MAX_COUNT} (default 32)")
    prev.add_argument("--seed", type=int, default=0, help="which samples and augmentations (0 or more)")
    prev.add_argument("--out", default="grid.png",
                      help="output PNG (default grid.png); a path ending in / writes grid.png inside that folder")
    prev.add_argument("--overwrite", action="store_true", help="replace --out if it is a preview cnnlab wrote")
    prev.set_defaults(func=run_preview)
    scenes = inner.add_parser(
        "make-scenes", help="write multi-digit MNIST detection scenes (VOC or COCO layout) to a folder",
        description="Scenes of 1-6 real MNIST digits (rescaled 0.5-2x, limited overlap) with a tight box per "
                    "digit; train scenes use MNIST training digits, test scenes MNIST test digits only. "
                    "The same options give byte-identical files.")
    scenes.add_argument("source", choices=["mnist"], help="where the digits come from (mnist)")
    scenes.add_argument("--out", required=True, help="output folder (must not exist, or --overwrite a cnnlab one)")
    scenes.add_argument("--size", type=int, default=128, help="side of each scene in pixels (default 128)")
    scenes.add_argument("--digits", default="1-6", help="digits per scene: N or MIN-MAX (default 1-6)")
    scenes.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    scenes.add_argument("--format", default="voc", choices=["voc", "coco"], help="layout on disk (default voc)")
    scenes.add_argument("--train", type=int, default=6000, help="training scenes (default 6000)")
    scenes.add_argument("--test", type=int, default=1000, help="test scenes (default 1000)")
    scenes.add_argument("--clutter", action="store_true", help="add unlabelled digit fragments as distractors")
    scenes.add_argument("--overwrite", action="store_true", help="replace an existing folder made by cnnlab")
    scenes.add_argument("--data-dir", help="folder holding the MNIST files (default: $CNNLAB_DATA, ./data)")
    scenes.add_argument("--json", action="store_true", help="print one JSON object")
    scenes.set_defaults(func=run_make_scenes)
    from cnnlab.commands._video import add_make_video

    add_make_video(inner)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _task_of(cfg):
    """The task whose datasets ``cfg`` names (its data views draw and count them)."""
    from cnnlab.data.registry import get_dataset
    from cnnlab.tasks import get_task

    return get_task(get_dataset(cfg.name).task)


def _data_config(name: str, overrides: list[str], data_dir: str | None):
    """A dataset name -> a DataConfig; a preset name -> that preset's data section."""
    from cnnlab.config import load_config, preset_names

    if name in preset_names() or name.endswith((".yaml", ".yml")):
        cfg = load_config(name, overrides)
    else:
        cfg = load_config(None, [f"data.name={name}"] + overrides)
    if data_dir:
        cfg.data.data_dir = data_dir
    return cfg.data


def run_info(args) -> int:
    cfg = _data_config(args.name, args.overrides, args.data_dir)
    info, lines = _task_of(cfg).dataset_info(cfg)
    if args.json:
        print_json(info)
    else:
        print("\n".join(lines))
    return 0


def run_preview(args) -> int:
    if not 1 <= args.count <= MAX_COUNT:
        raise CnnlabError(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    if not 0 <= args.seed < 2**63:
        raise CnnlabError(f"--seed must be between 0 and 2**63-1, got {args.seed}")
    out = preview_path(args.out, args.overwrite)
    cfg = _data_config(args.name, args.overrides, args.data_dir)
    fig = _task_of(cfg).dataset_preview(cfg, count=args.count, seed=args.seed, augment=args.augment, notice=notice)
    _save_preview(fig, out)
    return 0


def _save_preview(fig, out: Path) -> None:
    """Write a preview figure atomically (a failed write leaves no partial PNG) and close it."""
    from cnnlab.report.plots import pyplot

    plt = pyplot()
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=90, format="png", metadata=png_metadata("preview"))
    except OSError as exc:
        raise CnnlabError(f"cannot write --out {out}: {exc.strerror or exc}; choose a writable path") from None
    finally:
        plt.close(fig)
    notice(f"wrote {out}")


def run_make_scenes(args) -> int:
    import time

    from cnnlab.data.locate import load_idx_dataset
    from cnnlab.data.scenes import MANIFEST, SceneParams, generate_scenes, parse_digits
    params = SceneParams(size=args.size, digits=parse_digits(args.digits), train=args.train, test=args.test,
                         seed=args.seed, clutter=args.clutter, format=args.format).check()
    out = Path(args.out)
    check_out_dir(out, args.overwrite, kind="scenes")
    mnist = load_idx_dataset("mnist", args.data_dir)
    start = time.perf_counter()
    # built in a hidden sibling and moved in at the end: a failure or Ctrl-C leaves no half-written dataset
    with staged_run_dir(out, overwrite=args.overwrite, kind="scenes", last=(MANIFEST,)) as staging:
        manifest = generate_scenes(staging, mnist, params, progress=not args.json)
    objects = [o for objs in manifest["images"].values() for o in objs]
    summary = {"out": str(out), "format": params.format, "size": params.size, "digits": list(params.digits),
               "seed": params.seed, "clutter": params.clutter, "train": params.train, "test": params.test,
               "boxes": len(objects), "seconds": round(time.perf_counter() - start, 2)}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {params.train} train + {params.test} test scenes ({len(objects)} boxes, {params.format} "
              f"layout) to {out} in {summary['seconds']} s; train on it with "
              f"`cnnlab train detect-mnist-scenes data.root={out}`")
    return 0


def preview_path(out: str, overwrite: bool = False) -> Path:
    """Where ``data preview`` writes, checked before any work by the one output policy.

    ``DIR/`` (a trailing slash) means ``DIR/grid.png``. An existing file is replaced only with
    ``--overwrite`` and only if it is a preview cnnlab wrote (:func:`cnnlab.rundir.check_out_file`).
    """
    path = Path(out)
    if out.endswith(("/", "\\")):
        if not path.is_dir():
            raise CnnlabError(f"--out {out} names a folder that does not exist; create it or name a .png file")
        path = path / "grid.png"
    elif path.is_dir():
        raise CnnlabError(f"--out {out} is a folder; name a .png file such as {path / 'grid.png'} "
                          f"(or write {out}/ to put grid.png inside)")
    return check_out_file(path, overwrite, kind="preview", suffixes=(".png",))
