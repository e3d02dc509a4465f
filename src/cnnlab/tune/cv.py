"""K-fold cross-validation: K trainings, each holding out one fold of the training set.

The training items (after ``data.limit_train``, if set) are split into K folds: for a
classifier folds that each keep every class's share (:func:`stratified_folds`), for a detector
plain shuffled folds of images, each image with its boxes (:func:`shuffled_folds`); the task
says which (:meth:`cnnlab.tasks.base.Task.cv_items`). Fold k trains ``CONFIG`` on the other K-1
folds and scores fold k with the task's headline test metric (accuracy; a detector's mAP@0.5);
the result is the K values with their mean and standard deviation -- an estimate of how well
the recipe generalises that does not spend the test set. Each fold is an ordinary run directory
(``OUT/folds/fold<k>``) whose "test" split is the held-out fold (its ``summary.json`` says
``test_split: held-out fold k``); ``OUT/folds.json`` lists each fold's held-out items (indices
into the training split after ``data.limit_train``).

>>> import numpy as np
>>> folds = stratified_folds(np.array([0] * 6 + [1] * 3), k=3, seed=0)
>>> [sorted(np.array([0] * 6 + [1] * 3)[f].tolist()) for f in folds]
[[0, 0, 1], [0, 0, 1], [0, 0, 1]]
>>> [len(f) for f in shuffled_folds(7, k=3, seed=0)]
[3, 2, 2]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from cnnlab.config import Config, config_to_dict, config_with_overrides
from cnnlab.config.scope import check_scope
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic
from cnnlab.rundir import check_out_dir, open_run_dir
from cnnlab.runs import config_inputs
from cnnlab.tasks import get_task
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


def shuffled_folds(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint sorted index arrays covering ``range(n)``: a seeded permutation dealt round-robin, so
    fold sizes differ by at most one (a detector's images, which have no one class to stratify by)."""
    if k < 2:
        raise CnnlabError(f"--folds must be >= 2, got {k}")
    if n < k:
        raise CnnlabError(f"{n} training images cannot make {k} folds; use fewer folds")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[j::k]).astype(np.int64) for j in range(k)]


def run_cv(cfg: Config, out: str | Path, folds: int, *, overwrite: bool = False, quiet: bool = False,
           source: str = "") -> dict:
    """Train ``folds`` fold models into ``out/folds/``; write ``cv.json`` (= ``summary.json``) and ``folds.json``.

    Returns the record: per fold the task's headline test metric on the held-out fold (``metric``
    names it), their mean and standard deviation (``test_metric_mean``, ``test_metric_std``). A
    classification record also keeps its accuracy keys (``accuracy``, ``mean_accuracy``, ``std_accuracy``).
    """

    out = Path(out)
    task = get_task(cfg.task)
    headline = task.headline
    check_scope(cfg)  # before anything is created: every fold would refuse it
    task.check(cfg)
    check_out_dir(out, overwrite, kind="cv", inputs=config_inputs(cfg, source))
    if folds < 2:
        raise CnnlabError(f"--folds must be >= 2, got {folds}")
    if cfg.data.val == "test" and not cfg.data.final_fit:
        raise CnnlabError("cv holds out each fold as the test split, and data.val=test would choose the model on "
                          "it; use data.val=split (validation from the other folds) or data.val=none")
    items, count, strata = task.cv_items(cfg, task.load_source(cfg))
    parts = (stratified_folds(strata, folds, cfg.train.seed) if strata is not None
             else shuffled_folds(count, folds, cfg.train.seed))
    # The held-out fold plays the test split; validation (for early stopping) still comes from the K-1 folds.
    fold_cfg = config_with_overrides(config_to_dict(cfg), {"data.limit_train": None})
    metric, accuracy = headline.test_metric, headline.test_metric == "test_accuracy"
    start = time.perf_counter()
    results = []
    with open_run_dir(out, overwrite=overwrite, kind="cv"):
        write_json_atomic(out / "folds.json", {"items": count, "stratified": strata is not None,
                                               "seed": cfg.train.seed,
                                               "held_out": [p.tolist() for p in parts]})
        for k, held in enumerate(parts):
            train_idx = np.sort(np.concatenate([p for j, p in enumerate(parts) if j != k]))
            fold_data = task.fold_data(items, train_idx, held, k)
            summary = train(fold_cfg, out / "folds" / f"fold{k}", data=fold_data, quiet=True)
            summary["test_split"] = f"held-out fold {k} of {folds}"  # what the test metric measured here
            write_json_atomic(out / "folds" / f"fold{k}" / "summary.json", summary)
            value = summary.get(metric)
            row = {"fold": k, "accuracy": value} if accuracy else {"fold": k}  # classification: as it always was
            results.append({**row, metric: value, "train_images": int(len(train_idx)),
                            "held_out_images": int(len(held)), "train_seconds": summary.get("train_seconds"),
                            "status": summary.get("status"), "run_dir": str(out / "folds" / f"fold{k}")})
            if not quiet:
                shown = "-" if value is None else f"{value:.4f}"
                print(f"fold {k + 1}/{folds}: {headline.name} {shown} on {len(held)} held-out images "
                      f"({summary.get('train_seconds', 0):.1f}s)", file=sys.stderr, flush=True)
        values = [r[metric] for r in results if r[metric] is not None]
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if len(values) > 1 else 0.0 if values else None
        record = {"kind": "cv", "config": source or cfg.name, "folds": folds, "seed": cfg.train.seed,
                  "metric": metric, "direction": headline.direction, "per_fold": results}
        if accuracy:
            record.update(mean_accuracy=mean, std_accuracy=std)
        record.update({"test_metric_mean": mean, "test_metric_std": std,
                       metric: mean,  # the cross-validated estimate, under the summary's own key
                       "train_seconds": round(sum(r["train_seconds"] or 0 for r in results), 3),
                       "wall_seconds": round(time.perf_counter() - start, 3)})
        write_json_atomic(out / "cv.json", record)
        write_json_atomic(out / "summary.json", record)
    return record
