"""Ablation rows for the source texts' techniques: DropConnect, PCA lighting, random-resized crop.

    PYTHONPATH=src python benchmarks/ablate_texts_techniques.py fashion-convnet data.limit_train=6000 \
        train.epochs=3 train.threads=1 --seeds 2 --out runs/ablate-texts

The three are ``cnnlab ablate``'s optional techniques (``cnnlab.tune.ablation.OPTIONAL_TECHNIQUES``,
named with ``--techniques``, not in the default set): this script is ``cnnlab ablate CONFIG
--techniques dropconnect,pca_lighting,random_resized_crop`` (full = CONFIG with all three on, plain =
all three off, leave-one-out and add-one, ``--seeds`` seeds each) plus a JSON record with the
command in ``benchmarks/results``.

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
    """The three techniques (``cnnlab.tune.ablation.OPTIONAL_TECHNIQUES``)."""
    from cnnlab.tune.ablation import OPTIONAL_TECHNIQUES

    return list(OPTIONAL_TECHNIQUES.values())


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
    from cnnlab.tune.ablation import format_table, run_ablation

    names = [t.name for t in texts_techniques()]
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
