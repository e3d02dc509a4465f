"""Ensembles of trained runs: probability averaging, majority vote, stacking, and bagging.

Every member predicts class probabilities for the same test images (each with its own
normalisation, from its checkpoint). Then:

- ``mean``  — average the members' probabilities, take the most probable class;
- ``vote``  — each member votes for its top class; ties go to the tied class with the highest
  average probability;
- ``stack`` — a multinomial logistic regression (the meta-model, fitted with L-BFGS in torch)
  maps the members' log-probabilities (N, members x classes) to the class. It must be fitted on
  predictions for images no member trained on, and scored on images it was not fitted on: the
  test set is cut into 5 stratified folds and each fold is predicted by a meta-model fitted on
  the other four (cross-fitting), so every reported prediction is held out twice over.

Bagging trains K members of one config, each on a bootstrap sample of the training set (N images
drawn with replacement, seeded by ``train.seed + k``), then ensembles them.

>>> import torch
>>> probs = torch.tensor([[[0.6, 0.4]], [[0.4, 0.6]], [[0.45, 0.55]]])  # 3 members, 1 image, 2 classes
>>> combine(probs, "mean").tolist(), combine(probs, "vote").tolist()
([1], [1])
>>> combine(torch.tensor([[[0.9, 0.1]], [[0.4, 0.6]], [[0.45, 0.55]]]), "mean").tolist()  # mean 0.583 vs 0.417
[0]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic

METHODS = ("mean", "vote", "stack")
STACK_FOLDS = 5


DATA_KEYS = ("name", "root", "image_size", "resize", "channels")  # what makes two runs' test sets one


def _data_key(cfg) -> tuple:
    return tuple(getattr(cfg.data, k) for k in DATA_KEYS)


def _data_difference(a, b) -> str:
    """The first data key two configs disagree on, as ``data.name=mnist vs fashion-mnist``."""
    key = next(k for k in DATA_KEYS if getattr(a.data, k) != getattr(b.data, k))
    return f"data.{key}={getattr(a.data, key)} vs {getattr(b.data, key)}"


def _refuse_repeats(run_dirs) -> None:
    """Each member once: the same run named twice (or through a link) would be weighted double."""
    seen: dict[Path, str] = {}
    for d in run_dirs:
        real = Path(d).resolve()
        if real in seen:
            same = f" (as {seen[real]} and {d})" if str(seen[real]) != str(d) else ""
            raise CnnlabError(f"run {d} is named twice{same}; an ensemble's members must be distinct runs")
        seen[real] = str(d)


@torch.no_grad()
def member_probabilities(run_dirs: list[str | Path], data_dir: str | None = None, data=None):
    """``(probs (M, N, C), labels (N,), accuracies [M], data)``: every member's softmax on the shared test set."""
    from cnnlab.data.datasets import load_dataset
    from cnnlab.runs import load_run

    if len(run_dirs) < 2:
        raise CnnlabError(f"an ensemble needs at least 2 runs, got {len(run_dirs)}")
    _refuse_repeats(run_dirs)
    runs = [load_run(d) for d in run_dirs]
    first = runs[0]
    for r in runs[1:]:
        if _data_key(r.config) != _data_key(first.config):
            raise CnnlabError(f"{r.run_dir} was trained on other data than {first.run_dir} "
                              f"({_data_difference(r.config, first.config)}); ensemble runs of one dataset")
        if r.classes != first.classes:
            raise CnnlabError(f"{r.run_dir} has other classes than {first.run_dir} ({len(r.classes)} vs "
                              f"{len(first.classes)}, or in another order); ensemble runs of one dataset")
    if data is None:
        cfg = first.config
        if data_dir:
            cfg.data.data_dir = data_dir
        data = load_dataset(cfg.data)
    x, labels = data.test_x, data.test_y
    all_probs = []
    for r in runs:
        if tuple(r.input_size) != tuple(data.input_size):
            raise CnnlabError(f"{r.run_dir} takes images of {'x'.join(map(str, r.input_size))}, the data has "
                              f"{'x'.join(map(str, data.input_size))}")
        chunks = []
        for i in range(0, len(x), 1000):
            images = r.normalize(x[i:i + 1000].float() / 255.0)  # (B, C, H, W), as in training
            chunks.append(torch.softmax(r.model(images).float(), dim=1))
        all_probs.append(torch.cat(chunks))
    probs = torch.stack(all_probs)  # (M, N, C)
    accuracies = [float((p.argmax(1) == labels).float().mean()) for p in probs]
    return probs, labels, accuracies, data


def combine(probs: torch.Tensor, method: str) -> torch.Tensor:
    """Class predictions (N,) from member probabilities (M, N, C) by ``mean`` or ``vote``."""
    mean = probs.mean(0)  # (N, C)
    if method == "mean":
        return mean.argmax(1)
    if method == "vote":
        votes = torch.nn.functional.one_hot(probs.argmax(2), probs.shape[2]).sum(0).float()  # (N, C)
        return (votes + 0.5 * mean).argmax(1)  # 0.5 * mean < 1 vote: it only breaks ties
    raise CnnlabError(f"unknown ensemble method '{method}'; expected one of {', '.join(METHODS)}")


