"""Stratified k-fold cross-validation: K trainings, each holding out one fold of the training set.

The training images (after ``data.limit_train``, if set) are split into K folds that each
keep every class's share (:func:`stratified_folds`). Fold k trains ``CONFIG`` on the other
K-1 folds and measures accuracy on fold k; the result is the K accuracies with their mean and
standard deviation — an estimate of how well the recipe generalises that does not spend the
test set. Each fold is an ordinary run directory (``OUT/folds/fold<k>``) whose "test" split is
the held-out fold (its ``summary.json`` says ``test_split: held-out fold k``).

>>> import numpy as np
>>> folds = stratified_folds(np.array([0] * 6 + [1] * 3), k=3, seed=0)
>>> [sorted(np.array([0] * 6 + [1] * 3)[f].tolist()) for f in folds]
[[0, 0, 1], [0, 0, 1], [0, 0, 1]]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from cnnlab.config import Config, config_to_dict, config_with_overrides
from cnnlab.data.datasets import ImageData, load_dataset
from cnnlab.data.splits import limit_train
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic
from cnnlab.rundir import check_out_dir, open_run_dir
from cnnlab.runs import config_inputs
from cnnlab.tasks import require_accuracy
from cnnlab.train.run import train


def stratified_folds(labels, k: int, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint sorted index arrays covering ``labels``; each class is dealt round-robin after a seeded shuffle,
    so a class's count in any two folds differs by at most one."""
    labels = np.asarray(labels)
    if k < 2:
        raise CnnlabError(f"--folds must be >= 2, got {k}")
    counts = np.bincount(labels)
    if len(labels) < k:
        raise CnnlabError(f"{len(labels)} training images cannot make {k} folds; use fewer folds")
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for cls in np.flatnonzero(counts):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        for j, i in enumerate(idx):
            # continue the deal where the previous class stopped, so small classes do not all land in fold 0
            folds[(offset + j) % k].append(int(i))
        offset += len(idx)
    return [np.array(sorted(f), dtype=np.int64) for f in folds]


def run_cv(cfg: Config, out: str | Path, folds: int, *, overwrite: bool = False, quiet: bool = False,
           source: str = "") -> dict:
    """Train ``folds`` fold models into ``out/folds/``; write ``cv.json`` (= ``summary.json``); return it."""

    out = Path(out)
    require_accuracy(cfg, "cnnlab cv")  # before anything is created
    check_out_dir(out, overwrite, kind="cv", inputs=config_inputs(cfg, source))
    if folds < 2:
        raise CnnlabError(f"--folds must be >= 2, got {folds}")
    if cfg.data.val == "test" and not cfg.data.final_fit:
        raise CnnlabError("cv holds out each fold as the test split, and data.val=test would choose the model on "
                          "it; use data.val=split (validation from the other folds) or data.val=none")
    data = load_dataset(cfg.data)
    x, y = data.train_x, data.train_y
    keep = limit_train(y.numpy(), cfg.data.limit_train, cfg.train.seed)
    if keep is not None:
        x, y = x[keep], y[keep]
    parts = stratified_folds(y.numpy(), folds, cfg.train.seed)
    # The held-out fold plays the test split; validation (for early stopping) still comes from the K-1 folds.
    fold_cfg = config_with_overrides(config_to_dict(cfg), {"data.limit_train": None})
    start = time.perf_counter()
    results = []
    with open_run_dir(out, overwrite=overwrite, kind="cv"):
        for k, held in enumerate(parts):
            train_idx = np.sort(np.concatenate([p for j, p in enumerate(parts) if j != k]))
            fold_data = ImageData(f"{data.name}-fold{k}", x[train_idx], y[train_idx], x[held], y[held], data.classes,
                                  data.source, data.skipped)
            summary = train(fold_cfg, out / "folds" / f"fold{k}", data=fold_data, quiet=True)
            summary["test_split"] = f"held-out fold {k} of {folds}"  # what test_accuracy measured here
            write_json_atomic(out / "folds" / f"fold{k}" / "summary.json", summary)
            acc = summary.get("test_accuracy")
            results.append({"fold": k, "accuracy": acc, "train_images": int(len(train_idx)),
                            "held_out_images": int(len(held)), "train_seconds": summary.get("train_seconds"),
                            "status": summary.get("status"), "run_dir": str(out / "folds" / f"fold{k}")})
            if not quiet:
                shown = "-" if acc is None else f"{acc:.4f}"
                print(f"fold {k + 1}/{folds}: accuracy {shown} on {len(held)} held-out images "
                      f"({summary.get('train_seconds', 0):.1f}s)", file=sys.stderr, flush=True)
        accs = [r["accuracy"] for r in results if r["accuracy"] is not None]
        record = {"kind": "cv", "config": source or cfg.name, "folds": folds, "seed": cfg.train.seed,
                  "per_fold": results,
                  "mean_accuracy": statistics.fmean(accs) if accs else None,
                  "std_accuracy": statistics.stdev(accs) if len(accs) > 1 else 0.0 if accs else None,
                  "test_accuracy": statistics.fmean(accs) if accs else None,  # the cross-validated estimate
                  "train_seconds": round(sum(r["train_seconds"] or 0 for r in results), 3),
                  "wall_seconds": round(time.perf_counter() - start, 3)}
        write_json_atomic(out / "cv.json", record)
        write_json_atomic(out / "summary.json", record)
    return record
