"""Ensembles of trained runs: probability averaging, majority vote, stacking, and bagging.

Every member predicts class probabilities for the same test images (each with its own
normalisation, from its checkpoint). Then:

- ``mean``  — average the members' probabilities, take the most probable class;
- ``vote``  — each member votes for its top class; ties go to the tied class with the highest
  average probability;
- ``stack`` — a multinomial logistic regression (the meta-model, fitted with L-BFGS in torch)
  maps the members' log-probabilities (N, members x classes) to the class. It is fitted on the
  members' predictions for *training* images that no member trained on — the intersection of their
  validation splits (and of the images ``data.limit_train`` left out), rebuilt from each member's
  config — and then scores the test set once. No test label reaches the meta-model: the test
  labels are read only to count the correct predictions. Members without a validation split
  (``data.val=none|test``, ``data.final_fit``) are refused; bagged members are stacked by
  ``--bagging K CONFIG --method stack``, which holds a stratified ``data.val_fraction`` of the
  training set out of every bootstrap sample for the meta-model.

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

from cnnlab.config import config_to_dict, config_with_overrides
from cnnlab.data.datasets import ImageData, load_dataset
from cnnlab.data.pipeline import choose_train_val
from cnnlab.data.splits import limit_train, stratified_split, stratified_subset
from cnnlab.errors import CnnlabError, check_int_range
from cnnlab.fileio import write_json_atomic
from cnnlab.rundir import check_out_dir, open_run_dir
from cnnlab.runs import config_inputs, load_run
from cnnlab.tasks import require_accuracy
from cnnlab.train.run import train

METHODS = ("mean", "vote", "stack")
MAX_STACK_IMAGES = 10_000  # the meta-model is fitted on at most this many held-out training images (a stratified draw)


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


def load_members(run_dirs: list[str | Path], data_dir: str | None = None, data=None):
    """``(runs, data)``: the members (at least 2, all of one dataset) and that dataset, loaded once."""

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
    for r in runs:
        if tuple(r.input_size) != tuple(data.input_size):
            raise CnnlabError(f"{r.run_dir} takes images of {'x'.join(map(str, r.input_size))}, the data has "
                              f"{'x'.join(map(str, data.input_size))}")
    return runs, data


@torch.no_grad()
def predict_probabilities(runs, images: torch.Tensor) -> torch.Tensor:
    """Every member's softmax (M, N, C) on uint8 ``images`` (N, C, H, W), each with its own normalisation."""
    all_probs = []
    for r in runs:
        chunks = []
        for i in range(0, len(images), 1000):
            batch = r.normalize(images[i:i + 1000].float() / 255.0)  # (B, C, H, W), as in training
            chunks.append(torch.softmax(r.model(batch).float(), dim=1))
        all_probs.append(torch.cat(chunks) if chunks else torch.empty(0, r.num_classes))
    return torch.stack(all_probs)  # (M, N, C)


def member_probabilities(run_dirs: list[str | Path], data_dir: str | None = None, data=None):
    """``(probs (M, N, C), labels (N,), accuracies [M], data)``: every member's softmax on the shared test set."""
    runs, data = load_members(run_dirs, data_dir, data)
    probs = predict_probabilities(runs, data.test_x)
    labels = data.test_y
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


def stack_features(probs: torch.Tensor) -> torch.Tensor:
    """The meta-model's input (N, M*C): every member's log-probabilities side by side."""
    m, n, c = probs.shape
    return torch.log(probs.clamp_min(1e-8)).permute(1, 0, 2).reshape(n, m * c)


def stack_predictions(fit_probs: torch.Tensor, fit_labels: torch.Tensor, test_probs: torch.Tensor) -> torch.Tensor:
    """Stacking: a meta-model fitted on held-out predictions ``fit_probs`` (M, V, C) with ``fit_labels`` (V,)
    predicts the class of each test image from ``test_probs`` (M, N, C). It takes no test label."""
    w, b = fit_logistic(stack_features(fit_probs), fit_labels, fit_probs.shape[2])
    return (stack_features(test_probs).double() @ w + b).argmax(1)


def unseen_training_images(runs, data) -> np.ndarray:
    """Sorted indices of the training images that no member trained on, rebuilt from each member's config.

    A member saw the training part of ``choose_train_val`` (after ``data.limit_train``) under its own
    ``train.seed``; everything else of the training set — its validation split, and what
    ``limit_train`` left out — is unseen by it. A member without a validation split is refused.
    """
    n = len(data.train_y)
    unseen = np.ones(n, dtype=bool)
    for r in runs:
        d = r.config.data
        if d.final_fit or d.val != "split":
            why = "data.final_fit=true" if d.final_fit else f"data.val={d.val}"
            raise CnnlabError(f"--method stack fits its meta-model on validation predictions, and {r.run_dir} has no "
                              f"validation split ({why}); retrain the members with data.val=split, or use "
                              "--method mean|vote")
        trained_on = r.summary.get("dataset")
        if trained_on is not None and trained_on != data.name:  # a bootstrap sample, a cv fold: not in its config
            raise CnnlabError(f"{r.run_dir} was trained on {trained_on}, a sample its config does not record, so its "
                              "held-out images are unknown; stack bagged members with `cnnlab ensemble --bagging K "
                              "CONFIG --method stack`")
        idx = torch.arange(n)
        (trained, _), _ = choose_train_val(idx, data.train_y, idx[:0], data.test_y[:0], d, r.config.train.seed)
        unseen[trained.numpy()] = False
    return np.flatnonzero(unseen)


