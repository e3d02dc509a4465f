"""Freezing: exact trainable counts per stage, frozen batch norm really frozen, gradual unfreezing, layer decay."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.config import OptimConfig, load_config
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.runs import load_run
from cnnlab.train.callbacks import Callback
from cnnlab.train.optim import build_optimizer
from cnnlab.transfer.freeze import apply_freeze
from tests.transfer.conftest import train_cli

RESNET_STAGES = ["features.stem", "features.layer1", "features.layer2", "features.layer3", "features.layer4", "head"]


def _count(model, prefix: str) -> int:
    """Parameters whose name starts with ``prefix`` (independent of cnnlab's stage code)."""
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix + "."))


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_freeze_k_leaves_exactly_the_last_k_stages_and_the_head_trainable(k):
    model = create_model("resnet18", num_classes=10, width=8)
    counts = apply_freeze(model, "all_but_last_k", k)
    assert list(counts) == RESNET_STAGES
    trainable_stages = RESNET_STAGES[len(RESNET_STAGES) - 1 - k:]
    for stage in RESNET_STAGES:
        total = _count(model, stage)
        expected = (total, 0) if stage in trainable_stages else (0, total)
        assert (counts[stage]["trainable"], counts[stage]["frozen"]) == expected, stage
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(_count(model, s) for s in trainable_stages)
    if k == 0:  # the head alone: 64 features x 10 classes + 10 biases
        assert trainable == 64 * 10 + 10


def test_name_patterns_and_bad_freeze_options():
    model = create_model("resnet18", num_classes=10, width=8)
    counts = apply_freeze(model, ["features.stem.*", "features.layer1.*"])
    assert counts["features.stem"]["trainable"] == 0 and counts["features.layer1"]["trainable"] == 0
    assert counts["features.layer2"]["frozen"] == 0
    with pytest.raises(CnnlabError, match="model.freeze_k=6 but the model has 5 feature stages .*use 0..5"):
        apply_freeze(model, "all_but_last_k", 6)
    with pytest.raises(CnnlabError, match="pattern 'layer9.\\*' matches no parameter"):
        apply_freeze(model, ["layer9.*"])
    with pytest.raises(CnnlabError, match="model.freeze='some' is not valid"):
        apply_freeze(model, "some")


def _state(run_dir):
    return {k: v.clone() for k, v in load_run(run_dir).model.state_dict().items()}


def test_frozen_batch_norm_statistics_and_weights_are_unchanged_after_training(mnist_run, tmp_path):
    """mnist-fast's ConvNet (3 conv+BN blocks): freeze_k=1 trains block 3 and the head only."""
    before = _state(mnist_run)
    train_cli("train", "mnist-fast", f"model.weights={mnist_run}", "model.freeze_k=1", "data.limit_train=512",
              "train.plots=false", "--out", tmp_path / "ft", "--quiet")
    after = _state(tmp_path / "ft")
    summary = json.loads((tmp_path / "ft" / "summary.json").read_text())
    model = load_run(tmp_path / "ft").model
    counted = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("features.2.", "head.")))
    assert summary["trainable_params_at_start"] == counted < summary["params"]
    frozen = [k for k in before if k.startswith(("features.0.", "features.1."))]
    trained = [k for k in before if k.startswith(("features.2.", "head."))]
    assert any("running_mean" in k for k in frozen) and any("running_var" in k for k in frozen)
    for key in frozen:  # weights and running statistics, bit for bit
        assert torch.equal(before[key], after[key]), key
    changed = [k for k in trained if not torch.equal(before[k], after[k])]
    assert any("running_mean" in k for k in changed) and any(k.endswith("weight") for k in changed)


def test_gradual_unfreezing_opens_one_stage_per_epoch(mnist_run, tmp_path, capsys):
    before = _state(mnist_run)
    train_cli("train", "mnist-fast", f"model.weights={mnist_run}", "model.freeze_k=0", "train.unfreeze_every=1",
              "train.epochs=3", "data.limit_train=256", "train.plots=false", "--out", tmp_path / "gradual")
    err = capsys.readouterr().err
    assert "unfreezing features.2 after epoch 1" in err and "unfreezing features.1 after epoch 2" in err
    after = _state(tmp_path / "gradual")
    for key in before:
        same = torch.equal(before[key], after[key])
        if key.startswith("features.0."):
            assert same, key  # never unfrozen
        elif key.endswith(".weight") and not key.startswith("head"):
            assert not same, key  # features.1 and features.2 trained after their unfreezing


class _RecordLR(Callback):
    def __init__(self):
        self.lrs = None

    def on_step_end(self, trainer, metrics):
        if self.lrs is None:
            self.lrs = {g["stage"]: g["lr"] for g in trainer.optimizer.param_groups}


def test_layer_decay_gives_each_earlier_stage_a_smaller_rate(tmp_path):
    model = create_model("resnet18", num_classes=10, width=8)
    groups = build_optimizer(model, OptimConfig(name="sgd", lr=0.1, layer_decay=0.5, weight_decay=1e-4)).param_groups
    scale = {g["stage"]: g["lr_scale"] for g in groups}
    assert scale == {s: 0.5 ** (5 - i) for i, s in enumerate(RESNET_STAGES)}
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())
    # In a run, the trainer multiplies its scheduled rate by each group's scale.
    from cnnlab.train.run import train

    recorder = _RecordLR()
    cfg = load_config("mnist-fast", ["optim.layer_decay=0.5", "schedule.name=constant", "optim.lr=0.01",
                                     "data.limit_train=256", "train.plots=false"])
    train(cfg, tmp_path / "ld", callbacks=[recorder], quiet=True)
    assert recorder.lrs == pytest.approx({"features.0": 0.01 / 8, "features.1": 0.01 / 4, "features.2": 0.01 / 2,
                                          "head": 0.01})
