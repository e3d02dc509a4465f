"""Boosting with CNN members: SAMME, the multi-class AdaBoost (Zhu, Zou, Rosset & Hastie, 2009).

Members are trained one after another. Every training image carries a weight, uniform at first.
Round k trains a member on a *weighted resample* of the training set (N images drawn with
replacement, image i with probability w_i, seeded by ``train.seed + k``), then measures its
weighted error on the whole training set,

    err_k = sum_i w_i [pred_k(i) != y_i] / sum_i w_i,

gives it the weight ``alpha_k = log((1 - err_k) / err_k) + log(C - 1)`` and multiplies the weight
of every image it got wrong by ``exp(alpha_k)`` (then renormalises), so the next member
concentrates on what this one missed. A member no better than chance on the weighted sample
(``err_k >= 1 - 1/C``, where ``alpha_k <= 0``) ends the boosting with a notice, as SAMME
prescribes; it takes no part in the vote. The ensemble predicts ``argmax_c sum_k alpha_k
[pred_k = c]``; ties go to the class with the higher alpha-weighted mean probability.

>>> import torch
>>> w = torch.full((4,), 0.25, dtype=torch.float64)
>>> err, alpha, w2 = samme_step(w, torch.tensor([False, False, False, True]), classes=3)
>>> round(err, 4), round(alpha, 4), [round(v, 4) for v in w2.tolist()]  # alpha = log(3) + log(2) = log(6)
(0.25, 1.7918, [0.1111, 0.1111, 0.1111, 0.6667])
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cnnlab.config import config_to_dict, config_with_overrides
from cnnlab.data.datasets import ImageData, load_dataset
from cnnlab.data.splits import limit_train
from cnnlab.errors import CnnlabError, check_int_range
from cnnlab.fileio import write_json_atomic
from cnnlab.rundir import check_out_dir, open_run_dir
from cnnlab.runs import config_inputs, load_run
from cnnlab.tasks import require_accuracy
from cnnlab.train.run import train
from cnnlab.tune.ensemble import predict_probabilities

MIN_ERROR = 1e-10  # a member perfect on the weighted sample gets a large, finite weight (and boosting stops)


def samme_step(weights: torch.Tensor, wrong: torch.Tensor, classes: int) -> tuple[float, float, torch.Tensor]:
    """``(err, alpha, new_weights)`` for one SAMME round from sample weights (N,) and mistakes (N,) bool."""
    err = float((weights * wrong).sum() / weights.sum())
    alpha = math.log(max(1.0 - err, MIN_ERROR) / max(err, MIN_ERROR)) + math.log(classes - 1)
    new = weights * torch.exp(alpha * wrong.to(weights.dtype))
    return err, alpha, new / new.sum()


def samme_combine(probs: torch.Tensor, alphas: list[float]) -> torch.Tensor:
    """Class predictions (N,) from member probabilities (M, N, C): the alpha-weighted vote of the members' classes."""
    a = torch.tensor(alphas, dtype=torch.float64).view(-1, 1, 1)  # (M, 1, 1)
    votes = (torch.nn.functional.one_hot(probs.argmax(2), probs.shape[2]).double() * a).sum(0)  # (N, C)
    tied = votes >= votes.max(1, keepdim=True).values - 1e-12  # (N, C): the classes with the most weight
    weighted_mean = (probs.double() * a).sum(0)  # (N, C)
    return torch.where(tied, weighted_mean, torch.full_like(weighted_mean, -math.inf)).argmax(1)


def weighted_resample(weights: torch.Tensor, seed: int) -> np.ndarray:
    """``N`` indices drawn with replacement, index i with probability ``weights[i]`` (seeded)."""
    p = weights.double().numpy()
    return np.random.default_rng(seed).choice(len(p), size=len(p), replace=True, p=p / p.sum())


