"""Ablation rows for the source texts' techniques: DropConnect, PCA lighting, random-resized crop.

    PYTHONPATH=src python benchmarks/ablate_texts_techniques.py fashion-convnet data.limit_train=6000 \
        train.epochs=3 train.threads=1 --seeds 2 --out runs/ablate-texts

`cnnlab ablate` knows ten techniques (``cnnlab.tune.ablation.TECHNIQUES``); these three are not
among them yet. This script adds them to that registry for its own process only — each as a pair
of ``on``/``off`` overrides, exactly like the ten — and runs the ordinary ``run_ablation`` on them
(full = CONFIG with all three on, plain = all three off, leave-one-out and add-one, ``--seeds``
seeds each). The table, ``ablation.json`` and ``ablation.png`` are the ones ``cnnlab ablate``
writes. A name that the registry already holds is left as it is.

    dropconnect          model.dropconnect                the recipe's (or 0.3) | 0
    pca_lighting         data.augment.pca_lighting        the recipe's (or 0.1) | 0
    random_resized_crop  data.augment.random_resized_crop the recipe's (or [0.6, 1]) | off
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def texts_techniques() -> list:
    """The three techniques as ``cnnlab.tune.ablation.Technique`` objects."""
    from cnnlab.tune.ablation import Technique, _option

    dropconnect_on, dropconnect_off = _option("dropconnect", 0.3, 0.0)
    return [
        Technique("dropconnect", "DropConnect", dropconnect_on, dropconnect_off),
        Technique("pca_lighting", "PCA lighting",
                  lambda c: {"data.augment.pca_lighting": c.data.augment.pca_lighting or 0.1},
                  lambda c: {"data.augment.pca_lighting": 0.0}),
        Technique("random_resized_crop", "random-resized crop",
                  lambda c: {"data.augment.random_resized_crop":
                             list(c.data.augment.random_resized_crop or (0.6, 1.0))},
                  lambda c: {"data.augment.random_resized_crop": None}),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--out", required=True)
    p.add_argument("--data-dir")
    p.add_argument("--results", default="benchmarks/results", help="folder for the JSON record")
    args = p.parse_args()

    from cnnlab.config import load_config
    from cnnlab.tune.ablation import TECHNIQUES, format_table, run_ablation

    names = []
    for t in texts_techniques():
        TECHNIQUES.setdefault(t.name, t)
        names.append(t.name)
    cfg = load_config(args.config, list(args.overrides))
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    record = run_ablation(cfg, args.out, techniques=names, seeds=args.seeds, source=args.config)
    table = format_table(record)
    print(table)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"ablate-texts-{time.strftime('%Y%m%d-%H%M%S')}.json"
    command = " ".join(["python", "benchmarks/ablate_texts_techniques.py", *sys.argv[1:]])
    path.write_text(json.dumps({"command": command, "table": table, **record}, indent=1) + "\n")
    print(f"record: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
