"""``cnnlab data info NAME`` and ``cnnlab data preview NAME --augment --out grid.png``."""

from __future__ import annotations

from pathlib import Path

from cnnlab.commands.common import notice, print_json

MAX_COUNT = 1024  # a grid of more images is unreadable and slow to draw
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="inspect a dataset: counts, sizes, statistics, augmented samples",
                              description="NAME is a dataset (mnist, fashion-mnist, cifar10-jpeg, imagenette-160, "
                                          "cifar10, cifar100), a preset, or 'folder' with data.root=PATH.")
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
    prev.set_defaults(func=run_preview)
    p.set_defaults(func=lambda args: p.print_help() or 2)


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
    from cnnlab.errors import CnnlabError
    from cnnlab.fileio import atomic_path
    from cnnlab.report.plots import image_grid_axes, show_image

    if not 1 <= args.count <= MAX_COUNT:
        raise CnnlabError(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    if not 0 <= args.seed < 2**63:
        raise CnnlabError(f"--seed must be between 0 and 2**63-1, got {args.seed}")
    out = preview_path(args.out)
    cfg = _data_config(args.name, args.overrides, args.data_dir)
    data = load_dataset(cfg)
    gen = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(len(data.train_y), generator=gen)[:args.count]
    images = data.train_x[idx].float() / 255.0
    augment = BatchAugment(cfg.augment)
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
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
    except OSError as exc:
        raise CnnlabError(f"cannot write --out {out}: {exc.strerror or exc}; choose a writable path") from None
    finally:
        plt.close(fig)
    notice(f"wrote {out}")
    return 0


def preview_path(out: str) -> Path:
    """Where ``data preview`` writes, checked before any work: never over a folder or a non-PNG file.

    ``DIR/`` (a trailing slash) means ``DIR/grid.png``. An existing PNG is
    replaced (the user named it); anything else that exists is refused.
    """
    from cnnlab.errors import CnnlabError

    path = Path(out)
    if out.endswith(("/", "\\")):
        if not path.is_dir():
            raise CnnlabError(f"--out {out} names a folder that does not exist; create it or name a .png file")
        path = path / "grid.png"
    elif path.is_dir():
        raise CnnlabError(f"--out {out} is a folder; name a .png file such as {path / 'grid.png'} "
                          f"(or write {out}/ to put grid.png inside)")
    if path.suffix.lower() != ".png":
        raise CnnlabError(f"--out {out} must name a .png file (the preview is a PNG image), e.g. {path.stem}.png")
    if path.is_dir():
        raise CnnlabError(f"--out {path} is a folder; name a .png file")
    if path.exists():
        try:
            with open(path, "rb") as fh:
                is_png = fh.read(8) == PNG_MAGIC
        except OSError as exc:
            raise CnnlabError(f"--out {path} exists and cannot be read ({exc.strerror}); choose another name") from None
        if not is_png:
            raise CnnlabError(f"--out {path} exists and is not a PNG image; refusing to overwrite it, "
                              "choose another name")
    if not path.parent.is_dir():
        raise CnnlabError(f"--out {out}: folder {path.parent} does not exist; create it first")
    return path