def run_boosting(cfg, out: str | Path, k: int, *, overwrite: bool = False, quiet: bool = False,
                 source: str = "") -> dict:
    """Train up to ``k`` SAMME members into ``out/members/``; write ``ensemble.json`` (= ``summary.json``)."""

    check_int_range("--boost", k, 2, 100, "each round is a full training run")
    require_accuracy(cfg, "cnnlab ensemble --boost")  # before anything is read or created
    out = Path(out)
    check_out_dir(out, overwrite, kind="ensemble", inputs=config_inputs(cfg, source))
    data = load_dataset(cfg.data)
    classes = data.num_classes
    if classes < 2:
        raise CnnlabError(f"{data.name} has {classes} class; boosting needs at least 2")
    x, y = data.train_x, data.train_y
    keep = limit_train(y.numpy(), cfg.data.limit_train, cfg.train.seed)  # the same subset train/cv/bagging use
    if keep is not None:
        x, y = x[torch.from_numpy(keep)], y[torch.from_numpy(keep)]
    # Nothing half-written: a directory this call creates goes again if boosting fails (open_run_dir removes
    # only the marked directory it made, never a path someone else created meanwhile).
    return _boost(cfg, out, k, data, x, y, overwrite, quiet, source, time.perf_counter(),
                  remove_on_error=not out.exists())


def _boost(cfg, out, k, data, x, y, overwrite, quiet, source, start, remove_on_error: bool) -> dict:

    classes = data.num_classes
    weights = torch.full((len(y),), 1.0 / len(y), dtype=torch.float64)
    chance = 1.0 - 1.0 / classes
    members, alphas, rounds, stop = [], [], [], None
    with open_run_dir(out, overwrite=overwrite, kind="ensemble", inputs=config_inputs(cfg, source),
                      remove_on_error=remove_on_error):
        for i in range(k):
            seed = cfg.train.seed + i
            idx = torch.from_numpy(weighted_resample(weights, seed))
            sample = ImageData(f"{data.name}-boost{i}", x[idx], y[idx], data.test_x, data.test_y, data.classes,
                               data.source, data.skipped)
            mcfg = config_with_overrides(config_to_dict(cfg), {"train.seed": seed, "data.limit_train": None})
            run_dir = out / "members" / f"member{i}"
            summary = train(mcfg, run_dir, data=sample, quiet=True)
            wrong = predict_probabilities([load_run(run_dir)], x)[0].argmax(1) != y  # (N,): the whole training set
            err, alpha, new_weights = samme_step(weights, wrong, classes)
            rounds.append({"round": i, "run_dir": str(run_dir), "weighted_error": err,
                           "alpha": alpha if err < chance else 0.0, "distinct_images": int(len(idx.unique())),
                           "test_accuracy": summary.get("test_accuracy")})
            if err >= chance:
                stop = (f"round {i + 1}: weighted error {err:.4f} >= 1 - 1/{classes} = {chance:.4f}, no better than "
                        f"chance on the weighted sample; SAMME stops with {len(members)} members")
                break
            members.append(run_dir)
            alphas.append(alpha)
            weights = new_weights
            if not quiet:
                print(f"member {i + 1}/{k}: weighted error {err:.4f}, alpha {alpha:.3f}, test accuracy "
                      f"{summary.get('test_accuracy', 0):.4f}", file=sys.stderr, flush=True)
            if err == 0.0:
                stop = f"round {i + 1}: weighted error 0 (the member fits every training image); SAMME stops"
                break
        if not members:
            raise CnnlabError(f"{stop}: the first member is no better than chance, so there is no ensemble; "
                              "train longer (train.epochs) or check the config with `cnnlab train` first")
        probs = predict_probabilities([load_run(d) for d in members], data.test_x)  # (M, N, C)
        preds = samme_combine(probs, alphas)
        labels = data.test_y
        accuracies = [float((p.argmax(1) == labels).float().mean()) for p in probs]
        result = {"kind": "ensemble", "method": "boost", "boost": k, "config": source or cfg.name,
                  "test_images": int(len(labels)), "test_accuracy": float((preds == labels).float().mean()),
                  "members": [{"run_dir": str(d), "test_accuracy": a, "alpha": al}
                              for d, a, al in zip(members, accuracies, alphas)],
                  "best_member_accuracy": max(accuracies), "rounds": rounds, "note": stop,
                  "wall_seconds": round(time.perf_counter() - start, 3),
                  "train_seconds": sum(json.loads((Path(r["run_dir"]) / "summary.json").read_text())["train_seconds"]
                                       for r in rounds)}
        write_json_atomic(out / "ensemble.json", result)
        write_json_atomic(out / "summary.json", result)
    return result
