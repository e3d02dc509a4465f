"""``cnnlab features RUN_DIR|MODEL --data PRESET --out DIR``: cache a frozen backbone's features."""

from __future__ import annotations

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "features", help="run a frozen backbone once over a dataset and cache its features on disk",
        description="Features (global-average-pooled backbone outputs) of the train and test images are stored "
                    "memory-mapped in DIR, keyed by the backbone's weights, the data and the transform; "
                    "`cnnlab train ... model.features_from=DIR` then trains a head from them. A cache made for "
                    "other weights, data or transform is rebuilt with a notice.")
    p.add_argument("backbone", help="a run directory, or a model name (tv:resnet18, resnet18, ...) with model.* "
                                    "overrides such as model.weights=FILE")
    p.add_argument("--data", required=True, help="a preset or YAML file whose data section names the images")
    p.add_argument("--layer", help="stop at this stage of the backbone's features (default: all of them)")
    p.add_argument("--out", required=True, help="the cache directory")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR if it is a feature cache cnnlab made (never a run or another output)")
    p.add_argument("--data-dir", help="directory holding the datasets")
    p.add_argument("--batch-size", type=int, default=16,
                   help="images per backbone forward (default 16: small batches stay in cache; measured fastest)")
    p.add_argument("--json", action="store_true", help="print the cache's meta as one JSON object")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="data.* overrides; model.* for a MODEL")
    p.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.config import load_config, parse_overrides
    from cnnlab.transfer.features import backbone_spec, build_cache

    overrides = parse_overrides(list(args.overrides or []))
    data_overrides = [f"{k}={v}" for k, v in overrides.items() if k.startswith("data.")]
    other = [k for k in overrides if not k.startswith(("data.", "model."))]
    if other:
        raise CnnlabError(f"cnnlab features takes data.* and model.* overrides, got {other[0]}")
    if args.batch_size < 1:
        raise CnnlabError(f"--batch-size must be at least 1, got {args.batch_size}")
    cfg = load_config(args.data, {k: v for k, v in overrides.items() if k.startswith("data.")})
    if cfg.data.limit_train is not None:  # a cache holds every image; each head draws its own subset from it
        raise CnnlabError(f"data.limit_train={cfg.data.limit_train} does not apply to cnnlab features: the cache holds "
                          "every training image, so heads with any data.limit_train share it; drop it here and "
                          f"give data.limit_train={cfg.data.limit_train} to `cnnlab train ... model.features_from=DIR`")
    del data_overrides
    asked = [k for k, v in overrides.items() if k.startswith("data.augment.") and v not in (0, 0.0, None)]
    if asked:
        raise CnnlabError(f"{asked[0]}={overrides[asked[0]]}: data.augment is on, but cached features are computed "
                          "once from unaugmented images; drop the data.augment.* overrides")
    from cnnlab.config import AugmentConfig
    from cnnlab.data.augment import BatchAugment

    if BatchAugment(cfg.data.augment).active:  # a training preset's augmentation: not part of a feature cache
        notice(f"notice: the data.augment settings of {args.data} are not applied to cached features")
        cfg.data.augment = AugmentConfig()
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    spec = backbone_spec(args.backbone, overrides)
    meta = build_cache(spec, cfg.data, args.out, layer=args.layer, overwrite=args.overwrite,
                       batch_size=args.batch_size, notice=notice, inputs=[args.backbone])
    if args.json:
        print_json(meta)
    else:
        print(f"{args.out}: {meta['counts']['train']} train / {meta['counts']['test']} test features of "
              f"{meta['feature_dim']} values (key {meta['key'][:12]})")
    return 0
