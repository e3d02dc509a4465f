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
from cnnlab.rundir import check_out_dir, check_out_file, open_run_dir

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


def _boxed_views(cfg):
    """(info, preview) for a dataset whose task is labelled by boxes; None: one label per image (the default).

    Keyed by the task the dataset registry gives the format, so a dataset kind adds a row here."""
    from cnnlab.data.registry import get_dataset

    return {"detect": (_detection_info, _detection_preview)}.get(get_dataset(cfg.name).task)


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
    import torch

    from cnnlab.data.datasets import load_dataset
    from cnnlab.data.stats import channel_stats

    cfg = _data_config(args.name, args.overrides, args.data_dir)
    if _boxed_views(cfg):
        return _boxed_views(cfg)[0](cfg, args.json)
    data = load_dataset(cfg)
    counts = {}
    for split, labels in (("train", data.train_y), ("test", data.test_y)):
        bins = torch.bincount(labels, minlength=data.num_classes).tolist()
        counts[split] = dict(zip(data.classes, bins))
    mean, std = channel_stats(data.train_x)
    info = {"name": data.name, "source": data.source, "image_size": list(data.input_size),
            "classes": data.classes, "train": len(data.train_y), "test": len(data.test_y),
            "per_class": counts, "train_mean": mean, "train_std": std, "skipped_images": len(data.skipped)}
    if args.json:
        print_json(info)
        return 0
    c, h, w = data.input_size
    print(f"{data.name}  ({data.source})")
    print(f"images {h}x{w}, {c} channel(s); {len(data.train_y)} train, {len(data.test_y)} test, "
          f"{data.num_classes} classes")
    print(f"train mean {mean}  std {std}")
    width = max(len(n) for n in data.classes) + 2
    print(f"{'class':<{width}}{'train':>8}{'test':>8}")
    for name in data.classes:
        print(f"{name:<{width}}{counts['train'][name]:>8}{counts['test'][name]:>8}")
    if data.skipped:
        print(f"skipped {len(data.skipped)} unreadable images")
    return 0


def run_preview(args) -> int:
    import torch

    from cnnlab.data.augment import BatchAugment
    from cnnlab.data.datasets import load_dataset
    from cnnlab.report.plots import image_grid_axes, show_image

    if not 1 <= args.count <= MAX_COUNT:
        raise CnnlabError(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    if not 0 <= args.seed < 2**63:
        raise CnnlabError(f"--seed must be between 0 and 2**63-1, got {args.seed}")
    out = preview_path(args.out, args.overwrite)
    cfg = _data_config(args.name, args.overrides, args.data_dir)
    if _boxed_views(cfg):
        return _boxed_views(cfg)[1](cfg, args, out)
    data = load_dataset(cfg)
    gen = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(len(data.train_y), generator=gen)[:args.count]
    images = data.train_x[idx].float() / 255.0
    augment = BatchAugment.for_images(cfg.augment, data.train_x)
    if args.augment:
        if not augment.active:
            notice("note: this config enables no augmentation; set data.augment.* or name a preset that does")
        images = augment(images, gen)
    images = (images * 255).round().clamp(0, 255).to(torch.uint8)
    plt, fig, axes = image_grid_axes(len(images))
    for ax, img, label in zip(axes, images, data.train_y[idx]):
        show_image(ax, img)
        ax.set_title(data.classes[int(label)], fontsize=8)
    fig.suptitle(f"{data.name}: {'augmented' if args.augment else 'raw'} training samples", fontsize=10)
    _save_preview(plt, fig, out)
    return 0


def _save_preview(plt, fig, out: Path) -> None:
    """Write a preview figure atomically (a failed write leaves no partial PNG) and close it."""
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=90, format="png", metadata=png_metadata("preview"))
    except OSError as exc:
        raise CnnlabError(f"cannot write --out {out}: {exc.strerror or exc}; choose a writable path") from None
    finally:
        plt.close(fig)
    notice(f"wrote {out}")


