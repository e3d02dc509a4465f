"""Mixup and cutmix against hand-computed batches, and through a real run (issue 19: callbacks that change a batch)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.train.cutmix import CutMix, cut_batch, cut_box
from cnnlab.train.mixup import Mixup, mix_batch
from cnnlab.train.callbacks import Callback
from tests.train.helpers import toy_config, toy_data


class CtrlCAtStep(Callback):
    """What the SIGINT handler does, at a chosen step: the trainer saves last.pt and stops."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, metrics) -> None:
        if trainer.step == self.step:
            trainer._local_interrupt = True


def test_mixup_blends_images_and_one_hot_labels_by_lam():
    x = torch.arange(3 * 2 * 2, dtype=torch.float32).view(3, 1, 2, 2)
    y = torch.tensor([0, 2, 1])
    perm = torch.tensor([2, 0, 1])
    xm, ym = mix_batch(x, y, lam=0.3, perm=perm, num_classes=3)
    for i in range(3):  # written out: 0.3 * own + 0.7 * partner
        torch.testing.assert_close(xm[i], 0.3 * x[i] + 0.7 * x[perm[i]])
        expected = [0.0, 0.0, 0.0]
        expected[int(y[i])] += 0.3
        expected[int(y[perm[i]])] += 0.7
        torch.testing.assert_close(ym[i], torch.tensor(expected))


def test_the_soft_label_loss_is_lam_times_one_loss_plus_the_rest_times_the_other():
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    y, perm, lam = torch.tensor([1, 4, 0, 2]), torch.tensor([3, 2, 1, 0]), 0.35
    _, soft = mix_batch(torch.zeros(4, 1, 1, 1), y, lam, perm, 5)
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    torch.testing.assert_close(F.cross_entropy(logits, soft), expected)


def test_cutmix_pastes_the_box_and_weights_labels_by_the_pasted_area():
    x = torch.zeros(2, 1, 8, 8)
    x[1] = 1.0
    xm, ym = cut_batch(x, torch.tensor([0, 1]), box=(2, 6, 0, 3), perm=torch.tensor([1, 0]), num_classes=2)
    assert xm[0, 0, 2:6, 0:3].eq(1).all() and xm[0].sum() == 12  # 4 x 3 pixels of image 1
    assert xm[1, 0, 2:6, 0:3].eq(0).all() and xm[1].sum() == 64 - 12
    torch.testing.assert_close(ym[0], torch.tensor([1 - 12 / 64, 12 / 64]))


def test_cut_box_covers_about_one_minus_lam_and_stays_inside():
    rng = np.random.default_rng(0)
    for lam in (0.1, 0.5, 0.9):
        for _ in range(50):
            top, bottom, left, right = cut_box(32, 32, lam, rng)
            assert 0 <= top <= bottom <= 32 and 0 <= left <= right <= 32
            assert (bottom - top) * (right - left) <= (1 - lam) * 32 * 32 + 64


@pytest.mark.parametrize("cls", [Mixup, CutMix])
def test_the_draws_are_a_function_of_seed_epoch_and_batch(cls):
    x, y = torch.rand(8, 3, 16, 16), torch.arange(8) % 4

    def step(epoch, batch, seed=0):
        trainer = SimpleNamespace(epoch=epoch, batch_in_epoch=batch, strategy=SimpleNamespace(rank=0),
                                  extra_checkpoint={"num_classes": 4})
        return cls(0.4, seed).on_train_batch_start(trainer, (x, y))

    a, b, c = step(1, 3), step(1, 3), step(1, 4)
    torch.testing.assert_close(a[0], b[0]) and torch.testing.assert_close(a[1], b[1])
    assert not torch.equal(a[0], c[0])  # another batch, another blend
    assert torch.allclose(a[1].sum(1), torch.ones(8))  # label rows stay distributions


@pytest.mark.parametrize("option", ["train.mixup=0.4", "train.cutmix=1.0"])
def test_a_run_with_mixing_trains_and_resumes_exactly(tmp_path, option):
    from cnnlab.train.run import train

    data = toy_data()
    whole = train(toy_config(option, "train.epochs=2"), tmp_path / "whole", data=data, quiet=True)
    part = train(toy_config(option, "train.epochs=2"), tmp_path / "part", data=data, quiet=True,
                 callbacks=[CtrlCAtStep(7)])  # mid-epoch 2 (4.5 steps an epoch)
    assert part["status"] == "interrupted"
    resumed = train(toy_config(option, "train.epochs=2"), tmp_path / "part", data=data, quiet=True, resume=True)
    assert resumed["test_accuracy"] == whole["test_accuracy"] and resumed["test_loss"] == whole["test_loss"]
    plain = train(toy_config("train.epochs=2"), tmp_path / "plain", data=data, quiet=True)
    assert plain["test_loss"] != whole["test_loss"]  # the option changed what was trained on


def test_both_mixers_at_once_are_refused_and_detection_refuses_them(tmp_path):
    from cnnlab.config import load_config
    from cnnlab.errors import CnnlabError
    from cnnlab.train.run import train

    with pytest.raises(CnnlabError, match="train.mixup and train.cutmix are both set"):
        toy_config("train.mixup=0.2", "train.cutmix=1.0")
    with pytest.raises(CnnlabError, match="train.mixup is not supported with task=detect: blending two images"):
        train(load_config("detect-raccoon", ["train.mixup=0.2"]), tmp_path / "d")
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()