def fit_logistic(features: torch.Tensor, labels: torch.Tensor, classes: int, l2: float = 1e-3,
                 steps: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression: weights (F, C) and bias (C,) minimising cross-entropy + l2 |W|^2."""
    torch.manual_seed(0)
    w = torch.zeros(features.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    feats = features.double()
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(feats @ w + b, labels) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def stack_predictions(probs: torch.Tensor, labels: torch.Tensor, folds: int = STACK_FOLDS, seed: int = 0,
                      fold_indices: list[np.ndarray] | None = None) -> torch.Tensor:
    """Cross-fitted stacking: each image's class from a meta-model fitted on the other folds' predictions.

    ``fold_indices`` fixes the folds (default: ``folds`` stratified folds of ``labels``, seeded).
    """
    from cnnlab.tune.cv import stratified_folds

    m, n, c = probs.shape
    features = torch.log(probs.clamp_min(1e-8)).permute(1, 0, 2).reshape(n, m * c)  # (N, M*C)
    preds = torch.empty(n, dtype=torch.int64)
    for held in fold_indices if fold_indices is not None else stratified_folds(labels.numpy(), folds, seed):
        held_t = torch.from_numpy(held)
        mask = torch.ones(n, dtype=torch.bool)
        mask[held_t] = False
        w, b = fit_logistic(features[mask], labels[mask], c)
        preds[held_t] = (features[held_t].double() @ w + b).argmax(1)
    return preds


def ensemble_runs(run_dirs: list[str | Path], method: str = "mean", data_dir: str | None = None, data=None) -> dict:
    """Test accuracy of the ensemble of ``run_dirs`` by ``method``, beside every member's."""
    if method not in METHODS:
        raise CnnlabError(f"unknown ensemble method '{method}'; expected one of {', '.join(METHODS)}")
    probs, labels, accuracies, data = member_probabilities(run_dirs, data_dir, data)
    preds = stack_predictions(probs, labels) if method == "stack" else combine(probs, method)
    accuracy = float((preds == labels).float().mean())
    return {"kind": "ensemble", "method": method, "test_images": int(len(labels)), "test_accuracy": accuracy,
            "members": [{"run_dir": str(d), "test_accuracy": a} for d, a in zip(run_dirs, accuracies)],
            "best_member_accuracy": max(accuracies),
            "note": f"stacking cross-fitted over {STACK_FOLDS} stratified folds of the test set"
            if method == "stack" else None}


def bootstrap_indices(n: int, seed: int) -> np.ndarray:
    """``n`` indices drawn with replacement from ``range(n)`` (seeded): a bootstrap sample."""
    return np.random.default_rng(seed).integers(0, n, size=n)


def run_bagging(cfg, out: str | Path, k: int, method: str = "mean", *, overwrite: bool = False,
                quiet: bool = False, source: str = "") -> dict:
    """Train ``k`` members on bootstrap samples into ``out/members/``, ensemble them; write ``ensemble.json``."""
    from cnnlab.config import config_to_dict, config_with_overrides
    from cnnlab.data.datasets import ImageData, load_dataset
    from cnnlab.data.splits import limit_train
    from cnnlab.rundir import check_out_dir, open_run_dir
    from cnnlab.train.run import train

    from cnnlab.errors import check_int_range

    check_int_range("--bagging", k, 2, 100, "each member is a full training run")
    if method not in METHODS:
        raise CnnlabError(f"unknown ensemble method '{method}'; expected one of {', '.join(METHODS)}")
    out = Path(out)
    check_out_dir(out, overwrite)
    data = load_dataset(cfg.data)
    x, y = data.train_x, data.train_y
    keep = limit_train(y.numpy(), cfg.data.limit_train, cfg.train.seed)
    if keep is not None:
        x, y = x[keep], y[keep]
    start = time.perf_counter()
    with open_run_dir(out, overwrite=overwrite, kind="ensemble"):
        members = []
        for i in range(k):
            seed = cfg.train.seed + i
            idx = torch.from_numpy(bootstrap_indices(len(y), seed))
            sample = ImageData(f"{data.name}-bootstrap{i}", x[idx], y[idx], data.test_x, data.test_y, data.classes,
                               data.source, data.skipped)
            mcfg = config_with_overrides(config_to_dict(cfg), {"train.seed": seed, "data.limit_train": None})
            run_dir = out / "members" / f"member{i}"
            summary = train(mcfg, run_dir, data=sample, quiet=True)
            members.append(run_dir)
            if not quiet:
                print(f"member {i + 1}/{k}: bootstrap of {len(y)} images ({len(np.unique(idx.numpy()))} distinct), "
                      f"test accuracy {summary.get('test_accuracy', 0):.4f}", file=sys.stderr, flush=True)
        result = ensemble_runs(members, method, data=data)
        result.update(bagging=k, config=source or cfg.name, wall_seconds=round(time.perf_counter() - start, 3),
                      train_seconds=sum(json.loads((m / "summary.json").read_text())["train_seconds"] for m in members))
        write_json_atomic(out / "ensemble.json", result)
        write_json_atomic(out / "summary.json", result)
    return result