def _stack_set(runs, data) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) for fitting the meta-model: unseen training images, at most MAX_STACK_IMAGES."""
    held = unseen_training_images(runs, data)
    classes = data.num_classes
    if len(held) < 2 * classes:
        seeds = sorted({r.config.train.seed for r in runs})
        raise CnnlabError(f"the members share only {len(held)} training images that none of them trained on (their "
                          f"validation splits follow train.seed {', '.join(map(str, seeds))}); stacking needs at "
                          f"least {2 * classes}: train the members with one train.seed (varying other keys), or use "
                          "`cnnlab ensemble --bagging K CONFIG --method stack`")
    if len(held) > MAX_STACK_IMAGES:
        held = held[stratified_subset(data.train_y[held].numpy(), MAX_STACK_IMAGES, 0)]
    held_t = torch.from_numpy(held)
    return data.train_x[held_t], data.train_y[held_t]


def ensemble_runs(run_dirs: list[str | Path], method: str = "mean", data_dir: str | None = None, data=None,
                  stack_set: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Test accuracy of the ensemble of ``run_dirs`` by ``method``, beside every member's.

    ``stack_set`` = (uint8 images, labels) no member trained on replaces the held-out set that
    ``stack`` otherwise rebuilds from the members' configs (:func:`unseen_training_images`).
    """
    if method not in METHODS:
        raise CnnlabError(f"unknown ensemble method '{method}'; expected one of {', '.join(METHODS)}")
    runs, data = load_members(run_dirs, data_dir, data)
    note, extra = None, {}
    if method == "stack":
        fit_x, fit_y = stack_set if stack_set is not None else _stack_set(runs, data)
        fit_probs = predict_probabilities(runs, fit_x)  # (M, V, C): before any test image is looked at
        test_probs = predict_probabilities(runs, data.test_x)
        preds = stack_predictions(fit_probs, fit_y, test_probs)
        note = f"meta-model fitted on {len(fit_y)} held-out training images no member trained on; test set scored once"
        extra = {"stack_images": int(len(fit_y))}
    else:
        test_probs = predict_probabilities(runs, data.test_x)
        preds = combine(test_probs, method)
    labels = data.test_y  # read only now, to score
    accuracies = [float((p.argmax(1) == labels).float().mean()) for p in test_probs]
    accuracy = float((preds == labels).float().mean())
    return {"kind": "ensemble", "method": method, "test_images": int(len(labels)), "test_accuracy": accuracy,
            "members": [{"run_dir": str(d), "test_accuracy": a} for d, a in zip(run_dirs, accuracies)],
            "best_member_accuracy": max(accuracies), **extra, "note": note}


def bootstrap_indices(n: int, seed: int) -> np.ndarray:
    """``n`` indices drawn with replacement from ``range(n)`` (seeded): a bootstrap sample."""
    return np.random.default_rng(seed).integers(0, n, size=n)


def run_bagging(cfg, out: str | Path, k: int, method: str = "mean", *, overwrite: bool = False,
                quiet: bool = False, source: str = "") -> dict:
    """Train ``k`` members on bootstrap samples into ``out/members/``, ensemble them; write ``ensemble.json``.

    With ``method="stack"`` a stratified ``data.val_fraction`` of the training set (seeded by
    ``train.seed``) is held out of every bootstrap sample first; the meta-model is fitted there.
    """

    check_int_range("--bagging", k, 2, 100, "each member is a full training run")
    require_accuracy(cfg, "cnnlab ensemble --bagging")  # before anything is read or created
    if method not in METHODS:
        raise CnnlabError(f"unknown ensemble method '{method}'; expected one of {', '.join(METHODS)}")
    out = Path(out)
    check_out_dir(out, overwrite, kind="ensemble", inputs=config_inputs(cfg, source))
    data = load_dataset(cfg.data)
    x, y = data.train_x, data.train_y
    keep = limit_train(y.numpy(), cfg.data.limit_train, cfg.train.seed)
    if keep is not None:
        x, y = x[keep], y[keep]
    stack_set = None
    if method == "stack":  # images no bootstrap sample can draw: the meta-model's training set
        keep, held = stratified_split(y.numpy(), cfg.data.val_fraction, cfg.train.seed)
        if len(held) < 2 * data.num_classes:
            raise CnnlabError(f"data.val_fraction={cfg.data.val_fraction} holds out {len(held)} of {len(y)} training "
                              f"images for the meta-model; stacking needs at least {2 * data.num_classes}: raise it")
        stack_set = (x[torch.from_numpy(held)], y[torch.from_numpy(held)])
        x, y = x[torch.from_numpy(keep)], y[torch.from_numpy(keep)]
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
        result = ensemble_runs(members, method, data=data, stack_set=stack_set)
        result.update(bagging=k, config=source or cfg.name, wall_seconds=round(time.perf_counter() - start, 3),
                      train_seconds=sum(json.loads((m / "summary.json").read_text())["train_seconds"] for m in members))
        write_json_atomic(out / "ensemble.json", result)
        write_json_atomic(out / "summary.json", result)
    return result
