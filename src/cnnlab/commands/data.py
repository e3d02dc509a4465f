"""``cnnlab data info NAME`` and ``cnnlab data preview NAME --augment --out grid.png``."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json


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
    prev.add_argument("--count", type=int, default=32, help="images in the grid (default 32)")
    prev.add_argument("--seed", type=int, default=0)
    prev.add_argument("--out", default="grid.png", help="output PNG (default grid.png)")
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
    from cnnlab.report.plots import image_grid_axes, show_image

    if args.count < 1:
        raise CnnlabError(f"--count must be at least 1, got {args.count}")
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
    fig.savefig(args.out, dpi=90)
    plt.close(fig)
    notice(f"wrote {args.out}")
    return 0