def _detection_info(cfg, as_json: bool) -> int:
    import torch

    from cnnlab.data.detection import read_detection_dataset
    from cnnlab.data.stats import channel_stats

    train, test, classes, problems, source = read_detection_dataset(cfg)
    per_class = {}
    for split, data in (("train", train), ("test", test)):
        labels = torch.cat(data.labels) if data.labels else torch.zeros(0, dtype=torch.long)
        per_class[split] = dict(zip(classes, torch.bincount(labels, minlength=len(classes)).tolist()))
    mean, std = channel_stats(train.images)
    info = {"name": cfg.name, "task": "detect", "source": source, "image_size": list(train.images.shape[1:]),
            "classes": classes, "train": len(train), "test": len(test), "train_boxes": train.num_boxes,
            "test_boxes": test.num_boxes, "boxes_per_class": per_class, "train_mean": mean, "train_std": std,
            "problems": problems}
    if as_json:
        print_json(info)
        return 0
    c, s, _ = train.images.shape[1:]
    print(f"{cfg.name}  ({source})")
    print(f"detection: images letterboxed to {s}x{s}, {c} channel(s); {len(train)} train images "
          f"({train.num_boxes} boxes), {len(test)} test images ({test.num_boxes} boxes), {len(classes)} classes")
    print(f"train mean {mean}  std {std}")
    width = max(len(n) for n in classes + ["class"]) + 2
    print(f"{'class':<{width}}{'train boxes':>12}{'test boxes':>12}")
    for name in classes:
        print(f"{name:<{width}}{per_class['train'][name]:>12}{per_class['test'][name]:>12}")
    for kind, count in problems.items():
        print(f"{kind}: {count}")
    return 0


def _detection_preview(cfg, args, out: Path) -> int:
    import torch

    from cnnlab.data.box_augment import augment_detection_batch
    from cnnlab.data.detection import read_detection_dataset
    from cnnlab.report.plots import image_grid_axes, show_image

    train, _, classes, _, _ = read_detection_dataset(cfg)
    gen = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(len(train), generator=gen)[:args.count].tolist()
    images = train.images[idx].float() / 255.0
    boxes, labels = [train.boxes[i] for i in idx], [train.labels[i] for i in idx]
    if args.augment:
        c = cfg.augment
        if not any([c.scale, c.translate, c.hflip, c.brightness, c.contrast, c.saturation]):
            notice("note: this config enables no box-aware augmentation (data.augment.scale, translate, hflip, "
                   "brightness, contrast, saturation)")
        images, boxes, labels = augment_detection_batch(images, boxes, labels, cfg.augment, gen)
    images = (images * 255).round().clamp(0, 255).to(torch.uint8)
    plt, fig, axes = image_grid_axes(len(images))
    from matplotlib.patches import Rectangle

    for ax, img, box, lab in zip(axes, images, boxes, labels):
        show_image(ax, img)
        for (x1, y1, x2, y2), k in zip(box.tolist(), lab.tolist()):
            # imshow puts pixel i's centre at i, so continuous coordinate x is drawn at x - 0.5
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="lime", lw=1))
            ax.text(x1 - 0.5, y1 - 1, classes[k], color="lime", fontsize=6, va="bottom")
        ax.set_title(f"{len(box)} box" + ("" if len(box) == 1 else "es"), fontsize=8)
    fig.suptitle(f"{cfg.name}: {'augmented' if args.augment else 'raw'} training images with boxes", fontsize=10)
    _save_preview(plt, fig, out)
    return 0


def run_make_scenes(args) -> int:
    import os
    import shutil
    import time
    import uuid

    from cnnlab.data.locate import load_idx_dataset
    from cnnlab.data.scenes import SceneParams, generate_scenes, parse_digits
    params = SceneParams(size=args.size, digits=parse_digits(args.digits), train=args.train, test=args.test,
                         seed=args.seed, clutter=args.clutter, format=args.format).check()
    out = Path(args.out)
    check_out_dir(out, args.overwrite, kind="scenes")
    mnist = load_idx_dataset("mnist", args.data_dir)
    start = time.perf_counter()
    # Every file is written into a hidden sibling first and moved in at the end: a failure or
    # Ctrl-C leaves no half-written dataset behind (the hidden folder is removed).
    staging = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise CnnlabError(f"cannot write next to --out {out}: {exc.strerror or exc}; choose a writable place") from None
    try:
        manifest = generate_scenes(staging, mnist, params, progress=not args.json)
        with open_run_dir(out, overwrite=args.overwrite, kind="scenes") as run:
            for entry in sorted(staging.iterdir(), key=lambda p: p.name == "scenes.json"):  # manifest last
                os.rename(entry, run / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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
