"""Cached features: equal to the live backbone, keyed (stale caches rebuilt), augmentation refused, heads trained."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.data.datasets import load_dataset
from cnnlab.runs import load_run
from tests.transfer.conftest import train_cli


def _features(capsys, backbone, cifar_folder, out, *extra):
    code = main(["features", str(backbone), "--data", "folder-convnet", "--out", str(out),
                 f"data.root={cifar_folder}", f"data.cache_dir={cifar_folder.with_name('decoded-f')}",
                 "data.image_size=32", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cached_features_equal_the_live_backbone_output(cifar_run, cifar_folder, tmp_path, capsys):
    out = tmp_path / "feats"
    code, stdout, _ = _features(capsys, cifar_run, cifar_folder, out)
    assert code == 0 and "120 train / 260 test features of 64 values" in stdout
    # Independent reference: the run's model on the dataset's images, normalised as the run does.
    run = load_run(cifar_run)
    cfg = load_config("folder-convnet", {"data.root": str(cifar_folder), "data.image_size": 32,
                                         "data.cache_dir": str(cifar_folder.with_name("decoded-f"))})
    data = load_dataset(cfg.data)
    with torch.no_grad():
        live = run.model.forward_features(run.normalize(data.test_x.float() / 255)).mean(dim=(2, 3))
    cached = np.load(out / "test_x.npy", mmap_mode="r")
    assert isinstance(cached, np.memmap) and cached.shape == (260, 64)
    np.testing.assert_allclose(cached, live.numpy(), rtol=0, atol=1e-5)
    assert np.array_equal(np.load(out / "test_y.npy"), data.test_y.numpy())


def test_a_cache_for_other_weights_or_data_is_rebuilt_with_a_notice(cifar_run, mnist_run, cifar_folder, tmp_path,
                                                                    capsys):
    out = tmp_path / "feats"
    assert _features(capsys, cifar_run, cifar_folder, out)[0] == 0
    key = json.loads((out / "meta.json").read_text())["key"]
    code, _, err = _features(capsys, cifar_run, cifar_folder, out)
    assert code == 0 and "is up to date" in err  # same weights, data, transform: reused
    # Other weights (the MNIST run: grey, 28x28 -- the transform converts the images): rebuilt.
    code, _, err = _features(capsys, mnist_run, cifar_folder, out)
    assert code == 0 and "was made for other weights, transform; rebuilding it" in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["key"] != key and meta["transform"]["input_size"] == [1, 28, 28]
    # Other data (a smaller image size) under `cnnlab train ... model.features_from`: rebuilt too.
    code, _, err = _features(capsys, cifar_run, cifar_folder, out)
    assert code == 0 and "rebuilding" in err
    summary = train_cli("train", "folder-convnet", f"model.features_from={out}", f"data.root={cifar_folder}",
                        "data.image_size=24", "data.augment.crop_padding=0", "data.augment.hflip=0",
                        "data.augment.brightness=0", "data.augment.contrast=0", "data.augment.saturation=0",
                        "data.val=none", "train.early_stopping.patience=null", "train.plots=false",
                        "train.epochs=2", "--out", tmp_path / "probe")
    assert "was made for other data; rebuilding it" in capsys.readouterr().err
    assert summary["params"] == 64 * 10 + 10 and summary["test_accuracy"] is not None


def test_augmentation_cannot_be_combined_with_a_cache(cifar_run, cifar_folder, tmp_path, capsys):
    code, _, err = _features(capsys, cifar_run, cifar_folder, tmp_path / "f", "data.augment.hflip=0.5")
    assert code == 2 and err.startswith("cnnlab: error: data.augment.hflip=0.5: data.augment is on, but cached")
    assert not (tmp_path / "f").exists()  # nothing half-written
    assert _features(capsys, cifar_run, cifar_folder, tmp_path / "g")[0] == 0
    code = main(["train", "folder-convnet", f"model.features_from={tmp_path / 'g'}", f"data.root={cifar_folder}",
                 f"data.cache_dir={cifar_folder.with_name('decoded-f')}", "data.image_size=32",
                 "--out", str(tmp_path / "probe")])
    err = capsys.readouterr().err
    assert code == 2 and "data.augment cannot apply to them" in err and err.count("\n") == 1
    assert not (tmp_path / "probe").exists()


def test_a_head_trains_from_the_cache(cifar_run, cifar_folder, tmp_path, capsys):
    out = tmp_path / "feats"
    assert _features(capsys, cifar_run, cifar_folder, out)[0] == 0
    summary = train_cli("train", "cifar10-baseline", f"model.features_from={out}", "model.head_hidden=32",
                        f"data.root={cifar_folder}", "data.name=folder", "data.image_size=32", "data.val=none",
                        f"data.cache_dir={cifar_folder.with_name('decoded-f')}",
                        "train.early_stopping.patience=null", "train.epochs=20", "optim.lr=0.01",
                        "train.plots=false", "--out", tmp_path / "mlp", "--quiet")
    assert summary["params"] == (64 * 32 + 32) + (32 * 10 + 10)  # a one-hidden-layer MLP head
    assert summary["input_size"] == [64, 1, 1] and summary["test_accuracy"] > 0.1


def test_layer_stops_the_backbone_at_a_stage(cifar_run, cifar_folder, tmp_path, capsys):
    code, stdout, _ = _features(capsys, cifar_run, cifar_folder, tmp_path / "l1", "--layer", "1")
    assert code == 0 and "features of 16 values" in stdout  # the second block's 16 channels, pooled
    run = load_run(cifar_run)
    cfg = load_config("folder-convnet", {"data.root": str(cifar_folder), "data.image_size": 32,
                                         "data.cache_dir": str(cifar_folder.with_name("decoded-f"))})
    x = run.normalize(load_dataset(cfg.data).train_x[:5].float() / 255)
    with torch.no_grad():
        live = run.model.features[1](run.model.features[0](x)).mean(dim=(2, 3))
    np.testing.assert_allclose(np.load(tmp_path / "l1" / "train_x.npy")[:5], live.numpy(), atol=1e-5)
    code, _, err = _features(capsys, cifar_run, cifar_folder, tmp_path / "l9", "--layer", "layer9")
    assert code == 2 and "is not a stage of the backbone; use one of 0, 1, 2, 3" in err
    assert not (tmp_path / "l9").exists()
